"""Perturbation directions and l_p norms.

A direction v is stored by its non-zero coordinates (the *support*): ``values`` at positions
``index`` (the first k positions when ``index`` is None). Structured directions keep a compact
description (``groups``: counts of equal values, signed), which the deterministic backend and the
reports use.

The search family (:func:`search_family`) follows what the noise declares, and nothing else:

- positions: for ``exchangeable`` noise (i.i.d., or a function of ||x||_2 or ||x||_inf) they do
  not matter and the first k coordinates are used; otherwise every signed axis is searched as
  well for d <= ``AXES_LIMIT``, and beyond that a warning says that positions are not searched
  (declare ``exchangeable=True`` where it holds, or pass the directions to search);
- signs: for ``coordinatewise_symmetric`` noise only magnitudes matter; ``symmetric`` noise
  (mu(-e) = mu(e)) needs the mixed pattern (half the coordinates negative) besides +v; any other
  noise needs +v, -v and the mixed pattern, since delta and -delta differ.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch

from .errors import check_dim, check_norm

__all__ = ["Direction", "lp_norm", "equal_direction", "sparse_family", "search_family", "norm_label",
           "AXES_LIMIT"]

#: largest dimension at which every signed axis is searched for noise that is not exchangeable
AXES_LIMIT = 16


def lp_norm(x: torch.Tensor, p: float) -> torch.Tensor:
    """||x||_p over the last dimension, for any p > 0 (a quasi-norm for p < 1) and p = inf."""
    a = x.abs()
    if math.isinf(p):
        return a.amax(-1)
    if p == 1:
        return a.sum(-1)
    if p == 2:
        return torch.linalg.vector_norm(a, dim=-1)
    # scaled to avoid under/overflow of |x|^p
    m = a.amax(-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
    return m.squeeze(-1) * ((a / m) ** p).sum(-1) ** (1.0 / p)


def norm_label(p: float) -> str:
    """'l1', 'l2', 'linf', 'l0.5' ..."""
    if math.isinf(p):
        return "linf"
    return f"l{p:g}"


@dataclass(frozen=True, eq=False)
class Direction:
    """A direction in R^dim, normalised to unit l_p norm for the norm it is searched in.
    Two directions are equal when they are the same vector (labels aside)."""

    values: torch.Tensor
    dim: int
    index: torch.Tensor | None = None
    label: str = "custom"
    groups: tuple[tuple[int, float], ...] | None = field(default=None)

    def __post_init__(self):
        check_dim(self.dim)
        if self.values.ndim != 1 or not 1 <= self.values.numel() <= self.dim:
            raise ValueError(f"direction support must have 1..dim={self.dim} entries, "
                             f"got shape {tuple(self.values.shape)}")
        if self.index is not None and self.index.shape != self.values.shape:
            raise ValueError("direction index and values must have the same shape")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Direction):
            return NotImplemented
        return bool(self.dim == other.dim and torch.equal(self.dense(), other.dense()))

    def __hash__(self) -> int:
        return hash((self.dim, self.dense().numpy().tobytes()))

    @property
    def support_size(self) -> int:
        return int(self.values.numel())

    def norm(self, p: float) -> float:
        return float(lp_norm(self.values, p))

    def dense(self, device=None, dtype=torch.float64) -> torch.Tensor:
        """The full vector in R^dim."""
        out = torch.zeros(self.dim, device=device, dtype=dtype)
        idx = torch.arange(self.support_size, device=device) if self.index is None else self.index.to(device)
        out[idx] = self.values.to(device=device, dtype=dtype)
        return out

    def describe(self, scale: float = 1.0) -> dict:
        """A JSON-ready description of delta = scale * v (compact for structured directions)."""
        out = {"label": self.label, "dim": self.dim, "support": self.support_size}
        if self.groups is not None:
            out["groups"] = [{"count": c, "value": scale * m} for c, m in self.groups]
        else:
            vals = (scale * self.values).tolist()
            out["values"] = vals
            if self.index is not None:
                out["index"] = self.index.tolist()
        return out

    @classmethod
    def from_description(cls, desc: dict) -> "Direction":
        """Inverse of :meth:`describe` (with scale 1): rebuilds a stored witness direction."""
        dim = int(desc["dim"])
        if "groups" in desc:
            groups = tuple((int(g["count"]), float(g["value"])) for g in desc["groups"])
            values = torch.cat([torch.full((c,), m, dtype=torch.float64) for c, m in groups])
            return cls(values, dim, label=desc.get("label", "custom"), groups=groups)
        values = torch.tensor(desc["values"], dtype=torch.float64)
        index = torch.tensor(desc["index"]) if "index" in desc else None
        return cls(values, dim, index=index, label=desc.get("label", "custom"))


def equal_direction(k: int, dim: int, p: float, *, negative: int = 0) -> Direction:
    """k non-zero coordinates of equal magnitude, unit l_p norm: |v_i| = k^(-1/p) (the axis for
    k=1, the diagonal for k=dim), the last ``negative`` of them negative."""
    k = check_dim(k, "k")
    dim = check_dim(dim)
    p = check_norm(p)
    if k > dim:
        raise ValueError(f"k must lie in [1, dim={dim}], got {k}")
    if isinstance(negative, bool) or not 0 <= int(negative) <= k:
        raise ValueError(f"negative must be an integer in [0, k={k}], got {negative!r}")
    negative = int(negative)
    m = 1.0 if math.isinf(p) else k ** (-1.0 / p)
    label = "axis" if k == 1 else ("diagonal" if k == dim else f"{k}-sparse")
    if negative == k:
        label = "-" + label
    elif negative:
        label += f" ({negative}-)"
    groups = tuple((c, s * m) for c, s in ((k - negative, 1.0), (negative, -1.0)) if c)
    values = torch.cat([torch.full((c, ), v, dtype=torch.float64) for c, v in groups])
    return Direction(values, dim, label=label, groups=groups)


def axis_direction(i: int, dim: int, sign: float = 1.0) -> Direction:
    """sign * e_i (0-based position i)."""
    return Direction(torch.tensor([float(sign)], dtype=torch.float64), dim, index=torch.tensor([int(i)]),
                     label=f"{'-' if sign < 0 else ''}axis {i}", groups=((1, float(sign)),))


def _sparse_ks(dim: int, max_members: int) -> list[int]:
    if dim <= max_members:
        return list(range(1, dim + 1))
    return sorted({int(round(dim ** (i / (max_members - 1)))) for i in range(max_members)} | {1, dim})


def sparse_family(dim: int, p: float, *, max_members: int = 14) -> list[Direction]:
    """k-sparse equal directions from the axis to the full diagonal, k on a geometric grid."""
    dim = check_dim(dim)
    return [equal_direction(k, dim, p) for k in _sparse_ks(dim, max_members)]


def search_family(noise, p: float, *, max_members: int = 14) -> list[Direction]:
    """The directions to screen for ``noise`` in l_p: k-sparse equal directions with the sign
    patterns and positions the noise's declarations require (module docstring)."""
    dim = check_dim(noise.dim)
    out = []
    for k in _sparse_ks(dim, max_members):
        patterns = [0]
        if not noise.coordinatewise_symmetric:
            if not noise.symmetric:
                patterns.append(k)
            if k >= 2:
                patterns.append(k // 2)
        out += [equal_direction(k, dim, p, negative=j) for j in patterns]
    if not noise.exchangeable and dim > 1:
        if dim > AXES_LIMIT:
            warnings.warn(f"{noise.name} does not declare itself exchangeable: only the first k coordinates "
                          f"are searched at d={dim} > {AXES_LIMIT}, so the radius may miss a worse position; "
                          "declare exchangeable=True where it holds, or pass search=[Direction, ...]",
                          UserWarning, stacklevel=4)
        else:
            signs = (1.0,) if noise.symmetric else (1.0, -1.0)
            out += [axis_direction(i, dim, s) for i in range(1, dim) for s in signs]
    return out
