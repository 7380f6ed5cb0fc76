"""The one-dimensional law mu_1 of an i.i.d. noise, computed from its own log-density.

Built-in noises declare a scipy twin (``noise.marginal()``); a user's own i.i.d. noise declares none.
:class:`NumericMarginal` offers the deterministic backend (``unicr.exact``) the same frozen-law
interface (cdf, sf, logpdf, ppf, isf, median, std, support), by adaptive quadrature of the noise's
``log_prob_coords``; :func:`numeric_marginal` builds it from a noise.
"""
from __future__ import annotations

import math

import numpy as np
import numpy.polynomial.chebyshev as cheb
import scipy.stats as st

__all__ = ["NumericMarginal", "numeric_marginal"]

#: Gauss-Legendre nodes per panel (odd: the interpolant's error shows at the panel midpoint)
NODES = 11
#: panels of the first pass, over the whole range in t
INITIAL_PANELS = 256
#: halvings of a panel at most (jumps and cusps end up in panels 2^-40 of an initial one)
MAX_LEVEL = 40
#: panels at most; past it, refinement stops (a noisy log-density never settles)
MAX_PANELS = 1 << 15
#: accepted relative disagreement of a panel's estimates ...
REL_TOL = 1e-14
#: ... plus this many ulps per unit of 1 + |log g| at its nodes (rounding of the log-density; the
#: ulp of float32 where its values at the draws are all float32 numbers, not all equal)
NOISE_ULPS = 8
#: ... plus this fraction of the total mass (panels beyond cdf ~ 1e-30 need no relative accuracy)
ABS_TOL = 1e-30
#: the range in t ends where the integrand falls this far (in log) below its peak
LOG_TAIL = 110.0
#: false-alarm rate of the Kolmogorov-Smirnov check of the draws against the computed cdf
KS_ALPHA = 1e-9
#: a tail of the moment integrand that decays slower than this (per unit t = per e-fold of x)
#: is read as a divergent moment
MIN_DECAY = 1e-3
#: exact draws used by :func:`numeric_marginal`
DRAWS = 4096

_EPS = np.finfo(float).eps
_X, _W = np.polynomial.legendre.leggauss(NODES)
# node values -> Chebyshev coefficients of the interpolant p on [-1, 1], of its integral from -1
# (F) and of its integral to 1 (G); _MID: node values -> F(0)
_INTERP = np.linalg.inv(cheb.chebvander(_X, NODES - 1))
_LEFT = cheb.chebint(_INTERP, lbnd=-1, axis=0)
_RIGHT = -cheb.chebint(_INTERP, lbnd=1, axis=0)
_MID = cheb.chebval(0.0, _LEFT)
# node values -> the interpolant at -1 and 1; the width of the end zones outside all nodes
_ENDS = cheb.chebval(np.array([-1.0, 1.0]), _INTERP)
_END_ZONE = 1.0 + _X[0]


def _clenshaw(u, coef, i):
    """sum_k coef[k, i] T_k(u), elementwise over u and panel indices i."""
    b1 = np.zeros_like(u)
    b2 = np.zeros_like(u)
    for k in range(coef.shape[0] - 1, 0, -1):
        b1, b2 = coef[k][i] + 2.0 * u * b1 - b2, b1
    return coef[0][i] + u * b1 - b2


def _peak(*log_g) -> float:
    """The largest log g; ValueError unless finite (an unbounded density)."""
    peak = float(max(v.max() for v in log_g))
    if not math.isfinite(peak):
        raise ValueError(f"the log-density must be bounded above; its largest value found is {peak}")
    return peak


def _weigh(f, log_g):
    """Gauss-Legendre sums of f (1 + |log g|) over panels (0 where f is 0)."""
    return np.where(f > 0, f * (1.0 + np.abs(log_g)), 0.0) @ _W


class _Side:
    """One side of the centre m (s = +1 above, -1 below) as a map tau >= 0 -> x, dx/dtau = c at 0.

    ``sinh``: x = m + s c sinh(tau), for a side whose density decays (power tails decay
    exponentially in tau). ``log``: x = edge - s E exp(-kappa tau), E = |edge - m|, kappa = c/E, for
    a finite edge that the density reaches: the edge lies at tau = inf, so x - edge keeps its
    relative precision. ``cut`` is the end of the range in tau.
    """

    def __init__(self, s: int, m: float, c: float, edge: float, log_map: bool, cut: float = math.inf):
        self.s, self.m, self.c, self.edge, self.log_map, self.cut = s, m, c, edge, log_map, cut
        if log_map:
            self.dist = s * (edge - m)
            self.kappa = c / self.dist

    def x(self, tau):
        if self.log_map:
            return self.edge - self.s * self.dist * np.exp(-self.kappa * tau)
        return self.m + self.s * self.c * np.sinh(tau)

    def log_jac(self, tau):
        """log dx/dtau."""
        if self.log_map:
            return math.log(self.c) - self.kappa * tau
        return math.log(0.5 * self.c) + tau + np.log1p(np.exp(-2.0 * tau))

    def tau(self, x):
        """Inverse of :meth:`x` for x on this side; inf at and beyond a finite edge."""
        with np.errstate(divide="ignore"):
            if self.log_map:
                return -np.log(np.maximum(self.s * (self.edge - x), 0.0) / self.dist) / self.kappa
            return np.arcsinh(self.s * (x - self.m) / self.c)


class NumericMarginal:
    """mu_1 from its log-density by adaptive Gauss-Legendre quadrature, as a frozen-law look-alike.

    Variable: x = m + c sinh(t) on a side without a reachable edge (m the median of the draws, c
    their IQR/1.349), x = edge -+ |edge - m| exp(-(c/|edge - m|) |t|) on a side whose finite edge
    the density reaches; t = 0 at m on both sides. The integrand g(t) = mu_1(x(t)) x'(t) decays
    exponentially in t for power-law tails, and x - edge keeps its relative precision.

    Range: from the outermost draw, outwards in steps doubling |x - m|, until g falls
    ``LOG_TAIL`` = 110 below its peak (that side is then unbounded: support edge +-inf) or the
    log-density turns -inf (a jump edge, then bisected to adjacent floats). A declared ``support``
    is used as the edges.

    Quadrature: ``INITIAL_PANELS`` panels in t, ``NODES``-point Gauss-Legendre on each and on its
    halves. A panel is halved (at most ``MAX_LEVEL`` = 40 times: kinks, cusps, jumps) unless the
    whole rule, the half rules, the whole interpolant's left-half mass and its values at the
    panel's ends (against g there) agree to ``REL_TOL`` of (its mass + the smaller mass beyond
    its initial panel), plus the rounding of log g (``NOISE_ULPS`` ulps per unit of |log g|),
    plus ``ABS_TOL`` of the total. The halves of an accepted panel keep their node values; their
    Chebyshev interpolants, integrated from the left (cdf) and from the right (sf), give partial
    masses. cdf sums panel masses from the left, sf from the right, so both tails keep their
    relative precision; ppf/isf invert them by safeguarded Newton inside a panel.

    Accuracy: about 1e-15 absolute in the bulk (1e-14 next to a jump) and 1e-13 relative in the
    tails for a density smooth in pieces; a log-density rounded to float32 (its values at the
    draws all float32 numbers) is refined only to its own accuracy. ``error`` estimates the
    absolute error of cdf and sf (sum over panels of the disagreement of the coarse rule, an
    overestimate). Mass beyond the range (< ~1e-47) is dropped.

    Assumed: a bounded density, smooth between finitely many jumps, kinks or cusps; its support
    beyond the outermost draws is an interval; tails decaying at least like |x|^-(1+a), a > 0.
    The draws must be exact draws of the law: a log-density that is -inf at a draw, or a
    Kolmogorov-Smirnov misfit of the draws at false-alarm rate ``KS_ALPHA``, raises ValueError.
    """

    def __init__(self, log_density, draws, *, support=None):
        self._log_density = log_density
        draws = np.sort(np.asarray(draws, dtype=float).ravel())
        if draws.size < 8 or not np.isfinite(draws).all():
            raise ValueError(f"need at least 8 finite draws of the law, got {draws.size} "
                             f"({int((~np.isfinite(draws)).sum())} not finite)")
        if support is not None and (draws[0] < support[0] or draws[-1] > support[1]):
            raise ValueError(f"draws of the law lie outside its declared support {tuple(support)} "
                             f"(range [{draws[0]:.6g}, {draws[-1]:.6g}])")
        lp = self._logf(draws)
        bad = ~np.isfinite(lp)
        if bad.any():
            raise ValueError(f"the noise's log_prob_coords is -inf (or nan) at {int(bad.sum())} of "
                             f"{draws.size} draws of its own sampler (e.g. x={draws[bad][0]!r}): the "
                             "log-density and the sampler disagree about the support")
        self._ulp = float(np.finfo(np.float32 if np.ptp(lp) > 0 and (lp == lp.astype(np.float32)).all()
                                   else float).eps)
        self._m = m = float(np.median(draws))
        q1, q3 = np.quantile(draws, [0.25, 0.75])
        c = float(q3 - q1) / 1.349 or float(draws[-1] - draws[0]) / 4
        if not c > 0:
            raise ValueError("all draws are equal: not a continuous law")
        cut = float(lp.max()) + math.log(c) - LOG_TAIL
        edges = (-math.inf, math.inf) if support is None else tuple(map(float, support))
        self._lower = self._side(-1, m, c, draws, lp, cut, edges[0], support is not None)
        self._upper = self._side(1, m, c, draws, lp, cut, edges[1], support is not None)
        self._quadrature()
        self._check(draws)

    # -- construction -------------------------------------------------------------------------

    def _logf(self, x):
        """log mu_1(x) (unnormalised) as float64, nan read as -inf."""
        with np.errstate(all="ignore"):
            out = np.asarray(self._log_density(x), dtype=float)
        if out.shape != np.shape(x):
            raise ValueError(f"log_density returned shape {out.shape} for input shape {np.shape(x)}")
        return np.where(np.isnan(out), -math.inf, out)

    def _side(self, s, m, c, draws, lp, cut, declared, has_declared) -> _Side:
        """Map and range of one side (class docstring: Range)."""
        outer = draws[-1] if s > 0 else draws[0]
        tau0 = float(np.arcsinh(s * (outer - m) / c))
        taus = tau0 + math.log(2.0) * np.arange(max(int((709.0 - tau0) / math.log(2.0)), 0) + 1)
        xs = m + s * c * np.sinh(taus)
        if math.isfinite(declared):
            inside = s * (declared - xs) > 0
            taus, xs = taus[inside], xs[inside]
        lps = self._logf(xs)
        below = np.flatnonzero(lps + _Side(s, m, c, s * math.inf, False).log_jac(taus) < cut)
        j = int(below[0]) if below.size else None
        if has_declared:
            if math.isfinite(declared) and j is None:
                return self._log_side(s, m, c, declared, outer, cut)
            edge = declared
        elif j is not None and lps[j] == -math.inf:
            inner = xs[j - 1] if j > 0 else outer
            return self._log_side(s, m, c, self._bisect(inner, xs[j]), outer, cut)
        else:
            edge = s * math.inf
        return _Side(s, m, c, edge, False, float(taus[j] if j is not None else taus[-1]))

    def _log_side(self, s, m, c, edge, outer, cut) -> _Side:
        """A side with a reachable finite edge: the range ends where g falls below ``cut``,
        probing distances to the edge halving from the outermost draw on."""
        side = _Side(s, m, c, edge + 0.0, True)
        if not side.dist > 0:
            raise ValueError(f"the median of the draws, {m!r}, lies on the support edge {edge!r}")
        dist = side.dist * 0.5 ** np.arange(1, 1075)
        dist = dist[(dist > 0) & (dist < s * (edge - outer))]
        if dist.size == 0:
            side.cut = 1074 * math.log(2.0) / side.kappa
            return side
        taus = -np.log(dist / side.dist) / side.kappa
        below = np.flatnonzero(self._logf(edge - s * dist) + side.log_jac(taus) < cut)
        side.cut = float(taus[below[0]] if below.size else taus[-1])
        return side

    def _bisect(self, inside: float, outside: float) -> float:
        """The last float from ``inside`` towards ``outside`` with a log-density > -inf."""
        while True:
            mid = inside + 0.5 * (outside - inside)
            if mid == inside or mid == outside:
                mid = float(np.nextafter(inside, outside))
                if mid == outside:
                    return float(inside)
            if self._logf(np.array([mid]))[0] > -math.inf:
                inside = mid
            else:
                outside = mid

    def _split(self, t, method: str):
        """The upper side's ``method`` at t >= 0, the lower side's at -t for t < 0."""
        up = t >= 0
        out = np.empty_like(t)
        out[up] = getattr(self._upper, method)(t[up])
        out[~up] = getattr(self._lower, method)(-t[~up])
        return out

    def _x(self, t):
        """x(t), kept within the edges."""
        return np.clip(self._split(t, "x"), self._lower.edge, self._upper.edge)

    def _log_g(self, t):
        """log g(t) = log mu_1(x(t)) + log x'(t)."""
        return self._logf(self._x(t.ravel())).reshape(t.shape) + self._split(t, "log_jac")

    def _log_g_nodes(self, a, b):
        """log g at the Gauss-Legendre nodes of the panels [a, b]: shape (panels, NODES)."""
        return self._log_g(0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * _X)

    def _quadrature(self):
        """Adaptive panels, level by level (class docstring: Quadrature), then the cumulative
        masses from both ends."""
        lo, hi = self._lower.cut, self._upper.cut
        n_lo = min(max(1, round(INITIAL_PANELS * lo / (lo + hi))), INITIAL_PANELS - 1)
        grid = np.concatenate([np.linspace(-lo, 0.0, n_lo + 1)[:-1],
                               np.linspace(0.0, hi, INITIAL_PANELS - n_lo + 1)])
        a, b = grid[:-1], grid[1:]
        whole = self._log_g_nodes(a, b)
        at_grid = self._log_g(grid)
        at_a, at_b = at_grid[:-1], at_grid[1:]
        kept, error, scale, floor, room = [], 0.0, None, 0.0, None
        with np.errstate(over="ignore", invalid="ignore"):
            for level in range(MAX_LEVEL + 1):
                mid = 0.5 * (a + b)
                left, right, at_mid = self._log_g_nodes(a, mid), self._log_g_nodes(mid, b), self._log_g(mid)
                if scale is None:
                    scale = _peak(whole, left, right)
                half = 0.5 * (b - a)
                fw, fl, fr = np.exp(whole - scale), np.exp(left - scale), np.exp(right - scale)
                coarse = half * (fw @ _W)
                fine_left, fine = 0.5 * half * (fl @ _W), 0.5 * half * (fl @ _W + fr @ _W)
                # the rules disagree, the interpolant misses the left half's mass, or it misses g at
                # an end (a jump between an end and the outermost node, where no rule looks)
                ends = np.abs(np.exp(np.stack([at_a, at_b], 1) - scale) - fw @ _ENDS).sum(1)
                err = np.maximum.reduce([np.abs(coarse - fine), np.abs(half * (fw @ _MID) - fine_left),
                                         _END_ZONE * half * ends])
                if level == 0:   # room: the smaller mass beyond an initial panel, kept by its parts
                    floor = ABS_TOL * fine.sum()
                    room = np.minimum(np.cumsum(fine) - fine, np.cumsum(fine[::-1])[::-1] - fine)
                # rounding of log g: ulps of |log g| at each node, weighted like its mass
                rounding = NOISE_ULPS * self._ulp * half * np.maximum(
                    _weigh(fw, whole), 0.5 * (_weigh(fl, left) + _weigh(fr, right)))
                ok = err <= REL_TOL * (fine + room) + rounding + floor
                done = sum(k[0].size for k in kept)
                if level == MAX_LEVEL or done + 2 * ok.sum() + 4 * (~ok).sum() > MAX_PANELS:
                    ok[:] = True
                kept += [(a[ok], mid[ok], left[ok]), (mid[ok], b[ok], right[ok])]
                error += float(err[ok].sum())
                if ok.all():
                    break
                a, b = np.concatenate([a[~ok], mid[~ok]]), np.concatenate([mid[~ok], b[~ok]])
                room = np.concatenate([room[~ok], room[~ok]])
                at_a, at_b = np.concatenate([at_a[~ok], at_mid[~ok]]), np.concatenate([at_mid[~ok], at_b[~ok]])
                whole = np.concatenate([left[~ok], right[~ok]])
        a, b, log_g = (np.concatenate(part) for part in zip(*kept))
        order = np.argsort(a)
        a, b, log_g = a[order], b[order], log_g[order]
        peak = _peak(log_g)
        f = np.exp(log_g - peak)
        half = 0.5 * (b - a)
        mass = half * (f @ _W)
        self._a, self._mid, self._half, self._f, self._mass = a, 0.5 * (a + b), half, f, mass
        self._t_lo, self._t_hi = float(a[0]), float(b[-1])
        # Chebyshev coefficients (k, panel) of the partial masses F (from the left), G (to the
        # right) and their derivative in u, half * p
        self._cF = np.ascontiguousarray((half[:, None] * (f @ _LEFT.T)).T)
        self._cG = np.ascontiguousarray((half[:, None] * (f @ _RIGHT.T)).T)
        self._cP = np.ascontiguousarray((half[:, None] * (f @ _INTERP.T)).T)
        self._total = math.fsum(mass)
        self._before = np.concatenate([[0.0], np.cumsum(mass)[:-1]])
        self._after = np.concatenate([np.cumsum(mass[::-1])[::-1][1:], [0.0]])
        self._log_norm = peak + math.log(self._total)
        #: estimated absolute error of cdf and sf (an overestimate: the coarse rules' disagreement)
        self.error = error * math.exp(scale - peak) / self._total

    def _check(self, draws):
        """Kolmogorov-Smirnov statistic of the (sorted) draws against cdf."""
        n = draws.size
        cdf = self.cdf(draws)
        stat = float(max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max()))
        critical = float(st.kstwo.isf(KS_ALPHA, n))
        if not stat <= critical:
            raise ValueError(f"the noise's sampler and log-density disagree (KS statistic {stat:.4g} on "
                             f"{n} draws > {critical:.4g}, the critical value at false-alarm rate "
                             f"{KS_ALPHA:g})")

    # -- evaluation ---------------------------------------------------------------------------

    def _t(self, x):
        """t(x); -inf/inf at and beyond finite edges, nan for nan."""
        up = x >= self._m
        t = np.empty_like(x)
        t[up] = self._upper.tau(x[up])
        t[~up] = -self._lower.tau(x[~up])
        return t

    def _locate(self, x):
        """(t, panel index, u in [-1, 1]) of x."""
        t = self._t(x)
        i = np.clip(np.searchsorted(self._a, t, side="right") - 1, 0, self._a.size - 1)
        return t, i, np.clip((t - self._mid[i]) / self._half[i], -1.0, 1.0)

    def _tail(self, x, left: bool):
        """cdf (left) or sf, flat float64."""
        t, i, u = self._locate(x)
        if left:
            base, part = self._before[i], _clenshaw(u, self._cF, i)
        else:
            base, part = self._after[i], _clenshaw(u, self._cG, i)
        p = np.minimum(np.clip(base + part, base, base + self._mass[i]) / self._total, 1.0)
        low, high = (0.0, 1.0) if left else (1.0, 0.0)
        return np.where(t <= self._t_lo, low, np.where(t >= self._t_hi, high, p))

    def cdf(self, x):
        """P(X <= x), summed from the left."""
        x = np.asarray(x, dtype=float)
        return self._tail(x.ravel(), True).reshape(x.shape)[()]

    def sf(self, x):
        """P(X > x), summed from the right."""
        x = np.asarray(x, dtype=float)
        return self._tail(x.ravel(), False).reshape(x.shape)[()]

    def logcdf(self, x):
        """log cdf (relative precision of cdf kept deep in the lower tail)."""
        with np.errstate(divide="ignore"):
            return np.log(self.cdf(x))

    def logsf(self, x):
        """log sf (relative precision of sf kept deep in the upper tail)."""
        with np.errstate(divide="ignore"):
            return np.log(self.sf(x))

    def logpdf(self, x):
        """log mu_1(x) - log of its integral; -inf outside the support."""
        x = np.asarray(x, dtype=float)
        flat = x.ravel()
        inside = (flat >= self._lower.edge) & (flat <= self._upper.edge)
        out = np.where(inside, self._logf(flat) - self._log_norm, -math.inf)
        return np.where(np.isnan(flat), math.nan, out).reshape(x.shape)[()]

    def pdf(self, x):
        """exp(logpdf)."""
        return np.exp(self.logpdf(x))

    def _solve(self, target, i, left: bool):
        """u in [-1, 1] with F_i(u) = target (left) or G_i(u) = target: Newton on the interpolant,
        bisection where a step leaves the bracket."""
        sign = 1.0 if left else -1.0
        coef = self._cF if left else self._cG
        lo, hi = -np.ones_like(target), np.ones_like(target)
        active = np.arange(target.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = sign * (2.0 * np.clip(np.nan_to_num(target / self._mass[i], nan=0.5), 0.0, 1.0) - 1.0)
            for _ in range(100):
                k, ua = i[active], u[active]
                val = sign * (_clenshaw(ua, coef, k) - target[active])   # increasing in u
                lo[active] = np.where(val < 0, ua, lo[active])
                hi[active] = np.where(val > 0, ua, hi[active])
                step = ua - val / _clenshaw(ua, self._cP, k)
                new = np.where((step > lo[active]) & (step < hi[active]), step,
                               0.5 * (lo[active] + hi[active]))
                new = np.where(val == 0, ua, new)
                u[active] = new
                active = active[np.abs(new - ua) > 4 * _EPS]
                if active.size == 0:
                    break
        return u

    def _inverse(self, q, left: bool):
        """ppf (left) or isf, flat float64."""
        r = q * self._total
        n = self._a.size
        if left:
            i = np.clip(np.searchsorted(self._before + self._mass, r, side="left"), 0, n - 1)
            u = self._solve(r - self._before[i], i, True)
        else:
            start = (self._after + self._mass)[::-1]
            i = n - 1 - np.clip(np.searchsorted(start, r, side="left"), 0, n - 1)
            u = self._solve(r - self._after[i], i, False)
        x = self._x(self._mid[i] + self._half[i] * u)
        low, high = (self._lower.edge, self._upper.edge) if left else (self._upper.edge, self._lower.edge)
        x = np.where(q == 0, low, np.where(q == 1, high, x))
        return np.where((q >= 0) & (q <= 1), x, math.nan)

    def ppf(self, q):
        """Inverse of cdf; ppf(0), ppf(1) are the support's edges."""
        q = np.asarray(q, dtype=float)
        return self._inverse(q.ravel(), True).reshape(q.shape)[()]

    def isf(self, q):
        """Inverse of sf, accurate for q down to the tails' cut (about 1e-47)."""
        q = np.asarray(q, dtype=float)
        return self._inverse(q.ravel(), False).reshape(q.shape)[()]

    def median(self) -> float:
        """ppf(1/2)."""
        return float(self.ppf(0.5))

    def _moment(self, center: float, power: int) -> float:
        """int (x - center)^power mu_1 dx over the range, plus the tails beyond its ends where they
        decay like exp(-rate |t|) (rate from the outermost panel); inf/-inf where a tail decays
        slower than ``MIN_DECAY`` (a divergent moment), nan where both do."""
        t = self._mid[:, None] + self._half[:, None] * _X
        h = (self._x(t) - center) ** power * self._f
        total = float((self._half * (h @ _W)).sum()) / self._total
        tails = []
        for side, row, end, ends in ((self._lower, 0, self._t_lo, (0, -1)),
                                     (self._upper, -1, self._t_hi, (-1, 0))):
            outer, inner = h[row, ends[0]], h[row, ends[1]]
            if side.log_map or outer == 0:
                continue     # x bounded beyond a finite edge, or nothing left at the end
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = math.log(abs(outer / inner)) / abs(t[row, ends[0]] - t[row, ends[1]])
                if not rate < -MIN_DECAY:
                    tails.append(math.copysign(math.inf, outer))
                    continue
                tails.append(outer * math.exp(rate * abs(end - t[row, ends[0]])) / -rate / self._total)
        return total + sum(tails)

    def mean(self) -> float:
        """E X (inf/-inf/nan where the integral diverges)."""
        return self._m + self._moment(self._m, 1)

    def std(self) -> float:
        """sqrt(Var X); inf where the variance (or the mean) does not exist."""
        mean = self.mean()
        if not math.isfinite(mean):
            return math.inf
        return math.sqrt(self._moment(mean, 2))

    def support(self) -> tuple[float, float]:
        """(lower, upper) edges: declared, located to adjacent floats, or -inf/inf."""
        return (float(self._lower.edge), float(self._upper.edge))


def numeric_marginal(noise, *, seed: int = 0) -> NumericMarginal:
    """mu_1 of an i.i.d. noise from ``log_prob_coords`` (float64) and ``DRAWS`` draws of
    ``sample_coords`` seeded with ``seed``; the noise's ``support`` is used where declared."""
    import torch

    if not getattr(noise, "iid", False):
        raise ValueError(f"a numeric marginal needs an i.i.d. noise (IIDNoise), got {noise!r}")
    draws = noise.sample_coords((DRAWS,), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def log_density(x):   # on the device of the noise's own draws (a torch Distribution's parameters)
        return noise.log_prob_coords(torch.from_numpy(np.array(x, dtype=float)).to(draws.device)).detach().to(
            device="cpu", dtype=torch.float64).numpy()

    try:
        return NumericMarginal(log_density, draws.detach().to(device="cpu", dtype=torch.float64).numpy(),
                               support=noise.support)
    except ValueError as err:
        raise ValueError(f"{noise!r}: {err}") from None
