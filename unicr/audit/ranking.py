"""Noise optimality ranking: which noise certifies the largest radius at equal sigma and d?

In the manner of the UniCR paper (Hong et al., ECCV 2022, Sec. 5.2, Figs. 6-8 and Table 2): for
l1, l2 and l_inf, every built-in noise family with a finite variance is set to the same
per-coordinate standard deviation sigma and dimension d, and its engine radius R_U is computed over
the p_A grid (binary case). Per norm the families are ranked by the area under the p_A -> R_U
curve (trapezoid rule over the grid) and the winner at each p_A is the family with the largest R_U.
General normal noise runs over the beta grid of the paper's Table 2 (beta = 1 is Laplace, beta = 2
Gaussian). Cauchy noise has no variance and is left out.

R_U is an upper bound on each family's tight radius, as good as the direction search: a family
whose worst direction the search misses is ranked too high.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certificates import norm_label

from ..noises import noise as make_noise
from ..radius import radius_curve
from .core import Settings, engine_backend
from .report import dumps, grid_spec, write_files

__all__ = ["BETAS", "FAMILIES", "NORMS", "Ranking", "rank", "render_ranking", "write_ranking"]

NORMS = (1.0, 2.0, float("inf"))
#: the general-normal shapes of the paper's Table 2
BETAS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
#: (label, unicr noise name, shape parameters); general normal beta = 1, 2 appear as laplace, gaussian
FAMILIES = (
    ("gaussian (general-normal beta=2)", "gaussian", {}),
    ("laplace (general-normal beta=1)", "laplace", {}),
    *((f"general-normal beta={b:g}", "general-normal", {"beta": b}) for b in BETAS if b not in (1.0, 2.0)),
    ("uniform", "uniform", {}),
    ("hyperbolic-secant", "hyperbolic-secant", {}),
    ("logistic", "logistic", {}),
    ("student-t nu=3", "student-t", {"nu": 3.0}),
    ("lomax a=3", "lomax", {"a": 3.0}),
    ("gaussian-laplace w=0.5", "gaussian-laplace", {"w": 0.5}),
    ("exponential-mixture w=0.5", "exponential-mixture", {"w": 0.5}),
    ("uniform-ball", "uniform-ball", {}),
    ("linf-exp", "linf-exp", {}),
    ("l2-exp", "l2-exp", {}),
)


@dataclass(frozen=True)
class Ranking:
    """Engine curves of every family in every norm: ``radius[norm][label]`` = (R_U, R_lo, R_hi) arrays."""

    settings: Settings
    sigma: float
    backend: str
    radius: dict

    def auc(self, p: float) -> dict[str, float]:
        """Area under R_U over the p_A grid (trapezoid), per family."""
        x = np.asarray(self.settings.p_a)
        return {label: float(np.trapezoid(r[0], x)) for label, r in self.radius[p].items()}

    def order(self, p: float) -> list[str]:
        """Families by decreasing area (ties by label)."""
        auc = self.auc(p)
        return sorted(auc, key=lambda k: (-auc[k], k))

    def winners(self, p: float) -> list[str]:
        """The family with the largest R_U at each p_A (ties go to the better area)."""
        order = self.order(p)
        stack = np.stack([self.radius[p][k][0] for k in order])
        return [order[i] for i in np.argmax(stack, 0)]


def rank(settings: Settings, sigma: float = 1.0, *, progress=None) -> Ranking:
    """Engine radius curves of :data:`FAMILIES` at (sigma, settings.dim) in l1, l2 and l_inf.

    ``progress``: an optional callable run after each curve (e.g. a tqdm bar's update).
    """
    backend, _ = engine_backend(settings.backend)
    radius = {}
    for p in NORMS:
        radius[p] = {}
        for label, family, shape in FAMILIES:
            noise = make_noise(family, sigma=sigma, dim=settings.dim, **shape)
            df = radius_curve(noise, p, list(settings.p_a), samples=settings.samples, seed=settings.seed,
                              device=settings.device, confidence=settings.confidence, backend=backend,
                              search=settings.search)
            radius[p][label] = tuple(df[c].to_numpy(dtype=float) for c in ("radius", "lower", "upper"))
            if progress is not None:
                progress()
    return Ranking(settings, float(sigma), backend, radius)


def _runs(grid, winners) -> list[tuple[float, float, str]]:
    """Consecutive p_A with the same winner: (first p_A, last p_A, family)."""
    runs = []
    for x, w in zip(grid, winners):
        if runs and runs[-1][2] == w:
            runs[-1] = (runs[-1][0], x, w)
        else:
            runs.append((x, x, w))
    return runs


def _plot(ranking: Ranking, p: float) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.asarray(ranking.settings.p_a)
    fig = Figure(figsize=(9.0, 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["tab20"].colors
    for i, label in enumerate(ranking.order(p)):
        ax.plot(x, ranking.radius[p][label][0], color=colors[i % len(colors)], lw=1.4,
                ls="-" if i < len(colors) else "--", label=label)
    ax.set_xlabel("$p_A$")
    ax.set_ylabel(f"engine radius $R_U$ ({norm_label(p)}, input units)")
    ax.set_title(f"R-p_A curves vs {norm_label(p)}: sigma={ranking.sigma:g}, d={ranking.settings.dim}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def render_ranking(ranking: Ranking, out: Path, command: str, prov: dict) -> dict[Path, bytes]:
    """optimality.md, optimality.json and one optimality-<norm>.png per norm, in memory."""
    s = ranking.settings
    x = list(s.p_a)
    lines = [
        "# Noise optimality ranking", "",
        f"Generated by: `{command}`", "",
        "Which noise certifies the largest radius at equal per-coordinate standard deviation "
        f"sigma = {ranking.sigma:g} and dimension d = {s.dim}? For each norm, every family's engine radius R_U "
        "is computed over the p_A grid (binary case); families are ranked by the area under the p_A -> R_U "
        "curve (trapezoid rule) and the winner at each p_A is the family with the largest R_U "
        "(as in the UniCR paper, Figs. 6-8 and Table 2). Cauchy noise has no variance and is left out. "
        "R_U is an upper bound on each tight radius, only as good as the direction search: a family whose "
        "worst direction is missed ranks too high. l_inf radii are in input units (no x255).", "",
        f"Parameters: p_A grid {grid_spec(x)} ({len(x)} points), {s.samples} samples, seed {s.seed}, "
        f"confidence {s.confidence:g}, backend {s.backend} (used: {ranking.backend}), search {s.search}.", "",
        "Provenance: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()) + f"; commit {prov['commit']}.",
        "",
    ]
    files = {}
    probes = sorted({min(x, key=lambda g: abs(g - t)) for t in (0.6, 0.8, 0.9, 0.99)})
    for p in NORMS:
        nl = norm_label(p)
        auc, order, winners = ranking.auc(p), ranking.order(p), ranking.winners(p)
        files[Path(out) / f"optimality-{nl}.png"] = _plot(ranking, p)
        lines += [f"## {nl}", "", f"![R-p_A curves vs {nl}](optimality-{nl}.png)", "",
                  "| rank | noise | area | " + " | ".join(f"R_U at p_A={t:g}" for t in probes) + " | wins |",
                  "|---|---|---|" + "---|" * len(probes) + "---|"]
        for i, label in enumerate(order, 1):
            r = ranking.radius[p][label][0]
            at = [format(float(r[x.index(t)]), ".4g") for t in probes]
            lines.append(f"| {i} | {label} | {auc[label]:.4g} | " + " | ".join(at) +
                         f" | {winners.count(label)} |")
        lines += ["", "Winner per p_A: " + "; ".join(
            f"{a:g}" + (f"-{b:g}" if b != a else "") + f": {w}" for a, b, w in _runs(x, winners)) + ".", ""]
    gn = {1.0: "laplace (general-normal beta=1)", 2.0: "gaussian (general-normal beta=2)"}
    lines += ["## General normal beta grid (Table 2)", "",
              "Area under R_U for density prop. to exp(-|x/alpha|^beta), alpha set so that sigma = "
              f"{ranking.sigma:g}.", "",
              "| beta | " + " | ".join(norm_label(p) for p in NORMS) + " |", "|---|" + "---|" * len(NORMS)]
    for b in BETAS:
        label = gn.get(b, f"general-normal beta={b:g}")
        lines.append(f"| {b:g} | " + " | ".join(f"{ranking.auc(p)[label]:.4g}" for p in NORMS) + " |")
    lines.append("")
    files[Path(out) / "optimality.md"] = "\n".join(lines).encode()
    data = {"command": command, "sigma": ranking.sigma, "dim": s.dim, "p_a": x, "samples": s.samples,
            "seed": s.seed, "backend": s.backend, "backend_used": ranking.backend, "search": s.search,
            "curves": {norm_label(p): {label: {"radius": r[0], "lower": r[1], "upper": r[2],
                                                "area": ranking.auc(p)[label]}
                                        for label, r in ranking.radius[p].items()} for p in NORMS}}
    files[Path(out) / "optimality.json"] = dumps(data).encode()
    return files


def write_ranking(ranking: Ranking, out, command: str, prov: dict) -> Path:
    """Render and atomically write the ranking files; returns the Markdown path."""
    files = render_ranking(ranking, Path(out), command, prov)
    write_files(files)
    return Path(out) / "optimality.md"
