"""Certified radii: noise -> statistic -> boundary -> radius, with an error band and a witness.

The UniCR radius (Hong et al., ECCV 2022, Sec. 3) is R_U = min over searched directions v of
lam*(v) ||v||_p, where lam*(v) is the first scale at which lam v reaches the NP boundary. It is an
upper bound on the tight radius R*_p up to estimation error; any searched lam v beyond the band is
a witness that R*_p <= ||lam v||_p.

Direction search: the k-sparse equal directions from the axis to the full diagonal are screened
by Monte Carlo on a reduced sample (``search_samples``, fewer for very dense directions so that
at most SCREEN_BUDGET coordinates are drawn, its own seed), whatever the backend; the
directions that win at some p_A are then re-evaluated (at most MAX_FINALISTS, those winning most
p_A) on the full sample with the main seed (a confirmation run, so the reported
band carries no selection bias), each at confidence 1 - (1 - c)/m for m finalists (Bonferroni),
and the radius is the minimum over finalists. ``search="pso"`` adds a particle-swarm refinement
(:mod:`unicr.search`) started from the best sparse directions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .boundary import solve_ray
from .directions import Direction, sparse_family
from .errors import check_choice, check_norm, check_probability_pair
from .noises import Noise, noise as make_noise
from .statistics import MonteCarloRay

__all__ = ["Radius", "Margin", "certified_radius", "radius_curve", "witness_margin", "DEFAULT_P_A_GRID"]

DEFAULT_P_A_GRID = tuple(np.round(np.linspace(0.55, 0.99, 45), 6)) + (0.995, 0.999, 0.9999)
SEARCH_SEED_OFFSET = 7919
SCREEN_BUDGET = 1 << 23
MAX_FINALISTS = 3


@dataclass(frozen=True)
class Radius:
    """A certified radius with its band and the witness attaining it.

    ``radius`` is the estimate of R_U; ``lower``/``upper`` bound it at ``confidence`` (Monte
    Carlo) or rigorously (exact backend). ``witness`` describes delta = scale * v at the *upper*
    end of the band: with the stated confidence, K(delta) <= 0 there.
    """

    radius: float
    lower: float
    upper: float
    p_a: float
    p_b: float
    norm: float
    witness: dict = field(repr=False)
    backend: str = "mc"
    confidence: float = 0.99
    samples: int = 0

    def __float__(self) -> float:
        return self.radius


@dataclass(frozen=True)
class Margin:
    """The NP margin K(delta) = P_H1(S_A) - P_H1(S_B) at one perturbation, with its band.

    delta is certified iff K > 0; a witness *holds* (refutes any radius above ||delta||) when
    ``upper`` <= 0, i.e. K <= 0 at the stated confidence (Monte Carlo) or rigorously (exact).
    """

    estimate: float
    lower: float
    upper: float
    norm: float
    backend: str
    samples: int
    seed: int

    @property
    def holds(self) -> bool:
        return self.upper <= 0.0


def _noise_scale(noise: Noise) -> float:
    if noise.sigma:
        return float(noise.sigma)
    return float(noise.params.get("scale", 1.0))


def _probabilities(p_a, p_b):
    p_a_arr = np.atleast_1d(np.asarray(p_a, dtype=float))
    if p_a_arr.size == 0:
        raise ValueError("p_a must hold at least one value in (0, 1]")
    if p_b is None:
        pairs = [check_probability_pair(x) for x in p_a_arr]
    else:
        p_b_arr = np.broadcast_to(np.atleast_1d(np.asarray(p_b, dtype=float)), p_a_arr.shape)
        pairs = [check_probability_pair(x, y) for x, y in zip(p_a_arr, p_b_arr)]
    return np.array([x for x, _ in pairs]), np.array([y for _, y in pairs])


def _candidate_directions(noise: Noise, p: float, search) -> list[Direction]:
    if isinstance(search, Direction):
        return [search]
    if isinstance(search, (list, tuple)) and search and all(isinstance(d, Direction) for d in search):
        return list(search)
    family = sparse_family(noise.dim, p)
    if search == "axis":
        return family[:1]
    if search == "diagonal":
        return family[-1:]
    return family


@dataclass(frozen=True)
class _RayResult:
    """Radii along one direction for every p_A (arrays of shape (J,))."""

    direction: Direction
    radius: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    witness_scale: np.ndarray
    backend: str


def _ray(noise, direction, *, samples, seed, device, confidence, backend):
    """The statistic along a direction for the chosen backend."""
    if backend in ("exact", "auto"):
        from . import exact
        if exact.applies(noise, direction):
            return exact.ExactRayScores(noise, direction)
        if backend == "exact":
            raise ValueError("backend='exact' needs i.i.d. noise with a one-dimensional marginal and a "
                             "direction of equal-magnitude groups; use backend='mc' or 'auto'")
    return MonteCarloRay(noise, direction, samples=samples, seed=seed, device=device,
                         confidence=confidence)


def _along(noise, direction, p, p_a, p_b, *, samples, seed, device, confidence, backend,
           points) -> _RayResult:
    """Solve the boundary along one direction for all (p_A, p_B)."""
    ray = _ray(noise, direction, samples=samples, seed=seed, device=device, confidence=confidence,
               backend=backend)
    vnorm = direction.norm(p)
    if not isinstance(ray, MonteCarloRay) and np.all(np.abs(p_a + p_b - 1) <= 1e-15):
        from .exact import radius_bounds
        radius, lower, upper = radius_bounds(ray.ray, p_a, vnorm)
        return _RayResult(direction, radius, lower, upper, upper / vnorm, "exact")
    mc = isinstance(ray, MonteCarloRay)
    pilot = None
    if mc and samples > 8192:
        pilot = MonteCarloRay(noise, direction, samples=4096, seed=seed + 1, device=device,
                              confidence=confidence)
    ta = torch.as_tensor(p_a, dtype=torch.float64, device=ray_device(device))
    tb = torch.as_tensor(p_b, dtype=torch.float64, device=ray_device(device))
    lam, lam_lo, lam_hi = solve_ray(ray, ta, tb, scale=_noise_scale(noise), pilot=pilot, points=points)
    lam, lam_lo, lam_hi = (x.cpu().numpy() for x in (lam, lam_lo, lam_hi))
    return _RayResult(direction, lam * vnorm, lam_lo * vnorm, lam_hi * vnorm, lam_hi,
                      "mc" if mc else "exact")


def ray_device(device) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


def _search(noise, p, p_a, p_b, *, search, samples, search_samples, seed, device, confidence,
            backend, points) -> list[Direction]:
    """Screen candidate directions on a reduced sample; return those that win at some p_A."""
    if isinstance(search, str):
        search = check_choice("search", search, {"sparse", "pso", "axis", "diagonal"})
    elif not (isinstance(search, Direction) or (isinstance(search, (list, tuple)) and search
                                                 and all(isinstance(d, Direction) for d in search))):
        raise ValueError("search must be 'sparse', 'pso', 'axis', 'diagonal', a Direction or a list "
                         f"of Directions, got {search!r}")
    candidates = _candidate_directions(noise, p, search)
    if len(candidates) == 1 and search != "pso":
        return candidates
    # screening is always Monte Carlo on the reduced sample (cheap for every direction); the
    # finalists are then evaluated with the requested backend
    kwargs = dict(samples=min(search_samples, samples), seed=seed + SEARCH_SEED_OFFSET, device=device,
                  confidence=confidence, backend="mc", points=points)
    screened = [_along(noise, v, p, p_a, p_b, **dict(kwargs, samples=_screen_samples(kwargs["samples"], v)))
                for v in candidates]
    if search == "pso":
        from .search import pso_refine
        screened.append(pso_refine(noise, p, p_a, p_b, screened, evaluate=lambda v: _along(
            noise, v, p, p_a, p_b, **kwargs)))
    est = np.stack([np.nan_to_num(r.radius, nan=np.inf) for r in screened])
    wins = np.bincount(np.argmin(est, 0), minlength=len(screened))
    ranked = sorted(np.flatnonzero(wins), key=lambda i: (-wins[i], float(np.mean(est[i]))))
    return [screened[i].direction for i in sorted(ranked[:MAX_FINALISTS])]


def _screen_samples(samples: int, direction: Direction) -> int:
    """Screening draws for a direction: at most SCREEN_BUDGET sampled coordinates (>= 256 draws)."""
    return int(min(samples, max(256, SCREEN_BUDGET // direction.support_size)))


def radius_curve(noise, norm, p_a=DEFAULT_P_A_GRID, *, p_b=None, samples: int = 100_000,
                 seed: int = 0, device=None, confidence: float = 0.99, backend: str = "mc",
                 search="sparse", search_samples: int = 4096, points: int = 64) -> pd.DataFrame:
    """The p_A -> R curve: one row per p_A with radius, lower, upper and the witness direction.

    ``search``: "sparse" (k-sparse equal directions, axis to diagonal), "pso" (plus a particle
    swarm refinement), "axis", "diagonal", or explicit Direction(s). ``backend``: "mc", "exact"
    or "auto" (exact where it applies).
    """
    results = _curve(noise, norm, p_a, p_b=p_b, samples=samples, seed=seed, device=device,
                     confidence=confidence, backend=backend, search=search,
                     search_samples=search_samples, points=points)
    rows = [{"p_a": r.p_a, "p_b": r.p_b, "radius": r.radius, "lower": r.lower, "upper": r.upper,
             "direction": r.witness["label"], "support": r.witness["support"],
             "witness_scale": r.witness["scale"], "backend": r.backend, "witness": r.witness}
            for r in results]
    return pd.DataFrame(rows)


def certified_radius(noise, p_a, norm, *, p_b=None, samples: int = 100_000, seed: int = 0,
                     device=None, confidence: float = 0.99, backend: str = "mc", search="sparse",
                     search_samples: int = 4096, points: int = 64) -> Radius:
    """The UniCR radius at one (p_A, p_B) with its band and witness."""
    if np.ndim(p_a) != 0:
        raise ValueError("p_a must be a single probability in (0, 1]; use radius_curve for a grid")
    return _curve(noise, norm, [p_a], p_b=None if p_b is None else [p_b], samples=samples, seed=seed,
                  device=device, confidence=confidence, backend=backend, search=search,
                  search_samples=search_samples, points=points)[0]


def witness_margin(noise, witness: dict, p_a: float, p_b: float | None = None, *,
                   samples: int = 1_000_000, seed: int = 1, device=None, confidence: float = 0.99,
                   backend: str = "auto") -> Margin:
    """K at the stored witness delta = scale * v (a dict from :attr:`Radius.witness`).

    Re-checks independently of the run that found it: a fresh seed and more draws, or the
    deterministic backend where it applies (``backend="auto"``).
    """
    noise = make_noise(noise)
    (p_a,), (p_b,) = _probabilities([p_a], None if p_b is None else [p_b])
    backend = check_choice("backend", backend, {"mc", "exact", "auto"})
    try:
        direction = Direction.from_description(witness)
        scale = float(witness["scale"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"witness must be a dict as stored by unicr (label, dim, groups or values, "
                         f"scale): {exc}") from None
    # the stored description is delta itself: rebuild v = delta / scale
    direction = Direction(direction.values / scale, direction.dim, direction.index, direction.label,
                          None if direction.groups is None else
                          tuple((c, m / scale) for c, m in direction.groups))
    if direction.dim != noise.dim:
        raise ValueError(f"witness dim {direction.dim} does not match noise dim {noise.dim}")
    ray = _ray(noise, direction, samples=int(samples), seed=int(seed), device=device,
               confidence=confidence, backend=backend)
    lam = torch.tensor([scale], dtype=torch.float64, device=ray_device(device))
    est, lo, hi = (float(x.reshape(-1)[0]) for x in ray.margin(lam, [p_a], [p_b]))
    return Margin(est, lo, hi, norm=float(witness.get("norm", math.nan)),
                  backend="mc" if isinstance(ray, MonteCarloRay) else "exact",
                  samples=int(samples), seed=int(seed))


def _curve(noise, norm, p_a, *, p_b, samples, seed, device, confidence, backend, search,
           search_samples, points) -> list[Radius]:
    noise = make_noise(noise)
    p = check_norm(norm)
    pa, pb = _probabilities(p_a, p_b)
    backend = check_choice("backend", backend, {"mc", "exact", "auto"})
    if not 0 < float(confidence) < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if int(samples) < 100:
        raise ValueError(f"samples must be >= 100, got {samples!r}")
    finalists = _search(noise, p, pa, pb, search=search, samples=int(samples),
                        search_samples=int(search_samples), seed=int(seed), device=device,
                        confidence=confidence, backend=backend, points=points)
    each = 1.0 - (1.0 - confidence) / len(finalists)
    finals = [_along(noise, v, p, pa, pb, samples=int(samples), seed=int(seed), device=device,
                     confidence=each, backend=backend, points=points) for v in finalists]
    est = np.stack([r.radius for r in finals])
    lower = np.stack([r.lower for r in finals]).min(0)
    upper_all = np.stack([r.upper for r in finals])
    best_upper = np.argmin(upper_all, 0)
    out = []
    for j in range(len(pa)):
        w = finals[best_upper[j]]
        witness = w.direction.describe(scale=float(w.witness_scale[j]))
        witness.update(scale=float(w.witness_scale[j]), norm=float(w.upper[j]), p=p,
                       noise=noise.describe())
        out.append(Radius(radius=float(est[:, j].min()), lower=float(lower[j]),
                          upper=float(upper_all[best_upper[j], j]), p_a=float(pa[j]), p_b=float(pb[j]),
                          norm=p, witness=witness, backend=w.backend, confidence=confidence,
                          samples=int(samples)))
    return out
