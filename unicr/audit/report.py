"""Reports of an audit: Markdown, the p_A -> R figure (PDF and PNG), the sweep (CSV), a JSON summary; an index.

Layout under the output directory ``OUT``::

    OUT/README.md                                   one line per audited case, with its verdict
    OUT/<certificate>/<certificate>-<norm>-<sigma|scale><value>[-<shape><value>...][-pb<p_B>].{md,pdf,png,csv,json}

e.g. ``cohen-l2-sigma1``, ``yang-lomax-l1-l1-scale1-a1.5``, ``yang-general-normal-l1-l1-sigma1-beta1.5``,
``cohen-l2-sigma1-pb0.1``: sigma or scale as given; shape parameters only where they differ from the
certificate's default (so default cases keep their names); p_B only for general audits (one value,
or ``pbs`` and a hash of the list where it varies with p_A). Numbers are written as ``:g`` where
that is exact, else in full.

Determinism: CSV and JSON hold no timestamps, floats are written with ``FLOAT_DIGITS`` significant
digits and JSON keys are sorted, so the same settings and seed give the same bytes. The Markdown
differs between runs only in its provenance lines (package versions, the code's commit); the figures carry
no software or date metadata (:mod:`.style`). The Markdown's --recheck command names the JSON
summary under OUT as given, so it also differs with --out.

Atomicity: all files of a case are rendered in memory first, written to temporary files in the
target directory, then moved into place with ``os.replace``; an interrupted run leaves the previous
files intact.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shlex
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from certificates import norm_label

from . import style
from .core import Audit, Settings, number_text
from .verdicts import CONFIRM_FACTOR, LOOSE, LOOSE_SHARE, SUSPECT, TIGHT, UNCONFIRMED, loose_threshold
from .verdicts import ratio as claim_ratio

__all__ = [
    "FLOAT_DIGITS", "CSV_COLUMNS", "fmt", "dumps", "summary", "record", "csv_text", "figure", "plot",
    "markdown",
    "render", "write_files", "write_audit", "write_index", "provenance", "grid_spec", "settings_args",
    "case_command", "paths_for", "margin_source", "VERDICT_METHOD", "p_b_spec", "excess_text", "gap_text",
    "radius_scale", "recheck_command", "ZERO",
]

FLOAT_DIGITS = 12
#: report text prints a value within ZERO of its scale as 0 (``_num``): e.g. a radius of 3.7e-17 that is 0
ZERO = 1e-12
CSV_COLUMNS = ("p_a", "p_b", "claimed", "radius", "lower", "upper", "ratio", "gap", "excess", "verdict",
               "direction", "support", "backend")
PACKAGES = ("unicr", "torch", "numpy", "scipy", "mpmath", "matplotlib", "fonttools")

VERDICT_METHOD = (
    "Per p_A, with the engine's radius R_U and its band [R_lo, R_hi] at confidence c, a claimed "
    "radius R_C is **suspect** if R_C > R_hi(1 + eps), **tight** if R_lo(1 - tau) <= R_C <= R_hi(1 + eps) "
    "and **loose** if R_C < R_lo(1 - tau) (gap 1 - R_C/R_U). eps (default 1e-9, relative) is a rounding "
    "allowance, not a statistical one: it lets a formula that matches the tight radius to float64 rounding "
    "pass and still flags one that over-claims by more (a float32 formula off by 6e-4 is suspect); the "
    "excess R_C/R_hi - 1 is reported per row. Each suspect row is confirmed by re-checking its witness "
    "delta (the engine's witness direction, on which K <= 0 from ||delta|| = R_hi, scaled to ||delta|| = "
    f"(R_hi + R_C)/2 < R_C) on an independent run: its own random stream, {CONFIRM_FACTOR}x the "
    "draws or the deterministic backend, at the Bonferroni level 1 - (1 - c)/m for the m suspect rows. "
    "Rows whose witness does not hold become *unconfirmed* (reported, not counted). A case is suspect if "
    f"any row is confirmed suspect, loose if at least {LOOSE_SHARE}% of its p_A (and at least one) are "
    "loose, tight otherwise. R_U is an upper bound on the tight radius only as good as the direction "
    "search: a search that misses the worst direction makes a tight claim look loose, so loose verdicts "
    "are only as good as the search; suspect verdicts rest on a witness and do not depend on it.")


# -- formatting -----------------------------------------------------------------------------------

def fmt(x) -> str:
    """A float with FLOAT_DIGITS significant digits; 'inf', '-inf', 'nan' for the rest."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return format(x, f".{FLOAT_DIGITS}g")


def _clean(obj):
    """JSON-ready: floats rounded to FLOAT_DIGITS digits, non-finite floats as strings, tuples and
    arrays as lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        text = fmt(obj)
        return float(text) if math.isfinite(float(obj)) else text
    return obj


def dumps(obj) -> str:
    """Deterministic JSON text: sorted keys, rounded floats, no NaN/Infinity literals."""
    return json.dumps(_clean(obj), sort_keys=True, indent=1, allow_nan=False) + "\n"


def grid_spec(grid) -> str:
    """The --p-a argument for a grid: 'start:stop:count' for a linspace, else a comma list."""
    g = [float(x) for x in grid]
    if len(g) >= 3 and np.array_equal(np.round(np.linspace(g[0], g[-1], len(g)), 6), g):
        return f"{g[0]!r}:{g[-1]!r}:{len(g)}"
    return ",".join(repr(x) for x in g)


def p_b_spec(settings: Settings) -> str | None:
    """The --p-b argument of a general audit (one value, or a comma list aligned with the p_A grid);
    None for a binary one."""
    if settings.p_b is None:
        return None
    if len(set(settings.p_b)) == 1:
        return repr(settings.p_b[0])
    return ",".join(repr(x) for x in settings.p_b)


def excess_text(x: float) -> str:
    """R_C/R_hi - 1 in three significant digits, with its sign: '+0.000511', '-0.0123', '-1.22e-13', '+0'."""
    x = float(x)
    return format(x, "+.3g") if math.isfinite(x) else fmt(x)


def settings_args(settings: Settings, *, ranking: bool = False) -> list[str]:
    """Command-line options reproducing ``settings``; ``ranking``: only those the ranking reads
    (its dimension and draws are --rank-dim and --rank-samples)."""
    args = [] if ranking else ["--dim", str(settings.dim)]
    args += ["--p-a", grid_spec(settings.p_a)]
    if not ranking and settings.p_b is not None:
        args += ["--p-b", p_b_spec(settings)]
    args += [] if ranking else ["--samples", str(settings.samples)]
    args += ["--seed", str(settings.seed)]
    args += [] if ranking else ["--tolerance", repr(settings.tolerance),
                                "--suspect-tolerance", repr(settings.suspect_tolerance)]
    args += ["--confidence", repr(settings.confidence), "--backend", settings.backend, "--search", settings.search]
    if settings.device is not None:
        args += ["--device", str(settings.device)]
    return args


def case_command(audit: Audit) -> str:
    """The command that reproduces this case alone."""
    case = audit.case
    source = case.certificate.name if case.source == "catalog" else case.source
    name, value = case.parameter
    args = ["python", "-m", "unicr.audit", "--certificate", source, "--norm", norm_label(case.norm),
            f"--{name}", f"{value!r}"] + settings_args(audit.settings)
    defaults = {s.name: float(s.default) for s in case.certificate.noise.shape}
    for key, value in sorted(case.shape.items()):
        if value != defaults.get(key):
            args += ["--shape", f"{key}={value!r}"]
    return " ".join(args)


#: the paths whose content makes the numbers: the provenance names their last commit, so that
#: committing regenerated results does not change the provenance of a rerun
CODE_PATHS = ("unicr", "certificates", "pyproject.toml")


def provenance() -> dict:
    """Package versions and the commit of the code: the last commit that changed CODE_PATHS, with
    "+modified" where the working tree changes them ('unknown' outside git)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"

    def git(*args, cwd=Path(__file__).resolve().parent) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=cwd,
                              check=True).stdout.strip()

    try:
        root = Path(git("rev-parse", "--show-toplevel"))
        paths = [p for p in CODE_PATHS if (root / p).exists()]
        commit = git("log", "-1", "--format=%H", "--", *paths, cwd=root) or "unknown"
        if git("status", "--porcelain", "--untracked-files=no", "--", *paths, cwd=root):
            commit += "+modified"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {"versions": versions, "commit": commit}


def margin_source(margin: dict) -> str:
    """'exact', or 'mc (N samples, stream S of seed N)'."""
    if margin["backend"] == "exact":
        return "exact"
    stream = margin.get("stream", "witness")
    return f"{margin['backend']} ({margin['samples']} samples, stream {stream} of seed {margin['seed']})"


# -- records --------------------------------------------------------------------------------------

def _row_record(row) -> dict:
    out = {"p_a": row.p_a, "p_b": row.p_b, "claimed": row.claimed, "radius": row.radius, "lower": row.lower,
           "upper": row.upper, "ratio": row.ratio, "gap": row.gap, "excess": row.excess, "verdict": row.verdict,
           "direction": row.direction, "support": row.support, "backend": row.backend}
    if row.witness is not None:
        out["witness"] = row.witness.to_dict()
    if row.margin is not None:
        out["margin"] = row.margin
    return out


def summary(audit: Audit) -> dict:
    """Counts per verdict, the range of R_C / R_U over the sweep, the largest gap 1 - R_C / R_U (0 where
    every claim reaches R_U: a claim above R_U leaves nothing out; how far it exceeds the band is the
    excess) and the largest excess R_C / R_hi - 1."""
    ratios = np.array([r.ratio for r in audit.rows])
    counts = {v: sum(r.verdict == v for r in audit.rows) for v in (TIGHT, LOOSE, SUSPECT, UNCONFIRMED)}
    return {"points": len(audit.rows), **counts, "loose_threshold": loose_threshold(len(audit.rows)),
            "ratio_min": float(ratios.min()), "ratio_median": float(np.median(ratios)),
            "ratio_max": float(ratios.max()), "gap_max": max(0.0, float(1.0 - ratios.min())),
            "excess_max": float(max(r.excess for r in audit.rows))}


def record(audit: Audit, run: str = "") -> dict:
    """The JSON summary of a case (also one element of ``--json`` output). ``run``: the command of the
    whole run that produced it."""
    case, s = audit.case, audit.settings
    cert, ref = case.certificate, case.certificate.reference
    return {
        "certificate": cert.name, "claim": cert.claim, "domain": cert.domain, "source": case.source,
        "reference": {"cite": ref.cite(), "title": ref.title, "code": ref.code},
        "norm": norm_label(case.norm), "p": case.norm, "sigma": case.sigma, "scale": case.scale,
        "shape": dict(case.shape), "label": case.label, "noise": case.noise_spec(),
        "settings": {"dim": s.dim, "samples": s.samples, "seed": s.seed, "confidence": s.confidence,
                     "tolerance": s.tolerance, "suspect_tolerance": s.suspect_tolerance,
                     "p_b": None if s.p_b is None else list(s.p_b), "general": s.general,
                     "backend": s.backend, "backend_used": audit.backend,
                     "search": s.search, "device": s.device, "confirm_factor": CONFIRM_FACTOR,
                     "confirm_stream": "confirm"},
        "verdict": audit.verdict, "summary": summary(audit), "note": audit.note,
        "command": case_command(audit), "run": run,
        "rows": [_row_record(r) for r in audit.rows],
    }


def csv_text(audit: Audit) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in audit.rows:
        rec = _row_record(r)
        writer.writerow([fmt(rec[c]) if isinstance(rec[c], float) else rec[c] for c in CSV_COLUMNS])
    return buf.getvalue()


# -- plot -----------------------------------------------------------------------------------------

#: a band whose widest point spans less than this share of its panel's height is stated, not drawn
VISIBLE = 0.03
#: verdict -> (legend text, marker style) of the points
MARKERS = {
    TIGHT: ("tight", dict(marker="o", color=style.COLORS["green"], ms=3.0, mew=0)),
    LOOSE: ("loose", dict(marker="v", color=style.COLORS["yellow"], ms=3.6, mec="0.3", mew=0.4)),
    SUSPECT: ("suspect", dict(marker="^", color=style.COLORS["red"], ms=5.0, mec="k", mew=0.6)),
    UNCONFIRMED: ("unconfirmed", dict(marker="x", color="0.45", ms=4.0, mew=1.0)),
}


def _visible(lo: np.ndarray, hi: np.ndarray, ax) -> bool:
    """Whether the band [lo, hi] is at its widest at least VISIBLE of the panel's height."""
    ok = np.isfinite(lo) & np.isfinite(hi)
    return bool(ok.any()) and float(np.max(hi[ok] - lo[ok])) >= VISIBLE * float(np.ptp(ax.get_ylim()))


def figure(audit: Audit):
    """The audit's figure (build it inside ``style.context()``): two panels over p_A.

    Top: claimed R_C and the engine's R_U, with the band [R_lo, R_hi] where it is wide enough to
    see. Bottom: R_C/R_U with the band carried over as [R_C/R_hi, R_C/R_lo], a line at 1 and the
    tight zone [1 - tau, 1 + eps]: a point is tight where its band reaches the zone, suspect above
    it, loose below it. A band too narrow to see in either panel is stated in the legend with its
    largest width relative to R_U. Suspect points are marked in both panels.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    case, s, rows = audit.case, audit.settings, audit.rows
    p_a = np.array([r.p_a for r in rows])
    radius, claimed = np.array([r.radius for r in rows]), np.array([r.claimed for r in rows])
    lower, upper = np.array([r.lower for r in rows]), np.array([r.upper for r in rows])
    ratio = np.array([r.ratio for r in rows])
    ratio_lo = np.array([claim_ratio(r.claimed, r.upper) for r in rows])
    ratio_hi = np.array([claim_ratio(r.claimed, r.lower) for r in rows])
    blue, alpha = style.COLORS["blue"], 0.35
    tau, eps = s.tolerance, s.suspect_tolerance

    fig = style.figure(style.WIDTH, 4.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (1.4, 1.0)})
    curves = [top.plot(p_a, radius, color=blue, lw=1.3, label="engine $R_U$")[0],
              top.plot(p_a, claimed, color="k", lw=1.0, ls=(0, (4, 2)), label="claimed $R_C$")[0]]
    for verdict in (SUSPECT, UNCONFIRMED):
        sel = np.array([r.verdict == verdict for r in rows])
        if sel.any():
            top.plot(p_a[sel], claimed[sel], ls="none", zorder=3, **{**MARKERS[verdict][1], "ms": 3.0, "mew": 0.3})

    half = max(2 * tau, 0.02)
    values = np.concatenate([ratio, ratio_lo, ratio_hi])
    values = values[np.isfinite(values)]
    y0, y1 = min(values.min(initial=1.0), 1 - half), max(values.max(initial=1.0), 1 + half)
    bottom.set_ylim(y0 - 0.06 * (y1 - y0), y1 + 0.06 * (y1 - y0))
    zone = bottom.axhspan(1 - tau, 1 + eps, color=style.COLORS["green"], alpha=0.2, lw=0,
                          label=f"tight zone [1-$\\tau$, 1+$\\epsilon$], $\\tau$={tau:g}")
    bottom.axhline(1.0, color="k", lw=0.6, zorder=1)
    bottom.plot(p_a, ratio, color="0.35", lw=0.7, zorder=2)
    drawn = []
    for ax, lo, hi in ((top, lower, upper), (bottom, ratio_lo, ratio_hi)):
        drawn.append(_visible(lo, hi, ax))
        if drawn[-1]:
            ok = np.isfinite(lo) & np.isfinite(hi)
            ax.fill_between(p_a[ok], lo[ok], hi[ok], color=blue, alpha=alpha, lw=0, zorder=1.5)
    backends = {r.backend for r in rows}
    kind = "deterministic" if backends == {"exact"} else f"{s.confidence:g} confidence" + (
        "" if backends == {"mc"} else " where Monte Carlo")
    if any(drawn):
        where = "" if drawn[0] else ", lower panel"
        curves.append(Patch(color=blue, alpha=alpha, lw=0, label=f"engine band ({kind}){where}"))
    else:
        ok = np.isfinite(lower) & np.isfinite(upper) & (radius > 0)
        width = float(np.max((upper[ok] - lower[ok]) / radius[ok])) if ok.any() else 0.0
        curves.append(Line2D([], [], ls="none", label=f"engine band ({kind}): width $\\leq$ "
                                                      f"{width:.1g} $R_U$,\ntoo narrow to draw"))
    marks = [zone]
    for verdict, (label, marker) in MARKERS.items():
        sel = np.array([r.verdict == verdict for r in rows])
        if sel.any():
            marks.append(bottom.plot(p_a[sel], ratio[sel], ls="none", zorder=3, label=f"{label} ({sel.sum()})",
                                     **marker)[0])

    pb = p_b_spec(s)
    pb = "" if pb is None else f", $p_B$={pb}" if "," not in pb else ", $p_B$ per $p_A$"
    shape = "".join(f", {k}={number_text(v)}" for k, v in case.custom_shape().items())
    top.set_title(f"{case.certificate.name}: {audit.verdict.upper()}\n"
                  f"{norm_label(case.norm)}, {case.parameter_text}{shape}{pb}, d={s.dim}")
    top.set_ylabel(f"radius ({norm_label(case.norm)})")
    top.legend(handles=curves, loc="upper left")
    bottom.set_ylabel("$R_C / R_U$")
    bottom.set_xlabel("$p_A$")
    fig.legend(handles=marks, loc="outside lower center", ncol=len(marks))
    return fig


def plot(audit: Audit) -> dict[str, bytes]:
    """The audit's figure as {'.pdf': bytes, '.png': bytes} (see ``figure``)."""
    with style.context():
        return style.render(figure(audit))


# -- markdown -------------------------------------------------------------------------------------

def gap_text(gap: float) -> str:
    """The gap 1 - R_C/R_U in percent with two decimals. The gap is the share of R_U a claim leaves
    out, so a claim at or above R_U has none: '0.00%', never negative or '-0.00%' (an over-claim shows
    in R_C/R_U and the excess R_C/R_hi - 1)."""
    return "nan" if math.isnan(gap) else f"{100 * max(0.0, gap):.2f}%"


def _num(x: float, scale: float | None = None) -> str:
    """Six significant digits; with ``scale``, '0' for |x| <= ZERO * scale (rounding residue of a 0)."""
    if not math.isfinite(x):
        return fmt(x)
    return "0" if scale is not None and abs(x) <= ZERO * scale else format(x, ".6g")


def radius_scale(audit: Audit) -> float:
    """The largest finite |radius| of the sweep (claims, R_U and band ends): the scale of ``ZERO``."""
    values = [abs(v) for r in audit.rows for v in (r.claimed, r.radius, r.lower, r.upper) if math.isfinite(v)]
    return max(values, default=0.0)


def recheck_command(audit: Audit, path: Path) -> str:
    """The --recheck command of a case's JSON summary ``path``, as the report's OUT was given (so it
    works from where the audit ran); a plugin's source is loaded too, for any noise it registers."""
    args = ["python", "-m", "unicr.audit", "--recheck", Path(path).as_posix()]
    if audit.case.source != "catalog":
        args += ["--certificate", audit.case.source]
    return " ".join(shlex.quote(a) for a in args)


def markdown(audit: Audit, folder: Path, stem: str, run: str, prov: dict) -> str:
    """The case's report; ``folder``: its directory as OUT was given (for the --recheck command)."""
    case, s = audit.case, audit.settings
    cert, ref = case.certificate, case.certificate.reference
    sm, scale = summary(audit), radius_scale(audit)
    nl = norm_label(case.norm)
    pname, pvalue = case.parameter
    pb = p_b_spec(s)
    if pb is None:
        case_text = "audited in the binary case p_B = 1 - p_A"
        pb_row = "1 - p_A (binary)"
    elif "," not in pb:
        case_text = f"audited at general (p_A, p_B) with p_B = {pb} for every p_A"
        pb_row = f"{pb} for every p_A (general audit)"
    else:
        case_text = "audited at general (p_A, p_B) pairs, p_B per p_A as in the sweep table"
        pb_row = f"one per p_A (general audit): {pb}"
    heading = f"{nl}, {pname} = {number_text(pvalue)}" + "".join(
        f", {k} = {number_text(v)}" for k, v in case.custom_shape().items())
    if pb is not None:
        heading += f", p_B = {pb}" if "," not in pb else ", p_B per p_A"
    param_text = (f"sigma = {number_text(pvalue)} (per-coordinate standard deviation)" if pname == "sigma" else
                  f"scale = {number_text(pvalue)} (the noise's own scale; the certificate evaluated at "
                  f"{cert.noise.scale} = {number_text(pvalue)})")
    lines = [
        f"# Audit of `{cert.name}`: {heading}, d = {s.dim}",
        "",
        f"**Verdict: {audit.verdict.upper()}** (claim: {cert.claim}). {sm['points']} values of p_A: "
        f"{sm['tight']} tight, {sm['loose']} loose, {sm['suspect']} suspect, {sm['unconfirmed']} unconfirmed; "
        f"R_C/R_U from {_num(sm['ratio_min'], 1.0)} to {_num(sm['ratio_max'], 1.0)} (median "
        f"{_num(sm['ratio_median'], 1.0)}), largest gap {gap_text(sm['gap_max'])}; largest excess R_C/R_hi - 1 = "
        f"{excess_text(sm['excess_max'])} (suspect above eps = {s.suspect_tolerance:g}).",
        "",
        "## What was audited",
        "",
        f"- Certificate: `{cert.name}` ({'catalog' if case.source == 'catalog' else 'external: `' + case.source + '`'})"
        f", claim **{cert.claim}**, domain {cert.domain}; {case_text}.",
        f"- Source: {ref.cite()}, *{ref.title}*" + (f"; code: {ref.code}" if ref.code else "") + ".",
        f"- Formula and notes: {cert.notes or '(none)'}",
        f"- Noise: `{case.noise.describe()}`; the certificate's parameterisation: {cert.noise.relation}.",
        f"- Norm: {nl} (radii in input units); {param_text}.",
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
        f"| dimension d | {s.dim} |",
        f"| p_A grid | {len(s.p_a)} points, {grid_spec(s.p_a)} |",
        f"| p_B | {pb_row} |",
        f"| Monte Carlo samples | {s.samples} |",
        f"| seed | {s.seed} (independent named streams of this seed: main, pilot, search, confirm) |",
        f"| band confidence c | {s.confidence:g} (pointwise per p_A; Bonferroni over the finalist directions) |",
        f"| tolerance tau | {s.tolerance:g} |",
        f"| suspect tolerance eps | {s.suspect_tolerance:g} (numerical: suspect if R_C > R_hi(1 + eps)) |",
        f"| backend | {s.backend} (used: {audit.backend}; per row below) |",
        f"| direction search | {s.search} |",
        f"| device | {s.device or 'cpu'} |",
        f"| shape parameters | {', '.join(f'{k}={v:g}' for k, v in sorted(case.shape.items())) or 'none'} |",
        f"| confirmation | {CONFIRM_FACTOR}x samples, own random stream, level 1 - (1 - c)/m |",
        "",
        f"Reproduce this case: `{case_command(audit)}`",
        "",
    ]
    if run:
        lines += [f"Generated by the run: `{run}`", ""]
    lines += [
        "## Provenance",
        "",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()),
        f"- commit: {prov['commit']}",
        "",
        "## Sweep",
        "",
        f"![p_A-R curve]({stem}.png)",
        "",
        "Top: the claimed radius R_C and the engine's R_U against p_A. Bottom: R_C/R_U, with the engine's band "
        "carried over as [R_C/R_hi, R_C/R_lo] and the tight zone [1 - tau, 1 + eps] shaded: a p_A is tight where "
        "its band reaches the zone, suspect above it and loose below it (a band too narrow to draw is stated "
        f"in the legend). Vector version: [{stem}.pdf]({stem}.pdf).",
        "",
        "| p_A |" + (" p_B |" if s.general else "") + " claimed R_C | engine R_U | band [R_lo, R_hi] | R_C/R_U | "
        "gap | R_C/R_hi - 1 | verdict | direction | backend |",
        "|---|" + ("---|" if s.general else "") + "---|---|---|---|---|---|---|---|---|",
    ]
    for r in audit.rows:
        lines.append(f"| {r.p_a:g} |" + (f" {r.p_b:g} |" if s.general else "") +
                     f" {_num(r.claimed, scale)} | {_num(r.radius, scale)} | [{_num(r.lower, scale)}, "
                     f"{_num(r.upper, scale)}] | {_num(r.ratio, 1.0)} | {gap_text(r.gap)} | {excess_text(r.excess)} | "
                     f"{r.verdict} | {r.direction} | {r.backend} |")
    witnessed = [r for r in audit.rows if r.witness is not None]
    if witnessed:
        lines += ["", "## Witnesses", "",
                  "Each witness is delta = scale * v with ||delta|| = (R_hi + R_C)/2, below the claim; K(delta) "
                  "was measured on an independent run, and K <= 0 (upper end of its band) confirms the row. "
                  f"`{recheck_command(audit, folder / f'{stem}.json')}` re-checks them again.",
                  "", "| p_A | direction (support) | scale | norm of delta | claimed R_C | K estimate | K band | "
                      "backend | level | status |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in witnessed:
            w, m = r.witness, r.margin
            lines.append(f"| {r.p_a:g} | {w.label} ({w.support}) | {_num(w.scale)} | {_num(w.delta_norm, scale)} | "
                         f"{_num(r.claimed, scale)} | {m['estimate']:.3g} | [{m['lower']:.3g}, {m['upper']:.3g}] | "
                         f"{margin_source(m)} | {m['confidence']:.6g} | {r.verdict} |")
    if audit.note:
        lines += ["", f"Note: {audit.note}"]
    lines += ["", "## How to read the verdict", "", VERDICT_METHOD, "",
              "## Reference", "", "```bibtex", ref.bibtex, "```", ""]
    return "\n".join(lines)


# -- files ----------------------------------------------------------------------------------------

def paths_for(out: Path, audit: Audit) -> tuple[Path, str]:
    """(directory, file stem) of a case: OUT/<certificate>/<certificate>-<norm>-<sigma|scale><v>, then
    ``-<shape><v>`` for each shape parameter off its default and ``-pb<p_B>`` for a general audit
    (see the module docstring)."""
    case, s = audit.case, audit.settings
    name = case.certificate.name
    pname, pvalue = case.parameter
    stem = f"{name}-{norm_label(case.norm)}-{pname}{number_text(pvalue)}"
    stem += "".join(f"-{k}{number_text(v)}" for k, v in case.custom_shape().items())
    if s.p_b is not None:
        if len(set(s.p_b)) == 1:
            stem += f"-pb{number_text(s.p_b[0])}"
        else:
            pairs = ",".join(f"{a!r}:{b!r}" for a, b in zip(s.p_a, s.p_b))
            stem += "-pbs" + hashlib.sha1(pairs.encode()).hexdigest()[:8]
    return Path(out) / name, stem


def render(audit: Audit, out: Path, run: str = "", prov: dict | None = None) -> dict[Path, bytes]:
    """All files of a case, rendered in memory: {path: bytes}."""
    folder, stem = paths_for(out, audit)
    prov = prov or provenance()
    return {
        folder / f"{stem}.csv": csv_text(audit).encode(),
        folder / f"{stem}.json": dumps(record(audit, run)).encode(),
        **{folder / f"{stem}{suffix}": data for suffix, data in plot(audit).items()},
        folder / f"{stem}.md": markdown(audit, folder, stem, run, prov).encode(),
    }


def write_files(files: dict[Path, bytes]) -> None:
    """Write every file to a temporary sibling, then move them all into place (os.replace)."""
    temps: dict[Path, str] = {}
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temps[path] = tmp
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
        for path, tmp in temps.items():
            os.replace(tmp, path)
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)


def write_audit(audit: Audit, out, run: str = "", prov: dict | None = None) -> Path:
    """Render and atomically write a case's report files; returns the Markdown path."""
    files = render(audit, Path(out), run, prov)
    write_files(files)
    return next(p for p in files if p.suffix == ".md")


def _norm_order(p) -> float:
    return math.inf if p == "inf" else float(p)


def _as_given(out: Path) -> str:
    """OUT as a user would type it from the current directory: relative where it lies inside."""
    try:
        return out.resolve().relative_to(Path.cwd().resolve()).as_posix() if out.is_absolute() else out.as_posix()
    except ValueError:
        return out.as_posix()


def write_index(out) -> Path:
    """OUT/README.md: one line per case found in OUT/*/*.json, with its verdict and figures."""
    out = Path(out)
    records = []
    for path in sorted(out.glob("*/*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and {"certificate", "verdict", "rows", "summary"} <= rec.keys():
            records.append((path, rec))
    records.sort(key=lambda x: (x[1]["certificate"], _norm_order(x[1]["p"]), x[1].get("scale") is not None,
                                x[1]["sigma"] if x[1]["sigma"] is not None else x[1].get("scale") or 0.0,
                                x[0].name))
    runs = sorted({rec.get("run", "") for _, rec in records} - {""})
    lines = ["# Certificate audit results", ""]
    if runs:
        lines += ["Generated by" + (":" if len(runs) == 1 else " the runs:"), ""]
        lines += [f"    {r} --out {_as_given(out)}" for r in runs] + [""]
    counts = {v: sum(rec["verdict"] == v for _, rec in records) for v in (TIGHT, LOOSE, SUSPECT)}
    lines += [] if not records else [
              f"{len(records)} cases: {counts[TIGHT]} tight, {counts[LOOSE]} loose, {counts[SUSPECT]} suspect. "
              "Each line: certificate, norm, sigma or scale (shape parameters and p_B where given), verdict, the "
              "claim, R_C/R_U over the sweep, the largest gap 1 - R_C/R_U, the largest excess R_C/R_hi - 1, and "
              "the source. Reports hold the parameters, seeds, versions, commit, the table, "
              "the plot and any witnesses.", ""]
    for path, rec in records:
        sm = rec["summary"]
        rel = path.relative_to(out).with_suffix(".md").as_posix()
        extra = f", {sm['unconfirmed']} unconfirmed" if sm.get("unconfirmed") else ""
        label = rec.get("label") or f"{rec['certificate']} {rec['norm']} sigma={rec['sigma']:g}"
        p_b = rec["settings"].get("p_b")
        if p_b:
            label += f" p_B={number_text(p_b[0])}" if len(set(p_b)) == 1 else " p_B per p_A"
        excess = f", max excess {excess_text(sm['excess_max'])}" if "excess_max" in sm else ""
        lines.append(f"- [{label}]({rel}): "
                     f"**{rec['verdict']}** (claim {rec['claim']}; R_C/R_U {_num(sm['ratio_min'], 1.0)}-"
                     f"{_num(sm['ratio_max'], 1.0)}, max gap {gap_text(sm['gap_max'])}{excess}; "
                     f"{sm['suspect']} suspect, {sm['loose']} loose of {sm['points']} p_A{extra}; "
                     f"d={rec['settings']['dim']}) - {rec['reference']['cite']}")
    if (out / "optimality.md").exists():
        lines += ["", "Noise optimality ranking: [optimality.md](optimality.md)."]
    lines += ["", "## Verdicts", "", VERDICT_METHOD, ""]
    path = out / "README.md"
    write_files({path: "\n".join(lines).encode()})
    return path
