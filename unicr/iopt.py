"""I-OPT: per input, hill-climb the general-normal noise around the training noise for a larger
radius at x, keeping x's class (Hong, Wang, Hong, ECCV 2022, Sections 4.2 and 5.4).

**Not a certificate.** The noise is chosen for x, so the smoothed classifier changes with x: a
neighbour x' would be smoothed with another noise, and the radius at x says nothing about g at x'
(Súkeník, Kuvshinov, Günnemann, ICML 2022, "Intriguing properties of input-dependent randomized
smoothing"). :class:`InputOptimized` says so: ``is_certificate`` is False, ``warning`` and ``str()``
carry :data:`NOT_A_CERTIFICATE`.

The climb (:func:`optimize_noise`): noises general-normal(beta, sigma) on the lattice
beta = beta0 + i beta_step, sigma = sigma0 (1 + sigma_step)^u (1 - sigma_step)^v (i integer,
u, v >= 0) around the training noise (beta0, sigma0), within beta_range and
sigma / sigma0 in sigma_range. From (i, u, v) the neighbours are (i + 1, u, v), (i - 1, u, v),
(i, u + 1, v), (i, u, v + 1) (beta +- beta_step, sigma (1 +- sigma_step)), tried in that order.
A neighbour counts only if its prediction is the start noise's (it neither abstains nor changes
the class: the paper's "maintaining the certified accuracy"); the climb moves to the counting
neighbour of largest radius (the first one on ties) if that radius is strictly larger than the
current one, and stops when none is, or after ``steps`` moves.

Draws (``IOptSettings.selection``):

* ``"same"`` (the paper's procedure): each candidate is certified as :func:`unicr.certify` does
  (n0 ``select`` and n ``estimate`` draws of ``seed``) and the best one is reported on those same
  draws. Choosing the largest of several radii on shared data voids even p_A_lower's level: it
  holds at 1 - alpha for a noise fixed in advance, here at 1 - K alpha (union bound over the K
  lattice points within ``steps`` moves of the start).
* ``"separate"``: candidates are scored on n_tune draws of the ``tune`` stream (p_A_lower of the
  start's class at level 1 - alpha; the class counts if that bound exceeds 1/2); the chosen noise
  is then certified once as :func:`unicr.certify` does, on the ``select`` and ``estimate`` draws,
  which the choice never saw. It reports the start's class or abstains. p_A_lower holds at
  1 - alpha for x and the chosen noise; the radius may be smaller than the start's.

Either way the radius is the one a fixed noise would certify at x, not a certificate. It would be
one if the noise were fixed for a whole region containing the ball, chosen without the estimation
draws (e.g. on separate draws, once per precomputed partition cell or per data set: C-OPT), or
with Súkeník et al.'s bounds for input-dependent smoothing, which need a Lipschitz sigma(x).

Radii: general-normal is a scale family (the noise at sigma is sigma / sigma0 times the noise at
sigma0), so R_sigma(p) = (sigma / sigma0) R_sigma0(p) in every l_p norm. :mod:`unicr.certification`
caches engine curves by the full parameters (sigma included) and does not use this; here each
beta gets one radius function at sigma0 (the catalog certificate that applies, else the engine
curve, as :func:`unicr.certify` chooses), and every sigma scales it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .certification import Certification, _alpha, cp_lower, _integer, radius_at, _Sampler, certify
from .errors import check_norm
from .noises import GeneralNormal, Noise, noise as make_noise

__all__ = ["optimize_noise", "IOptSettings", "IOptStep", "InputOptimized", "SELECTIONS", "NOT_A_CERTIFICATE"]

SELECTIONS = ("same", "separate")
NOT_A_CERTIFICATE = ("input-dependent noise: this radius is not a certificate for the neighbourhood of x "
                     "(Súkeník, Kuvshinov, Günnemann, ICML 2022: 'Intriguing properties of input-dependent "
                     "randomized smoothing'); the smoothed classifier changes with x")


def _positive(name: str, value, upper: float = math.inf) -> float:
    """``value`` as a float in the open interval (0, upper)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 < number < upper:
        allowed = f"0 < {name} < inf" if upper == math.inf else f"the open interval (0, {upper:g})"
        raise ValueError(f"{name} must lie in {allowed}, got {value!r}")
    return number


def _range(name: str, value, contains_one: bool) -> tuple[float, float]:
    """A pair (low, high) with 0 < low <= high < inf (and low <= 1 <= high where ``contains_one``)."""
    allowed = "0 < low <= 1 <= high < inf" if contains_one else "0 < low <= high < inf"
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (0.0 < low <= high < math.inf) or (contains_one and not low <= 1.0 <= high):
        raise ValueError(f"{name} must be a pair (low, high) with {allowed}, got {value!r}")
    return low, high


@dataclass(frozen=True)
class IOptSettings:
    """Settings of :func:`optimize_noise`, checked on construction (ValueError naming the field).

    ``steps``: at most this many moves (>= 0; 0 returns the start). ``beta_step`` (> 0) and
    ``sigma_step`` (in (0, 1)): the moves beta +- beta_step, sigma (1 +- sigma_step).
    ``beta_range``: the allowed beta, absolute, must contain the start's. ``sigma_range``: the
    allowed sigma / sigma0, low <= 1 <= high. ``n0``, ``n``, ``alpha``, ``batch_size``, ``seed``,
    ``device``: as for :func:`unicr.certify` (binary p_B = 1 - p_A_lower). ``selection``: "same"
    or "separate" (module docstring); ``n_tune``: the ``tune`` draws per candidate ("separate").
    """

    steps: int = 10
    beta_step: float = 0.25
    sigma_step: float = 0.1
    beta_range: tuple[float, float] = (1.0, 4.0)
    sigma_range: tuple[float, float] = (0.5, 2.0)
    n0: int = 100
    n: int = 100_000
    n_tune: int = 10_000
    alpha: float = 0.001
    batch_size: int = 1000
    seed: int = 0
    device: object = None
    selection: str = "same"

    def __post_init__(self):
        checked = {name: _integer(name, getattr(self, name), low) for name, low in
                   (("steps", 0), ("n0", 1), ("n", 1), ("n_tune", 1), ("batch_size", 1), ("seed", 0))}
        checked.update(alpha=_alpha(self.alpha), beta_step=_positive("beta_step", self.beta_step),
                       sigma_step=_positive("sigma_step", self.sigma_step, 1.0),
                       beta_range=_range("beta_range", self.beta_range, False),
                       sigma_range=_range("sigma_range", self.sigma_range, True))
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {', '.join(map(repr, SELECTIONS))}, got {self.selection!r}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class IOptStep:
    """One noise general-normal(beta, sigma) as evaluated at x: the class (None: abstain or not the
    start's), p_A_lower, the radius a fixed noise would have at x, the vote counts behind them,
    the radius formula's basis ("tight"/"sound": a catalog formula, named by ``formula``;
    "approximate": the engine's R_U) as :class:`unicr.Certification` reports it."""

    beta: float
    sigma: float
    prediction: int | None
    p_a_lower: float
    radius: float
    counts: tuple[int, ...]
    basis: str | None
    formula: str | None


@dataclass(frozen=True)
class InputOptimized:
    """What :func:`optimize_noise` found at one input. **Not a certificate** (``warning``).

    ``start``: :func:`unicr.certify` with the training noise (a certificate where its basis is
    tight or sound). ``chosen``: the chosen noise with its class, p_A_lower and radius, certified
    on the estimation draws. ``path``: the climb's points, start first, each as scored (on the
    ``tune`` draws for "separate"). ``evaluations``: noises evaluated (start included). ``beta``,
    ``sigma``, ``prediction``, ``radius``, ``p_a_lower``, ``basis``: the chosen noise's.
    """

    start: Certification
    chosen: IOptStep
    path: tuple[IOptStep, ...]
    evaluations: int
    selection: str
    norm: float
    dim: int

    is_certificate = False
    warning = NOT_A_CERTIFICATE

    beta = property(lambda self: self.chosen.beta)
    sigma = property(lambda self: self.chosen.sigma)
    prediction = property(lambda self: self.chosen.prediction)
    radius = property(lambda self: self.chosen.radius)
    p_a_lower = property(lambda self: self.chosen.p_a_lower)
    basis = property(lambda self: self.chosen.basis)

    @property
    def noise(self) -> Noise:
        """The chosen noise, general-normal(beta, sigma) over ``dim`` coordinates."""
        return make_noise("general-normal", sigma=self.sigma, dim=self.dim, beta=self.beta)

    @property
    def gain(self) -> float:
        """radius - start.radius (>= 0 for "same"; may be negative for "separate")."""
        return self.radius - self.start.radius

    @property
    def relative_gain(self) -> float:
        """gain / start.radius (inf for a positive gain from radius 0, 0 for none)."""
        if self.start.radius > 0:
            return self.gain / self.start.radius
        return math.inf if self.gain > 0 else 0.0

    def __str__(self) -> str:
        first = self.path[0]
        return "\n".join([
            f"I-OPT, NOT A CERTIFICATE: {self.warning}",
            f"  start  general-normal(beta={first.beta:g}, sigma={first.sigma:g}): class {self.start.prediction}, "
            f"radius {self.start.radius:.6g} ({self.start.basis})",
            f"  chosen general-normal(beta={self.beta:g}, sigma={self.sigma:g}): class {self.prediction}, "
            f"radius {self.radius:.6g} ({self.basis}), p_A_lower {self.p_a_lower:.6g}",
            f"  gain {self.gain:+.6g} ({100 * self.relative_gain:+.3g}%), l_{self.norm:g}, "
            f"selection={self.selection!r}, {len(self.path) - 1} moves, {self.evaluations} noises evaluated",
        ])


def _start(start, dim: int) -> GeneralNormal:
    """The training noise: a general-normal Noise, or ("general-normal", sigma, beta) over dim."""
    if isinstance(start, Noise):
        if type(start) is not GeneralNormal:
            raise ValueError(f"start must be a general-normal noise (a Gaussian is general-normal with beta=2: "
                             f"start=('general-normal', sigma, 2.0)), got {start.describe()}")
        return start
    try:
        name, sigma, beta = start
    except (TypeError, ValueError):
        name = None
    if name not in ("general-normal", "general_normal"):
        raise ValueError(f"start must be ('general-normal', sigma, beta) or a general-normal unicr.Noise, "
                         f"got {start!r}")
    return make_noise("general-normal", sigma=sigma, dim=dim, beta=beta)


def optimize_noise(model, x, norm, *, start, settings: IOptSettings | None = None) -> InputOptimized:
    """I-OPT at one input: hill-climb general-normal(beta, sigma) from the training noise ``start``
    for a larger l_``norm`` radius at ``x`` with x's class kept (module docstring: lattice, moves,
    acceptance, the two ``settings.selection`` modes). ``model``, ``x``: as for :func:`unicr.certify`;
    ``start``: ("general-normal", sigma, beta) or a general-normal :class:`unicr.Noise`;
    ``settings``: :class:`IOptSettings` (default: its defaults).

    Returns :class:`InputOptimized`. With ``steps=0`` the chosen noise is the start and, for
    "same", its numbers are :func:`unicr.certify`'s. **Not a certificate**: the radius at x of a noise
    chosen for x does not bound g on the ball (Súkeník et al., ICML 2022). What holds: the class is
    the start's (or, "separate", an abstention); for "separate", p_A_lower of the chosen noise at
    level 1 - alpha.
    """
    s = settings if settings is not None else IOptSettings()
    p = check_norm(norm)
    noise0 = _start(start, int(np.prod(np.shape(x))))
    beta0, sigma0 = float(noise0.beta), float(noise0.sigma)
    if not s.beta_range[0] <= beta0 <= s.beta_range[1]:
        raise ValueError(f"beta_range {s.beta_range} must contain the start's beta = {beta0:g}")
    first = certify(model, x, noise0, p, n0=s.n0, n=s.n, alpha=s.alpha, batch_size=s.batch_size, seed=s.seed,
                    device=s.device)
    references = {0: noise0}

    def evaluate(point: tuple[int, int, int], purpose: str) -> IOptStep:
        """Certify x with the noise at a lattice point on the CERTIFY draws ("estimate") or score
        the start's class on the tune draws ("tune"); radius scaled from the beta's sigma0 curve."""
        beta, sigma = _lattice(point, beta0, sigma0, s)
        if point[0] not in references:
            references[point[0]] = make_noise("general-normal", sigma=sigma0, dim=noise0.dim, beta=beta)
        reference = references[point[0]]
        noise = reference if point[1:] == (0, 0) else \
            make_noise("general-normal", sigma=sigma, dim=noise0.dim, beta=beta)
        sampler = _Sampler.build(model, x, noise, s.batch_size, s.seed, s.device)
        if purpose == "tune":
            counts, draws, label = sampler.votes(s.n_tune, "tune"), s.n_tune, first.prediction
        else:
            label = int(np.argmax(sampler.votes(s.n0, "select")))
            counts, draws = sampler.votes(s.n, "estimate"), s.n
        p_a_lower = cp_lower(int(counts[label]) if label < counts.size else 0, draws, s.alpha)
        votes = tuple(int(c) for c in counts)
        if not p_a_lower > 0.5:
            return IOptStep(beta, sigma, None, p_a_lower, 0.0, votes, None, None)
        radius, basis, formula = radius_at(reference, p, p_a_lower, None, sampler.device)
        return IOptStep(beta, sigma, label, p_a_lower, radius * (sigma / sigma0), votes, basis, formula)

    origin = (0, 0, 0)
    start_step = IOptStep(beta0, sigma0, first.prediction, first.p_a_lower, first.radius, first.counts, first.basis,
                          first.certificate)
    if first.prediction is None:
        return InputOptimized(first, start_step, (start_step,), 1, s.selection, p, noise0.dim)
    purpose = "tune" if s.selection == "separate" else "estimate"
    scored = {origin: start_step if purpose == "estimate" else evaluate(origin, "tune")}
    path = [origin]
    for _ in range(s.steps):
        best = path[-1]
        for point in _neighbours(path[-1], beta0, sigma0, s):
            if point not in scored:
                scored[point] = evaluate(point, purpose)
            if scored[point].prediction == first.prediction and scored[point].radius > scored[best].radius:
                best = point
        if best == path[-1]:
            break
        path.append(best)
    chosen = scored[path[-1]]
    if purpose == "tune":
        chosen = start_step if path[-1] == origin else evaluate(path[-1], "estimate")
        if chosen.prediction != first.prediction:   # the start's class or nothing
            chosen = replace(chosen, prediction=None, radius=0.0, basis=None, formula=None)
    return InputOptimized(first, chosen, tuple(scored[q] for q in path), len(scored), s.selection, p, noise0.dim)


def _lattice(point: tuple[int, int, int], beta0: float, sigma0: float, s: IOptSettings) -> tuple[float, float]:
    """(beta, sigma) at lattice point (i, u, v): beta0 + i beta_step, sigma0 (1 + step)^u (1 - step)^v."""
    i, u, v = point
    return beta0 + i * s.beta_step, sigma0 * (1 + s.sigma_step) ** u * (1 - s.sigma_step) ** v


def _neighbours(point, beta0: float, sigma0: float, s: IOptSettings):
    """The lattice neighbours of ``point`` inside beta_range and sigma_range, in the climb's order."""
    i, u, v = point
    for q in ((i + 1, u, v), (i - 1, u, v), (i, u + 1, v), (i, u, v + 1)):
        beta, sigma = _lattice(q, beta0, sigma0, s)
        if _inside(beta, s.beta_range) and _inside(sigma / sigma0, s.sigma_range):
            yield q


def _inside(value: float, bounds: tuple[float, float]) -> bool:
    """low <= value <= high, up to rounding of the lattice arithmetic (1e-9 relative)."""
    low, high = bounds
    return low * (1 - 1e-9) <= value <= high * (1 + 1e-9)
