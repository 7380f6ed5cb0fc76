"""Figures and report text: PDF and PNG at print resolution, the ratio panel, a visible or stated band,
suspect markers, the ranking's top families, same input -> same bytes, and the report's glitches
(negative or '-0.00%' gaps, radii that are 0 up to rounding, the --recheck path)."""
from __future__ import annotations

import re
import runpy
import shlex
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from unicr.audit import Settings, audit, main, ranking, report, style
from unicr.audit.verdicts import SUSPECT

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "audits" / "planted.py"
TINY = Settings(dim=16, p_a=(0.6, 0.9), samples=2000)


@pytest.fixture(scope="module")
def teng():
    return audit("teng", 1, settings=TINY)


def png_dpi(data: bytes) -> float:
    """Horizontal resolution from the PNG's pHYs chunk (pixels per metre) in dots per inch."""
    pos = 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"pHYs":
            x, _, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            assert unit == 1  # metre
            return x * 0.0254
        pos += 12 + length
    raise AssertionError("no pHYs chunk")


def with_rows(a, **fields):
    """The audit with every row's fields set by ``fields[name](row)``."""
    return replace(a, rows=tuple(replace(r, **{k: f(r) for k, f in fields.items()}) for r in a.rows))


def test_audit_writes_pdf_and_png(teng, tmp_path):
    md = report.write_audit(teng, tmp_path)
    pdf, png = md.with_suffix(".pdf").read_bytes(), md.with_suffix(".png").read_bytes()
    assert pdf.startswith(b"%PDF") and png.startswith(b"\x89PNG")
    assert png_dpi(png) >= 200
    width, height = struct.unpack(">II", png[16:24])
    assert width == round(style.WIDTH * style.DPI) and height > width
    assert b"CreationDate" not in pdf and b"Software" not in png
    text = md.read_text()
    assert f"]({md.stem}.png)" in text and f"]({md.stem}.pdf)" in text


def test_same_input_same_bytes(teng, tmp_path):
    assert report.plot(teng) == report.plot(teng)
    assert report.plot(teng) == report.plot(audit("teng", 1, settings=TINY))
    with style.context():
        fig = report.figure(teng)
        first = style.save(fig, tmp_path / "a")
        second = style.save(fig, tmp_path / "b")
    assert [p.suffix for p in first] == [".pdf", ".png"]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_ratio_panel(teng):
    with style.context():
        fig = report.figure(teng)
    top, bottom = fig.axes
    assert top.get_shared_x_axes().joined(top, bottom)
    assert bottom.get_ylabel() == "$R_C / R_U$" and bottom.get_xlabel() == "$p_A$"
    lo, hi = bottom.get_ylim()
    tau = teng.settings.tolerance
    assert lo < 1 - tau and hi > 1 + tau  # the line at 1 and the tight zone are in view
    assert any(list(line.get_ydata()) == [1, 1] for line in bottom.get_lines())
    zone = [t for t in fig.legends[0].get_texts() if "tight zone" in t.get_text()]
    assert zone


def _legend(ax) -> str:
    return " | ".join(t.get_text() for t in ax.get_legend().get_texts())


def test_band_drawn_or_stated(teng):
    """A wide band is drawn and in the legend; one too narrow to see is stated with its width."""
    wide = with_rows(teng, lower=lambda r: 0.97 * r.radius, upper=lambda r: 1.03 * r.radius)
    narrow = with_rows(teng, lower=lambda r: r.radius * (1 - 1e-12), upper=lambda r: r.radius * (1 + 1e-12))
    with style.context():
        top, bottom = report.figure(wide).axes
        assert top.collections and bottom.collections  # fill_between
        assert "engine band (" in _legend(top) and "too narrow" not in _legend(top)
        kind = "deterministic" if {r.backend for r in wide.rows} == {"exact"} else "0.99 confidence"
        assert f"engine band ({kind})" in _legend(top)
        top, bottom = report.figure(narrow).axes
    assert not top.collections and not bottom.collections
    assert re.search(r"width \$\\leq\$ 2e-12 \$R_U\$,\ntoo narrow to draw", _legend(top))


def test_suspect_marked(teng):
    over = replace(with_rows(teng, claimed=lambda r: 1.03 * r.radius, verdict=lambda r: SUSPECT), verdict=SUSPECT)
    with style.context():
        fig = report.figure(over)
    for ax in fig.axes:
        assert any(line.get_marker() == "^" and line.get_color() == style.COLORS["red"] for line in ax.get_lines())
    assert any(t.get_text() == "suspect (2)" for t in fig.legends[0].get_texts())
    assert "SUSPECT" in fig.axes[0].get_title()


def test_gap_text_never_negative():
    assert report.gap_text(-0.0) == report.gap_text(-1e-13) == report.gap_text(-0.03) == "0.00%"
    assert report.gap_text(-np.inf) == "0.00%" and report.gap_text(0.12345) == "12.35%"
    assert report.gap_text(4e-5) == "0.00%" and report.gap_text(float("nan")) == "nan"


def test_report_glitches(teng, tmp_path):
    """A claim above R_U has no negative gap; a radius that is 0 up to rounding prints as 0."""
    above = with_rows(teng, claimed=lambda r: r.radius * (1 + 5e-4))
    assert report.summary(above)["gap_max"] == 0.0
    text = report.markdown(above, tmp_path, "x", "", report.provenance())
    assert "largest gap 0.00%" in text and not re.search(r"-\d+\.\d\d%", text)
    zero = with_rows(teng, claimed=lambda r: 3.68e-17)
    text = report.markdown(zero, tmp_path, "x", "", report.provenance())
    rows = [ln for ln in text.splitlines() if ln.startswith(("| 0.6 |", "| 0.9 |"))]
    assert len(rows) == 2 and all(ln.split(" | ")[1] == "0" and ln.split(" | ")[4] == "0" for ln in rows)
    assert "e-17" not in text and "R_C/R_U from 0 to 0 " in text
    report.write_audit(zero, tmp_path)
    assert "R_C/R_U 0-0, max gap 100.00%" in report.write_index(tmp_path).read_text()


def test_recheck_hint_works_where_the_audit_ran(tmp_path, monkeypatch, capsys):
    """The report's --recheck command names the JSON under OUT as given, and it runs from there."""
    a = audit(runpy.run_path(str(PLANTED))["INFLATED_5"], 2,
              settings=Settings(dim=8, p_a=(0.9,), samples=20000, backend="mc"),
              source=f"{PLANTED}:INFLATED_5")
    assert a.verdict == SUSPECT
    monkeypatch.chdir(tmp_path)
    text = report.write_audit(a, "out").read_text()
    json_path = "out/planted-cohen-inflated-5pct/planted-cohen-inflated-5pct-l2-sigma1.json"
    (command,) = re.findall(r"`(python -m unicr\.audit --recheck [^`]*)`", text)
    assert command == f"python -m unicr.audit --recheck {json_path} --certificate {PLANTED}:INFLATED_5"
    assert main(shlex.split(command)[3:]) == 0 and "holds" in capsys.readouterr().out
    absolute = report.write_audit(a, tmp_path / "abs").read_text()
    assert f"--recheck {(tmp_path / 'abs').as_posix()}/planted-cohen-inflated-5pct/" in absolute


def _fake_ranking() -> ranking.Ranking:
    """Curves for every family without the engine, R_U = k (p_A - 1/2); the Gaussian ranks first in l1 and
    outside the top in l2 and l_inf."""
    settings = Settings(dim=8, p_a=(0.6, 0.8, 0.95), samples=1000)
    x = np.asarray(settings.p_a) - 0.5
    ks = np.linspace(2.0, 0.2, len(ranking.FAMILIES))
    radius = {p: {label: (k * x, 0.99 * k * x, 1.01 * k * x)
                  for k, (label, _, _) in zip(np.roll(ks, 4 * j), ranking.FAMILIES)}
              for j, p in enumerate(ranking.NORMS)}
    return ranking.Ranking(settings, 1.0, "mc", radius)


def test_ranking_figure_top_families(tmp_path):
    fake = _fake_ranking()
    files = ranking.render_ranking(fake, tmp_path, "cmd", report.provenance())
    assert {p.name for p in files} == {"optimality.md", "optimality.json", "optimality.pdf", "optimality.png"}
    assert png_dpi(files[tmp_path / "optimality.png"]) >= 200
    assert ranking.plot(fake) == ranking.plot(fake)
    with style.context():
        fig = ranking.figure(fake)
    assert len(fig.axes) == len(ranking.NORMS)
    for ax, p in zip(fig.axes, ranking.NORMS):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(labels) == ranking.TOP + (ranking.GAUSSIAN not in ranking.shown(fake, p))
        assert any("gaussian" in t and t.endswith("(= 1)") for t in labels)
        order = fake.order(p)
        for line in ax.get_lines()[1:]:  # relative to the Gaussian's radius
            assert np.all(np.asarray(line.get_ydata()) > 0)
        assert labels[0].startswith(f"1. {order[0].split(' (')[0]}")
    md = files[tmp_path / "optimality.md"].decode()
    for label, _, _ in ranking.FAMILIES:  # the rest are in the tables
        assert md.count(f"| {label} |") == len(ranking.NORMS)
    assert md.count("| yes |") == ranking.TOP * len(ranking.NORMS)


def test_plotting_imports_are_lazy():
    code = ("import sys, unicr.audit.report, unicr.audit.ranking, unicr.audit.style; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
