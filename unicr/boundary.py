"""Boundary search along a ray: from a score curve s(lam) to the first crossing of s = 0.

A *ray statistic* has ``critical(lams) -> (estimate, lower, upper)`` of z = Phi^-1(p*(lam)),
each (G,), for the binary case, and ``scores(lams, p_a, p_b) -> (estimate, lower, upper)``, each
(G, J), for general (p_A, p_B). Either way the score s(lam) (z - Phi^-1(p_A), or s) is increasing
in lam and delta = lam v is certified iff s < 0. The radius along v is ||v||_p * inf{lam : s(lam) >= 0} (DESIGN.md §1: the *first* lam, so
a non-monotone curve cannot hide an earlier crossing). The band inverts the score band:

    lam_lower = first lam with upper score >= 0,   lam_upper = first lam with lower score >= 0.

The whole p_A grid is solved from one pass over a lam grid; crossings are interpolated linearly
by inverse cubic interpolation (s is close to linear in lam: exactly so for Gaussian noise).
"""
from __future__ import annotations

import math

import torch

__all__ = ["first_crossing", "lambda_grid", "ray_scores", "solve_ray"]

PILOT_SPAN = (1e-6, 1e4)
PILOT_POINTS = 41


def first_crossing(lams: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """For each column of s (G, J), the first lam at which s >= 0.

    The root inside the bracketing grid cell is found by inverse cubic interpolation through the
    four surrounding grid points (error O(h^4)), falling back to linear interpolation where those
    points are not finite and strictly increasing. Returns lams[0] when s >= 0 already there and
    inf when s < 0 on the whole grid.
    """
    reached = s >= 0
    any_reached = reached.any(0)
    g = torch.argmax(reached.to(torch.int8), dim=0)            # first index with s >= 0
    cols = torch.arange(s.shape[1], device=s.device)
    last = s.shape[0] - 1
    idx = torch.stack([(g + o).clamp(0, last) for o in (-2, -1, 0, 1)])   # (4, J)
    sv, lv = s[idx, cols], lams[idx]
    s0, s1, l0, l1 = sv[1], sv[2], lv[1], lv[2]
    ok_lin = torch.isfinite(s0) & torch.isfinite(s1) & (s1 > s0)
    frac = torch.where(ok_lin, -s0 / torch.where(ok_lin, s1 - s0, torch.ones_like(s1)), torch.ones_like(s1))
    root = l0 + frac.clamp(0, 1) * (l1 - l0)
    # inverse cubic (Lagrange in s) through the 4 points, where they are distinct and increasing
    inner = (g >= 2) & (g <= last - 1)
    ok_cub = inner & torch.isfinite(sv).all(0) & (sv[1:] > sv[:-1]).all(0)
    cubic = torch.zeros_like(root)
    for i in range(4):
        term = lv[i].clone()
        for j in range(4):
            if j != i:
                den = torch.where(ok_cub, sv[i] - sv[j], torch.ones_like(s0))
                term = term * (0 - sv[j]) / den
        cubic = cubic + term
    use_cubic = ok_cub & (cubic >= l0) & (cubic <= l1)
    root = torch.where(use_cubic, cubic, root)
    root = torch.where(g == 0, lams[0].expand_as(root), root)
    return torch.where(any_reached, root, torch.full_like(root, math.inf))


def lambda_grid(lo: float, hi: float, points: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """Geometric grid on [lo, hi], with lam = 0 in front (where s < 0 for every p_A > p_B)."""
    grid = torch.logspace(math.log10(lo), math.log10(hi), points, device=device, dtype=dtype)
    return torch.cat([torch.zeros(1, device=device, dtype=dtype), grid])


def ray_scores(ray, lams, p_a, p_b):
    """(estimate, lower, upper) of the score s(lam; p_A, p_B), each (G, J)."""
    if torch.allclose(p_a + p_b, torch.ones_like(p_a), rtol=0, atol=1e-15):
        target = torch.special.ndtri(p_a)
        return tuple(z[:, None] - target[None, :] for z in ray.critical(lams))
    return ray.scores(lams, p_a, p_b)


def solve_ray(ray, p_a: torch.Tensor, p_b: torch.Tensor, *, scale: float, pilot=None,
              points: int = 64, max_extensions: int = 4):
    """Crossings (estimate, lower, upper) in lam for every (p_A, p_B), each of shape (J,).

    ``scale`` is the noise scale along v (sets the pilot span); ``pilot`` is a cheaper statistic
    of the same ray used to bracket the crossings (defaults to ``ray`` itself).
    """
    pilot = ray if pilot is None else pilot
    device, dtype = p_a.device, p_a.dtype
    span = lambda_grid(PILOT_SPAN[0] * scale, PILOT_SPAN[1] * scale, PILOT_POINTS, device, dtype)
    est, _, _ = ray_scores(pilot, span, p_a, p_b)
    roots = first_crossing(span, est)
    finite = torch.isfinite(roots)
    if not finite.any():
        inf = torch.full_like(p_a, math.inf)
        return inf, inf, inf
    # bracket all finite crossings with a margin of one pilot step on each side
    step = span[2] / span[1]
    lo = float(roots[finite].min() / step**2)
    hi = float(roots[finite].max() * step**2)
    lo = max(lo, float(span[1]))
    for _ in range(max_extensions + 1):
        lams = lambda_grid(lo, hi, points, device, dtype)
        est, low, up = ray_scores(ray, lams, p_a, p_b)
        r_est, r_lo, r_hi = first_crossing(lams, est), first_crossing(lams, up), first_crossing(lams, low)
        # a finite pilot crossing must stay inside the grid for all three curves
        below = finite & (r_lo <= lams[1])
        above = finite & torch.isinf(r_hi)
        if not (below.any() or above.any()):
            break
        if below.any():
            lo /= 4.0
        if above.any():
            hi *= 4.0
    return r_est, r_lo, r_hi
