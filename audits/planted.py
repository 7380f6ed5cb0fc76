"""Planted unsound certificates, built as a user would build an external certificate.

Each must come out *suspect*: the audit has to find a witness delta with ||delta|| below the claim
and K(delta) <= 0 confirmed on an independent run. Use from the command line as
``python -m unicr.audit --certificate audits/planted.py:PLANTED``.
"""
from __future__ import annotations

import math

import mpmath as mp

import certificates
from certificates import Certificate, Reference
from certificates.cohen import gaussian_l2
from certificates.teng import laplace_l1

REFERENCE = Reference(
    authors="unicr audits", title="Planted unsound certificates", venue="unicr test suite", year=2024,
    bibtex="@misc{unicr-planted,\n  title = {Planted unsound certificates},\n  note  = {unicr audits/planted.py}\n}")

GAUSSIAN = certificates.get("cohen").noise
LAPLACE = certificates.get("teng").noise


def _planted(name, noise, norm, radius_fn, notes, domain="general"):
    return Certificate(name=name, reference=REFERENCE, noise=noise, norms=(norm,), claim="tight", domain=domain,
                       radius_fn=radius_fn, notes=notes)


INFLATED_2 = _planted(
    "planted-cohen-inflated-2pct", GAUSSIAN, 2.0,
    lambda p_a, p_b, scale, dim, norm: mp.mpf("1.02") * gaussian_l2(p_a, p_b, scale),
    "Cohen's l2 radius inflated by 2%.")

INFLATED_5 = _planted(
    "planted-cohen-inflated-5pct", GAUSSIAN, 2.0,
    lambda p_a, p_b, scale, dim, norm: mp.mpf("1.05") * gaussian_l2(p_a, p_b, scale),
    "Cohen's l2 radius inflated by 5%.")

MISSING_SQRT_D = _planted(
    "planted-cohen-linf-missing-sqrt-d", GAUSSIAN, math.inf,
    lambda p_a, p_b, scale, dim, norm: gaussian_l2(p_a, p_b, scale),
    "Cohen's linf radius without the 1/sqrt(d): R_inf = R_2 (the tight one is R_2/sqrt(d), delta = t(1, ..., 1)).")

HOLDER_WRONG_WAY = _planted(
    "planted-cohen-l1-times-sqrt-d", GAUSSIAN, 1.0,
    lambda p_a, p_b, scale, dim, norm: mp.sqrt(dim) * gaussian_l2(p_a, p_b, scale),
    "Wrong norm conversion: R_1 = sqrt(d) R_2, Hoelder applied the wrong way round (the tight R_1 is R_2: "
    "an l1 ball of radius r holds the axis shift of l2 norm r).")

LAPLACE_L2_FROM_L1 = _planted(
    "planted-laplace-l2-as-l1", LAPLACE, 2.0,
    lambda p_a, p_b, scale, dim, norm: laplace_l1(p_b, scale),
    "Wrong norm conversion: Teng's l1 radius -lambda ln(2(1 - p_A)) (the axis value) claimed for l2; "
    "for larger p_A the diagonal shift reaches the boundary at a smaller l2 norm.", domain="binary")

PLANTED = (INFLATED_2, INFLATED_5, MISSING_SQRT_D, HOLDER_WRONG_WAY, LAPLACE_L2_FROM_L1)
