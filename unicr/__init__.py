"""unicr: audit randomized-smoothing certificates against a numerical Neyman–Pearson worst case.

Public names and submodules load on first use (PEP 562): ``import unicr`` does not import torch.
"""
import pkgutil
import sys
from importlib import import_module


def _lazy(package: str, exports: dict):
    """Module-level ``__getattr__`` and ``__dir__`` of ``package``: each public name (``exports``: name ->
    submodule defining it) or submodule is imported on first use, then kept as an attribute."""
    module = sys.modules[package]

    def __getattr__(name: str):
        if name in exports:
            value = getattr(import_module(f".{exports[name]}", package), name)
        elif name in {m.name for m in pkgutil.iter_modules(module.__path__)}:
            value = import_module(f".{name}", package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(exports))

    return __getattr__, __dir__


_EXPORTS = {
    **dict.fromkeys(("Direction", "equal_direction", "lp_norm", "search_family", "sparse_family"), "directions"),
    **dict.fromkeys(("Noise", "IIDNoise", "DistributionNoise", "noise", "noise_names", "register_noise"), "noises"),
    **dict.fromkeys(("EngineSettings", "Radius", "Margin", "Witness", "certified_radius", "radius_curve",
                     "witness_margin", "DEFAULT_P_A_GRID"), "radius"),
    **dict.fromkeys(("predict", "certify", "certify_norms", "Certification"), "certification"),
    **dict.fromkeys(("optimize_noise", "IOptSettings", "IOptStep", "InputOptimized"), "iopt"),
}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"
__getattr__, __dir__ = _lazy(__name__, _EXPORTS)

