"""Yang, Duan, Hu, Salman, Razenshteyn, Li (ICML 2020), "Randomized smoothing of all shapes and
sizes": tonyduan/rs4a ``src/noises/noises.py`` and ``src/noises/utils.py``.

All entries are binary (rs4a certifies a lower bound rho on p_A). ``scale`` is rs4a's ``lambd``;
sigma is the per-coordinate standard deviation, sigma^2 = E||eps||^2 / d, as rs4a's ``_sigma`` code
computes it (its docstring, which omits the /d, is wrong).
"""
from __future__ import annotations

import math

import mpmath as mp

from ._special import gamma_ppf, norm_isf, sym_beta_ppf
from .base import Certificate, NoiseMap, Reference, ShapeParam

REFERENCE = Reference(
    authors="Yang, Duan, Hu, Salman, Razenshteyn, Li",
    title="Randomized Smoothing of All Shapes and Sizes",
    venue="ICML",
    year=2020,
    code="https://github.com/tonyduan/rs4a (src/noises/noises.py, src/noises/utils.py)",
    bibtex="""@inproceedings{yang2020randomized,
  title     = {Randomized Smoothing of All Shapes and Sizes},
  author    = {Yang, Greg and Duan, Tony and Hu, J. Edward and Salman, Hadi and Razenshteyn, Ilya and Li, Jerry},
  booktitle = {Proceedings of the 37th International Conference on Machine Learning},
  series    = {PMLR},
  volume    = {119},
  pages     = {10693--10705},
  year      = {2020}
}""",
)

UNIFORM = NoiseMap(
    family="uniform", scale="lambda", sigma_per_scale=lambda dim: 1 / mp.sqrt(3),
    relation="sigma = lambda / sqrt(3) (uniform on [-lambda, lambda]^d)")
GAUSSIAN = NoiseMap(family="gaussian", scale="lambda", relation="sigma = lambda (N(0, lambda^2 I))")
LAPLACE = NoiseMap(
    family="laplace", scale="lambda", sigma_per_scale=lambda dim: mp.sqrt(2),
    relation="sigma = sqrt(2) * lambda (i.i.d. Laplace with scale lambda)")


def _lomax_ratio(dim, a):
    return mp.sqrt(2 / ((a - 1) * (a - 2))) if a > 2 else None


LOMAX = NoiseMap(
    family="lomax", scale="lambda", sigma_per_scale=_lomax_ratio,
    relation="density (a/(2 lambda))(1 + |x|/lambda)^-(a+1) i.i.d.; sigma = lambda sqrt(2/((a-1)(a-2))) "
             "for a > 2, scale only for a <= 2",
    shape=(ShapeParam("a", 3.0, 0.0, inclusive=False, doc="tail index (rs4a Pareto default 3)"),))
UNIFORM_BALL = NoiseMap(
    family="uniform-ball", scale="lambda", sigma_per_scale=lambda dim: 1 / mp.sqrt(dim + 2),
    relation="sigma = lambda / sqrt(d + 2) (uniform in the l2 ball of radius lambda)")
LINF_EXP = NoiseMap(
    family="linf-exp", scale="lambda", sigma_per_scale=lambda dim: mp.sqrt(mp.mpf((dim + 1) * (dim + 2)) / 3),
    relation="density prop. to exp(-||x||_inf / lambda); sigma = lambda sqrt((d+1)(d+2)/3)")
L2_EXP = NoiseMap(
    family="l2-exp", scale="lambda", sigma_per_scale=lambda dim: mp.sqrt(dim + 1),
    relation="density prop. to exp(-||x||_2 / lambda); sigma = lambda sqrt(d+1)")
GENERAL_NORMAL = NoiseMap(
    family="general-normal", scale="lambda",
    sigma_per_scale=lambda dim, beta: mp.sqrt(mp.gamma(3 / beta) / mp.gamma(1 / beta)),
    relation="density prop. to exp(-|x/lambda|^beta) i.i.d. (unicr alpha = lambda); "
             "sigma = lambda sqrt(Gamma(3/beta)/Gamma(1/beta))",
    shape=(ShapeParam("beta", 1.0, 1.0, doc="shape; the l1 formula needs beta >= 1 (rs4a Expp default p=1)"),))


# -- formulas (p_b = 1 - rho throughout) -------------------------------------------------------

def uniform_l1(p_a, p_b, scale):
    """2 lambda (rho - 1/2)."""
    return scale * (p_a - p_b)


def uniform_linf(p_b, scale, dim):
    """2 lambda (1 - (3/2 - rho)^(1/d)), as -2 lambda expm1(log1p(q - 1/2)/d)."""
    return -2 * scale * mp.expm1(mp.log1p(p_b - mp.mpf(0.5)) / dim)


def laplace_linf_integral(q, dim):
    """int_q^{1/2} dp / Phi(p) for unit-scale Laplace noise against linf (rs4a Laplace.Phi_linf).

    Phi(p) = E[S; top set of H0-mass p], S = sum_i sign(x_i) = 2B - d, B ~ Binomial(d, 1/2), with
    the boundary level taken fractionally. Phi is linear with slope c = 2k - d on each piece
    [P(B > k), P(B >= k)], so the integral is a finite sum of ln(Phi_2/Phi_1)/c (or length/Phi when
    c = 0). Binomial tails are exact integers over 2^d, truncated where Hoeffding's bound puts the
    neglected mass below q * 10^-(dps+10).
    """
    if q == 0:
        return mp.inf
    d = dim
    digits = mp.mp.dps + 10
    margin = int(mp.ceil(mp.sqrt(mp.mpf(d) / 2 * (-mp.log(q) + digits * mp.log(10))))) + 1
    top = min(d, d // 2 + margin)
    k_min = (d + 1) // 2
    half = mp.mpf(0.5)
    q_scaled = mp.ldexp(q, d)
    tail, first = 0, 0          # 2^d P(B > k), 2^d E[S; B > k]  (zero above ``top``)
    binom = math.comb(d, top)   # C(d, k)
    total = mp.mpf(0)
    for k in range(top, k_min - 1, -1):
        tail_next = tail + binom  # 2^d P(B >= k)
        if tail_next > q_scaled:
            t_lo, e_lo = mp.ldexp(tail, -d), mp.ldexp(first, -d)
            p1, p2 = max(t_lo, q), min(mp.ldexp(tail_next, -d), half)
            if p2 > p1:
                c = 2 * k - d
                phi1 = c * (p1 - t_lo) + e_lo
                total += (p2 - p1) / phi1 if c == 0 else mp.log1p(c * (p2 - p1) / phi1) / c
        first += (2 * k - d) * binom
        tail = tail_next
        binom = binom * k // (d - k + 1)
    return total


def lomax_l1(p_b, scale, a):
    """(lambda (2 rho - 1)/a) 2F1(1, a/(a+1); a/(a+1) + 1; (2 rho - 1)^(1 + 1/a))."""
    if p_b == 0:
        return mp.inf
    x = 1 - 2 * p_b
    b = a / (a + 1)
    return scale * x / a * mp.hyp2f1(1, b, b + 1, x ** (1 + 1 / a))


def uniform_ball_l2(p_b, scale, dim):
    """lambda (2 - 4 B^-1(3/4 - rho/2)), B ~ Beta((d+1)/2, (d+1)/2)."""
    x = sym_beta_ppf(dim + 1, mp.mpf(0.25) + p_b / 2)
    return 4 * scale * (mp.mpf(0.5) - x)


def l2_exp_l2(p_b, scale, dim):
    """lambda (d - 1) artanh(1 - 2 B^-1(1 - rho)), B ~ Beta((d-1)/2, (d-1)/2)."""
    x = sym_beta_ppf(dim - 1, p_b)
    if x == 0:
        return mp.inf
    return scale * (dim - 1) * (mp.log1p(-x) - mp.log(x)) / 2


def general_normal_l1(p_b, scale, beta):
    """lambda [G^-1_{1/beta}(2 rho - 1)]^(1/beta), G the regularized lower incomplete gamma."""
    x = gamma_ppf(1 / beta, 1 - 2 * p_b, 2 * p_b)
    return scale * x ** (1 / beta)


# -- records -----------------------------------------------------------------------------------

def _entry(name, noise, norms, claim, radius_fn, notes, **kw):
    return Certificate(name=name, reference=REFERENCE, noise=noise, norms=norms, claim=claim,
                       domain="binary", radius_fn=radius_fn, notes=notes, **kw)


YANG_UNIFORM_L1 = _entry(
    "yang-uniform-l1", UNIFORM, (1.0,), "tight",
    lambda p_a, p_b, scale, dim, norm: uniform_l1(p_a, p_b, scale),
    "R1 = 2 lambda (rho - 1/2) (Uniform.certify_l1); tight: delta = t e_1 removes mass t/(2 lambda).")

YANG_UNIFORM_LINF = _entry(
    "yang-uniform-linf", UNIFORM, (math.inf,), "tight",
    lambda p_a, p_b, scale, dim, norm: uniform_linf(p_b, scale, dim),
    "Rinf = 2 lambda (1 - (3/2 - rho)^(1/d)) (Uniform.certify_linf); tight: delta = t(1, ..., 1).")

YANG_UNIFORM_L2 = _entry(
    "yang-uniform-l2", UNIFORM, (2.0,), "sound",
    lambda p_a, p_b, scale, dim, norm: max(uniform_l1(p_a, p_b, scale) / mp.sqrt(dim), uniform_linf(p_b, scale, dim)),
    "R2 = max(R1/sqrt(d), Rinf): rs4a's norm conversion (Noise._certify_lp_convert), a lower bound.")

YANG_GAUSSIAN_LINF = _entry(
    "yang-gaussian-linf", GAUSSIAN, (math.inf,), "tight",
    lambda p_a, p_b, scale, dim, norm: scale * norm_isf(p_b) / mp.sqrt(dim),
    "Rinf = sigma Phi^-1(rho)/sqrt(d) (Gaussian.certify_l2 converted), as Cohen's linf; tight.")

YANG_LAPLACE_LINF_APPROX = _entry(
    "yang-laplace-linf-approx", LAPLACE, (math.inf,), "approximate",
    lambda p_a, p_b, scale, dim, norm: scale * norm_isf(p_b) / mp.sqrt(dim),
    "Rinf ~ lambda Phi^-1(rho)/sqrt(d) (Laplace.certify_linf mode='approx', rs4a's default): described "
    "as accurate in high dimension, no guarantee claimed.")

YANG_LAPLACE_LINF_DIFFERENTIAL = _entry(
    "yang-laplace-linf-differential", LAPLACE, (math.inf,), "sound",
    lambda p_a, p_b, scale, dim, norm: scale * laplace_linf_integral(p_b, dim),
    "Rinf = lambda int_{1-rho}^{1/2} dp/Phi_linf(p) (differential method, Laplace.certify_linf "
    "mode='integrate'), evaluated exactly as a finite sum over binomial levels; rs4a tabulates the "
    "same integral by quadrature and interpolates the table.")

YANG_LOMAX_L1 = _entry(
    "yang-lomax-l1", LOMAX, (1.0,), "sound",
    lambda p_a, p_b, scale, dim, norm, a: lomax_l1(p_b, scale, a),
    "R1 = (lambda (2 rho - 1)/a) 2F1(1, a/(a+1); a/(a+1)+1; (2 rho - 1)^(1+1/a)) (Pareto.certify_l1, "
    "a lower bound); a = 1 gives (lambda/2) ln(rho/(1-rho)). rs4a's Pareto._sigma is broken for a <= 2 "
    "(np.np.inf); here a <= 2 takes scale only.")

YANG_UNIFORM_BALL_L2 = _entry(
    "yang-uniform-ball-l2", UNIFORM_BALL, (2.0,), "tight",
    lambda p_a, p_b, scale, dim, norm: uniform_ball_l2(p_b, scale, dim),
    "R2 = lambda (2 - 4 B^-1_{(d+1)/2,(d+1)/2}(3/4 - rho/2)) (UniformBall.certify_l2); tight (two-ball overlap).")

YANG_LINF_EXP_L1 = _entry(
    "yang-linf-exp-l1", LINF_EXP, (1.0,), "sound",
    lambda p_a, p_b, scale, dim, norm: dim * scale * (p_a - p_b),
    "R1 = 2 d lambda (rho - 1/2) (ExpInf.certify_l1 with k=1, j=0); a lower bound. rs4a notes better "
    "radii exist for rho > 1 - 1/d but does not implement them.")

YANG_LINF_EXP_LINF = _entry(
    "yang-linf-exp-linf", LINF_EXP, (math.inf,), "sound",
    lambda p_a, p_b, scale, dim, norm: -scale * mp.log(2 * p_b),
    "Rinf = lambda ln(1/(2(1 - rho))) (ExpInf.certify_linf, k=1): differential-method bound, not "
    "marked tight by the paper's code or the catalog, so claimed sound only.")

YANG_L2_EXP_L2 = _entry(
    "yang-l2-exp-l2", L2_EXP, (2.0,), "sound",
    lambda p_a, p_b, scale, dim, norm: l2_exp_l2(p_b, scale, dim),
    "R2 = lambda (d-1) artanh(1 - 2 B^-1_{(d-1)/2,(d-1)/2}(1 - rho)) (Exp2.certify_l2, k=1, j=0); "
    "a lower bound; needs d >= 2.", min_dim=2)

YANG_GENERAL_NORMAL_L1 = _entry(
    "yang-general-normal-l1", GENERAL_NORMAL, (1.0,), "tight",
    lambda p_a, p_b, scale, dim, norm, beta: general_normal_l1(p_b, scale, beta),
    "R1 = lambda [G^-1_{1/beta}(2 rho - 1)]^(1/beta) for beta >= 1 (Expp.certify_l1): the differential-"
    "method lower bound equals the exact radius of the 1-sparse shift (the 1-D quantile), so it is "
    "tight; beta = 1 is Teng, beta = 2 is Cohen.")

YANG = (
    YANG_UNIFORM_L1, YANG_UNIFORM_LINF, YANG_UNIFORM_L2, YANG_GAUSSIAN_LINF, YANG_LAPLACE_LINF_APPROX,
    YANG_LAPLACE_LINF_DIFFERENTIAL, YANG_LOMAX_L1, YANG_UNIFORM_BALL_L2, YANG_LINF_EXP_L1, YANG_LINF_EXP_LINF,
    YANG_L2_EXP_L2, YANG_GENERAL_NORMAL_L1,
)
