"""Particle-swarm refinement of the direction search (UniCR, Hong et al. 2022, Sec. 3).

UniCR minimises ||lam*(v) v||_p over directions v with particle swarm optimisation (PSO, Kennedy &
Eberhart 1995). For exchangeable noise the law of L is invariant under permutations of
coordinates, so a direction can be taken sorted by block; for coordinatewise symmetric noise also
non-negative, while for any other noise the signs matter and the swarm moves in signed
coordinates. The swarm therefore moves in a *block profile* space: the coordinates 1..d are cut
into blocks of geometric sizes (1, 1, 2, 4, ...) and a particle is the vector of block values
(magnitudes in [0, 1], or signed values in [-1, 1]). Every k-sparse equal direction with k a block
boundary is a point of this space, and the initial positions are exactly those (axis to diagonal)
plus the best screened direction, as the paper's symmetric initial positions suggest. Each
profile is a direction of equal-magnitude groups, which both backends evaluate cheaply.

The objective of a particle is the mean over the p_A grid of its radius relative to the best
screened radius, evaluated on the screening sample (common random numbers across particles).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .directions import Direction

__all__ = ["block_sizes", "profile_direction", "pso_refine"]

INERTIA, COGNITIVE, SOCIAL = 0.7, 1.5, 1.5


def block_sizes(dim: int) -> list[int]:
    """Geometric blocks covering 1..dim: 1, 1, 2, 4, ..., with the remainder in the last block."""
    sizes, total = [1], 1
    while total < dim:
        size = min(total, dim - total)
        sizes.append(size)
        total += size
    return sizes


def profile_direction(theta: np.ndarray, sizes: list[int], dim: int, p: float, *,
                      signed: bool = False) -> Direction:
    """The direction with block values theta (|theta| unless ``signed``), normalised to unit l_p norm."""
    theta = np.asarray(theta, dtype=float)
    mags = theta if signed else np.abs(theta)
    groups = [(c, m) for c, m in zip(sizes, mags) if m != 0]
    if not groups:
        groups = [(sizes[0], 1.0)]
    counts = np.array([c for c, _ in groups], dtype=float)
    values = np.array([m for _, m in groups])
    scale = np.abs(values).max() if math.isinf(p) else (counts * np.abs(values)**p).sum() ** (1 / p)
    groups = tuple((int(c), float(m / scale)) for c, m in zip(counts, values))
    vals = torch.cat([torch.full((c,), m, dtype=torch.float64) for c, m in groups])
    support = int(vals.numel())
    label = "pso" if len(groups) > 1 else ("-" if groups[0][1] < 0 else "") + (
        "axis" if support == 1 else "diagonal" if support == dim else f"{support}-sparse")
    return Direction(vals, dim, label=label, groups=groups)


def pso_refine(noise, p, p_a, p_b, screened, *, evaluate, particles: int = 8, iterations: int = 6,
               seed: int = 0):
    """Run the swarm from the screened directions; return the best evaluated ray result."""
    dim = noise.dim
    sizes = block_sizes(dim)
    m = len(sizes)
    signed = not noise.coordinatewise_symmetric
    low = -1.0 if signed else 0.0
    best_screen = np.stack([np.nan_to_num(r.radius, nan=np.inf) for r in screened]).min(0)
    best_screen = np.where(np.isfinite(best_screen) & (best_screen > 0), best_screen, np.nan)

    def cost(result):
        ratio = result.radius / best_screen
        ratio = ratio[np.isfinite(ratio)]
        return float(ratio.mean()) if ratio.size else math.inf

    rng = np.random.default_rng(seed)
    # initial positions: equal directions over the first j blocks, and the best screened one
    starts = [np.r_[np.ones(j), np.zeros(m - j)] for j in range(1, m + 1)]
    idx = np.linspace(0, len(starts) - 1, particles - 1).round().astype(int)
    positions = np.array([starts[i] for i in idx] + [starts[0]])
    best_index = int(np.nanargmin([cost(r) for r in screened]))
    best_groups = screened[best_index].direction.groups
    if best_groups is not None and len(best_groups) == 1:
        k, value = best_groups[0]
        covered = np.cumsum(sizes)
        j = int(np.searchsorted(covered, k)) + 1
        positions[-1] = np.sign(value) * np.r_[np.ones(j), np.zeros(m - j)]
    if signed:   # half the swarm starts from the opposite signs
        positions[1:-1:2] *= -1
    velocities = rng.normal(scale=0.1, size=positions.shape)
    direction = lambda x: profile_direction(x, sizes, dim, p, signed=signed)
    results = [evaluate(direction(x)) for x in positions]
    costs = np.array([cost(r) for r in results])
    personal, personal_cost = positions.copy(), costs.copy()
    best_result = results[int(np.argmin(costs))]
    glob = personal[int(np.argmin(personal_cost))].copy()
    for _ in range(iterations):
        r1, r2 = rng.random(positions.shape), rng.random(positions.shape)
        velocities = (INERTIA * velocities + COGNITIVE * r1 * (personal - positions)
                      + SOCIAL * r2 * (glob - positions))
        positions = np.clip(positions + velocities, low, 1.0)
        results = [evaluate(direction(x)) for x in positions]
        costs = np.array([cost(r) for r in results])
        improved = costs < personal_cost
        personal[improved], personal_cost[improved] = positions[improved], costs[improved]
        if costs.min() < cost(best_result):
            best_result = results[int(np.argmin(costs))]
        glob = personal[int(np.argmin(personal_cost))].copy()
    return best_result
