"""Audit one certificate in one norm at one sigma: the claimed p_A -> R curve against the engine's.

``plan`` validates a case and evaluates the claim (cheap, so every input error surfaces before the
first engine run): it resolves the certificate's noise name against unicr's live noise registry,
builds the noise at the given sigma (or, for a family without a variance, scale), and checks that
the certificate's sigma -> scale mapping agrees with the noise's own scale (``check_scale``).
``run`` computes the engine curve (``engine_curve``), then the verdicts and the
confirmed witnesses (``judge``, :mod:`unicr.audit.verdicts`). ``audit`` does all of it.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import check_choice, check_dim, check_norm
from .verdicts import (CONFIRM_FACTOR, DEFAULT_SUSPECT_TOLERANCE, DEFAULT_TOLERANCE, Row, check_suspect_tolerance,
                       check_tolerance, confirm, row_verdict, sweep_verdict)

if TYPE_CHECKING:
    from certificates import Certificate

    from ..noises import Noise
    from ..radius import Witness

__all__ = ["Settings", "Case", "Audit", "DEFAULT_GRID", "plan", "engine_curve", "judge", "run", "audit",
           "engine_backend", "margin_record", "refuting_witness", "SEARCHES",
           "build_noise", "check_scale", "SCALE_RTOL", "number_text"]

#: the p_A grid of the paper's figures: 45 points from 0.55 to 0.99
DEFAULT_GRID = tuple(float(x) for x in np.round(np.linspace(0.55, 0.99, 45), 6))
SEARCHES = ("sparse", "pso", "axis", "diagonal")
#: relative tolerance of the check that a certificate's scale equals the noise's (``check_scale``)
SCALE_RTOL = 1e-12


def number_text(x: float) -> str:
    """Shortest faithful text of a float: '1', '0.5', '1.5', '0.30000000000000004' (``:g`` where exact)."""
    x = float(x)
    short = format(x, "g")
    return short if float(short) == x else repr(x)


def _probability_pairs(p_a, p_b) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """The validated grid: sorted distinct p_A (binary) or sorted distinct (p_A, p_B) pairs."""
    try:
        grid = tuple(float(x) for x in np.atleast_1d(np.asarray(p_a, dtype=float)))
    except (TypeError, ValueError):
        raise ValueError(f"p_A values must be numbers, got {p_a!r}") from None
    if not grid:
        raise ValueError("the p_A grid must hold at least one value")
    if p_b is None:
        bad = [x for x in grid if not 0.5 < x < 1.0]
        if bad:
            raise ValueError(f"p_A values must lie in (1/2, 1) (binary sweep, p_B = 1 - p_A), got {bad[0]!r}")
        return tuple(sorted(set(grid))), None
    try:
        pb = np.atleast_1d(np.asarray(p_b, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"p_B values must be numbers, got {p_b!r}") from None
    if pb.ndim != 1 or pb.size not in (1, len(grid)):
        raise ValueError(f"p_B must be one value or one per p_A value ({len(grid)}), got {pb.size}")
    pairs = list(zip(grid, np.broadcast_to(pb, (len(grid),)).tolist()))
    for a, b in pairs:
        if not 0.0 < a < 1.0:
            raise ValueError(f"p_A values must lie in (0, 1), got {a!r}")
        if not 0.0 <= b:
            raise ValueError(f"p_B must be >= 0, got {b!r}")
        if not b < a:
            raise ValueError(f"p_B must be smaller than p_A (no positive radius otherwise), got p_A={a!r}, p_B={b!r}")
        if a + b > 1.0 + 1e-15:
            raise ValueError(f"p_A + p_B must be <= 1, got p_A={a!r}, p_B={b!r}")
    pairs = sorted(set(pairs))
    return tuple(a for a, _ in pairs), tuple(float(b) for _, b in pairs)


@dataclass(frozen=True)
class Settings:
    """Sweep settings shared by every case of a run.

    ``p_b``: None (binary: p_B = 1 - p_A, p_A in (1/2, 1)), or one p_B for every p_A, or one per p_A
    (pairs; stored sorted with p_A, aligned with it): 0 <= p_B < p_A, p_A + p_B <= 1. Only
    certificates of the general domain can be audited at a given p_B.
    ``suspect_tolerance``: eps of the suspect rule R_C > R_hi (1 + eps) (see :mod:`.verdicts`).
    """

    dim: int = 3072
    p_a: tuple[float, ...] = DEFAULT_GRID
    samples: int = 100_000
    seed: int = 0
    device: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    confidence: float = 0.99
    backend: str = "auto"
    search: str = "sparse"
    p_b: float | tuple[float, ...] | None = None
    suspect_tolerance: float = DEFAULT_SUSPECT_TOLERANCE

    def __post_init__(self):
        object.__setattr__(self, "dim", check_dim(self.dim))
        p_a, p_b = _probability_pairs(self.p_a, self.p_b)
        object.__setattr__(self, "p_a", p_a)
        object.__setattr__(self, "p_b", p_b)
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
        object.__setattr__(self, "suspect_tolerance", check_suspect_tolerance(self.suspect_tolerance))

    @property
    def general(self) -> bool:
        """Whether p_B is given (a general (p_A, p_B) audit) rather than 1 - p_A."""
        return self.p_b is not None


@dataclass(frozen=True)
class Case:
    """One certificate x norm x sigma (or scale), validated, with its claimed radii on the grid.

    Exactly one of ``sigma`` (per-coordinate standard deviation) and ``scale`` (the noise's own
    scale, for families without a variance) is set: the one the case was given.
    """

    certificate: Certificate
    norm: float
    sigma: float | None
    shape: dict
    source: str
    noise: Noise = field(repr=False)
    claimed: tuple[float, ...] = field(repr=False)
    scale: float | None = None

    @property
    def parameter(self) -> tuple[str, float]:
        """('sigma', 1.0) or ('scale', 2.0): the noise parameter as given."""
        return ("sigma", self.sigma) if self.scale is None else ("scale", self.scale)

    @property
    def parameter_text(self) -> str:
        """'sigma=1' or 'scale=2'."""
        name, value = self.parameter
        return f"{name}={number_text(value)}"

    def custom_shape(self) -> dict:
        """The shape parameters that differ from the certificate's defaults."""
        defaults = {s.name: float(s.default) for s in self.certificate.noise.shape}
        return {k: v for k, v in sorted(self.shape.items()) if v != defaults.get(k)}

    @property
    def label(self) -> str:
        """'cohen l2 sigma=1', 'yang-lomax-l1 l1 scale=1 a=1.5' (shape parameters off their default)."""
        from certificates import norm_label

        extra = "".join(f" {k}={number_text(v)}" for k, v in self.custom_shape().items())
        return f"{self.certificate.name} {norm_label(self.norm)} {self.parameter_text}{extra}"

    def noise_spec(self) -> dict:
        """Everything needed to rebuild the noise: unicr.noise(family, sigma=, dim=, **shape), or with
        scale= where the case was given a scale."""
        return {"family": self.certificate.noise.family, "sigma": self.sigma, "scale": self.scale,
                "dim": self.noise.dim, "shape": dict(self.shape), "describe": self.noise.describe()}


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


def _positive(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return x


def _shape_text(shape: dict) -> str:
    return "".join(f", {k}={number_text(v)}" for k, v in sorted(shape.items()))


def build_noise(certificate: Certificate, dim: int, shape: dict, *, sigma: float | None = None,
                scale: float | None = None) -> Noise:
    """The noise of a certificate from unicr's live registry, at ``sigma`` or (no variance) ``scale``.

    Raises a one-line ValueError naming the certificate where the noise name is not registered
    (with how to register one), where sigma is undefined for the certificate's noise (no variance:
    give the scale), or where the noise cannot be built.
    """
    from ..noises import Noise, noise as make_noise, noise_names

    family, name = certificate.noise.family, certificate.name
    known = noise_names()
    if family not in known:
        raise ValueError(
            f"certificate {name!r} uses noise {family!r}, which is not registered in unicr: register it "
            f"before auditing with unicr.register_noise({family!r}, factory) (e.g. in the plugin file that "
            f"defines the certificate); registered: {', '.join(known)}")
    if scale is None:
        try:
            certificate.scale_for(sigma, dim=dim, **shape)
        except ValueError as exc:
            if "sigma is undefined" not in str(exc):
                raise
            raise ValueError(
                f"sigma is undefined for certificate {name!r}: {family} noise"
                + (f" with {_shape_text(shape)[2:]}" if shape else "") + " has no finite "
                "variance; give its scale instead (--scale S on the command line, scale= in plan/audit)") from None
    given = f"sigma={number_text(sigma)}" if scale is None else f"scale={number_text(scale)}"
    kwargs = dict(shape, **({"sigma": sigma} if scale is None else {"scale": scale}))
    try:
        noise = make_noise(family, dim=dim, **kwargs)
    except Exception as exc:  # a registered factory's own error, reported in one line
        text = " ".join(f"{exc}".split()) or type(exc).__name__
        hint = (" (a noise without a variance takes --scale S, scale= in plan/audit, instead of sigma)"
                if scale is None and ("variance" in text or "scale" in text) else "")
        raise ValueError(f"certificate {name!r}: noise {family!r} cannot be built with {given}{_shape_text(shape)}, "
                         f"dim={dim}: {text}{hint}") from None
    if not isinstance(noise, Noise):
        raise ValueError(f"certificate {name!r}: the factory registered for noise {family!r} returned "
                         f"{type(noise).__name__}, not a unicr Noise")
    if noise.dim != dim:
        raise ValueError(f"certificate {name!r}: noise {family!r} built for dim={dim} has dim={noise.dim}")
    return noise


def check_scale(certificate: Certificate, noise, *, sigma: float | None = None, scale: float | None = None,
                dim: int, shape: dict) -> tuple[str, float, float] | None:
    """Check that the certificate's scale is the noise's own: the sigma <-> scale relation belongs to
    the noise, and a certificate that maps sigma differently would evaluate its formula at another noise.

    With ``sigma``: the certificate's ``scale_for(sigma, dim=, **shape)``; with ``scale``: the scale
    itself. It is compared, to ``SCALE_RTOL`` relative, with ``noise.sigma`` where the certificate's
    scale parameter is sigma (``NoiseMap.scale == "sigma"``), else with ``noise.scale``. Returns
    (attribute compared, certificate's value, noise's value), or None where the noise does not
    define that attribute (a user noise without ``.scale``, or no variance); raises ValueError on a
    mismatch.
    """
    nmap = certificate.noise
    attr = "sigma" if nmap.scale == "sigma" else "scale"
    actual = getattr(noise, attr, None)
    try:
        actual = None if actual is None else float(actual)
    except (TypeError, ValueError):
        actual = None
    if actual is None or not math.isfinite(actual):
        return None
    if scale is not None:
        expected, given = float(scale), f"scale={number_text(scale)}"
    else:
        expected, given = float(certificate.scale_for(sigma, dim=dim, **shape)), f"sigma={number_text(sigma)}"
    if not abs(expected - actual) <= SCALE_RTOL * abs(expected):
        raise ValueError(
            f"certificate {certificate.name!r} maps {given} to {nmap.scale}={expected:.15g} ({nmap.relation}), "
            f"noise {nmap.family!r}{_shape_text(shape)} has {attr} {actual:.15g} (dim={dim}): the two "
            f"parameterisations disagree beyond {SCALE_RTOL:g} relative; fix the certificate's NoiseMap "
            f"(sigma_per_scale) or the noise's scale")
    return attr, expected, actual


def plan(certificate, norm=None, sigma: float | None = None, settings: Settings | None = None, *,
         shape: dict | None = None, source: str = "catalog", scale: float | None = None) -> Case:
    """Validate one case and evaluate the claim on the grid (raises ValueError on bad input).

    Give ``sigma`` (per-coordinate standard deviation; default 1) or, for a noise without a
    variance, ``scale`` (the noise's own scale), not both. The noise name is resolved against
    unicr's live registry and the certificate's scale checked against the noise's
    (:func:`check_scale`); a binary certificate cannot be audited at a given p_B (``settings.p_b``).
    """
    import certificates
    from certificates import Certificate, norm_label

    from . import plugins

    settings = settings or Settings()
    if not isinstance(certificate, Certificate):
        certificate = certificates.get(certificate)
    p = certificate.norms[0] if norm is None else check_norm(norm)
    if not certificate.covers(p):
        covered = ", ".join(norm_label(q) for q in certificate.norms)
        raise ValueError(f"norm {norm_label(p)} is not covered by certificate {certificate.name!r}; it certifies {covered}")
    params = _shape(certificate, shape)
    if settings.general and certificate.domain == "binary":
        raise ValueError(f"certificate {certificate.name!r} is binary (p_B = 1 - p_A): it cannot be audited at a "
                         f"given p_B (--p-b)")
    if sigma is not None and scale is not None:
        raise ValueError("give sigma or scale, not both (--sigma or --scale)")
    if scale is None:
        sigma = _positive("sigma", 1.0 if sigma is None else sigma)
    else:
        scale = _positive("scale", scale)
    noise = build_noise(certificate, settings.dim, params, sigma=sigma, scale=scale)
    check_scale(certificate, noise, sigma=sigma, scale=scale, dim=settings.dim, shape=params)
    formula = certificate if source == "catalog" else plugins.guarded(certificate, source)
    try:
        claimed = formula.radius_curve(settings.p_a, settings.p_b, sigma=sigma, scale=scale, dim=settings.dim,
                                       norm=p, **params)
    except OverflowError as exc:
        raise ValueError(str(exc)) from None
    return Case(certificate, p, sigma, params, source, noise, tuple(float(x) for x in claimed), scale)


def margin_record(margin, level: float) -> dict:
    """A :class:`unicr.Margin` as a JSON-ready dict, with the level it was computed at."""
    return {"estimate": margin.estimate, "lower": margin.lower, "upper": margin.upper,
            "delta_norm": margin.delta_norm, "backend": margin.backend, "samples": margin.samples,
            "seed": margin.seed, "stream": margin.stream, "confidence": level, "holds": margin.holds}


def refuting_witness(witness: Witness, claimed: float) -> Witness:
    """The engine's witness direction scaled to the norm (R_hi + R_C)/2 of a suspect row.

    The engine's witness sits at the band's upper end R_hi, where K(delta) <= 0 only just. Any
    delta on the same ray with R_hi <= ||delta|| < R_C refutes the claim R_C; halfway makes K(delta)
    clearly negative (it decreases along the ray for log-concave noise) while still proving
    R* <= ||delta|| < R_C, so the independent confirmation can resolve it.
    """
    r_hi = witness.delta_norm
    return witness.rescaled(0.5 * (r_hi + claimed) if math.isfinite(claimed) else 2.0 * r_hi)


def engine_curve(case: Case, settings: Settings):
    """The engine's p_A -> R curve of a case (:func:`unicr.radius_curve`)."""
    from ..radius import radius_curve

    backend, _ = engine_backend(settings.backend)
    return radius_curve(case.noise, case.norm, list(settings.p_a),
                        p_b=None if settings.p_b is None else list(settings.p_b), samples=settings.samples,
                        seed=settings.seed, device=settings.device, confidence=settings.confidence,
                        backend=backend, search=settings.search)


def judge(case: Case, settings: Settings, curve) -> Audit:
    """Per-row verdicts against an engine curve, confirmation of suspect rows, sweep verdict."""
    from ..radius import witness_margin

    backend, note = engine_backend(settings.backend)
    rows = []
    for claimed, rec in zip(case.claimed, curve.to_dict("records")):
        verdict = row_verdict(claimed, rec["lower"], rec["upper"], settings.tolerance, settings.suspect_tolerance)
        rows.append(Row(p_a=float(rec["p_a"]), p_b=float(rec["p_b"]), claimed=claimed,
                        radius=float(rec["radius"]), lower=float(rec["lower"]), upper=float(rec["upper"]),
                        direction=str(rec["direction"]), support=int(rec["support"]),
                        backend=str(rec["backend"]), verdict=verdict,
                        witness=refuting_witness(rec["witness"], claimed) if verdict == "suspect" else None))

    def check(row: Row, level: float) -> dict:
        margin = witness_margin(case.noise, row.witness, row.p_a, row.p_b,
                                samples=CONFIRM_FACTOR * settings.samples, seed=settings.seed,
                                stream="confirm", device=settings.device, confidence=level, backend=backend)
        return margin_record(margin, level)

    rows = confirm(rows, check, settings.confidence)
    return Audit(case, settings, tuple(rows), sweep_verdict(rows), backend, note)


def run(case: Case, settings: Settings) -> Audit:
    """Engine curve, verdicts and confirmed witnesses of a planned case."""
    return judge(case, settings, engine_curve(case, settings))


def audit(certificate, norm=None, sigma: float | None = None, settings: Settings | None = None, *,
          shape: dict | None = None, source: str = "catalog", scale: float | None = None) -> Audit:
    """Audit a certificate (a :class:`certificates.Certificate` or a catalog name) in one norm, at
    ``sigma`` (default 1) or, for a noise without a variance, ``scale``.

    >>> from unicr.audit import Settings, audit
    >>> a = audit("cohen", 2, settings=Settings(dim=16, p_a=(0.6, 0.9), samples=2000))
    >>> a.verdict
    'tight'
    """
    settings = settings or Settings()
    return run(plan(certificate, norm, sigma, settings, shape=shape, source=source, scale=scale), settings)
