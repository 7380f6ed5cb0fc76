"""Perturbation directions and l_p norms.

A direction v is stored by its non-zero coordinates (the *support*): ``values`` at positions
``index`` (the first k positions when ``index`` is None). For i.i.d. noise the positions do not
matter, and for the built-in non-i.i.d. families (functions of ||x||_2 or ||x||_inf) neither do
they, so the first k positions are used without loss of generality. Structured directions keep
a compact description (``groups``: counts of equal magnitudes), which the deterministic backend
and the reports use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .errors import check_dim, check_norm

__all__ = ["Direction", "lp_norm", "equal_direction", "sparse_family", "norm_label"]


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


@dataclass(frozen=True)
class Direction:
    """A direction in R^dim, normalised to unit l_p norm for the norm it is searched in."""

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


def equal_direction(k: int, dim: int, p: float) -> Direction:
    """k equal non-zero coordinates, unit l_p norm: v_i = k^(-1/p) (the axis for k=1, diagonal for k=dim)."""
    k = check_dim(k, "k")
    dim = check_dim(dim)
    p = check_norm(p)
    if k > dim:
        raise ValueError(f"k must lie in [1, dim={dim}], got {k}")
    m = 1.0 if math.isinf(p) else k ** (-1.0 / p)
    label = "axis" if k == 1 else ("diagonal" if k == dim else f"{k}-sparse")
    return Direction(torch.full((k,), m, dtype=torch.float64), dim, label=label, groups=((k, m),))


def sparse_family(dim: int, p: float, *, max_members: int = 14) -> list[Direction]:
    """k-sparse equal directions from the axis to the full diagonal, k on a geometric grid."""
    dim = check_dim(dim)
    if dim <= max_members:
        ks = list(range(1, dim + 1))
    else:
        ks = sorted({int(round(dim ** (i / (max_members - 1)))) for i in range(max_members)} | {1, dim})
    return [equal_direction(k, dim, p) for k in ks]
