"""Teng, Lee, Yuan: l1 certificate for i.i.d. Laplace smoothing (binary form)."""
from __future__ import annotations

import mpmath as mp

from .base import Certificate, NoiseMap, Reference

REFERENCE = Reference(
    authors="Teng, Lee, Yuan",
    title="l1 Adversarial Robustness Certificates: a Randomized Smoothing Approach",
    venue="ICLR",
    year=2020,
    code="",
    bibtex="""@inproceedings{teng2020ell1,
  title     = {$\\ell_1$ Adversarial Robustness Certificates: a Randomized Smoothing Approach},
  author    = {Teng, Jiaye and Lee, Guang-He and Yuan, Yang},
  booktitle = {International Conference on Learning Representations},
  year      = {2020},
  note      = {OpenReview}
}""",
)

LAPLACE = NoiseMap(
    family="laplace", scale="lambda", sigma_per_scale=lambda dim: mp.sqrt(2),
    relation="sigma = sqrt(2) * lambda (i.i.d. Laplace with scale lambda)",
)


def laplace_l1(p_b, scale):
    """-lambda ln(2(1 - rho)), with p_b = 1 - rho."""
    return -scale * mp.log(2 * p_b)


TENG = Certificate(
    name="teng",
    reference=REFERENCE,
    noise=LAPLACE,
    norms=(1.0,),
    claim="tight",
    domain="binary",
    radius_fn=lambda p_a, p_b, scale, dim, norm: laplace_l1(p_b, scale),
    notes=("R1 = -lambda ln(2(1 - rho)), tight (the worst case is a 1-sparse shift); rs4a Laplace.certify_l1 "
           "uses the same. The paper's general (p_A, p_B) statement could not be confirmed from a source "
           "available here, so only the binary form (p_B = 1 - p_A) is catalogued."),
)
