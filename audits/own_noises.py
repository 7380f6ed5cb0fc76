"""Noises and certificates the project does not ship, in one plugin file, as a user writes them.

``python -m unicr.audit --certificate audits/own_noises.py:ALL`` audits a bounded noise (the cube,
an ``IIDNoise`` subclass that declares nothing) and an asymmetric one (the exponential law, a torch
Distribution used i.i.d.), each with a tight certificate and the same claim inflated by 3%: the
audit must call the first tight and the second suspect, in l1, l2 and l_inf.

Tight radii (binary, p = p_A):

* cube [-a, a]^d, a = sqrt(3) sigma: delta is certified iff prod_i (1 - |delta_i|/(2a)) >
  3/2 - p (Yang et al., ICML 2020), so R1 = 2a(p - 1/2) (the axis), R_inf = 2a(1 - (3/2 - p)^(1/d))
  (the diagonal) and R2 = min_k sqrt(k) 2a(1 - (3/2 - p)^(1/k)) over k-sparse equal shifts;
* exponential with scale sigma: L takes the values -inf, a constant and +inf, with
  P_H0(L finite) = exp(-a/sigma) and P_H1(L finite) = exp(-b/sigma) for a (b) the sum of the
  positive (negative) coordinates of delta; delta is certified iff
  (1 - (1 - p) e^(a/sigma)) e^(-b/sigma) > 1/2, which first fails at a = 0, b = sigma ln(2p):
  R1 = sigma ln(2p), R2 = R1/sqrt(d), R_inf = R1/d (every coordinate shifted down alike).
"""
from __future__ import annotations

import math

import numpy as np
import torch

import certificates
import unicr


class Cube(unicr.IIDNoise):
    """Uniform on [-a, a] per coordinate, a = sqrt(3) sigma: bounded, and nothing declared."""

    name = "own-cube"

    def __init__(self, sigma=1.0, dim=1):
        super().__init__(dim, sigma, {"sigma": sigma})
        self.half_width = math.sqrt(3.0) * sigma

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        return self.half_width * (2 * torch.rand(shape, generator=generator, device=device, dtype=dtype) - 1)

    def log_prob_coords(self, x):
        return torch.where(x.abs() <= self.half_width, -math.log(2 * self.half_width), -math.inf)


def exponential(sigma=1.0, dim=1):
    """Exponential with mean and standard deviation sigma, i.i.d. over dim coordinates."""
    rate = torch.tensor(1.0 / sigma, dtype=torch.float64)
    return unicr.noise(torch.distributions.Exponential(rate), dim=dim)


unicr.register_noise("own-cube", Cube)
unicr.register_noise("own-exponential", exponential)


def cube_radius(p_a, sigma, dim, norm):
    width = 2 * math.sqrt(3.0) * sigma
    if norm == 1:
        return width * (p_a - 0.5)

    def shift(k):  # per coordinate, for k equal coordinates
        return width * -np.expm1(np.log(1.5 - p_a) / k)
    if norm == 2:
        k = np.arange(1, dim + 1)
        return float(np.min(np.sqrt(k) * shift(k)))
    return float(shift(dim))


def exponential_radius(p_a, sigma, dim, norm):
    return sigma * math.log(2 * p_a) / {1.0: 1.0, 2.0: math.sqrt(dim)}.get(norm, dim)


NORMS = (1, 2, "inf")
CUBE = certificates.define("own-cube", "own-cube", NORMS, cube_radius, "tight")
CUBE_INFLATED = certificates.define("own-cube-inflated", "own-cube", NORMS,
                                    lambda p_a, sigma, dim, norm: 1.03 * cube_radius(p_a, sigma, dim, norm), "tight")
EXPONENTIAL = certificates.define("own-exponential", "own-exponential", NORMS, exponential_radius, "tight")
EXPONENTIAL_INFLATED = certificates.define(
    "own-exponential-inflated", "own-exponential", NORMS,
    lambda p_a, sigma, dim, norm: 1.03 * exponential_radius(p_a, sigma, dim, norm), "tight")
TIGHT = [CUBE, EXPONENTIAL]
INFLATED = [CUBE_INFLATED, EXPONENTIAL_INFLATED]
ALL = TIGHT + INFLATED
