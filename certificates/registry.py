"""The catalog of built-in certificates and its look-ups."""
from __future__ import annotations

from .base import Certificate, _parse_norm, check_noise_name
from .cohen import COHEN
from .li import LI
from .pixeldp import PIXELDP_GAUSSIAN, PIXELDP_GAUSSIAN_DELTA_005, PIXELDP_GAUSSIAN_DELTA_1E5, PIXELDP_LAPLACE
from .teng import TENG
from .yang import YANG

__all__ = ["catalog", "get", "family", "families", "find", "resolve"]

_CATALOG = (COHEN, TENG, PIXELDP_LAPLACE, PIXELDP_GAUSSIAN, PIXELDP_GAUSSIAN_DELTA_1E5,
            PIXELDP_GAUSSIAN_DELTA_005, LI) + YANG
_BY_NAME = {c.name: c for c in _CATALOG}
assert len(_BY_NAME) == len(_CATALOG), "duplicate certificate names"


def catalog() -> list[Certificate]:
    """All built-in certificates, in catalog order."""
    return list(_CATALOG)


def families() -> list[str]:
    """Name prefixes (text before the first '-') shared by the built-in entries."""
    return sorted({c.name.split("-")[0] for c in _CATALOG})


def get(name: str) -> Certificate:
    """One built-in certificate by exact name."""
    key = str(name).strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    hint = f" ({key!r} is a family: use family({key!r}) or resolve({key!r}))" if _members(key) else ""
    raise ValueError(f"unknown certificate {name!r}{hint}; known: {', '.join(_BY_NAME)}")


def _members(prefix: str) -> list[Certificate]:
    return [c for c in _CATALOG if c.name == prefix or c.name.startswith(prefix + "-")]


def family(prefix: str) -> list[Certificate]:
    """Entries named ``prefix`` or ``prefix-*``: family('yang'), family('pixeldp'), family('pixeldp-gaussian')."""
    key = str(prefix).strip().lower()
    members = _members(key)
    if not members:
        raise ValueError(f"unknown certificate family {prefix!r}; known: {', '.join(families())}")
    return members


def find(noise: str | None = None, norm=None) -> list[Certificate]:
    """Entries that certify ``noise`` (a unicr noise name) and/or the l_p ``norm``.

    ``noise`` is only checked for being a well-formed name: a name no entry uses (e.g. a noise
    registered by a user) gives an empty list.
    """
    if noise is not None:
        check_noise_name(noise)
    p = None if norm is None else _parse_norm(norm)
    return [c for c in _CATALOG
            if (noise is None or c.noise.family == noise) and (p is None or p in c.norms)]


def resolve(spec) -> list[Certificate]:
    """A Certificate, an exact name or a family prefix, as a list of certificates."""
    if isinstance(spec, Certificate):
        return [spec]
    key = str(spec).strip().lower()
    if key in _BY_NAME:
        return [_BY_NAME[key]]
    if _members(key):
        return _members(key)
    raise ValueError(f"unknown certificate {spec!r}; known: {', '.join(_BY_NAME)}; families: {', '.join(families())}")
