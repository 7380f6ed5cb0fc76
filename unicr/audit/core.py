"""Audit one certificate in one norm at one sigma: the claimed p_A -> R curve against the engine's.

``plan`` validates a case and evaluates the claim (cheap, so every input error surfaces before the
first engine run); ``run`` computes the engine curve (``engine_curve``), then the verdicts and the
confirmed witnesses (``judge``, :mod:`unicr.audit.verdicts`). ``audit`` does all of it.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

import numpy as np

import certificates
from certificates import Certificate, norm_label

from ..errors import check_choice, check_dim, check_norm
from ..noises import Noise, noise as make_noise
from ..radius import radius_curve, witness_margin
from .verdicts import (CONFIRM_FACTOR, DEFAULT_TOLERANCE, Row, check_tolerance, confirm, row_verdict,
                       sweep_verdict)

__all__ = ["Settings", "Case", "Audit", "DEFAULT_GRID", "plan", "engine_curve", "judge", "run", "audit",
           "engine_backend", "margin_record", "refuting_witness", "CONFIRM_SEED_OFFSET", "SEARCHES"]

#: the p_A grid of the paper's figures: 45 points from 0.55 to 0.99
DEFAULT_GRID = tuple(float(x) for x in np.round(np.linspace(0.55, 0.99, 45), 6))
#: seed offset of the confirmation run (distinct from the engine's search offset, 7919)
CONFIRM_SEED_OFFSET = 1_000_033
SEARCHES = ("sparse", "pso", "axis", "diagonal")


@dataclass(frozen=True)
class Settings:
    """Sweep settings shared by every case of a run."""

    dim: int = 3072
    p_a: tuple[float, ...] = DEFAULT_GRID
    samples: int = 100_000
    seed: int = 0
    device: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    confidence: float = 0.99
    backend: str = "auto"
    search: str = "sparse"

    def __post_init__(self):
        object.__setattr__(self, "dim", check_dim(self.dim))
        grid = tuple(float(x) for x in np.atleast_1d(np.asarray(self.p_a, dtype=float)))
        if not grid:
            raise ValueError("the p_A grid must hold at least one value in (1/2, 1)")
        bad = [x for x in grid if not 0.5 < x < 1.0]
        if bad:
            raise ValueError(f"p_A values must lie in (1/2, 1) (binary sweep), got {bad[0]!r}")
        object.__setattr__(self, "p_a", tuple(sorted(set(grid))))
        if isinstance(self.samples, bool) or int(self.samples) != self.samples or self.samples < 100:
            raise ValueError(f"samples must be an integer >= 100, got {self.samples!r}")
        object.__setattr__(self, "samples", int(self.samples))
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "tolerance", check_tolerance(self.tolerance))
        if not 0.0 < float(self.confidence) < 1.0:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence!r}")
        object.__setattr__(self, "confidence", float(self.confidence))
        object.__setattr__(self, "backend", check_choice("backend", self.backend, {"auto", "mc", "exact"}))
        object.__setattr__(self, "search", check_choice("search", self.search, SEARCHES))


@dataclass(frozen=True)
class Case:
    """One certificate x norm x sigma, validated, with its claimed radii on the grid."""

    certificate: Certificate
    norm: float
    sigma: float
    shape: dict
    source: str
    noise: Noise = field(repr=False)
    claimed: tuple[float, ...] = field(repr=False)

    @property
    def label(self) -> str:
        """'cohen l2 sigma=1'."""
        return f"{self.certificate.name} {norm_label(self.norm)} sigma={self.sigma:g}"

    def noise_spec(self) -> dict:
        """Everything needed to rebuild the noise: unicr.noise(family, sigma=, dim=, **shape)."""
        return {"family": self.certificate.noise.family, "sigma": self.sigma, "dim": self.noise.dim,
                "shape": dict(self.shape), "describe": self.noise.describe()}


@dataclass(frozen=True)
class Audit:
    """The outcome of a case: rows, sweep verdict, and the backend actually used."""

    case: Case
    settings: Settings
    rows: tuple[Row, ...]
    verdict: str
    backend: str
    note: str = ""


def engine_backend(requested: str) -> tuple[str, str]:
    """The backend to run and a note: 'auto' falls back to 'mc' if unicr.exact cannot be imported."""
    if requested == "mc":
        return "mc", ""
    try:
        importlib.import_module("unicr.exact")
    except ImportError as exc:
        if requested == "exact":
            raise ValueError(f"backend 'exact' is unavailable: unicr.exact failed to import ({exc})") from None
        return "mc", f"backend 'auto' ran as 'mc': unicr.exact failed to import ({exc})"
    return requested, ""


def _shape(certificate: Certificate, shape: dict | None) -> dict:
    known = {s.name: float(s.default) for s in certificate.noise.shape}
    for key, value in (shape or {}).items():
        if key not in known:
            accepted = ", ".join(known) or "none"
            raise ValueError(f"unknown shape parameter {key!r} for certificate {certificate.name!r}; "
                             f"accepted: {accepted}")
        known[key] = float(value)
    return known


def plan(certificate, norm=None, sigma: float = 1.0, settings: Settings | None = None, *,
         shape: dict | None = None, source: str = "catalog") -> Case:
    """Validate one case and evaluate the claim on the grid (raises ValueError on bad input)."""
    settings = settings or Settings()
    if not isinstance(certificate, Certificate):
        certificate = certificates.get(certificate)
    p = certificate.norms[0] if norm is None else check_norm(norm)
    params = _shape(certificate, shape)
    try:
        claimed = certificate.radius_curve(settings.p_a, sigma=sigma, dim=settings.dim, norm=p, **params)
    except OverflowError as exc:
        raise ValueError(str(exc)) from None
    noise = make_noise(certificate.noise.family, sigma=float(sigma), dim=settings.dim, **params)
    return Case(certificate, p, float(sigma), params, source, noise, tuple(float(x) for x in claimed))


def margin_record(margin, level: float) -> dict:
    """A :class:`unicr.Margin` as a JSON-ready dict, with the level it was computed at."""
    return {"estimate": margin.estimate, "lower": margin.lower, "upper": margin.upper,
            "norm": margin.norm, "backend": margin.backend, "samples": margin.samples,
            "seed": margin.seed, "confidence": level, "holds": margin.holds}


def refuting_witness(witness: dict, claimed: float) -> dict:
    """The engine's witness direction scaled to the norm (R_hi + R_C)/2 of a suspect row.

    The engine's witness sits at the band's upper end R_hi, where K(delta) <= 0 only just. Any
    delta on the same ray with R_hi <= ||delta|| < R_C refutes the claim R_C; halfway makes K(delta)
    clearly negative (it decreases along the ray for log-concave noise) while still proving
    R* <= ||delta|| < R_C, so the independent confirmation can resolve it.
    """
    target = 0.5 * (witness["norm"] + claimed) if math.isfinite(claimed) else 2.0 * witness["norm"]
    f = target / witness["norm"]
    out = dict(witness, scale=witness["scale"] * f, norm=target)
    if "groups" in out:
        out["groups"] = [dict(g, value=g["value"] * f) for g in out["groups"]]
    else:
        out["values"] = [v * f for v in out["values"]]
    return out


def engine_curve(case: Case, settings: Settings):
    """The engine's p_A -> R curve of a case (:func:`unicr.radius_curve`)."""
    backend, _ = engine_backend(settings.backend)
    return radius_curve(case.noise, case.norm, list(settings.p_a), samples=settings.samples, seed=settings.seed,
                        device=settings.device, confidence=settings.confidence, backend=backend,
                        search=settings.search)


def judge(case: Case, settings: Settings, curve) -> Audit:
    """Per-row verdicts against an engine curve, confirmation of suspect rows, sweep verdict."""
    backend, note = engine_backend(settings.backend)
    rows = []
    for claimed, rec in zip(case.claimed, curve.to_dict("records")):
        verdict = row_verdict(claimed, rec["lower"], rec["upper"], settings.tolerance)
        rows.append(Row(p_a=float(rec["p_a"]), p_b=float(rec["p_b"]), claimed=claimed,
                        radius=float(rec["radius"]), lower=float(rec["lower"]), upper=float(rec["upper"]),
                        direction=str(rec["direction"]), support=int(rec["support"]),
                        backend=str(rec["backend"]), verdict=verdict,
                        witness=refuting_witness(rec["witness"], claimed) if verdict == "suspect" else None))

    def check(row: Row, level: float) -> dict:
        margin = witness_margin(case.noise, row.witness, row.p_a, row.p_b,
                                samples=CONFIRM_FACTOR * settings.samples,
                                seed=settings.seed + CONFIRM_SEED_OFFSET, device=settings.device,
                                confidence=level, backend=backend)
        return margin_record(margin, level)

    rows = confirm(rows, check, settings.confidence)
    return Audit(case, settings, tuple(rows), sweep_verdict(rows), backend, note)


def run(case: Case, settings: Settings) -> Audit:
    """Engine curve, verdicts and confirmed witnesses of a planned case."""
    return judge(case, settings, engine_curve(case, settings))


def audit(certificate, norm=None, sigma: float = 1.0, settings: Settings | None = None, *,
          shape: dict | None = None, source: str = "catalog") -> Audit:
    """Audit a certificate (a :class:`certificates.Certificate` or a catalog name) in one norm.

    >>> from unicr.audit import Settings, audit
    >>> a = audit("cohen", 2, settings=Settings(dim=16, p_a=(0.6, 0.9), samples=2000))
    >>> a.verdict
    'tight'
    """
    settings = settings or Settings()
    return run(plan(certificate, norm, sigma, settings, shape=shape, source=source), settings)
