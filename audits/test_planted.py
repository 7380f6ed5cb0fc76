"""Planted unsound certificates (audits/planted.py) must come out suspect, with confirmed witnesses."""
from __future__ import annotations

import pytest

import planted
from harness import PLANTED, case_id
from unicr.audit import SUSPECT, audit


@pytest.mark.parametrize("cert", [pytest.param(c, id=case_id(c, c.norms[0])) for c in planted.PLANTED])
def test_planted_is_suspect(cert):
    result = audit(cert, cert.norms[0], settings=PLANTED, source="audits/planted.py:PLANTED")
    assert result.verdict == SUSPECT
    confirmed = [r for r in result.rows if r.verdict == SUSPECT]
    assert confirmed
    for row in confirmed:
        # the witness delta has ||delta|| below the claim and K(delta) <= 0 on an independent run
        assert row.witness.delta_norm < row.claimed
        assert row.margin["upper"] <= 0 and row.margin["stream"] == "confirm"
        assert row.margin["samples"] == 10 * PLANTED.samples
        assert row.margin["confidence"] >= PLANTED.confidence
