"""Noise optimality ranking: which noise certifies the largest radius at equal sigma and d?

In the manner of the UniCR paper (Hong et al., ECCV 2022, Sec. 5.2, Figs. 6-8 and Table 2): for
l1, l2 and l_inf, every built-in noise family with a finite variance is set to the same
per-coordinate standard deviation sigma and dimension d, and its engine radius R_U is computed over
the p_A grid (binary case). Per norm the families are ranked by the area under the p_A -> R_U
curve (trapezoid rule over the grid) and the winner at each p_A is the family with the largest R_U.
General normal noise runs over the beta grid of the paper's Table 2 (beta = 1 is Laplace, beta = 2
Gaussian). Cauchy noise has no variance and is left out. The figure (optimality.pdf and .png)
shows the ``TOP`` families per norm relative to the Gaussian's radius; the Markdown tables list all.

R_U is an upper bound on each family's tight radius, as good as the direction search: a family
whose worst direction the search misses is ranked too high.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certificates import norm_label

from ..noises import noise as make_noise
from ..radius import radius_curve
from . import style
from .core import Settings, engine_backend
from .report import dumps, grid_spec, write_files

__all__ = ["BETAS", "FAMILIES", "GAUSSIAN", "NORMS", "TOP", "Ranking", "rank", "shown", "figure", "plot",
           "render_ranking", "write_ranking"]

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
GAUSSIAN = FAMILIES[0][0]
#: families drawn per norm in the figure; the Markdown tables list all of them
TOP = 5


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


def _short(label: str) -> str:
    """A family's label without its parenthesis: 'gaussian (general-normal beta=2)' -> 'gaussian'."""
    return label.split(" (")[0]


def shown(ranking: Ranking, p: float) -> list[str]:
    """The families the figure draws in norm ``p``: the TOP by area."""
    return ranking.order(p)[:TOP]


def figure(ranking: Ranking):
    """One panel per norm (build it inside ``style.context()``): the TOP families by area, each as
    R_U / R_U(gaussian) over p_A, the Gaussian being the line at 1. A family keeps its colour and line
    style in every panel."""
    x = np.asarray(ranking.settings.p_a)
    drawn = list(dict.fromkeys(label for p in NORMS for label in shown(ranking, p) if label != GAUSSIAN))
    colors = [style.COLORS[c] for c in style.CYCLE if c != "grey"]
    looks = {label: dict(color=colors[i % len(colors)], ls=("-", "--", ":")[i // len(colors) % 3])
             for i, label in enumerate(drawn)}
    fig = style.figure(style.WIDE, 3.5)
    axes = fig.subplots(1, len(NORMS), sharex=True)
    for ax, p in zip(axes, NORMS):
        order = ranking.order(p)
        base = ranking.radius[p][GAUSSIAN][0]
        top = shown(ranking, p)
        for label in top + ([] if GAUSSIAN in top else [GAUSSIAN]):
            text = f"{order.index(label) + 1}. {_short(label)}"
            if label == GAUSSIAN:
                ax.axhline(1.0, color="k", lw=0.9, label=f"{text} (= 1)")
            else:
                ax.plot(x, ranking.radius[p][label][0] / base, lw=1.2, label=text, **looks[label])
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), borderaxespad=0)
        ax.set_title(f"{norm_label(p)}: top {TOP} of {len(order)} by area")
        ax.set_xlabel("$p_A$")
    axes[0].set_ylabel("$R_U$ / $R_U$(gaussian)")
    fig.suptitle(f"Engine radius relative to Gaussian noise: sigma={ranking.sigma:g}, d={ranking.settings.dim}")
    return fig


def plot(ranking: Ranking) -> dict[str, bytes]:
    """The ranking's figure as {'.pdf': bytes, '.png': bytes} (see ``figure``)."""
    with style.context():
        return style.render(figure(ranking))


def render_ranking(ranking: Ranking, out: Path, command: str, prov: dict) -> dict[Path, bytes]:
    """optimality.md, optimality.json and the figure optimality.pdf and .png, in memory."""
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
    files = {Path(out) / f"optimality{suffix}": data for suffix, data in plot(ranking).items()}
    probes = sorted({min(x, key=lambda g: abs(g - t)) for t in (0.6, 0.8, 0.9, 0.99)})
    lines += ["![engine radius relative to the Gaussian's, top families per norm](optimality.png)", "",
              f"Per norm, the {TOP} families with the largest area, each as R_U / R_U(gaussian) over p_A (the "
              "Gaussian is the line at 1; its rank is in the legend). The tables below list every family; "
              "'area / gaussian' is its area over the Gaussian's. Vector version: [optimality.pdf](optimality.pdf).",
              ""]
    for p in NORMS:
        nl = norm_label(p)
        auc, order, winners = ranking.auc(p), ranking.order(p), ranking.winners(p)
        lines += [f"## {nl}", "",
                  "| rank | noise | area | area / gaussian | " + " | ".join(f"R_U at p_A={t:g}" for t in probes) +
                  " | wins | in figure |", "|---|---|---|---|" + "---|" * len(probes) + "---|---|"]
        for i, label in enumerate(order, 1):
            r = ranking.radius[p][label][0]
            at = [format(float(r[x.index(t)]), ".4g") for t in probes]
            lines.append(f"| {i} | {label} | {auc[label]:.4g} | {auc[label] / auc[GAUSSIAN]:.3f} | " +
                         " | ".join(at) + f" | {winners.count(label)} | {'yes' if i <= TOP else '-'} |")
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
