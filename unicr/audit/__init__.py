"""Audits of published certified radii: verdicts, witnesses, reports, noise ranking, command line.

>>> from unicr.audit import Settings, audit
>>> result = audit("teng", 1, settings=Settings(dim=16, p_a=(0.6, 0.9), samples=2000))
>>> result.verdict, [r.verdict for r in result.rows]
('tight', ['tight', 'tight'])

Command line: ``python -m unicr.audit --help`` (installed as ``unicr-audit``). Public names and
submodules load on first use (PEP 562), so the command line answers ``--help`` without torch.
"""
import sys
import types

from .. import _lazy

_EXPORTS = {
    "main": "cli",
    **dict.fromkeys(("Settings", "Case", "Audit", "DEFAULT_GRID", "audit", "plan", "engine_curve", "judge", "run"),
                    "core"),
    **dict.fromkeys(("Ranking", "rank", "write_ranking"), "ranking"),
    "recheck": "recheck",
    **dict.fromkeys(("record", "write_audit", "write_index"), "report"),
    **dict.fromkeys(("TIGHT", "LOOSE", "SUSPECT", "UNCONFIRMED", "Row", "confirm", "row_verdict", "sweep_verdict"),
                    "verdicts"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = _lazy(__name__, _EXPORTS)


class _Package(types.ModuleType):
    """Keeps ``unicr.audit.recheck`` the function: importing the submodule of that name binds the
    module to the package's attribute."""

    def __setattr__(self, name, value):
        if name == "recheck" and isinstance(value, types.ModuleType):
            value = value.recheck
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
