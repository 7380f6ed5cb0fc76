"""The audit command line: exit codes, --list, --json, atomic and reproducible reports, plugins,
--recheck, and the golden report committed under tests/golden.

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

from tests.budget import joint_confidence
from unicr.audit import main, report

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "audits" / "planted.py"
TINY = ["--dim", "8", "--samples", "2000", "--p-a", "0.6,0.8,0.95", "--backend", "mc"]
#: confidence for assertions that a claim is *not* flagged: a false suspect or loose verdict needs
#: one of 3 + 1 band misses (tests/budget.py)
JOINT = str(joint_confidence(4))
#: the golden case: regenerate with UNICR_REGENERATE_GOLDEN=1 (see tests/golden/README.md)
GOLDEN_ARGS = ["--certificate", "cohen", "--norm", "2", "--dim", "64", "--p-a", "0.6,0.75,0.9,0.99",
               "--samples", "20000", "--seed", "0", "--backend", "mc"]
GOLDEN_DIR = ROOT / "tests" / "golden"

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

#: a plugin that registers its own noise and defines certificates for it in the same file
NOISE_PLUGIN = '''
import math
from scipy.special import ndtri
import certificates
import unicr
from certificates import Certificate, NoiseMap


def plugin_laplace(sigma=1.0, dim=1):
    """Laplace noise under a name of the plugin's own."""
    return unicr.noise("laplace", sigma=sigma, dim=dim)


unicr.register_noise("plugin-laplace", plugin_laplace)

TENG = certificates.define("plugin-teng", "plugin-laplace", 1,
                           lambda p_a, sigma: -sigma / math.sqrt(2) * math.log(2 * (1 - p_a)), claim="tight")
COHEN = certificates.define("plugin-cohen", "gaussian", 2,
                            lambda p_a, p_b, sigma: sigma / 2 * float(ndtri(p_a) - ndtri(p_b)),
                            claim="tight", domain="general")
MIXED = [COHEN, TENG]
GHOST = certificates.define("ghost", "no-such-noise", 2, lambda p_a, sigma: sigma * p_a)
WRONG = Certificate(name="wrong-laplace-scale", reference=TENG.reference,
                    noise=NoiseMap("laplace", scale="b", relation="sigma = b (wrong: sigma = sqrt(2) b)"),
                    norms=(1.0,), claim="sound", domain="binary",
                    radius_fn=lambda p_a, p_b, scale, dim, norm: -scale * math.log(2 * p_b))
'''

#: rs4a's uniform linf radius 2 lambda (1 - (3/2 - p_A)^(1/d)) evaluated in float32 (cancellation in 1 - x)
FLOAT32_PLUGIN = '''
import numpy as np
import certificates


def uniform_linf_float32(p_a, sigma, dim):
    lam = np.float32(np.sqrt(3.0) * sigma)
    return 2 * lam * (np.float32(1) - (np.float32(1.5) - np.float32(p_a)) ** np.float32(1 / dim))


def uniform_linf_nudged(p_a, sigma, dim):
    """The exact closed form times (1 + 1e-12): a rounding-level excess."""
    return -2 * np.sqrt(3.0) * sigma * np.expm1(np.log1p(0.5 - p_a) / dim) * (1 + 1e-12)


FLOAT32 = certificates.define("yang-uniform-linf-float32", "uniform", "inf", uniform_linf_float32, claim="tight")
NUDGED = certificates.define("yang-uniform-linf-nudged", "uniform", "inf", uniform_linf_nudged, claim="tight")
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
        monkeypatch.setattr(report, "plot", boom)
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
    # a sound claim: a (false) suspect verdict within the budget needs the joint confidence
    assert run(capsys, "--certificate", "pixeldp-laplace", *TINY, "--confidence", JOINT, "--out", tmp_path,
               "--fail-on", "suspect")[0] == 0


@pytest.mark.parametrize("case", [
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
    # (args, text the one-line message must hold); {dir} holds NOISE_PLUGIN as plugin.py
    (["--certificate", "{dir}/plugin.py:GHOST"],
     "uses noise 'no-such-noise', which is not registered in unicr: register it before auditing with "
     "unicr.register_noise('no-such-noise', factory)"),
    (["--certificate", "{dir}/plugin.py:WRONG"],
     "certificate 'wrong-laplace-scale' maps sigma=1 to b=1 (sigma = b (wrong: sigma = sqrt(2) b)), noise "
     "'laplace' has scale 0.707106781186547"),
    (["--certificate", "yang-lomax-l1", "--shape", "a=2"], "no finite variance; give its scale instead (--scale S"),
    (["--certificate", "yang-lomax-l1", "--shape", "a=1.5", "--sigma", "2"], "--scale S"),
    (["--certificate", "cohen", "--p-a", "0.6", "--p-b", "0.7"], "p_B must be smaller than p_A"),
    (["--certificate", "cohen", "--p-a", "0.6", "--p-b", "0.6"], "p_B must be smaller than p_A"),
    (["--certificate", "cohen", "--p-a", "0.6", "--p-b", "0.5"], "p_A + p_B must be <= 1"),
    (["--certificate", "cohen", "--p-a", "0.6", "--p-b", "-0.1"], "p_B must be >= 0"),
    (["--certificate", "cohen", "--p-a", "0.6", "--p-b", "nan"], "p_B must be >= 0"),
    (["--certificate", "cohen", "--p-b", "abc"], "invalid --p-b value 'abc'"),
    (["--certificate", "cohen", "--p-b", "0.1,"], "invalid --p-b value"),
    (["--certificate", "cohen", "--p-a", "0.6,0.7,0.8", "--p-b", "0.1,0.2"], "--p-b holds 2 values but the p_A grid has 3"),
    (["--certificate", "teng", "--p-b", "0.01"], "certificate 'teng' is binary"),
    (["--certificate", "cohen", "--certificate", "teng", "--p-b", "0.01"], "certificate 'teng' is binary"),
    (["--certificate", "yang", "--p-b", "0.01"], "every selected one is binary"),
    (["--certificate", "cohen", "--p-b", "0.1"], "p_A + p_B must be <= 1, got p_A=0.91, p_B=0.1 (the default p_A grid"),
    (["--rank", "--p-b", "0.1"], "--rank is a binary ranking"),
    (["--certificate", "cohen", "--suspect-tolerance", "1"], "suspect tolerance must be a number in [0, 1)"),
    (["--certificate", "cohen", "--suspect-tolerance=-1e-9"], "suspect tolerance must be a number in [0, 1)"),
    (["--certificate", "cohen", "--suspect-tolerance", "tiny"], "--suspect-tolerance"),
    (["--certificate", "cohen", "--sigma", "1", "--scale", "1"], "give either --sigma or --scale, not both"),
    (["--certificate", "yang-lomax-l1", "--shape", "a=1.5", "--scale", "0"], "scale must be a finite number > 0"),
    (["--certificate", "yang-lomax-l1", "--shape", "a=1.5", "--scale", "1", "--rank"], "--rank compares noises"),
])
def test_bad_input_exit_2(capsys, tmp_path, case):
    args, message = case if isinstance(case, tuple) else (case, "")
    (tmp_path / "plugin.py").write_text(NOISE_PLUGIN)
    code, out, err = run(capsys, *[a.format(dir=tmp_path) for a in args], "--out", tmp_path / "out")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("unicr-audit: error: ")
    assert message in err, err
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
    assert suspects and all(r["witness"]["delta_norm"] < r["claimed"] and r["margin"]["holds"] for r in suspects)
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
    """Regenerate the committed golden case (tests/golden) and compare its numbers.

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


# -- any noise, general (p_A, p_B), scale, rounding-aware verdicts ------------------------------------

def test_plugin_registers_its_own_noise(capsys, tmp_path):
    """A plugin file may register a noise and define certificates for it in the same file."""
    (tmp_path / "noise_plugin.py").write_text(NOISE_PLUGIN)
    out = tmp_path / "out"
    code, text, _ = run(capsys, "--certificate", f"{tmp_path}/noise_plugin.py:TENG", *TINY, "--confidence", JOINT,
                        "--out", out, "--json")
    assert code == 0
    (rec,) = json.loads(text)
    assert rec["certificate"] == "plugin-teng" and rec["noise"]["family"] == "plugin-laplace"
    assert rec["verdict"] == "tight" and rec["reference"]["cite"] == "unpublished"
    assert (out / "plugin-teng" / "plugin-teng-l1-sigma1.md").exists()


def test_general_audit(capsys, tmp_path):
    out = tmp_path / "out"
    code, text, err = run(capsys, "--certificate", "cohen", "--norm", "2", *TINY, "--p-b", "0.03", "--out", out,
                          "--json")
    assert code == 0 and "general audit: p_B = 0.03" in err
    (rec,) = json.loads(text)
    assert [r["p_b"] for r in rec["rows"]] == [0.03] * 3 and rec["settings"]["p_b"] == [0.03] * 3
    assert rec["settings"]["general"] is True and rec["verdict"] == "tight"
    stem = out / "cohen" / "cohen-l2-sigma1-pb0.03"
    md = Path(f"{stem}.md").read_text()
    assert "binary case" not in md and "general (p_A, p_B) with p_B = 0.03 for every p_A" in md
    assert "| p_A | p_B | claimed R_C |" in md and "--p-b 0.03" in md
    rows = _read_csv(Path(f"{stem}.csv"))
    assert [float(r["p_b"]) for r in rows] == [0.03] * 3
    # the claim is Cohen's general radius (sigma/2)(Phi^-1(p_A) - Phi^-1(p_B))
    from scipy.special import ndtri
    assert [float(r["claimed"]) for r in rows] == pytest.approx([(ndtri(p) - ndtri(0.03)) / 2 for p in (0.6, 0.8, 0.95)],
                                                                rel=1e-11)
    # the stored command reproduces the case, --p-b included
    command = rec["command"].split()
    assert command[:3] == ["python", "-m", "unicr.audit"] and "--p-b" in command
    assert run(capsys, *command[3:], "--out", tmp_path / "again")[0] == 0
    assert (tmp_path / "again" / "cohen" / "cohen-l2-sigma1-pb0.03.csv").read_bytes() == Path(f"{stem}.csv").read_bytes()


def test_general_audit_pairs_skip_binary(capsys, tmp_path):
    (tmp_path / "noise_plugin.py").write_text(NOISE_PLUGIN)
    out = tmp_path / "out"
    code, text, err = run(capsys, "--certificate", f"{tmp_path}/noise_plugin.py:MIXED", *TINY,
                          "--p-b", "0.3,0.1,0.01", "--out", out, "--json")
    assert code == 0
    assert "note: --p-b: skipped 1 binary certificate (p_B = 1 - p_A only): plugin-teng" in err
    (rec,) = json.loads(text)  # plugin-teng skipped, plugin-cohen audited at the pairs
    assert rec["certificate"] == "plugin-cohen" and rec["verdict"] == "tight"
    assert [(r["p_a"], r["p_b"]) for r in rec["rows"]] == [(0.6, 0.3), (0.8, 0.1), (0.95, 0.01)]
    assert "--p-b 0.3,0.1,0.01" in rec["command"]
    names = [p.name for p in (out / "plugin-cohen").glob("*.csv")]
    assert len(names) == 1 and names[0].startswith("plugin-cohen-l2-sigma1-pbs")
    assert "p_B per p_A" in (out / "README.md").read_text()


def test_scale_and_shape_in_names(capsys, tmp_path):
    """--scale for a noise without a variance; shape parameters and sigma/scale in the file names, the
    default shape left out so that catalog names stay stable; different shapes never overwrite."""
    out = tmp_path / "out"
    tiny = ["--dim", "8", "--samples", "2000", "--p-a", "0.6,0.9", "--backend", "mc", "--out", out]
    code, text, _ = run(capsys, "--certificate", "yang-lomax-l1", "--shape", "a=1.5", "--scale", "1", "--scale", "2.5",
                        *tiny, "--json")
    assert code == 0
    records = json.loads(text)
    assert [(r["sigma"], r["scale"], r["shape"]) for r in records] == [(None, 1.0, {"a": 1.5}), (None, 2.5, {"a": 1.5})]
    assert records[0]["noise"]["scale"] == 1.0 and records[0]["label"] == "yang-lomax-l1 l1 scale=1 a=1.5"
    assert "--scale 1.0" in records[0]["command"] and "--shape a=1.5" in records[0]["command"]
    # the claim is evaluated at lambda = scale
    import certificates
    lomax = certificates.get("yang-lomax-l1")
    assert records[1]["rows"][0]["claimed"] == pytest.approx(lomax.radius_float(0.6, scale=2.5, a=1.5), rel=1e-11)
    assert run(capsys, "--certificate", "yang-lomax-l1", "--shape", "a=4", *tiny)[0] == 0
    assert run(capsys, "--certificate", "yang-lomax-l1", "--shape", "a=3", *tiny)[0] == 0  # the default: no suffix
    assert run(capsys, "--certificate", "yang-general-normal-l1", "--shape", "beta=1.5", *tiny)[0] == 0
    stems = sorted(p.stem for p in out.glob("*/*.csv"))
    assert stems == ["yang-general-normal-l1-l1-sigma1-beta1.5", "yang-lomax-l1-l1-scale1-a1.5",
                     "yang-lomax-l1-l1-scale2.5-a1.5", "yang-lomax-l1-l1-sigma1", "yang-lomax-l1-l1-sigma1-a4"]
    md = (out / "yang-lomax-l1" / "yang-lomax-l1-l1-scale1-a1.5.md").read_text()
    assert "# Audit of `yang-lomax-l1`: l1, scale = 1, a = 1.5, d = 8" in md and "scale = 1 (the noise's own scale" in md
    index = (out / "README.md").read_text()
    assert "[yang-lomax-l1 l1 scale=2.5 a=1.5]" in index and "[yang-lomax-l1 l1 sigma=1 a=4]" in index


def test_scale_of_a_noise_with_a_variance(capsys, tmp_path):
    """--scale also works where the noise takes its own scale: general-normal alpha = the certificate's lambda."""
    code, text, _ = run(capsys, "--certificate", "yang-general-normal-l1", "--scale", "0.7", "--shape", "beta=2",
                        *TINY, "--out", tmp_path, "--json")
    assert code == 0 and json.loads(text)[0]["verdict"] == "tight"


def test_verdict_rule_with_numerical_tolerance():
    from unicr.audit.verdicts import LOOSE, SUSPECT, TIGHT, excess, row_verdict
    r = 0.5
    assert row_verdict(r * (1 + 1e-12), r * (1 - 1e-11), r) == TIGHT          # rounding-level excess
    assert row_verdict(r * (1 + 1e-12), r * (1 - 1e-11), r, suspect_tolerance=0.0) == SUSPECT
    assert row_verdict(r * (1 + 6e-4), r * (1 - 1e-11), r) == SUSPECT          # a float32 over-claim
    assert row_verdict(r * (1 + 6e-4), r * 0.9, r, suspect_tolerance=1e-3) == TIGHT
    assert row_verdict(r * 0.98, r * (1 - 1e-11), r) == LOOSE
    assert row_verdict(1.0, 0.0, 0.0) == SUSPECT and row_verdict(0.0, 0.0, 0.0) == TIGHT
    assert excess(r * (1 + 6e-4), r) == pytest.approx(6e-4) and excess(0.0, 0.0) == 0.0
    assert excess(1.0, 0.0) == math.inf and excess(math.inf, math.inf) == 0.0


def test_settings_validation():
    from unicr.audit import Settings
    from unicr.audit.core import DEFAULT_GRID
    s = Settings(dim=8, p_a=(0.9, 0.6, 0.45, 0.6), p_b=(0.01, 0.3, 0.4, 0.1))
    assert s.p_a == (0.45, 0.6, 0.6, 0.9) and s.p_b == (0.4, 0.1, 0.3, 0.01) and s.general
    assert Settings(dim=8, p_b=0.01).p_b == (0.01,) * len(DEFAULT_GRID)
    assert Settings(dim=8).p_b is None and Settings(dim=8).suspect_tolerance == 1e-9
    for kw, match in ((dict(p_a=(0.6,), p_b=0.6), "smaller than p_A"), (dict(p_a=(0.6,), p_b=0.41), "<= 1"),
                      (dict(p_a=(0.6, 0.7), p_b=(0.1, 0.2, 0.3)), "one per p_A"), (dict(p_a=(0.4,)), "binary"),
                      (dict(suspect_tolerance=1.0), "suspect tolerance"), (dict(p_a=(0.6,), p_b="x"), "p_B")):
        with pytest.raises(ValueError, match=match):
            Settings(dim=8, **kw)


def test_float32_cancellation_is_suspect(capsys, tmp_path):
    """A formula that matches the exact closed form to 1e-12 is not suspect; the same formula in float32
    (cancellation in 1 - (3/2 - p_A)^(1/d), d = 3072) over-claims by up to 5e-4 and is flagged, with its
    excess R_C/R_hi - 1 reported per row, in the summary and in the final table."""
    (tmp_path / "f32.py").write_text(FLOAT32_PLUGIN)
    exact = ["--dim", "3072", "--p-a", "0.6,0.65,0.7,0.99", "--backend", "exact", "--search", "diagonal",
             "--out", tmp_path / "out"]
    code, text, _ = run(capsys, "--certificate", f"{tmp_path}/f32.py:NUDGED", *exact, "--json")
    (rec,) = json.loads(text)
    assert code == 0 and rec["verdict"] == "tight" and rec["summary"]["suspect"] == 0
    assert all(abs(r["excess"]) < 1e-11 for r in rec["rows"]), [r["excess"] for r in rec["rows"]]
    code, text, err = run(capsys, "--certificate", f"{tmp_path}/f32.py:FLOAT32", *exact, "--json", "--fail-on", "suspect")
    (rec,) = json.loads(text)
    assert code == 1 and rec["verdict"] == "suspect"
    verdicts = [r["verdict"] for r in rec["rows"]]
    assert verdicts == ["tight", "suspect", "suspect", "suspect"]  # p_A = 0.6 rounds down (-6.9e-4 < tau)
    excess = [r["excess"] for r in rec["rows"]]
    assert excess == pytest.approx([-6.93e-4, 5.11e-4, 3.14e-4, 1.19e-5], rel=2e-3)
    assert rec["summary"]["excess_max"] == pytest.approx(5.11e-4, rel=2e-3)
    assert all(r["margin"]["holds"] and r["margin"]["backend"] == "exact" for r in rec["rows"] if r["verdict"] == "suspect")
    stem = tmp_path / "out" / "yang-uniform-linf-float32" / "yang-uniform-linf-float32-linf-sigma1"
    assert [round(float(r["excess"]), 6) for r in _read_csv(stem.with_suffix(".csv"))] == [round(x, 6) for x in excess]
    md = stem.with_suffix(".md").read_text()
    assert "largest excess R_C/R_hi - 1 = +0.000511" in md and "| R_C/R_hi - 1 |" in md and "+0.000511 |" in md
    assert "+0.000511" in err  # the final table (on stderr with --json)
    # the strict rule flags the rounding-level excess too
    code, text, _ = run(capsys, "--certificate", f"{tmp_path}/f32.py:NUDGED", *exact, "--suspect-tolerance", "0",
                        "--json")
    rows = json.loads(text)[0]["rows"]
    assert [r["verdict"] in ("suspect", "unconfirmed") for r in rows] == [r["excess"] > 0 for r in rows]
    assert sum(r["excess"] > 0 for r in rows) >= 2
