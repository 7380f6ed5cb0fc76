"""unicr: audit randomized-smoothing certificates against a numerical Neyman–Pearson worst case."""
from .directions import Direction, equal_direction, lp_norm, search_family, sparse_family
from .noises import DistributionNoise, IIDNoise, Noise, noise, noise_names, register_noise
from .radius import (DEFAULT_P_A_GRID, EngineSettings, Margin, Radius, Witness, certified_radius, radius_curve,
                     witness_margin)

__all__ = [
    "Direction", "equal_direction", "lp_norm", "search_family", "sparse_family",
    "Noise", "IIDNoise", "DistributionNoise", "noise", "noise_names", "register_noise",
    "EngineSettings", "Radius", "Margin", "Witness", "certified_radius", "radius_curve", "witness_margin",
    "DEFAULT_P_A_GRID",
]
__version__ = "0.1.0"
