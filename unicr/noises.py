"""Noise distributions for randomized smoothing, in torch.

Convention (DESIGN.md §2): ``sigma`` is the per-coordinate standard deviation, sigma^2 = E[eps_i^2].
Families without a finite variance (Cauchy, heavy Lomax, Student-t with nu <= 2) take ``scale``
instead and say so; the other new families accept either ``sigma`` or their natural ``scale``.

Every noise exposes exact sampling (``sample``) and an exact log-density (``log_prob``) over R^d.
i.i.d. noises (``iid = True``) also expose their one-dimensional law, so that the engine can work
over the support of a perturbation only: log-likelihood ratios are sums over non-zero coordinates;
``marginal()`` gives that law as a frozen scipy.stats distribution (cdf/sf/logsf/ppf/isf accurate
in the tails) for deterministic integration.

Samplers draw only through the ``generator`` argument: the same seed gives the same bytes.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Callable

import mpmath
import numpy as np
import scipy.special as sc
import scipy.stats as st
import torch

from .errors import check_choice, check_dim, check_positive

__all__ = [
    "Noise", "IIDNoise", "DistributionNoise", "noise", "noise_names", "register_noise",
    "standard_gamma",
    "Gaussian", "Laplace", "Uniform", "GeneralNormal", "Cauchy", "Lomax", "HyperbolicSecant",
    "Logistic", "StudentT", "GaussianLaplace", "ExponentialMixture",
    "UniformBall", "LinfExp", "L2Exp",
]

LOG_2 = math.log(2.0)


class Noise:
    """A noise law mu on R^d.

    Attributes: ``name``, ``dim``, ``sigma`` (per-coordinate std, ``None`` without a variance),
    ``params`` (the family's parameters, for reports), ``iid`` and ``symmetric`` (mu(-e) = mu(e),
    which lets the engine use the identity L under H1 =d -L under H0).
    """

    name: str = "noise"
    iid: bool = False
    symmetric: bool = True

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

        Defined wherever one of the two densities is positive (+-inf on the other side).
        """
        return _log_diff(self.log_prob(e - delta), self.log_prob(e))

    def describe(self) -> str:
        """Human-readable summary, e.g. ``laplace(sigma=1, dim=3072)``."""
        parts = [f"{k}={_fmt(v)}" for k, v in self.params.items() if v is not None]
        parts.append(f"dim={self.dim}")
        return f"{self.name}({', '.join(parts)})"

    def __repr__(self) -> str:
        return self.describe()


class IIDNoise(Noise):
    """Product noise mu(e) = prod_i mu_1(e_i).

    Subclasses implement the one-dimensional law: ``sample_coords`` and ``log_prob_coords``; they
    may override ``log_ratio_coords`` where a closed form is more exact (atoms kept exact).
    """

    iid = True

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64) -> torch.Tensor:
        """i.i.d. draws of the one-dimensional law, of the given shape."""
        raise NotImplementedError

    def log_prob_coords(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise log mu_1(x)."""
        raise NotImplementedError

    def marginal(self):
        """The one-dimensional law mu_1 as a frozen scipy.stats distribution."""
        raise NotImplementedError

    def log_ratio_coords(self, u: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """Elementwise log mu_1(u - s) - log mu_1(u)."""
        return _log_diff(self.log_prob_coords(u - shift), self.log_prob_coords(u))

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        return self.sample_coords((n, self.dim), generator=generator, device=device, dtype=dtype)

    def log_prob(self, x):
        return self.log_prob_coords(x).sum(-1)

    def log_ratio(self, e, delta):
        return self.log_ratio_coords(e, delta).sum(-1)


class DistributionNoise(Noise):
    """Any ``torch.distributions.Distribution`` over R^d, used as it is (``sample``/``log_prob``).

    Nothing is assumed about symmetry or independence: the engine samples H0 and H1 separately.
    Seeding goes through torch's global generator, which ``sample`` reseeds from ``generator``.
    """

    symmetric = False

    def __init__(self, distribution: torch.distributions.Distribution, name: str | None = None):
        if not callable(getattr(distribution, "log_prob", None)) or not callable(
                getattr(distribution, "sample", None)):
            raise ValueError("noise must be a known name or an object with sample() and log_prob() "
                             f"(a torch.distributions.Distribution); got {type(distribution).__name__}")
        shape = tuple(distribution.batch_shape) + tuple(distribution.event_shape)
        if len(shape) != 1:
            raise ValueError("noise distribution must have event (or batch+event) shape (d,), "
                             f"got {shape}")
        super().__init__(shape[0], None, {"distribution": type(distribution).__name__})
        self.distribution = distribution
        self.name = name or type(distribution).__name__
        try:
            var = distribution.variance
            self.sigma = float(torch.as_tensor(var, dtype=torch.float64).mean().sqrt())
        except (NotImplementedError, AttributeError):
            self.sigma = None

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        if generator is not None:
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                x = self.distribution.sample((n,))
        else:
            x = self.distribution.sample((n,))
        return x.to(device=device, dtype=dtype).reshape(n, self.dim)

    def log_prob(self, x):
        lp = self.distribution.log_prob(x.to(self._dtype()))
        if lp.shape == x.shape:  # a batch of independent 1-D laws (e.g. Normal(zeros(d), 1))
            lp = lp.sum(-1)
        return lp.to(x.dtype)

    def _dtype(self):
        return _parameter_dtype(self.distribution) or torch.get_default_dtype()


def _parameter_dtype(distribution):
    """The dtype of a distribution's first floating tensor parameter, looking into wrapped
    distributions (Independent, TransformedDistribution's base_dist); None without one."""
    for value in vars(distribution).values():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.dtype
        if isinstance(value, torch.distributions.Distribution):
            found = _parameter_dtype(value)
            if found is not None:
                return found
    return None


def _log_diff(log_num: torch.Tensor, log_den: torch.Tensor) -> torch.Tensor:
    """log_num - log_den with (-inf) - (-inf) := 0 (both outside the support; never sampled)."""
    out = log_num - log_den
    both = torch.isneginf(log_num) & torch.isneginf(log_den)
    return torch.where(both, torch.zeros_like(out), out)


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
    """N(0, sigma^2) per coordinate. log mu_1(x) = -x^2/(2 sigma^2) - log(sqrt(2 pi) sigma)."""

    name = "gaussian"

    def __init__(self, sigma=1.0, dim=1):
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"sigma": sigma})

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

    def __init__(self, sigma=1.0, dim=1):
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"sigma": sigma})
        self.scale = sigma / math.sqrt(2.0)

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
    """Uniform on the cube [-a, a]^d with a = sqrt(3) sigma. log mu_1 = -log(2a) on [-a, a]."""

    name = "uniform"

    def __init__(self, sigma=1.0, dim=1):
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"sigma": sigma})
        self.half_width = math.sqrt(3.0) * sigma

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

    def __init__(self, sigma=None, beta=None, dim=1, scale=None):
        beta = _check_shape("beta", beta)
        ratio = math.exp(0.5 * (math.lgamma(3 / beta) - math.lgamma(1 / beta)))
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, ratio)
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


class Cauchy(IIDNoise):
    """Cauchy with ``scale`` gamma (no variance: ``sigma`` is not accepted).
    mu_1(x) = 1/(pi gamma (1 + (x/gamma)^2)). Sampling: gamma Z1/Z2, Z1, Z2 ~ N(0, 1)."""

    name = "cauchy"

    def __init__(self, scale=None, dim=1, sigma=None):
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

    def __init__(self, sigma=None, a=None, dim=1, scale=None):
        a = _check_shape("a", a)
        ratio = math.sqrt(2 / ((a - 1) * (a - 2))) if a > 2 else None
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, ratio,
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


class HyperbolicSecant(IIDNoise):
    """Hyperbolic secant: mu_1(x) = sech(pi x/(2 sigma)) / (2 sigma), variance sigma^2
    (``scale`` s = 2 sigma/pi, scipy's hypsecant scale). Sampling: |x| = -s log tan(pi V/4), V ~ U(0, 1]."""

    name = "hyperbolic-secant"

    def __init__(self, sigma=None, dim=1, scale=None):
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, math.pi / 2)
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


class Logistic(IIDNoise):
    """Logistic with scale s = sigma sqrt(3)/pi: mu_1(x) = e^(-x/s) / (s (1 + e^(-x/s))^2).
    Sampling: |x| = s log1p(2W/(1 - W)), W ~ U[0, 1), random sign."""

    name = "logistic"

    def __init__(self, sigma=None, dim=1, scale=None):
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, math.pi / math.sqrt(3.0))
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        w = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return _random_sign(self.scale * torch.log1p(2 * w / (1 - w)), generator)

    def log_prob_coords(self, x):
        z = x.abs() / self.scale
        return -math.log(self.scale) - z - 2 * torch.log1p(torch.exp(-z))

    def marginal(self):
        return st.logistic(scale=self.scale)


class StudentT(IIDNoise):
    """Student t, ``nu`` > 0 degrees of freedom, scale s = sigma sqrt((nu - 2)/nu) for nu > 2.
    For nu <= 2 there is no variance and only ``scale`` = s is accepted.
    Sampling: s Z sqrt(nu / (2G)), Z ~ N(0, 1), G ~ Gamma(nu/2, 1)."""

    name = "student-t"

    def __init__(self, sigma=None, nu=None, dim=1, scale=None):
        nu = _check_shape("nu", nu)
        ratio = math.sqrt(nu / (nu - 2)) if nu > 2 else None
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, ratio,
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


class GaussianLaplace(IIDNoise):
    """Density mixture mu_1 = w Laplace(sigma) + (1 - w) N(0, sigma^2), weight ``w`` in [0, 1] on the
    Laplace component (default 1/2). Both components have std sigma, hence so does the mixture."""

    name = "gaussian-laplace"

    def __init__(self, sigma=1.0, w=0.5, dim=1):
        w = _check_weight("w", w)
        sigma = check_positive("sigma", sigma)
        super().__init__(dim, sigma, {"w": w, "sigma": sigma})
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


class ExponentialMixture(IIDNoise):
    """mu_1(x) = exp(-w|x/a| - (1 - w)(x/a)^2) / (a Z(w)), ``w`` in [0, 1] (default 1/2), ``scale`` = a.
    Z(w) = sqrt(pi/c) erfcx(w/(2 sqrt c)), c = 1 - w (Z = 2 at w = 1); a = sigma / sqrt(E y^2), E y^2
    from closed-form moments at 100 digits. Sampling: exact rejection from the Laplace(rate w)
    envelope (accept w.p. exp(-c y^2)) or the N(0, 1/(2c)) envelope (accept w.p. exp(-w|y|)),
    whichever accepts more (>= 60%)."""

    name = "exponential-mixture"

    def __init__(self, sigma=None, w=0.5, dim=1, scale=None):
        w = _check_weight("w", w)
        m2, _ = _expmix_moments(w)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, math.sqrt(m2))
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


# --------------------------------------------------------------------------------------------
# non-i.i.d. families (radial in l2 or l_inf)
# --------------------------------------------------------------------------------------------


class UniformBall(Noise):
    """Uniform in the l2 ball of radius lam (``scale``), sigma = lam / sqrt(d + 2).
    Sampling: lam U^(1/d) Z/|Z|_2, Z ~ N(0, I_d)."""

    name = "uniform-ball"

    def __init__(self, sigma=None, dim=1, scale=None):
        dim = check_dim(dim)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, 1 / math.sqrt(dim + 2))
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})
        # log vol B_d(lam) = (d/2) log pi - lgamma(d/2 + 1) + d log lam
        self._log_volume = (0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim + 1)
                            + dim * math.log(self.scale))

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        z = torch.randn((n, self.dim), generator=generator, device=device, dtype=dtype)
        log_u = torch.log1p(-torch.rand(n, generator=generator, device=device, dtype=dtype))
        radius = self.scale * torch.exp(log_u / self.dim)
        return z * (radius / torch.linalg.vector_norm(z, dim=-1)).unsqueeze(-1)

    def log_prob(self, x):
        norm = torch.linalg.vector_norm(x, dim=-1)
        return torch.where(norm <= self.scale, torch.full_like(norm, -self._log_volume),
                           torch.full_like(norm, -math.inf))


class LinfExp(Noise):
    """mu(x) = exp(-|x|_inf/lam) / (2^d d! lam^d), ``scale`` = lam, sigma = lam sqrt((d+1)(d+2)/3).
    Sampling: R = |x|_inf ~ Gamma(d, lam) (the radial density is prop. to r^(d-1) e^(-r/lam)), then
    uniform on the l_inf sphere of radius R: a uniform face coordinate set to +-R, the others U[-R, R]."""

    name = "linf-exp"

    def __init__(self, sigma=None, dim=1, scale=None):
        dim = check_dim(dim)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale,
                                             math.sqrt((dim + 1) * (dim + 2) / 3))
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})
        self._log_norm = dim * math.log(2 * self.scale) + math.lgamma(dim + 1)

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        radius = self.scale * standard_gamma(self.dim, (n, 1), generator, device, dtype)
        x = radius * (2 * torch.rand((n, self.dim), generator=generator, device=device, dtype=dtype) - 1)
        face = torch.randint(0, self.dim, (n, 1), generator=generator, device=device)
        return x.scatter(1, face, _random_sign(radius, generator))

    def log_prob(self, x):
        return -x.abs().amax(-1) / self.scale - self._log_norm

    def log_ratio(self, e, delta):
        return (e.abs().amax(-1) - (e - delta).abs().amax(-1)) / self.scale


class L2Exp(Noise):
    """mu(x) = exp(-|x|_2/lam) Gamma(d/2) / (2 pi^(d/2) Gamma(d) lam^d), ``scale`` = lam,
    sigma = lam sqrt(d + 1). Sampling: R ~ Gamma(d, lam) times a uniform direction Z/|Z|_2."""

    name = "l2-exp"

    def __init__(self, sigma=None, dim=1, scale=None):
        dim = check_dim(dim)
        sigma, self.scale = _sigma_and_scale(self.name, sigma, scale, math.sqrt(dim + 1))
        super().__init__(dim, sigma, {"sigma": sigma, "scale": self.scale})
        self._log_norm = (math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)
                          + math.lgamma(dim) + dim * math.log(self.scale))

    def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
        z = torch.randn((n, self.dim), generator=generator, device=device, dtype=dtype)
        radius = self.scale * standard_gamma(self.dim, (n, 1), generator, device, dtype)
        return z * (radius / torch.linalg.vector_norm(z, dim=-1, keepdim=True))

    def log_prob(self, x):
        return -torch.linalg.vector_norm(x, dim=-1) / self.scale - self._log_norm

    def log_ratio(self, e, delta):
        # |e| - |e - delta| = (2<e, delta> - |delta|^2) / (|e| + |e - delta|): no cancellation
        num = 2 * (e * delta).sum(-1) - (delta * delta).sum(-1)
        den = torch.linalg.vector_norm(e, dim=-1) + torch.linalg.vector_norm(e - delta, dim=-1)
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


def noise(name, sigma: float | None = None, dim: int = 1, **shape) -> Noise:
    """Build a noise by family name, or wrap a torch Distribution / pass a Noise through.

    ``sigma`` is the per-coordinate standard deviation (default 1); families without a variance
    take ``scale=`` instead (see each family's docstring). Names accept ``_`` for ``-``.
    """
    if isinstance(name, Noise):
        return name
    if not isinstance(name, str):
        return DistributionNoise(name)
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
