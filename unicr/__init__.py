"""unicr: audit randomized-smoothing certificates against a numerical Neyman–Pearson worst case."""
from .directions import Direction, equal_direction, lp_norm, sparse_family
from .noises import Noise, noise, noise_names, register_noise
from .radius import DEFAULT_P_A_GRID, Margin, Radius, certified_radius, radius_curve, witness_margin

__all__ = [
    "Direction", "equal_direction", "lp_norm", "sparse_family",
    "Noise", "noise", "noise_names", "register_noise",
    "Radius", "Margin", "certified_radius", "radius_curve", "witness_margin", "DEFAULT_P_A_GRID",
]
__version__ = "0.1.0"
