"""Table-driven tests of unicr.noises against independent scipy twins.

Every statistical check uses fixed seeds (deterministic), with thresholds derived from the failure
budget of tests/budget.py: a correct sampler fails a test with probability <= FAILURE_RATE = 1e-4.
A test that makes k statistical assertions (three seeds, several checks per seed) gives each the
level share(k) = FAILURE_RATE / k (union bound): p-values must exceed it (KS, chi-square and
binomial tests are exact or conservative for these sample sizes), and CLT checks of a mean use
the two-sided normal quantile normal_sigmas(k) (4.15 standard errors for k = 3). The normal
approximation is used only where it holds at that z (see CLT_MAX_SKEWNESS).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import scipy.integrate as integrate
import scipy.interpolate as interpolate
import scipy.special as sc
import scipy.stats as st
import torch

from tests.budget import normal_sigmas, share
from unicr.noises import (
    DistributionNoise,
    Gaussian,
    Laplace,
    Noise,
    Uniform,
    noise,
    noise_names,
    standard_gamma,
)

SEEDS = (0, 1, 2)
#: significance level of each p-value of a test with one p-value per seed
P_MIN = share(len(SEEDS))
N_DRAWS = 20_000
#: CLT checks of a mean of n = N_DRAWS terms Y at z = normal_sigmas(k) are trusted while the skewness
#: of Y is at most sqrt(n) / z^2 (~8 here): the first Edgeworth term (~ skewness / sqrt(n)) cancels in
#: a two-sided check, the second (~ skewness^2 z^4 / n) stays below 1. Simulated for Y = x^2 at z =
#: 4.15 (two-sided rate, nominal 3.3e-5): Gaussian (skewness 2.8) 3.5e-5, Laplace (6.6) 2e-5; beyond
#: the cut, general normal beta = 0.5 (29.7) 3.1e-4, lomax a = 5 and student-t nu = 5 (infinite)
#: 6e-4 and 3e-4: ten times the budget, even at 5 standard errors (5e-5 per seed).
CLT_MAX_SKEWNESS = math.sqrt(N_DRAWS) / normal_sigmas(len(SEEDS)) ** 2
BIG_DIM = 150_528  # 3 x 224 x 224


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small tensors: one intra-op thread (several spin badly when pytest-xdist fills the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# independent twins (scipy components; quadrature where scipy has no such law)
# --------------------------------------------------------------------------------------------


class SymmetrizedTwin:
    """Law of S |X| with S a fair sign and X ~ ``base`` on [0, inf)."""

    def __init__(self, base):
        self.base = base

    def logpdf(self, x):
        return math.log(0.5) + self.base.logpdf(np.abs(x))

    def sf(self, x):
        x = np.asarray(x, dtype=float)
        return np.where(x >= 0, 0.5 * self.base.sf(np.abs(x)), 1 - 0.5 * self.base.sf(np.abs(x)))

    def cdf(self, x):
        return self.sf(-np.asarray(x, dtype=float))

    def var(self):
        return self.base.moment(2)


class LaplaceTwin:
    """scipy's laplace, with logpdf in closed form (scipy's underflows to -inf far out)."""

    def __init__(self, b):
        self.b, self.frozen = b, st.laplace(scale=b)

    def logpdf(self, x):
        return -np.abs(x) / self.b - math.log(2 * self.b)

    def __getattr__(self, attr):
        return getattr(self.frozen, attr)


class MixtureTwin:
    """sum_i w_i component_i (additive density mixture of centred scipy laws)."""

    def __init__(self, weights, components):
        self.weights = np.asarray(weights, dtype=float)
        self.components = components

    def logpdf(self, x):
        logs = np.stack([c.logpdf(x) for c in self.components])
        weights = self.weights.reshape((-1,) + (1,) * np.ndim(x))
        return sc.logsumexp(logs, axis=0, b=weights * np.ones_like(logs))

    def cdf(self, x):
        return sum(w * c.cdf(x) for w, c in zip(self.weights, self.components))

    def sf(self, x):
        return sum(w * c.sf(x) for w, c in zip(self.weights, self.components))

    def var(self):
        return sum(w * c.var() for w, c in zip(self.weights, self.components))


class ExpMixtureTwin:
    """exp(-w|x/a| - (1-w)(x/a)^2), with a and the normaliser from quadrature, the cdf from a
    cumulative Simpson rule on a fine grid and cubic Hermite interpolation (pdf as derivative)."""

    def __init__(self, w, sigma):
        self.w = w
        unnorm = lambda y: math.exp(-w * abs(y) - (1 - w) * y * y)  # noqa: E731
        z = 2 * integrate.quad(unnorm, 0, np.inf, epsabs=0, epsrel=1e-13)[0]
        m2 = 2 * integrate.quad(lambda y: y * y * unnorm(y), 0, np.inf, epsabs=0, epsrel=1e-13)[0] / z
        self.a = sigma / math.sqrt(m2)
        self.log_norm = math.log(self.a * z)
        self._var = sigma**2
        grid = np.linspace(0, 60 * sigma, 200_001)
        pdf = np.exp(self.logpdf(grid))
        right = integrate.cumulative_simpson(pdf, x=grid, initial=0.0)
        self._sf_right = interpolate.CubicHermiteSpline(grid, 0.5 - right, -pdf, extrapolate=False)

    def logpdf(self, x):
        y = np.asarray(x, dtype=float) / self.a
        return -self.w * np.abs(y) - (1 - self.w) * y * y - self.log_norm

    def sf(self, x):
        x = np.asarray(x, dtype=float)
        s = np.nan_to_num(self._sf_right(np.abs(x)), nan=0.0)  # 0 beyond 60 sigma
        return np.where(x >= 0, s, 1 - s)

    def cdf(self, x):
        return self.sf(-np.asarray(x, dtype=float))

    def var(self):
        return self._var


def gennorm_twin(beta, sigma):
    alpha = sigma * math.sqrt(sc.gamma(1 / beta) / sc.gamma(3 / beta))
    return st.gennorm(beta, scale=alpha)


def gauss_laplace_twin(w, sigma):
    return MixtureTwin([w, 1 - w], [LaplaceTwin(sigma / math.sqrt(2)), st.norm(scale=sigma)])


# --------------------------------------------------------------------------------------------
# the tables
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    kwargs: dict = field(default_factory=dict)
    twin: object = None  # independent one-dimensional law (iid families)

    @property
    def id(self):
        return self.name + "".join(f"-{k}{v:g}" for k, v in self.kwargs.items())

    def make(self, dim=1) -> Noise:
        return noise(self.name, dim=dim, **self.kwargs)


IID_CASES = [
    Case("gaussian", {"sigma": 1.3}, st.norm(scale=1.3)),
    Case("laplace", {"sigma": 0.7}, st.laplace(scale=0.7 / math.sqrt(2))),
    Case("uniform", {"sigma": 0.5}, st.uniform(loc=-0.5 * math.sqrt(3), scale=math.sqrt(3))),
    Case("general-normal", {"beta": 0.5, "sigma": 1.2}, gennorm_twin(0.5, 1.2)),
    Case("general-normal", {"beta": 1.0, "sigma": 1.2}, st.laplace(scale=1.2 / math.sqrt(2))),
    Case("general-normal", {"beta": 1.5, "sigma": 0.8}, gennorm_twin(1.5, 0.8)),
    Case("general-normal", {"beta": 2.0, "sigma": 0.8}, st.norm(scale=0.8)),
    Case("general-normal", {"beta": 8.0, "sigma": 1.0}, gennorm_twin(8.0, 1.0)),
    Case("cauchy", {"scale": 2.0}, st.cauchy(scale=2.0)),
    Case("lomax", {"a": 5.0, "sigma": 1.0}, SymmetrizedTwin(st.lomax(5.0, scale=math.sqrt(6)))),
    Case("lomax", {"a": 1.5, "scale": 0.8}, SymmetrizedTwin(st.lomax(1.5, scale=0.8))),
    Case("pareto", {"a": 3.0, "scale": 1.5}, SymmetrizedTwin(st.lomax(3.0, scale=1.5))),
    Case("hyperbolic-secant", {"sigma": 1.1}, st.hypsecant(scale=2 * 1.1 / math.pi)),
    Case("logistic", {"sigma": 0.9}, st.logistic(scale=0.9 * math.sqrt(3) / math.pi)),
    Case("student-t", {"nu": 5.0, "sigma": 1.0}, st.t(5.0, scale=math.sqrt(3 / 5))),
    Case("student-t", {"nu": 1.5, "scale": 0.7}, st.t(1.5, scale=0.7)),
    Case("student-t", {"nu": 0.5, "scale": 1.0}, st.t(0.5)),
    Case("gaussian-laplace", {"sigma": 1.1}, gauss_laplace_twin(0.5, 1.1)),
    Case("gaussian-laplace", {"w": 0.2, "sigma": 1.1}, gauss_laplace_twin(0.2, 1.1)),
    Case("gaussian-laplace", {"w": 0.0, "sigma": 0.9}, st.norm(scale=0.9)),
    Case("gaussian-laplace", {"w": 1.0, "sigma": 0.9}, st.laplace(scale=0.9 / math.sqrt(2))),
    Case("exponential-mixture", {"sigma": 1.0}, ExpMixtureTwin(0.5, 1.0)),
    Case("exponential-mixture", {"w": 0.1, "sigma": 1.5}, ExpMixtureTwin(0.1, 1.5)),
    Case("exponential-mixture", {"w": 0.9, "sigma": 0.6}, ExpMixtureTwin(0.9, 0.6)),
    Case("exponential-mixture", {"w": 0.0, "sigma": 1.0}, st.norm()),
    Case("exponential-mixture", {"w": 1.0, "sigma": 1.0}, st.laplace(scale=1 / math.sqrt(2))),
]

# non-iid: (case, dims); the law of the norm R and its scale lam come from each family's formula
RADIAL_CASES = [
    (Case("uniform-ball", {"sigma": 0.8}), (1, 3, 10)),
    (Case("linf-exp", {"sigma": 0.8}), (1, 4, 10)),
    (Case("l2-exp", {"sigma": 0.8}), (1, 2, 7)),
]


def radial_scale(name, sigma, d):
    """lam from sigma, from E|x|^2 = d sigma^2 (derived independently of the module)."""
    second_moment_per_lam2 = {  # E|x|_2^2 / lam^2
        "uniform-ball": d / (d + 2),  # R = lam U^(1/d)
        "linf-exp": d * (d + 1) * (1 + (d - 1) / 3),  # R ~ Gamma(d, lam); one face at R, others U[-R, R]
        "l2-exp": d * (d + 1),  # R ~ Gamma(d, lam)
    }[name]
    return sigma * math.sqrt(d / second_moment_per_lam2)


def norm_law(name, d, lam):
    """(the norm used by the family, frozen law of that norm)."""
    if name == "uniform-ball":
        return 2, st.beta(d, 1, scale=lam)  # cdf (r/lam)^d
    return (math.inf if name == "linf-exp" else 2), st.gamma(d, scale=lam)


RADIAL_FLAT = [(case, d) for case, dims in RADIAL_CASES for d in dims]
ALL_FLAT = [(case, 3) for case in IID_CASES] + RADIAL_FLAT
ALL_CASES = IID_CASES + [case for case, _ in RADIAL_CASES]


def ids(flat):
    return [f"{case.id}-d{d}" for case, d in flat]


def draw(nz, n, seed, **kw):
    return nz.sample(n, generator=torch.Generator().manual_seed(seed), **kw)


# --------------------------------------------------------------------------------------------
# generic checks, i.i.d. families
# --------------------------------------------------------------------------------------------


def probe_points(nz):
    m = nz.marginal()
    lo, hi = m.support()
    s = nz.sigma or nz.scale
    pts = np.array([0.0, 1e-3, 0.37, 1.0, 2.5, 7.0, 30.0, 300.0, 1e5]) * s
    pts = np.concatenate([pts, -pts[1:]])
    return pts[(pts > lo) & (pts < hi)]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning:scipy")  # scipy's hypsecant
@pytest.mark.parametrize("case", IID_CASES, ids=[c.id for c in IID_CASES])
def test_log_prob_matches_twin(case):
    nz = case.make(dim=3)
    x = probe_points(nz)
    ours = nz.log_prob_coords(torch.tensor(x)).numpy()
    twin = case.twin.logpdf(x)
    underflow = np.isneginf(twin)  # some scipy twins take log(pdf): -inf once pdf underflows
    assert (ours[underflow] < math.log(np.finfo(float).tiny)).all()
    np.testing.assert_allclose(ours[~underflow], twin[~underflow], rtol=1e-10, atol=1e-12)
    x = x[~underflow]
    # log_prob sums the coordinates over the last dimension
    rows = torch.tensor(x[: 3 * (len(x) // 3)]).reshape(-1, 3)
    np.testing.assert_allclose(nz.log_prob(rows).numpy(), case.twin.logpdf(rows.numpy()).sum(-1),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nz.marginal().logpdf(x), ours[~underflow], rtol=1e-12, atol=1e-12)


def integrate_1d(nz, fn):
    lo, hi = nz.marginal().support()
    def pdf(t):
        return fn(t) * math.exp(float(nz.log_prob_coords(torch.tensor(t, dtype=torch.float64))))

    opts = dict(epsabs=0, epsrel=1e-12, limit=500)
    return integrate.quad(pdf, lo, 0, **opts)[0] + integrate.quad(pdf, 0, hi, **opts)[0]


@pytest.mark.parametrize("case", IID_CASES, ids=[c.id for c in IID_CASES])
def test_density_integrates_to_one_with_variance_sigma2(case):
    nz = case.make()
    assert integrate_1d(nz, lambda t: 1.0) == pytest.approx(1.0, rel=1e-9)
    if nz.sigma is not None:
        assert integrate_1d(nz, lambda t: t * t) == pytest.approx(nz.sigma**2, rel=1e-8)
        assert nz.marginal().var() == pytest.approx(nz.sigma**2, rel=1e-12)
        assert case.twin.var() == pytest.approx(nz.sigma**2, rel=1e-9)


def tail_mass(nz, t):
    """int_t^hi mu_1: 64-point Gauss-Legendre panels in v = log x, finer near t, then one panel per
    decade (polynomial tails included) up to min(hi, 1e300) (beyond: < 1e-150 of these tails)."""
    top = math.log(min(nz.marginal().support()[1], 1e300))
    edges = math.log(t) + np.r_[np.log([1, 1.1, 1.5, 2, 4]), math.log(10) * np.arange(1, 700)]
    edges = np.r_[edges[edges < top], top]
    nodes, weights = np.polynomial.legendre.leggauss(64)
    lo, hi = edges[:-1, None], edges[1:, None]
    v = torch.tensor(0.5 * (hi - lo) * nodes + 0.5 * (hi + lo))
    f = torch.exp(v + nz.log_prob_coords(torch.exp(v))).numpy()
    return float((0.5 * (hi - lo) * weights * f).sum())


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning:scipy")  # scipy's hypsecant
@pytest.mark.parametrize("case", IID_CASES, ids=[c.id for c in IID_CASES])
def test_marginal_cdf_sf_and_tails(case):
    nz = case.make()
    m = nz.marginal()
    x = probe_points(nz)
    np.testing.assert_allclose(m.cdf(x), case.twin.cdf(x), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(m.sf(x), case.twin.sf(x), rtol=1e-8, atol=1e-9)
    # right tails against quadrature of our own density
    for t in x[(x > 0) & (m.sf(x) > 1e-280)]:
        assert m.sf(t) == pytest.approx(tail_mass(nz, t), rel=1e-9)
    # quantiles: sf(isf(q)) = q deep into the tail, ppf(q) = -isf(q) (symmetry)
    q = np.array([1e-300, 1e-100, 1e-20, 1e-5, 0.3, 0.5, 0.9])
    xq = m.isf(q)
    assert not np.isnan(xq).any()
    assert (np.diff(xq) <= 0).all()
    ok = np.isfinite(xq) & (m.sf(xq) > 0)
    np.testing.assert_allclose(m.sf(xq[ok]), q[ok], rtol=1e-9)
    np.testing.assert_allclose(m.ppf(q), -xq, rtol=1e-12)
    logsf = m.logsf(xq[ok & (q > 1e-250)])
    np.testing.assert_allclose(logsf, np.log(q[ok & (q > 1e-250)]), rtol=1e-10)


@pytest.mark.parametrize("case", IID_CASES, ids=[c.id for c in IID_CASES])
def test_sampler_kolmogorov_smirnov(case):
    nz = case.make(dim=4)
    for seed in SEEDS:
        x = draw(nz, N_DRAWS // 4, seed)
        assert x.shape == (N_DRAWS // 4, 4) and x.dtype == torch.float64
        p = st.kstest(x.flatten().numpy(), case.twin.cdf).pvalue
        assert p > P_MIN, f"seed {seed}: KS p = {p:.2e}"


def twin_moment(twin, k):
    """E x^k (k even) of an independent twin: scipy's moments, component by component for the
    test's own twins, quadrature for ExpMixtureTwin (light tails); inf where it diverges."""
    if isinstance(twin, SymmetrizedTwin):
        return twin.base.moment(k)
    if isinstance(twin, MixtureTwin):
        return sum(w * twin_moment(c, k) for w, c in zip(twin.weights, twin.components))
    if isinstance(twin, ExpMixtureTwin):
        f = lambda x: x**k * math.exp(float(twin.logpdf(x)))  # noqa: E731
        return 2 * integrate.quad(f, 0, np.inf, epsabs=0, epsrel=1e-10, limit=200)[0]
    return twin.moment(k)


def square_skewness(twin) -> float:
    """Skewness of Y = x^2 under the twin (inf without a finite sixth moment: a divergent
    moment integral shows as an IntegrationWarning)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", integrate.IntegrationWarning)
            m2, m4, m6 = (float(twin_moment(twin, k)) for k in (2, 4, 6))
    except integrate.IntegrationWarning:
        return math.inf
    if not all(map(math.isfinite, (m2, m4, m6))):
        return math.inf
    return (m6 - 3 * m2 * m4 + 2 * m2**3) / (m4 - m2**2) ** 1.5


@pytest.mark.parametrize("case", IID_CASES, ids=[c.id for c in IID_CASES])
def test_sampler_second_moment(case):
    """Mean of x^2 against sigma^2, one CLT check per seed at normal_sigmas(len(SEEDS)) standard
    errors (4.15); only where the normal approximation holds at that z (CLT_MAX_SKEWNESS). The
    heavy-tailed families are left to the KS test, whose twins' variance is checked by quadrature."""
    nz = case.make(dim=4)
    if nz.sigma is None or not np.isfinite(nz.marginal().stats(moments="k")):
        pytest.skip("no finite fourth moment: the CLT band does not apply")
    skew = square_skewness(case.twin)
    if not skew <= CLT_MAX_SKEWNESS:
        pytest.skip(f"x^2 has skewness {skew:.3g} > {CLT_MAX_SKEWNESS:.3g}: the normal approximation "
                    "fails at the budget's z")
    z = normal_sigmas(len(SEEDS))
    for seed in SEEDS:
        sq = draw(nz, N_DRAWS // 4, seed).flatten().numpy() ** 2
        se = sq.std() / math.sqrt(sq.size)
        assert abs(sq.mean() - nz.sigma**2) < z * se, f"seed {seed}: {abs(sq.mean() - nz.sigma**2) / se:.2f} se > {z:.2f}"


# --------------------------------------------------------------------------------------------
# generic checks, non-i.i.d. families
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case,d", RADIAL_FLAT, ids=ids(RADIAL_FLAT))
def test_radial_law_of_the_norm(case, d):
    nz = case.make(dim=d)
    assert not nz.iid and nz.symmetric
    lam = radial_scale(case.name, case.kwargs["sigma"], d)
    assert nz.scale == pytest.approx(lam, rel=1e-13)
    order, law = norm_law(case.name, d, lam)
    checks = 2 * len(SEEDS)  # a KS p-value and a CLT check per seed (|x|^2/d: skewness <= 6.6)
    p_min, z = share(checks), normal_sigmas(checks)
    for seed in SEEDS:
        x = draw(nz, N_DRAWS, seed)
        assert x.shape == (N_DRAWS, d)
        r = torch.linalg.vector_norm(x, ord=order, dim=-1).numpy()
        p = st.kstest(r, law.cdf).pvalue
        assert p > p_min, f"seed {seed}: KS p = {p:.2e}"
        sq = (x**2).sum(-1).numpy() / d
        assert abs(sq.mean() - nz.sigma**2) < z * sq.std() / math.sqrt(sq.size)


@pytest.mark.parametrize("case,d", RADIAL_FLAT, ids=ids(RADIAL_FLAT))
def test_radial_direction_is_symmetric(case, d):
    nz = case.make(dim=d)
    n = N_DRAWS
    # per seed: 2d CLT checks of bounded means (u_i, u_i^2), and for linf-exp 3 p-values (1 if d = 1)
    per_seed = 2 * d + ((3 if d > 1 else 1) if case.name == "linf-exp" else 0)
    p_min, z = share(per_seed * len(SEEDS)), normal_sigmas(per_seed * len(SEEDS))
    for seed in SEEDS:
        x = draw(nz, n, seed).numpy()
        u = x / np.linalg.norm(x, axis=-1, keepdims=True)
        # centred, and exchangeable coordinates: E u_i = 0, E u_i^2 equal across i (sum_i u_i^2 = 1,
        # so u2.mean() is exactly 1/d)
        assert (np.abs(u.mean(0)) < z * u.std(0) / math.sqrt(n)).all()
        u2 = u**2
        assert (np.abs(u2.mean(0) - u2.mean()) <= z * u2.std(0) / math.sqrt(n)).all()
        if case.name == "linf-exp":
            # the face coordinate is uniform, its sign fair, the other coordinates U[-R, R]
            r = np.abs(x).max(-1, keepdims=True)
            face = np.abs(x).argmax(-1)
            if d > 1:
                assert st.chisquare(np.bincount(face, minlength=d)).pvalue > p_min
                others = (x / r)[np.arange(d)[None, :] != face[:, None]]
                assert st.kstest(others, st.uniform(loc=-1, scale=2).cdf).pvalue > p_min
            positive = int((x[np.arange(n), face] > 0).sum())
            assert st.binomtest(positive, n).pvalue > p_min


@pytest.mark.parametrize("case,d", RADIAL_FLAT, ids=ids(RADIAL_FLAT))
def test_radial_density_integrates_to_one(case, d):
    nz = case.make(dim=d)
    # surface measure of the unit sphere of the family's norm, times r^(d-1)
    if case.name == "linf-exp":
        log_surface = math.log(d) + d * math.log(2.0)
    else:
        log_surface = math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    e1 = torch.zeros(d, dtype=torch.float64)
    e1[0] = 1.0

    def integrand(r):
        return math.exp(log_surface + (d - 1) * math.log(r) + float(nz.log_prob(r * e1))) if r > 0 else 0.0

    total = integrate.quad(integrand, 0, nz.scale, epsabs=0, epsrel=1e-12)[0]
    if case.name != "uniform-ball":
        total += integrate.quad(integrand, nz.scale, np.inf, epsabs=0, epsrel=1e-12)[0]
    else:
        assert float(nz.log_prob(1.0001 * nz.scale * e1)) == -math.inf
    assert total == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("name,iid_twin",
                         [("uniform-ball", Uniform), ("linf-exp", Laplace), ("l2-exp", Laplace)])
def test_radial_families_in_one_dimension(name, iid_twin):
    x = torch.linspace(-6, 6, 101, dtype=torch.float64).unsqueeze(-1)
    ours, twin = noise(name, sigma=0.9, dim=1), iid_twin(0.9, dim=1)
    np.testing.assert_allclose(ours.log_prob(x).numpy(), twin.log_prob(x).numpy(), rtol=1e-13)


# --------------------------------------------------------------------------------------------
# generic checks, every family
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case,d", ALL_FLAT, ids=ids(ALL_FLAT))
def test_seeding_is_reproducible(case, d):
    nz = case.make(dim=d)
    a, b, c = draw(nz, 257, 7), draw(nz, 257, 7), draw(nz, 257, 8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert draw(nz, 16, 7, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("case,d", ALL_FLAT, ids=ids(ALL_FLAT))
def test_log_ratio_is_the_log_density_difference(case, d):
    nz = case.make(dim=d)
    gen = torch.Generator().manual_seed(3)
    e = draw(nz, 200, 11)
    delta = (nz.sigma or nz.scale) * torch.randn((200, d), generator=gen, dtype=torch.float64)
    delta[::3, 0] = 0.0
    ref = nz.log_prob(e - delta) - nz.log_prob(e)
    got = nz.log_ratio(e, delta)
    assert got.shape == (200,)
    finite = torch.isfinite(ref)
    scale = 1 + nz.log_prob(e).abs() + nz.log_prob(e - delta).abs()
    assert ((got - ref).abs()[finite] <= 1e-12 * scale[finite]).all()
    assert torch.equal(got[~finite], ref[~finite])
    assert torch.equal(nz.log_ratio(e, torch.zeros_like(e)), torch.zeros(200, dtype=torch.float64))


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_no_overflow_at_imagenet_dimension(case):
    nz = case.make(dim=BIG_DIM)
    e = draw(nz, 1, 5)
    assert e.shape == (1, BIG_DIM) and torch.isfinite(e).all()
    delta = torch.zeros_like(e)
    delta[:, :10] = 1e-3 * (nz.sigma or nz.scale)
    lp = nz.log_prob(e)
    assert torch.isfinite(lp).all()
    lr = nz.log_ratio(e, delta)
    assert not torch.isnan(lr).any() and (lr < math.inf).all()
    if case.name not in ("uniform", "uniform-ball"):
        assert torch.isfinite(lr).all()
        assert torch.allclose(lr, nz.log_prob(e - delta) - lp, rtol=0, atol=1e-9 * lp.abs().max())


@pytest.mark.parametrize("case,d", ALL_FLAT, ids=ids(ALL_FLAT))
def test_describe_shows_parameters(case, d):
    text = case.make(dim=d).describe()
    assert text.startswith(case.make().name + "(") and f"dim={d}" in text
    for key in case.kwargs:
        assert f"{key}=" in text


# --------------------------------------------------------------------------------------------
# family-specific facts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,kwargs", [("laplace", {}), ("general-normal", {"beta": 1.0}),
                                         ("exponential-mixture", {"w": 1.0})])
def test_laplace_atoms_of_the_log_ratio_are_exact(name, kwargs):
    nz = noise(name, sigma=0.9, **kwargs)
    b = nz.scale
    s = torch.tensor([0.3, 1.7, 1e-9], dtype=torch.float64)
    right = s + torch.tensor([0.0, 2.5, 1e6], dtype=torch.float64)  # u >= s > 0
    left = -torch.tensor([0.0, 0.4, 3.0], dtype=torch.float64)  # u <= 0 < s
    assert torch.equal(nz.log_ratio_coords(right, s), s / b)
    assert torch.equal(nz.log_ratio_coords(left, s), -s / b)
    assert torch.equal(nz.log_ratio_coords(-right, -s), s / b)


def test_uniform_log_ratio_keeps_infinities():
    nz = noise("uniform", sigma=1.0)
    a = nz.half_width
    u = torch.tensor([0.0, a - 0.1, -a + 0.1, a + 1.0])
    s = torch.tensor([0.5, -0.5, 0.5, 1.5])
    assert nz.log_ratio_coords(u.double(), s.double()).tolist() == [0.0, -math.inf, -math.inf, math.inf]


def test_general_normal_special_shapes():
    x = torch.linspace(-5, 5, 41, dtype=torch.float64)
    gauss, lap = noise("general-normal", sigma=1.3, beta=2), noise("general-normal", sigma=1.3, beta=1)
    assert gauss.scale == pytest.approx(math.sqrt(2) * 1.3, rel=1e-14)
    assert lap.scale == pytest.approx(1.3 / math.sqrt(2), rel=1e-14)
    torch.testing.assert_close(gauss.log_prob_coords(x), Gaussian(1.3).log_prob_coords(x), rtol=1e-13, atol=0)
    torch.testing.assert_close(lap.log_prob_coords(x), Laplace(1.3).log_prob_coords(x), rtol=1e-13, atol=0)


@pytest.mark.parametrize("name,kwargs,scale", [
    ("lomax", {"a": 4.0}, math.sqrt(3.0)),  # lam = sigma sqrt((a-1)(a-2)/2)
    ("student-t", {"nu": 4.0}, math.sqrt(0.5)),  # s = sigma sqrt((nu-2)/nu)
    ("logistic", {}, math.sqrt(3) / math.pi),
    ("hyperbolic-secant", {}, 2 / math.pi),
    ("general-normal", {"beta": 3.0}, math.sqrt(math.gamma(1 / 3) / math.gamma(1.0))),
])
def test_sigma_and_scale_are_interchangeable(name, kwargs, scale):
    by_sigma = noise(name, sigma=1.0, **kwargs)
    by_scale = noise(name, scale=scale, **kwargs)
    assert by_sigma.scale == pytest.approx(scale, rel=1e-13)
    assert by_scale.sigma == pytest.approx(1.0, rel=1e-13)


def test_exponential_mixture_near_laplace_limit_is_continuous():
    near, lap = noise("exponential-mixture", w=1 - 1e-12), noise("exponential-mixture", w=1.0)
    assert near.scale == pytest.approx(lap.scale, rel=1e-10)
    x = torch.linspace(-8, 8, 33, dtype=torch.float64)
    torch.testing.assert_close(near.log_prob_coords(x), lap.log_prob_coords(x), rtol=1e-9, atol=1e-9)


def test_registry_names_and_aliases():
    expected = {"gaussian", "laplace", "uniform", "general-normal", "cauchy", "lomax", "pareto",
                "hyperbolic-secant", "sech", "logistic", "student-t", "gaussian-laplace",
                "exponential-mixture", "uniform-ball", "linf-exp", "l2-exp"}
    assert expected <= set(noise_names())
    assert type(noise("pareto", a=3)) is type(noise("lomax", a=3))
    assert type(noise("sech")) is type(noise("hyperbolic-secant"))
    assert noise("student_t", nu=3).name == "student-t"
    assert noise("L2_EXP", dim=4).dim == 4
    nz = noise("logistic")
    assert noise(nz) is nz
    assert noise("general-normal", beta=2).sigma == 1.0  # sigma defaults to 1
    assert noise("cauchy").scale == 1.0 and noise("cauchy").sigma is None


# --------------------------------------------------------------------------------------------
# standard_gamma
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [0.05, 0.5, 1.0, 2.5, 150_528.0])
def test_standard_gamma_matches_gamma_law(shape):
    for seed in SEEDS:
        g = standard_gamma(shape, (N_DRAWS,), torch.Generator().manual_seed(seed))
        assert g.shape == (N_DRAWS,) and g.dtype == torch.float64
        if shape < 0.1:  # many draws underflow in linear scale: test log G against log-gamma
            log_g = standard_gamma(shape, (N_DRAWS,), torch.Generator().manual_seed(seed), log=True)
            p = st.kstest(log_g.numpy(), st.loggamma(shape).cdf).pvalue
            torch.testing.assert_close(torch.exp(log_g), g, rtol=1e-12, atol=0)
        else:
            p = st.kstest(g.numpy(), st.gamma(shape).cdf).pvalue
        assert p > P_MIN, f"seed {seed}: KS p = {p:.2e}"


def test_standard_gamma_seeding_shape_and_dtype():
    gen = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a = standard_gamma(0.7, (3, 4), gen(1))
    assert a.shape == (3, 4) and (a > 0).all()
    assert torch.equal(a, standard_gamma(0.7, (3, 4), gen(1)))
    assert not torch.equal(a, standard_gamma(0.7, (3, 4), gen(2)))
    assert standard_gamma(3.0, 5, gen(1), dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="shape_param"):
        standard_gamma(0.0, 5, gen(1))


# --------------------------------------------------------------------------------------------
# DistributionNoise
# --------------------------------------------------------------------------------------------


def test_distribution_noise_multivariate_normal():
    cov = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
    mvn = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), covariance_matrix=cov)
    nz = noise(mvn)
    assert isinstance(nz, DistributionNoise) and nz.dim == 3 and not nz.iid
    assert nz.sigma == pytest.approx(math.sqrt(3.5 / 3), rel=1e-12)
    x = draw(nz, 50, 4)
    assert x.shape == (50, 3)
    assert torch.equal(x, draw(nz, 50, 4)) and not torch.equal(x, draw(nz, 50, 5))
    torch.testing.assert_close(nz.log_prob(x), mvn.log_prob(x))
    ref = st.multivariate_normal(np.zeros(3), cov.numpy()).logpdf(x.numpy())
    np.testing.assert_allclose(nz.log_prob(x).numpy(), ref, rtol=1e-12)


def normal_4():
    return torch.distributions.Normal(torch.zeros(4, dtype=torch.float64), 2.0)


@pytest.mark.parametrize("make", [
    lambda: torch.distributions.Independent(normal_4(), 1),
    normal_4,  # a batch of 1-D laws
], ids=["independent", "batch"])
def test_distribution_noise_independent_normal(make):
    nz = DistributionNoise(make())
    assert nz.dim == 4 and nz.sigma == pytest.approx(2.0)
    x = draw(nz, 20, 0)
    torch.testing.assert_close(nz.log_prob(x), Gaussian(2.0, dim=4).log_prob(x), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(nz.log_ratio(x, 0.3 * torch.ones(4, dtype=torch.float64)),
                               Gaussian(2.0, dim=4).log_ratio(x, 0.3 * torch.ones(4, dtype=torch.float64)))


def test_distribution_noise_rejects_objects_without_log_prob():
    class NoLogProb:
        def sample(self, shape):
            return torch.zeros(shape)

    with pytest.raises(ValueError, match="log_prob"):
        noise(NoLogProb())
    with pytest.raises(ValueError, match="log_prob"):
        DistributionNoise(object())


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------

BAD_INPUTS = [
    ("no-such-noise", {}, "noise"),
    ("gaussian", {"sigma": 0.0}, "sigma"),
    ("laplace", {"sigma": -1.0}, "sigma"),
    ("uniform", {"sigma": math.inf}, "sigma"),
    ("gaussian", {"dim": 0}, "dim"),
    ("linf-exp", {"dim": 1.5}, "dim"),
    ("uniform-ball", {"dim": 0}, "dim"),
    ("gaussian", {"beta": 2.0}, "beta"),  # not a parameter of this family
    ("general-normal", {}, "beta"),
    ("general-normal", {"beta": 0.0}, "beta"),
    ("general-normal", {"beta": -2.0}, "beta"),
    ("general-normal", {"beta": 2.0, "sigma": 1.0, "scale": 1.0}, "sigma or scale"),
    ("lomax", {"a": 0.0}, r"\ba\b"),
    ("lomax", {}, r"\ba\b"),
    ("pareto", {"a": 2.0, "sigma": 1.0}, "sigma"),
    ("lomax", {"a": 3.0, "scale": 0.0}, "scale"),
    ("student-t", {"nu": 0.0}, "nu"),
    ("student-t", {"nu": 2.0, "sigma": 1.0}, "sigma"),
    ("cauchy", {"sigma": 1.0}, "sigma"),
    ("cauchy", {"scale": -1.0}, "scale"),
    ("gaussian-laplace", {"w": 1.5}, r"\bw\b"),
    ("gaussian-laplace", {"w": "heavy"}, r"\bw\b"),
    ("exponential-mixture", {"w": -0.1}, r"\bw\b"),
    ("exponential-mixture", {"sigma": 0.0}, "sigma"),
    ("logistic", {"sigma": math.nan}, "sigma"),
    ("hyperbolic-secant", {"sigma": -2.0}, "sigma"),
    ("l2-exp", {"scale": 0.0}, "scale"),
]


@pytest.mark.parametrize("name,kwargs,match", BAD_INPUTS,
                         ids=[f"{n}-{'-'.join(map(str, k))}" for n, k, _ in BAD_INPUTS])
def test_bad_inputs_raise_value_error_naming_the_argument(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        noise(name, **kwargs)


def test_sigma_error_says_where_scale_is_needed():
    with pytest.raises(ValueError, match="no finite variance; pass scale="):
        noise("student-t", nu=1.0, sigma=1.0)
