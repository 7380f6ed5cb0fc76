"""Inverse distribution functions in mpmath at the working precision.

mpmath has no inverse incomplete gamma/beta and its erfinv loses the tail once 1 - 2q rounds to 1,
so each inverse here solves F(x) = y by Newton's method safeguarded with bisection, on the log of
whichever of the CDF and the survival function is the smaller: tail probabilities keep their
relative precision. Float64 scipy values serve only as starting points.
"""
from __future__ import annotations

import math

import mpmath as mp
import scipy.special as sc

__all__ = ["norm_isf", "norm_ppf", "gamma_ppf", "sym_beta_cdf", "sym_beta_ppf"]


def _start(value, lo, hi):
    """A float starting point if it is finite and strictly inside (lo, hi), else None."""
    try:
        x = mp.mpf(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    if mp.isfinite(x) and lo < x < hi:
        return x
    return None


def _solve_increasing(g_dg, lo, hi, x0=None):
    """Root of an increasing g on the open interval (lo, hi); hi may be +inf, lo >= 0.

    ``g_dg(x)`` returns (g(x), g'(x)).
    Newton steps from x0; a step that leaves the current bracket is replaced by bisection
    (geometric where the bracket is positive, doubling while hi is infinite). Stops at a relative
    step of 2^-(prec - 20): callers work with guard digits, and g itself is only accurate to a few
    ulps, so a tighter test would chase rounding noise.
    """
    tol = mp.ldexp(1, 20 - mp.mp.prec)
    x = x0 if x0 is not None else (lo + 1 if hi == mp.inf else (lo + hi) / 2)
    for _ in range(2000):
        gx, slope = g_dg(x)
        if gx == 0:
            return x
        if gx > 0:
            hi = x
        else:
            lo = x
        xn = x - gx / slope if slope > 0 and mp.isfinite(slope) else None
        if xn is not None and abs(xn - x) <= tol * abs(x):
            return xn
        if xn is None or not lo < xn < hi:
            if hi == mp.inf:
                xn = 2 * x + 1
            elif lo > 0:
                xn = mp.sqrt(lo * hi)
            else:
                xn = hi / 2 if hi < 1 else (lo + hi) / 2
            if abs(hi - lo) <= tol * abs(xn):
                return xn
        x = xn
    raise ArithmeticError("inverse distribution function did not converge")


def norm_isf(q):
    """z with Q(z) = 1 - Phi(z) = q, for q in [0, 1]; +-inf at the ends."""
    q = mp.mpf(q)
    if q == 0:
        return mp.inf
    if q == 1:
        return -mp.inf
    if q > 0.5:
        return -norm_isf(1 - q)
    if q == 0.5:
        return mp.mpf(0)
    log_q = mp.log(q)
    sqrt2 = mp.sqrt(2)

    def g_dg(z):
        sf = mp.erfc(z / sqrt2) / 2
        return log_q - mp.log(sf), mp.npdf(z) / sf

    x0 = _start(-sc.ndtri(float(q)) if q > 1e-300 else math.sqrt(-2 * float(log_q)), 0, mp.inf)
    return _solve_increasing(g_dg, mp.mpf(0), mp.inf, x0)


def norm_ppf(p):
    """Phi^{-1}(p) for p in [0, 1], evaluated through the smaller tail."""
    p = mp.mpf(p)
    if p < 0.5:
        return -norm_isf(p)
    return norm_isf(1 - p)


def gamma_ppf(s, p, q):
    """x with P(s, x) = p (regularized lower incomplete gamma), given p and q = 1 - p."""
    s, p, q = mp.mpf(s), mp.mpf(p), mp.mpf(q)
    if p == 0:
        return mp.mpf(0)
    if q == 0:
        return mp.inf
    log_norm = mp.loggamma(s)

    def pdf(x):
        return mp.exp((s - 1) * mp.log(x) - x - log_norm)

    if p <= 0.5:
        log_p = mp.log(p)

        def g_dg(x):
            cdf = mp.gammainc(s, 0, x, regularized=True)
            return mp.log(cdf) - log_p, pdf(x) / cdf

        guess = sc.gammaincinv(float(s), float(p))
    else:
        log_q = mp.log(q)

        def g_dg(x):
            sf = mp.gammainc(s, x, mp.inf, regularized=True)
            return log_q - mp.log(sf), pdf(x) / sf

        guess = sc.gammainccinv(float(s), float(q)) if q > 1e-300 else None
    return _solve_increasing(g_dg, mp.mpf(0), mp.inf, _start(guess, 0, mp.inf))


def sym_beta_cdf(nu, x):
    """I_x(nu/2, nu/2) for an integer nu >= 1 and x in [0, 1/2], as a finite sum.

    If X ~ Beta(nu/2, nu/2), T = sqrt(nu)(2X - 1)/(2 sqrt(X(1 - X))) is Student's t with nu degrees
    of freedom; with sin(theta) = 1 - 2x and cos^2(theta) = 4x(1 - x), I_x = (1 - A)/2 where
    A = P(|T| < t) is the classical finite series in cos^2(theta) (Abramowitz & Stegun 26.7.3-4).
    1 - A cancels in the lower tail; the digits it loses are bounded through the leading term of
    the tail series, I_x >= (x(1 - x))^s / (s B(s, s)) with s = nu/2, and added beforehand.
    """
    x = mp.mpf(x)
    if x == 0:
        return mp.mpf(0)
    s = mp.mpf(nu) / 2
    log_lead = s * (mp.log(x) + mp.log1p(-x)) - mp.log(s) - 2 * mp.loggamma(s) + mp.loggamma(2 * s)
    with mp.extradps(max(0, int(-log_lead / mp.log(10))) + 5):
        value = _sym_beta_cdf(nu, x)
    return +value


def _sym_beta_cdf(nu, x):
    x = mp.mpf(x)
    sin_t, u = 1 - 2 * x, 4 * x * (1 - x)
    term = total = mp.mpf(1)
    if nu % 2 == 0:
        for k in range(1, nu // 2):
            term = term * u * (2 * k - 1) / (2 * k)
            total += term
        return (1 - sin_t * total) / 2
    for k in range(1, (nu - 1) // 2):
        term = term * u * (2 * k) / (2 * k + 1)
        total += term
    series = sin_t * mp.sqrt(u) * total if nu > 1 else 0
    return (2 * mp.asin(mp.sqrt(x)) - series) / mp.pi  # pi/2 - theta = 2 asin(sqrt(x))


def sym_beta_ppf(nu, y):
    """x in [0, 1/2] with I_x(nu/2, nu/2) = y, for an integer nu >= 1 and y in [0, 1/2]."""
    y = mp.mpf(y)
    if y == 0:
        return mp.mpf(0)
    if y == 0.5:
        return mp.mpf(0.5)
    s = mp.mpf(nu) / 2
    log_y = mp.log(y)
    log_norm = 2 * mp.loggamma(s) - mp.loggamma(2 * s)

    def g_dg(x):
        cdf = sym_beta_cdf(nu, x)
        return mp.log(cdf) - log_y, mp.exp((s - 1) * (mp.log(x) + mp.log1p(-x)) - log_norm) / cdf

    guess = sc.betaincinv(float(s), float(s), float(y)) if y > 1e-300 else None
    return _solve_increasing(g_dg, mp.mpf(0), mp.mpf(0.5), _start(guess, 0, 0.5))
