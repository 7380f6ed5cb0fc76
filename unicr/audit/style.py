"""One matplotlib style for every audit figure: paper-sized fonts, a colour-blind-safe palette, and
deterministic vector PDF plus PNG output.

Figures are built without pyplot (``figure``) inside ``context()`` and written by ``render`` (bytes,
for the reports' atomic writes) or ``save`` (files). Neither output carries a date or a software
string, so the same data gives the same bytes. matplotlib is imported on first use.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["WIDTH", "WIDE", "DPI", "COLORS", "CYCLE", "RC", "context", "figure", "render", "save"]

#: one-column and two-column figure widths of a paper (inches)
WIDTH, WIDE = 3.4, 7.0
#: PNG resolution
DPI = 300
#: Paul Tol's "bright" qualitative palette (colour-blind safe, distinct in greyscale by luminance)
COLORS = {"blue": "#4477AA", "cyan": "#66CCEE", "green": "#228833", "yellow": "#CCBB44", "red": "#EE6677",
          "purple": "#AA3377", "grey": "#BBBBBB", "black": "#000000"}
RC = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 6.5, "legend.frameon": True, "legend.framealpha": 0.9, "legend.edgecolor": "0.8",
    "legend.borderaxespad": 0.4, "legend.handlelength": 1.8,
    "axes.linewidth": 0.6, "axes.grid": True, "grid.linewidth": 0.4, "grid.alpha": 0.35,
    "lines.linewidth": 1.2, "lines.markersize": 3.5, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "xtick.major.size": 2.5, "ytick.major.size": 2.5, "xtick.direction": "out", "ytick.direction": "out",
    "mathtext.fontset": "dejavusans", "pdf.fonttype": 42,
}
#: the colour cycle, in palette order
CYCLE = ("blue", "red", "green", "yellow", "cyan", "purple", "grey")


def context():
    """``with context():`` build and render a figure in this style (matplotlib defaults plus ``RC``)."""
    import matplotlib
    from cycler import cycler

    return matplotlib.rc_context({**RC, "axes.prop_cycle": cycler(color=[COLORS[k] for k in CYCLE])})


def figure(width: float = WIDTH, height: float = 2.6):
    """A pyplot-free Figure with the Agg canvas and constrained layout (call inside ``context()``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def render(fig) -> dict[str, bytes]:
    """{'.pdf': vector PDF, '.png': PNG at ``DPI``}, with no date or software metadata. The layout is
    computed once and then frozen, so both files and every later render share the same positions."""
    import io

    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    out = {}
    for suffix, fmt, metadata in ((".pdf", "pdf", {"CreationDate": None, "Producer": None, "Creator": None}),
                                  (".png", "png", {"Software": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
        out[suffix] = buf.getvalue()
    return out


def save(fig, path) -> list[Path]:
    """Write ``path``.pdf and ``path``.png (``path`` without suffix); returns the two paths."""
    base = Path(path)
    written = []
    for suffix, data in render(fig).items():
        target = base.with_name(base.name + suffix)
        target.write_bytes(data)
        written.append(target)
    return written
