"""``python -m unicr.audit --jobs N``: cases in worker processes, the same bytes as one after the other.

Tiny sweeps (d = 8, two p_A, 2 000 draws), in-process through ``unicr.audit.main``; each pair of
runs is made from its own directory with the same relative ``--out`` so that the index, which
names the output directory, can be compared byte for byte too.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from unicr import noises as nz
from unicr.audit import cli, core, main, parallel, ranking

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "exponential_plugin.py"
TINY = ["--dim", "8", "--p-a", "0.6,0.9", "--samples", "2000"]

#: a noise of one's own that fails in the engine run (after planning succeeded)
BROKEN_PLUGIN = '''
import math

import torch

import certificates
import unicr


class Broken(unicr.IIDNoise):
    name = "broken-exponential"

    def __init__(self, sigma=1.0, dim=1):
        super().__init__(dim, sigma, {"sigma": sigma})

    def sample_coords(self, shape, *, generator=None, device=None, dtype=torch.float64):
        raise ValueError("the broken noise cannot draw samples")

    def log_prob_coords(self, x):
        z = x / self.sigma + 1
        return torch.where(z >= 0, -z - math.log(self.sigma), -math.inf)


unicr.register_noise("broken-exponential", Broken)
BROKEN = certificates.define("broken-shift", "broken-exponential", 1,
                             lambda p_a, sigma, dim, norm: sigma * math.log(2 * p_a), "tight")
'''


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch):
    """Noises that plugins register here are gone after the test."""
    monkeypatch.setattr(nz, "_REGISTRY", dict(nz._REGISTRY))


def files_under(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def run_in(capsys, monkeypatch, folder: Path, *args):
    """main(args) with ``folder`` as the working directory: (exit code, stdout, stderr, files of results/)."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(folder)
    code = main([str(a) for a in args] + ["--out", "results"])
    out, err = capsys.readouterr()
    return code, out, err, files_under(folder / "results")


def progress_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("[")]


def test_jobs_same_bytes_and_progress_lines(capsys, monkeypatch, tmp_path):
    """Closed-form (cohen), deterministic (teng) and Monte Carlo (yang-l2-exp-l2, not i.i.d.) cases:
    every report, the index and the table are the same bytes with --jobs 1 and --jobs 2; off a
    terminal each finished case prints one line on stderr."""
    args = ["--certificate", "cohen", "--certificate", "teng", "--certificate", "yang-l2-exp-l2", *TINY]
    serial = run_in(capsys, monkeypatch, tmp_path / "serial", *args, "--jobs", "1")
    pooled = run_in(capsys, monkeypatch, tmp_path / "pooled", *args, "--jobs", "2")
    assert serial[0] == pooled[0] == 0
    files = serial[3]
    assert {Path(name).suffix for name in files} == {".md", ".json", ".pdf", ".png", ".csv"}
    assert len(files) == 1 + 5 * 5 and "README.md" in files
    assert files == pooled[3]
    assert serial[1] == pooled[1]                          # the table, in the order of the cases
    assert "--jobs" not in files["README.md"].decode() and "--threads" not in files["README.md"].decode()
    labels = ["cohen l2 sigma=1", "cohen l1 sigma=1", "cohen linf sigma=1", "teng l1 sigma=1",
              "yang-l2-exp-l2 l2 sigma=1"]
    for err in (serial[2], pooled[2]):
        lines = progress_lines(err)
        assert len(lines) == 5 and lines == err.strip().splitlines(), err
        for k, line in enumerate(lines, 1):
            assert re.fullmatch(rf"\[{k}/5\] (.+): tight \(\d+\.\d s\)", line), line
        assert sorted(re.match(r"\[\d/5\] (.+):", ln).group(1) for ln in lines) == sorted(labels)
    assert [re.match(r"\[\d/5\] (.+):", ln).group(1) for ln in progress_lines(serial[2])] == labels


def test_plugin_through_workers(capsys, monkeypatch, tmp_path):
    """A certificate and a noise registered by a plugin file: inherited by forked workers, loaded
    again from the command line by spawned ones; the same bytes as in one process."""
    args = ["--certificate", f"{EXAMPLE}:CERT", "--norm", "1", "--norm", "2", *TINY, "--search", "axis"]
    serial = run_in(capsys, monkeypatch, tmp_path / "serial", *args, "--jobs", "1")
    assert serial[0] == 0 and len(serial[3]) == 1 + 5 * 2
    for method in ("fork", "spawn"):
        monkeypatch.setattr(parallel, "START_METHOD", method)
        pooled = run_in(capsys, monkeypatch, tmp_path / method, *args, "--jobs", "2")
        assert pooled[0] == 0 and pooled[1] == serial[1] and pooled[3] == serial[3], method


def test_worker_error_exit_2(capsys, monkeypatch, tmp_path):
    """A case failing in a worker: the one-line error and exit code 2 of a serial run, no report of it."""
    (tmp_path / "broken.py").write_text(BROKEN_PLUGIN)
    args = ["--certificate", f"{tmp_path / 'broken.py'}:BROKEN", "--certificate", "cohen", *TINY]
    for jobs in ("1", "2"):
        code, out, err, files = run_in(capsys, monkeypatch, tmp_path / jobs, *args, "--jobs", jobs)
        assert code == 2 and out == "" and "Traceback" not in err
        assert err.strip().splitlines()[-1] == "unicr-audit: error: the broken noise cannot draw samples"
        assert not any(name.startswith("broken-shift/") for name in files)


def test_killed_worker_exit_3(capsys, monkeypatch, tmp_path):
    """A worker killed mid-case (as by the out-of-memory killer): one line, exit code 3 (not a bad
    input), and no report of the unfinished case."""
    import os
    import signal

    def killed(case, settings):
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(parallel, "START_METHOD", "fork")   # the workers inherit the patched run
    monkeypatch.setattr(core, "run", killed)
    code, out, err, files = run_in(capsys, monkeypatch, tmp_path, "--certificate", "cohen", "--certificate", "teng",
                                   *TINY, "--jobs", "2")
    assert code == 3 and out == "" and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("unicr-audit: internal error: RuntimeError: a worker process died")
    assert not any(name.endswith(".md") and "/" in name for name in files)


@pytest.mark.parametrize("option, value", [("--jobs", "0"), ("--jobs", "x"), ("--jobs", "-2"), ("--jobs", "1.5"),
                                           ("--threads", "0"), ("--threads", "x")])
def test_jobs_and_threads_validation(capsys, tmp_path, option, value):
    code = main(["--certificate", "cohen", option, value, "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip() == f"unicr-audit: error: argument {option}: must be an integer >= 1, got {value!r}"
    assert not (tmp_path / "out").exists()


def test_run_command_leaves_out_jobs_and_threads():
    args = cli.build_parser().parse_args(["--all", "--jobs", "3", "--threads", "2", "--dim", "8"])
    assert (args.jobs, args.threads) == (3, 2)
    assert cli.build_parser().parse_args(["--all"]).threads == 1
    command = cli.run_command(args, cli._audit_settings(args), None)
    assert "--jobs" not in command and "--threads" not in command and "--dim 8" in command


def test_schedule_runs_monte_carlo_first():
    settings = core.Settings(dim=8, p_a=(0.6, 0.9), samples=2000)
    cases = [core.plan(name, None, 1.0, settings) for name in ("cohen", "teng", "yang-l2-exp-l2")]
    assert [parallel.cost(c, settings) for c in cases] == [0, 1, 2]
    assert parallel.schedule(cases, settings) == [2, 1, 0]
    mc = core.Settings(dim=8, p_a=(0.6, 0.9), samples=2000, backend="mc")
    assert parallel.schedule(cases, mc) == [0, 1, 2]


def test_no_pool_runs_serially(capsys, monkeypatch, tmp_path):
    def no_pool(*args, **kwargs):
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", no_pool)
    code, out, err, files = run_in(capsys, monkeypatch, tmp_path, "--certificate", "cohen", "--norm", "1",
                                   "--norm", "2", *TINY, "--jobs", "2")
    assert code == 0 and "TIGHT" in out and len(files) == 1 + 5 * 2
    assert err.splitlines()[0] == ("note: --jobs 2: cannot start worker processes ([Errno 38] Function not "
                                   "implemented); running the cases one after the other")
    assert len(progress_lines(err)) == 2


def test_rank_progress_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(ranking, "rank", lambda settings, sigma, progress=None: "ranking")
    monkeypatch.setattr(ranking, "write_ranking", lambda result, out, command, prov: None)
    code = main(["--rank", "--rank-dim", "4", "--p-a", "0.6", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    curves = len(ranking.FAMILIES) * len(ranking.NORMS)
    assert code == 0
    assert re.fullmatch(rf"\[rank\] noise ranking: {curves} curves at d=4 \(\d+\.\d s\)", err.strip()), err
