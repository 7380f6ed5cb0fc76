"""Published closed-form certified radii for randomized smoothing, evaluated at mpmath precision.

Each entry is a :class:`Certificate` record (name, reference, noise mapping, norms, claim, domain,
radius function); see ``catalog()``. Pure mpmath/numpy/scipy: importable without torch.

>>> import certificates
>>> round(certificates.get("cohen").radius_float(0.9, sigma=0.5), 6)
0.640776
>>> [c.name for c in certificates.family("pixeldp")][:2]
['pixeldp-laplace', 'pixeldp-gaussian']

Your own formula in one line (:func:`define`; audit it with ``python -m unicr.audit --certificate file.py:MINE``):

>>> import math
>>> MINE = certificates.define("mine", "laplace", 1, lambda p_a, sigma: -sigma / 2 ** 0.5 * math.log(2 - 2 * p_a))
"""
from .base import (CLAIMS, DOMAINS, Certificate, NoiseMap, Reference, ShapeParam, check_noise_name, define,
                   norm_label)
from .registry import catalog, families, family, find, get, resolve

__all__ = [
    "Certificate", "NoiseMap", "Reference", "ShapeParam", "CLAIMS", "DOMAINS", "check_noise_name", "define",
    "norm_label",
    "catalog", "families", "family", "find", "get", "resolve",
]
