"""Verdicts (docs/verdicts.md): is a claimed radius tight, loose or suspect?

Per p_A, with the engine's radius R_U, its band [R_lo, R_hi] at confidence c and a claimed radius
R_C, at relative tolerance tau (default 1%) and numerical tolerance eps (default 1e-9 relative):

    suspect   R_C > R_hi (1 + eps)                    a witness delta with ||delta|| = R_hi < R_C has K <= 0
    tight     R_lo (1 - tau) <= R_C <= R_hi (1 + eps)  the claim matches the approximated tight radius
    loose     R_C < R_lo (1 - tau)                    gap = 1 - R_C / R_U is left on the table

The excess R_C / R_hi - 1 says by how much a claim exceeds the band's upper end (negative: below
it). eps is a rounding allowance, not a statistical one: a closed form evaluated in float64 and an
upper end computed in float64 may differ by a few ulps even where the claim is exactly the tight
radius (with the deterministic backend the band is ~1e-11 wide), so an excess up to eps is not
held against a claim. eps = 1e-9 lets a formula that matches to 1e-13 pass and still flags one that
over-claims by 6e-4 (a float32 cancellation); set it to 0 for the strict rule R_C > R_hi.

False alarms across the p_A of a sweep. The band is pointwise, so over a grid some p_A fall
outside it by chance. Every suspect row is therefore *confirmed*: its witness, the engine's
witness direction scaled to the norm (R_hi + R_C)/2 < R_C, is re-checked with
:func:`unicr.witness_margin` on an independent run (its own random stream, ``CONFIRM_FACTOR`` times the
draws, the deterministic backend where it applies) at the Bonferroni level 1 - (1 - c)/m for the m
suspect rows. A row stays suspect only if the witness holds (upper end of K <= 0); otherwise it
becomes *unconfirmed*, which is reported and not counted. For a sound claim every witness below
R_C has K > 0, so the chance that any row of a sweep is confirmed is at most 1 - c (Monte Carlo,
union bound) and zero with the deterministic backend.

Sweep verdict: suspect if any row is (confirmed) suspect; otherwise loose if at least
``LOOSE_SHARE`` percent of the grid points (and at least one) are loose; otherwise tight.
Loose rows have gap > tau by construction. R_U is an upper bound on the tight radius only as good
as the direction search: a search that misses the worst direction makes a tight claim look loose.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

__all__ = [
    "TIGHT", "LOOSE", "SUSPECT", "UNCONFIRMED", "DEFAULT_TOLERANCE", "DEFAULT_SUSPECT_TOLERANCE", "LOOSE_SHARE",
    "CONFIRM_FACTOR", "Row", "row_verdict", "ratio", "excess", "check_tolerance", "check_suspect_tolerance",
    "confirmation_level", "confirm", "sweep_verdict", "loose_threshold",
]

TIGHT, LOOSE, SUSPECT, UNCONFIRMED = "tight", "loose", "suspect", "unconfirmed"
DEFAULT_TOLERANCE = 0.01
#: numerical tolerance eps of the suspect rule R_C > R_hi (1 + eps): a rounding allowance, relative
DEFAULT_SUSPECT_TOLERANCE = 1e-9
#: a sweep is loose when at least this percentage of its grid points (and at least one) is loose
LOOSE_SHARE = 10
#: the confirmation run uses this many times the audit's draws (Monte Carlo backend)
CONFIRM_FACTOR = 10


def check_tolerance(tolerance) -> float:
    """The relative tolerance tau, 0 <= tau < 1."""
    try:
        tau = float(tolerance)
    except (TypeError, ValueError):
        raise ValueError(f"tolerance must be a number in [0, 1), got {tolerance!r}") from None
    if not 0.0 <= tau < 1.0:
        raise ValueError(f"tolerance must be a number in [0, 1), got {tolerance!r}")
    return tau


def check_suspect_tolerance(eps) -> float:
    """The numerical tolerance eps of the suspect rule, 0 <= eps < 1."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"suspect tolerance must be a number in [0, 1), got {eps!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"suspect tolerance must be a number in [0, 1), got {eps!r}")
    return value


def row_verdict(claimed: float, lower: float, upper: float, tolerance: float = DEFAULT_TOLERANCE,
                suspect_tolerance: float = DEFAULT_SUSPECT_TOLERANCE) -> str:
    """suspect if R_C > R_hi (1 + eps); loose if R_C < R_lo (1 - tau); tight otherwise."""
    if math.isnan(claimed) or math.isnan(lower) or math.isnan(upper):
        raise ValueError(f"radius is nan (claimed={claimed!r}, band=[{lower!r}, {upper!r}])")
    if claimed > upper * (1.0 + suspect_tolerance):
        return SUSPECT
    if claimed < lower * (1.0 - tolerance):
        return LOOSE
    return TIGHT


def ratio(claimed: float, radius: float) -> float:
    """R_C / R_U (1 where both are 0 or both infinite)."""
    if claimed == radius:
        return 1.0
    if radius == 0.0:
        return math.inf
    if math.isinf(radius):
        return 0.0
    return claimed / radius


def excess(claimed: float, upper: float) -> float:
    """R_C / R_hi - 1: by how much the claim exceeds the band's upper end (negative below it; 0 where
    both are 0 or both infinite, inf where R_hi = 0 < R_C)."""
    return ratio(claimed, upper) - 1.0


@dataclass(frozen=True)
class Row:
    """One p_A of a sweep: the claim, the engine's radius and band, and the verdict.

    ``witness`` (suspect and unconfirmed rows): delta = scale * v at the band's upper end, as
    stored by the engine. ``margin``: K measured there by the confirmation run (estimate, lower,
    upper, backend, samples, seed, confidence).
    """

    p_a: float
    p_b: float
    claimed: float
    radius: float
    lower: float
    upper: float
    direction: str
    support: int
    backend: str
    verdict: str
    witness: dict | None = None
    margin: dict | None = None

    @property
    def ratio(self) -> float:
        return ratio(self.claimed, self.radius)

    @property
    def excess(self) -> float:
        """R_C / R_hi - 1: the claim's excess over the band's upper end (suspect if > eps)."""
        return excess(self.claimed, self.upper)

    @property
    def gap(self) -> float:
        """1 - R_C / R_U: the share of the engine's radius the claim leaves out."""
        return 1.0 - self.ratio


def confirmation_level(confidence: float, suspects: int) -> float:
    """Bonferroni: each of m re-checks at 1 - (1 - c)/m, so all hold jointly with probability >= c."""
    return 1.0 - (1.0 - confidence) / max(1, suspects)


def confirm(rows: Sequence[Row], check: Callable[[Row, float], dict], confidence: float) -> list[Row]:
    """Re-check the witness of every suspect row; keep it suspect only where the witness holds.

    ``check(row, level)`` returns the margin record of the independent run at ``level``, with a
    boolean ``holds`` (upper end of K <= 0).
    """
    suspects = [i for i, r in enumerate(rows) if r.verdict == SUSPECT]
    level = confirmation_level(confidence, len(suspects))
    out = list(rows)
    for i in suspects:
        margin = check(rows[i], level)
        out[i] = replace(rows[i], margin=margin, verdict=SUSPECT if margin["holds"] else UNCONFIRMED)
    return out


def loose_threshold(points: int) -> int:
    """The number of loose rows that makes a sweep of ``points`` p_A loose: ceil(LOOSE_SHARE % of it), >= 1."""
    return max(1, -(-points * LOOSE_SHARE // 100))


def sweep_verdict(rows: Sequence[Row]) -> str:
    """suspect if any row is (confirmed) suspect; loose if >= loose_threshold rows are loose; else tight."""
    if any(r.verdict == SUSPECT for r in rows):
        return SUSPECT
    if sum(r.verdict == LOOSE for r in rows) >= loose_threshold(len(rows)):
        return LOOSE
    return TIGHT
