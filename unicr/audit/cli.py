"""``python -m unicr.audit`` (also ``unicr-audit``): audit certificates, re-check witnesses, rank noises,
audit a published certification log (``--log FILE``, :mod:`.logaudit`).

Exit codes (:data:`EXIT_CODES`), so that a CI gate tells a finding from a crash:

- 0: done, whatever the verdicts (unless ``--fail-on`` says otherwise);
- 1: ``--fail-on`` triggered: a case is suspect (``--fail-on suspect``), or suspect or loose (``loose``),
  or a row of the ``--log`` is flagged (``flagged``);
- 2: bad usage or input: one line ``unicr-audit: error: ...`` on stderr naming the argument, plugin
  or device, no traceback. Every input (the cases, their claims, ``--device``, ``--out``) is checked
  before the first case is computed, so no report is written; a plugin's radius function that
  raises or returns nonsense (NaN, negative, not a number) is such an input error;
- 3: internal error (any other exception): one line ``unicr-audit: internal error: ...`` with a hint
  to rerun with ``--debug``, which prints the traceback (of any error);
- 130: interrupted (Ctrl-C); the reports written so far are complete.

``--help``, ``--list`` and the input errors found before a noise is built (the options, the
certificate selection, ``--out``, a ``--device`` other than cuda) answer without importing torch,
pandas or matplotlib: the modules that compute are imported where they are needed.

The cases of an audit run in ``--jobs`` worker processes (:mod:`.parallel`), each with ``--threads``
torch threads; reports are written here as cases finish and do not depend on either option. Off a
terminal, progress is one line per finished case on stderr instead of a bar.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import check_norm, cli_exit_code
from . import core, logaudit, parallel
from .verdicts import DEFAULT_SUSPECT_TOLERANCE, LOOSE, SUSPECT

__all__ = ["main", "build_parser", "parse_grid", "parse_p_b", "parse_shape", "check_device", "check_out",
           "UsageError", "EXIT_CODES"]

PROG = "python -m unicr.audit"
DEFAULT_GRID_SPEC = "0.55:0.99:45"
DEFAULT_SAMPLES = 100_000
DEFAULT_OUT = "results"
#: options of the log audit only, and options that a log audit does not take
LOG_ONLY = ("noise", "n", "alpha", "n0", "radii", "bonferroni")
NOT_WITH_LOG = ("certificate", "all", "rank", "list", "recheck", "scale", "p_a", "p_b", "samples")
#: exit code -> meaning (see the module docstring)
EXIT_CODES = {0: "done", 1: "--fail-on triggered", 2: "bad usage or input (one line on stderr)",
              3: "internal error (one line; --debug prints the traceback)", 130: "interrupted"}


class UsageError(ValueError):
    """Bad command-line usage (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _count(text: str) -> int:
    """An integer >= 1 (--jobs, --threads)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:<3} {text}" for code, text in EXIT_CODES.items())
    p = _Parser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, description=(
        "Audit published randomized-smoothing certified radii against the UniCR engine's numerical\n"
        "Neyman-Pearson worst case: tight, loose or suspect per p_A and per certificate."),
        epilog=f"'{PROG} rank ...' is short for '{PROG} --rank ...'.\n\nexit codes:\n{codes}")
    what = p.add_argument_group("what to do")
    what.add_argument("--certificate", "-c", action="append", metavar="NAME",
                      help="a catalog name, a family (pixeldp, yang), path/to/file.py:OBJECT or "
                           "package.module:OBJECT holding a Certificate or a list of them (repeatable)")
    what.add_argument("--all", action="store_true", help="audit every catalog entry")
    what.add_argument("--list", action="store_true", help="print the catalog (or the --certificate "
                                                           "selection) with claims and sources")
    what.add_argument("--recheck", metavar="FILE.json", help="re-evaluate the witnesses stored in an audit "
                                                             "JSON summary, a --json output or a witness file "
                                                             "(with --certificate PLUGIN for a plugin's own noise)")
    what.add_argument("--log", metavar="FILE", help="audit a certification log (Cohen et al.'s format, or unicr's) "
                                                    "against the --noise, --sigma, --n and --alpha it claims")
    what.add_argument("--rank", action="store_true", help="write the noise optimality ranking "
                                                          "(OUT/optimality.md) at --rank-dim/--rank-samples")
    sweep = p.add_argument_group("sweep")
    sweep.add_argument("--norm", action="append", metavar="P",
                       help="l_p norm: 1, 2, inf (repeatable; default: each norm of the certificate)")
    sweep.add_argument("--dim", type=int, default=3072, help="input dimension d (default 3072)")
    sweep.add_argument("--sigma", type=float, action="append",
                       help="per-coordinate noise standard deviation (repeatable; default 1.0)")
    sweep.add_argument("--scale", type=float, action="append", metavar="S",
                       help="the noise's own scale instead of --sigma, for families without a variance "
                            "(cauchy, lomax a <= 2, student-t nu <= 2); the certificate is evaluated at "
                            "the same scale (repeatable; not with --sigma)")
    sweep.add_argument("--p-a", action="append", metavar="GRID",
                       help="p_A values: start:stop:count and/or comma lists (repeatable; "
                            f"default {DEFAULT_GRID_SPEC})")
    sweep.add_argument("--p-b", metavar="P_B",
                       help="general (p_A, p_B) audit: one p_B for every p_A, or a comma list of one p_B per "
                            "p_A value (pairs, in the order of --p-a); 0 <= p_B < p_A, p_A + p_B <= 1. "
                            "Default: binary, p_B = 1 - p_A. Binary-domain certificates are skipped")
    sweep.add_argument("--samples", type=int, help=f"Monte Carlo draws (default {DEFAULT_SAMPLES}; with "
                                                   "--recheck: 10x the audit's)")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the engine run (default 0)")
    sweep.add_argument("--device", help="torch device: cpu (default), or cuda / cuda:N with a CUDA build of torch")
    sweep.add_argument("--threads", type=_count, default=1,
                       help="torch CPU threads per case (default 1; the same in serial and parallel runs, so "
                            "the bytes do not depend on --jobs)")
    sweep.add_argument("--jobs", type=_count, metavar="N",
                       help=f"run the cases in N worker processes (default: every core, here "
                            f"{parallel.default_jobs()}; 1: one after the other in this process); the reports "
                            "do not depend on it")
    sweep.add_argument("--tolerance", type=float, default=0.01, help="relative tolerance tau (default 0.01)")
    sweep.add_argument("--suspect-tolerance", type=float, default=DEFAULT_SUSPECT_TOLERANCE, metavar="EPS",
                       help="numerical tolerance eps: a row is suspect only if R_C > R_hi (1 + eps) "
                            f"(0 <= eps < 1; default {DEFAULT_SUSPECT_TOLERANCE:g}, a rounding allowance)")
    sweep.add_argument("--confidence", type=float, default=0.99, help="band confidence c (default 0.99)")
    sweep.add_argument("--backend", choices=("auto", "mc", "exact"), default="auto",
                       help="engine backend (default auto: deterministic where it applies)")
    sweep.add_argument("--search", choices=core.SEARCHES, default="sparse",
                       help="direction search (default sparse: k-sparse directions, axis to diagonal; "
                            "pso adds a particle swarm)")
    sweep.add_argument("--shape", action="append", metavar="KEY=VALUE",
                       help="noise shape parameter, e.g. a=3 (lomax) or beta=1.5 (general normal); repeatable")
    rank = p.add_argument_group("ranking")
    logs = p.add_argument_group("log audit (--log)")
    logs.add_argument("--noise", metavar="NAME", help="--log: the noise family the log claims (gaussian, laplace, ...)")
    logs.add_argument("--n", type=int, metavar="N", help="--log: the n estimation draws per input the log claims")
    logs.add_argument("--alpha", type=float, metavar="A", help="--log: the level alpha the log claims, in (0, 1)")
    logs.add_argument("--n0", type=int, metavar="N0", help="--log: the selection draws (recorded in the report only)")
    logs.add_argument("--bonferroni", action="store_true", default=None,
                      help="--log: the log comes from CERTIFY with p_b='bonferroni' (both bounds at alpha/2, "
                           "general radius): ceiling at (alpha/2)^(1/n); 'inconsistent' and 'recomputed' not checked")
    logs.add_argument("--radii", metavar="R,R,...", help="--log: radii of the certified-accuracy table "
                                                         f"(default 0, {logaudit.RADIUS_STEP:g}, ... past the largest radius)")
    rank.add_argument("--rank-dim", type=int, default=64, help="dimension of the ranking (default 64)")
    rank.add_argument("--rank-samples", type=int, default=20_000, help="draws of the ranking (default 20000)")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help=f"report directory (default {DEFAULT_OUT}/; --log: no report "
                                                  "files unless given)")
    out.add_argument("--json", action="store_true", help="machine-readable summary on stdout")
    out.add_argument("--fail-on", choices=("suspect", "loose", "flagged", "never"), default="never",
                     help="exit 1 if any case is suspect (suspect) or suspect or loose (loose), or with --log if "
                          "any row is flagged (flagged); default never")
    out.add_argument("--debug", action="store_true", help="on an error, print its traceback too")
    return p


def parse_grid(specs) -> tuple[float, ...]:
    """p_A values from 'start:stop:count' ranges (rounded to 6 decimals) and comma lists."""
    values = []
    for spec in specs:
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                if ":" in part:
                    start, stop, count = part.split(":")
                    if int(count) < 1:
                        raise ValueError
                    values += np.round(np.linspace(float(start), float(stop), int(count)), 6).tolist()
                else:
                    values.append(float(part))
            except ValueError:
                raise ValueError(f"invalid --p-a value {part!r}: expected start:stop:count or a comma list "
                                 "of probabilities") from None
    return tuple(values)


def parse_p_b(text, count: int) -> tuple[float, ...] | None:
    """--p-b: None (binary), one p_B, or a comma list of ``count`` values (one per p_A value)."""
    if text is None:
        return None
    parts = [part.strip() for part in str(text).split(",")]
    try:
        if not parts or any(not part for part in parts):
            raise ValueError
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise ValueError(f"invalid --p-b value {text!r}: expected a probability or a comma list of one "
                         "probability per p_A value") from None
    if len(values) not in (1, count):
        raise ValueError(f"--p-b holds {len(values)} values but the p_A grid has {count}: give one p_B, or one "
                         "per p_A value")
    return values


def parse_shape(items) -> dict[str, float]:
    """'KEY=VALUE' pairs as a dict of floats."""
    shape = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        try:
            if not sep or not key.strip():
                raise ValueError
            shape[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"invalid --shape {item!r}: expected KEY=VALUE with a number, e.g. beta=1.5") from None
    return shape


def check_device(name) -> None:
    """``--device``: None, cpu, or cuda / cuda:N where this torch sees that CUDA device (else UsageError;
    torch is imported for cuda only)."""
    if name is None:
        return
    if not re.fullmatch(r"(cpu|cuda)(:\d+)?", str(name)):
        raise UsageError(f"--device {name!r} is not supported; allowed: cpu, cuda, cuda:N")
    if not name.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count()
    if not count:
        raise UsageError(f"--device {name!r}: this torch sees no CUDA device (a CPU-only build, or no GPU); "
                         "allowed here: cpu")
    index = torch.device(name).index
    if index is not None and index >= count:
        raise UsageError(f"--device {name!r}: this torch sees {count} CUDA device{'s' if count > 1 else ''}; "
                         f"allowed: cpu, cuda, cuda:0 to cuda:{count - 1}")


def check_out(path) -> None:
    """``--out``: a writable directory, or a path where one can be created (else UsageError). Tried
    by creating and removing a temporary directory in it or in its nearest existing parent."""
    rule = "give a writable directory or a path where one can be created"
    existing = Path(path)
    try:
        while not (existing.exists() or existing.is_symlink()) and existing.parent != existing:
            existing = existing.parent
        if existing.is_dir():
            os.rmdir(tempfile.mkdtemp(prefix=".unicr-audit-", dir=existing))
            return
    except OSError as exc:
        raise UsageError(f"--out {str(path)!r}: cannot write in {str(existing)!r} ({exc.strerror or exc}); "
                         f"{rule}") from None
    raise UsageError(f"--out {str(path)!r} is a file; {rule}" if existing == Path(path) else
                     f"--out {str(path)!r} is under the file {str(existing)!r}; {rule}")


def _audit_settings(args) -> core.Settings:
    return _settings(args, args.dim, DEFAULT_SAMPLES if args.samples is None else args.samples)


def _replan(argv) -> tuple[list[core.Case], core.Settings]:
    """The cases and settings of a command line, planned again (in a spawned worker process)."""
    args = build_parser().parse_args(argv)
    settings = _audit_settings(args)
    return _plan(args, settings), settings


def _settings(args, dim: int, samples: int, *, general: bool = True) -> core.Settings:
    grid = parse_grid(args.p_a or [DEFAULT_GRID_SPEC])
    p_b = parse_p_b(args.p_b, len(grid)) if general else None
    try:
        return core.Settings(dim=dim, p_a=grid, samples=samples,
                             seed=args.seed, device=args.device, tolerance=args.tolerance,
                             confidence=args.confidence, backend=args.backend, search=args.search,
                             p_b=p_b, suspect_tolerance=args.suspect_tolerance)
    except ValueError as exc:
        if p_b is None or args.p_a or "p_A + p_B" not in str(exc):
            raise
        raise ValueError(f"{exc} (the default p_A grid runs from 0.55 to 0.99: give --p-a with p_A <= "
                         f"1 - p_B)") from None


def _selection(args, *, explicit: bool = False) -> list[tuple]:
    """(certificate, source) for each selected certificate; with ``explicit``, a third element: whether it
    was named on its own (an exact catalog name or a plugin object that is one certificate) rather than
    through --all, a family or a plugin list."""
    import certificates

    from . import plugins

    if args.all:
        selected = [(c, "catalog", False) for c in certificates.catalog()]
    else:
        selected = []
        for spec in args.certificate or ():
            loaded = plugins.load(spec)
            alone = len(loaded) == 1 and (plugins.is_plugin(str(spec).strip())
                                          or loaded[0][0].name == str(spec).strip().lower())
            selected += [(c, source, alone) for c, source in loaded]
    names = [c.name for c, _, _ in selected]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup and len({id(c) for c, _, _ in selected if c.name == dup[0]}) > 1:
        raise ValueError(f"two different certificates are named {dup[0]!r}; their reports would collide")
    seen, unique = {}, []
    for c, source, alone in selected:
        if id(c) not in seen:
            seen[id(c)] = len(unique)
            unique.append((c, source, alone))
        elif alone:
            i = seen[id(c)]
            unique[i] = unique[i][:2] + (True,)
    return unique if explicit else [(c, source) for c, source, _ in unique]


def _general_selection(selected, notes: list[str]) -> list[tuple]:
    """A general audit (--p-b): binary certificates named on their own are an error; those selected
    through --all, a family or a plugin list are skipped with a note."""
    named = [c.name for c, _, alone in selected if alone and c.domain == "binary"]
    if named:
        raise ValueError(f"certificate {named[0]!r} is binary (p_B = 1 - p_A) and cannot be audited at a given "
                         "--p-b; drop --p-b or the certificate")
    binary = [c.name for c, _, _ in selected if c.domain == "binary"]
    kept = [(c, source) for c, source, _ in selected if c.domain != "binary"]
    if not kept:
        raise ValueError(f"--p-b needs a certificate of the general domain, but every selected one is binary "
                         f"(p_B = 1 - p_A): {', '.join(binary)}")
    if binary:
        notes.append(f"note: --p-b: skipped {len(binary)} binary certificate{'s' if len(binary) > 1 else ''} "
                     f"(p_B = 1 - p_A only): {', '.join(binary)}")
    return kept


def _plan(args, settings, notes: list[str] | None = None) -> list[core.Case]:
    """Every case of the run, validated and with its claim evaluated, before any engine run. Notes
    for the user (binary certificates skipped by --p-b) are appended to ``notes``."""
    from certificates import norm_label

    notes = [] if notes is None else notes
    if settings.general:
        selected = _general_selection(_selection(args, explicit=True), notes)
    else:
        selected = _selection(args)
    norms = [check_norm(n) for n in args.norm or ()]
    for p in norms:
        if not any(c.covers(p) for c, _ in selected):
            covered = "; ".join(f"{c.name}: {', '.join(norm_label(q) for q in c.norms)}" for c, _ in selected)
            raise ValueError(f"norm {norm_label(p)} is not covered by the selected certificates ({covered})")
    shape = parse_shape(args.shape)
    accepted = {s.name for c, _ in selected for s in c.noise.shape}
    unknown = sorted(set(shape) - accepted)
    if unknown:
        raise ValueError(f"shape parameter {unknown[0]!r} is not a parameter of the selected certificates' "
                         f"noise (accepted: {', '.join(sorted(accepted)) or 'none'})")
    cases = []
    for cert, source in selected:
        names = {s.name for s in cert.noise.shape}
        own = {k: v for k, v in shape.items() if k in names}
        for p in [q for q in norms if cert.covers(q)] if norms else cert.norms:
            if args.scale:
                for scale in args.scale:
                    cases.append(core.plan(cert, p, None, settings, shape=own, source=source, scale=scale))
            else:
                for sigma in args.sigma or [1.0]:
                    cases.append(core.plan(cert, p, sigma, settings, shape=own, source=source))
    return cases


def run_command(args, settings: core.Settings | None, rank_settings: core.Settings | None) -> str:
    """The canonical command of a run (output-only options left out), for reports."""
    from . import report

    parts = [PROG]
    parts += ["--all"] if args.all else [f"--certificate {c}" for c in args.certificate or ()]
    parts += [f"--norm {n}" for n in args.norm or ()]
    if args.scale:
        parts += [f"--scale {s!r}" for s in args.scale]
    else:
        parts += [f"--sigma {s!r}" for s in args.sigma or [1.0]]
    parts += [f"--shape {s}" for s in args.shape or ()]
    if settings is not None:
        parts += report.settings_args(settings)
    if rank_settings is not None:
        if settings is None:
            parts += report.settings_args(rank_settings, ranking=True)
        parts += ["--rank", "--rank-dim", str(rank_settings.dim), "--rank-samples", str(rank_settings.samples)]
    return " ".join(parts)


def _print_table(rows, headers, stream) -> None:
    from tabulate import tabulate

    print(tabulate(rows, headers=headers, disable_numparse=True), file=stream)


def _list(args) -> int:
    import certificates
    from certificates import norm_label

    from . import report

    selected = _selection(args) if args.certificate else [(c, "catalog") for c in certificates.catalog()]
    if args.json:
        print(report.dumps([{"name": c.name, "source": s, "noise": c.noise.family,
                             "norms": [norm_label(p) for p in c.norms], "claim": c.claim, "domain": c.domain,
                             "reference": c.reference.cite(), "title": c.reference.title,
                             "code": c.reference.code, "notes": c.notes} for c, s in selected]), end="")
        return 0
    _print_table([(c.name, c.noise.family, ", ".join(norm_label(p) for p in c.norms), c.claim, c.domain,
                   c.reference.cite(), c.reference.code or "-") for c, _ in selected],
                 ("certificate", "noise", "norms", "claim", "domain", "source", "code"), sys.stdout)
    return 0


def _threads(count: int) -> None:
    """Torch CPU threads of the computations in this process (imports torch)."""
    import torch

    torch.set_num_threads(count)


def _recheck(args) -> int:
    from . import plugins, recheck, report

    for spec in args.certificate or ():   # a plugin registers the noises its witnesses refer to
        plugins.load(spec)
    check_device(args.device)
    _threads(args.threads)
    results = recheck(args.recheck, samples=args.samples, backend=args.backend, device=args.device)
    if args.json:
        print(report.dumps(results), end="")
        return 0
    if not results:
        print(f"no witnesses in {args.recheck}")
        return 0
    rows = [(r["certificate"], f"{r['p_a']:g}", report.fmt(r["delta_norm"]),
             "-" if r["claimed"] is None else format(r["claimed"], ".6g"),
             f"{r['estimate']:.3g}", f"[{r['lower']:.3g}, {r['upper']:.3g}]",
             report.margin_source(r), f"{r['confidence']:.6g}",
             "holds" if r["holds"] else "does not hold") for r in results]
    _print_table(rows, ("certificate", "p_A", "||delta||", "claimed", "K", "K band", "backend", "level", "witness"),
                 sys.stdout)
    return 0


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def parse_radii(text) -> tuple[float, ...] | None:
    """--radii: a comma list of radii, or None (the default radii)."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in str(text).split(","))
    except ValueError:
        raise ValueError(f"invalid --radii {text!r}: expected a comma list of radii, e.g. 0,0.25,0.5") from None


def log_command(args) -> str:
    """The canonical command of a log audit (output-only options left out), for reports."""
    parts = [PROG, "--log", shlex.quote(args.log), "--noise", args.noise, "--sigma", repr(args.sigma[0]),
             "--n", str(args.n), "--alpha", repr(args.alpha)]
    parts += ["--norm", args.norm[0]] if args.norm else []
    parts += ["--dim", str(args.dim)] + [f"--shape {s}" for s in args.shape or ()]
    parts += ["--n0", str(args.n0)] if args.n0 is not None else []
    parts += ["--radii", args.radii] if args.radii else []
    parts += ["--bonferroni"] if args.bonferroni else []
    return " ".join(parts)


def _log(args) -> int:
    """--log: audit a certification log (:mod:`.logaudit`). Every input is checked before the
    radius function is built (the first import of torch)."""
    given = [_option(name) for name in NOT_WITH_LOG if getattr(args, name)]
    if given:
        raise UsageError(f"--log cannot be combined with {given[0]}")
    missing = [_option(name) for name in ("noise", "sigma", "n", "alpha") if getattr(args, name) is None]
    if missing:
        raise UsageError(f"--log needs {', '.join(missing)} (the parameters the log claims)")
    if len(args.sigma) > 1 or len(args.norm or ()) > 1:
        raise UsageError("--log takes one --sigma and at most one --norm")
    if args.fail_on not in ("flagged", "never"):
        raise UsageError(f"--fail-on {args.fail_on} applies to certificate audits; with --log give --fail-on flagged")
    settings = logaudit.LogSettings(noise=args.noise, sigma=args.sigma[0], n=args.n, alpha=args.alpha,
                                    norm=(args.norm or ["2"])[0], dim=args.dim,
                                    shape=tuple(sorted(parse_shape(args.shape).items())), n0=args.n0,
                                    radii=parse_radii(args.radii), bonferroni=bool(args.bonferroni))
    if args.out is not None:
        check_out(args.out)
    log = logaudit.load(args.log)
    radius = logaudit.radius_function(settings)
    # every input is checked: now compute and write
    result = logaudit.audit_log(log, settings, radius)
    command = log_command(args)
    written = logaudit.write(result, args.out, command) if args.out is not None else []
    print(logaudit.summary(result, written), end="", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        from . import report

        print(report.dumps(logaudit.record(result, command)), end="")
    return 1 if args.fail_on == "flagged" and result.findings else 0


def _main(args, argv: list[str]) -> int:
    if args.log is not None:
        return _log(args)
    given = [_option(name) for name in LOG_ONLY if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{given[0]} applies to --log only")
    if args.fail_on == "flagged":
        raise UsageError("--fail-on flagged applies to --log only")
    if args.out is None:
        args.out = DEFAULT_OUT
    if args.list:
        return _list(args)
    if args.recheck:
        return _recheck(args)
    if args.all and args.certificate:
        raise UsageError("give either --certificate or --all, not both")
    if args.sigma and args.scale:
        raise UsageError("give either --sigma or --scale, not both")
    auditing = bool(args.all or args.certificate)
    if not (auditing or args.rank):
        raise UsageError("nothing to do: give --certificate NAME, --all, --list, --recheck FILE, --rank or --log FILE")
    if args.rank and args.scale:
        raise UsageError("--rank compares noises at equal sigma: give --sigma, not --scale")
    if args.rank and args.p_b is not None:
        raise UsageError("--rank is a binary ranking (p_B = 1 - p_A): run it without --p-b")
    if args.p_b is not None and not auditing:
        raise UsageError("--p-b needs certificates to audit (--certificate or --all)")
    settings = _audit_settings(args) if auditing else None
    rank_settings = _settings(args, args.rank_dim, args.rank_samples, general=False) if args.rank else None
    if args.rank and len(args.sigma or [1.0]) > 1:
        raise UsageError("--rank takes one --sigma")
    check_device(args.device)
    check_out(args.out)
    notes: list[str] = []
    cases = _plan(args, settings, notes) if auditing else []
    _threads(args.threads)
    for note in notes:
        print(note, file=sys.stderr)
    # every input is checked: now the modules that compute and write
    from certificates import norm_label
    from tqdm import tqdm

    from . import ranking, report

    command = run_command(args, settings, rank_settings)
    prov = report.provenance()
    audits = []
    with tqdm(total=len(cases) + (len(ranking.FAMILIES) * len(ranking.NORMS) if args.rank else 0),
              file=sys.stderr, disable=None, unit="curve", desc="audit") as bar:
        lines = bar.disable  # off a terminal: one line per finished case instead of the bar
        finished = []

        def done(result, seconds):
            report.write_audit(result, args.out, command, prov)
            finished.append(result)
            bar.set_postfix_str(result.case.label)
            bar.update()
            if lines:
                print(f"[{len(finished)}/{len(cases)}] {result.case.label}: {result.verdict} ({seconds:.1f} s)",
                      file=sys.stderr, flush=True)

        if cases:
            audits = parallel.run_cases(cases, settings, jobs=args.jobs or parallel.default_jobs(),
                                        threads=args.threads, done=done, replan=_replan, argv=argv)
        if args.rank:
            bar.set_postfix_str("noise ranking")
            start = time.perf_counter()
            result = ranking.rank(rank_settings, (args.sigma or [1.0])[0], progress=bar.update)
            ranking.write_ranking(result, args.out, command, prov)
            if lines:
                curves = len(ranking.FAMILIES) * len(ranking.NORMS)
                print(f"[rank] noise ranking: {curves} curves at d={rank_settings.dim} "
                      f"({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
    if audits or args.rank:
        report.write_index(args.out)
    stream = sys.stderr if args.json else sys.stdout
    if audits:
        table = []
        for a in audits:
            sm, (folder, stem) = report.summary(a), report.paths_for(args.out, a)
            extra = "".join(f" {k}={core.number_text(v)}" for k, v in a.case.custom_shape().items())
            table.append((a.case.certificate.name, norm_label(a.case.norm), a.case.parameter_text + extra,
                          a.case.certificate.claim, a.verdict.upper(),
                          "/".join(str(sm[k]) for k in ("tight", "loose", "suspect", "unconfirmed")),
                          f"{sm['ratio_min']:.4f}-{sm['ratio_max']:.4f}", f"{100 * sm['gap_max']:.2f}%",
                          report.excess_text(sm["excess_max"]), str(folder / f"{stem}.md")))
        _print_table(table, ("certificate", "norm", "noise", "claim", "verdict", "t/l/s/u", "R_C/R_U",
                             "max gap", "max R_C/R_hi-1", "report"), stream)
        if settings.general:
            pb = report.p_b_spec(settings)
            print(f"general audit: p_B = {pb}" if "," not in pb else
                  f"general audit: one p_B per p_A ({len(settings.p_b)} pairs, {min(settings.p_b):g} to "
                  f"{max(settings.p_b):g})", file=stream)
    if args.rank:
        print(f"noise optimality ranking: {args.out}/optimality.md", file=stream)
    if args.json:
        print(report.dumps([report.record(a, command) for a in audits]), end="")
    failing = {"suspect": {SUSPECT}, "loose": {SUSPECT, LOOSE}, "never": set()}[args.fail_on]
    return 1 if any(a.verdict in failing for a in audits) else 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (:data:`EXIT_CODES`, see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rank"]:
        argv = ["--rank"] + argv[1:]
    parsed = []

    def run() -> int:
        parsed.append(build_parser().parse_args(argv))
        return _main(parsed[0], argv)

    return cli_exit_code("unicr-audit", run, lambda: bool(parsed) and parsed[0].debug,
                       "reports written so far are complete")
