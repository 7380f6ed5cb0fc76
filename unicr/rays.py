"""Log-likelihood ratios along a ray delta = lam * v, for a batch of lam, from fixed samples.

``ray_log_ratio(noise, u, v)`` precomputes what it can from the samples u (common random
numbers) and returns ``f(lams) -> L`` of shape (G, n): L[g, i] = log mu(u_i - lams[g] v) - log mu(u_i).

For i.i.d. noise u and v hold only the support of v (shape (n, k) and (k,)), since the ratio is a
sum over non-zero coordinates. Families with a sufficient statistic along a ray skip the O(k)
work per lam:

- Gaussian: L = (lam <u, v> - lam^2 ||v||^2 / 2) / sigma^2.
- Uniform cube [-a, a]: L = -inf iff lam > min_i (a + sign(v_i) u_i)/|v_i|, else 0.
- Noises that are functions of ||x||_2 (uniform ball, l2-exponential): ||u - lam v||_2^2 =
  ||u||^2 - 2 lam <u, v> + lam^2 ||v||^2; of ||x||_inf (linf-exponential): the off-support maximum
  is fixed along the ray, and a group of equal v_i needs only its maximum and minimum.
Everything else is evaluated directly, in chunks of lam.

Where the law of the sufficient statistic is known, ``ray_sampler`` draws it directly (exactly,
in O(n) instead of O(n k)): for Gaussian noise <u, v> ~ N(0, sigma^2 ||v||^2); for the uniform
cube and a direction of equal-magnitude groups, the exit scale of a group of c coordinates of
magnitude m is 2a (1 - V^(1/c)) / m with V ~ U(0, 1) (the minimum of c uniforms); for noises
that are functions of ||x||_2, u = R theta with <theta, e> = 2B - 1, B ~ Beta((d-1)/2, (d-1)/2).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import noises as nz

__all__ = ["ray_log_ratio", "ray_is_compact", "ray_sampler"]

Sampler = Callable[[int, torch.Generator, torch.device, torch.dtype], "RayFn"]

RayFn = Callable[[torch.Tensor], torch.Tensor]

# elements per chunk of the direct evaluation (G_chunk * n * k)
_CHUNK_ELEMENTS = 1 << 23


def ray_log_ratio(noise: nz.Noise, u: torch.Tensor, v: torch.Tensor) -> RayFn:
    """L along lam * v for the samples u (H0 draws): a function of a 1-D tensor of lam."""
    for cls, builder in _FAST.items():
        if isinstance(noise, cls):
            return builder(noise, u, v)
    if noise.iid:
        return _direct(lambda x, s: noise.log_ratio_coords(x, s).sum(-1), u, v)
    return _direct(noise.log_ratio, u, v)


def ray_is_compact(noise: nz.Noise) -> bool:
    """Whether the ray function keeps O(n) memory (a sufficient statistic), not the draws."""
    return any(isinstance(noise, cls) for cls in _COMPACT)


def _direct(log_ratio, u: torch.Tensor, v: torch.Tensor) -> RayFn:
    def evaluate(lams: torch.Tensor) -> torch.Tensor:
        n, k = u.shape
        step = max(1, _CHUNK_ELEMENTS // max(1, n * k))
        parts = [log_ratio(u.unsqueeze(0), lams[g:g + step, None, None] * v)
                 for g in range(0, lams.numel(), step)]
        return torch.cat(parts, 0)
    return evaluate


def ray_sampler(noise: nz.Noise, v: torch.Tensor, groups) -> Sampler | None:
    """A function (n, generator, device, dtype) -> ray function, drawing only a sufficient
    statistic of n H0 draws along v; None where no exact shortcut exists."""
    if isinstance(noise, nz.Gaussian):
        scale = noise.sigma * float(torch.linalg.vector_norm(v))

        def gaussian(n, generator, device, dtype):
            proj = scale * torch.randn(n, generator=generator, device=device, dtype=dtype)
            return _gaussian_ray(noise, proj, v.to(device=device, dtype=dtype))
        return gaussian
    if isinstance(noise, (nz.UniformBall, nz.L2Exp)):
        vnorm = float(torch.linalg.vector_norm(v))

        def radial(n, generator, device, dtype):
            # u = R theta: R from the family, <theta, e> = 2B - 1 with B ~ Beta((d-1)/2, (d-1)/2)
            d = noise.dim
            if isinstance(noise, nz.UniformBall):
                uniform = torch.rand(n, generator=generator, device=device, dtype=dtype)
                radius = noise.scale * uniform ** (1 / d)
            else:
                radius = noise.scale * nz.standard_gamma(d, (n,), generator, device, dtype)
            if d == 1:
                cos = torch.where(torch.rand(n, generator=generator, device=device, dtype=dtype) < 0.5,
                                  -1.0, 1.0).to(dtype)
            else:
                g1 = nz.standard_gamma((d - 1) / 2, (n,), generator, device, dtype)
                g2 = nz.standard_gamma((d - 1) / 2, (n,), generator, device, dtype)
                cos = (g1 - g2) / (g1 + g2)
            return _radial_ray(noise, radius * radius, radius * cos * vnorm, vnorm * vnorm)
        return radial
    if isinstance(noise, nz.Uniform) and groups is not None:
        width = 2 * noise.half_width

        def uniform(n, generator, device, dtype):
            exits = [width * -torch.expm1(torch.log(torch.rand(n, generator=generator, device=device,
                                                                dtype=dtype)) / c) / m
                     for c, m in groups if m != 0]
            return _uniform_ray(torch.stack(exits).amin(0))
        return uniform
    return None


def _gaussian(noise, u, v) -> RayFn:
    return _gaussian_ray(noise, u @ v, v)


def _gaussian_ray(noise, proj, v) -> RayFn:
    vv = (v * v).sum()
    s2 = noise.sigma ** 2

    def evaluate(lams):
        lams = lams[:, None]
        return (lams * proj - 0.5 * lams**2 * vv) / s2
    return evaluate


def _uniform(noise, u, v) -> RayFn:
    a = noise.half_width
    nz_mask = v != 0
    return _uniform_ray(((a + torch.sign(v) * u) / v.abs()).masked_fill(~nz_mask, math.inf).amin(-1))


def _uniform_ray(exit_lam) -> RayFn:
    """L = -inf once lam passes the draw's exit scale, 0 before."""
    def evaluate(lams):
        out = torch.zeros(lams.numel(), exit_lam.shape[0], dtype=exit_lam.dtype, device=exit_lam.device)
        return out.masked_fill(lams[:, None] > exit_lam, -math.inf)
    return evaluate


_FAST: dict[type, Callable[[nz.Noise, torch.Tensor, torch.Tensor], RayFn]] = {
    nz.Gaussian: _gaussian,
    nz.Uniform: _uniform,
}


def _laplace(noise, u, v) -> RayFn:
    """Laplace, b = scale: with y_i = u_i sign(v_i)/|v_i|, the clamp form of the ratio gives
    L = (sum_i |v_i| min(2 y_i^+, 2 lam) - lam ||v||_1) / b; bucketing y^+ by the lam grid makes
    the cost O(n k log G + n G) instead of O(n k G)."""
    w = v.abs()
    y = (u * torch.sign(v) / w.masked_fill(w == 0, 1.0)).clamp_min(0).masked_fill(w == 0, 0.0)
    l1 = w.sum()

    def evaluate(lams):
        order = torch.argsort(lams)
        sorted_lams = lams[order]
        bucket = torch.searchsorted(sorted_lams, y.contiguous(), right=True)   # #lams <= y_i
        n, grid = u.shape[0], lams.numel()
        below_sum = torch.zeros(n, grid + 1, dtype=u.dtype, device=u.device)
        above_w = torch.zeros(n, grid + 1, dtype=u.dtype, device=u.device)
        below_sum.scatter_add_(1, bucket, 2 * w * y)
        above_w.scatter_add_(1, bucket, w.expand_as(y))
        # for lam_g: terms with y_i < lam_g have bucket <= g; those with y_i >= lam_g have bucket > g
        part_below = below_sum.cumsum(1)[:, :grid]
        part_above = above_w.flip(1).cumsum(1).flip(1)[:, 1:]
        total = part_below + 2 * sorted_lams * part_above - sorted_lams * l1
        out = torch.empty(grid, n, dtype=u.dtype, device=u.device)
        out[order] = (total / noise.scale).T
        return out
    return evaluate


def _radial(noise, u, v) -> RayFn:
    return _radial_ray(noise, (u * u).sum(-1), u @ v, (v * v).sum())


def _radial_ray(noise, norm2, proj, vv) -> RayFn:
    """Noises that are functions of ||x||_2: ||u - lam v||^2 = ||u||^2 - 2 lam <u, v> + lam^2 ||v||^2."""
    def evaluate(lams):
        lams = lams[:, None]
        shifted2 = (norm2 - 2 * lams * proj + lams**2 * vv).clamp_min(0)
        if isinstance(noise, nz.UniformBall):
            out = torch.zeros_like(shifted2)
            return out.masked_fill(shifted2 > noise.scale**2, -math.inf)
        # l2-exp: (|u| - |u - delta|)/lam_s = (2 lam <u,v> - lam^2 |v|^2) / (|u| + |u - delta|) / lam_s
        den = norm2.sqrt() + shifted2.sqrt()
        num = 2 * lams * proj - lams**2 * vv
        return torch.where(den > 0, num / den, torch.zeros_like(num)) / noise.scale
    return evaluate


def _linf_exp(noise, u, v) -> RayFn:
    """linf-exponential: ||u - lam v||_inf = max(max over the support of |u_i - lam v_i|, off-support
    max); for a group of equal v_i = m the support term is max(U_max - lam m, lam m - U_min)."""
    support = v != 0
    off = u[:, ~support].abs().amax(-1) if (~support).any() else torch.zeros(u.shape[0], dtype=u.dtype,
                                                                                 device=u.device)
    values = torch.unique(v[support])
    groups = [(float(m), u[:, v == m].amax(-1), u[:, v == m].amin(-1)) for m in values.tolist()]
    base = u.abs().amax(-1)

    def evaluate(lams):
        lams = lams[:, None]
        shifted = off.expand(lams.shape[0], -1)
        for m, hi, lo in groups:
            shifted = torch.maximum(shifted, torch.maximum(hi - lams * m, lams * m - lo))
        return (base - shifted) / noise.scale
    return evaluate


_FAST[nz.Laplace] = _laplace
_FAST[nz.UniformBall] = _radial
_FAST[nz.L2Exp] = _radial
_FAST[nz.LinfExp] = _linf_exp

_COMPACT = (nz.Gaussian, nz.Uniform, nz.UniformBall, nz.L2Exp, nz.LinfExp)
