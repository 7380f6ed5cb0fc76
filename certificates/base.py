"""The certificate record: a published certified radius with its provenance and conventions.

A :class:`Certificate` holds the formula as a plain callable ``radius_fn(p_a, p_b, scale, dim,
norm, **shape)`` in the paper's own parameterisation (``scale`` is the paper's scale, e.g. the
Laplace lambda), and a :class:`NoiseMap` that translates unicr's per-coordinate standard deviation
``sigma`` (docs/design.md section 2) into that scale. The record validates every input, evaluates in
mpmath at a chosen precision (``radius``) and offers float64 wrappers (``radius_float``,
``radius_curve``) that are accurate or raise.

Radii certify the idealized continuous noise; floating-point sampling can break them in practice
(Voracek & Hein, ICLR 2023).
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

import mpmath as mp
import numpy as np

__all__ = [
    "Certificate",
    "NoiseMap",
    "Reference",
    "ShapeParam",
    "CLAIMS",
    "DOMAINS",
    "norm_label",
    "check_noise_name",
    "define",
]

CLAIMS = ("tight", "sound", "approximate")
DOMAINS = ("binary", "general")

_NAME = re.compile(r"^[a-z0-9][a-z0-9.]*(?:-[a-z0-9.]+)*$")
_NOISE_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_GUARD_DIGITS = 10
_MAX_EXTRA_DIGITS = 400
_MIN_PRECISION = 15


def norm_label(p: float) -> str:
    """'l1', 'l2', 'linf', 'l1.5'."""
    if math.isinf(p):
        return "linf"
    return f"l{int(p)}" if float(p).is_integer() else f"l{p:g}"


def check_noise_name(name) -> str:
    """A well-formed noise name: lowercase letters and digits in hyphenated words ('gaussian',
    'skew-laplace', 'l2-exp').

    Only the form is checked here (the package needs no torch); whether the name is registered is
    decided when the certificate is audited, against unicr's live registry (``unicr.noise_names()``,
    ``unicr.register_noise(name, factory)``).
    """
    if not isinstance(name, str) or not _NOISE_NAME.match(name):
        raise ValueError(f"noise family must be a lowercase-hyphenated noise name (e.g. 'gaussian', "
                         f"'skew-laplace'), got {name!r}")
    return name


def _parse_norm(value, name: str = "norm") -> float:
    """An l_p order p > 0 or inf; strings such as 'inf', 'linf', 'l2' are accepted."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("l")
        if text in {"inf", "infty", "infinity"}:
            return math.inf
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be p > 0 or 'inf' (e.g. 1, 2, 'inf'), got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be p > 0 or 'inf' (e.g. 1, 2, 'inf'), got {value!r}")
    value = float(value)
    if not value > 0:
        raise ValueError(f"{name} must be p > 0 or 'inf' (e.g. 1, 2, 'inf'), got {value!r}")
    return value


def _to_mpf(name: str, value) -> mp.mpf:
    """A real number (int, float, numpy scalar, mpf or decimal string) as an mpf at the working precision."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        value = value.item()  # numpy scalars (float32 included) as exact Python numbers
    if isinstance(value, (str, mp.mpf, numbers.Real)):
        try:
            x = mp.mpf(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a real number, got {value!r}") from None
    else:
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if mp.isnan(x):
        raise ValueError(f"{name} must be a real number, got nan")
    return x


def _check_dim(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"dim must be an integer >= 1, got {value!r}")
    if not math.isfinite(float(value)) or not float(value).is_integer() or value < 1:
        raise ValueError(f"dim must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Reference:
    """Where a certificate comes from: the paper and the public code it was checked against."""

    authors: str
    title: str
    venue: str
    year: int
    bibtex: str
    code: str = ""

    def cite(self) -> str:
        """'Cohen, Rosenfeld, Kolter (ICML 2019)'; just the authors where venue and year are empty
        (``'unpublished'``, see :func:`define`)."""
        if not self.venue and not self.year:
            return self.authors
        return f"{self.authors} ({self.venue} {self.year})"


@dataclass(frozen=True)
class ShapeParam:
    """A shape parameter of the noise (e.g. general-normal ``beta``) and its admissible range."""

    name: str
    default: float
    minimum: float
    inclusive: bool = True
    doc: str = ""

    def check(self, value, certificate: str) -> mp.mpf:
        x = _to_mpf(self.name, value)
        ok = x >= self.minimum if self.inclusive else x > self.minimum
        if not ok or not mp.isfinite(x):
            op = ">=" if self.inclusive else ">"
            raise ValueError(
                f"{self.name} must be finite and {op} {self.minimum:g} for certificate "
                f"{certificate!r}, got {value!r}")
        return x


@dataclass(frozen=True)
class NoiseMap:
    """The paper's noise parameterisation mapped onto unicr's.

    ``family``: the unicr noise name, lowercase-hyphenated (any registered name, also one a user
    registers with ``unicr.register_noise``; the audit resolves it). ``scale``: the paper's name for its scale parameter.
    ``sigma_per_scale(dim, **shape)``: sigma / scale as an mpf, or None where the law has no
    variance (then the caller must pass ``scale``). ``relation``: the same in words, for reports.
    """

    family: str
    scale: str = "sigma"
    sigma_per_scale: Callable[..., object] = field(default=lambda dim, **shape: mp.mpf(1), repr=False)
    relation: str = "sigma = scale"
    shape: tuple[ShapeParam, ...] = ()

    def __post_init__(self):
        check_noise_name(self.family)
        if not callable(self.sigma_per_scale):
            raise ValueError("sigma_per_scale must be callable (dim, **shape) -> sigma / scale")
        object.__setattr__(self, "shape", tuple(self.shape))


@dataclass(frozen=True)
class Certificate:
    """One published certified radius.

    ``radius_fn(p_a, p_b, scale, dim, norm, **shape)`` is called with keyword arguments after
    validation: mpf values at the working precision (``mpmath_fn=True``) or Python floats
    (``mpmath_fn=False``); ``p_b`` is ``1 - p_a`` for binary certificates. It returns the radius
    in the norm ``norm`` (one of ``norms``), ``+inf`` where the formula diverges (p_A = 1).
    """

    name: str
    reference: Reference
    noise: NoiseMap
    norms: tuple[float, ...]
    claim: str
    domain: str
    radius_fn: Callable[..., object] = field(repr=False)
    notes: str = ""
    min_dim: int = 1
    mpmath_fn: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"name must be lowercase-hyphenated (e.g. 'cohen', 'yang-uniform-l1'), got {self.name!r}")
        if not isinstance(self.reference, Reference):
            raise ValueError(f"reference must be a Reference, got {type(self.reference).__name__}")
        if not isinstance(self.noise, NoiseMap):
            raise ValueError(f"noise must be a NoiseMap, got {type(self.noise).__name__}")
        norms = (self.norms,) if isinstance(self.norms, (str, numbers.Real)) else tuple(self.norms)
        norms = tuple(_parse_norm(p, "norms") for p in norms)
        if not norms or len(set(norms)) != len(norms):
            raise ValueError(f"norms must be a non-empty list of distinct l_p orders, got {self.norms!r}")
        object.__setattr__(self, "norms", norms)
        if self.claim not in CLAIMS:
            raise ValueError(f"claim must be one of {', '.join(CLAIMS)}, got {self.claim!r}")
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, got {self.domain!r}")
        if not callable(self.radius_fn):
            raise ValueError("radius_fn must be callable (p_a, p_b, scale, dim, norm, **shape) -> radius")
        object.__setattr__(self, "min_dim", _check_dim(self.min_dim))

    # -- conventions -----------------------------------------------------------------------

    def covers(self, norm) -> bool:
        """Whether the certificate gives a radius in this l_p norm."""
        return _parse_norm(norm) in self.norms

    def _norm(self, norm) -> float:
        if norm is None:
            return self.norms[0]
        p = _parse_norm(norm)
        if p not in self.norms:
            covered = ", ".join(norm_label(q) for q in self.norms)
            raise ValueError(f"norm {norm_label(p)} is not covered by certificate {self.name!r}; it certifies {covered}")
        return p

    def _dim(self, dim) -> int:
        d = _check_dim(dim)
        if d < self.min_dim:
            raise ValueError(f"dim must be an integer >= {self.min_dim} for certificate {self.name!r}, got {dim!r}")
        return d

    def _shape(self, shape: Mapping) -> dict:
        known = {s.name: s for s in self.noise.shape}
        unknown = sorted(set(shape) - set(known))
        if unknown:
            accepted = ", ".join(known) or "none"
            raise ValueError(f"unknown shape parameter {unknown[0]!r} for certificate {self.name!r}; accepted: {accepted}")
        return {name: spec.check(shape.get(name, spec.default), self.name) for name, spec in known.items()}

    def _scale(self, sigma, scale, dim: int, shape: dict) -> mp.mpf:
        if sigma is not None and scale is not None:
            raise ValueError("pass either sigma or scale, not both")
        if scale is not None:
            value = _to_mpf("scale", scale)
            if not (value > 0 and mp.isfinite(value)):
                raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
            return value
        value = _to_mpf("sigma", 1 if sigma is None else sigma)
        if not (value > 0 and mp.isfinite(value)):
            raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
        ratio = self.noise.sigma_per_scale(dim, **shape)
        if ratio is None:
            params = ", ".join(f"{k}={mp.nstr(v, 6)}" for k, v in shape.items())
            raise ValueError(
                f"sigma is undefined for {self.noise.family} noise with {params} (no finite variance); "
                f"pass scale ({self.noise.scale}) instead")
        return value / ratio

    def scale_for(self, sigma=1.0, *, dim=1, precision=50, **shape) -> mp.mpf:
        """The paper's scale parameter for a per-coordinate standard deviation sigma."""
        d = self._dim(dim)
        with mp.workdps(precision):
            return +self._scale(sigma, None, d, self._shape(shape))

    def _probabilities(self, p_a, p_b):
        """(p_a, p_b) as mpf at the working precision, validated; p_b filled for binary use."""
        pa = _to_mpf("p_a", p_a)
        if not 0 < pa <= 1:
            raise ValueError(f"p_a must lie in (0, 1], got {p_a!r}")
        if self.domain == "binary" or p_b is None:
            if not pa > 0.5:
                raise ValueError(f"p_a must lie in (1/2, 1] (binary: p_b = 1 - p_a), got {p_a!r}")
            if p_b is not None and _to_mpf("p_b", p_b) != 1 - pa:
                raise ValueError(
                    f"p_b must be omitted or equal 1 - p_a: certificate {self.name!r} is binary, got p_b={p_b!r}")
            return pa, 1 - pa
        pb = _to_mpf("p_b", p_b)
        if not 0 <= pb <= 1:
            raise ValueError(f"p_b must lie in [0, 1], got {p_b!r}")
        if pa + pb > 1 + mp.mpf(2) ** -50:
            raise ValueError(f"p_a + p_b must be <= 1, got p_a={p_a!r}, p_b={p_b!r}")
        if not pb < pa:
            raise ValueError(f"p_b must be smaller than p_a (no positive radius otherwise), got p_a={p_a!r}, p_b={p_b!r}")
        return pa, min(pb, 1 - pa)  # float inputs such as (0.9, 0.1) may exceed 1 by an ulp

    # -- evaluation ------------------------------------------------------------------------

    def radius(self, p_a, p_b=None, *, sigma=None, scale=None, dim=1, norm=None, precision=50, **shape) -> mp.mpf:
        """Certified radius as an mpf with ``precision`` significant digits (+inf where it diverges).

        ``p_a``/``p_b`` may be floats, mpf or decimal strings; ``p_b=None`` means binary (1 - p_a).
        Give ``sigma`` (per-coordinate std, default 1) or the paper's ``scale``, not both.
        """
        if isinstance(precision, bool) or not isinstance(precision, numbers.Integral) or precision < _MIN_PRECISION:
            raise ValueError(f"precision must be an integer >= {_MIN_PRECISION} (decimal digits), got {precision!r}")
        p = self._norm(norm)
        d = self._dim(dim)
        with mp.workdps(int(precision) + _GUARD_DIGITS):
            pa, pb = self._probabilities(p_a, p_b)
            shp = self._shape(shape)
            lam = self._scale(sigma, scale, d, shp)
            extra = 0
            for small in (pa - pb, pb):
                if 0 < small < 1:
                    extra += int(-mp.log10(small)) + 1
            extra = min(extra, _MAX_EXTRA_DIGITS)
        with mp.workdps(int(precision) + _GUARD_DIGITS + extra):
            if self.mpmath_fn:
                value = self.radius_fn(p_a=pa, p_b=pb, scale=lam, dim=d, norm=p, **shp)
            else:
                value = self.radius_fn(p_a=float(pa), p_b=float(pb), scale=float(lam), dim=d, norm=p,
                                       **{k: float(v) for k, v in shp.items()})
            value = _to_mpf(f"radius of {self.name!r}", value)
        if value < 0:
            raise ValueError(f"radius of {self.name!r} is negative ({mp.nstr(value, 8)}) at p_a={p_a!r}, p_b={p_b!r}")
        with mp.workdps(int(precision)):
            return +value

    def radius_float(self, p_a, p_b=None, *, sigma=None, scale=None, dim=1, norm=None, precision=30, **shape) -> float:
        """The radius as a float64, rounded from a ``precision``-digit evaluation.

        Raises OverflowError where the radius is infinite (p_A = 1 for unbounded formulas) or beyond
        float64 range; never returns inf or nan.
        """
        value = self.radius(p_a, p_b, sigma=sigma, scale=scale, dim=dim, norm=norm, precision=precision, **shape)
        if mp.isinf(value):
            raise OverflowError(f"radius of {self.name!r} is infinite at p_a={p_a!r}, p_b={p_b!r} (p_A = 1 is unbounded)")
        out = float(value)
        if math.isinf(out):
            raise OverflowError(f"radius of {self.name!r} exceeds the float64 range at p_a={p_a!r}, p_b={p_b!r}")
        return out

    def radius_curve(self, p_a, p_b=None, *, sigma=None, scale=None, dim=1, norm=None, precision=30, **shape) -> np.ndarray:
        """``radius_float`` over an array of p_a (p_b None, a scalar or an array broadcast with p_a)."""
        pa = np.asarray(p_a, dtype=float)
        pb = None if p_b is None else np.broadcast_to(np.asarray(p_b, dtype=float), pa.shape)
        out = np.empty(pa.shape, dtype=float)
        for idx in np.ndindex(pa.shape):
            out[idx] = self.radius_float(float(pa[idx]), None if pb is None else float(pb[idx]), sigma=sigma,
                                         scale=scale, dim=dim, norm=norm, precision=precision, **shape)
        return out

    def describe(self) -> str:
        """One line for reports: name, noise, norms, claim, domain, source."""
        norms = ", ".join(norm_label(p) for p in self.norms)
        return (f"{self.name}: {self.noise.family} noise, {norms}, {self.claim}, {self.domain} "
                f"[{self.reference.cite()}]")


# -- the short form --------------------------------------------------------------------------------

_DEFINE_ARGS = ("p_a", "p_b", "sigma", "scale", "dim", "norm")


def _unpublished(name: str) -> Reference:
    return Reference(authors="unpublished", title=f"{name} (defined with certificates.define)", venue="", year=0,
                     bibtex=f"@misc{{{name},\n  title = {{{name}}},\n  note  = {{unpublished certificate}}\n}}")


def define(name: str, noise: str, norm, radius: Callable[..., float], claim: str = "sound", *,
           reference: Reference | None = None, domain: str = "binary", notes: str = "",
           shape: Mapping | None = None, min_dim: int = 1) -> Certificate:
    """A certificate from a plain float function of the per-coordinate sigma: the short form of
    :class:`Certificate` for the common case.

    ``radius`` is called with keyword arguments: those of ``p_a``, ``p_b``, ``sigma``, ``dim``,
    ``norm`` and the ``shape`` parameters that it names, as Python floats (``dim`` an int, ``norm``
    the l_p order, ``inf`` for l_inf; ``p_b = 1 - p_a`` in the binary domain). It must name ``p_a``
    and ``sigma``; it must name ``p_b`` if ``domain="general"`` and ``norm`` if ``norm`` lists
    several norms. It returns the radius in input units (``float("inf")`` where it diverges).
    For a family without a variance name ``scale`` instead of ``sigma``: the noise's own scale
    (``unicr.noise(noise, scale=...)``), and the certificate is then evaluated with ``scale=`` only.

    ``noise``: a unicr noise name (built-in or registered with ``unicr.register_noise``); ``norm``:
    one l_p order (1, 2, "inf") or a tuple of them; ``claim``: "tight", "sound" (default) or
    "approximate"; ``reference`` defaults to one that says "unpublished"; ``shape``: the noise's
    shape parameters and their default values (e.g. ``{"beta": 1.5}``), passed to the noise and,
    where it names them, to ``radius``.

    Guarantee: the result is an ordinary :class:`Certificate` whose :class:`NoiseMap` says that
    the formula's scale *is* sigma (``sigma_per_scale = 1``), so every input is validated as for a
    catalog entry, ``radius_float``/``radius_curve`` never return nan or a negative radius, and the
    audit (``python -m unicr.audit --certificate file.py:NAME``) evaluates ``radius`` at exactly the
    sigma of the noise it samples (and checks that the noise's own sigma agrees). Nothing about the
    formula itself is assumed: whether the claim holds is what the audit measures.

    >>> from statistics import NormalDist
    >>> half = define("half-cohen", "gaussian", 2, lambda p_a, sigma: 0.5 * sigma * NormalDist().inv_cdf(p_a))
    >>> round(half.radius_float(0.9, sigma=2.0), 6), half.reference.cite(), half.claim
    (1.281552, 'unpublished', 'sound')
    """
    import inspect

    if not callable(radius):
        raise ValueError(f"radius must be a callable (p_a, sigma, ...) -> float, got {type(radius).__name__}")
    specs = []
    for key, value in dict(shape or {}).items():
        specs.append(value if isinstance(value, ShapeParam) else
                     ShapeParam(str(key), float(_to_mpf(str(key), value)), -math.inf))
    shape_names = tuple(s.name for s in specs)
    clash = sorted(set(shape_names) & set(_DEFINE_ARGS))
    if clash:
        raise ValueError(f"shape parameter {clash[0]!r} clashes with an argument of radius")
    try:
        params = inspect.signature(radius).parameters
    except (TypeError, ValueError):
        raise ValueError("radius must be a Python callable with an inspectable signature") from None
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params.values()) or any(
            p.kind is p.POSITIONAL_ONLY for p in params.values()):
        raise ValueError("radius must take its arguments by name (p_a, sigma, ...), not *args or positional-only")
    accepted = set(_DEFINE_ARGS) | set(shape_names)
    unknown = [n for n, p in params.items() if p.kind is not p.VAR_KEYWORD and n not in accepted
               and p.default is p.empty]
    if unknown:
        raise ValueError(f"radius of {name!r} takes an unknown argument {unknown[0]!r}; it may name "
                         f"{', '.join(_DEFINE_ARGS + shape_names)}")
    wanted = set(accepted) - {"scale"} if var_kw else set(params) & accepted
    if "sigma" in wanted and "scale" in wanted:
        raise ValueError(f"radius of {name!r} must name sigma or scale, not both")
    if "p_a" not in wanted or not ({"sigma", "scale"} & wanted):
        raise ValueError(f"radius of {name!r} must take p_a and sigma (or scale, for a noise without a variance)")
    norms = (norm,) if isinstance(norm, (str, numbers.Real)) else tuple(norm)
    if len(norms) > 1 and "norm" not in wanted:
        raise ValueError(f"radius of {name!r} covers several norms and must take a 'norm' argument")
    if domain == "general" and "p_b" not in wanted:
        raise ValueError(f"radius of {name!r} is for the general domain and must take a 'p_b' argument")
    key = "sigma" if "sigma" in wanted else "scale"
    if key == "sigma":
        noise_map = NoiseMap(family=noise, scale="sigma", relation="sigma = sigma (the formula takes sigma)",
                             shape=tuple(specs))
    else:
        noise_map = NoiseMap(family=noise, scale="scale", sigma_per_scale=lambda dim, **shp: None,
                             relation="scale = the noise's own scale (the formula takes scale; no sigma)",
                             shape=tuple(specs))

    def radius_fn(p_a, p_b, scale, dim, norm, **shp):
        values = {"p_a": p_a, "p_b": p_b, key: scale, "dim": dim, "norm": norm, **shp}
        return radius(**{k: v for k, v in values.items() if k in wanted})

    radius_fn.__doc__ = getattr(radius, "__doc__", None)
    return Certificate(name=name, reference=_unpublished(name) if reference is None else reference,
                       noise=noise_map, norms=norms, claim=claim, domain=domain, radius_fn=radius_fn,
                       notes=notes, min_dim=min_dim, mpmath_fn=False)
