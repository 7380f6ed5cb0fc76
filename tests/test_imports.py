"""What importing unicr costs and where it comes from (issue 10).

* ``--help``, ``--list`` and input errors of ``python -m unicr.audit`` load neither torch, pandas nor
  matplotlib (nor scipy.stats): checked in a fresh interpreter, deterministically, rather than timed.
* ``import unicr`` and ``import unicr.audit`` are lazy (PEP 562) with the same public names.
* A folder named ``unicr`` in the current directory (e.g. a clone of this repository) does not
  shadow the installed package as a namespace package.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "matplotlib", "scipy.stats")

#: runs cli.main(argv) and prints its exit code and the heavy modules it loaded, as JSON
SCRIPT = """
import json, sys
from unicr.audit import cli
try:
    code = cli.main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
print(json.dumps([code, [m for m in {heavy!r} if m in sys.modules]]))
"""


def python(code: str, *args: str, cwd: Path = ROOT) -> str:
    """stdout of ``python -c code args`` in a fresh interpreter (fails on a non-zero exit)."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("argv, code", [
    (["--help"], 0),
    (["--list"], 0),
    (["--list", "--json"], 0),
    (["--certificate", "nosuch"], 2),
    (["--certificate", "cohen", "--dim", "0"], 2),
    (["--certificate", "cohen", "--p-a", "abc"], 2),
    (["--certificate", "cohen", "--no-such-option"], 2),
    (["--certificate", "cohen", "--all"], 2),
    (["--certificate", "cohen", "--device", "foo"], 2),
    (["--certificate", "cohen", "--out", "pyproject.toml"], 2),
])
def test_cli_answers_without_heavy_modules(argv, code):
    got, loaded = json.loads(python(SCRIPT.format(heavy=HEAVY), json.dumps(argv)).splitlines()[-1])
    assert got == code
    assert loaded == []


def test_lazy_packages_keep_their_public_names():
    script = """
import inspect, json, sys
import unicr, unicr.audit
lazy = "torch" not in sys.modules
names = {"unicr": unicr.__all__, "audit": unicr.audit.__all__}
listed = set(unicr.__all__) <= set(dir(unicr)) and set(unicr.audit.__all__) <= set(dir(unicr.audit))
import unicr.audit.recheck  # the submodule shares its name with the function unicr.audit.recheck
from unicr import *
from unicr.audit import recheck, report
print(json.dumps([lazy, names, listed, inspect.isfunction(recheck) and recheck is unicr.audit.recheck,
                  report.__name__, noise.__module__, unicr.noises.__name__, hasattr(unicr, "nosuch")]))
"""
    lazy, names, listed, *rest = json.loads(python(script).splitlines()[-1])
    assert lazy and listed
    assert set(names["unicr"]) >= {"noise", "register_noise", "radius_curve", "EngineSettings", "DEFAULT_P_A_GRID"}
    assert set(names["audit"]) >= {"main", "Settings", "audit", "plan", "run", "recheck", "rank", "TIGHT"}
    assert rest == [True, "unicr.audit.report", "unicr.noises", "unicr.noises", False]


def test_a_folder_named_unicr_in_the_current_directory_does_not_shadow_the_package(tmp_path):
    """A clone of the repository, named unicr, beside the current directory: it is no package of its
    own (no __init__.py), and must not hide the installed one (see pyproject.toml, package-dir)."""
    (tmp_path / "unicr").mkdir()
    (tmp_path / "unicr" / "README.md").write_text("a clone of the repository\n")
    out = python("import unicr; print(unicr.__file__); print(unicr.noise.__module__)", cwd=tmp_path)
    assert out.split() == [str(ROOT / "unicr" / "__init__.py"), "unicr.noises"]
