"""Settings and expectations shared by the audit harness.

Quick selection (default, CI): d = 64, 12 values of p_A, 20 000 draws. Full sweep (``-m slow``):
d = 3072, the 45-point grid 0.55..0.99, 100 000 draws. Both use the Monte Carlo backend, so that
the harness exercises the engine the reports rest on.

Failure budget (tests/budget.py): a catalog case may disagree with its claim with probability at
most FAILURE_RATE for a correct engine and a correct claim. With band confidence c over a grid of
n p_A (see unicr.audit.verdicts):

* suspect needs a confirmed witness; for a sound or tight claim every delta below R_C has K > 0,
  and the confirmation runs at the Bonferroni level 1 - (1 - c)/m, so P(suspect) <= 1 - c;
* loose, for a tight claim (R_C = R* = R_U when the search finds the worst direction), needs
  R_lo (1 - tau) > R_C at some row, i.e. a band that misses R_U: P <= n (1 - c) (union bound).

So a case fails with probability <= (n + 1)(1 - c), and the settings ask for
c = joint_confidence(n + 1). (Loose verdicts of a tight claim also arise when the direction search
misses the worst direction: a systematic error, not a chance one, which the budget does not cover.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import certificates
from certificates import norm_label
from tests.budget import joint_confidence
from unicr.audit import Settings

_QUICK_GRID = tuple(np.round(np.linspace(0.55, 0.99, 12), 4))
QUICK = Settings(dim=64, p_a=_QUICK_GRID, samples=20_000, seed=0,
                 confidence=joint_confidence(len(_QUICK_GRID) + 1), backend="mc")
_FULL_POINTS = len(Settings().p_a)  # the default 45-point grid
FULL = Settings(dim=3072, samples=100_000, seed=0, confidence=joint_confidence(_FULL_POINTS + 1), backend="mc")
#: planted certificates: the quick grid with more draws (the Gaussian ray sampler makes them cheap),
#: at the quick selection's confidence, so that the planted errors are caught at the same false-alarm
#: rate as the catalog is audited with. Detection is power, not a false-failure rate: each planted
#: error (2% inflation at the least) lies several band widths beyond the band (see test_planted).
PLANTED = Settings(dim=64, p_a=QUICK.p_a, samples=100_000, seed=0, confidence=QUICK.confidence, backend="mc")

#: verdicts that agree with a claim (see allowed())
ALLOWED = {"tight": frozenset({"tight"}), "sound": frozenset({"tight", "loose"}),
           "approximate": frozenset({"tight", "loose", "suspect"})}


@dataclass(frozen=True)
class Finding:
    """A known result about a certificate, stricter than its claim: the verdicts expected, why, and where
    it was shown. Each must be allowed by the claim (a finding narrows what the claim permits)."""

    verdicts: frozenset
    reason: str
    source: str


_PIXELDP = Finding(
    frozenset({"loose"}),
    "PixelDP's radii come from the (eps, delta)-DP guarantee of the Laplace / Gaussian mechanism, "
    "not from the Neyman-Pearson worst case: sound, but well below the tight radius",
    "Hong, Wang, Hong, UniCR (ECCV 2022), Fig. 4b")

#: certificate name -> known finding; everything else is judged by its claim alone
EXPECTED_FINDINGS: dict[str, Finding] = {
    name: _PIXELDP
    for name in ("pixeldp-laplace", "pixeldp-gaussian", "pixeldp-gaussian-delta1e-5", "pixeldp-gaussian-delta0.05")
}


def allowed(certificate) -> frozenset:
    """The verdicts that agree with a certificate's claim, narrowed by a known finding if any.

    tight -> {tight}: the claim is the tight radius, so the engine must match it (suspect would
    say it is too large, loose that it leaves radius on the table).
    sound -> {tight, loose}: a sound radius may be anything up to the tight one, never above it.
    approximate -> any verdict: an approximation promises neither soundness nor tightness, so
    even suspect agrees with the claim, provided it rests on confirmed witnesses (asserted for
    every suspect row by test_catalog.check).
    """
    by_claim = ALLOWED[certificate.claim]
    finding = EXPECTED_FINDINGS.get(certificate.name)
    if finding is None:
        return by_claim
    assert finding.verdicts <= by_claim, (certificate.name, certificate.claim, finding)
    return finding.verdicts


def catalog_cases() -> list[tuple]:
    """(certificate, norm) for every catalog entry and norm."""
    return [(c, p) for c in certificates.catalog() for p in c.norms]


def case_id(certificate, norm) -> str:
    return f"{certificate.name}-{norm_label(norm)}"
