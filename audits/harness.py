"""Settings and expectations shared by the audit harness.

Quick selection (default, CI): d = 64, 12 values of p_A, 20 000 draws. Full sweep (``-m slow``):
d = 3072, the 45-point grid 0.55..0.99, 100 000 draws. Both use the Monte Carlo backend, so that
the harness exercises the engine the reports rest on, and a band confidence of 0.999: a sound claim
comes out suspect only if a row leaves the band *and* its witness is confirmed by an independent
run at the Bonferroni level, a chance below (1 - 0.999)/2 per case (see unicr.audit.verdicts).
"""
from __future__ import annotations

import numpy as np

import certificates
from certificates import norm_label
from unicr.audit import Settings

QUICK = Settings(dim=64, p_a=tuple(np.round(np.linspace(0.55, 0.99, 12), 4)), samples=20_000, seed=0,
                 confidence=0.999, backend="mc")
FULL = Settings(dim=3072, samples=100_000, seed=0, confidence=0.999, backend="mc")
#: planted certificates: the quick grid with more draws (the Gaussian ray sampler makes them cheap)
PLANTED = Settings(dim=64, p_a=QUICK.p_a, samples=100_000, seed=0, confidence=0.999, backend="mc")

#: verdicts that agree with a claim
ALLOWED = {"tight": {"tight"}, "sound": {"tight", "loose"}, "approximate": {"tight", "loose"}}
#: families whose verdict is known to be loose (PixelDP's DP-based radii; UniCR paper, Fig. 4b)
LOOSE_FAMILIES = ("pixeldp",)


def allowed(certificate) -> set[str]:
    """The verdicts that agree with a certificate's claim (approximate claims: never suspect, as measured)."""
    if certificate.name.split("-")[0] in LOOSE_FAMILIES:
        return {"loose"}
    return ALLOWED[certificate.claim]


def catalog_cases() -> list[tuple]:
    """(certificate, norm) for every catalog entry and norm."""
    return [(c, p) for c in certificates.catalog() for p in c.norms]


def case_id(certificate, norm) -> str:
    return f"{certificate.name}-{norm_label(norm)}"
