"""Write the certification logs of this folder (run from the repository root:
``python tests/data/logs/make_logs.py``; the same code gives the same bytes).

The classifier is the half-space f(z) = 1[z_1 > 0] on d = 4 inputs x = (t, 0, 0, 0), certified with
:func:`unicr.certify` (n0 = 100, n = 1000, alpha = 0.001, seed = the input's index) at the offsets t
of ``OFFSETS`` (in units of sigma; t = 0 and t = +-0.02 sigma abstain or nearly so, +-5 sigma get
all n votes, so their radius is the sample-size ceiling). The true label is 1[t > 0], except at
``WRONG_LABEL`` (label 0 on the positive side: a wrong prediction, correct = 0).

* ``gaussian-l2-unicr.tsv``: Gaussian sigma = 0.25, l2 (Cohen's certificate), unicr's nine columns;
* ``gaussian-l2-cohen.tsv``: the same rows in Cohen et al.'s six columns, radius printed ``{:.3}``
  as locuslab/smoothing ``code/certify.py`` does (the ceiling 0.61582 is printed 0.616, above it);
* ``laplace-l1-unicr.tsv``: Laplace sigma = 0.5, l1 (Teng et al.'s certificate), unicr's columns;
* ``planted-cohen.tsv``: ``gaussian-l2-cohen.tsv`` with the defects of ``PLANTED`` (line -> reasons).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from scipy import stats

HERE = Path(__file__).resolve().parent
SIGMA, N0, N, ALPHA, DIM = 0.25, 100, 1000, 0.001, 4
OFFSETS = (-5.0, -1.5, -0.5, -0.1, -0.02, 0.0, 0.02, 0.1, 0.3, 0.5, 1.0, 1.5, 2.0, 5.0, 5.0)
WRONG_LABEL = 9
#: planted-cohen.tsv: file line -> the reasons the audit must give (other lines: none)
PLANTED = {3: {"ceiling", "inconsistent"}, 5: {"inconsistent"}, 7: {"abstain"}, 11: {"correct"}}


def halfspace(batch):
    return (batch[:, 0] > 0).long()


def certify_rows(noise_name: str, sigma: float, norm, p_b: str = "binary") -> list:
    """One LogRow per offset, certified by unicr.certify (``p_b``: its p_B mode)."""
    import torch

    import unicr
    from unicr.logs import LogRow

    noise = unicr.noise(noise_name, sigma=sigma, dim=DIM)
    rows = []
    for idx, t in enumerate(OFFSETS):
        x = torch.zeros(DIM, dtype=torch.float64)
        x[0] = t * sigma
        result = unicr.certify(halfspace, x, noise, norm, n0=N0, n=N, alpha=ALPHA, seed=idx, p_b=p_b)
        label = 0 if idx == WRONG_LABEL else int(t > 0)
        rows.append(LogRow.from_certification(idx, label, result))
    return rows


def cohen_text(rows) -> str:
    """Cohen's six columns, radius as ``{:.3}`` (locuslab/smoothing code/certify.py)."""
    lines = ["idx\tlabel\tpredict\tradius\tcorrect\ttime"]
    lines += ["{}\t{}\t{}\t{:.3}\t{}\t{}".format(r.idx, r.label, r.predict, r.radius, r.correct, r.time) for r in rows]
    return "\n".join(lines) + "\n"


def planted(rows) -> list:
    """The rows with PLANTED's defects, radii computed at k = n (all n votes): line 3 (row 1) with
    2 sigma (above the ceiling), line 5 (row 3) with sigma = 0.24 (below it, but between the radii of
    k = n - 1 and k = n at sigma = 0.25), line 7 (row 5, an abstention) with a radius, line 11
    (row 9) with 'correct' flipped."""
    rows = list(rows)
    z = stats.norm.ppf(ALPHA ** (1 / N))
    rows[1] = dataclasses.replace(rows[1], radius=2 * SIGMA * z)
    rows[3] = dataclasses.replace(rows[3], radius=0.24 * z)
    rows[5] = dataclasses.replace(rows[5], radius=0.1)
    rows[9] = dataclasses.replace(rows[9], correct=1 - rows[9].correct)
    return rows


def write_all(folder: Path) -> list[Path]:
    from unicr.logs import write_log

    gaussian = certify_rows("gaussian", SIGMA, 2)
    files = {"gaussian-l2-unicr.tsv": write_log(folder / "gaussian-l2-unicr.tsv", gaussian)}
    for name, text in (("gaussian-l2-cohen.tsv", cohen_text(gaussian)), ("planted-cohen.tsv", cohen_text(planted(gaussian)))):
        (folder / name).write_text(text, encoding="utf-8")
        files[name] = folder / name
    files["laplace-l1-unicr.tsv"] = write_log(folder / "laplace-l1-unicr.tsv", certify_rows("laplace", 0.5, 1))
    return list(files.values())


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
