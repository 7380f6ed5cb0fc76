"""The audit command line: exit codes, --list, --json, atomic and reproducible reports, plugins,
--recheck, and the golden report committed under results/golden.

Most cases call ``unicr.audit.main`` in-process on tiny sweeps (d = 8, 2 000 draws); a few run
``python -m unicr.audit`` as a subprocess to see what a user sees.
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unicr.audit import main, report

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "audits" / "planted.py"
TINY = ["--dim", "8", "--samples", "2000", "--p-a", "0.6,0.8,0.95", "--backend", "mc"]
#: the golden case: regenerate with UNICR_REGENERATE_GOLDEN=1 (see results/README.md)
GOLDEN_ARGS = ["--certificate", "cohen", "--norm", "2", "--dim", "64", "--p-a", "0.6,0.75,0.9,0.99",
               "--samples", "20000", "--seed", "0", "--backend", "mc"]
GOLDEN_DIR = ROOT / "results" / "golden"

PLUGIN = '''
import math
import certificates
from certificates import Certificate
from certificates.cohen import gaussian_l2

COHEN = certificates.get("cohen")
MINE = Certificate(name="my-cohen", reference=COHEN.reference, noise=COHEN.noise, norms=(2.0,),
                   claim="tight", domain="general",
                   radius_fn=lambda p_a, p_b, scale, dim, norm: gaussian_l2(p_a, p_b, scale))
HALF = Certificate(name="my-half-cohen", reference=COHEN.reference, noise=COHEN.noise, norms=(2.0,),
                   claim="sound", domain="general",
                   radius_fn=lambda p_a, p_b, scale, dim, norm: gaussian_l2(p_a, p_b, scale) / 2)
BOTH = [MINE, HALF]
NOT_A_CERTIFICATE = 42
'''


def run(capsys, *args):
    """main(args) in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_list(capsys):
    code, out, _ = run(capsys, "--list")
    assert code == 0
    for name in ("cohen", "teng", "pixeldp-gaussian", "li", "yang-uniform-l1"):
        assert name in out
    assert "Cohen, Rosenfeld, Kolter (ICML 2019)" in out and "approximate" in out
    code, out, _ = run(capsys, "--list", "--json")
    entries = json.loads(out)
    assert code == 0 and {e["name"] for e in entries} >= {"cohen", "teng"}
    assert {"claim", "reference", "norms", "code", "noise"} <= entries[0].keys()


def test_audit_writes_report_and_json(capsys, tmp_path):
    code, out, err = run(capsys, "--certificate", "cohen", "--sigma", "0.5", "--sigma", "1", *TINY,
                         "--out", tmp_path, "--json")
    assert code == 0
    records = json.loads(out)
    assert [(r["certificate"], r["norm"], r["sigma"]) for r in records] == [
        ("cohen", n, s) for n in ("l2", "l1", "linf") for s in (0.5, 1.0)]
    for r in records:
        assert r["verdict"] in {"tight", "loose", "suspect"} and r["claim"] == "tight"
        assert len(r["rows"]) == 3
        for row in r["rows"]:
            assert {"p_a", "claimed", "radius", "lower", "upper", "verdict"} <= row.keys()
            assert row["lower"] <= row["radius"] <= row["upper"]
    assert "TIGHT" in err  # the table goes to stderr when stdout holds JSON
    names = files_under(tmp_path)
    for stem in ("cohen/cohen-l2-sigma0.5", "cohen/cohen-linf-sigma1"):
        assert {f"{stem}.{ext}" for ext in ("md", "png", "csv", "json")} <= names.keys()
    assert names["cohen/cohen-l2-sigma1.png"].startswith(b"\x89PNG")
    index = (tmp_path / "README.md").read_text()
    assert index.count("](cohen/") == 6 and "python -m unicr.audit --certificate cohen" in index
    md = (tmp_path / "cohen" / "cohen-l2-sigma1.md").read_text()
    for text in ("Verdict: TIGHT", "| seed | 0", "commit:", "torch", "mpmath", "direction search",
                 "@inproceedings{cohen2019certified", "only as good as the direction search"):
        assert text in md


def test_same_seed_same_bytes(capsys, tmp_path):
    args = ["--certificate", "teng", *TINY, "--seed", "3"]
    assert run(capsys, *args, "--out", tmp_path / "a")[0] == 0
    assert run(capsys, *args, "--out", tmp_path / "b")[0] == 0
    a, b = files_under(tmp_path / "a"), files_under(tmp_path / "b")
    for name in ("teng/teng-l1-sigma1.csv", "teng/teng-l1-sigma1.json", "teng/teng-l1-sigma1.png"):
        assert a[name] == b[name]
    strip = lambda text: [ln for ln in text.decode().splitlines() if not ln.startswith(("- versions:", "- commit:"))]
    assert strip(a["teng/teng-l1-sigma1.md"]) == strip(b["teng/teng-l1-sigma1.md"])
    assert run(capsys, "--certificate", "teng", *TINY, "--seed", "4", "--out", tmp_path / "c")[0] == 0
    assert files_under(tmp_path / "c")["teng/teng-l1-sigma1.csv"] != a["teng/teng-l1-sigma1.csv"]


@pytest.mark.parametrize("failure", ["render", "replace"])
def test_interrupted_run_keeps_previous_files(capsys, tmp_path, monkeypatch, failure):
    args = ["--certificate", "cohen", "--norm", "2", *TINY, "--out", tmp_path]
    assert run(capsys, *args)[0] == 0
    before = files_under(tmp_path)

    if failure == "render":  # interrupted after the CSV and JSON are rendered, before the plot
        def boom(audit):
            raise KeyboardInterrupt
        monkeypatch.setattr(report, "plot_png", boom)
        expected = 130
    else:  # the disk fails at the first move into place
        def boom(src, dst):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(report.os, "replace", boom)
        expected = 2
    code, _, err = run(capsys, *args[:-2], "--seed", "9", "--out", tmp_path)
    assert code == expected and len(err.strip().splitlines()) == 1
    assert files_under(tmp_path) == before  # previous files intact, no temporary files left


def test_fail_on(capsys, tmp_path):
    planted = f"{PLANTED}:INFLATED_5"
    args = ["--certificate", planted, "--dim", "8", "--samples", "20000", "--p-a", "0.7,0.9",
            "--backend", "mc", "--out", tmp_path]
    code, out, _ = run(capsys, *args, "--fail-on", "suspect")
    assert code == 1 and "SUSPECT" in out
    assert run(capsys, *args)[0] == 0  # --fail-on never is the default
    assert run(capsys, "--certificate", "pixeldp-laplace", *TINY, "--out", tmp_path, "--fail-on", "loose")[0] == 1
    assert run(capsys, "--certificate", "pixeldp-laplace", *TINY, "--out", tmp_path, "--fail-on", "suspect")[0] == 0


@pytest.mark.parametrize("args", [
    ["--certificate", "no-such-certificate"],
    ["--certificate", "cohen", "--norm", "3"],
    ["--certificate", "teng", "--norm", "banana"],
    ["--certificate", "cohen", "--p-a", "0.4,0.9"],
    ["--certificate", "cohen", "--p-a", "0.6:0.9"],
    ["--certificate", "cohen", "--p-a", "abc"],
    ["--certificate", "cohen", "--dim", "0"],
    ["--certificate", "cohen", "--dim", "eight"],
    ["--certificate", "cohen", "--samples", "10"],
    ["--certificate", "cohen", "--tolerance", "2"],
    ["--certificate", "cohen", "--confidence", "1"],
    ["--certificate", "cohen", "--shape", "beta=2"],
    ["--certificate", "yang-general-normal-l1", "--shape", "beta"],
    ["--certificate", "yang-lomax-l1", "--shape", "a=1.5"],
    ["--certificate", "yang-l2-exp-l2", "--dim", "1"],
    ["--certificate", "cohen", "--all"],
    ["--certificate", "cohen", "--no-such-option"],
    ["--certificate", "cohen", "--backend", "quantum"],
    ["--certificate", "cohen", "--threads", "0"],
    ["--sigma", "1"],
    ["--certificate", "cohen", "--sigma", "-1"],
    ["--recheck", "does-not-exist.json"],
])
def test_bad_input_exit_2(capsys, tmp_path, args):
    code, out, err = run(capsys, *args, "--out", tmp_path / "out")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("unicr-audit: error: ")
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("spec, message", [
    ("{dir}/plugin.py:", "malformed"),
    ("{dir}/plugin.py:1abc", "malformed"),
    ("{dir}/missing.py:MINE", "does not exist"),
    ("{dir}/plugin.py:NOPE", "no attribute"),
    ("{dir}/plugin.py:NOT_A_CERTIFICATE", "must be a certificates.Certificate"),
    ("{dir}/broken.py:X", "failed to load"),
    ("not a module:MINE", "malformed"),
    ("no_such_module_xyz:MINE", "failed to import"),
    (":MINE", "malformed"),
])
def test_malformed_plugins_exit_2(capsys, tmp_path, spec, message):
    (tmp_path / "plugin.py").write_text(PLUGIN)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    code, _, err = run(capsys, "--certificate", spec.format(dir=tmp_path), *TINY, "--out", tmp_path / "out")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_plugins_from_file_and_module(capsys, tmp_path, monkeypatch):
    (tmp_path / "plugin.py").write_text(PLUGIN)
    out = tmp_path / "out"
    code, text, _ = run(capsys, "--certificate", f"{tmp_path}/plugin.py:MINE", *TINY, "--out", out)
    assert code == 0 and "my-cohen" in text
    monkeypatch.chdir(tmp_path)
    code, text, _ = run(capsys, "--certificate", "plugin:BOTH", *TINY, "--out", out, "--json")
    records = json.loads(text)
    assert code == 0 and [r["certificate"] for r in records] == ["my-cohen", "my-half-cohen"]
    assert records[0]["source"] == "plugin:BOTH" and records[1]["verdict"] == "loose"
    assert (out / "my-half-cohen" / "my-half-cohen-l2-sigma1.md").exists()
    assert "external: `plugin:BOTH`" in (out / "my-half-cohen" / "my-half-cohen-l2-sigma1.md").read_text()


def test_recheck(capsys, tmp_path):
    out = tmp_path / "out"
    code, text, _ = run(capsys, "--certificate", f"{PLANTED}:INFLATED_5", "--dim", "8", "--samples", "20000",
                        "--p-a", "0.7,0.9", "--backend", "mc", "--out", out, "--json")
    assert code == 0
    summary = out / "planted-cohen-inflated-5pct" / "planted-cohen-inflated-5pct-l2-sigma1.json"
    rows = json.loads(summary.read_text())["rows"]
    suspects = [r for r in rows if r["verdict"] == "suspect"]
    assert suspects and all(r["witness"]["norm"] < r["claimed"] and r["margin"]["holds"] for r in suspects)
    # a case summary, a --json list, and a single witness file all re-check
    (tmp_path / "run.json").write_text(text)
    single = {"noise": json.loads(summary.read_text())["noise"], "p_a": suspects[0]["p_a"],
              "witness": suspects[0]["witness"], "samples": 20000}
    (tmp_path / "witness.json").write_text(json.dumps(single))
    for path in (summary, tmp_path / "run.json", tmp_path / "witness.json"):
        code, text, _ = run(capsys, "--recheck", path, "--json")
        results = json.loads(text)
        assert code == 0 and len(results) == (1 if path.name == "witness.json" else len(suspects))
        assert all(r["holds"] and r["upper"] <= 0 for r in results)
        assert all(r["backend"] == "exact" for r in results)  # Gaussian: the deterministic backend
    code, text, _ = run(capsys, "--recheck", summary)
    assert code == 0 and "holds" in text
    # a witness that does not refute: delta far inside the certified ball
    weak = dict(single, witness=dict(single["witness"], scale=single["witness"]["scale"] / 2,
                                     groups=[{"count": g["count"], "value": g["value"] / 2}
                                             for g in single["witness"]["groups"]]))
    (tmp_path / "weak.json").write_text(json.dumps(weak))
    code, text, _ = run(capsys, "--recheck", tmp_path / "weak.json", "--json")
    assert code == 0 and json.loads(text)[0]["holds"] is False


def test_recheck_malformed_file_exit_2(capsys, tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "odd.json").write_text(json.dumps({"something": 1}))
    for name in ("bad.json", "odd.json"):
        code, _, err = run(capsys, "--recheck", tmp_path / name)
        assert code == 2 and len(err.strip().splitlines()) == 1


def test_module_entry_point_exit_codes(tmp_path):
    """What a user sees: ``python -m unicr.audit`` with bad input prints one line and no traceback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    bad = subprocess.run([sys.executable, "-m", "unicr.audit", "--certificate", "nope", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert "unknown certificate 'nope'" in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "unicr.audit", "--certificate", "teng", *TINY, "--threads", "1",
                         "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert ok.returncode == 0 and "TIGHT" in ok.stdout and "Traceback" not in ok.stderr
    assert (tmp_path / "teng" / "teng-l1-sigma1.csv").exists()


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_golden_report(capsys, tmp_path):
    """Regenerate the committed golden case (results/golden) and compare its numbers.

    ``UNICR_REGENERATE_GOLDEN=1`` rewrites the committed files instead.
    """
    regenerate = os.environ.get("UNICR_REGENERATE_GOLDEN") == "1"
    out = GOLDEN_DIR if regenerate else tmp_path
    assert run(capsys, *GOLDEN_ARGS, "--out", out)[0] == 0
    committed = _read_csv(GOLDEN_DIR / "cohen" / "cohen-l2-sigma1.csv")
    fresh = _read_csv(out / "cohen" / "cohen-l2-sigma1.csv")
    assert [r.keys() for r in fresh] == [r.keys() for r in committed] and len(fresh) == len(committed) == 4
    for new, old in zip(fresh, committed):
        for key in report.CSV_COLUMNS:
            if key in ("verdict", "direction", "backend", "support"):
                assert new[key] == old[key], key
            else:
                assert math.isclose(float(new[key]), float(old[key]), rel_tol=1e-9, abs_tol=1e-12), key
