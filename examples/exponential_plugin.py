"""A noise of one's own and a certificate for it: python -m unicr.audit --certificate examples/exponential_plugin.py:CERT"""
import math

import torch

import certificates
import unicr


class Exponential(unicr.IIDNoise):
    """Exp(1) - 1 per coordinate, times sigma: bounded below, asymmetric, declared nothing."""

    name = "exponential"

    def __init__(self, sigma=1.0, dim=1):
        super().__init__(dim, sigma, {"sigma": sigma})

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        return -self.sigma * (torch.log1p(-torch.rand(shape, generator=generator, device=device, dtype=dtype)) + 1)

    def log_prob_coords(self, x):
        z = x / self.sigma + 1
        return torch.where(z >= 0, -z - math.log(self.sigma), -math.inf)


def radius(p_a, sigma, dim, norm):
    """Tight: every coordinate shifted down by the same amount, ln(2 p_A) sigma in l1."""
    return sigma * math.log(2 * p_a) / {1: 1, 2: math.sqrt(dim)}.get(norm, dim)


unicr.register_noise("exponential", Exponential)
CERT = certificates.define("exponential-shift", "exponential", (1, 2, "inf"), radius, "tight")
