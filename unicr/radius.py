"""Certified radii: noise -> statistic -> boundary -> radius, with an error band and a witness.

The UniCR radius (Hong et al., ECCV 2022, Sec. 3) is R_U = min over searched directions v of
lam*(v) ||v||_p, where lam*(v) is the first scale at which lam v reaches the NP boundary. It is an
upper bound on the tight radius R*_p up to estimation error; any searched lam v beyond the band is
a witness that R*_p <= ||lam v||_p.

Direction search: the family of :func:`unicr.directions.search_family` (k-sparse equal directions
from the axis to the full diagonal, with the signs and positions the noise's declarations
require) is screened, whatever the backend, by the deterministic backend on a coarse lattice
(``SCREEN``) where it applies, and otherwise by Monte Carlo on a reduced sample
(``search_samples``, fewer for very dense directions so that at most SCREEN_BUDGET coordinates are
drawn) from the ``search`` stream; the directions that win at some p_A are then re-evaluated (at most
MAX_FINALISTS, chosen so that the p_A whose winner is left out lose least) on the full sample
from the ``main`` stream (a confirmation run, so the reported band carries no selection bias),
each at confidence 1 - (1 - c)/m for m finalists (Bonferroni), and the radius is the minimum over
finalists; a finalist is refined only where it can still set that minimum or its band.
``search="pso"`` adds a particle-swarm refinement (:mod:`unicr.search`) started from the best
screened directions, its particles evaluated on a coarser lattice still (``SWARM``); the swarm's
best profile, screened again like the family, joins the finalists where it clearly beats them.

Each radius says what its band is (``Radius.band``): ``"confidence"`` (Monte Carlo, at the stated
confidence), ``"rigorous"`` (deterministic backend with proven bounds: closed forms, or numeric
bounds for log-concave noise) or ``"numerical"`` (deterministic backend where the bounds rest on
numerically located turning points and first crossings).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .boundary import solve_ray
from .directions import Direction, search_family
from .errors import check_choice, check_norm, check_probability_pair
from .noises import Noise, noise as make_noise
from .statistics import MonteCarloRay
from .streams import check_purpose

__all__ = ["EngineSettings", "Witness", "Radius", "Margin", "certified_radius", "radius_curve",
           "witness_margin", "DEFAULT_P_A_GRID", "BANDS"]

DEFAULT_P_A_GRID = tuple(np.round(np.linspace(0.55, 0.99, 45), 6)) + (0.995, 0.999, 0.9999)
SCREEN_BUDGET = 1 << 23


@dataclass(frozen=True)
class _Screening:
    """How a screening run evaluates a direction: the deterministic backend's lattice and slack
    (``exact``: ExactRay options) with radii read off a scan of ``bounds["points"]`` scales by cubic
    interpolation and no refinement (radius_bounds options); the boundary search of any (p_A, p_B)
    and of Monte Carlo (``solve``: solve_ray options, estimates interpolated, no refinement)."""

    exact: dict
    bounds: dict
    solve: dict


#: the screening of the search family (the screening's accuracy is about 3e-4 on the lattice)
SCREEN = _Screening(exact={"grid": 1 << 11, "tol": 1e-6}, bounds={"points": 48, "rounds": 0},
                    solve={"points": 24, "refinements": 0})
#: a PSO particle: coarser still (the swarm's best is screened again with SCREEN before it competes)
SWARM = _Screening(exact={"grid": 1 << 10, "tol": 1e-6}, bounds={"points": 24, "rounds": 0},
                   solve={"points": 16, "refinements": 0})
MAX_FINALISTS = 3
#: screened radii within this relative distance of the best are ties (the screening's own accuracy
#: is about 3e-4 on the coarse deterministic backend): a tie goes to the direction screened first,
#: so a PSO profile (screened last, costly to confirm) is a finalist only where it is clearly better
SCREEN_TIES = 1e-3
PILOT_SAMPLES = 4096
#: band kinds, weakest first (a radius built from several finalists takes the weakest)
BANDS = ("confidence", "numerical", "rigorous")
SEARCHES = ("sparse", "pso", "axis", "diagonal")


@dataclass(frozen=True)
class EngineSettings:
    """Everything that shapes an engine run besides the noise, the norm and the probabilities.

    ``samples``: Monte Carlo draws of the main run; ``seed``: the seed of every named stream
    (:mod:`unicr.streams`); ``confidence``: of the band; ``backend``: "mc", "exact" (the
    deterministic backend, i.i.d. noise) or "auto" (exact wherever it applies);
    ``search``: "sparse", "pso", "axis", "diagonal", a Direction or a tuple of Directions;
    ``search_samples``: draws of the screening run; ``points``: lam grid points of a ray.
    """

    samples: int = 100_000
    seed: int = 0
    device: str | None = None
    confidence: float = 0.99
    backend: str = "auto"
    search: object = "sparse"
    search_samples: int = 4096
    points: int = 64

    def __post_init__(self):
        for name, low in (("samples", 100), ("search_samples", 100), ("points", 8), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not float(value).is_integer() or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not 0 < float(self.confidence) < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence!r}")
        object.__setattr__(self, "confidence", float(self.confidence))
        object.__setattr__(self, "backend", check_choice("backend", self.backend, {"mc", "exact", "auto"}))
        search = self.search
        if isinstance(search, str):
            search = check_choice("search", search, SEARCHES)
        elif isinstance(search, Direction):
            search = (search,)
        elif isinstance(search, (list, tuple)) and search and all(isinstance(d, Direction) for d in search):
            search = tuple(search)
        else:
            raise ValueError("search must be 'sparse', 'pso', 'axis', 'diagonal', a Direction or a list "
                             f"of Directions, got {search!r}")
        object.__setattr__(self, "search", search)
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                raise ValueError(f"device must name a torch device (e.g. 'cpu', 'cuda'), got {self.device!r}") from None


def _settings(settings: EngineSettings | None, options: dict) -> EngineSettings:
    unknown = sorted(set(options) - set(EngineSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown engine option {unknown[0]!r}; allowed: "
                         f"{', '.join(EngineSettings.__dataclass_fields__)}")
    return replace(settings or EngineSettings(), **options)


@dataclass(frozen=True, eq=False)
class Witness:
    """A perturbation delta = scale * v with K(delta) <= 0 (at the stated band): R*_p <= ||delta||_p.

    ``direction`` is v, ``scale`` the factor, ``p`` the norm order and ``noise`` the noise it
    refutes (its description). ``delta_norm`` is ||delta||_p.
    """

    direction: Direction
    scale: float
    p: float
    noise: str = ""

    @property
    def delta_norm(self) -> float:
        return self.scale * self.direction.norm(self.p)

    @property
    def label(self) -> str:
        return self.direction.label

    @property
    def support(self) -> int:
        return self.direction.support_size

    def delta(self) -> torch.Tensor:
        """delta itself, in R^dim."""
        return self.scale * self.direction.dense()

    def rescaled(self, delta_norm: float) -> "Witness":
        """The same direction with ||delta||_p = delta_norm."""
        return replace(self, scale=self.scale * delta_norm / self.delta_norm)

    def to_dict(self) -> dict:
        """JSON-ready: delta as groups of equal coordinates (or values at positions), scale, norm."""
        v = self.direction
        out = {"label": v.label, "dim": v.dim, "support": v.support_size, "scale": self.scale,
               "delta_norm": self.delta_norm, "p": self.p, "noise": self.noise}
        if v.groups is not None and v.index is None:
            out["groups"] = [{"count": c, "value": self.scale * m} for c, m in v.groups]
        else:
            out["values"] = (self.scale * v.values).tolist()
            if v.index is not None:
                out["index"] = v.index.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Witness":
        """Inverse of :meth:`to_dict` (the stored values are delta = scale * v)."""
        try:
            scale, dim = float(data["scale"]), int(data["dim"])
            if not scale > 0:
                raise ValueError(f"scale must be > 0, got {scale!r}")
            label = str(data.get("label", "custom"))
            if "groups" in data:
                groups = tuple((int(g["count"]), float(g["value"]) / scale) for g in data["groups"])
                values = torch.cat([torch.full((c,), m, dtype=torch.float64) for c, m in groups])
                direction = Direction(values, dim, label=label, groups=groups)
            else:
                values = torch.tensor([float(x) / scale for x in data["values"]], dtype=torch.float64)
                index = torch.tensor([int(i) for i in data["index"]]) if "index" in data else None
                direction = Direction(values, dim, index=index, label=label)
            p = check_norm(data.get("p", 2.0))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError("witness must be a dict as stored by unicr (label, dim, groups or values, "
                             f"scale, p): {exc}") from None
        return cls(direction, scale, p, str(data.get("noise", "")))


@dataclass(frozen=True)
class Radius:
    """A certified radius with its band and the witness attaining it.

    ``radius`` is the estimate of R_U; ``lower``/``upper`` bound it, as ``band`` says: at
    ``confidence`` ("confidence", Monte Carlo), with proven bounds ("rigorous") or numerically
    ("numerical"). ``witness`` is delta at the *upper* end of the band: K(delta) <= 0 there.
    R_U is an upper bound on the tight radius only as good as the direction search.
    """

    radius: float
    lower: float
    upper: float
    p_a: float
    p_b: float
    norm: float
    witness: Witness = field(repr=False)
    backend: str = "mc"
    band: str = "confidence"
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
    delta_norm: float
    backend: str
    samples: int
    seed: int
    stream: str = "witness"

    @property
    def holds(self) -> bool:
        return self.upper <= 0.0


def _noise_scale(noise: Noise) -> float:
    return float(noise.sigma or noise.scale or 1.0)


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
    if isinstance(search, tuple):
        for d in search:
            if d.dim != noise.dim:
                raise ValueError(f"direction dim {d.dim} does not match noise dim {noise.dim}")
        return list(search)
    family = search_family(noise, p)
    if search == "axis":
        return [d for d in family if d.support_size == 1]
    if search == "diagonal":
        return [d for d in family if d.support_size == noise.dim]
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
    band: str


def _ray(noise, direction, settings: EngineSettings, *, stream="main", samples=None, confidence=None,
         screening: _Screening | None = None):
    """The statistic along a direction for the chosen backend; for ``screening``, the coarse
    deterministic backend wherever it applies, whatever the backend (else Monte Carlo)."""
    if screening or settings.backend in ("exact", "auto"):
        from . import exact
        if exact.applies(noise, direction):
            return exact.ExactRayScores(noise, direction, **(screening.exact if screening else {}))
        if settings.backend == "exact" and not screening:
            raise ValueError("backend='exact' needs i.i.d. noise and a direction of equal-value groups; "
                             "use backend='mc' or 'auto'")
    return MonteCarloRay(noise, direction, samples=samples or settings.samples, seed=settings.seed,
                         stream=stream, device=settings.device,
                         confidence=confidence or settings.confidence)


def _along(noise, direction, p, p_a, p_b, settings: EngineSettings, *, stream="main", samples=None,
           confidence=None, screening: _Screening | None = None, cap=None) -> _RayResult:
    """Solve the boundary along one direction for all (p_A, p_B); ``screening``: see :func:`_ray`;
    ``cap``: radii above which the deterministic backend stops refining (another direction's upper
    ends, see :func:`unicr.exact.radius_bounds`)."""
    ray = _ray(noise, direction, settings, stream=stream, samples=samples, confidence=confidence,
               screening=screening)
    vnorm = direction.norm(p)
    mc = isinstance(ray, MonteCarloRay)
    if not mc and np.all(np.abs(p_a + p_b - 1) <= 1e-15):
        from .exact import radius_bounds
        radius, lower, upper = radius_bounds(ray.ray, p_a, vnorm, **(screening.bounds if screening else {"cap": cap}))
        return _RayResult(direction, radius, lower, upper, upper / vnorm, "exact", ray.ray.band)
    pilot = None
    if mc and ray.samples > 2 * PILOT_SAMPLES:
        pilot = MonteCarloRay(noise, direction, samples=PILOT_SAMPLES, seed=settings.seed, stream="pilot",
                              device=settings.device, confidence=ray.confidence)
    device = torch.device(settings.device or "cpu")
    ta = torch.as_tensor(p_a, dtype=torch.float64, device=device)
    tb = torch.as_tensor(p_b, dtype=torch.float64, device=device)
    lam, lam_lo, lam_hi = solve_ray(ray, ta, tb, scale=_noise_scale(noise), pilot=pilot,
                                    **(screening.solve if screening else {"points": settings.points}))
    lam, lam_lo, lam_hi = (x.cpu().numpy() for x in (lam, lam_lo, lam_hi))
    return _RayResult(direction, lam * vnorm, lam_lo * vnorm, lam_hi * vnorm, lam_hi,
                      "mc" if mc else "exact", "confidence" if mc else ray.ray.band)


def _search(noise, p, p_a, p_b, settings: EngineSettings) -> list[Direction]:
    """Screen candidate directions on a reduced sample; return those that win at some p_A."""
    candidates = _candidate_directions(noise, p, settings.search)
    if len(candidates) == 1 and settings.search != "pso":
        return candidates
    # screening: the coarse deterministic backend where it applies, else Monte Carlo on the
    # reduced sample; the finalists are then evaluated with the requested backend
    samples = min(settings.search_samples, settings.samples)

    def screen(v: Direction, draws: int, level: _Screening = SCREEN) -> _RayResult:
        return _along(noise, v, p, p_a, p_b, settings, stream="search", samples=draws, screening=level)

    screened = [screen(v, _screen_samples(samples, v)) for v in candidates]
    if settings.search == "pso":
        from .search import pso_refine
        swarm_best = pso_refine(noise, p, p_a, p_b, screened, evaluate=lambda v: screen(v, samples, SWARM))
        screened.append(screen(swarm_best.direction, samples))
    est = np.stack([np.nan_to_num(r.radius, nan=np.inf) for r in screened])
    return [screened[i].direction for i in sorted(_finalists(est, len(candidates)))]


def _finalists(est: np.ndarray, family: int) -> list[int]:
    """The screened directions to confirm (rows of est, radii per p_A). From the search family
    (rows before ``family``), at most MAX_FINALISTS, chosen greedily to minimise the summed
    relative excess over the best screened radius at each p_A (beyond SCREEN_TIES): every p_A keeps
    its winner unless the cap forces a choice, and then the p_A that loses least gives way. A row
    after them (the swarm's profile) joins when it lowers the summed excess by more than
    SCREEN_TIES per p_A: it adds to the family's finalists, so PSO never ends above the sparse
    search, and a near-tie does not cost its confirmation (a convolution per group)."""
    best = est.min(0)
    finite = np.isfinite(best) & (best > 0)
    if not finite.any():
        return [0]

    def excess(chosen):   # radii within SCREEN_TIES of the best are ties, which go to the first direction
        return float(np.sum(np.maximum(est[chosen][:, finite].min(0) / best[finite] - 1 - SCREEN_TIES, 0.0)))

    chosen: list[int] = []
    while len(chosen) < min(MAX_FINALISTS, family) and (not chosen or excess(chosen) > 0):
        chosen.append(min((i for i in range(family) if i not in chosen), key=lambda i: excess(chosen + [i])))
    for i in range(family, len(est)):
        if excess(chosen) - excess(chosen + [i]) > SCREEN_TIES * np.count_nonzero(finite):
            chosen.append(i)
    return chosen


def _screen_samples(samples: int, direction: Direction) -> int:
    """Screening draws for a direction: at most SCREEN_BUDGET sampled coordinates (>= 256 draws)."""
    return int(min(samples, max(256, SCREEN_BUDGET // direction.support_size)))


def radius_curve(noise, norm, p_a=DEFAULT_P_A_GRID, *, p_b=None, settings: EngineSettings | None = None,
                 **options) -> pd.DataFrame:
    """The p_A -> R curve: one row per p_A with radius, lower, upper, the band's kind and the witness.

    ``settings`` (an :class:`EngineSettings`) and/or its fields as keywords (``samples=``,
    ``seed=``, ``backend=``, ``search=`` ...), see :func:`certified_radius`.
    """
    results = _curve(noise, norm, p_a, p_b, _settings(settings, options))
    rows = [{"p_a": r.p_a, "p_b": r.p_b, "radius": r.radius, "lower": r.lower, "upper": r.upper,
             "direction": r.witness.label, "support": r.witness.support, "witness_scale": r.witness.scale,
             "backend": r.backend, "band": r.band, "witness": r.witness}
            for r in results]
    return pd.DataFrame(rows)


def certified_radius(noise, p_a, norm, *, p_b=None, settings: EngineSettings | None = None,
                     **options) -> Radius:
    """The UniCR radius at one (p_A, p_B), with its band and witness.

    ``noise``: a name (``unicr.noise``), a :class:`unicr.Noise` or a torch Distribution over R^d;
    ``norm``: any p > 0 or "inf"; ``p_b=None`` is the binary case p_B = 1 - p_A.

    Guarantee: the band [lower, upper] holds R_U, the minimum over the searched directions, at
    ``confidence`` (Monte Carlo) or rigorously (``band == "rigorous"``), and K <= 0 at the witness.
    R_U is an upper bound on the tight radius R*; it is not a certificate (Hong et al., 2022): a
    search that misses the worst direction makes it too large.
    """
    if np.ndim(p_a) != 0:
        raise ValueError("p_a must be a single probability in (0, 1]; use radius_curve for a grid")
    return _curve(noise, norm, [p_a], None if p_b is None else [p_b], _settings(settings, options))[0]


def witness_margin(noise, witness, p_a: float, p_b: float | None = None, *, samples: int = 1_000_000,
                   seed: int = 0, stream: str = "witness", device=None, confidence: float = 0.99,
                   backend: str = "auto") -> Margin:
    """K at a witness delta (a :class:`Witness` or its dict), re-checked independently of the run
    that found it: its own random stream (``stream``, default "witness") with ``samples`` draws, or
    the deterministic backend where it applies (``backend="auto"``)."""
    noise = make_noise(noise)
    (p_a,), (p_b,) = _probabilities([p_a], None if p_b is None else [p_b])
    if not isinstance(witness, Witness):
        witness = Witness.from_dict(witness)
    if witness.direction.dim != noise.dim:
        raise ValueError(f"witness dim {witness.direction.dim} does not match noise dim {noise.dim}")
    settings = EngineSettings(samples=samples, seed=seed, device=device, confidence=confidence,
                              backend=backend)
    ray = _ray(noise, witness.direction, settings, stream=check_purpose(stream))
    lam = torch.tensor([witness.scale], dtype=torch.float64, device=torch.device(settings.device or "cpu"))
    est, lo, hi = (float(x.reshape(-1)[0]) for x in ray.margin(lam, [p_a], [p_b]))
    mc = isinstance(ray, MonteCarloRay)
    return Margin(est, lo, hi, delta_norm=witness.delta_norm, backend="mc" if mc else "exact",
                  samples=settings.samples if mc else 0, seed=settings.seed, stream=stream)


def _curve(noise, norm, p_a, p_b, settings: EngineSettings) -> list[Radius]:
    noise = make_noise(noise)
    p = check_norm(norm)
    pa, pb = _probabilities(p_a, p_b)
    finalists = _search(noise, p, pa, pb, settings)
    each = 1.0 - (1.0 - settings.confidence) / len(finalists)
    finals: list[_RayResult] = []
    for v in finalists:   # a finalist is refined only where it can still set the minimum or its band
        cap = np.min([r.upper for r in finals], axis=0) if finals else None
        finals.append(_along(noise, v, p, pa, pb, settings, confidence=each, cap=cap))
    est = np.stack([r.radius for r in finals])
    lower = np.stack([r.lower for r in finals]).min(0)
    upper_all = np.stack([r.upper for r in finals])
    best_upper = np.argmin(upper_all, 0)
    band = min((r.band for r in finals), key=BANDS.index)
    out = []
    for j in range(len(pa)):
        w = finals[best_upper[j]]
        witness = Witness(w.direction, float(w.witness_scale[j]), p, noise.describe())
        radius = float(est[:, j].min())
        upper = float(upper_all[best_upper[j], j])
        out.append(Radius(radius=radius, lower=min(float(lower[j]), radius), upper=max(upper, radius),
                          p_a=float(pa[j]), p_b=float(pb[j]), norm=p, witness=witness, backend=w.backend,
                          band=band, confidence=settings.confidence, samples=settings.samples))
    return out

