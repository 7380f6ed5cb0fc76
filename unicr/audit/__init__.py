"""Audits of published certified radii: verdicts, witnesses, reports, noise ranking, command line.

>>> from unicr.audit import Settings, audit
>>> result = audit("teng", 1, settings=Settings(dim=16, p_a=(0.6, 0.9), samples=2000))
>>> result.verdict, [r.verdict for r in result.rows]
('tight', ['tight', 'tight'])

Command line: ``python -m unicr.audit --help`` (installed as ``unicr-audit``).
"""
from .cli import main
from .core import DEFAULT_GRID, Audit, Case, Settings, audit, engine_curve, judge, plan, run
from .ranking import Ranking, rank, write_ranking
from .recheck import recheck
from .report import record, write_audit, write_index
from .verdicts import LOOSE, SUSPECT, TIGHT, UNCONFIRMED, Row, confirm, row_verdict, sweep_verdict

__all__ = [
    "main", "Settings", "Case", "Audit", "DEFAULT_GRID", "audit", "plan", "engine_curve", "judge", "run",
    "Ranking", "rank", "write_ranking", "recheck", "record", "write_audit", "write_index",
    "TIGHT", "LOOSE", "SUSPECT", "UNCONFIRMED", "Row", "confirm", "row_verdict", "sweep_verdict",
]
