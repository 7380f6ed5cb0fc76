"""Published closed-form certified radii for randomized smoothing, evaluated at mpmath precision.

Each entry is a :class:`Certificate` record (name, reference, noise mapping, norms, claim, domain,
radius function); see ``catalog()``. Pure mpmath/numpy/scipy: importable without torch.

>>> import certificates
>>> round(certificates.get("cohen").radius_float(0.9, sigma=0.5), 6)
0.640776
>>> [c.name for c in certificates.family("pixeldp")][:2]
['pixeldp-laplace', 'pixeldp-gaussian']
"""
from .base import CLAIMS, DOMAINS, NOISE_FAMILIES, Certificate, NoiseMap, Reference, ShapeParam, norm_label
from .registry import catalog, families, family, find, get, resolve

__all__ = [
    "Certificate", "NoiseMap", "Reference", "ShapeParam", "CLAIMS", "DOMAINS", "NOISE_FAMILIES", "norm_label",
    "catalog", "families", "family", "find", "get", "resolve",
]
