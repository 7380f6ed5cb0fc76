"""Reports of an audit: Markdown, the p_A -> R plot (PNG), the sweep (CSV), a JSON summary; an index.

Layout under the output directory ``OUT``::

    OUT/README.md                                   one line per audited case, with its verdict
    OUT/<certificate>/<certificate>-<norm>-<sigma|scale><value>[-<shape><value>...][-pb<p_B>].{md,png,csv,json}

e.g. ``cohen-l2-sigma1``, ``yang-lomax-l1-l1-scale1-a1.5``, ``yang-general-normal-l1-l1-sigma1-beta1.5``,
``cohen-l2-sigma1-pb0.1``: sigma or scale as given; shape parameters only where they differ from the
certificate's default (so default cases keep their names); p_B only for general audits (one value,
or ``pbs`` and a hash of the list where it varies with p_A). Numbers are written as ``:g`` where
that is exact, else in full.

Determinism: CSV and JSON hold no timestamps, floats are written with ``FLOAT_DIGITS`` significant
digits and JSON keys are sorted, so the same settings and seed give the same bytes. The Markdown
differs between runs only in its provenance lines (package versions, commit); the PNG carries no
"Software" or date metadata.

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
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from certificates import norm_label

from .core import Audit, Settings, number_text
from .verdicts import CONFIRM_FACTOR, LOOSE, LOOSE_SHARE, SUSPECT, TIGHT, UNCONFIRMED, loose_threshold

__all__ = [
    "FLOAT_DIGITS", "CSV_COLUMNS", "fmt", "dumps", "summary", "record", "csv_text", "plot_png", "markdown",
    "render", "write_files", "write_audit", "write_index", "provenance", "grid_spec", "settings_args",
    "case_command", "paths_for", "margin_source", "VERDICT_METHOD", "p_b_spec", "excess_text",
]

FLOAT_DIGITS = 12
CSV_COLUMNS = ("p_a", "p_b", "claimed", "radius", "lower", "upper", "ratio", "gap", "excess", "verdict",
               "direction", "support", "backend")
PACKAGES = ("unicr", "torch", "numpy", "scipy", "mpmath")

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


def provenance() -> dict:
    """Package versions and the git commit of the working tree ('unknown' outside git)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).resolve().parent, check=True).stdout.strip() or "unknown"
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
    """Counts per verdict, the range of R_C / R_U over the sweep and the largest excess R_C / R_hi - 1."""
    ratios = np.array([r.ratio for r in audit.rows])
    counts = {v: sum(r.verdict == v for r in audit.rows) for v in (TIGHT, LOOSE, SUSPECT, UNCONFIRMED)}
    return {"points": len(audit.rows), **counts, "loose_threshold": loose_threshold(len(audit.rows)),
            "ratio_min": float(ratios.min()), "ratio_median": float(np.median(ratios)),
            "ratio_max": float(ratios.max()), "gap_max": float(1.0 - ratios.min()),
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

def plot_png(audit: Audit) -> bytes:
    """Certificate curve against the engine's with its band shaded (the paper's Figure 4)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    case = audit.case
    p_a = np.array([r.p_a for r in audit.rows])
    radius = np.array([r.radius for r in audit.rows])
    lower = np.array([r.lower for r in audit.rows])
    upper = np.array([r.upper for r in audit.rows])
    claimed = np.array([r.claimed for r in audit.rows])
    fig = Figure(figsize=(6.4, 4.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    finite = np.isfinite(lower) & np.isfinite(upper)
    ax.fill_between(p_a[finite], lower[finite], upper[finite], color="tab:blue", alpha=0.25, lw=0,
                    label=f"engine band ({audit.settings.confidence:g})")
    ax.plot(p_a, radius, color="tab:blue", lw=1.6, label="engine $R_U$ (UniCR)")
    ax.plot(p_a, claimed, color="tab:orange", lw=1.4, ls="--", label=f"claimed $R_C$ ({case.certificate.name})")
    for verdict, style in ((SUSPECT, dict(color="tab:red", marker="x")),
                           (UNCONFIRMED, dict(color="tab:gray", marker="+")),
                           (LOOSE, dict(color="tab:green", marker="."))):
        sel = np.array([r.verdict == verdict for r in audit.rows])
        if sel.any():
            ax.scatter(p_a[sel], claimed[sel], s=28, zorder=3, label=verdict, **style)
    ax.set_xlabel("$p_A$")
    ax.set_ylabel(f"certified radius ({norm_label(case.norm)}, input units)")
    pb = p_b_spec(audit.settings)
    pb = "" if pb is None else f", p_B={pb}" if "," not in pb else ", p_B per p_A"
    shape = "".join(f", {k}={number_text(v)}" for k, v in case.custom_shape().items())
    ax.set_title(f"{case.certificate.name}: {norm_label(case.norm)}, {case.parameter_text}{shape}{pb}, "
                 f"d={audit.settings.dim} - {audit.verdict}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# -- markdown -------------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{round(100 * x, 2) + 0.0:.2f}%" if math.isfinite(x) else fmt(x)


def _num(x: float) -> str:
    return format(x, ".6g") if math.isfinite(x) else fmt(x)


def markdown(audit: Audit, stem: str, run: str, prov: dict) -> str:
    case, s = audit.case, audit.settings
    cert, ref = case.certificate, case.certificate.reference
    sm = summary(audit)
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
        f"R_C/R_U from {_num(sm['ratio_min'])} to {_num(sm['ratio_max'])} (median {_num(sm['ratio_median'])}), "
        f"largest gap {_pct(sm['gap_max'])}; largest excess R_C/R_hi - 1 = {excess_text(sm['excess_max'])} "
        f"(suspect above eps = {s.suspect_tolerance:g}).",
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
        "| p_A |" + (" p_B |" if s.general else "") + " claimed R_C | engine R_U | band [R_lo, R_hi] | R_C/R_U | "
        "gap | R_C/R_hi - 1 | verdict | direction | backend |",
        "|---|" + ("---|" if s.general else "") + "---|---|---|---|---|---|---|---|---|",
    ]
    for r in audit.rows:
        lines.append(f"| {r.p_a:g} |" + (f" {r.p_b:g} |" if s.general else "") +
                     f" {_num(r.claimed)} | {_num(r.radius)} | [{_num(r.lower)}, {_num(r.upper)}] | "
                     f"{_num(r.ratio)} | {_pct(r.gap)} | {excess_text(r.excess)} | {r.verdict} | {r.direction} | "
                     f"{r.backend} |")
    witnessed = [r for r in audit.rows if r.witness is not None]
    if witnessed:
        lines += ["", "## Witnesses", "",
                  "Each witness is delta = scale * v with ||delta|| = (R_hi + R_C)/2, below the claim; K(delta) "
                  "was measured on an independent run, and K <= 0 (upper end of its band) confirms the row. "
                  "`python -m unicr.audit --recheck " + stem + ".json` re-checks them again.",
                  "", "| p_A | direction (support) | scale | norm of delta | claimed R_C | K estimate | K band | "
                      "backend | level | status |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in witnessed:
            w, m = r.witness, r.margin
            lines.append(f"| {r.p_a:g} | {w.label} ({w.support}) | {_num(w.scale)} | {_num(w.delta_norm)} | "
                         f"{_num(r.claimed)} | {m['estimate']:.3g} | [{m['lower']:.3g}, {m['upper']:.3g}] | "
                         f"{margin_source(m)} | {m['confidence']:.6g} | "
                         f"{r.verdict} |")
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
        folder / f"{stem}.png": plot_png(audit),
        folder / f"{stem}.md": markdown(audit, stem, run, prov).encode(),
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
        lines += [f"    {r} --out {out.as_posix()}" for r in runs] + [""]
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
                     f"**{rec['verdict']}** (claim {rec['claim']}; R_C/R_U {_num(sm['ratio_min'])}-"
                     f"{_num(sm['ratio_max'])}, max gap {_pct(sm['gap_max'])}{excess}; {sm['suspect']} suspect, "
                     f"{sm['loose']} loose of {sm['points']} p_A{extra}; d={rec['settings']['dim']}) - "
                     f"{rec['reference']['cite']}")
    if (out / "optimality.md").exists():
        lines += ["", "Noise optimality ranking: [optimality.md](optimality.md)."]
    if (out / "golden" / "README.md").exists():
        lines += ["", "Golden case of `tests/test_audit_cli.py` (the test regenerates it and compares the numbers): "
                      "[golden/README.md](golden/README.md); rewrite it with "
                      "`UNICR_REGENERATE_GOLDEN=1 python -m pytest tests/test_audit_cli.py -k golden`."]
    lines += ["", "## Verdicts", "", VERDICT_METHOD, ""]
    path = out / "README.md"
    write_files({path: "\n".join(lines).encode()})
    return path
