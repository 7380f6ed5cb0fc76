"""Li, Chen, Wang, Carin (NeurIPS 2019): Renyi-divergence bound, Bai-Li/STN-Code ``bound.py``."""
from __future__ import annotations

import mpmath as mp

from .base import Certificate, NoiseMap, Reference

REFERENCE = Reference(
    authors="Li, Chen, Wang, Carin",
    title="Certified Adversarial Robustness with Additive Noise",
    venue="NeurIPS",
    year=2019,
    code="https://github.com/Bai-Li/STN-Code (bound.py)",
    bibtex="""@inproceedings{li2019certified,
  title     = {Certified Adversarial Robustness with Additive Noise},
  author    = {Li, Bai and Chen, Changyou and Wang, Wenlin and Carin, Lawrence},
  booktitle = {Advances in Neural Information Processing Systems},
  volume    = {32},
  year      = {2019}
}""",
)

GAUSSIAN = NoiseMap(family="gaussian", scale="sigma", relation="sigma = sigma (N(0, sigma^2 I))")

_SCAN = [mp.mpf(k) / 2 for k in range(-80, 51)]  # u = ln(alpha - 1) from -40 to 25, step 1/2


def objective(am1, p_a, p_b):
    """f(alpha) = -(1/alpha) ln(1 - p_A - p_B + 2 M_{1-alpha}(p_A, p_B)) at alpha = 1 + am1, M_t the power
    mean, evaluated as M = p_B exp(log1p(expm1(t ln(p_A/p_B))/2)/t) (no loss as t -> 0);
    am1 = 0 gives the limit alpha -> 1, f(1) = -ln(1 - p_A - p_B + 2 sqrt(p_A p_B))."""
    am1 = mp.mpf(am1)
    rest = 1 - p_a - p_b
    if am1 == 0:
        mean = mp.sqrt(p_a * p_b)
    else:
        t = -am1
        mean = p_b * mp.exp(mp.log1p(mp.expm1(t * mp.log(p_a / p_b)) / 2) / t)
    return -mp.log(rest + 2 * mean) / (1 + am1)


def sup_objective(p_a, p_b):
    """(sup_{alpha > 1} f(alpha), argmax alpha), alpha = 1 meaning the limit alpha -> 1.

    f is scanned on a grid of u = ln(alpha - 1) in [-40, 25], the best cell refined by golden-section
    search, and the result compared with the limit f(1) (f -> 0 as alpha -> inf). f(1) - f(alpha) is
    of order (p_A - p_B)^2, hence the extra digits.
    """
    if p_b == 0:  # M_{1-alpha}(p_A, 0) = 0 for alpha > 1: f = -ln(1 - p_A)/alpha, sup at alpha -> 1
        return -mp.log(1 - p_a), mp.mpf(1)
    with mp.extradps(max(0, int(-mp.log10(p_a - p_b))) + 2):
        def g(u):
            return objective(mp.exp(u), p_a, p_b)

        values = [g(u) for u in _SCAN]
        i = max(range(len(values)), key=values.__getitem__)
        lo, hi = _SCAN[max(i - 1, 0)], _SCAN[min(i + 1, len(_SCAN) - 1)]
        tol = mp.mpf(10) ** (-(mp.mp.dps // 2 + 2))
        invphi = (mp.sqrt(5) - 1) / 2
        x1, x2 = hi - invphi * (hi - lo), lo + invphi * (hi - lo)
        f1, f2 = g(x1), g(x2)
        while hi - lo > tol:
            if f1 < f2:
                lo, x1, f1 = x1, x2, f2
                x2 = lo + invphi * (hi - lo)
                f2 = g(x2)
            else:
                hi, x2, f2 = x2, x1, f1
                x1 = hi - invphi * (hi - lo)
                f1 = g(x1)
        u = (lo + hi) / 2
        best, alpha = max((g(u), 1 + mp.exp(u)), (values[i], 1 + mp.exp(_SCAN[i])))
        limit = objective(0, p_a, p_b)
        return (+limit, mp.mpf(1)) if limit >= best else (+best, +alpha)


def _radius(p_a, p_b, scale, dim, norm):
    """R2 = sigma sqrt(2 sup_{alpha > 1} f(alpha))."""
    return scale * mp.sqrt(2 * sup_objective(p_a, p_b)[0])


LI = Certificate(
    name="li",
    reference=REFERENCE,
    noise=GAUSSIAN,
    norms=(2.0,),
    claim="sound",
    domain="general",
    radius_fn=_radius,
    notes=("R2 = sigma sqrt(2 sup_{alpha>1} -(1/alpha) ln(1 - p_A - p_B + 2((p_A^{1-alpha} + p_B^{1-alpha})/2)^{1/(1-alpha)})). "
           "The reference code maximizes over 100 alphas in [1.01, 2]; the catalog takes the true supremum "
           "over alpha > 1, which can sit at alpha -> 1 or above 2. Always below Cohen."),
)
