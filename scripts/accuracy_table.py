"""Accuracy of the Monte Carlo engine against the closed forms: d = 3072, 10^5 draws, 200 p_A in
[0.55, 0.9999], the default direction search, ``backend="mc"`` (the deterministic backend, the
default, matches these closed forms to rounding: tests/test_exact.py).

Writes results/accuracy.json, from which ``python scripts/readme_tables.py`` renders the README's
table. Run: ``python scripts/accuracy_table.py`` (a few minutes)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import norm as normal

import unicr
from unicr.directions import norm_label

DIM, SAMPLES, SEED = 3072, 100_000, 0
P_A = np.linspace(0.55, 0.9999, 200)
CUBE = math.sqrt(3)   # half width of the uniform cube with sigma = 1


def cases():
    """(noise, norm, closed-form radius at P_A) for sigma = 1."""
    z = normal.ppf(P_A)
    return [("gaussian", 1, z), ("gaussian", 2, z), ("gaussian", math.inf, z / math.sqrt(DIM)),
            ("laplace", 1, -np.log(2 * (1 - P_A)) / math.sqrt(2)),
            ("uniform", 1, 2 * CUBE * (P_A - 0.5)),
            ("uniform", math.inf, -2 * CUBE * np.expm1(np.log(1.5 - P_A) / DIM))]


def row(name: str, p: float, reference: np.ndarray) -> dict:
    df = unicr.radius_curve(unicr.noise(name, dim=DIM), p, p_a=P_A, samples=SAMPLES, seed=SEED, backend="mc")
    rel = np.abs(df["radius"].to_numpy() / reference - 1)
    inside = (df["lower"].to_numpy() <= reference) & (reference <= df["upper"].to_numpy())
    half = (df["upper"] - df["lower"]).to_numpy() / 2 / df["radius"].to_numpy()
    return {"noise": name, "norm": norm_label(p), "median_rel_error": float(np.median(rel)),
            "max_rel_error": float(rel.max()), "inside_band": float(inside.mean()),
            "median_half_width": float(np.median(half)), "directions": sorted(set(df["direction"]))}


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "results" / "accuracy.json"
    rows = []
    for name, p, reference in cases():
        rows.append(row(name, p, reference))
        print(rows[-1], flush=True)
    settings = {"dim": DIM, "samples": SAMPLES, "seed": SEED, "backend": "mc", "search": "sparse",
                "p_a": [float(P_A[0]), float(P_A[-1]), len(P_A)], "command": "python scripts/accuracy_table.py"}
    out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
