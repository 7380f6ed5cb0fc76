"""``python -m unicr.audit --log FILE`` (issue 9): audit a certification log against the noise, sigma,
n and alpha it claims.

Clean logs (certified by ``unicr.certify``, written by ``unicr.logs``, in unicr's and Cohen's
``{:.3}`` format: tests/data/logs/make_logs.py) pass; planted defects are flagged with their
reasons and nothing else is (one table, one check). References are computed here with scipy or
mpmath directly: the ceiling sigma * Phi^-1(alpha^(1/n)) and, by brute force over every k, the
attainable radii. The published logs of Cohen et al. (locuslab/smoothing) carry no license, so they
are not shipped: set UNICR_SMOOTHING_REPO to a checkout of that repository to run their test.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shlex
import time
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
from scipy import stats

from tests.test_imports import HEAVY, SCRIPT, python
from unicr.audit import main
from unicr.audit.logaudit import LogSettings, audit_log, load, tolerance
from unicr.logs import format_row, header, read_log, write_log

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "tests" / "data" / "logs"
_spec = importlib.util.spec_from_file_location("make_logs", LOGS / "make_logs.py")
make_logs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_logs)

GAUSSIAN = LogSettings(noise="gaussian", sigma=make_logs.SIGMA, n=make_logs.N, alpha=make_logs.ALPHA)
LAPLACE = LogSettings(noise="laplace", sigma=0.5, norm=1, n=make_logs.N, alpha=make_logs.ALPHA)


def claims(noise="gaussian", sigma=make_logs.SIGMA, n=make_logs.N, alpha=make_logs.ALPHA) -> list[str]:
    """The command-line options of a log's claims."""
    return ["--noise", noise, "--sigma", str(sigma), "--n", str(n), "--alpha", str(alpha)]


CLI = claims()


def gaussian_ceiling(sigma: float, n: int, alpha: float) -> float:
    """sigma * Phi^-1(alpha^(1/n)), in mpmath at 30 digits (independent of the code under test)."""
    with mp.workdps(30):
        p = mp.mpf(alpha) ** (mp.mpf(1) / n)
        return float(sigma * mp.sqrt(2) * mp.erfinv(2 * p - 1))


def attainable(sigma: float, n: int, alpha: float) -> np.ndarray:
    """Every radius Cohen's CERTIFY can return: sigma * Phi^-1(CP_lower(k)) for k = 1..n, 0 at or below 1/2."""
    k = np.arange(1, n + 1)
    p = stats.beta.ppf(alpha, k, n - k + 1)
    return np.concatenate([[0.0], sigma * stats.norm.ppf(p[p > 0.5])])


def reasons(path: Path, settings: LogSettings) -> dict[int, set[str]]:
    """file line -> the reasons the audit gives."""
    found: dict[int, set[str]] = {}
    for f in audit_log(load(path), settings).findings:
        found.setdefault(f.line, set()).add(f.reason)
    return found


# -- tolerance: half a unit in the last printed digit ---------------------------------------------

@pytest.mark.parametrize("text, half_unit", [("0.512", 5e-4), ("1.2e-05", 5e-7), ("0.0", 0.05), ("1", 0.5),
                                             ("0.6158156536952027", 5e-17), ("1.23", 5e-3)])
def test_tolerance_is_half_a_unit_in_the_last_printed_digit(text, half_unit):
    assert tolerance(text, float(text)) == pytest.approx(half_unit + 1e-9 * float(text) + 1e-12, rel=1e-12)


# -- clean logs pass -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, settings", [("gaussian-l2-unicr.tsv", GAUSSIAN), ("gaussian-l2-cohen.tsv", GAUSSIAN),
                                            ("laplace-l1-unicr.tsv", LAPLACE)])
def test_clean_logs_pass_and_the_ceiling_is_the_closed_form(name, settings):
    result = audit_log(load(LOGS / name), settings)
    assert result.findings == () and not result.approximate
    p = settings.alpha ** (1 / settings.n)
    if settings.noise == "gaussian":
        assert result.ceiling == pytest.approx(gaussian_ceiling(settings.sigma, settings.n, settings.alpha), rel=1e-12)
    else:   # Teng et al.: R = -lambda log(2 (1 - p_A)), lambda = sigma / sqrt(2)
        assert result.ceiling == pytest.approx(-settings.sigma / np.sqrt(2) * np.log(2 * (1 - p)), rel=1e-9)
    top = max(r.radius for r in result.log.rows)
    assert top == pytest.approx(result.ceiling, rel=1e-3)   # the +-5 sigma inputs got all n votes


def test_cohen_rounding_above_the_ceiling_is_not_flagged():
    """Cohen's {:.3} prints the ceiling 0.61582 as 0.616: above it, within the printing tolerance."""
    ceiling = gaussian_ceiling(GAUSSIAN.sigma, GAUSSIAN.n, GAUSSIAN.alpha)
    texts = [t for t in load(LOGS / "gaussian-l2-cohen.tsv").radius_texts if float(t) > ceiling]
    assert texts and set(texts) == {"0.616"}


def test_fixtures_are_what_make_logs_writes(tmp_path):
    for path in make_logs.write_all(tmp_path):
        assert path.read_bytes() == (LOGS / path.name).read_bytes(), path.name


# -- planted defects -------------------------------------------------------------------------------

CLEAN = read_log(LOGS / "gaussian-l2-unicr.tsv")
CEILING = gaussian_ceiling(GAUSSIAN.sigma, GAUSSIAN.n, GAUSSIAN.alpha)
TWO_SIGMA = 2 * GAUSSIAN.sigma * stats.norm.ppf(CLEAN[2].p_a_lower)

# (format, {row: {field: value}} (a str radius is written verbatim), {file line: reasons}); row i is line i + 2
CASES = {
    "clean-unicr": ("unicr", {}, {}),
    "clean-cohen": ("cohen", {}, {}),
    "ceiling-unicr": ("unicr", {0: {"radius": CEILING * (1 + 1e-6)}}, {2: {"ceiling", "inconsistent", "recomputed"}}),
    "ceiling-4-digits": ("cohen", {13: {"radius": "0.6163"}}, {15: {"ceiling", "inconsistent"}}),
    "ceiling-2-digits-is-rounding": ("cohen", {13: {"radius": "0.62"}}, {}),
    "two-sigma-unicr": ("unicr", {2: {"radius": TWO_SIGMA}}, {4: {"inconsistent", "recomputed"}}),
    "two-sigma-at-k=n-cohen": ("cohen", {0: {"radius": format(2 * CEILING, ".3")}}, {2: {"ceiling", "inconsistent"}}),
    "abstain-with-radius": ("cohen", {5: {"radius": 0.1}}, {7: {"abstain"}}),
    "wrong-correct": ("unicr", {9: {"correct": 1}, 10: {"correct": 0}}, {11: {"correct"}, 12: {"correct"}}),
}


def write_case(path: Path, fmt: str, edits: dict) -> Path:
    rows = list(CLEAN)
    verbatim = {}
    for i, change in edits.items():
        if isinstance(change.get("radius"), str):
            verbatim[i] = change["radius"]
            change = {**change, "radius": float(change["radius"])}
        rows[i] = dataclasses.replace(rows[i], **change)
    text = make_logs.cohen_text(rows) if fmt == "cohen" else header() + "\n" + "".join(format_row(r) + "\n" for r in rows)
    lines = text.splitlines()
    for i, radius in verbatim.items():
        cells = lines[i + 1].split("\t")
        cells[3] = radius
        lines[i + 1] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("fmt, edits, expected", CASES.values(), ids=CASES.keys())
def test_planted_defects_are_flagged_with_their_reason(tmp_path, fmt, edits, expected):
    assert reasons(write_case(tmp_path / "log.tsv", fmt, edits), GAUSSIAN) == expected


def test_planted_fixture():
    assert reasons(LOGS / "planted-cohen.tsv", GAUSSIAN) == make_logs.PLANTED


def test_consistency_matches_brute_force_over_every_k(tmp_path):
    """Random radii printed with 2 to 5 decimals: consistent iff some attainable radius lies within
    half a unit of the last decimal (brute force over k = 0..n, scipy only)."""
    rng = np.random.default_rng(0)
    radii = attainable(GAUSSIAN.sigma, GAUSSIAN.n, GAUSSIAN.alpha)
    decimals = rng.integers(2, 6, 400)
    values = np.concatenate([rng.uniform(0, 0.6, 300), rng.choice(radii, 100)])
    texts = [format(r, f".{d}f") for r, d in zip(values, decimals)]
    path = tmp_path / "random.tsv"
    path.write_text(make_logs.cohen_text([]) + "".join(f"{i}\t0\t0\t{t}\t1\t0:00:00\n" for i, t in enumerate(texts)))
    expected = {i + 2 for i, (t, d) in enumerate(zip(texts, decimals))
                if np.min(np.abs(radii - float(t))) > 0.5 * 10.0 ** -int(d) + 1e-9 * float(t) + 1e-12}
    found = reasons(path, GAUSSIAN)
    assert set(found) == expected and 0 < len(expected) < 300
    assert all(r == {"inconsistent"} for r in found.values())


def test_n_100000_and_thousands_of_rows_is_fast(tmp_path):
    """Cohen's n = 100000: 3000 rows of distinct attainable radii at repr precision, none flagged."""
    n, alpha, sigma = 100_000, 0.001, 0.25
    k = np.random.default_rng(1).choice(np.arange(51_000, n + 1), 3000, replace=False)
    radii = sigma * stats.norm.ppf(stats.beta.ppf(alpha, k, n - k + 1))
    path = tmp_path / "big.tsv"
    path.write_text(make_logs.cohen_text([]) + "".join(f"{i}\t0\t0\t{float(r)!r}\t1\t0:00:00\n" for i, r in enumerate(radii)))
    start = time.perf_counter()
    result = audit_log(load(path), LogSettings(noise="gaussian", sigma=sigma, n=n, alpha=alpha))
    assert result.findings == ()
    assert time.perf_counter() - start < 30
    assert result.ceiling == pytest.approx(gaussian_ceiling(sigma, n, alpha), rel=1e-12) and 0.95 < result.ceiling < 0.96


def test_engine_radius_logs_are_audited_as_approximate(tmp_path):
    """No catalog certificate for logistic noise in l1: the radius (certify's and the audit's) is the
    engine curve's, and the audit says so."""
    import torch

    import unicr
    from unicr.logs import LogRow

    noise = unicr.noise("logistic", sigma=0.5, dim=4)
    rows = []
    for idx, t in enumerate((-3.0, 0.4, 1.0, 3.0)):
        x = torch.tensor([t * 0.5, 0.0, 0.0, 0.0], dtype=torch.float64)
        result = unicr.certify(make_logs.halfspace, x, noise, 1, n=1000, alpha=0.001, seed=idx)
        rows.append(LogRow.from_certification(idx, int(t > 0), result))
    assert {r.basis for r in rows} == {"approximate"}
    path = write_log(tmp_path / "logistic.tsv", rows)
    result = audit_log(load(path), LogSettings(noise="logistic", sigma=0.5, norm=1, dim=4, n=1000, alpha=0.001))
    assert result.approximate and "approximate" in result.radius
    assert result.findings == ()
    assert max(r.radius for r in rows) <= result.ceiling


# -- the certified-accuracy table ------------------------------------------------------------------

def test_accuracy_table_is_recomputed_from_the_rows():
    result = audit_log(load(LOGS / "gaussian-l2-cohen.tsv"), GAUSSIAN)
    rows = result.log.rows
    assert result.radii == (0.0, 0.25, 0.5, 0.75)
    expected = [sum(r.correct and not r.abstained and r.radius >= t for r in rows) / len(rows) for t in result.radii]
    assert result.accuracy == pytest.approx(expected)
    # score: the mean certified radius of the correct predictions, counting the others as 0
    assert result.score == pytest.approx(sum(r.radius for r in rows if r.correct) / len(rows))


# -- the published logs of Cohen et al. ------------------------------------------------------------

SMOOTHING = os.environ.get("UNICR_SMOOTHING_REPO")


@pytest.mark.skipif(not SMOOTHING, reason="set UNICR_SMOOTHING_REPO to a checkout of locuslab/smoothing "
                                          "(its logs carry no license and are not shipped)")
@pytest.mark.parametrize("path, rows, published", [
    # analysis/markdown/vary_noise_cifar10: certified accuracy at r = 0.25, 0.5, 0.75, 1.0
    ("data/certify/cifar10/resnet110/noise_0.25/test/sigma_0.25", 500, {0.25: 0.60, 0.5: 0.43, 0.75: 0.27, 1.0: 0.0}),
    # README.md, ImageNet table: r = 0, 0.5, 1.0
    ("data/certify/imagenet/resnet50/noise_0.25/test/sigma_0.25", 427, {0.0: 0.67, 0.5: 0.49, 1.0: 0.0}),
])
def test_published_cohen_logs(path, rows, published):
    """Cohen et al. state n = 100000, alpha = 0.001: their sigma = 0.25 logs hold radii up to 0.978,
    above the ceiling 0.25 Phi^-1(0.001^(1/100000)) = 0.9529, so those rows are flagged (counted here
    independently); at alpha = 0.01 (ceiling 0.9776) every row is consistent. The recomputed
    accuracies match the published tables to their two digits."""
    log = load(Path(SMOOTHING) / path)
    assert len(log.rows) == rows
    ceiling = gaussian_ceiling(0.25, 100_000, 0.001)
    over = {line for line, t, r in zip(log.lines, log.radius_texts, log.rows)
            if not r.abstained and float(t) > ceiling + 0.5 * 10.0 ** -(len(t.split(".")[1]))}
    result = audit_log(log, LogSettings(noise="gaussian", sigma=0.25, n=100_000, alpha=0.001))
    assert result.ceiling == pytest.approx(ceiling, rel=1e-12)
    assert over and {f.line for f in result.findings if f.reason == "ceiling"} == over
    assert audit_log(log, LogSettings(noise="gaussian", sigma=0.25, n=100_000, alpha=0.01)).findings == ()
    got = dict(zip(result.radii, result.accuracy))
    assert {r: round(got[r], 2) for r in published} == published


# -- the command line ------------------------------------------------------------------------------

def run(capsys, args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_fail_on_flagged_and_reports(capsys, tmp_path):
    planted, clean = LOGS / "planted-cohen.tsv", LOGS / "gaussian-l2-cohen.tsv"
    assert run(capsys, ["--log", planted, *CLI])[0] == 0
    assert run(capsys, ["--log", clean, *CLI, "--fail-on", "flagged"])[0] == 0
    code, out, err = run(capsys, ["--log", planted, *CLI, "--fail-on", "flagged", "--out", tmp_path / "out"])
    assert code == 1 and err == ""
    assert "flagged rows: 4 of 15" in out and f"= {CEILING:.6g}" in out
    slug = "__".join(part for part in planted.parts if part != "/")
    md, js = tmp_path / "out" / "log-audit" / f"{slug}.md", tmp_path / "out" / "log-audit" / f"{slug}.json"
    assert str(md) in out and str(js) in out
    record = json.loads(js.read_text())
    assert {(f["idx"], f["reason"]) for f in record["findings"]} == \
        {(line - 2, reason) for line, found in make_logs.PLANTED.items() for reason in found}
    assert record["ceiling"] == pytest.approx(CEILING) and record["flagged_rows"] == 4
    assert all(f"| {line} | {line - 2} |" in md.read_text() for line in make_logs.PLANTED)
    code, out, err = run(capsys, ["--log", clean, *CLI, "--json"])
    assert code == 0 and json.loads(out)["findings"] == [] and "flagged rows: 0 of 15" in err


BAD = {   # args (CLI's claims unless the case gives its own), one line on stderr
    "missing-file": (["--log", "{dir}/nosuch.tsv", *CLI], "cannot read log '{dir}/nosuch.tsv'"),
    "malformed-row": (["--log", "{dir}/short.tsv", *CLI], "{dir}/short.tsv:3: expected 6 tab-separated fields, got 5"),
    "negative-radius": (["--log", "{dir}/negative.tsv", *CLI], "{dir}/negative.tsv:2: column 'radius' must be >= 0"),
    "n-0": (["--log", "{clean}", *claims(n=0)], "--n must be an integer >= 1, got 0"),
    "alpha-1": (["--log", "{clean}", *claims(alpha=1)], "--alpha must lie in the open interval (0, 1), got 1.0"),
    "alpha-0": (["--log", "{clean}", *claims(alpha=0)], "--alpha must lie in the open interval (0, 1), got 0.0"),
    "sigma-0": (["--log", "{clean}", *claims(sigma=0)], "--sigma must satisfy 0 < --sigma < inf, got 0.0"),
    "sigma-negative": (["--log", "{clean}", *claims(sigma=-1)], "--sigma must satisfy 0 < --sigma < inf, got -1.0"),
    "two-sigmas": (["--log", "{clean}", *CLI, "--sigma", "0.5"], "--log takes one --sigma and at most one --norm"),
    "unknown-noise": (["--log", "{clean}", *claims(noise="nosuch")], "unknown noise 'nosuch'; allowed: "),
    "bad-norm": (["--log", "{clean}", *CLI, "--norm", "0"], "--norm"),
    "missing-n": (["--log", "{clean}", "--noise", "gaussian", "--sigma", "1", "--alpha", "0.01"], "--log needs --n"),
    "with-certificate": (["--log", "{clean}", *CLI, "--certificate", "cohen"], "--log cannot be combined with --certificate"),
    "with-all": (["--log", "{clean}", *CLI, "--all"], "--log cannot be combined with --all"),
    "with-rank": (["--log", "{clean}", *CLI, "--rank"], "--log cannot be combined with --rank"),
    "fail-on-suspect": (["--log", "{clean}", *CLI, "--fail-on", "suspect"], "with --log give --fail-on flagged"),
    "noise-without-log": (["--certificate", "cohen", "--noise", "gaussian"], "--noise applies to --log only"),
    "flagged-without-log": (["--certificate", "cohen", "--fail-on", "flagged"], "--fail-on flagged applies to --log only"),
}


@pytest.fixture
def folder(tmp_path) -> Path:
    (tmp_path / "short.tsv").write_text(make_logs.cohen_text([]) + "0\t0\t0\t0.1\t1\t0:00:00\n1\t0\t0\t0.1\t1\n")
    (tmp_path / "negative.tsv").write_text(make_logs.cohen_text([]) + "0\t0\t0\t-0.1\t1\t0:00:00\n")
    return tmp_path


@pytest.mark.parametrize("args, message", BAD.values(), ids=BAD.keys())
def test_bad_input_exits_2_with_one_line_and_no_report(capsys, folder, args, message):
    fill = lambda text: text.format(dir=folder, clean=LOGS / "gaussian-l2-cohen.tsv")
    code, out, err = run(capsys, [fill(a) for a in args] + ["--out", folder / "out"])
    assert code == 2 and out == ""
    assert err.startswith("unicr-audit: error: ") and err.count("\n") == 1 and fill(message) in err
    assert not (folder / "out").exists()


@pytest.mark.parametrize("argv", [["--help"], ["--log", "tests/data/logs/nosuch.tsv", *CLI],
                                  ["--log", "tests/data/logs/planted-cohen.tsv", *CLI, "--n", "0"],
                                  ["--log", "tests/data/logs/planted-cohen.tsv", *CLI, "--all"]])
def test_help_and_input_errors_load_no_heavy_modules(argv):
    code, loaded = json.loads(python(SCRIPT.format(heavy=HEAVY), json.dumps(argv)).splitlines()[-1])
    assert code == (0 if argv == ["--help"] else 2) and loaded == []


def test_readme_example(capsys, monkeypatch):
    """The README's log-audit command, run as written from the repository root: exit 1, 4 of 15 rows."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Audit a published certification log"):]
    command = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    argv = shlex.split(command.replace("\\\n", " "), comments=True)
    assert argv[:3] == ["python", "-m", "unicr.audit"]
    monkeypatch.chdir(ROOT)
    code, out, err = run(capsys, argv[3:])
    assert (code, err) == (1, "") and "flagged rows: 4 of 15" in out
    assert "exit 1: 4 of 15 rows flagged" in command


def test_bonferroni_logs(tmp_path, capsys):
    """A log of CERTIFY with p_b="bonferroni" (bounds at alpha/2, general radius): read as binary,
    its certified rows are not radii sigma Phi^-1(CP_lower(k, n, alpha)) (inconsistent), though
    none exceeds the binary ceiling; with ``bonferroni`` the ceiling is the lower
    sigma Phi^-1((alpha/2)^(1/n)) (mpmath) and nothing is flagged."""
    path = write_log(tmp_path / "bonferroni.tsv", make_logs.certify_rows("gaussian", make_logs.SIGMA, 2, "bonferroni"))
    log = load(path)
    certified = {r.idx for r in log.rows if not r.abstained}
    as_binary = audit_log(log, GAUSSIAN)
    assert {f.idx for f in as_binary.findings} == certified
    assert {f.reason for f in as_binary.findings} == {"inconsistent"}
    result = audit_log(log, dataclasses.replace(GAUSSIAN, bonferroni=True))
    assert result.findings == ()
    ceiling = gaussian_ceiling(make_logs.SIGMA, make_logs.N, make_logs.ALPHA / 2)
    assert result.ceiling == pytest.approx(ceiling, rel=1e-12) and ceiling < as_binary.ceiling
    assert max(r.radius for r in log.rows) == pytest.approx(ceiling, rel=1e-12)   # the +-5 sigma rows: all votes
    code, out, err = run(capsys, ["--log", path, *CLI, "--bonferroni", "--fail-on", "flagged"])
    assert (code, err) == (0, "") and "Bonferroni" in out and "flagged rows: 0 of 15" in out
    code, _, err = run(capsys, ["--certificate", "cohen", "--bonferroni"])
    assert code == 2 and "--bonferroni applies to --log only" in err
