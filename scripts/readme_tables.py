"""The README's generated tables, rendered from results/: the verdicts of the main job (one line
per report results/*/*.json) and the accuracy of the Monte Carlo engine (results/accuracy.json,
written by scripts/accuracy_table.py).

Each table sits in README.md between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.
``python scripts/readme_tables.py`` rewrites them; tests/test_readme.py fails where the README
and results/ disagree."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _ratio(x: float) -> str:
    """R_C/R_U to 4 decimals; within 1e-12 of 1 prints as 1.0000, as the reports do."""
    return "1.0000" if abs(x - 1.0) <= 1e-12 else f"{x:.4f}"


def verdict_table(results: Path) -> str:
    """One line per case of the main job: certificate, norm, claim, verdict, rows per verdict,
    R_C/R_U over the sweep, the largest excess R_C/R_hi - 1, the backend."""
    lines = ["| certificate | norm | claim | verdict | t/l/s/u | R_C / R_U | max R_C/R_hi − 1 | backend |",
             "|---|---|---|---|---|---|---|---|"]
    records = []
    for path in sorted(results.glob("*/*.json")):
        rec = json.loads(path.read_text())
        if isinstance(rec, dict) and {"certificate", "verdict", "summary"} <= rec.keys():
            records.append(rec)
    for rec in sorted(records, key=lambda r: (r["certificate"], float(r["p"]))):
        sm = rec["summary"]
        counts = "/".join(str(sm[k]) for k in ("tight", "loose", "suspect", "unconfirmed"))
        ratio = _ratio(sm["ratio_min"]) if _ratio(sm["ratio_min"]) == _ratio(sm["ratio_max"]) else \
            f"{_ratio(sm['ratio_min'])}–{_ratio(sm['ratio_max'])}"
        backends = sorted({row["backend"] for row in rec["rows"]})
        lines.append(f"| {rec['certificate']} | {rec['norm']} | {rec['claim']} | {rec['verdict']} | {counts} | "
                     f"{ratio} | {sm['excess_max']:+.2g} | {', '.join(backends)} |")
    return "\n".join(lines)


def accuracy_table(results: Path) -> str:
    """The Monte Carlo engine against the closed forms (results/accuracy.json)."""
    data = json.loads((results / "accuracy.json").read_text())
    lines = ["| noise | norm | median rel. error | max rel. error | closed form inside band | "
             "median band half-width | found direction |", "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        lines.append(f"| {r['noise']} | {r['norm']} | {r['median_rel_error']:.2%} | {r['max_rel_error']:.2%} | "
                     f"{r['inside_band']:.1%} | {r['median_half_width']:.2%} | {', '.join(r['directions'])} |")
    return "\n".join(lines)


TABLES = {"verdicts": verdict_table, "accuracy": accuracy_table}


def render(readme: str, results: Path) -> str:
    """The README text with every generated table rendered from ``results``."""
    for name, table in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        if not pattern.search(readme):
            raise ValueError(f"README.md has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
        readme = pattern.sub(lambda m: m.group(1) + table(results) + "\n" + m.group(2), readme)
    return readme


def main() -> None:
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text(), ROOT / "results"))


if __name__ == "__main__":
    main()
