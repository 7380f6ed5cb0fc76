"""Noise distributions for randomized smoothing, in torch.

Convention: ``sigma`` is the per-coordinate standard deviation, sigma^2 = E[eps_i^2]. Each
family also has its natural ``scale`` (Gaussian: sigma; Laplace: b; uniform: the half width a;
general normal: alpha; Lomax, uniform ball, l_inf- and l2-exponential: lambda), and the relation
between the two lives in one place, the family's ``sigma_per_scale``. Families without a finite
variance (Cauchy, heavy Lomax, Student-t with nu <= 2) take ``scale`` only and say so.

Every noise exposes exact sampling (``sample``) and an exact log-density (``log_prob``) over R^d.

**A noise declares what it is.** The engine takes a shortcut only where the noise declares the
property behind it; an undeclared property is unknown and takes the general path:

=========================== ======================================================= ==========
declaration                  meaning                                                 unknown
=========================== ======================================================= ==========
``iid``                      mu(e) = prod_i mu_1(e_i) (``IIDNoise``)                   False
``symmetric``                mu(-e) = mu(e): L under H1 =d -L under H0, +-v agree      False
``coordinatewise_symmetric`` mu unchanged by flipping the sign of any one coordinate   False
``exchangeable``             mu unchanged by permuting coordinates                     False
``log_concave``              log mu concave: monotone ratio in one dimension          False
``support``                  per-coordinate (lower, upper) of the support            None
``marginal()``               the 1-D law as a frozen scipy.stats twin (i.i.d. only)    computed*
``ray_log_ratio``            a sufficient statistic along a ray                       direct
``ray_sampler``              exact draws of that statistic (O(n), not O(n k))         None
``closed_form``              "gaussian" or "uniform": the exact backend's closed forms  None
=========================== ======================================================= ==========

(*) An i.i.d. noise without a declared marginal has one computed from its own
``log_prob_coords`` by quadrature (``IIDNoise.numeric_marginal``, :mod:`unicr.marginal`); the
deterministic backend then labels its bands "numerical".

A subclass that redefines the law (``sample``, ``log_prob``, ``log_ratio`` or their ``*_coords``
versions) without re-declaring a property loses it (``Noise.__init_subclass__``): a subclass of
``Gaussian`` with another density never inherits the Gaussian shortcuts.

Samplers draw only through the ``generator`` argument: the same seed gives the same bytes.
"""
from __future__ import annotations

import functools
import inspect
import math
import weakref
from typing import Callable

import mpmath
import numpy as np
import scipy.special as sc
import scipy.stats as st
import torch

from .errors import check_choice, check_dim, check_positive
from .rays import RayFn, Sampler, direct_ray, exit_ray, gaussian_ray, linf_ray, log_diff, radial_ray

__all__ = [
    "Noise", "IIDNoise", "DistributionNoise", "IIDDistributionNoise", "noise", "noise_names", "register_noise",
    "standard_gamma",
    "Gaussian", "Laplace", "Uniform", "GeneralNormal", "Cauchy", "Lomax", "HyperbolicSecant",
    "Logistic", "StudentT", "GaussianLaplace", "ExponentialMixture",
    "UniformBall", "LinfExp", "L2Exp",
]

UNBOUNDED = (-math.inf, math.inf)
#: IIDNoise.numeric_marginal, one per noise object (kept off the object, which stays picklable)
_NUMERIC_MARGINALS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

#: methods that define a law; redefining one drops every undeclared property below
_LAW = ("sample", "log_prob", "log_ratio", "sample_coords", "log_prob_coords", "log_ratio_coords")
#: properties and shortcuts that must be declared by the class that defines the law
_DECLARED = ("symmetric", "coordinatewise_symmetric", "exchangeable", "log_concave", "support",
             "marginal", "ray_log_ratio", "ray_sampler", "compact_rays", "closed_form")


class Noise:
    """A noise law mu on R^d.

    Attributes: ``name``, ``dim``, ``sigma`` (per-coordinate std, ``None`` without a variance),
    ``scale`` (the family's natural scale, ``None`` where it has none), ``params`` (for reports),
    and the declarations of the module docstring, each False/None (unknown) unless the family
    declares it. Subclasses implement ``sample`` and ``log_prob``; ``log_ratio`` may be overridden
    where a closed form is more exact.
    """

    name: str = "noise"
    _generic = True           # the safe defaults of _DECLARED are read from here
    iid: bool = False
    symmetric: bool = False
    coordinatewise_symmetric: bool = False
    exchangeable: bool = False
    log_concave: bool = False
    support: tuple[float, float] | None = None
    compact_rays: bool = False
    closed_form: str | None = None
    scale: float | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_generic") or not any(name in cls.__dict__ for name in _LAW):
            return
        generic = next(base for base in cls.__mro__[1:] if base.__dict__.get("_generic"))
        for name in _DECLARED:
            if name not in cls.__dict__:
                setattr(cls, name, getattr(generic, name))

    def __init__(self, dim: int, sigma: float | None, params: dict):
        self.dim = check_dim(dim)
        self.sigma = sigma
        self.params = dict(params)

    def sample(self, n: int, *, generator: torch.Generator | None = None, device=None,
               dtype=torch.float64) -> torch.Tensor:
        """``n`` exact draws, shape (n, dim)."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log mu(x) for x of shape (..., dim); -inf outside the support."""
        raise NotImplementedError

    def log_ratio(self, e: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """L_delta(e) = log mu(e - delta) - log mu(e), shape (...,).

        Defined wherever one of the two densities is positive (+-inf on the other side); in the
        dtype of ``e`` whatever the dtype of ``log_prob``.
        """
        return log_diff(self.log_prob(e - delta), self.log_prob(e)).to(e.dtype)

    def marginal(self):
        """The one-dimensional law as a frozen scipy.stats distribution (i.i.d. families only)."""
        raise NotImplementedError(f"{self.name} declares no one-dimensional marginal")

    def sample_support(self, n: int, k: int, *, generator=None, device=None, dtype=torch.float64):
        """Draws that the ray functions need for a direction supported on k coordinates:
        the whole vector (n, dim) here; i.i.d. families draw only the k coordinates."""
        return self.sample(n, generator=generator, device=device, dtype=dtype)

    def ray_log_ratio(self, u: torch.Tensor, v: torch.Tensor) -> RayFn:
        """L along lam * v for the H0 draws u (as from :meth:`sample_support`): a ray function."""
        return direct_ray(self.log_ratio, u, v)

    def ray_sampler(self, v: torch.Tensor, groups) -> Sampler | None:
        """Exact draws of a sufficient statistic of L along v (None: no shortcut declared)."""
        return None

    @classmethod
    def sigma_per_scale(cls, dim: int = 1, **shape) -> float | None:
        """sigma / scale for the family (None where the law has no variance or no scale)."""
        return None

    @classmethod
    def example(cls, dim: int = 1) -> "Noise":
        """A typical member, for generic tests and demonstrations (required shapes filled in)."""
        return cls(dim=dim)

    def describe(self) -> str:
        """Human-readable summary, e.g. ``laplace(sigma=1, dim=3072)``."""
        parts = [f"{k}={_fmt(v)}" for k, v in self.params.items() if v is not None]
        parts.append(f"dim={self.dim}")
        return f"{self.name}({', '.join(parts)})"

    def __repr__(self) -> str:
        return self.describe()


class IIDNoise(Noise):
    """Product noise mu(e) = prod_i mu_1(e_i), exchangeable by construction.

    Subclasses implement the one-dimensional law: ``sample_coords`` and ``log_prob_coords``; they
    may override ``log_ratio_coords`` where a closed form is more exact (atoms kept exact), and
    declare ``marginal`` (a scipy twin), ``symmetric`` and the rest where they hold.
    """

    _generic = True
    iid = True
    exchangeable = True

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64) -> torch.Tensor:
        """i.i.d. draws of the one-dimensional law, of the given shape."""
        raise NotImplementedError

    def log_prob_coords(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise log mu_1(x)."""
        raise NotImplementedError

    def log_ratio_coords(self, u: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Elementwise log mu_1(u - s) - log mu_1(u), in the dtype of ``u``."""
        return log_diff(self.log_prob_coords(u - shift), self.log_prob_coords(u)).to(u.dtype)

    def numeric_marginal(self):
        """The one-dimensional law computed from this noise's own ``log_prob_coords`` by adaptive
        quadrature (:class:`unicr.marginal.NumericMarginal`), for a family that declares no
        ``marginal()``; built once per noise object."""
        law = _NUMERIC_MARGINALS.get(self)
        if law is None:
            from .marginal import numeric_marginal
            law = _NUMERIC_MARGINALS[self] = numeric_marginal(self)
        return law

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        return self.sample_coords((n, self.dim), generator=generator, device=device, dtype=dtype)

    def sample_support(self, n, k, *, generator=None, device=None, dtype=torch.float64):
        return self.sample_coords((n, k), generator=generator, device=device, dtype=dtype)

    def log_prob(self, x):
        return self.log_prob_coords(x).sum(-1)

    def log_ratio(self, e, delta):
        return self.log_ratio_coords(e, delta).sum(-1)

    def ray_log_ratio(self, u, v):
        return direct_ray(lambda x, s: self.log_ratio_coords(x, s).sum(-1), u, v)


class DistributionNoise(Noise):
    """Any ``torch.distributions.Distribution`` over R^d, used as it is (``sample``/``log_prob``).

    Nothing is assumed: symmetry, exchangeability and the rest are unknown unless declared by
    keyword (e.g. ``symmetric=True``), and the engine samples H0 and H1 separately. torch's
    distributions draw from the global generator, so ``sample`` seeds a forked copy of it from
    ``generator`` and restores it afterwards: the caller's streams are untouched.
    """

    _DECLARABLE = ("symmetric", "coordinatewise_symmetric", "exchangeable", "log_concave")

    def __init__(self, distribution: torch.distributions.Distribution, name: str | None = None,
                 **declared: bool):
        if not callable(getattr(distribution, "log_prob", None)) or not callable(
                getattr(distribution, "sample", None)):
            raise ValueError("noise must be a known name or an object with sample() and log_prob() "
                             f"(a torch.distributions.Distribution); got {type(distribution).__name__}")
        shape = tuple(distribution.batch_shape) + tuple(distribution.event_shape)
        if len(shape) != 1:
            raise ValueError("noise distribution must have event (or batch+event) shape (d,), "
                             f"got {shape}")
        super().__init__(shape[0], None, {"distribution": type(distribution).__name__})
        _declare(self, declared, "a torch Distribution noise")
        self.distribution = distribution
        self.name = name or type(distribution).__name__
        try:
            var = distribution.variance
            self.sigma = float(torch.as_tensor(var, dtype=torch.float64).mean().sqrt())
        except (NotImplementedError, AttributeError):
            self.sigma = None
        if self.sigma is not None and not math.isfinite(self.sigma):
            self.sigma = None

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        return _draw(self.distribution, n, generator).to(device=device, dtype=dtype).reshape(n, self.dim)

    def log_prob(self, x):
        lp = _log_prob(self.distribution, x)
        if lp.shape == x.shape:  # a batch of independent 1-D laws (e.g. Normal(zeros(d), 1))
            lp = lp.sum(-1)
        return lp


class IIDDistributionNoise(IIDNoise):
    """A one-dimensional ``torch.distributions.Distribution`` mu_1 used i.i.d. over ``dim``
    coordinates: independence and exchangeability hold by construction; symmetry, log-concavity
    and the rest are unknown unless declared by keyword, as for :class:`DistributionNoise`.
    Seeding as for :class:`DistributionNoise`."""

    _DECLARABLE = ("symmetric", "log_concave")   # coordinatewise symmetry follows from symmetry

    def __init__(self, distribution: torch.distributions.Distribution, dim: int = 1,
                 name: str | None = None, **declared: bool):
        super().__init__(dim, None, {"distribution": type(distribution).__name__})
        _declare(self, declared, "a one-dimensional torch Distribution noise")
        self.coordinatewise_symmetric = self.symmetric
        self.distribution = distribution
        self.name = name or type(distribution).__name__
        try:
            var = float(distribution.variance)
            self.sigma = math.sqrt(var) if math.isfinite(var) else None
        except (NotImplementedError, AttributeError, TypeError, RuntimeError):
            self.sigma = None

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        shape = _as_size(shape)
        return _draw(self.distribution, math.prod(shape), generator).to(device=device, dtype=dtype).reshape(shape)

    def log_prob_coords(self, x):
        return _log_prob(self.distribution, x)


def _declare(noise, declared: dict, kind: str) -> None:
    """Set the keyword declarations of a wrapped torch Distribution (those in ``_DECLARABLE``)."""
    unknown = sorted(set(declared) - set(noise._DECLARABLE))
    if unknown:
        raise ValueError(f"unknown declaration {unknown[0]!r} for {kind}; allowed: {', '.join(noise._DECLARABLE)}")
    for key, value in declared.items():
        setattr(noise, key, bool(value))


def _log_prob(distribution, x: torch.Tensor) -> torch.Tensor:
    """log density of a torch Distribution, -inf outside its support (torch itself raises there, or
    without validation returns the formula's value); computed in the distribution's dtype. Points
    outside are evaluated at one fixed draw of the law and then masked. Where torch still raises
    (a TransformedDistribution validating its base distribution, while its own support says
    "real"), the base's support at the inverse transforms is masked too."""
    found = _parameter(distribution)
    if found is not None and found.ndim > 0 and found.device != x.device:
        raise ValueError(f"the torch Distribution's parameters are on {found.device} but the engine's draws on "
                         f"{x.device}: build the distribution with its parameters on the engine's device")
    y = x.to(found.dtype if found is not None else torch.get_default_dtype())
    inside = distribution.support.check(y)
    try:
        return _masked_log_prob(distribution, y, inside).to(x.dtype)
    except ValueError:
        if not isinstance(distribution, torch.distributions.TransformedDistribution):
            raise
    return _masked_log_prob(distribution, y, _base_inside(distribution, y, inside)).to(x.dtype)


def _masked_log_prob(distribution, y: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """log_prob at y where ``inside``, -inf elsewhere (evaluated there at one fixed draw)."""
    if bool(inside.all()):
        return distribution.log_prob(y)
    per_value = inside.unsqueeze(-1).expand_as(y) if inside.shape != y.shape else inside
    anchor = _draw(distribution, 1, torch.Generator().manual_seed(0))[0].to(y)
    lp = distribution.log_prob(torch.where(per_value, y, anchor.expand_as(y)))
    flags = per_value if lp.shape == y.shape else inside
    return torch.where(flags, lp, torch.full_like(lp, -math.inf))


def _base_inside(distribution, y: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """``inside`` (y in the distribution's own support), and the inverse transforms of y in the
    base distribution's support (over its event dimensions where it has them)."""
    x = y
    with torch.no_grad():
        for transform in reversed(distribution.transforms):
            x = transform.inv(x)
    base = distribution.base_dist.support.check(x)
    return inside & (base if base.shape == inside.shape else base.reshape(inside.shape + (-1,)).all(-1))


def _draw(distribution, n: int, generator) -> torch.Tensor:
    """``n`` draws of a torch Distribution; with a generator, from a forked copy of torch's global
    generator seeded from it (torch's distributions take no generator), restored afterwards."""
    if generator is None:
        return distribution.sample((n,))
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    found = _parameter(distribution)
    cuda = [found.device] if found is not None and found.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for dev in cuda:
            torch.cuda.default_generators[dev.index or 0].manual_seed(seed)
        return distribution.sample((n,))


def _parameter(distribution):
    """A distribution's first floating tensor parameter, looking into wrapped distributions
    (Independent, TransformedDistribution's base_dist); None without one."""
    for value in vars(distribution).values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value
        if isinstance(value, torch.distributions.Distribution):
            found = _parameter(value)
            if found is not None:
                return found
    return None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _check_weight(name: str, value) -> float:
    """A mixture weight, 0 <= value <= 1."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must satisfy 0 <= {name} <= 1, got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must satisfy 0 <= {name} <= 1, got {value!r}")
    return value


def _check_shape(name: str, value) -> float:
    """A required shape parameter, 0 < value < inf."""
    if value is None:
        raise ValueError(f"{name} is required: 0 < {name} < inf")
    return check_positive(name, value)


def _sigma_and_scale(family: str, sigma, scale, ratio: float | None, no_variance: str = ""):
    """(sigma, scale) from at most one of them; ``ratio`` = sigma/scale, ``None`` without variance.

    With neither given: sigma = 1 where a variance exists, else scale = 1.
    """
    if sigma is not None and scale is not None:
        raise ValueError(f"{family}: pass sigma or scale, not both")
    if ratio is None:
        if sigma is not None:
            raise ValueError(f"sigma is not applicable to {family}{no_variance}: it has no finite "
                             "variance; pass scale= (0 < scale < inf)")
        return None, check_positive("scale", 1.0 if scale is None else scale)
    if scale is not None:
        scale = check_positive("scale", scale)
        return scale * ratio, scale
    sigma = check_positive("sigma", 1.0 if sigma is None else sigma)
    return sigma, sigma / ratio


def _log_or_neginf(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


# --------------------------------------------------------------------------------------------
# generator-driven samplers
# --------------------------------------------------------------------------------------------


def _as_size(shape) -> tuple[int, ...]:
    return tuple(shape) if isinstance(shape, (tuple, list, torch.Size)) else (int(shape),)


def _rejection(n: int, propose, generator, device, dtype) -> torch.Tensor:
    """``n`` accepted draws: ``propose(m)`` gives (candidates, log acceptance threshold) and a
    candidate is kept when log U < threshold, U ~ U[0, 1). One vectorised round per loop."""
    out = torch.empty(n, device=device, dtype=dtype)
    pending = torch.arange(n, device=device)
    while pending.numel():
        value, threshold = propose(pending.numel())
        u = torch.rand(pending.numel(), generator=generator, device=device, dtype=dtype)
        accept = torch.log(u) < threshold
        out[pending[accept]] = value[accept]
        pending = pending[~accept]
    return out


def standard_gamma(shape_param, size, generator=None, device=None, dtype=torch.float64, *,
                   log: bool = False) -> torch.Tensor:
    """Gamma(shape_param, 1) draws of shape ``size`` through ``generator`` (Marsaglia-Tsang 2000).

    For shape alpha >= 1: d = alpha - 1/3, c = 1/sqrt(9d), x ~ N(0,1), v = (1 + c x)^3, keep d v
    when log U < x^2/2 + d - d v + d log v. For alpha < 1: G(alpha) = G(alpha + 1) U^(1/alpha).
    ``log=True`` returns log G, which stays finite where G underflows (tiny alpha).
    Device-agnostic: loops only over rejection rounds.
    """
    alpha = check_positive("shape_param", shape_param)
    size = _as_size(size)
    n = math.prod(size)
    d = (alpha if alpha >= 1 else alpha + 1.0) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)

    def propose(m):
        x = torch.randn(m, generator=generator, device=device, dtype=dtype)
        v = (1 + c * x) ** 3
        threshold = torch.where(v > 0, 0.5 * x * x + d - d * v + d * torch.log(v),
                                torch.full_like(v, -math.inf))
        return v, threshold

    v = _rejection(n, propose, generator, device, dtype)
    if alpha >= 1:
        g = d * v
        out = torch.log(g) if log else g
    else:
        # U in (0, 1]: log U / alpha is finite
        log_u = torch.log1p(-torch.rand(n, generator=generator, device=device, dtype=dtype))
        log_g = math.log(d) + torch.log(v) + log_u / alpha
        out = log_g if log else torch.exp(log_g)
    return out.reshape(size)


def _random_sign(y: torch.Tensor, generator) -> torch.Tensor:
    """y with an independent fair random sign per element."""
    flip = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype) < 0.5
    return torch.where(flip, -y, y)


def _laplace_log_ratio(u: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """|u| - |u - s| = clamp(2 u sign(s) - |s|, -|s|, |s|): the atoms are exactly +-|s|."""
    sgn = torch.sign(shift)
    mag = shift.abs()
    return torch.minimum(torch.maximum(2 * u * sgn - mag, -mag), mag)


def _laplace_ray(u: torch.Tensor, v: torch.Tensor, b: float) -> RayFn:
    """Laplace with scale b along lam v: with y_i = u_i sign(v_i)/|v_i|, the clamp form of the ratio
    gives L = (sum_i |v_i| min(2 y_i^+, 2 lam) - lam ||v||_1) / b; bucketing y^+ by the lam grid
    makes the cost O(n k log G + n G) instead of O(n k G)."""
    w = v.abs()
    y = (u * torch.sign(v) / w.masked_fill(w == 0, 1.0)).clamp_min(0).masked_fill(w == 0, 0.0)
    l1 = w.sum()

    def evaluate(lams):
        order = torch.argsort(lams)
        sorted_lams = lams[order]
        bucket = torch.searchsorted(sorted_lams, y.contiguous(), right=True)   # #lams <= y_i
        n, grid = u.shape[0], lams.numel()
        below_sum = torch.zeros(n, grid + 1, dtype=u.dtype, device=u.device)
        above_w = torch.zeros(n, grid + 1, dtype=u.dtype, device=u.device)
        below_sum.scatter_add_(1, bucket, 2 * w * y)
        above_w.scatter_add_(1, bucket, w.expand_as(y))
        # for lam_g: terms with y_i < lam_g have bucket <= g; those with y_i >= lam_g have bucket > g
        part_below = below_sum.cumsum(1)[:, :grid]
        part_above = above_w.flip(1).cumsum(1).flip(1)[:, 1:]
        total = part_below + 2 * sorted_lams * part_above - sorted_lams * l1
        out = torch.empty(grid, n, dtype=u.dtype, device=u.device)
        out[order] = (total / b).T
        return out
    return evaluate


def _log1p_square(z: torch.Tensor) -> torch.Tensor:
    """log(1 + z^2) without overflow for huge |z|."""
    az = z.abs()
    big = az > 1
    t = torch.where(big, 1 / az, az)
    return torch.where(big, 2 * torch.log(az), torch.zeros_like(az)) + torch.log1p(t * t)


# --------------------------------------------------------------------------------------------
# scipy twins for the laws scipy.stats lacks
# --------------------------------------------------------------------------------------------


class _SymmetricContinuous(st.rv_continuous):
    """A law symmetric about 0, from ``_logpdf`` and its right tail ``_logsf_right(y >= 0)``.

    sf, logsf, cdf and logcdf follow without cancellation; isf inverts log sf by bracketed Newton
    (or a closed-form ``_isf_right``), and ppf(q) = -isf(q).
    """

    def _pdf(self, x, *args):
        return np.exp(self._logpdf(x, *args))

    def _logsf(self, x, *args):
        t = self._logsf_right(np.abs(x), *args)  # <= log(1/2)
        return np.where(x >= 0, t, np.log1p(-np.exp(t)))

    def _sf(self, x, *args):
        return np.exp(self._logsf(x, *args))

    def _cdf(self, x, *args):
        return self._sf(-x, *args)

    def _logcdf(self, x, *args):
        return self._logsf(-x, *args)

    def _isf(self, q, *args):
        upper = q <= 0.5
        y = self._isf_right(np.where(upper, q, 1.0 - q), *args)
        return np.where(upper, y, -y)

    def _ppf(self, q, *args):
        return -self._isf(q, *args)

    def _isf_right(self, q, *args):
        """y >= 0 with sf(y) = q for 0 < q <= 1/2."""
        log_q, *args = np.broadcast_arrays(np.log(q), *args)
        lo = np.zeros_like(log_q)
        hi = np.ones_like(log_q)
        for _ in range(64):  # exponential or lighter tails: a few doublings reach q >= 1e-308
            short = self._logsf_right(hi, *args) > log_q
            if not short.any():
                break
            lo = np.where(short, hi, lo)
            hi = np.where(short, 2 * hi, hi)
        y = 0.5 * (lo + hi)
        for _ in range(200):
            log_sf = self._logsf_right(y, *args)
            f = log_sf - log_q
            lo = np.where(f >= 0, y, lo)
            hi = np.where(f <= 0, y, hi)
            newton = y + f * np.exp(log_sf - self._logpdf(y, *args))  # d log sf/dy = -pdf/sf
            y_new = np.where((newton >= lo) & (newton <= hi), newton, 0.5 * (lo + hi))
            done = np.abs(y_new - y) <= 4e-16 * np.abs(y)
            y = y_new
            if done.all():
                break
        return y


class _SymmetricLomaxGen(_SymmetricContinuous):
    """Symmetric Lomax: pdf (a/2)(1 + |x|)^-(a+1), sf(y) = (1 + y)^-a / 2 for y >= 0."""

    def _logpdf(self, x, a):
        return np.log(0.5 * a) - (a + 1) * np.log1p(np.abs(x))

    def _logsf_right(self, y, a):
        return -math.log(2.0) - a * np.log1p(y)

    def _isf_right(self, q, a):
        with np.errstate(over="ignore"):  # (2q)^(-1/a) beyond float range is +inf
            return np.expm1(-np.log(2 * q) / a)

    def _stats(self, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(a > 1, 0.0, np.nan)
            var = np.where(a > 2, 2 / ((a - 1) * (a - 2)), np.where(a > 1, np.inf, np.nan))
            skew = np.where(a > 3, 0.0, np.nan)
            kurt = np.where(a > 4, 6 * (a - 1) * (a - 2) / ((a - 3) * (a - 4)) - 3,
                            np.where(a > 2, np.inf, np.nan))
        return mean, var, skew, kurt


class _GaussianLaplaceGen(_SymmetricContinuous):
    """w Laplace(b = 1/sqrt 2) + (1 - w) N(0, 1): both components and the mixture have variance 1."""

    def _argcheck(self, w):
        return (w >= 0) & (w <= 1)

    def _logpdf(self, x, w):
        with np.errstate(divide="ignore"):
            log_w, log_1mw = np.log(w), np.log1p(-w)
        return np.logaddexp(log_w - math.sqrt(2.0) * np.abs(x) - 0.5 * math.log(2.0),
                            log_1mw - 0.5 * x * x - 0.5 * math.log(2 * math.pi))

    def _logsf_right(self, y, w):
        with np.errstate(divide="ignore"):
            log_w, log_1mw = np.log(w), np.log1p(-w)
        return np.logaddexp(log_w - math.log(2.0) - math.sqrt(2.0) * y, log_1mw + sc.log_ndtr(-y))

    def _stats(self, w):
        return 0.0, 1.0, 0.0, 3.0 * w  # E x^4 = 6 w + 3 (1 - w)


def _expmix_log_norm(w):
    """log Z(w), Z = int exp(-w|y| - c y^2) dy = sqrt(pi/c) erfcx(w / (2 sqrt c)), c = 1 - w (Z(1) = 2)."""
    c = 1.0 - w
    cs = np.where(c > 0, c, 1.0)
    return np.where(c > 0, 0.5 * np.log(np.pi / cs) + np.log(sc.erfcx(w / (2 * np.sqrt(cs)))),
                    math.log(2.0))


@functools.lru_cache(maxsize=256)
def _expmix_moments(w: float) -> tuple[float, float]:
    """(E y^2, E y^4) under exp(-w|y| - c y^2)/Z, c = 1 - w, at 100 digits.

    I_k = int_0^inf y^k exp(-c y^2 - w y) dy: I_0 = sqrt(pi/c)/2 exp(z^2) erfc(z), z = w/(2 sqrt c),
    2c I_1 + w I_0 = 1 and 2c I_(k+1) + w I_k = k I_(k-1) (integration by parts). It cancels as
    c -> 0 (Laplace limit); 100 digits leave > 30 for c >= 2^-53.
    """
    if w == 1.0:
        return 2.0, 24.0
    with mpmath.workdps(100):
        wm = mpmath.mpf(w)
        c = 1 - wm
        z = wm / (2 * mpmath.sqrt(c))
        i0 = mpmath.sqrt(mpmath.pi / c) / 2 * mpmath.exp(z * z) * mpmath.erfc(z)
        i1 = (1 - wm * i0) / (2 * c)
        i2 = (i0 - wm * i1) / (2 * c)
        i3 = (2 * i1 - wm * i2) / (2 * c)
        i4 = (3 * i2 - wm * i3) / (2 * c)
        return float(i2 / i0), float(i4 / i0)


class _ExponentialMixtureGen(_SymmetricContinuous):
    """pdf exp(-w|y| - c y^2)/Z(w), c = 1 - w; for y >= 0 (m = w/(2c)):
    sf(y) = exp(-c y^2 - w y) erfcx(sqrt(c)(y + m)) / (2 erfcx(sqrt(c) m)); sf = exp(-y)/2 at w = 1."""

    def _argcheck(self, w):
        return (w >= 0) & (w <= 1)

    def _logpdf(self, x, w):
        return -w * np.abs(x) - (1 - w) * x * x - _expmix_log_norm(w)

    def _logsf_right(self, y, w):
        c = 1.0 - w
        rc = np.sqrt(np.where(c > 0, c, 1.0))
        gauss = (-c * y * y - w * y + np.log(sc.erfcx(rc * y + w / (2 * rc)))
                 - np.log(sc.erfcx(w / (2 * rc))))
        return np.where(c > 0, gauss, -w * y) - math.log(2.0)

    def _stats(self, w):
        m2, m4 = np.vectorize(_expmix_moments, otypes=[float, float])(w)
        return 0.0, m2, 0.0, m4 / (m2 * m2) - 3.0


class _StudentTGen(type(st.t)):
    """scipy's t with an isf/ppf that stays finite and accurate for q down to 1e-300.

    y = sqrt(nu (1 - x)/x), x = I^-1_(2q)(nu/2, 1/2); where x would underflow, the leading term
    I_x(a, 1/2) = x^a / (a B(a, 1/2)) (1 + O(x)) gives log x in closed form.
    """

    def _isf(self, q, df):
        upper = q <= 0.5
        tail = np.where(upper, q, 1.0 - q)
        a = 0.5 * df
        log_x = (np.log(2 * tail) + np.log(a) + sc.betaln(a, 0.5)) / a
        with np.errstate(over="ignore", divide="ignore"):
            x = sc.betaincinv(a, 0.5, 2 * tail)
            y = np.where(log_x < -600, np.exp(0.5 * (np.log(df) - log_x)), np.sqrt(df * (1 - x) / x))
        return np.where(upper, y, -y)

    def _ppf(self, q, df):
        return -self._isf(q, df)


_student_t = _StudentTGen(name="t")
_symmetric_lomax = _SymmetricLomaxGen(name="symmetric_lomax", shapes="a")
_gaussian_laplace = _GaussianLaplaceGen(name="gaussian_laplace", shapes="w")
_exponential_mixture = _ExponentialMixtureGen(name="exponential_mixture", shapes="w")


# --------------------------------------------------------------------------------------------
# i.i.d. families
# --------------------------------------------------------------------------------------------


class Gaussian(IIDNoise):
    """N(0, sigma^2) per coordinate (``scale`` = sigma). log mu_1(x) = -x^2/(2 sigma^2) - log(sqrt(2 pi) sigma).

    Along a ray L depends on <u, v> only, drawn as N(0, sigma^2 ||v||^2); the exact backend reduces
    to one dimension with shift ||delta||_2 (Cohen et al., ICML 2019)."""

    name = "gaussian"
    symmetric = coordinatewise_symmetric = log_concave = True
    support = UNBOUNDED
    compact_rays = True
    closed_form = "gaussian"

    def __init__(self, sigma=1.0, dim=1):
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"sigma": sigma})
        self.scale = sigma

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return 1.0

    def ray_log_ratio(self, u, v):
        return gaussian_ray(u @ v, (v * v).sum(), self.sigma**2)

    def ray_sampler(self, v, groups):
        std = self.sigma * float(torch.linalg.vector_norm(v))

        def draw(n, generator, device, dtype):
            proj = std * torch.randn(n, generator=generator, device=device, dtype=dtype)
            v_on = v.to(device=device, dtype=dtype)
            return gaussian_ray(proj, (v_on * v_on).sum(), self.sigma**2)
        return draw

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        return self.sigma * torch.randn(shape, generator=generator, device=device, dtype=dtype)

    def log_prob_coords(self, x):
        return -0.5 * (x / self.sigma) ** 2 - math.log(math.sqrt(2 * math.pi) * self.sigma)

    def log_ratio_coords(self, u, shift):
        # (u^2 - (u - s)^2) / (2 sigma^2) = s (2u - s) / (2 sigma^2)
        return shift * (2 * u - shift) / (2 * self.sigma**2)

    def marginal(self):
        return st.norm(scale=self.sigma)


class Laplace(IIDNoise):
    """Laplace with scale b = sigma/sqrt(2): log mu_1(x) = -|x|/b - log(2b)."""

    name = "laplace"
    symmetric = coordinatewise_symmetric = log_concave = True
    support = UNBOUNDED

    def __init__(self, sigma=1.0, dim=1):
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"sigma": sigma})
        self.scale = sigma / math.sqrt(2.0)

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return math.sqrt(2.0)

    def ray_log_ratio(self, u, v):
        return _laplace_ray(u, v, self.scale)

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        # inverse CDF of a uniform on (-1/2, 1/2), exact in distribution
        v = torch.rand(shape, generator=generator, device=device, dtype=dtype) - 0.5
        return -self.scale * torch.sign(v) * torch.log1p(-2 * v.abs())

    def log_prob_coords(self, x):
        return -x.abs() / self.scale - math.log(2 * self.scale)

    def log_ratio_coords(self, u, shift):
        # (|u| - |u - s|)/b, atoms exactly +-|s|/b
        return _laplace_log_ratio(u, shift) / self.scale

    def marginal(self):
        return st.laplace(scale=self.scale)


class Uniform(IIDNoise):
    """Uniform on the cube [-a, a]^d with a = sqrt(3) sigma (``scale`` = a). log mu_1 = -log(2a) on [-a, a].

    Along a ray L is 0 until the draw leaves the shifted cube and -inf after; for a direction of
    equal-magnitude groups, the exit scale of a group of c coordinates of magnitude m is
    2a (1 - V^(1/c)) / m with V ~ U(0, 1) (the minimum of c uniforms), drawn directly."""

    name = "uniform"
    symmetric = coordinatewise_symmetric = log_concave = True
    compact_rays = True
    closed_form = "uniform"

    def __init__(self, sigma=1.0, dim=1):
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"sigma": sigma})
        self.half_width = self.scale = math.sqrt(3.0) * sigma

    @property
    def support(self):
        return (-self.half_width, self.half_width)

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return 1 / math.sqrt(3.0)

    def ray_log_ratio(self, u, v):
        a = self.half_width
        exits = ((a + torch.sign(v) * u) / v.abs()).masked_fill(v == 0, math.inf)
        return exit_ray(exits.amin(-1))

    def ray_sampler(self, v, groups):
        if groups is None:
            return None
        width = 2 * self.half_width

        def draw(n, generator, device, dtype):
            exits = [width * -torch.expm1(torch.log(torch.rand(n, generator=generator, device=device,
                                                                dtype=dtype)) / c) / abs(m)
                     for c, m in groups if m != 0]
            return exit_ray(torch.stack(exits).amin(0))
        return draw

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        v = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return self.half_width * (2 * v - 1)

    def log_prob_coords(self, x):
        inside = x.abs() <= self.half_width
        return torch.where(inside, torch.full_like(x, -math.log(2 * self.half_width)),
                           torch.full_like(x, -math.inf))

    def log_ratio_coords(self, u, shift):
        a = self.half_width
        u_in = u.abs() <= a
        v_in = (u - shift).abs() <= a
        zero = torch.zeros_like(u)
        return torch.where(u_in & ~v_in, zero - math.inf, torch.where(~u_in & v_in, zero + math.inf, zero))

    def marginal(self):
        return st.uniform(loc=-self.half_width, scale=2 * self.half_width)


class GeneralNormal(IIDNoise):
    """General Normal, shape ``beta`` > 0: mu_1(x) = beta/(2 alpha Gamma(1/beta)) exp(-|x/alpha|^beta),
    alpha = sigma sqrt(Gamma(1/beta)/Gamma(3/beta)) (``scale`` = alpha). beta = 2: Gaussian, beta = 1:
    Laplace. Sampling: |x| = alpha G^(1/beta), G ~ Gamma(1/beta, 1), random sign."""

    name = "general-normal"
    symmetric = coordinatewise_symmetric = True
    support = UNBOUNDED

    @classmethod
    def example(cls, dim=1):
        return cls(dim=dim, beta=1.5)

    def __init__(self, sigma=None, dim=1, *, beta=None, scale=None):
        beta = _check_shape("beta", beta)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale(beta=beta))
        super().__init__(dim, sigma, {"beta": beta, "sigma": sigma, "scale": self.scale})
        self.beta = beta
        self._log_norm = math.log(beta / (2 * self.scale)) - math.lgamma(1 / beta)

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        log_g = standard_gamma(1 / self.beta, shape, generator, device, dtype, log=True)
        return _random_sign(self.scale * torch.exp(log_g / self.beta), generator)

    def log_prob_coords(self, x):
        return self._log_norm - (x.abs() / self.scale) ** self.beta

    def log_ratio_coords(self, u, shift):
        if self.beta == 1:  # Laplace: keep the atoms +-|s|/alpha exact
            return _laplace_log_ratio(u, shift) / self.scale
        return super().log_ratio_coords(u, shift)

    def marginal(self):
        return st.gennorm(self.beta, scale=self.scale)

    @classmethod
    def sigma_per_scale(cls, dim=1, *, beta):
        return math.exp(0.5 * (math.lgamma(3 / beta) - math.lgamma(1 / beta)))

    @property
    def log_concave(self):
        return self.beta >= 1

    @property
    def closed_form(self):
        return "gaussian" if self.beta == 2 else None


class Cauchy(IIDNoise):
    """Cauchy with ``scale`` gamma (no variance: ``sigma`` is not accepted).
    mu_1(x) = 1/(pi gamma (1 + (x/gamma)^2)). Sampling: gamma Z1/Z2, Z1, Z2 ~ N(0, 1)."""

    name = "cauchy"
    symmetric = coordinatewise_symmetric = True
    support = UNBOUNDED

    def __init__(self, scale=None, dim=1, *, sigma=None):
        _, self.scale = _sigma_and_scale(self.name, sigma, scale, None)
        super().__init__(dim, None, {"scale": self.scale})

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        z1 = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        z2 = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return self.scale * z1 / z2

    def log_prob_coords(self, x):
        return -math.log(math.pi * self.scale) - _log1p_square(x / self.scale)

    def marginal(self):
        return st.cauchy(scale=self.scale)


class Lomax(IIDNoise):
    """Symmetric Lomax (Pareto II), shape ``a`` > 0, scale lam:
    mu_1(x) = (a/(2 lam)) (1 + |x|/lam)^-(a+1); sigma = lam sqrt(2/((a-1)(a-2))) for a > 2.
    For a <= 2 there is no variance and only ``scale`` = lam is accepted.
    Sampling: |x| = lam expm1(E/a), E ~ Exp(1), random sign."""

    name = "lomax"
    symmetric = coordinatewise_symmetric = True
    support = UNBOUNDED

    @classmethod
    def example(cls, dim=1):
        return cls(dim=dim, a=3.0)

    def __init__(self, sigma=None, dim=1, *, a=None, scale=None):
        a = _check_shape("a", a)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale(a=a),
                                             f" with a={a:g} (sigma needs a > 2)")
        super().__init__(dim, sigma, {"a": a, "sigma": sigma, "scale": self.scale})
        self.a = a

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        e = -torch.log1p(-torch.rand(shape, generator=generator, device=device, dtype=dtype))
        return _random_sign(self.scale * torch.expm1(e / self.a), generator)

    def log_prob_coords(self, x):
        return (math.log(self.a / (2 * self.scale))
                - (self.a + 1) * torch.log1p(x.abs() / self.scale))

    def marginal(self):
        return _symmetric_lomax(self.a, scale=self.scale)

    @classmethod
    def sigma_per_scale(cls, dim=1, *, a):
        return math.sqrt(2 / ((a - 1) * (a - 2))) if a > 2 else None


class HyperbolicSecant(IIDNoise):
    """Hyperbolic secant: mu_1(x) = sech(pi x/(2 sigma)) / (2 sigma), variance sigma^2
    (``scale`` s = 2 sigma/pi, scipy's hypsecant scale). Sampling: |x| = -s log tan(pi V/4), V ~ U(0, 1]."""

    name = "hyperbolic-secant"
    symmetric = coordinatewise_symmetric = log_concave = True
    support = UNBOUNDED

    def __init__(self, sigma=None, dim=1, *, scale=None):
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale())
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        v = 1 - torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return _random_sign(-self.scale * torch.log(torch.tan(0.25 * math.pi * v)), generator)

    def log_prob_coords(self, x):
        # log sech y = -|y| - log1p(exp(-2|y|)) + log 2, y = x/s
        y = x.abs() / self.scale
        return -math.log(math.pi * self.scale / 2) - y - torch.log1p(torch.exp(-2 * y))

    def marginal(self):
        return st.hypsecant(scale=self.scale)

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return math.pi / 2


class Logistic(IIDNoise):
    """Logistic with scale s = sigma sqrt(3)/pi: mu_1(x) = e^(-x/s) / (s (1 + e^(-x/s))^2).
    Sampling: |x| = s log1p(2W/(1 - W)), W ~ U[0, 1), random sign."""

    name = "logistic"
    symmetric = coordinatewise_symmetric = log_concave = True
    support = UNBOUNDED

    def __init__(self, sigma=None, dim=1, *, scale=None):
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale())
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        w = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return _random_sign(self.scale * torch.log1p(2 * w / (1 - w)), generator)

    def log_prob_coords(self, x):
        z = x.abs() / self.scale
        return -math.log(self.scale) - z - 2 * torch.log1p(torch.exp(-z))

    def marginal(self):
        return st.logistic(scale=self.scale)

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return math.pi / math.sqrt(3.0)


class StudentT(IIDNoise):
    """Student t, ``nu`` > 0 degrees of freedom, scale s = sigma sqrt((nu - 2)/nu) for nu > 2.
    For nu <= 2 there is no variance and only ``scale`` = s is accepted.
    Sampling: s Z sqrt(nu / (2G)), Z ~ N(0, 1), G ~ Gamma(nu/2, 1)."""

    name = "student-t"
    symmetric = coordinatewise_symmetric = True
    support = UNBOUNDED

    @classmethod
    def example(cls, dim=1):
        return cls(dim=dim, nu=5.0)

    def __init__(self, sigma=None, dim=1, *, nu=None, scale=None):
        nu = _check_shape("nu", nu)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale(nu=nu),
                                             f" with nu={nu:g} (sigma needs nu > 2)")
        super().__init__(dim, sigma, {"nu": nu, "sigma": sigma, "scale": self.scale})
        self.nu = nu
        self._log_norm = (math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2)
                          - 0.5 * math.log(nu * math.pi) - math.log(self.scale))

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        z = torch.randn(shape, generator=generator, device=device, dtype=dtype)
        log_g = standard_gamma(self.nu / 2, shape, generator, device, dtype, log=True)
        return self.scale * z * torch.exp(0.5 * (math.log(self.nu / 2) - log_g))

    def log_prob_coords(self, x):
        return self._log_norm - 0.5 * (self.nu + 1) * _log1p_square(x / (self.scale * math.sqrt(self.nu)))

    def marginal(self):
        return _student_t(self.nu, scale=self.scale)

    @classmethod
    def sigma_per_scale(cls, dim=1, *, nu):
        return math.sqrt(nu / (nu - 2)) if nu > 2 else None


class GaussianLaplace(IIDNoise):
    """Density mixture mu_1 = w Laplace(sigma) + (1 - w) N(0, sigma^2), weight ``w`` in [0, 1] on the
    Laplace component (default 1/2). Both components have std sigma, hence so does the mixture."""

    name = "gaussian-laplace"
    symmetric = coordinatewise_symmetric = True
    support = UNBOUNDED

    def __init__(self, sigma=1.0, dim=1, *, w=0.5):
        w = _check_weight("w", w)
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"w": w, "sigma": sigma})
        self.scale = sigma
        self.w = w
        self._laplace = Laplace(sigma)
        self._gaussian = Gaussian(sigma)

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        pick = torch.rand(shape, generator=generator, device=device, dtype=dtype) < self.w
        lap = self._laplace.sample_coords(shape, generator=generator, device=device, dtype=dtype)
        gauss = self._gaussian.sample_coords(shape, generator=generator, device=device, dtype=dtype)
        return torch.where(pick, lap, gauss)

    def log_prob_coords(self, x):
        return torch.logaddexp(_log_or_neginf(self.w) + self._laplace.log_prob_coords(x),
                               _log_or_neginf(1 - self.w) + self._gaussian.log_prob_coords(x))

    def marginal(self):
        return _gaussian_laplace(self.w, scale=self.sigma)

    @classmethod
    def sigma_per_scale(cls, dim=1, *, w=0.5):
        return 1.0


class ExponentialMixture(IIDNoise):
    """mu_1(x) = exp(-w|x/a| - (1 - w)(x/a)^2) / (a Z(w)), ``w`` in [0, 1] (default 1/2), ``scale`` = a.
    Z(w) = sqrt(pi/c) erfcx(w/(2 sqrt c)), c = 1 - w (Z = 2 at w = 1); a = sigma / sqrt(E y^2), E y^2
    from closed-form moments at 100 digits. Sampling: exact rejection from the Laplace(rate w)
    envelope (accept w.p. exp(-c y^2)) or the N(0, 1/(2c)) envelope (accept w.p. exp(-w|y|)),
    whichever accepts more (>= 60%)."""

    name = "exponential-mixture"
    symmetric = coordinatewise_symmetric = log_concave = True
    support = UNBOUNDED

    def __init__(self, sigma=None, dim=1, *, w=0.5, scale=None):
        w = _check_weight("w", w)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale(w=w))
        super().__init__(dim, sigma, {"w": w, "sigma": sigma, "scale": self.scale})
        self.w = w
        log_z = float(_expmix_log_norm(w))
        self._log_norm = math.log(self.scale) + log_z
        # acceptance rates: Laplace envelope (mass 2/w) w Z/2, Gaussian (mass sqrt(pi/c)) Z sqrt(c/pi)
        self._laplace_envelope = w / 2 >= math.sqrt((1 - w) / math.pi)

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        w, c = self.w, 1.0 - self.w

        def propose(m):
            if self._laplace_envelope:
                e = -torch.log1p(-torch.rand(m, generator=generator, device=device, dtype=dtype))
                y = _random_sign(e / w, generator)
                return y, -c * y * y
            y = torch.randn(m, generator=generator, device=device, dtype=dtype) / math.sqrt(2 * c)
            return y, -w * y.abs()

        shape = _as_size(shape)
        y = _rejection(math.prod(shape), propose, generator, device, dtype)
        return self.scale * y.reshape(shape)

    def log_prob_coords(self, x):
        y = x / self.scale
        return -self.w * y.abs() - (1 - self.w) * y * y - self._log_norm

    def log_ratio_coords(self, u, shift):
        # w (|u| - |u - s|)/a + c s (2u - s)/a^2: the Laplace part keeps its atoms exact at w = 1
        a = self.scale
        return self.w * _laplace_log_ratio(u, shift) / a + (1 - self.w) * shift * (2 * u - shift) / a**2

    def marginal(self):
        return _exponential_mixture(self.w, scale=self.scale)

    @classmethod
    def sigma_per_scale(cls, dim=1, *, w=0.5):
        return math.sqrt(_expmix_moments(float(w))[0])


# --------------------------------------------------------------------------------------------
# non-i.i.d. families (radial in l2 or l_inf)
# --------------------------------------------------------------------------------------------


class _L2Radial(Noise):
    """Densities that are functions of ||x||_2: x = R theta, R from the family (``_draw_radius``),
    theta uniform on the sphere. Along a ray ||u - lam v||^2 = ||u||^2 - 2 lam <u, v> + lam^2 ||v||^2,
    and <theta, e> = 2B - 1 with B ~ Beta((d-1)/2, (d-1)/2), so (R, <u, v>) are drawn directly."""

    symmetric = coordinatewise_symmetric = exchangeable = log_concave = True
    compact_rays = True

    def _draw_radius(self, n, generator, device, dtype) -> torch.Tensor:
        raise NotImplementedError

    def _log_density(self, norm2: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _profile(self, norm2, shifted2, num) -> torch.Tensor:
        """L from ||e||^2, ||e - delta||^2 and num = ||e||^2 - ||e - delta||^2."""
        raise NotImplementedError

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        z = torch.randn((n, self.dim), generator=generator, device=device, dtype=dtype)
        radius = self._draw_radius(n, generator, device, dtype)
        return z * (radius / torch.linalg.vector_norm(z, dim=-1)).unsqueeze(-1)

    def log_prob(self, x):
        return self._log_density((x * x).sum(-1))

    def log_ratio(self, e, delta):
        num = 2 * (e * delta).sum(-1) - (delta * delta).sum(-1)
        norm2 = (e * e).sum(-1)
        return self._profile(norm2, (norm2 - num).clamp_min(0), num)

    def ray_log_ratio(self, u, v):
        return radial_ray((u * u).sum(-1), u @ v, (v * v).sum(), self._profile)

    def ray_sampler(self, v, groups):
        vnorm = float(torch.linalg.vector_norm(v))
        d = self.dim

        def draw(n, generator, device, dtype):
            radius = self._draw_radius(n, generator, device, dtype)
            if d == 1:
                cos = torch.where(torch.rand(n, generator=generator, device=device, dtype=dtype) < 0.5,
                                  -1.0, 1.0).to(dtype)
            else:
                g1 = standard_gamma((d - 1) / 2, (n,), generator, device, dtype)
                g2 = standard_gamma((d - 1) / 2, (n,), generator, device, dtype)
                cos = (g1 - g2) / (g1 + g2)
            return radial_ray(radius * radius, radius * cos * vnorm, vnorm * vnorm, self._profile)
        return draw


class UniformBall(_L2Radial):
    """Uniform in the l2 ball of radius lam (``scale``), sigma = lam / sqrt(d + 2).
    Sampling: lam U^(1/d) Z/|Z|_2, Z ~ N(0, I_d)."""

    name = "uniform-ball"

    def __init__(self, sigma=None, dim=1, *, scale=None):
        dim = check_dim(dim)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale(dim))
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})
        # log vol B_d(lam) = (d/2) log pi - lgamma(d/2 + 1) + d log lam
        self._log_volume = (0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim + 1)
                            + dim * math.log(self.scale))

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return 1 / math.sqrt(dim + 2)

    @property
    def support(self):
        return (-self.scale, self.scale)

    def _draw_radius(self, n, generator, device, dtype):
        log_u = torch.log1p(-torch.rand(n, generator=generator, device=device, dtype=dtype))
        return self.scale * torch.exp(log_u / self.dim)

    def _log_density(self, norm2):
        return torch.where(norm2 <= self.scale**2, torch.full_like(norm2, -self._log_volume),
                           torch.full_like(norm2, -math.inf))

    def _profile(self, norm2, shifted2, num):
        before, after = norm2 <= self.scale**2, shifted2 <= self.scale**2
        out = torch.zeros_like(num)
        return out.masked_fill(before & ~after, -math.inf).masked_fill(~before & after, math.inf)


class LinfExp(Noise):
    """mu(x) = exp(-|x|_inf/lam) / (2^d d! lam^d), ``scale`` = lam, sigma = lam sqrt((d+1)(d+2)/3).
    Sampling: R = |x|_inf ~ Gamma(d, lam) (the radial density is prop. to r^(d-1) e^(-r/lam)), then
    uniform on the l_inf sphere of radius R: a uniform face coordinate set to +-R, the others U[-R, R].
    Along a ray the off-support maximum of |u_i| is fixed, and a group of equal v_i = m needs only
    its maximum and minimum: max(U_max - lam m, lam m - U_min). ``ray_sampler`` draws just those:
    R, the face's place and sign, R U^(1/(d-k)) off the support (the face elsewhere), and per group
    of c uniforms the maximum R(2 U^(1/c) - 1) and, given it, the minimum of the c - 1 others
    (O(n) per group instead of O(n d))."""

    name = "linf-exp"
    symmetric = coordinatewise_symmetric = exchangeable = log_concave = True
    support = UNBOUNDED
    compact_rays = True

    def __init__(self, sigma=None, dim=1, *, scale=None):
        dim = check_dim(dim)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale(dim))
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})
        self._log_norm = dim * math.log(2 * self.scale) + math.lgamma(dim + 1)

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return math.sqrt((dim + 1) * (dim + 2) / 3)

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        radius = self.scale * standard_gamma(self.dim, (n, 1), generator, device, dtype)
        x = radius * (2 * torch.rand((n, self.dim), generator=generator, device=device, dtype=dtype) - 1)
        face = torch.randint(0, self.dim, (n, 1), generator=generator, device=device)
        return x.scatter(1, face, _random_sign(radius, generator))

    def log_prob(self, x):
        return -x.abs().amax(-1) / self.scale - self._log_norm

    def log_ratio(self, e, delta):
        return (e.abs().amax(-1) - (e - delta).abs().amax(-1)) / self.scale

    def ray_log_ratio(self, u, v):
        support = v != 0
        off = (u[:, ~support].abs().amax(-1) if (~support).any()
               else torch.zeros(u.shape[0], dtype=u.dtype, device=u.device))
        groups = [(float(m), u[:, v == m].amax(-1), u[:, v == m].amin(-1))
                  for m in torch.unique(v[support]).tolist()]
        return linf_ray(u.abs().amax(-1), off, groups, self.scale)


    def ray_sampler(self, v, groups):
        if groups is None:
            return None
        counts = [int(c) for c, _ in groups]
        mags = [float(m) for _, m in groups]
        d, k = self.dim, sum(counts)

        def extremes(count, generator, n, device, dtype):
            """(max, min) of ``count`` (a tensor >= 0) uniforms on [-1, 1]; +-inf where count = 0."""
            top = torch.rand(n, generator=generator, device=device, dtype=dtype) ** (1 / count.clamp_min(1))
            rest = torch.rand(n, generator=generator, device=device, dtype=dtype) ** (1 / (count - 1).clamp_min(1))
            bottom = torch.where(count >= 2, top * (1 - rest), top)
            return (torch.where(count > 0, 2 * top - 1, -math.inf), torch.where(count > 0, 2 * bottom - 1, math.inf))

        def draw(n, generator, device, dtype):
            radius = self.scale * standard_gamma(d, (n,), generator, device, dtype)
            face = torch.randint(0, d, (n,), generator=generator, device=device)   # support first
            sign = torch.where(torch.rand(n, generator=generator, device=device, dtype=dtype) < 0.5, -1.0, 1.0)
            if d > k:
                spread = torch.rand(n, generator=generator, device=device, dtype=dtype) ** (1.0 / (d - k))
                off = radius * torch.where(face >= k, torch.ones_like(spread), spread)
            else:
                off = torch.zeros(n, device=device, dtype=dtype)
            ranges, start = [], 0
            for c, m in zip(counts, mags):
                here = (face >= start) & (face < start + c)
                top, bottom = extremes(c - here.long(), generator, n, device, dtype)
                top = torch.where(here & (sign > 0), 1.0, torch.where(here, top.clamp_min(-1.0), top))
                bottom = torch.where(here & (sign < 0), -1.0, torch.where(here, bottom.clamp_max(1.0), bottom))
                ranges.append((m, radius * top, radius * bottom))
                start += c
            return linf_ray(radius, off, ranges, self.scale)
        return draw


class L2Exp(_L2Radial):
    """mu(x) = exp(-|x|_2/lam) Gamma(d/2) / (2 pi^(d/2) Gamma(d) lam^d), ``scale`` = lam,
    sigma = lam sqrt(d + 1). Sampling: R ~ Gamma(d, lam) times a uniform direction Z/|Z|_2."""

    name = "l2-exp"
    support = UNBOUNDED

    def __init__(self, sigma=None, dim=1, *, scale=None):
        dim = check_dim(dim)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, self.sigma_per_scale(dim))
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})
        self._log_norm = (math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)
                          + math.lgamma(dim) + dim * math.log(self.scale))

    @classmethod
    def sigma_per_scale(cls, dim=1):
        return math.sqrt(dim + 1)

    def _draw_radius(self, n, generator, device, dtype):
        return self.scale * standard_gamma(self.dim, (n,), generator, device, dtype)

    def _log_density(self, norm2):
        return -norm2.sqrt() / self.scale - self._log_norm

    def _profile(self, norm2, shifted2, num):
        # (|e| - |e - delta|)/lam = num / (|e| + |e - delta|) / lam: no cancellation
        den = norm2.sqrt() + shifted2.sqrt()
        return torch.where(den > 0, num / den, torch.zeros_like(num)) / self.scale


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., Noise]] = {}


def register_noise(name: str, factory: Callable[..., Noise]) -> None:
    """Make ``unicr.noise(name, ...)`` build ``factory(sigma=..., dim=..., **shape)``."""
    _REGISTRY[name.lower()] = factory


for _cls in (Gaussian, Laplace, Uniform, GeneralNormal, Cauchy, Lomax, HyperbolicSecant, Logistic,
             StudentT, GaussianLaplace, ExponentialMixture, UniformBall, LinfExp, L2Exp):
    register_noise(_cls.name, _cls)
register_noise("pareto", Lomax)
register_noise("sech", HyperbolicSecant)


def noise_names() -> list[str]:
    """Names accepted by :func:`noise`."""
    return sorted(_REGISTRY)


def noise_factory(name: str) -> Callable[..., Noise] | None:
    """The factory registered under ``name`` (:func:`register_noise`), or None."""
    return _REGISTRY.get(name.lower())


def is_builtin(value: Noise) -> bool:
    """Whether ``value`` is of a class that unicr itself defines and registers: its law is then fixed
    by its class, dim and params (so it can be matched with catalog certificates and cached by value)."""
    cls = type(value)
    return cls.__module__ == __name__ and cls in _REGISTRY.values()


def noise(name, sigma: float | None = None, dim: int = 1, **shape) -> Noise:
    """Build a noise by family name, or wrap a torch Distribution / pass a Noise through.

    ``sigma`` is the per-coordinate standard deviation (default 1); families without a variance
    take ``scale=`` instead (see each family's docstring). Names accept ``_`` for ``-``.
    A one-dimensional torch Distribution is used i.i.d. over ``dim`` coordinates
    (:class:`IIDDistributionNoise`); one over R^d as it is (:class:`DistributionNoise`). Either takes
    declarations by keyword, e.g. ``unicr.noise(torch.distributions.Laplace(0., 1.), dim=64,
    symmetric=True)``; what is not declared is unknown.
    """
    if isinstance(name, Noise):
        return name
    if not isinstance(name, str):
        if sigma is not None:
            raise ValueError("sigma is not applicable to a torch Distribution noise: its parameters set its scale")
        if getattr(name, "batch_shape", None) == torch.Size() and getattr(name, "event_shape", None) == torch.Size():
            return IIDDistributionNoise(name, dim, **shape)
        wrapped = DistributionNoise(name, **shape)
        if dim not in (1, wrapped.dim):
            raise ValueError(f"dim={dim} does not match the torch Distribution's dimension {wrapped.dim} "
                             "(dim applies to one-dimensional distributions, used i.i.d.)")
        return wrapped
    key = check_choice("noise", name.replace("_", "-"), _REGISTRY)
    factory = _REGISTRY[key]
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = [p for p in params if p not in ("sigma", "dim")]
        for param in shape:
            if param not in allowed:
                raise ValueError(f"unknown parameter {param!r} for noise {key!r}; allowed: "
                                 f"{', '.join(['sigma', 'dim', *allowed])}")
    kwargs = dict(shape)
    if sigma is not None:
        kwargs["sigma"] = sigma
    return factory(dim=dim, **kwargs)
