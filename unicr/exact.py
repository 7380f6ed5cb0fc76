"""Deterministic Neyman–Pearson backend for i.i.d. noise: p*(lam) and K(lam) with rigorous bounds.

Setting (docs/design.md §1). mu(e) = prod_i mu_1(e_i); delta = lam v, where v has groups of c_j
coordinates equal to m_j >= 0. Per coordinate ell(e; s) = log mu_1(e - s) - log mu_1(e), s = lam m_j;
L is the sum of ell over the support (k = sum c_j terms). H0: e ~ mu, H1: e ~ mu(. - delta).

One curve gives everything. For u in [0, 1] let

    G(u) = min { P_H0(T) : P_H1(T) = u }        (T the randomized NP upper set {L > t})
         = int_{1-u}^{1} exp(-Q1(b)) db          (Q1 = quantile function of L under H1)

(dH0 = e^{-L} dH1 on {L > -inf}): G is convex and increasing, linear across atoms of L (the
randomized ties). With Ginv(y) = sup{u : G(u) <= y} (the H1 mass of the upper set of H0 mass y):

    1 - p*(lam) = G(1/2),      K(lam; p_A, p_B) = 1 - Ginv(1 - p_A) - Ginv(p_B)

(S_A is the complement of the upper set of H0 mass 1 - p_A, S_B the upper set of H0 mass p_B;
binary: K = 1 - 2 Ginv(1 - p_A)). G adds H0 masses from the top, so 1 - p* is computed as a tail
and keeps its relative precision as p* -> 1.

Paths (``ExactRay.path``):

* ``"gaussian"``: L is normal; the problem is one-dimensional with shift ||delta||_2, so
  1 - p* = Phibar(||delta||_2 / sigma) (Cohen et al., ICML 2019), for any groups.
* ``"one-dim"``: one coordinate, log-concave mu_1 (Laplace, general normal beta >= 1, logistic,
  ...). The likelihood ratio is monotone in e, the NP sets are {e > x}: G(u) = sf(isf(u) + s),
  Ginv(y) = sf(isf(y) - s). Flat pieces of ell (Laplace's atoms at +-s/b) are exactly the
  randomized ties.
* ``"uniform"``: the cube [-a, a]^d, any groups. Under H1, ell is 0 or +inf, P_H1(L = 0) =
  pi = prod_j (1 - s_j/(2a))_+^(c_j), G(u) = (u - 1 + pi)_+, so 1 - p* = (pi - 1/2)_+ (Yang et al.,
  ICML 2020), computed as expm1 of a sum of log1p.

  These three are closed forms: bounds = estimate -+ ROUND_REL (relative).

* ``"cells"`` (one coordinate, any marginal) and ``"fft"`` (k > 1). One coordinate is cut into
  cells [e_i, e_i+1] at H1 quantiles (e = s + F^-1(expit(z)), z uniform: geometric refinement
  into both tails, CELL_TAIL left out per side), with exact masses p_i (H1) and q_i (H0) from the
  marginal's cdf/sf, and the range [lo_i, hi_i] of ell on each cell: endpoint values, widened at
  the turning points of ell when mu_1 is not log-concave. For the FFT path, cells over which ell
  moves by more than two lattice steps are cut further (kinks, Laplace-like cores).

  Upper bound on G (lower bound on p*): Blackwell garbling. Cells, the hat split of a cell onto a
  lattice, the sum of lattice indices, the merging of lattice points and the lumping of trimmed
  tails into one "rest" outcome are Markov kernels applied alike under H0 and H1. The H1 and H0
  pmfs, convolved alongside each other, are therefore the exact law of a garbled observation, whose
  NP curve G_c (outcomes sorted by ratio) is >= G by data processing (Blackwell, 1953). Its error is
  second order in the spread of ell within a merged outcome; it is also the ``cells`` estimate.

  Lower bound on G (upper bound on p*): ``cells`` puts each cell at hi_i (a stochastically larger
  L under H1, hence a smaller G). ``fft`` uses a mean-preserving discretization, after Gopi, Lee
  & Wutschitz (NeurIPS 2021, the PRV accountant), with a martingale in place of their mean shift:
  the cell value r_i = log(p_i/q_i) has E_H1[ell - r_i | cell] = KL(cell) in [0, w_i^2/8]
  (Hoeffding's lemma, w_i = hi_i - lo_i); r_i is split onto the lattice of step h by hat weights
  (mean kept), and so is every later coarsening. Hence sum(ell) = Y + N + B: Y the lattice value,
  N a martingale with increments in ranges h (each split) and w_i (each cell), 0 <= B <= sum
  w_i^2/8. Azuma–Hoeffding, P(N >= eta) <= delta for eta = sqrt(R2 ln(1/delta)/2), R2 the sum of
  squared ranges, gives P_H1(L <= t) >= P(Y <= t - eta - B) - delta, i.e.
  G(u) >= exp(-eta - B) G_Y(u - delta), G_Y the curve of the lattice law with the rest at +inf.
  Binary powering (c-fold sums by repeated squaring) with the lattice coarsened by powers of 2 keeps
  R2 ~ log2(k) h^2, where rounding each term would give k h^2 (and first-order rounding, as in the
  pessimistic/optimistic PLD of Google's dp-accounting, k h). The estimate is the lattice law Y.

  Convolutions are linear (zero-padded real FFT, no wrap-around; Koskela et al., AISTATS 2020
  convolve privacy-loss distributions the same way); tails leave only through explicit trimming
  into the rest outcome. Cost per lam: about log2(k) FFTs of 2 x grid points plus 2 x grid cells.

  Bounded supports: cells are cut at the edges of the H0 support, so each has ell finite, +inf
  (H1 mass only) or -inf (H0 mass only). A sum is +inf (-inf) when a term is; both outcomes ride
  beside the lattice as log P(finite), which adds under convolution. They are garblings like the
  rest: +inf tops the garbled curve and the lattice curve, -inf ends the garbled one.

Rigor holds up to floating-point rounding (allowances: ROUND_REL, n eps for sums of n terms, FFT
round-off absorbed by flooring H0 masses at FFT_FLOOR of the largest), to the accuracy of the
marginal's cdf/sf, and, for marginals that are not log-concave, to locating the turning points
of ell (they enter hi_i for ``cells``, only the ranges w_i for ``fft``). The band is "numerical"
where one of these is not proven: a marginal computed by quadrature (no declared scipy twin), a
bounded support (the rounding of the edge nodes is not accounted for), or turning points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Integral

import numpy as np
import scipy.fft as sfft
import scipy.special as sc
import torch

from .errors import check_choice

__all__ = ["ExactRay", "ExactRayScores", "applies", "radius_bounds"]

# allowances for rounding added to every bound: relative on masses (scipy's special functions
# are good to a few ulps; this is a few hundred), absolute on margins K = 1 - u_A - u_B
ROUND_REL = 1e-13
ROUND_ABS = 1e-15
# H0 masses of the convolved pmf are floored at this fraction of the largest (FFT round-off)
FFT_FLOOR = 1e-14
# H1 tail mass per side left outside the cells of one coordinate (goes to the rest outcome)
CELL_TAIL = 1e-18
#: lattice cells per batch of lams on the FFT path (grid x lams; bounds the batch's memory)
BATCH_CELLS = 1 << 20
#: lattice of the FFT path's upper bounds on 1 - p* in radius_bounds: the garbled curve bounds G
#: from above on any lattice and moves by ~1e-5 between 2^12 and 2^15 points, while the lower
#: bound (Azuma) shrinks with the lattice step
UPPER_GRID = 1 << 12


def _marginal(noise):
    """(mu_1, declared): the noise's declared scipy twin (declared True), else for i.i.d. noise the
    law computed from its own log-density (:meth:`unicr.IIDNoise.numeric_marginal`, declared
    False); (None, False) for noise that is not i.i.d."""
    if not noise.iid:
        return None, False
    try:
        return noise.marginal(), True
    except NotImplementedError:
        computed = getattr(noise, "numeric_marginal", None)   # IIDNoise; not a Noise that says iid
        return (computed(), False) if computed is not None else (None, False)


def _support(noise, marg) -> tuple[float, float]:
    """The support of mu_1, as the noise declares it, or else as its marginal says."""
    return noise.support if noise.support is not None else tuple(map(float, marg.support()))


def _spread(marg) -> float:
    """A scale of mu_1 for a noise that names none: its standard deviation, or, without a finite
    one (Cauchy-like tails), its interquartile range."""
    std = float(marg.std())
    return std if math.isfinite(std) and std > 0 else float(marg.ppf(0.75) - marg.ppf(0.25))


def _path(noise, k: int, method: str = "auto") -> str:
    """The computation for k live coordinates, from the noise's declarations (module docstring)."""
    if k == 0:
        return "one-dim"                 # delta = 0: L = 0 whatever the family
    if method == "auto" and noise.closed_form in ("gaussian", "uniform"):
        return noise.closed_form
    if method == "auto" and k == 1 and noise.log_concave:
        return "one-dim"
    return "cells" if k == 1 else "fft"


def _parse_groups(noise, groups) -> tuple[np.ndarray, np.ndarray]:
    """(counts, magnitudes) from [(count, magnitude), ...] or an object with ``.groups``."""
    groups = getattr(groups, "groups", groups)
    if groups is None:
        raise ValueError("groups must be a sequence of (count, magnitude), got None")
    pairs = list(groups)
    if not pairs:
        raise ValueError("groups must hold at least one (count, magnitude) pair")
    counts, mags = [], []
    for pair in pairs:
        count, mag = pair
        if isinstance(count, bool) or not isinstance(count, Integral) or count < 0:
            raise ValueError(f"group counts must be integers >= 0, got {count!r}")
        mag = float(mag)
        if not math.isfinite(mag):
            raise ValueError(f"group magnitudes must be finite, got {mag!r}")
        if noise.coordinatewise_symmetric:   # the sign of a coordinate's shift does not matter
            mag = abs(mag)
        counts.append(int(count))
        mags.append(mag)
    counts, mags = np.array(counts, dtype=np.int64), np.array(mags, dtype=float)
    if counts.sum() > noise.dim:
        raise ValueError(f"groups hold {counts.sum()} coordinates, more than dim={noise.dim}")
    return counts, mags


def applies(noise, groups) -> bool:
    """True when :class:`ExactRay` handles (noise, groups): i.i.d. noise (its marginal declared,
    or computed from its log-density) and a direction given by groups of equal values (``groups``
    may also be an object with a ``.groups`` attribute, e.g. a :class:`unicr.directions.Direction`)."""
    if not noise.iid or getattr(groups, "groups", groups) is None:
        return False
    try:
        _parse_groups(noise, groups)
    except (TypeError, ValueError):
        return False
    return _marginal(noise)[0] is not None


# ------------------------------------------------------------------------------------------------
# NP curves of discrete experiments
# ------------------------------------------------------------------------------------------------


class _Curve:
    """G(u) of a discrete experiment whose outcomes are given in decreasing likelihood ratio:
    s, t = cumulative H1 and H0 masses from the top (linear between outcomes: randomized ties)."""

    def __init__(self, h1: np.ndarray, h0: np.ndarray):
        self.s = np.concatenate([[0.0], np.cumsum(h1)])
        self.t = np.concatenate([[0.0], np.cumsum(h0)])

    def g(self, u) -> np.ndarray:
        """H0 mass of the upper set of H1 mass u (u clipped to [0, total H1 mass])."""
        s, t = self.s, self.t
        u = np.clip(np.asarray(u, dtype=float), 0.0, s[-1])
        k = np.clip(np.searchsorted(s, u, side="left"), 1, len(s) - 1)
        s0, s1 = s[k - 1], s[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(s1 > s0, (u - s0) / (s1 - s0), 0.0)
        return np.where(u > 0, t[k - 1] + frac * (t[k] - t[k - 1]), 0.0)

    def ginv(self, y) -> np.ndarray:
        """sup{u : G(u) <= y}: H1 mass of the upper set of H0 mass y."""
        s, t = self.s, self.t
        y = np.asarray(y, dtype=float)
        k = np.searchsorted(t, y, side="right")
        inside = k < len(t)
        k = np.clip(k, 1, len(t) - 1)
        t0, t1 = t[k - 1], t[k]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):   # (beyond the last: unused)
            frac = np.where(t1 > t0, (y - t0) / (t1 - t0), 0.0)
            return np.where(inside, s[k - 1] + frac * (s[k] - s[k - 1]), s[-1])


def _ratio_curve(h1: np.ndarray, h0: np.ndarray) -> _Curve:
    """The NP curve of outcomes with masses (h1, h0), sorted by likelihood ratio h1/h0."""
    keep = (h1 > 0) | (h0 > 0)
    h1, h0 = h1[keep], h0[keep]
    with np.errstate(divide="ignore"):
        key = np.log(h1) - np.log(h0)
    order = np.argsort(-key, kind="stable")
    return _Curve(h1[order], h0[order])


@dataclass(frozen=True)
class _Bounds:
    """At one lam: G_c >= G (garbling), G >= exp(-eta) G_low(u - delta), estimate curve g_est.
    ``rounding``: relative allowance for the summations behind the curves (n eps for n terms)."""

    g_up: _Curve
    g_low: _Curve
    g_est: _Curve
    eta: float
    delta: float
    rounding: float

    def tail(self):
        """(estimate, lower, upper) of 1 - p* = G(1/2)."""
        hi = float(self.g_up.g(0.5))
        lo = math.exp(-self.eta) * float(self.g_low.g(0.5 - self.delta))
        est = min(max(float(self.g_est.g(0.5)), lo), hi)
        return _widen(est, lo, hi, 0.5, self.rounding)

    def ginv(self, y):
        """(estimate, lower, upper) of Ginv(y), y an array."""
        lo = self.g_up.ginv(y)
        with np.errstate(divide="ignore"):   # y e^eta, capped where it exceeds every mass anyway
            scaled = np.exp(np.minimum(np.log(np.asarray(y, dtype=float)) + self.eta, 700.0))
        hi = np.minimum(self.g_low.ginv(scaled) + self.delta, 1.0)
        est = np.clip(self.g_est.ginv(y), lo, hi)
        return _widen(est, lo, hi, 1.0, self.rounding)


def _tilt(p: np.ndarray, ell: np.ndarray) -> np.ndarray:
    """H0 mass e^-ell p of H1 mass p at ell (exponent capped below overflow; 0 where p = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, np.exp(np.minimum(np.log(p) - ell, 700.0)), 0.0)


def _widen(est, lo, hi, cap, rel=ROUND_REL):
    """(est, lo, hi) with a relative rounding allowance, hi capped at ``cap``."""
    return est, lo * (1 - rel), np.minimum(hi * (1 + rel), cap)


def _summation_allowance(n: int) -> float:
    """Relative error bound of a recursive sum of n non-negative terms: n eps (Higham, 2002, §4.2)."""
    return max(ROUND_REL, n * np.finfo(float).eps)


def _exact_bounds() -> _Bounds:
    """lam = 0: L = 0, G(u) = u exactly."""
    curve = _Curve(np.array([1.0]), np.array([1.0]))
    return _Bounds(curve, curve, curve, 0.0, 0.0, ROUND_REL)


# ------------------------------------------------------------------------------------------------
# one coordinate: H1-quantile cells
# ------------------------------------------------------------------------------------------------


def _cell_masses(cdf: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """Masses of the cells between consecutive nodes, from cdf below 1/2 and sf above (no
    cancellation in either tail)."""
    low = cdf[1:] <= 0.5
    high = cdf[:-1] >= 0.5
    mass = np.where(low, cdf[1:] - cdf[:-1], np.where(high, sf[:-1] - sf[1:], 1.0 - cdf[:-1] - sf[1:]))
    return np.maximum(mass, 0.0)


class _Cells:
    """Cells of one coordinate under H1: e = u + s, u on nodes F^-1(expit(z)), z uniform on
    [-Z, Z] with expit(-Z) = CELL_TAIL (the spacing refines geometrically into both tails), plus
    the finite edges of the support. Where mu_1 has finite edges, each shift also puts nodes at the
    edges of the H0 support (and geometrically closer ones inside it), so that every cell lies
    inside it (ell finite, or -inf) or outside it (ell = +inf: H1 mass only)."""

    def __init__(self, marg, median: float, n: int, monotone: bool, support: tuple[float, float]):
        self.marg, self.median, self.monotone = marg, median, monotone
        self.support = support
        self.bounded = any(math.isfinite(x) for x in support)
        zmax = math.log((1 - CELL_TAIL) / CELL_TAIL)
        z = np.linspace(-zmax, zmax, n + 1)
        neg = z <= 0
        u = np.empty_like(z)
        u[neg] = marg.ppf(sc.expit(z[neg]))
        u[~neg] = marg.isf(sc.expit(-z[~neg]))
        self.u = np.unique(np.concatenate([u[np.isfinite(u)], [x for x in support if math.isfinite(x)]]))
        self.h1 = self._laws(self.u)

    def _laws(self, x):
        """cdf, sf and log-density of mu_1 at x; the cdf below the median, the sf above (the other
        one by complement, used only where it is not the small one)."""
        upper = x >= self.median
        cdf, sf = np.empty_like(x), np.empty_like(x)
        cdf[~upper] = self.marg.cdf(x[~upper])
        sf[upper] = self.marg.sf(x[upper])
        sf[~upper] = 1.0 - cdf[~upper]
        cdf[upper] = 1.0 - sf[upper]
        with np.errstate(divide="ignore"):
            return cdf, sf, self.marg.logpdf(x)

    def ell(self, e, s):
        """ell(e; s) = log mu_1(e - s) - log mu_1(e)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.marg.logpdf(e - s) - self.marg.logpdf(e)

    def _edge_nodes(self, nodes: np.ndarray, s: float) -> np.ndarray:
        """u-nodes at the H0 support's finite edges x (u = x - s) strictly inside the nodes' span,
        each with 40 nodes approaching it from inside the support (at 2^-j of its cell's width)."""
        out = []
        for x, inward in zip(self.support, (1.0, -1.0)):
            at = x - s
            i = int(np.searchsorted(nodes, at))
            if not (math.isfinite(at) and 0 < i < nodes.size and nodes[i] != at):
                continue
            width = nodes[i] - at if inward > 0 else at - nodes[i - 1]
            out.append(np.append(at, at + inward * width * 2.0 ** -np.arange(1, 41)))
        return np.sort(np.concatenate(out)) if out else nodes[:0]

    @staticmethod
    def _steep_nodes(nodes: np.ndarray, one: tuple, zero: tuple, steps: int) -> np.ndarray:
        """Nodes cutting the cells over which a finite ell moves by more than two steps of
        (its range over the nodes) / ``steps`` into equal parts (at most 1024); a move within the
        rounding of ell (a flat ell, as beyond Laplace's core or on a bounded support) is none."""
        with np.errstate(invalid="ignore"):
            ell = one[2] - zero[2]
        finite = np.isfinite(ell)
        if np.count_nonzero(finite) < 2:   # no finite ell left: a shift far beyond the nodes
            return nodes[:0]
        step = float(ell[finite].max() - ell[finite].min()) / steps
        rounding = 4 * np.finfo(float).eps * (np.abs(one[2]) + np.abs(zero[2]))
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.abs(np.diff(ell))
            m = np.where(np.isfinite(d) & (d > rounding[:-1] + rounding[1:]),
                         np.minimum(np.ceil(d / (2 * step)), 1024), 1.0)
        cut = np.flatnonzero(m > 1)
        if not cut.size:
            return nodes[:0]
        parts = m[cut].astype(np.int64)
        at = np.repeat(cut, parts - 1)
        k = np.arange(at.size) - np.repeat(np.cumsum(parts - 1) - (parts - 1), parts - 1) + 1
        return nodes[at] + (nodes[at + 1] - nodes[at]) * k / np.repeat(parts, parts - 1)

    def _insert(self, nodes: list, one: list, zero: list, shifts: np.ndarray, new: list) -> None:
        """Add the sorted nodes ``new[b]`` to row b (in place), with the laws at them (evaluated
        once for all rows: H1 at u, H0 at u + s)."""
        rows = [b for b in range(len(new)) if new[b].size]
        if not rows:
            return
        sizes = np.cumsum([new[b].size for b in rows])[:-1]
        laws1 = [np.split(x, sizes) for x in self._laws(np.concatenate([new[b] for b in rows]))]
        laws0 = [np.split(x, sizes) for x in self._laws(np.concatenate([new[b] + shifts[b] for b in rows]))]
        for j, b in enumerate(rows):
            at = np.searchsorted(nodes[b], new[b])
            nodes[b] = np.insert(nodes[b], at, new[b])
            one[b] = tuple(np.insert(x, at, law[j]) for x, law in zip(one[b], laws1))
            zero[b] = tuple(np.insert(x, at, law[j]) for x, law in zip(zero[b], laws0))

    def at(self, shifts, steps: int | None = None) -> list[tuple]:
        """For each shift s: H1 masses p, H0 masses q, ell-ranges [lo, hi] of the cells, the
        H1/H0 masses outside the nodes that H1 shares (the rest: (H1, H0)), and the H0 mass outside
        them where H1 has none (ell = -inf). With ``steps``, cells over which ell moves by more
        than two of ``steps`` steps of its range are first cut (:meth:`_steep_nodes`: kinks,
        Laplace-like cores). The marginal's functions are evaluated once per pass for all shifts."""
        shifts = np.asarray(shifts, dtype=float).reshape(-1)
        u, h1, rows = self.u, self.h1, len(shifts)
        h0 = [tuple(x) for x in zip(*(a.reshape(rows, -1) for a in self._laws((u + shifts[:, None]).ravel())))]
        nodes, one, zero = [u] * rows, [h1] * rows, h0
        if self.bounded:
            self._insert(nodes, one, zero, shifts, [self._edge_nodes(u, s) for s in shifts])
        if steps is not None:
            self._insert(nodes, one, zero, shifts,
                         [self._steep_nodes(nodes[b], one[b], zero[b], steps) for b in range(rows)])
        out = []
        for b, s in enumerate(shifts):
            p, q = _cell_masses(one[b][0], one[b][1]), _cell_masses(zero[b][0], zero[b][1])
            with np.errstate(invalid="ignore"):
                ell = one[b][2] - zero[b][2]
            lo = np.minimum(ell[:-1], ell[1:])
            hi = np.maximum(ell[:-1], ell[1:])
            if not self.monotone:
                noise = 4 * np.finfo(float).eps * (np.abs(one[b][2]) + np.abs(zero[b][2]))   # rounding of ell
                self._turning_points(ell, noise, nodes[b] + s, s, lo, hi)
            # outside the nodes: a side where H1 has no mass (the nodes reach its edge) holds H0
            # mass at ell = -inf only
            sides = ((float(one[b][0][0]), float(zero[b][0][0])), (float(one[b][1][-1]), float(zero[b][1][-1])))
            rest = (sum(p1 for p1, _ in sides), sum(q0 for p1, q0 in sides if p1 > 0))
            out.append((p, q, lo, hi, rest, sum(q0 for p1, q0 in sides if p1 == 0)))
        return out

    def _turning_points(self, ell, noise, e, s, lo, hi):
        """Widen [lo, hi] around interior extrema of ell (sign changes of its increments beyond
        their rounding ``noise``): ell is scanned on 64 points across the cells holding the
        extremum, then on 64 points around the best one (missing it by O((width/4096)^2))."""
        with np.errstate(invalid="ignore"):   # (inf - inf at cells outside both supports)
            d = np.diff(ell)
            sign = np.where(np.abs(d) > noise[:-1] + noise[1:], np.sign(d), 0.0)
        nz_idx = np.flatnonzero(sign)
        change = np.flatnonzero(sign[nz_idx[:-1]] != sign[nz_idx[1:]])
        if not change.size:
            return
        first, last = nz_idx[change], nz_idx[change + 1]          # cells first..last hold it
        direction = sign[first][:, None]                             # +1: a maximum
        a, b = e[first], e[last + 1]
        t = np.linspace(0.0, 1.0, 64)
        rows = np.arange(len(a))
        extreme = np.full(len(a), -np.inf)
        for _ in range(2):
            x = a[:, None] + (b - a)[:, None] * t
            value = direction * self.ell(x, s)
            best = np.argmax(value, axis=1)
            extreme = np.maximum(extreme, value[rows, best])
            step = (b - a) / 63
            a, b = x[rows, best] - step, x[rows, best] + step
        for f, l, sgn, v in zip(first, last, direction[:, 0], extreme):
            if sgn > 0:
                hi[f:l + 1] = np.maximum(hi[f:l + 1], v)
            else:
                lo[f:l + 1] = np.minimum(lo[f:l + 1], -v)


# ------------------------------------------------------------------------------------------------
# sums: H1/H0 pmfs on a lattice (o + k) h
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lattices:
    """Garbled observations of partial sums, one per row b (one lam each), on lattices
    l = (o_b + k) h_b, k = 0 .. width - 1: masses m[b, 0] under H1 and m[b, 1] under H0, plus a
    rest outcome with masses rest[b] = (H1, H0) and the infinite sums, as log_finite[b] = log of
    (1 - H1 mass of L = +inf, 1 - H0 mass of L = -inf); r2 = sum of squared martingale ranges,
    bias = bound on the accumulated within-cell KL (see the module docstring)."""

    h: np.ndarray
    o: np.ndarray
    m: np.ndarray
    rest: np.ndarray
    r2: np.ndarray
    bias: np.ndarray
    log_finite: np.ndarray

    @property
    def infinite(self) -> np.ndarray:
        """(H1 mass of L = +inf, H0 mass of L = -inf) per row."""
        return -np.expm1(self.log_finite)

    @property
    def width(self) -> int:
        return self.m.shape[-1]


def _hat(positions: np.ndarray, p: np.ndarray, q: np.ndarray):
    """Split masses at real lattice positions x onto floor(x), floor(x)+1 keeping the mean.
    Returns (offset, p, q) on consecutive integers from offset."""
    j = np.floor(positions)
    f = positions - j
    o = int(j.min())
    idx = (j - o).astype(np.int64)
    n = int(idx.max()) + 2
    both = np.concatenate([idx, idx + 1])
    wp = np.concatenate([p * (1 - f), p * f])
    wq = np.concatenate([q * (1 - f), q * f])
    return o, np.bincount(both, wp, n), np.bincount(both, wq, n)


def _stack(rows) -> _Lattices:
    """Rows (h, o, masses (2, n), rest (H1, H0), r2, bias, log_finite (H1, H0)) as one _Lattices,
    zero-padded to the widest row."""
    h, o, masses, rest, r2, bias, log_finite = zip(*rows)
    m = np.zeros((len(rows), 2, max(x.shape[1] for x in masses)))
    for b, x in enumerate(masses):
        m[b, :, :x.shape[1]] = x
    return _Lattices(np.array(h), np.array(o, dtype=np.int64), m, np.array(rest), np.array(r2), np.array(bias),
                     np.array(log_finite))


def _rescale(law: _Lattices, h: np.ndarray) -> _Lattices:
    """Lattice steps law.h -> h (>= law.h, per row), mean-preserving hat split; a row whose step
    grows gains one martingale range h."""
    grow = h > law.h
    if not grow.any():
        return law
    ratio = h / law.h
    if grow.all() and np.all(ratio == ratio[0]) and ratio[0] == 2.0 ** round(math.log2(ratio[0])):
        return _coarsen(law, int(ratio[0]))
    rows = []
    for b in range(len(h)):
        row = (law.h[b], law.o[b], law.m[b], law.rest[b], law.r2[b], law.bias[b], law.log_finite[b])
        if grow[b]:
            o, p, q = _hat((law.o[b] + np.arange(law.width)) * (law.h[b] / h[b]), *law.m[b])
            row = (h[b], o, np.stack([p, q]), law.rest[b], law.r2[b] + h[b] * h[b], law.bias[b], law.log_finite[b])
        rows.append(row)
    return _stack(rows)


def _coarsen(law: _Lattices, m: int) -> _Lattices:
    """Lattice steps h -> m h in every row (m a power of 2), mean-preserving split: index
    a = j m + r goes to j and j + 1 with weights 1 - r/m and r/m. One martingale range m h."""
    j0, start = np.divmod(law.o, m)
    rows, n = len(law.o), law.width
    blocks = -(-(int(start.max()) + n) // m)
    padded = np.zeros((rows, 2, blocks * m))
    for b, a in enumerate(start):
        padded[b, :, a:a + n] = law.m[b]
    padded = padded.reshape(rows, 2, blocks, m)
    frac = np.arange(m) / m
    out = np.zeros((rows, 2, blocks + 1))
    out[..., :-1] = padded @ (1.0 - frac)
    out[..., 1:] += padded @ frac
    h = law.h * m
    return _Lattices(h, j0, out, law.rest, law.r2 + h * h, law.bias, law.log_finite)


def _trim(law: _Lattices, tau: float) -> _Lattices:
    """Move the end cells holding at most tau of H1 mass per side into the rest outcome: each row
    keeps a window of a common width (the widest row's) over its cells above tau."""
    p, n = law.m[:, 0], law.width
    lo = np.count_nonzero(np.cumsum(p, axis=1) <= tau, axis=1)
    hi = n - np.count_nonzero(np.cumsum(p[:, ::-1], axis=1) <= tau, axis=1)
    peak = np.argmax(p, axis=1)
    lo, hi = np.minimum(lo, peak), np.maximum(hi, peak + 1)
    width = int((hi - lo).max())
    start = np.minimum(lo, n - width)
    m, rest = np.empty(law.m.shape[:2] + (width,)), law.rest.copy()
    for b, a in enumerate(start):
        m[b] = law.m[b, :, a:a + width]
        rest[b] += law.m[b, :, :a].sum(-1) + law.m[b, :, a + width:].sum(-1)
    return replace(law, o=law.o + start, m=m, rest=rest)


def _convolve(a: _Lattices, b: _Lattices) -> _Lattices:
    """Laws of the sums of independent a and b, row by row (same steps): linear convolution by
    real FFT (``workers`` threads, one row each: the bytes do not depend on their number). The sum
    is infinite where a term is (under H1 only +inf occurs, under H0 only -inf), else the rest
    where a term is: 1 - i = (1 - i_a)(1 - i_b) (added as logs), rest = (1 - i_a) r_b + r_a (1 - i_b)
    - r_a r_b."""
    n = a.width + b.width - 1
    nf = sfft.next_fast_len(n, real=True)
    workers = torch.get_num_threads()
    fa = sfft.rfft(a.m, nf, workers=workers)
    fb = fa if b is a else sfft.rfft(b.m, nf, workers=workers)
    m = np.maximum(sfft.irfft(fa * fb, nf, workers=workers)[..., :n], 0.0)
    rest = np.maximum(np.exp(a.log_finite) * b.rest + a.rest * np.exp(b.log_finite) - a.rest * b.rest, 0.0)
    return _Lattices(a.h, a.o + b.o, m, rest, a.r2 + b.r2, a.bias + b.bias, a.log_finite + b.log_finite)


# ------------------------------------------------------------------------------------------------
# the ray
# ------------------------------------------------------------------------------------------------


class ExactRay:
    """Deterministic law of L along delta = lam * v for i.i.d. noise.

    ``groups``: sequence of (count, magnitude) (or an object with ``.groups``).
    ``tol``: additive probability slack of the numeric bounds (Azuma delta = tol/2, trimmed
    tails 1e-3 tol per side and step). ``method``: "auto" (closed forms where they exist) or
    "generic" (cells for one coordinate, FFT otherwise). ``grid``: lattice points of the FFT path
    (cells per coordinate: 2 grid).
    """

    def __init__(self, noise, groups, *, tol: float = 1e-9, method: str = "auto", grid: int = 1 << 15):
        marg, declared = _marginal(noise)
        if marg is None:
            raise ValueError(f"the exact backend needs i.i.d. noise, got {noise!r}")
        method = check_choice("method", method, {"auto", "generic"})
        if not 0 < tol < 0.01:
            raise ValueError(f"tol must lie in (0, 0.01), got {tol!r}")
        if int(grid) < 64:
            raise ValueError(f"grid must be >= 64, got {grid!r}")
        counts, mags = _parse_groups(noise, groups)
        live = (counts > 0) & (mags != 0)
        self.noise, self.marg, self.tol, self.grid, self.method = noise, marg, float(tol), int(grid), method
        # i.i.d. coordinates: groups of equal shifts are one group (fewer convolutions), in any order
        self.mags, where = np.unique(mags[live], return_inverse=True)   # signed unless coordinatewise symmetric
        self.counts = np.bincount(where.reshape(-1), weights=counts[live], minlength=self.mags.size).astype(np.int64)
        self.k = int(self.counts.sum())
        self.l2 = float(np.sqrt(np.sum(self.counts * self.mags**2)))
        scale = noise.sigma or noise.scale or _spread(marg)
        self.scale = scale / self.l2 if self.l2 > 0 else math.inf   # lam with ||delta||_2 = sigma
        self.median = 0.0 if noise.symmetric else float(marg.median())
        self.path = _path(noise, self.k, method)
        #: "rigorous" (closed forms; numeric bounds with a monotone ratio on the whole line, from a
        #: declared marginal) or "numerical" (the turning points of ell, the first crossing of p*
        #: or the marginal itself are computed numerically; on a bounded support the rounding of
        #: the nodes at its edges, ~ulp x density per coordinate, is not accounted for)
        support = _support(noise, marg)
        proven = self.path == "one-dim" or (noise.log_concave and support == (-math.inf, math.inf))
        self.band = "rigorous" if self.path in ("gaussian", "uniform") or (declared and proven) else "numerical"
        if self.path in ("cells", "fft"):
            self._cells = _Cells(marg, self.median, 2 * self.grid, noise.log_concave, support)

    # -- closed forms --------------------------------------------------------------------------

    def _shift(self, lams: np.ndarray) -> np.ndarray:
        """Equivalent one-dimensional shift: ||delta||_2 for Gaussian, the signed shift of the one
        coordinate otherwise."""
        if self.path == "gaussian" or self.k == 0:
            return np.abs(lams) * self.l2
        return np.abs(lams) * self.mags[0]

    def _uniform_log_pi(self, lams: np.ndarray) -> np.ndarray:
        """log P_H1(L = 0) = sum_j c_j log(1 - |s_j|/(2a))_+, a = the cube's half width (its scale)."""
        frac = np.minimum(np.abs(lams)[..., None] * np.abs(self.mags) / (2 * self.noise.scale), 1.0)
        with np.errstate(divide="ignore"):
            return np.sum(self.counts * np.log1p(-frac), axis=-1)

    def _closed_tail(self, lams: np.ndarray) -> np.ndarray:
        """1 - p* = G(1/2). One coordinate with a monotone ratio: the NP sets are {e > x} for a
        shift s > 0, G(1/2) = sf(median + s), and {e < x} for s < 0, G(1/2) = cdf(median - |s|)."""
        if self.path == "uniform":
            return np.maximum(0.5 * np.expm1(math.log(2.0) + self._uniform_log_pi(lams)), 0.0)
        shift = self._shift(lams)
        return np.where(shift >= 0, self.marg.sf(self.median + np.abs(shift)),
                        self.marg.cdf(self.median - np.abs(shift)))

    def _closed_ginv(self, lams: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ginv(y) = sf(isf(y) - s) for s >= 0 and cdf(ppf(y) + |s|) for s < 0."""
        if self.path == "uniform":
            return np.minimum(1.0, -np.expm1(self._uniform_log_pi(lams)) + y)
        shift = self._shift(lams)
        return np.where(shift >= 0, self.marg.sf(self.marg.isf(y) - np.abs(shift)),
                        self.marg.cdf(self.marg.ppf(y) + np.abs(shift)))

    # -- numeric paths --------------------------------------------------------------------------

    def _bounds(self, lams: np.ndarray) -> list[_Bounds]:
        """The bounds at each lam (numeric paths); the FFT path computes the lams in batches."""
        out = [_exact_bounds() if lam == 0 else None for lam in lams]
        live = [i for i, lam in enumerate(lams) if lam != 0]
        if not live:
            return out
        if self.path == "cells":
            for i, (p, q, _, hi, (p_rest, q_rest), q_minus) in zip(live, self._cells.at(np.abs(lams[live]) * self.mags[0])):
                garbled = _ratio_curve(np.append(p, [p_rest, 0.0]), np.append(q, [q_rest, q_minus]))
                order = np.argsort(-hi, kind="stable")
                upper_law = _Curve(np.append(p_rest, p[order]), np.append(0.0, _tilt(p, hi)[order]))
                out[i] = _Bounds(garbled, upper_law, garbled, 0.0, 0.0, _summation_allowance(p.size))
            return out
        batch = max(1, BATCH_CELLS // self.grid)
        for chunk in range(0, len(live), batch):
            rows = live[chunk:chunk + batch]
            law = None
            for mag, c in zip(self.mags, self.counts):   # signed shifts: s < 0 is a shift to the left
                part = self._power(self._first_terms(np.abs(lams[rows]) * mag), int(c))
                law = part if law is None else self._combine(law, part)
            for row, i in enumerate(rows):
                out[i] = self._lattice_bounds(law, row)
        return out

    def _first_terms(self, shifts: np.ndarray) -> _Lattices:
        """One coordinate on a lattice per shift: cells at r = log(p/q), hat-split (mean kept).
        Cells where ell moves by more than two lattice steps are cut first, so that the ranges w_i
        stay ~ h."""
        rows = []
        for p, q, lo, hi, (p_rest, q_rest), q_minus in self._cells.at(shifts, steps=self.grid - 2):
            keep = (p > 0) & (q > 0) & np.isfinite(lo) & np.isfinite(hi)
            # cells outside the H0 support (ell = +inf) or the H1 support (-inf): the infinite sum
            with np.errstate(divide="ignore"):   # -inf: every draw is infinite
                log_finite = np.log1p(-np.minimum([float(p[q == 0].sum()), q_minus + float(q[p == 0].sum())], 1.0))
            other = ~keep & (p > 0) & (q > 0)   # ell unbounded on the cell: the rest
            if self._cells.bounded and keep.any():
                # where the density vanishes at an edge, ell grows without bound towards it: the
                # cells of largest |ell| holding at most the trimming budget of H1 mass join the rest
                # (ties stay: a flat ell, as on a cube, loses nothing)
                at = np.flatnonzero(keep)
                size = np.maximum(np.abs(lo[at]), np.abs(hi[at]))
                order = np.argsort(-size, kind="stable") if np.ptp(size) > 0 else at[:0]
                within = np.cumsum(p[at[order]]) <= 1e-3 * self.tol
                if within.any() and not within.all():
                    extreme = at[order[within & (size[order] > size[order[np.argmin(within)]])]]
                    keep[extreme], other[extreme] = False, True
            p_rest, q_rest = p_rest + float(p[other].sum()), q_rest + float(q[other].sum())
            if not keep.any():   # the two laws do not overlap on finite cells: nothing on the lattice
                rows.append((1.0, 0, np.zeros((2, 1)), (p_rest, q_rest), 0.0, 0.0, log_finite))
                continue
            with np.errstate(divide="ignore"):
                r = np.clip(np.log(p[keep]) - np.log(q[keep]), lo[keep], hi[keep])
            w_cap = float(np.max(hi[keep] - lo[keep]))
            span = float(r.max() - r.min())
            # a step of at least 2^-40 of the largest |r| keeps the lattice indices of sums far
            # from int64 overflow (an atom, or a flat ell up to rounding, is one or two points)
            h = max(span / (self.grid - 2), max(float(np.abs(r).max()), 1.0) * 2.0**-40)
            o, pp, qq = _hat(r / h, p[keep], q[keep])
            rows.append((h, o, np.stack([pp, qq]), (p_rest, q_rest), h * h + w_cap * w_cap, w_cap * w_cap / 8,
                         log_finite))
        return _stack(rows)

    def _combine(self, a: _Lattices, b: _Lattices) -> _Lattices:
        """Sums of independent a and b: common steps (the finer split onto the coarser), FFT
        convolution, tails trimmed into the rest, lattices coarsened by a power of 2 to <= grid."""
        if a is not b:
            h = np.maximum(a.h, b.h)
            a, b = _rescale(a, h), _rescale(b, h)
        law = _trim(_convolve(a, b), 1e-3 * self.tol)
        if law.width > self.grid:
            law = _rescale(law, law.h * (1 << math.ceil(math.log2((law.width - 1) / (self.grid - 2)))))
        return law

    def _power(self, law: _Lattices, c: int) -> _Lattices:
        """c-fold sums by binary powering."""
        out = None
        while True:
            if c & 1:
                out = law if out is None else self._combine(out, law)
            c >>= 1
            if not c:
                return out
            law = self._combine(law, law)

    def _lattice_bounds(self, law: _Lattices, row: int) -> _Bounds:
        p, q = law.m[row]
        p_rest, q_rest = law.rest[row]
        p_plus, q_minus = law.infinite[row]
        # FFT round-off is absolute (~eps of the largest mass): an H0 mass below the floor may be
        # an underflowed positive one, and raising H0 masses only raises G_c (still >= G)
        q = np.maximum(q, FFT_FLOOR * q.max())
        garbled = _ratio_curve(np.append(p, [p_rest, p_plus, 0.0]), np.append(q, [q_rest, 0.0, q_minus]))
        ell = (law.o[row] + np.arange(law.width)) * law.h[row]
        lattice = _Curve(np.append(p_rest + p_plus, p[::-1]), np.append(0.0, _tilt(p, ell)[::-1]))
        delta = 0.5 * self.tol
        eta = math.sqrt(law.r2[row] * math.log(1 / delta) / 2) + law.bias[row]
        return _Bounds(garbled, lattice, lattice, eta, delta, _summation_allowance(p.size))

    # -- public ---------------------------------------------------------------------------------

    def coarser(self, grid: int) -> ExactRay:
        """The same ray on a lattice of at most ``grid`` points (itself where it has no more)."""
        if self.path != "fft" or self.grid <= grid:
            return self
        return ExactRay(self.noise, list(zip(self.counts.tolist(), self.mags.tolist())), tol=self.tol,
                        method=self.method, grid=grid)

    def critical_tail(self, lambdas):
        """(estimate, lower, upper) of 1 - p*(lam), each shaped like ``lambdas``."""
        lams = np.asarray(lambdas, dtype=float)
        if self.path in ("gaussian", "one-dim", "uniform"):
            t = np.asarray(self._closed_tail(lams), dtype=float)
            return _widen(t, t, t, 0.5)
        out = np.array([b.tail() for b in self._bounds(lams.reshape(-1))]).reshape(-1, 3)
        return tuple(out[:, i].reshape(lams.shape) for i in range(3))

    def critical_pa(self, lambdas):
        """(estimate, lower, upper) of p*(lam) = P_H0(S) for the randomized lower set S with
        P_H1(S) = 1/2; lower <= p* <= upper rigorously (up to rounding)."""
        est, lo, hi = self.critical_tail(lambdas)
        return 1.0 - est, 1.0 - hi, 1.0 - lo

    def upper_set_h1(self, lambdas, q):
        """(estimate, lower, upper) of Ginv(q): the H1 mass of the randomized upper NP set whose
        H0 mass is q (broadcast over lambdas and q)."""
        lams, q = np.broadcast_arrays(np.asarray(lambdas, dtype=float), np.asarray(q, dtype=float))
        if self.path in ("gaussian", "one-dim", "uniform"):
            u = np.asarray(self._closed_ginv(lams, q), dtype=float)
            return _widen(u, u, u, 1.0)
        est, lo, hi = (np.empty(lams.shape) for _ in range(3))
        unique = np.unique(lams)
        for lam, bounds in zip(unique, self._bounds(unique)):
            at = lams == lam
            est[at], lo[at], hi[at] = bounds.ginv(q[at])
        return est, lo, hi

    def margin(self, lambdas, p_a, p_b):
        """(estimate, lower, upper) of K = P_H1(S_A) - P_H1(S_B) = 1 - Ginv(1 - p_A) - Ginv(p_B),
        broadcast over lambdas, p_a, p_b."""
        lams, p_a, p_b = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (lambdas, p_a, p_b)))
        lam2 = np.tile(lams.reshape(-1), 2)
        est, lo, hi = (x.reshape((2,) + lams.shape) for x in
                       self.upper_set_h1(lam2, np.concatenate([1.0 - p_a.reshape(-1), p_b.reshape(-1)])))
        return 1.0 - est[0] - est[1], 1.0 - hi[0] - hi[1] - ROUND_ABS, 1.0 - lo[0] - lo[1] + ROUND_ABS


# ------------------------------------------------------------------------------------------------
# radius along the ray
# ------------------------------------------------------------------------------------------------


def radius_bounds(ray: ExactRay, p_a, vnorm: float = 1.0, *, rtol: float = 1e-13, points: int | None = None,
                  band_share: float = 0.05, rounds: int = 100, cap=None):
    """(radius, lower, upper) along v at each p_A (binary), times ``vnorm`` = ||v||_p.

    radius = inf{lam : p*(lam) >= p_A}; lower = inf{lam : upper p* >= p_A}, upper =
    inf{lam : lower p* >= p_A}. The three curves of 1 - p* are scanned on a geometric grid of
    ``points`` scales (after an exponential search); every later evaluation serves all three
    curves and every p_A. Each round predicts the crossings by inverse cubic interpolation of
    log(1 - p*) against log lam through the points around each first-crossing bracket, and
    evaluates just outside the predicted band: at the lower curve's crossing times e^-eps and
    the upper curve's times e^eps, eps = max(rtol, ``band_share`` x the predicted band width) (on
    the FFT path the upper curve's points are computed on a coarser lattice, UPPER_GRID).
    A point on the wrong side narrows the bracket for the next prediction; a bracket that does not
    settle is bisected. The lower (upper) end is the left (right) end of a first-crossing bracket,
    so lower <= radius <= upper holds whenever the crossing of the scan is the first one (always,
    for p* increasing in lam, e.g. log-concave noise); the prediction only decides how close to the
    crossing the ends lie (within 2 eps, or the bracket width where rounds run out). The estimate
    is the predicted crossing of the middle curve, kept inside the band (``rounds=0``: read off the
    scan, as a screening run does). ``cap`` (radii, one per p_A): a p_A whose lower end already
    exceeds its cap is refined no further (another direction's upper end lies below it, so this
    one can change neither the minimum nor its band).
    """
    p_a = np.atleast_1d(np.asarray(p_a, dtype=float))
    q = 1.0 - p_a
    out = np.zeros((3, p_a.size))
    todo = np.flatnonzero(q < 0.5)
    if todo.size == 0 or not math.isfinite(ray.scale):
        out[:, todo] = math.inf
        return tuple(out * vnorm)
    qs = q[todo]
    caps = None if cap is None else np.broadcast_to(np.asarray(cap, dtype=float), p_a.shape)[todo] / vnorm

    def tails(lams):
        return np.stack(ray.critical_tail(np.asarray(lams, dtype=float)))   # (3, n): est, lo, hi

    upper_ray = ray.coarser(UPPER_GRID)

    def upper_tails(lams):   # the upper curve alone, on a coarser lattice (NaN: not evaluated)
        values = np.stack(upper_ray.critical_tail(np.asarray(lams, dtype=float)))
        if upper_ray is not ray:
            values[:2] = np.nan
        return values

    lo_end = hi_end = ray.scale
    for _ in range(40):       # all three curves above every target at lo_end
        if tails([lo_end])[1, 0] > qs.max():
            break
        lo_end /= 4
    for _ in range(40):       # all three curves at or below every target at hi_end, if reachable
        if tails([hi_end])[2, 0] <= qs.min():
            break
        hi_end *= 4
    lams = np.geomspace(lo_end, hi_end, points or int(np.clip(qs.size, 32, 64)))
    values = tails(lams)                                                  # (3, n)
    tol = math.log1p(rtol)
    stuck = np.zeros((2, qs.size), dtype=np.int64)
    for _ in range(rounds):
        pred, xa, xb, found = _brackets(np.log(lams), values, qs)
        width = np.where(found[1] & found[2], pred[2] - pred[1], 0.0)
        eps = np.maximum(tol, band_share * np.maximum(width, 0.0))
        # where the lower and upper ends should lie, and whether they lie there yet (the middle
        # curve needs no points of its own: its bracket lies inside [lower, upper])
        goal = np.stack([pred[1] - eps, pred[2] + eps])
        need = (found & (xb - xa > tol))[1:] & np.stack([xa[1] < pred[1] - 2 * eps, xb[2] > pred[2] + 2 * eps])
        if caps is not None:   # settled, or (the upper end) predicted to settle with the lower end
            need &= ~(np.exp(np.stack([xa[1], goal[0]])) * (1 - ROUND_REL) > caps)
        if not need.any():
            break
        stuck = np.where(need, stuck + 1, 0)
        a, b = xa[1:], xb[1:]
        proposal = np.where((goal > a) & (goal < b) & (stuck % 3 != 0), goal, 0.5 * (a + b))
        lower, upper = (np.exp(np.unique(proposal[i][need[i]])) for i in range(2))
        lams = np.concatenate([lams, lower, upper])
        values = np.concatenate([values, tails(lower), upper_tails(upper)], axis=1)
    pred, xa, xb, found = _brackets(np.log(lams), values, qs)
    res = np.full((3, qs.size), math.inf)
    res[0] = np.where(found[0], np.exp(np.clip(pred[0], xa[0], xb[0])), math.inf)
    res[1] = np.where(found[1], np.exp(xa[1]), math.inf)
    res[2] = np.where(found[2], np.exp(xb[2]), math.inf)
    out[:, todo] = res
    est, lo, hi = out * vnorm
    lo, hi = lo * (1 - ROUND_REL), hi * (1 + ROUND_REL)
    # the three crossings are located separately: keep the estimate inside its own band
    return np.clip(est, np.minimum(lo, hi), np.maximum(lo, hi)), lo, hi


def _brackets(x: np.ndarray, values: np.ndarray, qs: np.ndarray):
    """:func:`_crossing_brackets` of each curve over the points where it was evaluated (values
    NaN elsewhere: the upper bounds from a coarser lattice have no estimate or lower bound)."""
    parts = [_crossing_brackets(x[ok], values[c:c + 1, ok], qs)
             for c, ok in enumerate(~np.isnan(values))]
    return tuple(np.concatenate(arrays) for arrays in zip(*parts))


def _crossing_brackets(x: np.ndarray, values: np.ndarray, qs: np.ndarray):
    """First-crossing brackets of three tail curves at every target, and predicted crossings.

    ``x``: log lam (n,), unsorted; ``values``: the curves there (3, n); ``qs``: targets (J,).
    Returns (predicted log-lam crossing, bracket left end, bracket right end, found), each (3, J):
    xa is the last point before the first one with value <= q (xb). The
    prediction interpolates log(T/q) = 0 by inverse cubic through the two points on each side
    where those four are finite and monotone, else by the secant, else at the bracket's middle.
    """
    order = np.argsort(x, kind="stable")
    x, values = x[order], values[:, order]
    n = x.size
    below = values[:, :, None] <= qs[None, None, :]                         # (3, n, J)
    found = below.any(1)
    first = np.maximum(np.argmax(below, axis=1), 1)                       # (3, J); values[:, 0] > q
    ia, ib = first - 1, first
    xa, xb = x[ia], x[ib]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.log(values)[:, :, None] - np.log(qs)[None, None, :]        # (3, n, J), > 0 before
    rows, cols = np.arange(len(values))[:, None], np.arange(qs.size)[None, :]
    idx = np.stack([np.clip(ia - 1, 0, n - 1), ia, ib, np.clip(ib + 1, 0, n - 1)])   # (4, 3, J)
    fx = f[rows, idx, cols]                                                # (4, 3, J)
    xx = x[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        secant = xb - fx[2] * (xb - xa) / (fx[2] - fx[1])
        ok_cubic = (np.isfinite(fx).all(0) & (np.diff(fx, axis=0) < 0).all(0)
                    & (ia >= 1) & (ib <= n - 2))
        cubic = np.zeros_like(xa)
        for i in range(4):
            term = xx[i]
            for j in range(4):
                if j != i:
                    term = term * fx[j] / (fx[j] - fx[i])
            cubic = cubic + np.where(ok_cubic, term, 0.0)
    pred = np.where(ok_cubic & (cubic > xa) & (cubic < xb), cubic, secant)
    pred = np.where(np.isfinite(pred) & (pred > xa) & (pred < xb), pred, 0.5 * (xa + xb))
    return pred, xa, xb, found


class ExactRayScores:
    """:class:`ExactRay` as a ray statistic of :mod:`unicr.boundary` (torch in and out, like
    :class:`unicr.statistics.MonteCarloRay`): ``critical`` gives z = Phi^-1(p*(lam)), ``scores``
    s = Phi^-1(T(1 - p_A)) + Phi^-1(T(p_B)) with T = :meth:`ExactRay.upper_set_h1`, ``margin`` K;
    each returns (estimate, lower, upper)."""

    def __init__(self, noise, direction, **options):
        self.ray = ExactRay(noise, direction, **options)

    def critical(self, lams: torch.Tensor):
        est, lo, hi = self.ray.critical_tail(lams.detach().cpu().numpy())
        return tuple(torch.as_tensor(-sc.ndtri(t), dtype=lams.dtype, device=lams.device)
                     for t in (est, hi, lo))

    def scores(self, lams: torch.Tensor, p_a: torch.Tensor, p_b: torch.Tensor):
        j = p_a.numel()
        q = np.concatenate([1.0 - p_a.detach().cpu().numpy(), p_b.detach().cpu().numpy()])
        u = self.ray.upper_set_h1(lams.detach().cpu().numpy()[:, None], q[None, :])   # (G, 2J) each
        return tuple(torch.as_tensor(sc.ndtri(x[:, :j]) + sc.ndtri(x[:, j:]), dtype=lams.dtype,
                                     device=lams.device) for x in u)

    def margin(self, lams: torch.Tensor, p_a, p_b):
        """K = P_H1(S_A) - P_H1(S_B), each (G, J) for lams (G,) and p_a, p_b (J,)."""
        p_a, p_b = (torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu().numpy() for x in (p_a, p_b))
        out = self.ray.margin(lams.detach().cpu().numpy()[:, None], p_a[None, :], p_b[None, :])
        return tuple(torch.as_tensor(x, dtype=lams.dtype, device=lams.device) for x in out)
