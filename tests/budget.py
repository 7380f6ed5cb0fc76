"""One failure budget for every statistical test (tests/ and audits/).

FAILURE_RATE is the largest probability with which one test item (one test function, or one
parametrized case of it) may fail for a correct implementation. Every statistical threshold of
the suite is derived from it with the helpers below, and each test says how:

* ``joint_confidence(points)``: a test that requires a band to hold at every one of ``points``
  values asks the engine for confidence 1 - FAILURE_RATE/points. By the union bound (Bonferroni,
  no independence needed: the p_A of one curve share their draws) the chance that any of the
  ``points`` values falls outside is at most points * FAILURE_RATE/points = FAILURE_RATE.
* ``max_misses(runs, p_miss)``: a test that counts misses over ``runs`` independent runs, each
  missing with probability at most ``p_miss``, allows the smallest m with
  P(Binomial(runs, p_miss) > m) <= FAILURE_RATE. (The binomial tail is increasing in p, so this
  holds for any true miss rate <= p_miss.)
* ``share(checks)``: FAILURE_RATE split evenly over ``checks`` assertions of one test (union
  bound), e.g. the significance level of each of several p-values.
* ``normal_sigmas(checks)`` and ``t_sigmas(df, checks)``: two-sided z (normal approximation) or
  Student t quantile for ``checks`` assertions of the form |estimate - truth| <= k * standard
  error, each at level share(checks).

Anything that is not a false-failure rate (the power of a test that must detect something, a
precision requirement) cannot be derived from the budget; such assertions say so where they are.
``clopper_pearson_upper`` is used by ``scripts/sweep_seeds.py`` to report observed rates.

Import as ``from tests.budget import ...`` (the root conftest puts the repository root on
sys.path, for tests/ and audits/ alike).
"""
from __future__ import annotations

from scipy import stats

__all__ = ["FAILURE_RATE", "share", "joint_confidence", "max_misses", "normal_sigmas", "t_sigmas",
           "clopper_pearson_upper"]

#: the largest false-failure probability of one test item for a correct implementation
FAILURE_RATE = 1e-4


def share(checks: int, rate: float = FAILURE_RATE) -> float:
    """rate / checks: each of ``checks`` assertions of one test fails with at most this
    probability, so that the test fails with at most ``rate`` (union bound)."""
    if checks < 1:
        raise ValueError(f"checks must be >= 1, got {checks!r}")
    return rate / checks


def joint_confidence(points: int, rate: float = FAILURE_RATE) -> float:
    """1 - rate/points: the confidence at which to ask for a pointwise band so that it covers
    all of ``points`` values at once with probability >= 1 - rate (union bound)."""
    return 1.0 - share(points, rate)


def max_misses(runs: int, p_miss: float, rate: float = FAILURE_RATE) -> int:
    """Smallest m with P(Binomial(runs, p_miss) > m) <= rate: a count of independent misses,
    each with probability <= p_miss, exceeds m with probability <= rate."""
    if runs < 1 or not 0.0 <= p_miss <= 1.0:
        raise ValueError(f"need runs >= 1 and p_miss in [0, 1], got {runs!r}, {p_miss!r}")
    m = int(stats.binom.isf(rate, runs, p_miss))  # sf(m) <= rate at or just around isf
    while m > 0 and stats.binom.sf(m - 1, runs, p_miss) <= rate:
        m -= 1
    while stats.binom.sf(m, runs, p_miss) > rate:
        m += 1
    return m


def normal_sigmas(checks: int = 1, rate: float = FAILURE_RATE) -> float:
    """z with P(|N(0, 1)| > z) = share(checks): the half-width, in standard errors, of each of
    ``checks`` two-sided checks of an asymptotically normal estimate (normal approximation)."""
    return float(stats.norm.isf(share(checks, rate) / 2))


def t_sigmas(df: int, checks: int = 1, rate: float = FAILURE_RATE) -> float:
    """Student t quantile with P(|T_df| > k) = share(checks): the half-width, in estimated
    standard errors, of each of ``checks`` two-sided checks of a mean of df + 1 i.i.d. normal
    batch estimates (the method of sectioning / batch means)."""
    return float(stats.t.isf(share(checks, rate) / 2, df))


def clopper_pearson_upper(failures: int, runs: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper confidence bound at ``level`` on a failure probability
    from ``failures`` out of ``runs`` independent runs."""
    if failures >= runs:
        return 1.0
    return float(stats.beta.ppf(level, failures + 1, runs - failures))
