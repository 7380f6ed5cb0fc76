"""Boundary search along a ray: from a score curve s(lam) to the first crossing of s = 0.

A *ray statistic* has ``scores(lams, p_a, p_b) -> (estimate, lower, upper)``, each (G, J), of a
score s(lam; p_A, p_B) that is increasing in lam, with delta = lam v certified iff s < 0, and
``critical(lams) -> (estimate, lower, upper)`` of z = Phi^-1(p*(lam)), each (G,), for the binary
case, where s = z - Phi^-1(p_A) and one curve serves every p_A. The radius along v is
||v||_p * inf{lam : s(lam) >= 0} (docs/design.md §1: the *first* lam, so a non-monotone curve cannot
hide an earlier crossing). The band inverts the score band:

    lam_lower = first lam with upper score >= 0,   lam_upper = first lam with lower score >= 0.

The whole p_A grid is solved from one pass over a lam grid; crossings are interpolated linearly
by inverse cubic interpolation (s is close to linear in lam: exactly so for Gaussian noise).
"""
from __future__ import annotations

import math

import torch

__all__ = ["first_crossing", "lambda_grid", "solve_ray"]

PILOT_SPAN = (1e-6, 1e4)
PILOT_POINTS = 41


def first_crossing(lams: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """For each column of s (G, J), the first lam at which s >= 0 (see :func:`_crossing`)."""
    return _crossing(lams, s)[0]


def _crossing(lams: torch.Tensor, s: torch.Tensor):
    """First crossing of s = 0 per column of s (G, J): (root, alternative root, cell index).

    The root inside the bracketing cell [lams[g-1], lams[g]] comes from inverse cubic
    interpolation through the four surrounding points (error O(h^4)) where they are finite and
    increasing, else from linear interpolation. The alternative root interpolates Phi(s)
    linearly instead: the two agree to O(h^2) where s is smooth, and differ where the cell holds
    a kink or a jump, which is how cells that need refining are found. Roots are lams[0] when
    s >= 0 there already, and inf when s < 0 on the whole grid.
    """
    reached = s >= 0
    any_reached = reached.any(0)
    g = torch.argmax(reached.to(torch.int8), dim=0)            # first index with s >= 0
    cols = torch.arange(s.shape[1], device=s.device)
    last = s.shape[0] - 1
    idx = torch.stack([(g + o).clamp(0, last) for o in (-2, -1, 0, 1)])   # (4, J)
    sv, lv = s[idx, cols], lams[idx]
    s0, s1, l0, l1 = sv[1], sv[2], lv[1], lv[2]

    def linear(y0, y1):
        ok = torch.isfinite(y0) & torch.isfinite(y1) & (y1 > y0)
        frac = torch.where(ok, -y0 / torch.where(ok, y1 - y0, torch.ones_like(y1)), torch.full_like(y1, 0.5))
        return l0 + frac.clamp(0, 1) * (l1 - l0)

    root = linear(s0, s1)
    alt = linear(torch.special.ndtr(s0) - 0.5, torch.special.ndtr(s1) - 0.5)
    # inverse cubic (Lagrange in s) through the 4 points, where they are distinct and increasing
    ok_cub = (g >= 2) & (g <= last - 1) & torch.isfinite(sv).all(0) & (sv[1:] > sv[:-1]).all(0)
    cubic = torch.zeros_like(root)
    for i in range(4):
        term = lv[i].clone()
        for j in range(4):
            if j != i:
                den = torch.where(ok_cub, sv[i] - sv[j], torch.ones_like(s0))
                term = term * (0 - sv[j]) / den
        cubic = cubic + term
    root = torch.where(ok_cub & (cubic >= l0) & (cubic <= l1), cubic, root)
    at_start = (g == 0) | ~any_reached
    first = torch.where(any_reached, lams[0].expand_as(root), torch.full_like(root, math.inf))
    return torch.where(at_start, first, root), torch.where(at_start, first, alt), g


def lambda_grid(lo: float, hi: float, points: int, device=None, dtype=torch.float64) -> torch.Tensor:
    """Geometric grid on [lo, hi], with lam = 0 in front (where s < 0 for every p_A > p_B)."""
    grid = torch.logspace(math.log10(lo), math.log10(hi), points, device=device, dtype=dtype)
    return torch.cat([torch.zeros(1, device=device, dtype=dtype), grid])


def is_binary(p_a: torch.Tensor, p_b: torch.Tensor) -> bool:
    return bool(((p_a + p_b - 1).abs() <= 1e-15).all())


def ray_scores(ray, lams, p_a, p_b):
    """(estimate, lower, upper) of s(lam; p_A, p_B), each (G, J), via the critical curve when binary."""
    if is_binary(p_a, p_b):
        target = torch.special.ndtri(p_a)
        return tuple(z[:, None] - target[None, :] for z in ray.critical(lams))
    return ray.scores(lams, p_a, p_b)


class _Curves:
    """Score triples on a growing lam grid, evaluating each lam once."""

    def __init__(self, ray, p_a, p_b):
        self.ray, self.p_a, self.p_b = ray, p_a, p_b
        self.lams = p_a.new_zeros(0)
        self.values = None

    def add(self, lams: torch.Tensor) -> None:
        new = ray_scores(self.ray, lams, self.p_a, self.p_b)
        if self.values is None:
            merged_lams, merged = lams, new
        else:
            merged_lams = torch.cat([self.lams, lams])
            merged = tuple(torch.cat([old, add]) for old, add in zip(self.values, new))
        order = torch.argsort(merged_lams)
        self.lams = merged_lams[order]
        self.values = tuple(v[order] for v in merged)

    def crossings(self):
        """For est, lower and upper root: (root, alt, cell); lower root uses the upper score."""
        est, low, up = self.values
        return _crossing(self.lams, est), _crossing(self.lams, up), _crossing(self.lams, low)


def solve_ray(ray, p_a: torch.Tensor, p_b: torch.Tensor, *, scale: float, pilot=None,
              points: int = 64, max_extensions: int = 4, refinements: int = 6,
              rtol: float = 1e-3):
    """Crossings (estimate, lower, upper) in lam for every (p_A, p_B), each of shape (J,).

    ``scale`` is the noise scale along v (sets the pilot span); ``pilot`` is a cheaper statistic
    of the same ray used to bracket the crossings (defaults to ``ray`` itself).

    Binary case: the crossings of the smooth critical curves are interpolated (cubic), each
    band end widened by its disagreement with the alternative interpolant, and cells where the
    two disagree by more than ``rtol`` * lam are halved (up to ``refinements`` times: kinks,
    jumps). General (p_A, p_B): the score at fixed p_A may have a kink at its root (an atom of L
    at the boundary), so the band is widened to whole grid cells (lower: left end of the cell
    where the upper score crosses 0; upper: right end of the cell where the lower score does),
    and each end is brought within max(rtol * lam, 20% of the band) of its interpolated root: by
    a point just outside the root (two rounds), then by halving its cell.
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
    # bracket all finite crossings with a margin of two pilot steps on each side
    step = float(span[2] / span[1])
    lo = max(float(roots[finite].min()) / step**2, float(span[1]))
    hi = float(roots[finite].max()) * step**2
    curves = _Curves(ray, p_a, p_b)
    curves.add(lambda_grid(lo, hi, points, device, dtype))
    ratio = (hi / lo) ** (1.0 / (points - 1))
    for _ in range(max_extensions):
        (_, _, _), (r_lo, _, _), (r_hi, _, _) = curves.crossings()
        below = bool((finite & (r_lo <= curves.lams[1])).any())
        above = bool((finite & torch.isinf(r_hi)).any())
        if not (below or above):
            break
        if below:
            curves.add(lo * ratio ** -torch.arange(1, points // 2 + 1, device=device, dtype=dtype))
            lo = float(curves.lams[1])
        if above:
            curves.add(hi * ratio ** torch.arange(1, points // 2 + 1, device=device, dtype=dtype))
            hi = float(curves.lams[-1])
    binary = is_binary(p_a, p_b)
    for round_ in range(refinements + 1):
        (r_est, a_est, g_est), (r_lo, a_lo, g_lo), (r_hi, a_hi, g_hi) = curves.crossings()
        lams = curves.lams
        ambiguous = lambda r, a, g: g[torch.isfinite(r) & (g > 0) & ((r - a).abs() > rtol * r)]
        flagged = [ambiguous(r_est, a_est, g_est)]
        if binary:
            flagged += [ambiguous(r_lo, a_lo, g_lo), ambiguous(r_hi, a_hi, g_hi)]
            points = torch.zeros(0, dtype=dtype, device=device)
        else:
            # the band ends are cell ends: each should lie within band_tol of its interpolated root;
            # a point placed band_tol / 2 outside the root makes it so where the interpolation is
            # right (the first two rounds), else the cell is halved
            band_tol = torch.maximum(rtol * r_est, 0.2 * (r_hi - r_lo)).nan_to_num(posinf=0.0)
            left, right = lams[(g_lo - 1).clamp_min(0)], lams[g_hi]
            far_lo = torch.isfinite(r_lo) & (g_lo > 0) & (r_lo - left > band_tol)
            far_hi = torch.isfinite(r_hi) & (g_hi > 0) & (right - r_hi > band_tol)
            goal_lo, goal_hi = r_lo - 0.5 * band_tol, r_hi + 0.5 * band_tol
            cell_lo = (goal_lo > left) & (goal_lo < lams[g_lo]) & (round_ < 2)
            cell_hi = (goal_hi > lams[(g_hi - 1).clamp_min(0)]) & (goal_hi < right) & (round_ < 2)
            points = torch.cat([goal_lo[far_lo & cell_lo], goal_hi[far_hi & cell_hi]])
            flagged += [g_lo[far_lo & ~cell_lo], g_hi[far_hi & ~cell_hi]]
        cells = torch.unique(torch.cat(flagged))
        if (cells.numel() == 0 and points.numel() == 0) or round_ == refinements:
            break
        curves.add(torch.unique(torch.cat([0.5 * (lams[cells - 1] + lams[cells]), points])))
    if binary:
        lower = torch.minimum(r_lo, a_lo)
        upper = torch.maximum(r_hi, a_hi)
    else:
        lower = torch.where(g_lo > 0, lams[(g_lo - 1).clamp_min(0)], r_lo)
        upper = torch.where(torch.isfinite(r_hi), lams[g_hi], r_hi)
    return r_est, torch.minimum(lower, r_est), torch.maximum(upper, r_est)
