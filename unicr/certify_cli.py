"""``python -m unicr.certify`` (also ``unicr-certify``): certify a data set with a model into a
Cohen-format log, merge shard logs, draw certified-accuracy curves. User guide: docs/certify.md.

- ``python -m unicr.certify --model SPEC --data DATA --noise NAME --sigma S --norm P --out LOG``:
  each selected input i is certified with :func:`unicr.certify` at seed ``input_seed(seed, i)``
  (:mod:`unicr.streams`), so a row depends on (seed, i) only, never on the shard or the order; one
  row per input goes to LOG (:mod:`unicr.logs`). The inputs are Cohen's ``--skip``/``--max``
  selection (locuslab/smoothing ``code/certify.py``) restricted to ``--start <= i < --stop``.
- ``python -m unicr.certify merge SHARD... --out LOG``: the shards' rows in index order.
- ``python -m unicr.certify curve LOG... --out STEM``: STEM.png, STEM.csv, the accuracy table and
  the robustness score (Hong et al., ECCV 2022, Eq. 5).

Exit codes (:data:`EXIT_CODES`): 0 done; 2 bad usage or input, one line ``unicr-certify: error:
...`` on stderr naming the argument; every input is checked (the model probed once on a clean
input) before the first noisy forward pass, and no log is written; 3 internal error, one line with
a hint to rerun with ``--debug`` (which prints the traceback of any error); 130 interrupted.
LOG appears only when the run completes: rows are flushed to a hidden temporary sibling as they
finish and moved onto LOG at the end; an error or an interrupt removes the temporary.

``--help`` and the argument errors found before the data are read import neither torch nor
matplotlib.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import specs
from .audit.cli import UsageError, check_device, parse_shape
from .errors import check_norm, cli_exit_code

__all__ = ["main", "build_parser", "Settings", "Data", "plan", "load_data", "select", "run", "EXIT_CODES"]

PROG = "python -m unicr.certify"
#: exit code -> meaning (see the module docstring)
EXIT_CODES = {0: "done", 2: "bad usage or input (one line on stderr; no log written)",
              3: "internal error (one line; --debug prints the traceback)", 130: "interrupted (no log written)"}
DEFAULT_RADII = "0,0.25,0.5,0.75,1"
DATA_FORMS = "a .npz file with arrays x and y, a .pt/.pth file, or path/to/file.py:OBJECT / package.module:OBJECT"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _parser(prog: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:<3} {text}" for code, text in EXIT_CODES.items())
    return _Parser(prog=prog, description=description, allow_abbrev=False,
                   formatter_class=argparse.RawDescriptionHelpFormatter,
                   epilog=f"{epilog}exit codes:\n{codes}\n\nUser guide: docs/certify.md")


def build_parser() -> argparse.ArgumentParser:
    p = _parser(PROG, (
        "Certify every selected input of a data set with a model under randomized smoothing (Cohen et al.'s\n"
        "CERTIFY for any unicr noise and l_p norm) and write one row per input to a Cohen-format log."),
        f"other commands:\n  {PROG} merge SHARD... --out LOG       join shard logs\n"
        f"  {PROG} curve LOG... --out STEM       certified-accuracy curve, table, robustness score\n\n")
    what = p.add_argument_group("what to certify")
    what.add_argument("--model", required=True, metavar="SPEC",
                      help="path/to/file.py:OBJECT or package.module:OBJECT: a callable from a batch (B, *input "
                           "shape) to labels (B,) or logits (B, C); a torch.nn.Module is put in eval mode and "
                           "moved to --device")
    what.add_argument("--data", required=True, metavar="DATA",
                      help=f"{DATA_FORMS} naming a sequence of (x, label) pairs (e.g. a torch Dataset)")
    what.add_argument("--noise", required=True, metavar="NAME",
                      help="a unicr noise name (unicr.noise_names()), or path/to/file.py:OBJECT naming a "
                           "unicr.Noise instance (used as it is) or a factory called as OBJECT(dim=d, sigma=S "
                           "or scale=S, **shape), e.g. a Noise subclass; d = the flattened input size")
    scale = what.add_mutually_exclusive_group()
    scale.add_argument("--sigma", type=float, metavar="S", help="per-coordinate noise standard deviation, > 0")
    scale.add_argument("--scale", type=float, metavar="S",
                       help="the noise's own scale instead, for families without a variance (cauchy, ...)")
    what.add_argument("--shape", action="append", metavar="KEY=VALUE",
                      help="noise shape parameter, e.g. beta=1.5 (general-normal); repeatable")
    what.add_argument("--norm", required=True, metavar="P", help="l_p norm of the radius: 1, 2, inf (any p > 0)")
    cert = p.add_argument_group("CERTIFY")
    cert.add_argument("--n0", type=int, default=100, help="selection draws per input (default 100)")
    cert.add_argument("--n", type=int, default=100_000, help="estimation draws per input (default 100000)")
    cert.add_argument("--alpha", type=float, default=0.001, help="failure probability, 0 < alpha < 1 "
                                                                 "(default 0.001)")
    cert.add_argument("--p-b", choices=("binary", "bonferroni"), default="binary",
                      help="binary: p_B = 1 - p_A_lower (default); bonferroni: also bound the runner-up")
    cert.add_argument("--batch", type=int, default=1000, help="noisy copies per forward pass (default 1000); "
                                                               "the rows do not depend on it")
    cert.add_argument("--seed", type=int, default=0, help="seed, >= 0 (default 0); input i draws from "
                                                          "input_seed(seed, i)")
    cert.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    sel = p.add_argument_group("which inputs (Cohen's loop: for i in range(N): if i % skip != 0: continue; "
                               "if i == max: break; then start <= i < stop)")
    sel.add_argument("--skip", type=int, default=1, help="certify every skip-th input, i %% skip == 0 (default 1)")
    sel.add_argument("--max", type=int, default=-1,
                     help="stop at input max (only if max %% skip == 0, as in Cohen's code); -1: no limit (default)")
    sel.add_argument("--start", type=int, default=0, help="first index of this shard (default 0)")
    sel.add_argument("--stop", type=int, help="end of this shard, exclusive (default: the data set's size; "
                                              "larger values are clipped)")
    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, metavar="LOG",
                     help="the log file; written when the run completes (parent folders are created)")
    out.add_argument("--cohen", action="store_true", help="write Cohen's six columns only")
    out.add_argument("--no-time", action="store_true",
                     help="write time 0:00:00, so that the same seed gives the same bytes")
    out.add_argument("--radii", default=DEFAULT_RADII, metavar="LIST",
                     help=f"radii of the certified accuracies in the summary line (default {DEFAULT_RADII})")
    out.add_argument("--every", type=int, default=100, metavar="K",
                     help="off a terminal, a progress line on stderr every K inputs (default 100)")
    out.add_argument("--debug", action="store_true", help="on an error, print its traceback too")
    return p


def build_merge_parser() -> argparse.ArgumentParser:
    p = _parser(f"{PROG} merge", "Join shard logs in index order: the result is the log of one unsharded run.\n"
                "The shards must have the same columns and no index in common.")
    p.add_argument("shards", nargs="+", metavar="SHARD", help="shard logs")
    p.add_argument("--out", required=True, metavar="LOG", help="the merged log")
    p.add_argument("--debug", action="store_true", help="on an error, print its traceback too")
    return p


def build_curve_parser() -> argparse.ArgumentParser:
    p = _parser(f"{PROG} curve", "Certified accuracy against radius for one or more logs (e.g. one per sigma):\n"
                "STEM.png and STEM.csv, the accuracy table, and the robustness score of Hong et al.\n"
                "(ECCV 2022, Eq. 5): the integral over R of the maximum over the logs of Acc(R).")
    p.add_argument("logs", nargs="+", metavar="LOG", help="logs (unicr's or Cohen's columns)")
    p.add_argument("--out", required=True, metavar="STEM", help="writes STEM.png and STEM.csv")
    p.add_argument("--label", action="append", metavar="NAME",
                   help="the curve's name, one per LOG in order (default: the file names without suffix)")
    p.add_argument("--radii", default=DEFAULT_RADII, metavar="LIST",
                   help=f"radii of the table (default {DEFAULT_RADII})")
    p.add_argument("--debug", action="store_true", help="on an error, print its traceback too")
    return p


# -- checks of single arguments -------------------------------------------------------------------

def _at_least(option: str, value: int, low: int) -> int:
    if value < low:
        raise UsageError(f"{option} must be an integer >= {low}, got {value}")
    return value


def parse_radii(text: str) -> tuple[float, ...]:
    """A comma list of finite radii >= 0."""
    try:
        radii = tuple(float(part) for part in str(text).split(","))
    except ValueError:
        radii = ()
    if not radii or not all(math.isfinite(r) and r >= 0 for r in radii):
        raise UsageError(f"--radii must be a comma list of finite numbers >= 0, got {text!r}")
    return radii


def check_file_out(path, option: str = "--out") -> Path:
    """A file path that can be written: not a folder, and its nearest existing parent a writable folder
    (tried by creating and removing a temporary file there)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a folder; give the path of a file")
    existing = path.parent
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {str(path)!r} is under the file {str(existing)!r}; give a path in a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".unicr-certify-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{option} {str(path)!r}: cannot write in {str(existing)!r} ({exc.strerror or exc})") from None
    return path


# -- the data set ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Data:
    """A data set: ``size`` inputs, each of ``shape``; ``item(i)`` is (x_i as a tensor, its label)."""

    source: str
    size: int
    shape: tuple[int, ...]
    item: Callable[[int], tuple]


def _label(value, where: str) -> int:
    try:
        label = float(value)
    except (TypeError, ValueError, RuntimeError):
        label = math.nan
    if not (label.is_integer() and label >= 0):
        raise ValueError(f"{where}: labels must be integers >= 0, got {value!r}")
    return int(label)


def _arrays(x, y, source: str) -> Data:
    """Data from x (N, *input shape) and y (N,)."""
    import torch

    try:
        x, y = torch.as_tensor(x), torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"--data {source!r}: x and y must be numeric arrays: {specs.one_line(exc)}") from None
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"--data {source!r}: x must have shape (N, *input shape) with N >= 1, got {tuple(x.shape)}")
    if x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"--data {source!r}: x must hold real numbers, got dtype {x.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"--data {source!r}: y must have shape (N,) = ({x.shape[0]},) to match x of shape "
                         f"{tuple(x.shape)}, got {tuple(y.shape)}")
    if y.is_complex() or y.dtype == torch.bool or (y.is_floating_point() and not bool((y == y.round()).all())) \
            or bool((y < 0).any()):
        raise ValueError(f"--data {source!r}: y must hold integer labels >= 0")
    y = y.to(torch.int64)
    return Data(source, int(x.shape[0]), tuple(x.shape[1:]), lambda i: (x[i], int(y[i])))


def _sequence(dataset, source: str) -> Data:
    """Data from a sequence of (x, label) pairs, read one item at a time (each checked as it is read)."""
    import torch

    try:
        size = len(dataset)
    except TypeError:
        raise ValueError(f"--data {source!r} must be a sequence of (x, label) pairs (len() and [i]), got "
                         f"{type(dataset).__name__}") from None
    if size < 1:
        raise ValueError(f"--data {source!r} holds no inputs")

    def item(i: int, shape=None):
        where = f"--data {source!r} item {i}"
        try:
            x, label = dataset[i]
            x = torch.as_tensor(x)
        except Exception as exc:
            raise ValueError(f"{where} must be an (x, label) pair with x a tensor or array: "
                             f"{specs.one_line(exc)}") from None
        if shape is not None and tuple(x.shape) != shape:
            raise ValueError(f"{where} has shape {tuple(x.shape)}, item 0 has {shape}: inputs must share one shape")
        return x, _label(label, where)

    shape = tuple(item(0)[0].shape)
    return Data(source, size, shape, lambda i: item(i, shape))


def load_data(text: str, modules: dict | None = None) -> Data:
    """``--data``: a .npz with arrays ``x`` (N, *input shape) and ``y`` (N,) of integer labels; a .pt or
    .pth saved by torch.save holding {"x": ..., "y": ...} or (x, y) (read with weights_only=True:
    tensors, no pickled code); or a spec naming a sequence of (x, label) pairs."""
    suffix = Path(text).suffix.lower()
    if suffix in (".npz", ".pt", ".pth"):
        if not Path(text).is_file():
            raise ValueError(f"--data {text!r} does not exist or is not a file")
        return _arrays(*_read_arrays(text, suffix), text)
    if ":" in text:
        return _sequence(specs.load(text, "--data", forms=f"expected {DATA_FORMS}", modules=modules), text)
    raise ValueError(f"--data {text!r}: expected {DATA_FORMS}")


def _read_arrays(text: str, suffix: str) -> tuple:
    """(x, y) of a .npz, .pt or .pth file."""
    if suffix == ".npz":
        import numpy as np

        try:
            with np.load(text, allow_pickle=False) as archive:
                found = {key: archive[key] for key in archive.files}
        except Exception as exc:
            raise ValueError(f"--data {text!r} is not a readable .npz file: {specs.one_line(exc)}") from None
    else:
        import torch

        try:
            found = torch.load(text, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"--data {text!r}: torch.load(weights_only=True) failed: {specs.one_line(exc)}") from None
        if isinstance(found, (tuple, list)) and len(found) == 2:
            found = dict(zip("xy", found))
    if not isinstance(found, dict) or not {"x", "y"} <= set(found):
        keys = sorted(found) if isinstance(found, dict) else type(found).__name__
        raise ValueError(f"--data {text!r} must hold arrays 'x' (N, *input shape) and 'y' (N,), found {keys}")
    return found["x"], found["y"]


# -- the run --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """One certification run, every input checked: the inputs ``indices`` of ``data`` are certified
    by ``model`` under ``noise`` in the l_``norm`` norm with CERTIFY's ``n0``, ``n``, ``alpha`` and
    ``p_b``, in batches of ``batch`` on ``device``, input i from seed ``input_seed(seed, i)``; rows
    go to ``out`` (Cohen's columns only if ``cohen``; wall times if ``timed``). ``radii``: those of
    the summary; ``every``: inputs per progress line off a terminal."""

    model: Callable
    data: Data
    noise: object
    norm: float
    n0: int
    n: int
    alpha: float
    p_b: str
    batch: int
    seed: int
    device: str
    indices: tuple[int, ...]
    out: Path
    cohen: bool
    timed: bool
    radii: tuple[float, ...]
    every: int


def select(size: int, skip: int, maximum: int, start: int, stop: int | None) -> tuple[int, ...]:
    """The indices Cohen's loop visits (``for i in range(size): if i % skip != 0: continue; if i ==
    max: break``, locuslab/smoothing ``code/certify.py``), those with start <= i < stop."""
    chosen = []
    for i in range(0, size, skip):
        if i == maximum:
            break
        chosen.append(i)
    end = size if stop is None else stop
    return tuple(i for i in chosen if start <= i < end)


def _model(spec: str, device: str, modules: dict):
    import torch

    model = specs.load(spec, "--model", modules=modules)
    if not callable(model):
        raise ValueError(f"--model {spec!r} must be callable on a batch (B, *input shape) -> labels (B,) or "
                         f"logits (B, C), got {type(model).__name__}")
    if isinstance(model, torch.nn.Module):
        model = model.eval().to(device)
    return model


def _probe(model, spec: str, x, device: str) -> None:
    """The model on one clean input, as certify feeds it: labels (1,) >= 0 or logits (1, C)."""
    import torch

    from .certification import _labels

    batch = x.to(device) if x.is_floating_point() else x.to(device, torch.get_default_dtype())
    batch = batch.unsqueeze(0)
    try:
        with torch.no_grad():
            out = model(batch)
    except Exception as exc:
        raise ValueError(f"--model {spec!r} failed on one clean input batch of shape {tuple(batch.shape)} and "
                         f"dtype {batch.dtype}: {specs.one_line(exc)}") from None
    try:
        labels = _labels(out, 1, torch.device(device))
    except ValueError as exc:
        raise ValueError(f"--model {spec!r}: on one clean input batch of shape {tuple(batch.shape)}: {exc}") from None
    if bool((labels < 0).any()):
        raise ValueError(f"--model {spec!r} must return labels >= 0 (or logits), got {labels.tolist()}")


def _noise(spec: str, dim: int, scale: dict, shape: dict, modules: dict):
    """``--noise`` at dimension ``dim``: a registered family built with ``scale`` ({"sigma": S} or
    {"scale": S}) and ``shape``, or a spec naming a unicr.Noise (used as it is) or a factory called
    as OBJECT(dim=dim, **scale, **shape)."""
    from .noises import Noise, noise

    if not specs.is_spec(spec):
        return noise(spec, dim=dim, **scale, **shape)
    obj = specs.load(spec, "--noise", modules=modules)
    if isinstance(obj, Noise):
        if scale or shape:
            raise UsageError(f"--noise {spec!r} is a unicr.Noise instance with its own parameters: drop "
                             "--sigma, --scale and --shape")
        made = obj
    elif callable(obj):
        try:
            made = obj(dim=dim, **scale, **shape)
        except Exception as exc:
            raise ValueError(f"--noise {spec!r}: calling it with dim={dim}"
                             + "".join(f", {k}={v!r}" for k, v in {**scale, **shape}.items())
                             + f" failed: {specs.one_line(exc)}") from None
        if not isinstance(made, Noise):
            raise ValueError(f"--noise {spec!r} must return a unicr.Noise, got {type(made).__name__}")
    else:
        raise ValueError(f"--noise {spec!r} must be a unicr.Noise, a Noise subclass or a factory, got "
                         f"{type(obj).__name__}")
    if made.dim != dim:
        raise ValueError(f"--noise {spec!r} has dimension {made.dim}, the inputs have {dim} elements "
                         f"(the flattened input size)")
    return made


def plan(args) -> Settings:
    """The settings of a certification command line, every input checked (UsageError/ValueError
    naming the argument); the model is probed on the first selected input."""
    n0, n = _at_least("--n0", args.n0, 1), _at_least("--n", args.n, 1)
    if not 0.0 < args.alpha < 1.0:
        raise UsageError(f"--alpha must lie in the open interval (0, 1), got {args.alpha!r}")
    batch, seed = _at_least("--batch", args.batch, 1), _at_least("--seed", args.seed, 0)
    skip, start = _at_least("--skip", args.skip, 1), _at_least("--start", args.start, 0)
    _at_least("--max", args.max, -1)
    _at_least("--every", args.every, 1)
    if args.stop is not None and args.stop < start:
        raise UsageError(f"--stop must be >= --start = {start}, got {args.stop}")
    scale = {"sigma": args.sigma} if args.sigma is not None else {} if args.scale is None else {"scale": args.scale}
    for name, value in scale.items():
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name} must be a finite number > 0, got {value!r}")
    if not scale and not specs.is_spec(args.noise):
        raise UsageError(f"--noise {args.noise!r} needs --sigma S (or --scale S for a family without a variance)")
    shape = parse_shape(args.shape)
    norm = check_norm(args.norm, "--norm")
    radii = parse_radii(args.radii)
    check_device(args.device)
    out = check_file_out(args.out)
    modules: dict = {}   # a file named by several specs runs once
    data = load_data(args.data, modules)
    indices = select(data.size, skip, args.max, start, args.stop)
    model = _model(args.model, args.device, modules)
    dim = math.prod(data.shape)
    noise = _noise(args.noise, dim, scale, shape, modules)
    _probe(model, args.model, data.item(indices[0] if indices else 0)[0], args.device)
    return Settings(model=model, data=data, noise=noise, norm=norm, n0=n0, n=n, alpha=args.alpha, p_b=args.p_b,
                    batch=batch, seed=seed, device=args.device, indices=indices, out=out, cohen=args.cohen,
                    timed=not args.no_time, radii=radii, every=args.every)


def run(settings: Settings) -> Iterator:
    """The LogRow of each selected input, in index order, as it is certified."""
    from .certification import certify
    from .logs import LogRow
    from .streams import input_seed

    s = settings
    for i in s.indices:
        x, label = s.data.item(i)
        began = time.perf_counter()
        result = certify(s.model, x, s.noise, s.norm, n0=s.n0, n=s.n, alpha=s.alpha, batch_size=s.batch,
                         seed=input_seed(s.seed, i), device=s.device, p_b=s.p_b)
        yield LogRow.from_certification(i, label, result, time.perf_counter() - began if s.timed else None)


@contextmanager
def _partial_log(path: Path, cohen: bool):
    """A writer of rows, each flushed to a hidden temporary sibling of ``path``; the temporary becomes
    ``path`` (``os.replace``) when the block completes and is removed if it raises."""
    from .logs import format_row, header

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as file:
            def line(text: str) -> None:
                file.write(text + "\n")
                file.flush()

            line(header(cohen))
            yield lambda row: line(format_row(row, cohen))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def summary(rows, radii, out) -> str:
    """One line: inputs, abstentions, accuracy, certified accuracy at ``radii``, robustness score."""
    from .logs import certified_accuracy, robustness_score

    accuracy = sum(r.correct for r in rows) / len(rows) if rows else 0.0
    certified = ", ".join(f"{100 * a:.1f}% at r={r:g}" for r, a in zip(radii, certified_accuracy(rows, radii)))
    return (f"{out}: {len(rows)} inputs, {sum(r.abstained for r in rows)} abstained, accuracy "
            f"{100 * accuracy:.1f}%; certified accuracy {certified or '-'}; robustness score "
            f"{robustness_score([rows]):.6g}")


def _certify(args) -> int:
    settings = plan(args)
    from tqdm import tqdm

    rows, total, began = [], len(settings.indices), time.perf_counter()
    with _partial_log(settings.out, settings.cohen) as write, \
            tqdm(total=total, file=sys.stderr, disable=None, unit="input", desc="certify") as bar:
        for row in run(settings):
            write(row)
            rows.append(row)
            bar.update()
            if bar.disable and (len(rows) % settings.every == 0 or len(rows) == total):
                print(f"[{len(rows)}/{total}] input {row.idx} done ({time.perf_counter() - began:.1f} s)",
                      file=sys.stderr, flush=True)
    print(summary(rows, settings.radii, settings.out))
    return 0


def _columns(path) -> str:
    """'cohen' or 'unicr': which columns the log at ``path`` has (ValueError for any other header)."""
    from .logs import COHEN_COLUMNS, COLUMNS, header

    try:
        with open(path, encoding="utf-8") as file:
            first = file.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read log {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    kinds = {header(True): "cohen", header(False): "unicr"}
    if first not in kinds:
        raise ValueError(f"{path}:1: header must be Cohen's {len(COHEN_COLUMNS)} columns or unicr's {len(COLUMNS)} "
                         f"(tab-separated {' '.join(COLUMNS)}), got {first[:80]!r}")
    return kinds[first]


def _merge(args) -> int:
    from .logs import merge_logs, read_log, write_log

    out = check_file_out(args.out)
    kinds = {path: _columns(path) for path in args.shards}
    if len(set(kinds.values())) > 1:
        raise ValueError("shard logs have different columns (" + ", ".join(f"{p}: {k}" for p, k in kinds.items())
                         + "): merge logs of one kind")
    rows = merge_logs([read_log(path) for path in args.shards])
    write_log(out, rows, cohen=set(kinds.values()) == {"cohen"})
    print(f"{out}: {len(rows)} rows from {len(args.shards)} shard logs")
    return 0


def _curve(args) -> int:
    from .logs import accuracy_table, read_log, robustness_score, write_accuracy_curves

    radii = parse_radii(args.radii)
    labels = args.label or [Path(path).stem for path in args.logs]
    if len(labels) != len(args.logs):
        raise UsageError(f"give one --label per log: {len(args.logs)} logs, {len(labels)} labels")
    if len(set(labels)) != len(labels):
        raise UsageError(f"curve names must differ, got {', '.join(labels)}: give --label NAME for each log")
    stem = Path(args.out)
    check_file_out(stem.with_name(stem.name + ".csv"))
    named = {label: read_log(path) for label, path in zip(labels, args.logs)}
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = write_accuracy_curves(named, stem)
    print(accuracy_table(named, radii), end="")
    print(f"robustness score (Eq. 5, max over {len(named)} log{'s' * (len(named) > 1)}): "
          f"{robustness_score(list(named.values())):.6g}")
    print("curve: " + ", ".join(map(str, written)))
    return 0


COMMANDS = {"merge": (build_merge_parser, _merge), "curve": (build_curve_parser, _curve)}


def main(argv=None) -> int:
    """Entry point; returns the exit code (:data:`EXIT_CODES`, see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    build, command = COMMANDS.get(argv[0], (build_parser, _certify)) if argv else (build_parser, _certify)
    if argv and argv[0] in COMMANDS:
        argv = argv[1:]
    return cli_exit_code("unicr-certify", lambda: command(build().parse_args(argv)), lambda: "--debug" in argv,
                       "no log written")
