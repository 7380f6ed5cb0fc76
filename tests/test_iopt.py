"""unicr.optimize_noise (I-OPT) on classifiers whose smoothed answers are known.

* The half-space f(z) = 1[z_1 > 0] at x_1 = t: every symmetric noise gives the same smoothed
  classifier, whose tight radius is t in every l_p; near the boundary no noise can certify more.
* Far from the boundary (or for a constant classifier) every count saturates and the radius is
  sigma F_beta^-1(alpha^(1/n)) (Yang et al.'s tight general-normal l1 radius): a heavier tail
  (smaller beta) and a larger sigma help, so the climb runs to the ends of the allowed ranges.
* The slab f(z) = 1[|z_1| < 1] at x = 0: I-OPT's radius exceeds the distance to the boundary of the
  classifier smoothed with the training noise, which I-OPT keeps the class of at each input: the
  radius is not a certificate (Súkeník et al., ICML 2022), and the result says so.

Failure budget (tests/budget.py): with selection "same" the chosen noise is one of the K lattice
points within ``steps`` moves of the start, so a bound p_A_lower > p_A at the chosen noise needs a
Clopper-Pearson failure at one of them: probability <= K alpha (union bound). Tests that rely on
such a bound take alpha = share(K * calls). Everything else is deterministic given the seed (fixed
draws), or exact: a saturated count involves no randomness.
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from scipy import optimize, stats
from scipy.special import gamma

import unicr
from tests.budget import share
from unicr.certification import certify, engine_radius
from unicr.iopt import NOT_A_CERTIFICATE
from unicr.streams import generator

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = ("input-dependent noise: this radius is not a certificate for the neighbourhood of x (Súkeník, "
            "Kuvshinov, Günnemann, ICML 2022: 'Intriguing properties of input-dependent randomized smoothing'); "
            "the smoothed classifier changes with x")


def half_space(batch):
    """f(z) = 1[z_1 > 0] (labels)."""
    return (batch.reshape(batch.shape[0], -1)[:, 0] > 0).long()


def slab(batch):
    """f(z) = 1[|z_1| < 1] (labels)."""
    return (batch.reshape(batch.shape[0], -1)[:, 0].abs() < 1).long()


def constant(batch):
    """Class 0 everywhere, as logits (B, 2)."""
    return torch.stack([torch.ones(batch.shape[0]), torch.zeros(batch.shape[0])], 1)


def lattice_points(steps: int) -> int:
    """Points (i, u, v), u, v >= 0, with |i| + u + v <= steps: the noises a climb can evaluate."""
    return sum(1 for i in range(-steps, steps + 1) for u in range(steps + 1) for v in range(steps + 1)
               if abs(i) + u + v <= steps)


def quantile(beta: float, sigma: float, p: float) -> float:
    """F^-1(p) of the general normal with shape beta and standard deviation sigma (scipy)."""
    return float(stats.gennorm(beta, scale=sigma * math.sqrt(gamma(1 / beta) / gamma(3 / beta))).ppf(p))


def settings(**kw) -> unicr.IOptSettings:
    return unicr.IOptSettings(**{"n0": 100, "n": 2000, "n_tune": 500, "seed": 3, **kw})


def test_the_result_is_labelled_not_a_certificate():
    result = unicr.optimize_noise(half_space, torch.tensor([0.5, 0.0]), 1, start=("general-normal", 0.5, 2.0),
                                  settings=settings(steps=2))
    assert NOT_A_CERTIFICATE == SENTENCE
    assert result.is_certificate is False and result.warning == SENTENCE
    assert SENTENCE in str(result) and "NOT A CERTIFICATE" in str(result)
    assert unicr.InputOptimized.is_certificate is False


@pytest.mark.parametrize("selection", ["same", "separate"])
@pytest.mark.parametrize("norm, beta", [(1, 1.5), (2, 2.0)])
def test_no_steps_is_certify_with_the_start_noise(norm, beta, selection):
    x = torch.tensor([0.3, -0.2, 0.1])
    noise = unicr.noise("general-normal", sigma=0.5, dim=3, beta=beta)
    result = unicr.optimize_noise(half_space, x, norm, start=noise, settings=settings(steps=0, selection=selection))
    expected = certify(half_space, x, noise, norm, n0=100, n=2000, seed=3)
    assert result.start == expected
    chosen = result.chosen
    assert (chosen.beta, chosen.sigma) == (beta, 0.5)
    assert (chosen.prediction, chosen.p_a_lower, chosen.radius, chosen.counts, chosen.basis, chosen.formula) == \
        (expected.prediction, expected.p_a_lower, expected.radius, expected.counts, expected.basis,
         expected.certificate)
    assert result.gain == 0 and result.relative_gain == 0 and result.evaluations == 1
    assert len(result.path) == 1


@pytest.mark.parametrize("seed", range(3))
def test_near_the_half_space_boundary_the_class_is_kept_and_no_noise_beats_t(seed):
    """radius <= t needs p_A_lower <= F(t) at the chosen noise: budget share(K * 3 seeds)."""
    t, steps = 0.4, 3
    alpha = share(lattice_points(steps) * 3)
    s = unicr.IOptSettings(steps=steps, beta_step=0.5, sigma_step=0.2, beta_range=(1.0, 3.0), n0=100,
                           n=20_000, alpha=alpha, seed=seed)
    x = torch.tensor([t, 0.0, 0.0])
    result = unicr.optimize_noise(half_space, x, 1, start=("general-normal", 0.5, 2.0), settings=s)
    assert result.prediction == result.start.prediction == 1
    assert result.gain >= 0 and result.radius <= t
    assert all(step.prediction == 1 for step in result.path)
    assert all(a.radius < b.radius for a, b in zip(result.path, result.path[1:]))
    # "same": the chosen noise's numbers are unicr.certify's on the same draws; its radius is the
    # sigma0 formula scaled by sigma / sigma0 (exact for the catalog formula, up to rounding)
    direct = certify(half_space, x, result.noise, 1, n0=100, n=20_000, alpha=alpha, seed=seed)
    assert (direct.prediction, direct.p_a_lower, direct.counts, direct.basis, direct.certificate) == \
        (result.prediction, result.p_a_lower, result.chosen.counts, result.basis, result.chosen.formula)
    assert result.radius == pytest.approx(direct.radius, rel=1e-9)


def test_with_saturated_counts_the_heaviest_tail_wins():
    """A constant classifier: every count is n, p_A_lower = alpha^(1/n), the l1 radius is
    sigma F_beta^-1(p_A_lower), decreasing in beta: the climb walks beta down to the range's end."""
    s = settings(steps=10, beta_step=0.5, beta_range=(1.0, 3.0), sigma_range=(1.0, 1.0), n=1000, alpha=1e-3)
    result = unicr.optimize_noise(constant, torch.zeros(2), 1, start=("general-normal", 0.7, 2.5), settings=s)
    p = 1e-3 ** (1 / 1000)
    assert [step.beta for step in result.path] == [2.5, 2.0, 1.5, 1.0]
    assert all(step.sigma == 0.7 and step.p_a_lower == pytest.approx(p, rel=1e-12) for step in result.path)
    for step in result.path:
        assert step.radius == pytest.approx(quantile(step.beta, 0.7, p), rel=1e-9)
    assert result.gain == pytest.approx(result.radius - result.start.radius) and result.gain > 0
    assert result.relative_gain == pytest.approx(result.gain / result.start.radius)


def test_the_engine_radius_scales_with_sigma():
    """l2 general-normal has no catalog certificate: the engine curve at sigma0, scaled by
    sigma / sigma0, equals the engine's own curve at the chosen sigma. Saturated counts push sigma
    up to the range's end (0.5 * 1.25^3 = 0.9765625 <= 0.5 * 2)."""
    s = settings(steps=5, sigma_step=0.25, beta_range=(2.0, 2.0), sigma_range=(0.5, 2.0), n=1000)
    result = unicr.optimize_noise(constant, torch.zeros(2), 2, start=("general-normal", 0.5, 2.0), settings=s)
    assert result.sigma == pytest.approx(0.5 * 1.25 ** 3) and result.basis == "approximate"
    assert result.radius == pytest.approx(engine_radius(result.noise, 2, result.p_a_lower), rel=1e-6)


@pytest.mark.parametrize("selection", ["same", "separate"])
def test_a_noise_that_changes_the_class_never_counts(selection):
    """The slab at x = 0 with sigma0 = 1/Phi^-1(0.8): class 1 with p = 0.6. At 1.9 sigma0 the class
    is 0 with p = 0.66 and a larger radius; the climb must not take it."""
    sigma0 = 1 / stats.norm.ppf(0.8)
    s = unicr.IOptSettings(steps=1, sigma_step=0.9, beta_range=(2.0, 2.0), sigma_range=(1.0, 2.0), n0=1000,
                           n=5000, n_tune=5000, seed=0, selection=selection)
    x = torch.zeros(2)
    result = unicr.optimize_noise(slab, x, 2, start=("general-normal", sigma0, 2.0), settings=s)
    flipped = certify(slab, x, unicr.noise("general-normal", sigma=1.9 * sigma0, dim=2, beta=2.0), 2, n0=1000,
                      n=5000, seed=0)
    assert flipped.prediction == 0 and flipped.radius > result.start.radius
    assert result.prediction == result.start.prediction == 1
    assert result.sigma == sigma0 and result.evaluations == 2 and len(result.path) == 1


def test_the_radius_is_not_a_certificate_for_the_ball():
    """The slab with training noise sigma0 = 1.3: g answers 1 exactly on |x_1| < b = 0.6745, so any
    certificate at 0 is <= b; I-OPT reports more, and at x' inside its ball keeps class 0."""
    b = optimize.brentq(lambda u: stats.norm.cdf((1 - u) / 1.3) - stats.norm.cdf((-1 - u) / 1.3) - 0.5, 0, 1)
    s = unicr.IOptSettings(steps=10, sigma_step=0.2, beta_range=(2.0, 2.0), sigma_range=(0.25, 1.0), n0=100,
                           n=10_000, alpha=share(2 * lattice_points(10)), seed=0)
    start = ("general-normal", 1.3, 2.0)
    at_x = unicr.optimize_noise(slab, torch.zeros(2), 2, start=start, settings=s)
    assert at_x.prediction == 1   # the start's class (budgeted); the margin below is this seed's power
    assert at_x.radius > b + 0.1
    inside = torch.tensor([(b + at_x.radius) / 2, 0.0])
    assert unicr.optimize_noise(slab, inside, 2, start=start, settings=s).prediction != 1


@pytest.mark.parametrize("selection", ["same", "separate"])
def test_same_seed_same_result(selection):
    run = lambda: unicr.optimize_noise(half_space, torch.tensor([1.5, 0.0]), 1, start=("general-normal", 0.5, 2.0),
                                       settings=settings(steps=4, beta_step=0.5, sigma_step=0.2,
                                                         beta_range=(1.0, 3.0), selection=selection))
    first, second = run(), run()
    assert first == second and str(first) == str(second)
    assert len(first.path) > 1   # it moved: the comparison covers the climb


def test_separate_selection_chooses_on_the_tune_stream():
    """With one batch per call the model sees: CERTIFY's select and estimate draws of the start,
    then ("separate") the start's n_tune draws of the tune stream; "same" never draws n_tune."""
    x = torch.tensor([1.5, 0.0], dtype=torch.float64)
    noise = unicr.noise("general-normal", sigma=0.5, dim=2, beta=2.0)
    seen = {}
    for selection in ("same", "separate"):
        batches = seen[selection] = []

        def model(batch):
            batches.append(batch.clone())
            return half_space(batch)
        result = unicr.optimize_noise(model, x, 1, start=noise, settings=settings(
            steps=3, sigma_step=0.2, beta_range=(2.0, 2.0), n0=100, n=2000, n_tune=700, batch_size=5000,
            selection=selection))
        assert result.prediction == 1
    tune = x + noise.sample(700, generator=generator(3, "tune", 0), dtype=torch.float64)
    assert torch.equal(seen["separate"][2], tune)
    assert {len(b) for b in seen["same"]} == {100, 2000}
    assert 700 in {len(b) for b in seen["separate"]}
    assert all(len(b) != 700 for b in seen["same"])


@pytest.mark.parametrize("field, value, message", [
    ("steps", -1, "steps must be an integer >= 0"),
    ("steps", 1.5, "steps must be an integer >= 0"),
    ("beta_step", 0, "beta_step must lie in 0 < beta_step < inf"),
    ("beta_step", math.inf, "beta_step must lie in 0 < beta_step < inf"),
    ("sigma_step", 1.0, r"sigma_step must lie in the open interval \(0, 1\)"),
    ("sigma_step", 0.0, r"sigma_step must lie in the open interval \(0, 1\)"),
    ("beta_range", (3.0, 1.0), r"beta_range must be a pair \(low, high\) with 0 < low <= high < inf"),
    ("beta_range", (0.0, 2.0), r"beta_range must be a pair \(low, high\) with 0 < low <= high < inf"),
    ("beta_range", 2.0, r"beta_range must be a pair"),
    ("sigma_range", (1.2, 2.0), r"sigma_range must be a pair \(low, high\) with 0 < low <= 1 <= high < inf"),
    ("sigma_range", (0.5, 0.9), r"sigma_range must be a pair \(low, high\) with 0 < low <= 1 <= high < inf"),
    ("n", 0, "n must be an integer >= 1"),
    ("n_tune", 0, "n_tune must be an integer >= 1"),
    ("alpha", 1.0, r"alpha must lie in the open interval \(0, 1\)"),
    ("selection", "best", "selection must be one of 'same', 'separate'"),
])
def test_bad_settings_name_the_field_and_its_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        unicr.IOptSettings(**{field: value})


@pytest.mark.parametrize("start, s, message", [
    (("general-normal", 0.5, 5.0), None, r"beta_range \(1.0, 4.0\) must contain the start's beta = 5"),
    (unicr.noise("gaussian", sigma=0.5, dim=2), None, r"start must be a general-normal noise .*beta=2"),
    (("laplace", 0.5, 1.0), None, r"start must be \('general-normal', sigma, beta\)"),
    ("general-normal", None, r"start must be \('general-normal', sigma, beta\)"),
    (("general-normal", -1.0, 2.0), None, "sigma"),
])
def test_bad_starts_are_refused(start, s, message):
    with pytest.raises(ValueError, match=message):
        unicr.optimize_noise(half_space, torch.zeros(2), 2, start=start, settings=s)


def test_the_documented_example_prints_what_the_page_says(capsys):
    page = (ROOT / "docs" / "iopt.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", page, re.DOTALL).group(1)
    output = re.search(r"Output:\n\n```text\n(.*?)```", page, re.DOTALL).group(1)
    namespace = {}
    exec(compile(code, "docs/iopt.md", "exec"), namespace)
    assert capsys.readouterr().out == output
    # the page's figures for selection="separate", n_tune=2000
    separate = replace(namespace["settings"], selection="separate", n_tune=2000)
    result = unicr.optimize_noise(namespace["slab"], torch.zeros(2), 1, start=namespace["start"], settings=separate)
    assert (result.beta, round(result.sigma, 3), round(result.radius, 3)) == (2.5, 0.426, 0.849)
