"""Certification with a smoothed classifier: Cohen et al.'s PREDICT and CERTIFY for any unicr noise
and any l_p norm.

g(x) = argmax_c P(f(x + eps) = c), eps ~ the noise. :func:`predict` returns g's class at x or
abstains; :func:`certify` returns it with a radius of the ball around x on which g is constant
(Cohen, Rosenfeld, Kolter, ICML 2019, Algorithm "CERTIFY"; locuslab/smoothing ``code/core.py``).

Where the radius comes from (``Certification.basis``):

* ``"tight"`` / ``"sound"``: a catalog certificate (``certificates.catalog()``) for this noise
  family, its shape parameters and this norm, with claim tight or sound; the radius is the largest
  such one at (p_A_lower[, p_B_upper]) and ``certificate`` names it. A proof, with probability at
  least 1 - alpha over the draws.
* ``"approximate"``: no certificate applies, and the radius is the UniCR engine's numerical worst
  case R_U (the lower end of its band): an *upper* bound on the tight radius up to estimation and
  the direction search, **not a certificate** (Hong, Wang, Hong, ECCV 2022, say so too). Never
  present it as one.

Draws: the n0 selection draws and the n estimation draws come from the named streams ``select``
and ``estimate`` of ``seed`` (:mod:`unicr.streams`), PREDICT's from ``predict``; each stream is
cut into chunks of CHUNK_ELEMENTS coordinates, one generator per chunk, so the result does not
depend on ``batch_size``. Same seed, same device, same bytes. Noise is drawn in float64 (the
samplers' validated precision), added to x and cast to x's dtype.

Speed: the catalog radius is a cached mpmath evaluation (microseconds for a repeated count, under
1 ms otherwise for the closed forms of Cohen and Teng). The engine's binary curve is computed once
per (noise, norm, device) on CURVE_Z's grid (about 1 s at d = 4, 3 s for logistic l1 and 30 s for
Laplace l2 at d = 3072, on one CPU thread) and kept for CACHE_SIZE (noise, norm) pairs; each
look-up is a ``np.searchsorted``, a few microseconds.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import stats

from .errors import check_norm
from .noises import Noise, is_builtin, noise as make_noise, noise_factory
from .streams import generator

__all__ = ["predict", "certify", "certify_norms", "Certification", "cp_lower", "catalog_certificates",
           "largest_catalog_radius", "radius_at", "engine_radius", "P_B_MODES", "BASES"]

P_B_MODES = ("binary", "bonferroni")
BASES = ("tight", "sound", "approximate")
#: coordinates drawn per generator (one chunk of a stream): at most 32 MiB of float64 noise
CHUNK_ELEMENTS = 1 << 22
#: the engine curve's p_A grid: Phi(z) for z geometric in [CURVE_Z[0], CURVE_Z[1]] (CURVE_Z[2]
#: points, 0.76% apart), i.e. from 1/2 + 8e-4 to 1 - 1e-6, plus p_A = 1/2 with radius 0
CURVE_Z = (2e-3, float(stats.norm.isf(1e-6)), 1024)
#: (noise, norm) curves kept per process
CACHE_SIZE = 16


# -- input checks: one ValueError naming the argument and its allowed range ----------------------

def _integer(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)) \
            or not math.isfinite(float(value)) or not float(value).is_integer() or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _alpha(value) -> float:
    try:
        alpha = float(value)
    except (TypeError, ValueError):
        alpha = math.nan
    if isinstance(value, bool) or not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in the open interval (0, 1), got {value!r}")
    return alpha


def _noise(value) -> Noise:
    if isinstance(value, str):
        raise ValueError(f"noise must be a unicr.Noise with the input's dimension, e.g. "
                         f"unicr.noise({value!r}, sigma=0.25, dim=x.numel()), got the name {value!r}")
    return make_noise(value)   # a Noise as it is; a torch Distribution wrapped (or a ValueError)


def _input(x, noise: Noise, device) -> tuple[torch.Tensor, torch.device]:
    if device is None:
        device = x.device if isinstance(x, torch.Tensor) else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must name a torch device (e.g. 'cpu', 'cuda') or be None, got {device!r}") from None
    try:
        x = torch.as_tensor(x, device=device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"x must be one input as a tensor or array of {noise.dim} numbers (any shape), "
                         f"got {type(x).__name__}: {exc}") from None
    if x.is_complex():
        raise ValueError(f"x must hold real numbers, got dtype {x.dtype}")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    if x.numel() != noise.dim:
        raise ValueError(f"x must have exactly noise.dim = {noise.dim} elements (one input, any shape, no "
                         f"batch dimension), got shape {tuple(x.shape)} with {x.numel()} elements")
    return x, device


@dataclass(frozen=True, eq=False)
class _Sampler:
    """The noisy copies of one input and the model's votes on them: everything that shapes the
    draws (model, x, noise, batch size, seed, device), validated once."""

    model: object
    x: torch.Tensor
    noise: Noise
    batch_size: int
    seed: int
    device: torch.device

    @classmethod
    def build(cls, model, x, noise, batch_size, seed, device) -> "_Sampler":
        if not callable(model):
            raise ValueError(f"model must be callable on a batch (B, *x.shape) -> labels (B,) or logits (B, C), "
                             f"got {type(model).__name__}")
        noise = _noise(noise)
        x, device = _input(x, noise, device)
        return cls(model, x, noise, _integer("batch_size", batch_size, 1), _integer("seed", seed, 0), device)

    def _noise_batches(self, n: int, purpose: str):
        """n draws of the noise in batches of batch_size; the draws come in chunks of the stream
        (one generator each) whose sizes depend on n and the dimension only."""
        chunk = max(1, CHUNK_ELEMENTS // self.noise.dim)
        pieces, have = [], 0
        for index, start in enumerate(range(0, n, chunk)):
            m = min(chunk, n - start)
            pieces.append(self.noise.sample(m, generator=generator(self.seed, purpose, index, self.device),
                                            device=self.device, dtype=torch.float64))
            have += m
            last = start + m >= n
            while have >= self.batch_size or (last and have > 0):
                pending = torch.cat(pieces) if len(pieces) > 1 else pieces[0]   # one copy per batch
                take = min(self.batch_size, have)
                yield pending[:take]
                pieces, have = ([pending[take:]] if have > take else []), have - take

    def votes(self, n: int, purpose: str) -> np.ndarray:
        """How often the model returns each class on n noisy copies of x (int64, indexed by class)."""
        x = self.x.reshape(1, -1).to(torch.float64)
        counts = torch.zeros(0, dtype=torch.int64, device=self.device)
        with torch.no_grad():
            for eps in self._noise_batches(n, purpose):
                batch = (x + eps).to(self.x.dtype).reshape(eps.shape[0], *self.x.shape)
                labels = _labels(self.model(batch), eps.shape[0], self.device)
                try:
                    found = torch.bincount(labels, minlength=counts.numel())
                except RuntimeError:
                    raise ValueError("model must return non-negative class labels (B,), or logits (B, C)") from None
                if found.numel() > counts.numel():
                    counts = torch.nn.functional.pad(counts, (0, found.numel() - counts.numel()))
                counts += found
        return counts.cpu().numpy()


def _labels(out, batch: int, device: torch.device) -> torch.Tensor:
    """The model's output as class labels: (B,) integers as they are, (B, C) logits by argmax."""
    expected = f"labels of shape ({batch},) or logits of shape ({batch}, C)"
    try:
        out = torch.as_tensor(out)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"model must return a tensor or array: {expected}, got {type(out).__name__}") from None
    if out.ndim == 2 and out.shape[0] == batch and out.shape[1] >= 1:
        if out.is_complex():
            raise ValueError(f"model must return real logits, got dtype {out.dtype}")
        return out.argmax(1).to(device)
    if out.ndim == 1 and out.shape[0] == batch:
        if out.is_floating_point() or out.is_complex():
            raise ValueError(f"model must return {expected}; got floating values of shape ({batch},): labels "
                             "must be integers (return the logits (B, C) of a score instead)")
        return out.to(device=device, dtype=torch.int64)
    raise ValueError(f"model must map a batch of {batch} inputs to {expected}, got shape {tuple(out.shape)}")


# -- Clopper-Pearson bounds (one-sided, as locuslab/smoothing) -----------------------------------

def cp_lower(k, n: int, alpha: float):
    """One-sided Clopper-Pearson lower bound at level 1 - alpha on a binomial proportion from k
    successes of n: the alpha quantile of Beta(k, n - k + 1), 0 at k = 0. Vectorised over k (an
    array in, an array out; an int in, a float out)."""
    k = np.asarray(k, dtype=np.int64)
    bound = np.where(k == 0, 0.0, stats.beta.ppf(alpha, np.maximum(k, 1), n - k + 1))
    return float(bound) if bound.ndim == 0 else bound


def _cp_upper(k: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson upper bound at level 1 - alpha."""
    return 1.0 if k == n else float(stats.beta.isf(alpha, k + 1, n - k))


# -- the result ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Certification:
    """What :func:`certify` found at one input.

    ``prediction``: the class, or None (abstain: then ``radius`` is 0 and ``basis`` and
    ``certificate`` are None). ``radius``: in the l_``norm`` norm, input units. ``p_a_lower``,
    ``p_b_upper``: the confidence bounds behind it (binary: p_b_upper = 1 - p_a_lower).
    ``counts``: votes per class on the n estimation draws. ``basis``: "tight" or "sound" (a
    catalog certificate, named by ``certificate``: a proof at confidence 1 - alpha) or
    "approximate" (the engine's R_U: **not** a certificate).
    """

    prediction: int | None
    radius: float
    p_a_lower: float
    p_b_upper: float
    counts: tuple[int, ...]
    basis: str | None
    certificate: str | None
    norm: float

    @property
    def proven(self) -> bool:
        """Whether the radius rests on a tight or sound certificate (not on the engine alone)."""
        return self.basis in ("tight", "sound")


# -- radii: the catalog, else the engine ---------------------------------------------------------

_LOCK = threading.Lock()
_CACHE: "OrderedDict[tuple, object]" = OrderedDict()    # engine curves
_MATCHES: "OrderedDict[tuple, object]" = OrderedDict()  # the catalog certificates that apply
_PAIRS: "OrderedDict[tuple, object]" = OrderedDict()    # engine radii at general (p_A, p_B) pairs


def _cached(key: tuple, build, cache: OrderedDict = _CACHE, size: int = CACHE_SIZE):
    """``build()``, kept in an LRU of ``size`` entries under ``key``."""
    with _LOCK:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = build()
    with _LOCK:
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)
    return value


def _noise_key(noise: Noise) -> tuple:
    if is_builtin(noise):
        return (type(noise), noise.dim, tuple(sorted(noise.params.items())))
    return ("object", id(noise), noise)   # any other noise by identity (kept alive by the key)


_NOT_SHAPE = {"sigma", "scale"}


def catalog_certificates(noise: Noise, p: float, general: bool) -> tuple:
    """The catalog certificates that apply, as (certificate, evaluation keywords): the noise's
    built-in family, its shape parameters (all of them known to the certificate and in its range),
    the norm, claim tight or sound, and the domain (general only, for p_b="bonferroni"); tight
    ones first."""
    if not is_builtin(noise):
        return ()
    import certificates

    shape = {k: v for k, v in noise.params.items() if k not in _NOT_SHAPE}
    found = []
    for cert in certificates.catalog():
        if cert.noise.family != noise.name or cert.claim not in ("tight", "sound") or not cert.covers(p) \
                or (general and cert.domain != "general") or noise.dim < cert.min_dim \
                or set(shape) != {s.name for s in cert.noise.shape} \
                or noise_factory(cert.noise.family) is not type(noise):
            continue
        try:
            for spec in cert.noise.shape:
                spec.check(shape[spec.name], cert.name)
        except ValueError:   # a shape outside the range the formula is proven for
            continue
        if noise.sigma is not None:
            kwargs = {"sigma": float(noise.sigma)}
            own = noise.sigma if cert.noise.scale == "sigma" else noise.scale
            mapped = float(cert.scale_for(noise.sigma, dim=noise.dim, **shape))
            if own is not None and not math.isclose(mapped, float(own), rel_tol=1e-9):
                raise RuntimeError(f"certificate {cert.name!r} maps sigma={noise.sigma} to scale {mapped}, "
                                   f"the noise {noise.describe()} has {own}: the catalog is inconsistent")
        elif noise.scale is not None:
            kwargs = {"scale": float(noise.scale)}
        else:
            continue
        found.append((cert, tuple(sorted({**kwargs, **shape, "dim": noise.dim, "norm": p}.items()))))
    found.sort(key=lambda item: item[0].claim != "tight")
    return tuple(found)


@lru_cache(maxsize=4096)
def _catalog_value(cert, kwargs: tuple, p_a: float, p_b: float | None) -> float:
    return cert.radius_float(p_a, p_b, **dict(kwargs))


def largest_catalog_radius(entries: tuple, p_a: float, p_b: float | None):
    """(radius, basis, name) of the largest catalog radius, or None where every formula refuses
    the input. A tight radius is the largest any sound certificate can give, so where a tight one
    applies the sound ones are not evaluated."""
    best = None
    for cert, kwargs in entries:
        if best is not None and best[1] == "tight" and cert.claim != "tight":
            break
        try:
            value = _catalog_value(cert, kwargs, p_a, p_b)
        except (ValueError, OverflowError):   # outside the formula's domain at this point
            continue
        if best is None or value > best[0]:
            best = (value, cert.claim, cert.name)
    return best


@dataclass(frozen=True)
class _Curve:
    """The engine's binary p_A -> R curve on a grid, looked up conservatively."""

    p_a: np.ndarray
    radius: np.ndarray

    def lookup(self, p_a_lower: float) -> float:
        """The radius at the largest grid p_A at or below p_a_lower (0 below the grid)."""
        i = int(np.searchsorted(self.p_a, p_a_lower, side="right")) - 1
        return float(self.radius[i]) if i >= 0 else 0.0


def _curve_grid() -> np.ndarray:
    return stats.norm.cdf(np.geomspace(*CURVE_Z))


def _engine_curve(noise: Noise, p: float, device) -> _Curve:
    """R_U over the grid, once per (noise, norm, device): the lower ends of the engine's bands,
    made non-decreasing by a running minimum from the top (which only lowers them)."""
    from .radius import EngineSettings, radius_curve

    grid = _curve_grid()
    df = radius_curve(noise, p, list(grid), settings=EngineSettings(device=device))
    lower = np.clip(np.nan_to_num(df["lower"].to_numpy(dtype=float), nan=0.0, posinf=0.0), 0.0, None)
    lower = np.minimum.accumulate(lower[::-1])[::-1]
    return _Curve(np.concatenate([[0.5], grid]), np.concatenate([[0.0], lower]))


def _device_key(device) -> str:
    return str(torch.device("cpu" if device is None else device))


def engine_radius(noise, norm, p_a_lower: float, p_b_upper: float | None = None, *, device=None) -> float:
    """The engine's radius as :func:`certify` reports it with basis "approximate": the lower end of
    the band of R_U (:func:`unicr.certified_radius`, default settings) at the largest p_A of a fine
    grid at or below ``p_a_lower`` (binary; the curve is computed once per noise and norm and
    cached, each look-up then takes microseconds), or at the pair (p_a_lower, p_b_upper) itself
    (general: one engine run per pair, cached; about 0.2-2 s each at d <= 3072). **Not a
    certificate**: R_U is an upper bound on the tight radius up to estimation and the direction
    search."""
    noise = _noise(noise)
    p = check_norm(norm)
    key = _device_key(device)
    if p_b_upper is None:
        curve = _cached(("curve", _noise_key(noise), p, key), lambda: _engine_curve(noise, p, key))
        return curve.lookup(float(p_a_lower))
    from .radius import EngineSettings, certified_radius

    p_a, p_b = float(p_a_lower), float(p_b_upper)
    run = lambda: max(0.0, float(certified_radius(noise, p_a, p, p_b=p_b, settings=EngineSettings(device=key)).lower))
    return _cached(("pair", _noise_key(noise), p, p_a, p_b, key), run, _PAIRS, 1024)


# -- PREDICT and CERTIFY ---------------------------------------------------------------------

def predict(model, x, noise, *, n=1000, alpha=0.001, batch_size=1000, seed=0, device=None):
    """Cohen et al.'s PREDICT: g's class at ``x``, or None (abstain).

    ``model``: any callable from a batch (B, *x.shape) to labels (B,) or logits (B, C) (a torch
    module in eval mode, or a plain function); ``x``: one input, of ``noise.dim`` elements in any
    shape; ``noise``: a :class:`unicr.Noise`, drawn over the flattened input. The n noisy copies
    are classified in batches of ``batch_size`` on ``device`` (default: x's), drawn from the
    ``predict`` stream of ``seed``. The top two counts go to a two-sided binomial test
    (``scipy.stats.binomtest``); the class is returned if its p-value is at most ``alpha``.

    Guarantee: the returned class differs from g(x) with probability at most ``alpha`` over the
    draws (abstaining is never wrong).
    """
    sampler = _Sampler.build(model, x, noise, batch_size, seed, device)
    n, alpha = _integer("n", n, 1), _alpha(alpha)
    counts = sampler.votes(n, "predict")
    order = np.argsort(-counts, kind="stable")
    top = int(counts[order[0]])
    second = int(counts[order[1]]) if counts.size > 1 else 0
    if stats.binomtest(top, top + second, 0.5).pvalue > alpha:
        return None
    return int(order[0])


def certify(model, x, noise, norm, *, n0=100, n=100_000, alpha=0.001, batch_size=1000, seed=0, device=None,
            p_b="binary") -> Certification:
    """Cohen et al.'s CERTIFY for any noise and l_p ``norm``: g's class at ``x`` and a radius.

    n0 draws (stream ``select``) choose the top class A; n fresh draws (stream ``estimate``) give
    its count and the one-sided Clopper-Pearson lower bound p_A_lower at level 1 - alpha
    (``scipy.stats.beta``). ``p_b="binary"`` uses p_B = 1 - p_A_lower; ``p_b="bonferroni"`` splits
    alpha in two and also bounds the runner-up: p_B_upper is the Clopper-Pearson upper bound of the
    largest count among the other classes (at least that of the unknown most likely other class,
    so it bounds every other class), and the general (p_A, p_B) radius is used. It abstains unless
    p_A_lower > p_B_upper. ``model``, ``x``, ``noise``, ``batch_size``, ``seed``, ``device``: as
    for :func:`predict`.

    The radius (``basis``): the largest catalog certificate with claim tight or sound for this
    noise family, shape and norm ("tight"/"sound", named by ``certificate``), evaluated with the
    noise's sigma (or scale) and dim = x.numel(); else the UniCR engine's R_U ("approximate":
    binary radii from a p_A grid computed once per noise and norm, looked up at the largest grid
    point at or below p_A_lower; general pairs computed one by one, slower).

    Guarantee (basis tight or sound): with probability at least 1 - alpha over the draws, if the
    prediction is not None, g predicts it at x and g is constant on the open l_p ball of the
    returned radius around x. Basis "approximate": the prediction keeps that guarantee, but the radius is
    the engine's numerical worst case R_U, an upper bound on the tight radius up to estimation:
    **not a certificate** (as Hong et al., ECCV 2022, say of UniCR).
    """
    return certify_norms(model, x, noise, (norm,), n0=n0, n=n, alpha=alpha, batch_size=batch_size, seed=seed,
                         device=device, p_b=p_b)[0]


def certify_norms(model, x, noise, norms, *, n0=100, n=100_000, alpha=0.001, batch_size=1000, seed=0,
                  device=None, p_b="binary") -> tuple[Certification, ...]:
    """:func:`certify` in each l_p norm of ``norms``, from one set of draws: the votes and the
    confidence bounds do not depend on the norm, only the radius does. Element i equals
    ``certify(model, x, noise, norms[i], ...)`` with the same arguments. The guarantee of each
    holds as stated for :func:`certify` (jointly: all come from the same event of probability at
    least 1 - alpha)."""
    ps = [check_norm(norm) for norm in norms]
    if not ps:
        raise ValueError("norms must name at least one l_p norm, got none")
    if p_b not in P_B_MODES:
        raise ValueError(f"p_b must be one of {', '.join(map(repr, P_B_MODES))}, got {p_b!r}")
    n0, n, alpha = _integer("n0", n0, 1), _integer("n", n, 1), _alpha(alpha)
    sampler = _Sampler.build(model, x, noise, batch_size, seed, device)
    selection = sampler.votes(n0, "select")
    top = int(np.argmax(selection))
    counts = sampler.votes(n, "estimate")
    count = lambda c: int(counts[c]) if c < counts.size else 0
    general = p_b == "bonferroni"
    if general:
        p_a_lower = cp_lower(count(top), n, alpha / 2)
        runner_up = max((count(c) for c in range(counts.size) if c != top), default=0)
        p_b_upper = min(_cp_upper(runner_up, n, alpha / 2), 1.0 - p_a_lower)
    else:
        p_a_lower = cp_lower(count(top), n, alpha)
        p_b_upper = 1.0 - p_a_lower
    result = dict(p_a_lower=p_a_lower, p_b_upper=p_b_upper, counts=tuple(int(c) for c in counts))
    if not p_a_lower > p_b_upper:
        return tuple(Certification(prediction=None, radius=0.0, basis=None, certificate=None, norm=p, **result)
                     for p in ps)
    found = []
    for p in ps:
        radius, basis, name = radius_at(sampler.noise, p, p_a_lower, p_b_upper if general else None, sampler.device)
        found.append(Certification(prediction=top, radius=radius, basis=basis, certificate=name, norm=p, **result))
    return tuple(found)


def radius_at(noise: Noise, p: float, p_a: float, p_b: float | None, device):
    """The radius :func:`certify` reports at ``p_a`` (p_A_lower) and ``p_b`` (p_B_upper; None:
    binary) in the l_``p`` norm, as (radius, basis, certificate name or None): the largest tight or
    sound catalog certificate for the noise (basis its claim), else the engine's R_U from the cached
    curve (binary) or one engine run (general), basis "approximate": not a certificate."""
    entries = _cached(("catalog", _noise_key(noise), p, p_b is not None),
                      lambda: catalog_certificates(noise, p, p_b is not None), _MATCHES, 64)
    best = largest_catalog_radius(entries, p_a, p_b) if entries else None
    if best is not None:
        return best
    return engine_radius(noise, p, p_a, p_b, device=device), "approximate", None
