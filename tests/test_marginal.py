"""Tests of unicr.marginal: the one-dimensional law from a noise's own log-density.

One table of laws (CASES) drives generic ``check_*`` helpers, scipy.stats style. Each case builds a
:class:`NumericMarginal` from a log-density and exact draws, and names a reference: the built-in
noise's scipy twin (``noise.marginal()``), a scipy.stats law, or a piecewise-uniform law whose
cdf, quantiles and moments are written out here. No reference is typed in from a run of the code.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.stats as st
import torch

import unicr
from unicr.marginal import NumericMarginal, numeric_marginal

N_DRAWS = 4096


# ------------------------------------------------------------------------------------------------
# laws
# ------------------------------------------------------------------------------------------------


class PiecewiseUniform:
    """Reference law with mass ``masses[i]`` spread evenly on [edges[i], edges[i+1]]: cdf summed
    from the left, sf from the right, quantiles and moments in closed form."""

    def __init__(self, edges, masses):
        self.edges, self.masses = np.asarray(edges, float), np.asarray(masses, float)
        self.widths = np.diff(self.edges)
        self.before = np.concatenate([[0.0], np.cumsum(self.masses)[:-1]])
        self.after = np.concatenate([np.cumsum(self.masses[::-1])[::-1][1:], [0.0]])

    def _piece(self, x):
        return np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, self.masses.size - 1)

    def cdf(self, x):
        x = np.asarray(x, float)
        i = self._piece(x)
        inside = self.before[i] + self.masses[i] * (x - self.edges[i]) / self.widths[i]
        return np.where(x < self.edges[0], 0.0, np.where(x > self.edges[-1], 1.0, inside))

    def sf(self, x):
        x = np.asarray(x, float)
        i = self._piece(x)
        inside = self.after[i] + self.masses[i] * (self.edges[i + 1] - x) / self.widths[i]
        return np.where(x < self.edges[0], 1.0, np.where(x > self.edges[-1], 0.0, inside))

    def pdf(self, x):
        x = np.asarray(x, float)
        # a point shared by two pieces belongs to the left one (as in the log-densities below)
        i = np.clip(np.searchsorted(self.edges, x, side="left") - 1, 0, self.masses.size - 1)
        inside = (x >= self.edges[0]) & (x <= self.edges[-1])
        return np.where(inside, self.masses[i] / self.widths[i], 0.0)

    def logpdf(self, x):
        with np.errstate(divide="ignore"):
            return np.log(self.pdf(x))

    def ppf(self, q):
        i = np.clip(np.searchsorted(self.before + self.masses, q, side="left"), 0, self.masses.size - 1)
        return self.edges[i] + (q - self.before[i]) / self.masses[i] * self.widths[i]

    def isf(self, q):
        start = (self.after + self.masses)[::-1]
        i = self.masses.size - 1 - np.clip(np.searchsorted(start, q, side="left"), 0, self.masses.size - 1)
        return self.edges[i + 1] - (q - self.after[i]) / self.masses[i] * self.widths[i]

    def median(self):
        return float(self.ppf(0.5))

    def mean(self):
        return float(np.sum(self.masses * (self.edges[:-1] + self.edges[1:]) / 2))

    def std(self):
        a, b = self.edges[:-1], self.edges[1:]
        return math.sqrt(float(np.sum(self.masses * (a * a + a * b + b * b) / 3)) - self.mean() ** 2)

    def support(self):
        return float(self.edges[0]), float(self.edges[-1])


class AsymmetricLaplace(unicr.IIDNoise):
    """A user's own i.i.d. noise, declaring nothing: density exp(-k x) for x >= 0, exp(x/k)
    below, over k + 1/k (scipy's laplace_asymmetric). Sampling: E/k with probability 1/(1 + k^2),
    else -k E, E ~ Exp(1)."""

    name = "asymmetric-laplace"

    def __init__(self, kappa: float, dim: int = 1):
        super().__init__(dim, None, {"kappa": kappa})
        self.kappa = kappa

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        e = -torch.log1p(-torch.rand(shape, generator=generator, device=device, dtype=dtype))
        up = torch.rand(shape, generator=generator, device=device, dtype=dtype) < 1 / (1 + self.kappa**2)
        return torch.where(up, e / self.kappa, -e * self.kappa)

    def log_prob_coords(self, x):
        k = self.kappa
        return torch.where(x >= 0, -k * x, x / k) - math.log(k + 1 / k)


def noise_log_density(noise):
    return lambda x: noise.log_prob_coords(torch.from_numpy(np.array(x, dtype=float))).numpy()


def noise_draws(noise, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return noise.sample_coords((N_DRAWS,), generator=gen, dtype=torch.float64).numpy()


def from_noise(name, offset=0.0, **shape):
    """A built-in noise through its log-density (plus ``offset``: unnormalised) and its sampler
    only; its declared scipy marginal is the reference."""
    noise = unicr.noise(name, dim=1, **shape)
    log_density = noise_log_density(noise)
    return NumericMarginal(lambda x: log_density(x) + offset, noise_draws(noise)), noise.marginal()


def uniform(declared: bool):
    """The uniform noise, its edges searched for or declared (``numeric_marginal``). Reference:
    the hand law (scipy's uniform computes sf as 1 - cdf, losing the upper tail)."""
    noise = unicr.noise("uniform", dim=1)
    a = noise.half_width
    marg = numeric_marginal(noise) if declared else NumericMarginal(noise_log_density(noise), noise_draws(noise))
    return marg, PiecewiseUniform([-a, a], [1.0])


def lomax(c=2.5):
    """scipy's one-sided Lomax, bounded below at 0, heavy upper tail."""
    def log_density(x):
        return np.where(x >= 0, math.log(c) - (c + 1) * np.log1p(np.maximum(x, 0.0)), -np.inf)
    law = st.lomax(c)
    return NumericMarginal(log_density, law.rvs(N_DRAWS, random_state=np.random.default_rng(1))), law


def torch_law(distribution, twin):
    """A one-dimensional torch Distribution wrapped as a noise (``numeric_marginal``)."""
    return numeric_marginal(unicr.noise(distribution, dim=1)), twin


def piecewise(edges, masses, seed=2):
    """A piecewise-uniform law from its log-density (the reference's) and draws: a piece by its
    mass, then a uniform point in it."""
    law = PiecewiseUniform(edges, masses)
    rng = np.random.default_rng(seed)
    piece = np.searchsorted(np.cumsum(law.masses), rng.random(N_DRAWS), side="right")
    draws = law.edges[piece] + law.widths[piece] * rng.random(N_DRAWS)
    return NumericMarginal(law.logpdf, draws), law


def f64(value):
    return torch.tensor(value, dtype=torch.float64)


CASES = {
    "gaussian": lambda: from_noise("gaussian"),
    "laplace": lambda: from_noise("laplace"),
    "logistic": lambda: from_noise("logistic"),
    "hyperbolic-secant": lambda: from_noise("hyperbolic-secant"),
    "cauchy": lambda: from_noise("cauchy"),
    "student-t-3": lambda: from_noise("student-t", nu=3.0),
    "student-t-0.5": lambda: from_noise("student-t", nu=0.5),
    "general-normal-0.5": lambda: from_noise("general-normal", beta=0.5),
    "general-normal-4": lambda: from_noise("general-normal", beta=4.0),
    "symmetric-lomax": lambda: from_noise("lomax", a=3.0),
    "unnormalised-logistic": lambda: from_noise("logistic", offset=7.3),
    "lomax": lomax,
    "uniform": lambda: uniform(declared=False),
    "uniform-declared": lambda: uniform(declared=True),
    "exponential": lambda: torch_law(torch.distributions.Exponential(f64(2.0)), st.expon(scale=0.5)),
    "gumbel": lambda: torch_law(torch.distributions.Gumbel(f64(0.3), f64(1.5)), st.gumbel_r(0.3, 1.5)),
    "asymmetric-laplace": lambda: (numeric_marginal(AsymmetricLaplace(2.0)), st.laplace_asymmetric(2.0)),
    # density 2/3 on [0, 1] and 1/6 on (1, 3]: jumps inside the support and at both edges
    "steps": lambda: piecewise([0.0, 1.0, 3.0], [2 / 3, 1 / 3]),
    # no mass on (1, 2): the support has a gap
    "gap": lambda: piecewise([0.0, 1.0, 2.0, 3.0], [0.6, 0.0, 0.4]),
}
#: points where a law has a kink, cusp or jump (grids are refined around them)
SPECIAL = {"laplace": [0.0], "general-normal-0.5": [0.0], "asymmetric-laplace": [0.0], "lomax": [0.0],
           "exponential": [0.0], "uniform": [-math.sqrt(3), math.sqrt(3)], "steps": [0.0, 1.0, 3.0],
           "gap": [0.0, 1.0, 2.0, 3.0]}


@pytest.fixture(scope="module")
def law():
    built = {}

    def get(name):
        if name not in built:
            built[name] = CASES[name]()
        return built[name]
    return get


def tail_quantiles(lowest=1e-15, n=61):
    return np.logspace(math.log10(lowest), math.log10(0.5), n)


def bulk_grid(name, twin, n=20001):
    """A grid over the central 1 - 2e-6 of the law, plus 21 neighbouring floats at each special point."""
    x = np.linspace(twin.ppf(1e-6), twin.isf(1e-6), n)
    near = [s + np.spacing(max(abs(s), 1.0)) * np.arange(-10, 11) for s in SPECIAL.get(name, [])]
    return np.sort(np.concatenate([x, *near]))


# ------------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------------


def check_tails(marg, twin):
    """cdf below the median and sf above it, at the reference's quantiles 1e-15 .. 1/2: absolute
    1e-12 and relative 1e-9."""
    q = tail_quantiles()
    for ours, ref, x in ((marg.cdf, twin.cdf, twin.ppf(q)), (marg.sf, twin.sf, twin.isf(q))):
        expected = ref(x)
        assert np.all(expected > 0)
        np.testing.assert_array_less(np.abs(ours(x) - expected), np.minimum(1e-12, 1e-9 * expected) + 1e-300)


def check_bulk(marg, twin, x):
    """cdf and sf to 1e-12 absolute on a grid; they add up to 1; both monotone."""
    cdf, sf = marg.cdf(x), marg.sf(x)
    assert np.abs(cdf - twin.cdf(x)).max() <= 1e-12
    assert np.abs(sf - twin.sf(x)).max() <= 1e-12
    assert np.abs(cdf + sf - 1).max() <= 1e-13
    assert np.all(np.diff(cdf) >= 0) and np.all(np.diff(sf) <= 0)
    assert np.all((cdf >= 0) & (cdf <= 1) & (sf >= 0) & (sf <= 1))


def check_logpdf(marg, twin, x):
    """The normalised log-density to 1e-11 (relative to 1 + |log pdf|); pdf = exp(logpdf)."""
    x = np.concatenate([x, twin.ppf(tail_quantiles()), twin.isf(tail_quantiles())])
    ours, ref = marg.logpdf(x), twin.logpdf(x)
    assert np.array_equal(np.isfinite(ours), np.isfinite(ref))
    finite = np.isfinite(ref)
    np.testing.assert_array_less(np.abs(ours[finite] - ref[finite]), 1e-11 * (1 + np.abs(ref[finite])))
    np.testing.assert_allclose(marg.pdf(x), np.exp(ours), rtol=0, atol=0)


def check_inverse(marg, twin):
    """ppf, isf for q from 1e-18 to 1/2: the reference's cdf/sf there is q to 1e-9 relative (plus
    the float spacing of x times the density); monotone in q, within the support."""
    q = tail_quantiles(1e-18, 91)
    lo, hi = marg.support()
    for inverse, ref, direction in ((marg.ppf, twin.cdf, 1), (marg.isf, twin.sf, -1)):
        x = inverse(q)
        slack = 4 * twin.pdf(x) * np.spacing(np.abs(x))
        np.testing.assert_array_less(np.abs(ref(x) - q), 1e-9 * q + slack)
        assert np.all(direction * np.diff(x) >= 0)
        assert np.all((x >= lo) & (x <= hi))


def check_support(marg, twin):
    """Edges equal the reference's to 2 ulps (jump edges located by bisection), +-inf if unbounded."""
    for ours, ref in zip(marg.support(), map(float, twin.support())):
        assert isinstance(ours, float)
        if math.isinf(ref):
            assert ours == ref
        else:
            assert abs(ours - ref) <= 2 * np.spacing(abs(ref))


def check_moments(marg, twin):
    """median, mean and std against the reference; inf (std) and not finite (mean) where the
    moment does not exist."""
    ref_median, ref_mean, ref_std = float(twin.median()), float(twin.mean()), float(twin.std())
    scale = float(twin.isf(0.25) - twin.ppf(0.25))
    assert abs(marg.median() - ref_median) <= 1e-12 * (abs(ref_median) + scale)
    if math.isfinite(ref_mean):
        assert abs(marg.mean() - ref_mean) <= 1e-10 * (abs(ref_mean) + scale)
    else:
        assert not math.isfinite(marg.mean())
    if math.isfinite(ref_std):
        assert marg.std() == pytest.approx(ref_std, rel=1e-10)
    else:
        assert marg.std() == math.inf


def check_shapes(marg):
    """Every method takes scalars (-> 0-d), lists and n-d arrays (shape kept), elementwise."""
    x = np.array([[-1.0, 0.5], [2.0, 0.25]])
    q = np.array([[1e-3, 0.5], [0.9, 0.25]])
    for method, arg in [("cdf", x), ("sf", x), ("logcdf", x), ("logsf", x), ("logpdf", x), ("pdf", x),
                        ("ppf", q), ("isf", q)]:
        f = getattr(marg, method)
        whole = f(arg)
        assert whole.shape == arg.shape and whole.dtype == np.float64
        assert np.array_equal(f(arg.tolist()), whole, equal_nan=True)
        for i in np.ndindex(arg.shape):
            one = f(float(arg[i]))
            assert np.ndim(one) == 0
            assert np.array_equal(one, whole[i], equal_nan=True)


def check_limits(marg):
    """Out of range: cdf/sf 0 and 1 beyond the edges and at +-inf, ppf/isf at 0 and 1 are the
    edges, nan for nan and for q outside [0, 1]; logcdf = log cdf."""
    lo, hi = marg.support()
    assert marg.cdf(-np.inf) == 0 and marg.cdf(np.inf) == 1 and marg.sf(-np.inf) == 1 and marg.sf(np.inf) == 0
    assert marg.cdf(lo) == 0 and marg.sf(hi) == 0
    assert marg.ppf(0.0) == lo and marg.ppf(1.0) == hi and marg.isf(0.0) == hi and marg.isf(1.0) == lo
    assert np.isnan(marg.cdf(np.nan)) and np.isnan(marg.sf(np.nan)) and np.isnan(marg.logpdf(np.nan))
    assert np.isnan(marg.ppf([-0.1, 1.1, np.nan])).all() and np.isnan(marg.isf([-0.1, 1.1])).all()
    x = np.linspace(marg.ppf(1e-9), marg.isf(1e-9), 101)
    with np.errstate(divide="ignore"):
        assert np.array_equal(marg.logcdf(x), np.log(marg.cdf(x)))
        assert np.array_equal(marg.logsf(x), np.log(marg.sf(x)))
    if math.isfinite(lo):
        assert marg.logpdf(np.nextafter(lo, -np.inf)) == -np.inf
    if math.isfinite(hi):
        assert marg.logpdf(np.nextafter(hi, np.inf)) == -np.inf


# ------------------------------------------------------------------------------------------------
# the table
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_cdf_and_sf(law, name):
    marg, twin = law(name)
    check_tails(marg, twin)
    check_bulk(marg, twin, bulk_grid(name, twin))


@pytest.mark.parametrize("name", CASES)
def test_logpdf(law, name):
    marg, twin = law(name)
    check_logpdf(marg, twin, bulk_grid(name, twin, 2001))


@pytest.mark.parametrize("name", CASES)
def test_inverses(law, name):
    marg, twin = law(name)
    check_inverse(marg, twin)


@pytest.mark.parametrize("name", CASES)
def test_support_and_moments(law, name):
    marg, twin = law(name)
    check_support(marg, twin)
    check_moments(marg, twin)
    assert 0 <= marg.error <= 1e-12


@pytest.mark.parametrize("name", ["laplace", "cauchy", "exponential", "steps"])
def test_shapes_and_limits(law, name):
    marg, _ = law(name)
    check_shapes(marg)
    check_limits(marg)


@pytest.mark.parametrize("seed", range(12))
def test_jumps_anywhere_in_a_panel(seed):
    """Two blocks with a gap, from different draws (hence different panels): a jump may fall
    between a panel's end and its outermost node, where no Gauss-Legendre rule looks."""
    marg, law = piecewise([0.0, 1.0, 2.0, 3.0], [0.5, 0.0, 0.5], seed=seed)
    x = np.linspace(-0.5, 3.5, 4001)
    assert np.abs(marg.cdf(x) - law.cdf(x)).max() <= 1e-12
    assert np.abs(marg.sf(x) - law.sf(x)).max() <= 1e-12


# ------------------------------------------------------------------------------------------------
# what the quadrature cannot trust
# ------------------------------------------------------------------------------------------------


def test_log_density_neginf_at_draws():
    draws = np.random.default_rng(3).standard_normal(N_DRAWS)
    with pytest.raises(ValueError, match=r"-inf .* draws of its own sampler"):
        NumericMarginal(lambda x: np.where(np.abs(x) <= 1, -math.log(2), -np.inf), draws)


def test_sampler_and_density_disagree():
    """N(0, 1) draws against a Laplace density of scale 3: a valid law, but not the sampler's."""
    draws = np.random.default_rng(4).standard_normal(N_DRAWS)
    with pytest.raises(ValueError, match="sampler and log-density disagree"):
        NumericMarginal(lambda x: -np.abs(x) / 3 - math.log(6), draws)


def test_numeric_marginal_names_the_noise():
    class Mislabelled(AsymmetricLaplace):
        def log_prob_coords(self, x):   # the mirror image of the sampler's law
            return super().log_prob_coords(-x)

    noise = Mislabelled(2.0)
    with pytest.raises(ValueError, match=re.escape(f"{noise!r}: the noise's sampler and log-density disagree")):
        numeric_marginal(noise)


def test_draws_outside_declared_support():
    with pytest.raises(ValueError, match="outside its declared support"):
        NumericMarginal(lambda x: -0.5 * x * x, np.random.default_rng(5).standard_normal(N_DRAWS),
                        support=(-1.0, 1.0))


def test_non_iid_noise():
    with pytest.raises(ValueError, match="i.i.d."):
        numeric_marginal(unicr.noise("uniform-ball", dim=2))


def test_float32_distribution():
    """A torch Distribution with float32 parameters has a float32 log-density: the marginal is as
    accurate as that (about 1e-6) and says so in ``error``, without refining its rounding."""
    marg = numeric_marginal(unicr.noise(torch.distributions.Laplace(0.0, 1.0), dim=1))
    x = np.linspace(-20, 20, 4001)
    assert np.abs(marg.cdf(x) - st.laplace.cdf(x)).max() <= 1e-5
    assert 0 < marg.error <= 1e-5
