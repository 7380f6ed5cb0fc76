"""Exit codes of ``python -m unicr.audit`` (issue 10): a CI gate must not confuse a crash with a finding.

0 done, 1 ``--fail-on`` triggered, 2 bad input (one line on stderr, no traceback, nothing written),
3 internal error (one line and a hint; the traceback under ``--debug``), 130 interrupted. One table
of cases drives one check, in-process through ``unicr.audit.main`` on tiny sweeps; the inputs that
used to crash with a traceback also run as ``python -m unicr.audit``, as a user sees them.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from unicr.audit import core, main, parallel
from unicr.errors import CertificateError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dim", "16", "--samples", "2000", "--p-a", "0.6:0.9:2", "--jobs", "1"]
FORK = parallel.start_method(1) == "fork"

#: plugin certificates whose radius function fails or returns nonsense, and two honest-or-not ones
PLUGIN = '''
from statistics import NormalDist

import certificates
from certificates import Certificate

COHEN = certificates.get("cohen")


def _certificate(name, radius):
    return Certificate(name=name, reference=COHEN.reference, noise=COHEN.noise, norms=(2.0,), claim="tight",
                       domain="binary", radius_fn=lambda p_a, p_b, scale, dim, norm: radius(p_a), mpmath_fn=False)


RAISES = _certificate("raises", lambda p_a: 1 / 0)
NAN = _certificate("nan", lambda p_a: float("nan"))
NEGATIVE = _certificate("negative", lambda p_a: -1.0)
SHAPE = _certificate("shape", lambda p_a: [p_a, p_a])
TEXT = _certificate("text", lambda p_a: "a radius")
DOUBLE = certificates.define("double-cohen", "gaussian", 2, lambda p_a, sigma: 2 * sigma * NormalDist().inv_cdf(p_a))
'''


def _unwritable() -> str | None:
    """A directory in which even root cannot create one (Linux sysfs), or None."""
    try:
        os.rmdir(tempfile.mkdtemp(dir="/sys"))
    except OSError:
        return "/sys" if os.path.isdir("/sys") else None
    return None


UNWRITABLE = _unwritable()
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="torch sees a CUDA device")


def _raise(exc: BaseException):
    """A stand-in for core.engine_curve that raises ``exc``."""
    def boom(case, settings):
        raise exc
    return boom


# (args after the tiny sweep's, exit code, text of stdout (0, 1) or of the one stderr line, exception
# raised by every engine run or None). {dir}: a folder holding PLUGIN as plugin.py and the file
# 'file.txt'; --out is {dir}/out unless given.
CASES = [
    pytest.param(["--certificate", "teng"], 0, "TIGHT", None, id="0-done"),
    pytest.param(["--certificate", "{dir}/plugin.py:DOUBLE"], 0, "SUSPECT", None, id="0-suspect-without-fail-on"),
    pytest.param(["--certificate", "{dir}/plugin.py:DOUBLE", "--fail-on", "suspect"], 1, "SUSPECT", None,
                 id="1-fail-on-suspect"),
    pytest.param(["--certificate", "{dir}/plugin.py:RAISES"], 2,
                 "certificate 'raises' ({dir}/plugin.py:RAISES): its radius function raised at p_a=0.6: "
                 "ZeroDivisionError: division by zero", None, id="2-radius-raises"),
    pytest.param(["--certificate", "{dir}/plugin.py:RAISES", "--jobs", "2"], 2, "ZeroDivisionError", None,
                 id="2-radius-raises-jobs2"),
    pytest.param(["--certificate", "{dir}/plugin.py:NAN"], 2, "radius of 'nan' must be a real number, got nan", None,
                 id="2-radius-nan"),
    pytest.param(["--certificate", "{dir}/plugin.py:NEGATIVE"], 2, "radius of 'negative' is negative", None,
                 id="2-radius-negative"),
    pytest.param(["--certificate", "{dir}/plugin.py:SHAPE"], 2, "radius of 'shape' must be a real number", None,
                 id="2-radius-wrong-shape"),
    pytest.param(["--certificate", "{dir}/plugin.py:TEXT"], 2, "radius of 'text' must be a real number", None,
                 id="2-radius-not-a-number"),
    pytest.param(["--certificate", "teng", "--device", "cuda"], 2,
                 "--device 'cuda': this torch sees no CUDA device", None, id="2-device-cuda", marks=NO_CUDA),
    pytest.param(["--certificate", "teng", "--device", "cuda", "--jobs", "2"], 2, "--device 'cuda'", None,
                 id="2-device-cuda-jobs2", marks=NO_CUDA),
    pytest.param(["--certificate", "teng", "--device", "foo"], 2,
                 "--device 'foo' is not supported; allowed: cpu, cuda, cuda:N", None, id="2-device-foo"),
    pytest.param(["--rank", "--device", "foo"], 2, "--device 'foo'", None, id="2-device-foo-rank"),
    pytest.param(["--certificate", "teng", "--out", "{dir}/file.txt"], 2,
                 "--out '{dir}/file.txt' is a file; give a writable directory", None, id="2-out-is-a-file"),
    pytest.param(["--certificate", "teng", "--out", "{dir}/file.txt/out"], 2,
                 "--out '{dir}/file.txt/out' is under the file '{dir}/file.txt'", None, id="2-out-under-a-file"),
    pytest.param(["--certificate", "teng", "--out", f"{UNWRITABLE}/unicr-out"], 2,
                 f"--out '{UNWRITABLE}/unicr-out': cannot write in '{UNWRITABLE}'", None, id="2-out-unwritable",
                 marks=pytest.mark.skipif(UNWRITABLE is None, reason="no unwritable directory")),
    pytest.param(["--certificate", "nosuch"], 2, "unknown certificate 'nosuch'", None, id="2-unknown-certificate"),
    pytest.param(["--certificate", "teng", "--jobs", "0"], 2, "--jobs", None, id="2-bad-option"),
    pytest.param(["--certificate", "cohen", "--jobs", "2"], 2, "a bad input found in a worker",
                 CertificateError("a bad input found in a worker"), id="2-from-a-worker",
                 marks=pytest.mark.skipif(not FORK, reason="workers are spawned (they do not see the patch)")),
    pytest.param(["--certificate", "teng"], 3,
                 "internal error: RuntimeError: boom (rerun with --debug for the traceback)", RuntimeError("boom"),
                 id="3-internal"),
    pytest.param(["--certificate", "cohen", "--jobs", "2"], 3, "internal error: KeyError: 'boom'", KeyError("boom"),
                 id="3-internal-from-a-worker",
                 marks=pytest.mark.skipif(not FORK, reason="workers are spawned (they do not see the patch)")),
    pytest.param(["--certificate", "teng"], 130, "interrupted", KeyboardInterrupt(), id="130-interrupted"),
]


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "plugin.py").write_text(PLUGIN)
    (tmp_path / "file.txt").write_text("not a folder\n")
    return tmp_path


def run(capsys, folder: Path, args) -> tuple[int, str, str]:
    """main(args) in-process on the tiny sweep, --out in ``folder`` unless given: (code, stdout, stderr)."""
    args = [a.format(dir=folder) for a in args]
    out = [] if "--out" in args else ["--out", str(folder / "out")]
    code = main([*TINY, *args, *out])
    stdout, stderr = capsys.readouterr()
    return code, stdout, stderr


@pytest.mark.parametrize("args, code, message, raises", CASES)
def test_exit_code(capsys, monkeypatch, folder, args, code, message, raises):
    if raises is not None:
        monkeypatch.setattr(core, "engine_curve", _raise(raises))
    got, stdout, stderr = run(capsys, folder, args)
    assert got == code, stderr
    assert "Traceback" not in stderr
    if code in (0, 1):
        assert message in stdout
        return
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert message.format(dir=folder) in lines[0]
    if code == 2:
        assert lines[0].startswith("unicr-audit: error: ") and stdout == ""
        assert not (folder / "out").exists()  # checked before the first case: nothing written
        assert (folder / "file.txt").read_text() == "not a folder\n"
    if code == 3:
        assert lines[0].startswith("unicr-audit: internal error: ")


@pytest.mark.parametrize("exc, code, line", [
    (RuntimeError("boom"), 3, "unicr-audit: internal error: RuntimeError: boom"),
    (CertificateError("bad plugin"), 2, "unicr-audit: error: bad plugin"),
])
def test_debug_prints_the_traceback(capsys, monkeypatch, folder, exc, code, line):
    monkeypatch.setattr(core, "engine_curve", _raise(exc))
    got, _, stderr = run(capsys, folder, ["--certificate", "teng", "--debug"])
    assert got == code
    assert stderr.startswith("Traceback (most recent call last):") and "in boom" in stderr
    assert stderr.strip().splitlines()[-1] == line


@pytest.mark.parametrize("args", [
    ["--certificate", "{dir}/plugin.py:RAISES"],
    ["--certificate", "teng", "--device", "cuda"],
    ["--certificate", "teng", "--device", "foo"],
], ids=["radius-raises", "device-cuda", "device-foo"])
def test_formerly_crashing_inputs_as_a_user_sees_them(folder, args):
    """These exited 1 with a traceback; now 2 with one line (as ``python -m unicr.audit``)."""
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("torch sees a CUDA device")
    command = [sys.executable, "-m", "unicr.audit", *[a.format(dir=folder) for a in args], *TINY,
               "--out", str(folder / "out")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("unicr-audit: error: ")
    assert not (folder / "out").exists()


def test_exit_codes_documented():
    """Every exit code is in --help and in the module docstring."""
    from unicr.audit import cli

    text = cli.build_parser().format_help()
    for code, meaning in cli.EXIT_CODES.items():
        assert f"{code:<3} {meaning}" in text
        assert f"- {code}: " in cli.__doc__
    assert "--debug" in text
