"""Audit a published certification log (Cohen et al.'s format, :mod:`unicr.logs`) against the
parameters it claims: noise, sigma, norm, n draws and level alpha.

Cohen et al.'s CERTIFY (ICML 2019, locuslab/smoothing ``code/core.py``) returns the radius
R(p_A_lower) of a binary certificate (Gaussian l2: R = sigma * Phi^-1(p_A_lower)), where
p_A_lower = CP_lower(k, n, alpha), the one-sided Clopper-Pearson bound of the top class's k votes
out of n (``scipy.stats.beta.ppf(alpha, k, n - k + 1)``). So per certified row:

* **ceiling**: CP_lower(k, n, alpha) <= CP_lower(n, n, alpha) = alpha^(1/n), hence no radius exceeds
  R(alpha^(1/n)) (Gaussian: sigma * Phi^-1(alpha^(1/n))): a larger one is impossible with n draws
  at level alpha;
* **inconsistent**: the attainable radii are the discrete set {R(CP_lower(k, n, alpha)): k = 0..n}
  (0 where p_A_lower <= 1/2); a logged radius no member of which lies within its tolerance is
  inconsistent with the stated sigma, n and alpha (found by bisection over k, R being
  non-decreasing in p_A);
* **recomputed** (unicr logs, which carry ``p_a_lower``): the radius exceeds R(p_a_lower);
* **abstain**: predict = -1 with a radius > 0; **correct**: ``correct`` differs from
  predict == label. (A negative radius is rejected as malformed input by :func:`unicr.logs.read_log`.)

Rounding rule: a verdict must not flip on printing precision. Each row's tolerance is half a unit
in the last printed digit of its radius text ("0.512": 5e-4, "1.2e-05": 5e-7, "0.5": 0.05; a
``repr`` radius: about 1e-17) plus REL_TOL * |radius| + ABS_TOL (float evaluation). A radius is
over a bound only if it exceeds it by more than its tolerance, and consistent if some attainable
radius lies within its tolerance. Cohen's ``{:.3}`` drops trailing zeros, so "0.5" (which may be
0.4995 to 0.5005) gets the wider tolerance of its text: never a false flag, at some loss of power.

R is the largest catalog certificate with claim tight or sound for the noise family, shape and
norm, found as :func:`unicr.certify` finds it; where none applies, the UniCR engine's curve
(:func:`unicr.certification.engine_radius`, basis "approximate"): a numerical approximation of the
tight radius, not a certificate, so every check against it is approximate too, and says so.
The checks assume binary certification (p_B = 1 - p_A, Cohen's CERTIFY) unless the settings say
``bonferroni`` (a log of unicr's ``p_b="bonferroni"`` mode: p_A_lower and p_B_upper each at level
alpha / 2, general radius R(p_A, p_B)). Its ceiling is R((alpha/2)^(1/n)): the general radius grows
with p_A and shrinks with p_B, both extremes come with k_A = n, k_B = 0, and there p_B_upper =
1 - p_A_lower, the binary radius. Its attainable radii form a two-parameter set (k_A, k_B) and the
log does not carry p_B_upper, so ``inconsistent`` and ``recomputed`` are not checked for it.

The certified-accuracy table (Cohen's ``analyze.py``) and the robustness score (Hong et al., ECCV
2022, Eq. 5) are recomputed from the rows with :mod:`unicr.logs`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import check_dim, check_norm, check_positive
from ..logs import ABSTAIN, LogRow, accuracy_table, certified_accuracy, read_log, robustness_score

__all__ = ["LogSettings", "Log", "Finding", "LogAudit", "RadiusFunction", "REASONS", "REL_TOL", "ABS_TOL",
           "RADIUS_STEP", "tolerance", "load", "radius_function", "audit_log", "summary", "record",
           "markdown", "render", "write"]

#: relative and absolute allowance for float evaluation, added to every printing tolerance
REL_TOL = 1e-9
ABS_TOL = 1e-12
#: default radii of the certified-accuracy table: 0, RADIUS_STEP, 2 RADIUS_STEP, ... past the largest radius
RADIUS_STEP = 0.25
#: flagged rows listed in the summary
SHOWN = 10
#: reason -> what it means
REASONS = {
    "ceiling": "radius above R(alpha^(1/n)): impossible with n draws at level alpha",
    "inconsistent": "no k in 0..n gives R(CP_lower(k, n, alpha)) within the printing tolerance",
    "recomputed": "radius above R(p_a_lower) recomputed from the logged bound",
    "abstain": "abstention (predict -1) with a positive radius",
    "correct": "column 'correct' disagrees with predict == label",
}


@dataclass(frozen=True)
class LogSettings:
    """What the log claims: noise family and sigma, norm, input dimension, shape parameters, n draws
    at level alpha (n0 is recorded only: the selection draws do not enter the bound), and the radii
    of the accuracy table (None: 0, RADIUS_STEP, ... past the largest radius). ``bonferroni``: the
    log comes from CERTIFY with p_b="bonferroni" (unicr's ``--p-b bonferroni``): both bounds at
    alpha / 2 and the general (p_A, p_B) radius."""

    noise: str
    sigma: float
    n: int
    alpha: float
    norm: float = 2.0
    dim: int = 3072
    shape: tuple[tuple[str, float], ...] = ()
    n0: int | None = None
    radii: tuple[float, ...] | None = None
    bonferroni: bool = False

    @property
    def level(self) -> float:
        """The level of each Clopper-Pearson bound: alpha, or alpha / 2 for a Bonferroni log."""
        return self.alpha / 2 if self.bonferroni else self.alpha

    def __post_init__(self):
        object.__setattr__(self, "sigma", check_positive("--sigma", self.sigma))
        object.__setattr__(self, "norm", check_norm(self.norm, "--norm"))
        object.__setattr__(self, "dim", check_dim(self.dim, "--dim"))
        for name in ("n", "n0"):
            value = getattr(self, name)
            if (value is not None or name == "n") and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"--{name} must be an integer >= 1, got {value!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"--alpha must lie in the open interval (0, 1), got {self.alpha!r}")
        if self.radii is not None and (not self.radii or any(not 0 <= r < math.inf for r in self.radii)):
            raise ValueError(f"--radii must be finite radii >= 0, got {self.radii!r}")


@dataclass(frozen=True)
class Log:
    """A log's rows with the text of each radius and its line in the file."""

    source: str
    rows: tuple[LogRow, ...]
    radius_texts: tuple[str, ...]
    lines: tuple[int, ...]

    @property
    def cohen(self) -> bool:
        """Whether the log has Cohen's six columns only (no p_a_lower)."""
        return all(r.p_a_lower is None for r in self.rows)


def load(path) -> Log:
    """The log at ``path``; a missing file or a malformed row raises ValueError naming file:line."""
    rows = read_log(path)
    text = Path(path).read_text(encoding="utf-8").splitlines()
    column = text[0].rstrip("\r").split("\t").index("radius")
    numbered = [(i, line) for i, line in enumerate(text[1:], start=2) if line.strip()]
    return Log(str(path), tuple(rows), tuple(line.rstrip("\r").split("\t")[column].strip() for _, line in numbered),
               tuple(i for i, _ in numbered))


def tolerance(text: str, value: float) -> float:
    """Half a unit in the last printed digit of ``text``, plus REL_TOL * |value| + ABS_TOL."""
    return 0.5 * 10.0 ** Decimal(text).as_tuple().exponent + REL_TOL * abs(value) + ABS_TOL


@dataclass(frozen=True)
class RadiusFunction:
    """The binary radius p_A -> R of the run: ``evaluate`` at one p_A > 1/2, 0 at p_A <= 1/2."""

    evaluate: Callable[[float], float]
    label: str
    approximate: bool

    def __call__(self, p_a) -> np.ndarray:
        """R at each p_A of an array (each distinct value evaluated once)."""
        p_a = np.asarray(p_a, dtype=np.float64)
        values, inverse = np.unique(p_a, return_inverse=True)
        radii = np.array([self.evaluate(float(p)) if p > 0.5 else 0.0 for p in values])
        return radii[inverse].reshape(p_a.shape)


def radius_function(settings: LogSettings) -> RadiusFunction:
    """R for the settings' noise and norm, as :func:`unicr.certify` computes it (imports torch)."""
    from certificates import norm_label

    from .. import noises
    from ..certification import catalog_certificates, largest_catalog_radius, engine_radius

    noise = noises.noise(settings.noise, sigma=settings.sigma, dim=settings.dim, **dict(settings.shape))
    entries = catalog_certificates(noise, settings.norm, False)
    where = f"{noise.describe()}, {norm_label(settings.norm)}"
    if entries:
        tight = [cert for cert, _ in entries if cert.claim == "tight"]   # where one applies, only it is evaluated
        names = ", ".join(f"{cert.name} ({cert.claim})" for cert in tight or [cert for cert, _ in entries])

        def evaluate(p_a: float) -> float:
            best = largest_catalog_radius(entries, p_a, None)
            if best is None:
                raise ValueError(f"no catalog certificate ({names}) gives a radius at p_A = {p_a!r}")
            return best[0]

        return RadiusFunction(evaluate, f"catalog certificate {names}; {where}", False)
    return RadiusFunction(lambda p_a: engine_radius(noise, settings.norm, p_a),
                          f"UniCR engine curve (approximate: not a certificate; every check is numerical); {where}",
                          True)


@dataclass(frozen=True)
class Finding:
    """One flagged row and why: ``bound`` is the value it was held against (None for 'correct')."""

    idx: int
    line: int
    radius: float
    radius_text: str
    tolerance: float
    reason: str
    bound: float | None
    message: str


@dataclass(frozen=True)
class LogAudit:
    """Everything the audit of one log found."""

    log: Log
    settings: LogSettings
    radius: str
    approximate: bool
    p_ceiling: float
    ceiling: float
    findings: tuple[Finding, ...]
    radii: tuple[float, ...]
    accuracy: tuple[float, ...]
    score: float
    table: str

    @property
    def abstentions(self) -> int:
        return sum(r.abstained for r in self.log.rows)

    @property
    def flagged(self) -> list[int]:
        """Indices (0-based, in file order) of the flagged rows."""
        lines = {f.line for f in self.findings}
        return [i for i, line in enumerate(self.log.lines) if line in lines]

    def counts(self) -> dict[str, int]:
        return {reason: sum(f.reason == reason for f in self.findings) for reason in REASONS}


def _first_reaching(targets: np.ndarray, settings: LogSettings, radius: RadiusFunction) -> np.ndarray:
    """For each target t, the smallest k in 0..n with R(CP_lower(k, n, alpha)) >= t (n + 1 where
    none): vectorised bisection, each distinct k evaluated once per step."""
    from ..certification import cp_lower

    n = settings.n
    lo = np.zeros(targets.shape, dtype=np.int64)
    hi = np.full(targets.shape, n + 1, dtype=np.int64)
    while np.any(lo < hi):
        active = np.flatnonzero(lo < hi)
        mid = (lo[active] + hi[active]) // 2
        reached = radius(cp_lower(mid, n, settings.level)) >= targets[active]
        hi[active] = np.where(reached, mid, hi[active])
        lo[active] = np.where(reached, lo[active], mid + 1)
    return lo


def audit_log(log: Log, settings: LogSettings, radius: RadiusFunction | None = None) -> LogAudit:
    """Check every row of ``log`` (see the module docstring) and recompute its accuracy table."""
    from ..certification import cp_lower

    radius = radius_function(settings) if radius is None else radius
    n, alpha = settings.n, settings.level
    rows = log.rows
    value = np.array([r.radius for r in rows], dtype=np.float64)
    tol = np.array([tolerance(t, v) for t, v in zip(log.radius_texts, value)])
    certified = np.array([not r.abstained for r in rows], dtype=bool)
    p_ceiling = float(cp_lower(n, n, alpha))
    ceiling = float(radius(p_ceiling))
    findings = []

    def flag(i: int, reason: str, bound, message: str) -> None:
        findings.append(Finding(rows[i].idx, log.lines[i], float(value[i]), log.radius_texts[i], float(tol[i]),
                                reason, None if bound is None else float(bound), message))

    for i, row in enumerate(rows):
        if row.abstained and row.radius > 0:
            flag(i, "abstain", 0.0, f"predict {ABSTAIN} (abstain) with radius {log.radius_texts[i]}")
        if row.correct != int(row.predict == row.label):
            flag(i, "correct", None, f"correct = {row.correct} but predict {row.predict} "
                                     f"{'==' if row.predict == row.label else '!='} label {row.label}")
        if certified[i] and value[i] > ceiling + tol[i]:
            flag(i, "ceiling", ceiling, f"radius {log.radius_texts[i]} > R(alpha^(1/n)) = {ceiling:.6g} "
                                        f"(n = {n}, alpha = {alpha:g}{' = alpha/2' if settings.bonferroni else ''})")
    pick = np.flatnonzero(certified)
    if pick.size and not settings.bonferroni:
        pairs, inverse = np.unique(np.stack([value[pick], tol[pick]], axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        k = _first_reaching(pairs[:, 0] - pairs[:, 1], settings, radius)
        k_above, k_below = np.minimum(k, n), np.maximum(k - 1, 0)
        above, below = radius(cp_lower(k_above, n, alpha)), radius(cp_lower(k_below, n, alpha))
        fits = (k <= n) & (above <= pairs[:, 0] + pairs[:, 1])
        up = (k <= n) & (above - pairs[:, 0] <= pairs[:, 0] - below)
        near, near_k = np.where(up, above, below), np.where(up, k_above, k_below)
        for j, i in enumerate(pick):
            u = inverse[j]
            if not fits[u]:
                flag(i, "inconsistent", near[u], f"radius {log.radius_texts[i]}: the nearest attainable radius is "
                                                 f"{near[u]:.6g} (k = {near_k[u]} of n = {n}, sigma = "
                                                 f"{settings.sigma:g}, alpha = {alpha:g})")
    bounded = [i for i in pick if rows[i].p_a_lower is not None and not settings.bonferroni]
    if bounded:
        again = radius(np.array([rows[i].p_a_lower for i in bounded]))
        for i, r in zip(bounded, again):
            if value[i] > r + tol[i]:
                flag(i, "recomputed", r, f"radius {log.radius_texts[i]} > R(p_a_lower = {rows[i].p_a_lower!r}) "
                                         f"= {r:.6g}")
    findings.sort(key=lambda f: (f.line, list(REASONS).index(f.reason)))
    radii = settings.radii or _default_radii(rows)
    return LogAudit(log=log, settings=settings, radius=radius.label, approximate=radius.approximate,
                    p_ceiling=p_ceiling, ceiling=ceiling, findings=tuple(findings), radii=radii,
                    accuracy=tuple(float(a) for a in certified_accuracy(rows, radii)),
                    score=robustness_score([rows]), table=accuracy_table({Path(log.source).name: rows}, radii))


def _default_radii(rows) -> tuple[float, ...]:
    """0, RADIUS_STEP, ... up to the first multiple at or past the largest certified radius."""
    top = max((r.radius for r in rows if not r.abstained), default=0.0)
    return tuple(RADIUS_STEP * i for i in range(int(math.floor(top / RADIUS_STEP)) + 2))


# -- output -----------------------------------------------------------------------------------

def summary(result: LogAudit, reports: list[Path] | None = None) -> str:
    """The one-screen summary: rows, abstentions, flags by reason, the ceiling, the accuracy table."""
    s, log = result.settings, result.log
    counts = result.counts()
    lines = [f"log audit: {log.source} ({'Cohen' if log.cohen else 'unicr'} format): {len(log.rows)} rows, "
             f"{result.abstentions} abstentions",
             f"claimed: {s.noise} sigma = {s.sigma:g}, n = {s.n}, alpha = {s.alpha:g}"
             + ("" if s.n0 is None else f", n0 = {s.n0}")
             + (", Bonferroni (bounds at alpha/2; 'inconsistent' and 'recomputed' not checked)" if s.bonferroni else ""),
             f"radius: {result.radius}",
             f"ceiling: R(alpha^(1/n) = {result.p_ceiling:.10g}) = {result.ceiling:.6g}"
             + ("  (approximate: engine curve)" if result.approximate else ""),
             f"flagged rows: {len(result.flagged)} of {len(log.rows)}"]
    lines += [f"  {reason:<13} {counts[reason]:>6}  {text}" for reason, text in REASONS.items()]
    by_line: dict[int, list[Finding]] = {}
    for f in result.findings:
        by_line.setdefault(f.line, []).append(f)
    for line, found in list(by_line.items())[:SHOWN]:
        lines.append(f"  line {line} (idx {found[0].idx}): {', '.join(f.reason for f in found)}: {found[0].message}")
    if len(by_line) > SHOWN:
        lines.append(f"  ... {len(by_line) - SHOWN} more flagged rows in the report (--out)")
    lines += ["", result.table.rstrip("\n"), f"robustness score (Hong et al., Eq. 5): {result.score:.6g}"]
    lines += [f"report: {p}" for p in reports or ()]
    return "\n".join(lines) + "\n"


def record(result: LogAudit, command: str = "") -> dict:
    """The JSON record: settings, ceiling, counts and every finding."""
    s = result.settings
    return {"log": result.log.source, "command": command, "format": "cohen" if result.log.cohen else "unicr",
            "settings": {"noise": s.noise, "sigma": s.sigma, "norm": s.norm if math.isfinite(s.norm) else "inf",
                         "dim": s.dim, "shape": dict(s.shape), "n": s.n, "n0": s.n0, "alpha": s.alpha,
                         "bonferroni": s.bonferroni},
            "radius_function": result.radius, "approximate": result.approximate,
            "p_ceiling": result.p_ceiling, "ceiling": result.ceiling, "rows": len(result.log.rows),
            "abstentions": result.abstentions, "flagged_rows": len(result.flagged), "counts": result.counts(),
            "findings": [{"idx": f.idx, "line": f.line, "radius": f.radius_text, "tolerance": f.tolerance,
                          "reason": f.reason, "bound": f.bound, "message": f.message} for f in result.findings],
            "certified_accuracy": {"radii": list(result.radii), "accuracy": list(result.accuracy)},
            "robustness_score": result.score,
            "rounding_rule": "half a unit in the last printed digit of the radius + "
                             f"{REL_TOL:g} * |radius| + {ABS_TOL:g}"}


def markdown(result: LogAudit, command: str = "") -> str:
    """The Markdown report: the summary's facts and a table of every finding."""
    rec = record(result, command)
    lines = [f"# Log audit: `{Path(result.log.source).name}`", "",
             f"- log: `{result.log.source}` ({rec['format']} format), {rec['rows']} rows, "
             f"{rec['abstentions']} abstentions",
             f"- command: `{command}`" if command else "- command: (library call)",
             f"- claimed: {', '.join(f'{k} = {v}' for k, v in rec['settings'].items() if v not in (None, {}))}",
             f"- radius: {result.radius}",
             f"- sample-size ceiling: R(alpha^(1/n)) = R({result.p_ceiling:.10g}) = {result.ceiling:.6g}",
             f"- rounding rule: {rec['rounding_rule']}",
             f"- flagged rows: **{rec['flagged_rows']}** of {rec['rows']}", "",
             "| reason | rows | meaning |", "|---|---:|---|"]
    lines += [f"| {reason} | {n} | {REASONS[reason]} |" for reason, n in rec["counts"].items()]
    lines += ["", "## Findings", ""]
    if result.findings:
        lines += ["| line | idx | radius | tolerance | reason | bound | detail |", "|---:|---:|---:|---:|---|---:|---|"]
        lines += [f"| {f.line} | {f.idx} | {f.radius_text} | {f.tolerance:.2g} | {f.reason} | "
                  f"{'-' if f.bound is None else format(f.bound, '.6g')} | {f.message} |" for f in result.findings]
    else:
        lines.append("No row is flagged.")
    lines += ["", "## Certified accuracy (recomputed)", "", result.table.rstrip("\n"), "",
              f"Robustness score (Hong et al., ECCV 2022, Eq. 5): {result.score:.6g}", ""]
    return "\n".join(lines)


def render(result: LogAudit, out, command: str = "") -> dict[Path, bytes]:
    """The report files, OUT/log-audit/<slug>.{md,json}, in memory: the slug is the log's path as
    given, its parts joined by "__" (``data/cifar/sigma_0.25`` -> ``data__cifar__sigma_0.25``), so
    that logs of the same file name in different folders (Cohen's are all ``sigma_*``) do not
    overwrite each other's reports."""
    from .report import dumps

    parts = [part for part in Path(result.log.source).parts if part not in ("/", ".", "..") and not part.endswith(":\\")]
    stem = Path(out) / "log-audit" / "__".join(parts)
    return {stem.with_name(stem.name + ".md"): markdown(result, command).encode(),
            stem.with_name(stem.name + ".json"): dumps(record(result, command)).encode()}


def write(result: LogAudit, out, command: str = "") -> list[Path]:
    """Write the report files atomically (:func:`unicr.audit.report.write_files`); their paths."""
    from .report import write_files

    files = render(result, out, command)
    write_files(files)
    return list(files)
