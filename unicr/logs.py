"""Certification logs in Cohen et al.'s format, and what is read from them: the certified-accuracy
curve and the robustness score.

A log is a tab-separated file whose header starts ``idx label predict radius correct time``, one row
per certified input (locuslab/smoothing ``code/certify.py``; ``predict`` is -1 when g abstains, and
then ``radius`` is 0). unicr appends three columns, ``p_a_lower basis certificate``: the confidence
bound behind the radius, what the radius rests on ("tight", "sound" or "approximate", see
:class:`unicr.Certification`) and the catalog certificate's name ("-" where none). Logs with only
Cohen's six columns are read as well (the extra fields are then None).

unicr writes radii and p_A_lower with ``repr`` (the shortest decimal that reads back to the same
float) rather than Cohen's three significant digits, which can round a radius up by 0.5% of its
value. ``time`` is ``str(datetime.timedelta)``, as Cohen's; ``None`` seconds write ``0:00:00``, so
that logs of the same seed are byte-identical.

Certified accuracy at radius r (Cohen et al., ICML 2019, Section 4): the share of all logged inputs
that are predicted correctly with a radius of at least r. Robustness score (Hong, Wang, Hong, ECCV
2022, Eq. 5): R_score = int_0^inf max_sigma Acc_sigma(R) dR over a set of logs (one per sigma),
computed exactly for these step functions; for one log it is the average certified radius of the
correct predictions, counting wrong ones and abstentions as 0.
"""
from __future__ import annotations

import csv
import datetime
import io
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["COHEN_COLUMNS", "COLUMNS", "ABSTAIN", "LogRow", "header", "format_row", "parse_log", "read_log",
           "write_log", "merge_logs", "certified_accuracy", "robustness_score", "accuracy_table",
           "write_accuracy_curves"]

COHEN_COLUMNS = ("idx", "label", "predict", "radius", "correct", "time")
COLUMNS = COHEN_COLUMNS + ("p_a_lower", "basis", "certificate")
#: Cohen's label for an abstention
ABSTAIN = -1
_NONE = "-"


@dataclass(frozen=True)
class LogRow:
    """One certified input. ``predict`` is ABSTAIN (-1) for an abstention; ``p_a_lower``, ``basis``
    and ``certificate`` are None in a log with Cohen's six columns only (and ``basis``/``certificate``
    for abstentions or an approximate radius, as it applies)."""

    idx: int
    label: int
    predict: int
    radius: float
    correct: int
    time: str = "0:00:00"
    p_a_lower: float | None = None
    basis: str | None = None
    certificate: str | None = None

    @classmethod
    def from_certification(cls, idx: int, label: int, result, seconds: float | None = None) -> "LogRow":
        """The row of :func:`unicr.certify`'s ``result`` for input ``idx`` with true class ``label``;
        ``seconds``: the wall time it took (None: written as 0:00:00, for reproducible bytes)."""
        predict = ABSTAIN if result.prediction is None else int(result.prediction)
        return cls(idx=int(idx), label=int(label), predict=predict, radius=float(result.radius),
                   correct=int(predict == int(label)), time=_elapsed(seconds), p_a_lower=float(result.p_a_lower),
                   basis=result.basis, certificate=result.certificate)

    @property
    def abstained(self) -> bool:
        return self.predict == ABSTAIN


def _elapsed(seconds: float | None) -> str:
    return "0:00:00" if seconds is None else str(datetime.timedelta(seconds=float(seconds)))


def header(cohen: bool = False) -> str:
    """The header line (no newline): Cohen's six columns, or unicr's nine."""
    return "\t".join(COHEN_COLUMNS if cohen else COLUMNS)


def format_row(row: LogRow, cohen: bool = False) -> str:
    """One line (no newline). ``cohen=True`` writes Cohen's six columns only."""
    fields = [str(row.idx), str(row.label), str(row.predict), repr(float(row.radius)), str(row.correct), row.time]
    if not cohen:
        fields += [_NONE if row.p_a_lower is None else repr(float(row.p_a_lower)),
                   row.basis or _NONE, row.certificate or _NONE]
    return "\t".join(fields)


def _field(source: str, line: int, name: str, text: str, kind):
    try:
        if kind is int:
            value = float(text) if text.strip().lower() not in ("true", "false") else float(text.strip().lower() == "true")
            if not value.is_integer():
                raise ValueError
            return int(value)
        value = float(text)
        if not math.isfinite(value):
            raise ValueError
        return value
    except ValueError:
        raise ValueError(f"{source}:{line}: column {name!r} must be {'an integer' if kind is int else 'a finite number'}, "
                         f"got {text!r}") from None


def parse_log(text: str, source: str = "<log>") -> list[LogRow]:
    """The rows of a log's text (Cohen's six columns, or unicr's nine; other extra columns are
    ignored). A malformed header or row raises ValueError naming ``source`` and the line."""
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"{source}: empty log; expected a header starting {' '.join(COHEN_COLUMNS)!r}")
    names = lines[0].rstrip("\r").split("\t")
    if tuple(names[:len(COHEN_COLUMNS)]) != COHEN_COLUMNS:
        raise ValueError(f"{source}:1: header must start with the tab-separated columns "
                         f"{' '.join(COHEN_COLUMNS)!r}, got {lines[0][:80]!r}")
    where = {name: i for i, name in enumerate(names)}
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.rstrip("\r").split("\t")
        if len(cells) != len(names):
            raise ValueError(f"{source}:{number}: expected {len(names)} tab-separated fields, got {len(cells)}")
        get = lambda name: cells[where[name]] if name in where else None
        p_a = get("p_a_lower")
        row = LogRow(idx=_field(source, number, "idx", get("idx"), int),
                     label=_field(source, number, "label", get("label"), int),
                     predict=_field(source, number, "predict", get("predict"), int),
                     radius=_field(source, number, "radius", get("radius"), float),
                     correct=_field(source, number, "correct", get("correct"), int),
                     time=get("time"),
                     p_a_lower=None if p_a in (None, _NONE) else _field(source, number, "p_a_lower", p_a, float),
                     basis=None if get("basis") in (None, _NONE) else get("basis"),
                     certificate=None if get("certificate") in (None, _NONE) else get("certificate"))
        if row.correct not in (0, 1):
            raise ValueError(f"{source}:{number}: column 'correct' must be 0 or 1, got {row.correct}")
        if row.radius < 0:
            raise ValueError(f"{source}:{number}: column 'radius' must be >= 0, got {row.radius!r}")
        rows.append(row)
    return rows


def read_log(path) -> list[LogRow]:
    """The rows of the log file at ``path`` (see :func:`parse_log`); a missing or unreadable file
    raises ValueError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read log {str(path)!r}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    return parse_log(text, str(path))


def _text(rows: Iterable[LogRow], cohen: bool) -> str:
    return "".join(line + "\n" for line in [header(cohen), *(format_row(r, cohen) for r in rows)])


def write_log(path, rows: Iterable[LogRow], cohen: bool = False) -> Path:
    """Write ``rows`` to ``path`` atomically: to a temporary sibling, then ``os.replace``; an
    interrupted write leaves no partial log."""
    path = Path(path)
    text = _text(rows, cohen)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def merge_logs(logs: Sequence[Sequence[LogRow]]) -> list[LogRow]:
    """The rows of several shards in index order. An index found in two shards raises ValueError."""
    seen: dict[int, LogRow] = {}
    for shard in logs:
        for row in shard:
            if row.idx in seen:
                raise ValueError(f"input {row.idx} appears in two shards; shards must not overlap")
            seen[row.idx] = row
    return [seen[i] for i in sorted(seen)]


def _arrays(rows: Sequence[LogRow]) -> tuple[np.ndarray, int]:
    """The radii of the correct predictions (others count as never certified) and the row count."""
    radii = np.array([r.radius for r in rows if r.correct and not r.abstained], dtype=np.float64)
    return radii, len(rows)


def certified_accuracy(rows: Sequence[LogRow], radii) -> np.ndarray:
    """Acc(r) = #{correct and radius >= r} / #rows at each r of ``radii`` (Cohen's ``analyze.py``)."""
    good, total = _arrays(rows)
    r = np.asarray(radii, dtype=np.float64)
    if total == 0:
        return np.zeros_like(r)
    return (good[None, :] >= r.reshape(-1, 1)).sum(axis=1).reshape(r.shape) / total


def robustness_score(logs: Sequence[Sequence[LogRow]]) -> float:
    """Eq. 5 of Hong et al. (ECCV 2022): int_0^inf max over the logs of Acc(R) dR, exact.

    Between consecutive distinct radii every curve is constant, so the integral is a finite sum."""
    logs = [log for log in logs]
    if not logs or all(len(log) == 0 for log in logs):
        return 0.0
    arrays = [_arrays(log) for log in logs]
    edges = np.unique(np.concatenate([[0.0], *(good for good, _ in arrays)]))
    terms = []
    for left, right in zip(edges[:-1], edges[1:]):
        height = max((good >= right).sum() / total for good, total in arrays if total)
        terms.append((right - left) * height)
    return math.fsum(terms)


def accuracy_table(named: Mapping[str, Sequence[LogRow]], radii) -> str:
    """A Markdown table: one row per log, certified accuracy (%) at each radius of ``radii``."""
    radii = [float(r) for r in radii]
    lines = ["| log | " + " | ".join(f"r = {r:g}" for r in radii) + " | score |",
             "|---|" + "---:|" * (len(radii) + 1)]
    for name, rows in named.items():
        acc = certified_accuracy(rows, radii)
        lines.append(f"| {name} | " + " | ".join(f"{100 * a:.1f}" for a in acc)
                     + f" | {robustness_score([rows]):.4f} |")
    return "\n".join(lines) + "\n"


def write_accuracy_curves(named: Mapping[str, Sequence[LogRow]], stem, *, xlabel: str = "radius",
                          title: str | None = None) -> list[Path]:
    """Certified accuracy against radius, one step curve per log: ``stem``.png (see
    :mod:`unicr.audit.style`) and ``stem``.csv (columns ``radius`` and one per log, the accuracy at
    every radius where some curve steps). Same rows, same bytes."""
    from .audit import style

    stem = Path(stem)
    arrays = {name: _arrays(rows) for name, rows in named.items()}
    edges = np.unique(np.concatenate([[0.0], *(good for good, _ in arrays.values())]))
    values = {name: certified_accuracy(rows, edges) for name, rows in named.items()}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["radius", *named])
    for i, edge in enumerate(edges):
        writer.writerow([repr(float(edge)), *(repr(float(values[name][i])) for name in named)])
    csv_path = stem.with_name(stem.name + ".csv")
    csv_path.write_text(buf.getvalue(), encoding="utf-8")
    with style.context():
        fig = style.figure(style.WIDTH, 2.4)
        ax = fig.add_subplot()
        top = float(edges[-1]) * 1.05 if edges[-1] > 0 else 1.0
        for name in named:
            ax.step(np.append(edges, top), np.append(values[name], 0.0), where="pre", label=name)
        ax.set_xlim(0, top)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("certified accuracy")
        if title:
            ax.set_title(title)
        ax.legend(loc="upper right")
        png = style.render(fig)[".png"]
    png_path = stem.with_name(stem.name + ".png")
    png_path.write_bytes(png)
    return [png_path, csv_path]
