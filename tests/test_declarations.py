"""What each registered noise declares must be true of its law, and the engine must assume nothing more.

A generic battery, driven by the live registry (``unicr.noise_names()``, each family's ``example``):
a new family registered with ``unicr.register_noise`` is picked up without editing this file.
Every check compares the declaration with the law itself (its sampler and ``log_prob``), so a wrong
declaration, the worst bug a shortcut can cause, fails here. The statistical check (the sampler
against the declared marginal) takes its level from the one budget (tests/budget.py).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import unicr
from tests.budget import share
from unicr import noises as nz
from unicr.exact import applies
from unicr.streams import generator

FAMILIES = sorted({nz._REGISTRY[name] for name in unicr.noise_names()}, key=lambda f: f.name)
DIM = 5
DRAWS = 4000


def family_id(factory):
    return factory.name


@pytest.fixture(params=FAMILIES, ids=family_id)
def noise(request):
    return request.param.example(DIM)


def draws(noise, n=DRAWS, seed=0):
    return noise.sample(n, generator=torch.Generator().manual_seed(seed))


def test_symmetry_declarations_hold(noise):
    x = draws(noise)
    lp = noise.log_prob(x)
    assert torch.isfinite(lp).all()
    if noise.symmetric:
        assert torch.allclose(noise.log_prob(-x), lp, rtol=1e-9, atol=1e-9)
    if noise.coordinatewise_symmetric:
        flipped = x.clone()
        flipped[:, 1] = -flipped[:, 1]
        assert torch.allclose(noise.log_prob(flipped), lp, rtol=1e-9, atol=1e-9)
    if noise.exchangeable:
        assert torch.allclose(noise.log_prob(x.flip(-1)), lp, rtol=1e-9, atol=1e-9)


def test_support_declaration_holds(noise):
    if noise.support is None:
        return
    lo, hi = noise.support
    x = draws(noise)
    assert ((x >= lo) & (x <= hi)).all()
    if math.isfinite(hi):
        outside = torch.full((1, DIM), 0.0, dtype=torch.float64)
        outside[0, 0] = hi * 1.01 + 1e-9
        assert torch.isneginf(noise.log_prob(outside)).all()


def test_log_concavity_declaration_holds(noise):
    """log mu is concave along random lines through random draws (second differences <= 0)."""
    if not noise.log_concave:
        return
    x = draws(noise, 64)
    direction = torch.randn((64, DIM), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.linspace(-0.3, 0.3, 7, dtype=torch.float64)[:, None, None]
    line = noise.log_prob(x + t * direction)                                      # (7, 64)
    finite = torch.isfinite(line).all(0)
    second = line[2:, finite] - 2 * line[1:-1, finite] + line[:-2, finite]
    assert (second <= 1e-9 * (1 + line[:, finite].abs().max())).all()


def test_sigma_and_scale_relation(noise):
    ratio = type(noise).sigma_per_scale(DIM, **{k: v for k, v in noise.params.items()
                                                if k not in ("sigma", "scale")})
    if noise.sigma is None:
        assert ratio is None
    else:
        assert noise.scale is not None and noise.sigma / noise.scale == pytest.approx(ratio, rel=1e-12)


def test_sampler_matches_declared_marginal(noise):
    """Kolmogorov-Smirnov of the draws against the declared scipy twin, at the budget's level."""
    try:
        marginal = noise.marginal()
    except NotImplementedError:
        return
    x = draws(noise, 20_000).reshape(-1)[:20_000].numpy()
    assert stats.kstest(x, marginal.cdf).pvalue > share(1)
    grid = marginal.ppf(np.linspace(0.01, 0.99, 9))
    got = noise.log_prob_coords(torch.as_tensor(grid)).numpy()
    assert np.allclose(got, marginal.logpdf(grid), rtol=1e-9, atol=1e-12)


def test_ray_shortcuts_equal_direct_evaluation(noise):
    """ray_log_ratio (a sufficient statistic where declared) equals log mu(u - lam v) - log mu(u)."""
    v = unicr.equal_direction(3, DIM, 2).values
    u = noise.sample_support(200, 3, generator=generator(0, "main")) if noise.iid else draws(noise, 200)
    vv = v if noise.iid else torch.cat([v, torch.zeros(DIM - 3, dtype=torch.float64)])
    lams = torch.tensor([0.0, 0.05, 0.3, 1.5], dtype=torch.float64)
    fast = noise.ray_log_ratio(u, vv)(lams)
    direct = torch.stack([(noise.log_ratio_coords(u, lam * vv).sum(-1) if noise.iid
                           else noise.log_ratio(u, lam * vv)) for lam in lams])
    same = (fast == direct) | ((fast - direct).abs() <= 1e-9 * (1 + direct.abs()))
    assert same.all()


def test_ray_sampler_matches_direct_sampling(noise):
    """Where a sufficient statistic is drawn directly, its L has the law of L from full draws
    (two-sample KS at the budget's level, at one lam)."""
    v = unicr.equal_direction(3, DIM, 2)
    vv = v.values if noise.iid else v.dense()
    sampler = noise.ray_sampler(vv, v.groups)
    if sampler is None:
        return
    lam = torch.tensor([0.4 * (noise.scale or noise.sigma or 1.0)], dtype=torch.float64)
    fast = sampler(20_000, generator(1, "main"), torch.device("cpu"), torch.float64)(lam)[0].numpy()
    u = noise.sample_support(20_000, 3, generator=generator(2, "main")) if noise.iid else draws(noise, 20_000, 2)
    direct = noise.ray_log_ratio(u, vv)(lam)[0].numpy()
    finite = np.isfinite(fast).mean(), np.isfinite(direct).mean()
    assert abs(finite[0] - finite[1]) < 0.05
    if np.ptp(direct[np.isfinite(direct)]) > 0:
        assert stats.ks_2samp(fast[np.isfinite(fast)], direct[np.isfinite(direct)]).pvalue > share(1)


# -- what is assumed of a noise that declares nothing ------------------------------------------------

class Bounded(unicr.IIDNoise):
    """A user's triangular noise on [-1, 1], with its scipy twin: bounded, nothing declared."""

    name = "user-triangular"

    def __init__(self, dim=1):
        super().__init__(dim, 1 / math.sqrt(6), {})

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        w = torch.rand(shape, generator=generator, device=device, dtype=dtype)
        return u - w

    def log_prob_coords(self, x):
        return torch.log((1 - x.abs()).clamp_min(0))

    def marginal(self):
        return stats.triang(0.5, loc=-1, scale=2)


def test_undeclared_user_noise_takes_the_general_path():
    noise = Bounded(8)
    assert not (noise.symmetric or noise.coordinatewise_symmetric or noise.log_concave)
    assert noise.exchangeable and noise.support is None and noise.closed_form is None
    family = unicr.search_family(noise, 2)
    labels = {d.label for d in family}
    assert {"axis", "-axis", "diagonal", "-diagonal", "diagonal (4-)"} <= labels
    # bounded support: the exact backend's numeric paths, labelled numerical (no symmetry, no
    # log-concavity assumed, and the edges' rounding is not in the bounds)
    assert applies(noise, unicr.equal_direction(4, 8, 2))
    df = unicr.radius_curve(noise, 2, p_a=[0.7, 0.9], samples=4000, backend="auto")
    assert (df.backend == "exact").all() and (df.band == "numerical").all()
    assert (df.lower <= df.radius).all() and (df.radius <= df.upper).all()


def test_exact_estimate_lies_inside_its_band():
    noise = unicr.noise("laplace", dim=64)
    p_a = np.linspace(0.55, 1 - 1e-6, 60)
    for search in ("axis", "diagonal"):
        df = unicr.radius_curve(noise, 2, p_a=p_a, backend="exact", search=search)
        assert (df.lower <= df.radius).all() and (df.radius <= df.upper).all()
        assert set(df.band) == {"rigorous"}


def test_streams_never_coincide():
    first = lambda seed, purpose, chunk=0: torch.rand(4, generator=generator(seed, purpose, chunk))
    draws_ = [first(s, p, c) for s in (0, 1) for p in ("main", "pilot", "search", "witness") for c in (0, 1)]
    assert len({tuple(d.tolist()) for d in draws_}) == len(draws_)
    assert torch.equal(first(3, "main"), first(3, "main"))
    with pytest.raises(ValueError, match="stream"):
        generator(0, "nope")


def test_distribution_noise_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    noise = unicr.noise(torch.distributions.Gumbel(torch.tensor(0.0, dtype=torch.float64),
                                                   torch.tensor(1.0, dtype=torch.float64)), dim=4)
    a = noise.sample(10, generator=torch.Generator().manual_seed(5))
    b = noise.sample(10, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), before)


def test_direction_equality_and_shape_keywords():
    a, b = unicr.equal_direction(3, 8, 2), unicr.equal_direction(3, 8, 2)
    assert a == b and hash(a) == hash(b) and a != unicr.equal_direction(3, 8, 2, negative=1)
    assert len({a, b}) == 1
    with pytest.raises(TypeError):
        nz.GeneralNormal(1.0, 64, 1.5)          # shape parameters are keyword-only
    assert nz.GeneralNormal(1.0, 64, beta=1.5).dim == 64


def test_witness_round_trip_and_rescaling():
    r = unicr.certified_radius(unicr.noise("laplace", dim=16), 0.9, 2, samples=4000)
    w = r.witness
    back = unicr.Witness.from_dict(w.to_dict())
    assert back.direction == w.direction and back.scale == pytest.approx(w.scale)
    assert w.delta_norm == pytest.approx(r.upper)
    half = w.rescaled(0.5 * w.delta_norm)
    assert half.delta_norm == pytest.approx(0.5 * w.delta_norm) and half.direction == w.direction
    assert float(unicr.lp_norm(half.delta(), 2)) == pytest.approx(half.delta_norm)


def test_transformed_distribution_outside_its_base_support():
    """A torch TransformedDistribution (Beta(2, 2) moved to [-1, 1]) says its support is the real
    line while torch validates against the base's: log_prob is -inf outside, not an error, and the
    marginal computed from it matches the scipy twin."""
    d = torch.distributions
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)
    noise = unicr.noise(d.TransformedDistribution(d.Beta(f64(2.0), f64(2.0)), [d.AffineTransform(f64(-1.0), f64(2.0))]),
                        dim=4)
    lp = noise.log_prob_coords(torch.tensor([-3.0, -1.5, 0.25, 1.5], dtype=torch.float64))
    twin = stats.beta(2, 2, loc=-1, scale=2)
    assert torch.isinf(lp[[0, 1, 3]]).all() and abs(float(lp[2]) - twin.logpdf(0.25)) < 1e-12
    x = np.linspace(-0.99, 0.99, 41)
    assert np.max(np.abs(noise.numeric_marginal().cdf(x) - twin.cdf(x))) < 1e-12


def test_a_noise_that_says_iid_without_being_iidnoise_takes_monte_carlo():
    """A plain Noise subclass that sets iid = True has no per-coordinate law to compute a marginal
    from: the exact backend does not apply, and the radius comes from Monte Carlo."""

    class SaysIID(unicr.Noise):
        name = "says-iid"
        iid = True

        def __init__(self, dim=2):
            super().__init__(dim, 1.0, {})

        def sample(self, n, *, generator=None, device=None, dtype=torch.float64):
            return torch.randn((n, self.dim), generator=generator, device=device, dtype=dtype)

        def log_prob(self, x):
            return -0.5 * (x * x).sum(-1)

    noise = SaysIID()
    assert not applies(noise, unicr.equal_direction(1, 2, 2))
    df = unicr.radius_curve(noise, 2, p_a=[0.8], samples=2000, search="axis")
    assert (df.backend == "mc").all()
