"""The README's tables are what results/ holds: the verdicts of the main job and the accuracy of
the Monte Carlo engine are rendered from results/ by scripts/readme_tables.py (which rewrites
them); here the committed README must equal that rendering."""
from __future__ import annotations

from pathlib import Path

from scripts.readme_tables import render

ROOT = Path(__file__).resolve().parents[1]


def test_readme_tables_match_results():
    readme = (ROOT / "README.md").read_text()
    assert readme == render(readme, ROOT / "results"), \
        "README.md's tables differ from results/: run python scripts/readme_tables.py"
