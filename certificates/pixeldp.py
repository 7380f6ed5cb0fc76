"""Lecuyer et al. (IEEE S&P 2019), PixelDP: DP-based radii, columbia/pixeldp ``utils/robustness.py``.

Robustness condition on expected outputs: p_A > e^{2 eps} p_B + (1 + e^eps) delta_dp, for noise that
makes the prediction (eps, delta_dp)-DP against attacks of size L.
"""
from __future__ import annotations

import mpmath as mp

from .base import Certificate, NoiseMap, Reference

REFERENCE = Reference(
    authors="Lecuyer, Atlidakis, Geambasu, Hsu, Jana",
    title="Certified Robustness to Adversarial Examples with Differential Privacy",
    venue="IEEE S&P",
    year=2019,
    code="https://github.com/columbia/pixeldp (utils/robustness.py)",
    bibtex="""@inproceedings{lecuyer2019certified,
  title     = {Certified Robustness to Adversarial Examples with Differential Privacy},
  author    = {Lecuyer, Mathias and Atlidakis, Vaggelis and Geambasu, Roxana and Hsu, Daniel and Jana, Suman},
  booktitle = {2019 IEEE Symposium on Security and Privacy (SP)},
  pages     = {656--672},
  year      = {2019}
}""",
)

#: The reference code's grid of delta_dp for the Gaussian mechanism: 0.001, 0.002, ..., 0.299
#: (decimal strings, read at the working precision).
DELTA_GRID = tuple(f"0.{k:03d}" for k in range(1, 300))

LAPLACE = NoiseMap(
    family="laplace", scale="b", sigma_per_scale=lambda dim: mp.sqrt(2),
    relation="sigma = sqrt(2) * b (Laplace mechanism, per-coordinate scale b = L / eps)",
)
GAUSSIAN = NoiseMap(
    family="gaussian", scale="sigma",
    relation="sigma = sqrt(2 ln(1.25/delta_dp)) * L / eps (Gaussian mechanism)",
)


def gaussian_eps(p_a, p_b, delta):
    """Largest admissible eps for delta_dp = delta: min(1, ln x*), x* the positive root of
    p_B x^2 + delta x + delta - p_A = 0, i.e. x* = 2(p_A - delta) / (delta + sqrt(delta^2 + 4 p_B (p_A - delta)));
    0 unless p_A > p_B + 2 delta."""
    delta = mp.mpf(delta)
    if not p_a > p_b + 2 * delta:
        return mp.mpf(0)
    x = 2 * (p_a - delta) / (delta + mp.sqrt(delta ** 2 + 4 * p_b * (p_a - delta)))
    return min(mp.mpf(1), mp.log(x))


def gaussian_mult(delta):
    """sqrt(2 ln(1.25 / delta_dp)): sigma per unit of L / eps."""
    return mp.sqrt(2 * mp.log(mp.mpf(1.25) / mp.mpf(delta)))


def gaussian_envelope(p_a, p_b, deltas=DELTA_GRID):
    """max over delta_dp in ``deltas`` of eps*(delta) / sqrt(2 ln(1.25/delta)), i.e. R2 / sigma.

    Returns (R2 / sigma, best delta_dp, its eps*); (0, None, 0) where no delta_dp is admissible.
    """
    best = (mp.mpf(0), None, mp.mpf(0))
    for delta in map(mp.mpf, deltas):
        eps = gaussian_eps(p_a, p_b, delta)
        r = eps / gaussian_mult(delta)
        if r > best[0]:
            best = (r, delta, eps)
    return best


def _laplace(p_a, p_b, scale, dim, norm):
    """R1 = (b/2) ln(p_A / p_B)."""
    if p_b == 0:
        return mp.inf
    return scale / 2 * mp.log(p_a / p_b)


def _gaussian(deltas):
    def radius(p_a, p_b, scale, dim, norm):
        """R2 = sigma * max_delta eps*(delta) / sqrt(2 ln(1.25/delta))."""
        return scale * gaussian_envelope(p_a, p_b, deltas)[0]
    return radius


_ENVELOPE_NOTES = (
    "R2 = sigma * max over delta_dp in {0.001, ..., 0.299} of eps*(delta_dp)/sqrt(2 ln(1.25/delta_dp)), "
    "eps* in closed form (the reference code bisects eps in (0, 1) to 1e-3, slightly below eps*). "
    "The Gaussian mechanism needs eps <= 1, so the radius saturates. Differences from the reference "
    "code: it also returns 0 when p_A <= p_B + 2 delta_train (the training delta_dp, an argument the "
    "bound does not depend on); the catalog keeps every admissible delta_dp of the grid.")

PIXELDP_LAPLACE = Certificate(
    name="pixeldp-laplace",
    reference=REFERENCE,
    noise=LAPLACE,
    norms=(1.0,),
    claim="sound",
    domain="general",
    radius_fn=_laplace,
    notes="R1 = (b/2) ln(p_A/p_B) (Laplace mechanism, (eps, 0)-DP, no cap on eps); binary: "
          "(sigma/(2 sqrt 2)) ln(rho/(1 - rho)).",
)

PIXELDP_GAUSSIAN = Certificate(
    name="pixeldp-gaussian",
    reference=REFERENCE,
    noise=GAUSSIAN,
    norms=(2.0,),
    claim="sound",
    domain="general",
    radius_fn=_gaussian(DELTA_GRID),
    notes=_ENVELOPE_NOTES,
)

PIXELDP_GAUSSIAN_DELTA_1E5 = Certificate(
    name="pixeldp-gaussian-delta1e-5",
    reference=REFERENCE,
    noise=GAUSSIAN,
    norms=(2.0,),
    claim="sound",
    domain="general",
    radius_fn=_gaussian(("1e-5",)),
    notes="R2 = sigma eps*(1e-5)/sqrt(2 ln(1.25e5)); saturates at sigma/sqrt(2 ln 1.25e5) = 0.2062 sigma.",
)

PIXELDP_GAUSSIAN_DELTA_005 = Certificate(
    name="pixeldp-gaussian-delta0.05",
    reference=REFERENCE,
    noise=GAUSSIAN,
    norms=(2.0,),
    claim="sound",
    domain="general",
    radius_fn=_gaussian(("0.05",)),
    notes="R2 = sigma eps*(0.05)/sqrt(2 ln 25) (0.05 is the code's training default); saturates at 0.3941 sigma.",
)
