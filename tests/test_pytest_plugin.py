"""The pytest plugin (unicr/pytest_plugin.py): the unicr_audit fixture, its options, its failure message,
and the acceptance: it works from a directory holding only a test file and a certificate.

Budget (tests/budget.py): every audit here is of Gaussian noise in l2 or Laplace noise in l1, where
the backend 'auto' is the deterministic one (rows and witness margins are marked 'exact', which
the tests check): the verdicts do not depend on the draws, so a tight claim is never suspect and
an over-claim of 10-50% is always suspect, with its witness confirmed exactly (false-failure
rate 0).
"""
from __future__ import annotations

import os
import subprocess
import sys
from statistics import NormalDist

import pytest

import certificates
from unicr.audit import Audit
from unicr.pytest_plugin import DEFAULTS, AuditResult, audit_certificate

pytest_plugins = ["pytester"]

#: Cohen's l2 radius, over-claimed by 10%, and by 50% at p_A = 0.8 (the worst row)
CERTIFICATE = '''
from statistics import NormalDist

import certificates


def radius(p_a, sigma):
    return (1.5 if p_a == 0.8 else 1.1) * sigma * NormalDist().inv_cdf(p_a)


TIGHT = certificates.define("my-cohen", "gaussian", 2, lambda p_a, sigma: sigma * NormalDist().inv_cdf(p_a), "tight")
OVER = certificates.define("my-cohen-over", "gaussian", 2, radius)
'''
#: the worst row's claim: 1.5 Phi^-1(0.8)
WORST = f"{1.5 * NormalDist().inv_cdf(0.8):.6g}"

USER_TESTS = '''
from my_cert import OVER, TIGHT


def test_tight(unicr_audit):
    assert unicr_audit(TIGHT, dim=16).verdict != "suspect"


def test_over(unicr_audit):
    assert unicr_audit(OVER, dim=16).verdict != "suspect"
'''

FAILURE_LINES = [
    "*assert 'suspect' != 'suspect'",
    "*unicr audit my-cohen-over l2 sigma=1: suspect, rows t/l/s/u 0/0/5/0 (dim=16, samples=10000, seed=0, "
    "confidence=0.9999)",
    f"*worst row p_A=0.8 (suspect): R_C={WORST}, R_U=* in [[]*, *] (exact), R_C/R_hi - 1 = +0.5",
    "*witness: delta = * of 16 coordinates* ||delta||_2 = * < R_C",
    "*K(delta) in [[]-*, -*] at level 0.99998 (exact, independent run): <= 0, the claim fails at delta",
]


def over_claim():
    namespace = {}
    exec(CERTIFICATE, namespace)
    return namespace["OVER"]


def test_result_holds_verdict_rows_and_witnesses():
    result = audit_certificate(over_claim(), dim=16)
    assert isinstance(result, AuditResult) and isinstance(result.audit, Audit)
    assert result.verdict == "suspect" and isinstance(result.verdict, str)
    assert [r.p_a for r in result.rows] == list(DEFAULTS["p_a"])
    assert {r.backend for r in result.rows} == {"exact"}
    assert result.worst.p_a == 0.8 and result.worst.excess == pytest.approx(0.5, rel=1e-9)
    assert len(result.witnesses) == 5
    for row, witness in zip(result.rows, result.witnesses):
        assert row.witness is witness and witness.delta_norm < row.claimed
        assert row.margin["holds"] and row.margin["backend"] == "exact"
    assert repr(result) == "<unicr audit my-cohen-over l2 sigma=1: suspect>"


def test_defaults_and_catalog_names():
    result = audit_certificate("teng", dim=16)
    assert result.verdict == "tight" and result.witnesses == ()
    assert {r.backend for r in result.rows} == {"exact"}
    assert result.settings.samples == DEFAULTS["samples"] and result.settings.seed == DEFAULTS["seed"]
    assert result.settings.confidence == DEFAULTS["confidence"]
    assert result.audit.case.norm == 1 and result.audit.case.source == "catalog"
    assert audit_certificate(certificates.get("cohen"), 2, dim=16).audit.case.source == "catalog"


def test_bad_calls_raise_clear_errors():
    with pytest.raises(TypeError, match=r"unknown setting 'sample' \(did you mean 'samples'\?\); settings: dim, "
                                        r"p_a, samples, seed, .*; also sigma, scale, shape"):
        audit_certificate("teng", sample=1000)
    with pytest.raises(ValueError, match=r"'cohen' certifies l2, l1, linf: pass norm="):
        audit_certificate("cohen")
    with pytest.raises(ValueError, match=r"'pixeldp' names \d+ certificates \(pixeldp-laplace, .*\): audit one per "):
        audit_certificate("pixeldp")
    with pytest.raises(TypeError, match="must be a certificates.Certificate or a name, got int"):
        audit_certificate(3)


def test_loading_the_plugin_imports_no_engine():
    """pytest loads the plugin in every session wherever unicr is installed: torch and unicr.audit wait for
    the first audit."""
    code = "import sys, unicr.pytest_plugin; print(sorted({'torch', 'unicr.audit'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_tight_catalog_certificates_pass(pytester):
    pytester.makepyfile('''
        import pytest


        @pytest.mark.parametrize("name, norm", [("teng", None), ("cohen", 2), ("cohen", "l2")])
        def test_tight(unicr_audit, name, norm):
            assert unicr_audit(name, norm, dim=16).verdict == "tight"
    ''')
    pytester.runpytest().assert_outcomes(passed=3)


def test_over_claim_fails_with_worst_row_and_witness(pytester):
    pytester.makepyfile(my_cert=CERTIFICATE, test_user=USER_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(FAILURE_LINES)


def test_options_reach_the_settings(pytester):
    pytester.makepyfile('''
        def test_settings(unicr_audit):
            settings = unicr_audit("cohen", 2, dim=16, samples=500, seed=1).settings
            print("SETTINGS", settings.samples, settings.seed)


        def test_unknown_setting(unicr_audit):
            unicr_audit("cohen", 2, sample=500)
    ''')
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*SETTINGS 500 1*", "*TypeError: unicr_audit() got an unknown setting 'sample'*"])
    result = pytester.runpytest("-s", "--unicr-samples=3000", "--unicr-seed=7")
    result.stdout.fnmatch_lines(["*SETTINGS 3000 7*"])


def test_bad_option_values_are_usage_errors(pytester):
    result = pytester.runpytest("--unicr-samples=5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--unicr-samples: must be an integer >= 100, got '5'*"])
    result = pytester.runpytest("--unicr-seed=-1")
    result.stderr.fnmatch_lines(["*--unicr-seed: must be an integer >= 0, got '-1'*"])
    pytester.runpytest("--help").stdout.fnmatch_lines(["*unicr certificate audits*", "*--unicr-samples=N*",
                                                       "*--unicr-seed=N*"])


def test_works_from_a_directory_with_only_a_test_and_a_certificate(tmp_path):
    """A user's CI: a fresh Python process in a directory with no conftest or settings, the fixture
    coming from the installed entry point alone (and gone with -p no:unicr)."""
    (tmp_path / "my_cert.py").write_text(CERTIFICATE)
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)

    done = run()
    assert done.returncode == 1, done.stdout + done.stderr
    result = pytest.LineMatcher(done.stdout.splitlines())
    result.fnmatch_lines(["*test_user.py .F*", *FAILURE_LINES, "*1 failed, 1 passed*"])
    done = run("-p", "no:unicr")
    pytest.LineMatcher(done.stdout.splitlines()).fnmatch_lines(["*fixture 'unicr_audit' not found*"])
