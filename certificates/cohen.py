"""Cohen, Rosenfeld, Kolter (ICML 2019): Gaussian smoothing, locuslab/smoothing ``code/core.py``."""
from __future__ import annotations

import math

import mpmath as mp

from ._special import norm_isf, norm_ppf
from .base import Certificate, NoiseMap, Reference

REFERENCE = Reference(
    authors="Cohen, Rosenfeld, Kolter",
    title="Certified Adversarial Robustness via Randomized Smoothing",
    venue="ICML",
    year=2019,
    code="https://github.com/locuslab/smoothing (code/core.py)",
    bibtex="""@inproceedings{cohen2019certified,
  title     = {Certified Adversarial Robustness via Randomized Smoothing},
  author    = {Cohen, Jeremy and Rosenfeld, Elan and Kolter, Zico},
  booktitle = {Proceedings of the 36th International Conference on Machine Learning},
  series    = {PMLR},
  volume    = {97},
  pages     = {1310--1320},
  year      = {2019}
}""",
)

GAUSSIAN = NoiseMap(family="gaussian", scale="sigma", relation="sigma = sigma (N(0, sigma^2 I))")


def gaussian_l2(p_a, p_b, scale):
    """(sigma/2)(Phi^-1(p_A) - Phi^-1(p_B)); sigma Phi^-1(p_A) when p_B = 1 - p_A."""
    if p_b == 1 - p_a:
        return scale * norm_isf(p_b)
    return scale / 2 * (norm_ppf(p_a) - norm_ppf(p_b))


def _radius(p_a, p_b, scale, dim, norm):
    """R2 = (sigma/2)(Phi^-1(p_A) - Phi^-1(p_B)); R1 = R2; Rinf = R2 / sqrt(d)."""
    r2 = gaussian_l2(p_a, p_b, scale)
    return r2 / mp.sqrt(dim) if norm == math.inf else r2


COHEN = Certificate(
    name="cohen",
    reference=REFERENCE,
    noise=GAUSSIAN,
    norms=(2.0, 1.0, math.inf),
    claim="tight",
    domain="general",
    radius_fn=_radius,
    notes=("l2: R = (sigma/2)(Phi^-1(p_A) - Phi^-1(p_B)) (Theorem 1; core.py certifies sigma*Phi^-1(pA_lower)). "
           "l1 = l2 (the worst case depends on ||delta||_2 only); linf = l2/sqrt(d) (delta = t(1,...,1)). "
           "Tight in all three norms."),
)
