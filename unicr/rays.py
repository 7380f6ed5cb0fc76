"""Log-likelihood ratios along a ray delta = lam * v, for a batch of lam, from fixed samples.

A *ray function* maps a 1-D tensor of lam (G,) to L of shape (G, n):
L[g, i] = log mu(u_i - lams[g] v) - log mu(u_i) for fixed H0 draws u (common random numbers).
Each noise builds its own (``Noise.ray_log_ratio``) from the blocks here; a family with a
sufficient statistic along a ray skips the O(k) work per lam:

- Gaussian: L = (lam <u, v> - lam^2 ||v||^2 / 2) / sigma^2  (:func:`gaussian_ray`).
- Uniform cube [-a, a]: L = -inf iff lam > min_i (a + sign(v_i) u_i)/|v_i|, else 0 (:func:`exit_ray`).
- Functions of ||x||_2 (uniform ball, l2-exponential): ||u - lam v||_2^2 = ||u||^2 - 2 lam <u, v> +
  lam^2 ||v||^2 (:func:`radial_ray`); of ||x||_inf (linf-exponential): the off-support maximum is
  fixed along the ray, and a group of equal v_i needs only its maximum and minimum (:func:`linf_ray`).

Everything else is evaluated directly, in chunks of lam (:func:`direct_ray`).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["RayFn", "Sampler", "direct_ray", "gaussian_ray", "exit_ray", "radial_ray", "linf_ray", "log_diff"]

RayFn = Callable[[torch.Tensor], torch.Tensor]
#: (n, generator, device, dtype) -> RayFn, drawing only a sufficient statistic of n H0 draws
Sampler = Callable[[int, torch.Generator, torch.device, torch.dtype], RayFn]

# elements per chunk of the direct evaluation (G_chunk * n * k)
_CHUNK_ELEMENTS = 1 << 23


def log_diff(log_num: torch.Tensor, log_den: torch.Tensor) -> torch.Tensor:
    """log_num - log_den with (-inf) - (-inf) := 0 (both outside the support; never sampled)."""
    out = log_num - log_den
    both = torch.isneginf(log_num) & torch.isneginf(log_den)
    return torch.where(both, torch.zeros_like(out), out)


def direct_ray(log_ratio: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], u: torch.Tensor,
               v: torch.Tensor) -> RayFn:
    """L by direct evaluation of ``log_ratio(e, delta)`` (summed over the last axis), chunked in lam."""
    def evaluate(lams: torch.Tensor) -> torch.Tensor:
        n, k = u.shape
        step = max(1, _CHUNK_ELEMENTS // max(1, n * k))
        parts = [log_ratio(u.unsqueeze(0), lams[g:g + step, None, None] * v)
                 for g in range(0, lams.numel(), step)]
        return torch.cat(parts, 0)
    return evaluate


def gaussian_ray(proj: torch.Tensor, vv, variance: float) -> RayFn:
    """N(0, s^2 I): L = (lam <u, v> - lam^2 ||v||^2 / 2) / s^2 from proj = <u, v>."""
    def evaluate(lams):
        lams = lams[:, None]
        return (lams * proj - 0.5 * lams**2 * vv) / variance
    return evaluate


def exit_ray(exit_lam: torch.Tensor) -> RayFn:
    """Uniform densities: L = -inf once lam passes the draw's exit scale, 0 before."""
    def evaluate(lams):
        out = torch.zeros(lams.numel(), exit_lam.shape[0], dtype=exit_lam.dtype, device=exit_lam.device)
        return out.masked_fill(lams[:, None] > exit_lam, -math.inf)
    return evaluate


def radial_ray(norm2: torch.Tensor, proj: torch.Tensor, vv, profile) -> RayFn:
    """Densities of ||x||_2: ``profile(norm2, shifted2, num)`` gives L from ||u||^2, ||u - lam v||^2
    and num = 2 lam <u, v> - lam^2 ||v||^2 = ||u||^2 - ||u - lam v||^2 (no cancellation)."""
    def evaluate(lams):
        lams = lams[:, None]
        num = 2 * lams * proj - lams**2 * vv
        shifted2 = (norm2 - num).clamp_min(0)
        return profile(norm2, shifted2, num)
    return evaluate


def linf_ray(norm: torch.Tensor, off: torch.Tensor, groups, scale: float) -> RayFn:
    """exp(-||x||_inf / scale) densities: L = (||u||_inf - ||u - lam v||_inf) / scale, from the draws'
    norm, their largest |u_i| off the support of v, and (m, max, min) of u over each group of equal
    v_i = m: the shifted norm is the largest of off and max(max - lam m, lam m - min) per group."""
    def evaluate(lams):
        lams = lams[:, None]
        shifted = off.expand(lams.shape[0], -1)
        for m, hi, lo in groups:
            shifted = torch.maximum(shifted, torch.maximum(hi - lams * m, lams * m - lo))
        return (norm - shifted) / scale
    return evaluate
