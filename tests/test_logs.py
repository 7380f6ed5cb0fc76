"""unicr.logs: Cohen-format certification logs and what is read from them.

* Round trips: unicr's nine columns and Cohen's six write and read back to the same rows and bytes.
* A log as Cohen et al.'s ``code/certify.py`` writes it (radii with ``{:.3}``, -1 for an abstention,
  ``str(timedelta)`` times) parses; malformed lines raise ValueError naming file:line.
* Certified accuracy against a direct numpy count; the robustness score (Hong et al., ECCV 2022,
  Eq. 5) against the closed form mean(correct * radius) for one log and a fine-grid integration of the
  maximum over several logs; merge_logs orders shards and refuses overlapping ones.
"""
from __future__ import annotations

import numpy as np
import pytest

from unicr import logs
from unicr.logs import LogRow

#: as locuslab/smoothing code/certify.py prints it: "{}\t{}\t{}\t{:.3}\t{}\t{}"
COHEN_TEXT = (
    "idx\tlabel\tpredict\tradius\tcorrect\ttime\n"
    "0\t3\t3\t0.463\t1\t0:00:07.271953\n"
    "20\t8\t-1\t0.0\t0\t0:00:07.158123\n"
    "40\t1\t9\t1.03\t0\t0:00:07.193571\n"
    "60\t7\t7\t2.12\t1\t0:00:07.148870\n"
)


def random_rows(count: int, seed: int, *, cohen: bool = False) -> list[LogRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        label = int(rng.integers(0, 3))
        predict = int(rng.choice([-1, 0, 1, 2]))
        radius = 0.0 if predict == -1 else float(rng.exponential(0.5))
        rows.append(LogRow(idx=i, label=label, predict=predict, radius=radius, correct=int(predict == label),
                           time=f"0:00:0{i % 10}.{i:06d}",
                           p_a_lower=None if cohen else float(rng.uniform(0.3, 1.0)),
                           basis=None if cohen or predict == -1 else str(rng.choice(["tight", "sound", "approximate"])),
                           certificate=None if cohen or predict == -1 else "cohen"))
    return rows


@pytest.mark.parametrize("cohen", [False, True], ids=["unicr", "cohen"])
def test_round_trip(tmp_path, cohen):
    rows = random_rows(30, seed=1)
    path = logs.write_log(tmp_path / "log.tsv", rows, cohen=cohen)
    back = logs.read_log(path)
    if cohen:
        expected = [LogRow(r.idx, r.label, r.predict, r.radius, r.correct, r.time) for r in rows]
        assert path.read_text().splitlines()[0].split("\t") == list(logs.COHEN_COLUMNS)
    else:
        expected = rows
        assert path.read_text().splitlines()[0].split("\t") == list(logs.COLUMNS)
    assert back == expected
    assert all(len(line.split("\t")) == (6 if cohen else 9) for line in path.read_text().splitlines())
    again = logs.write_log(tmp_path / "again.tsv", back, cohen=cohen)
    assert again.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.tsv", "log.tsv"]   # no temporary left


def test_cohen_log_parses(tmp_path):
    path = tmp_path / "noise_0.25.tsv"
    path.write_text(COHEN_TEXT)
    rows = logs.read_log(path)
    assert [r.idx for r in rows] == [0, 20, 40, 60]
    assert [r.predict for r in rows] == [3, logs.ABSTAIN, 9, 7]
    assert [r.radius for r in rows] == [0.463, 0.0, 1.03, 2.12]
    assert [r.correct for r in rows] == [1, 0, 0, 1]
    assert rows[1].abstained and not rows[0].abstained
    assert rows[0].time == "0:00:07.271953" and rows[0].p_a_lower is None and rows[0].basis is None
    assert logs.certified_accuracy(rows, [0.0, 0.5, 2.0, 3.0]).tolist() == [0.5, 0.25, 0.25, 0.0]
    assert logs.robustness_score([rows]) == pytest.approx((0.463 + 2.12) / 4, rel=1e-15)


@pytest.mark.parametrize("text, line, words", [
    ("", None, "empty log"),
    ("index\tlabel\tpredict\tradius\tcorrect\ttime\n", 1, "header"),
    (COHEN_TEXT + "80\t1\t1\t0.5\t1\n", 6, "expected 6"),
    (COHEN_TEXT.replace("40\t1", "4x\t1"), 4, "'idx'"),
    (COHEN_TEXT.replace("2.12", "abc"), 5, "'radius'"),
    (COHEN_TEXT.replace("2.12", "nan"), 5, "'radius'"),
    (COHEN_TEXT.replace("1.03", "-1.03"), 4, ">= 0"),
    (COHEN_TEXT.replace("2.12\t1", "2.12\t2"), 5, "'correct'"),
    (COHEN_TEXT.replace("0\t3\t3", "0\t3.5\t3"), 2, "'label'"),
])
def test_malformed_logs_name_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        logs.read_log(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:" if line else f"{path}:"), message
    assert words in message and "\n" not in message


def test_missing_log_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read log"):
        logs.read_log(tmp_path / "nope.tsv")


def test_certified_accuracy_is_a_count():
    rows = random_rows(200, seed=2)
    radius = np.array([r.radius for r in rows])
    good = np.array([r.correct == 1 and r.predict != -1 for r in rows])
    radii = np.concatenate([[0.0], np.sort(radius)[::7], np.linspace(0, 3, 13)])
    expected = [np.count_nonzero(good & (radius >= r)) / len(rows) for r in radii]
    assert logs.certified_accuracy(rows, radii).tolist() == expected
    assert logs.certified_accuracy([], [0.0, 1.0]).tolist() == [0.0, 0.0]


def test_robustness_score_of_one_log_is_the_mean_certified_radius():
    rows = random_rows(200, seed=3)
    closed = np.mean([r.radius * r.correct for r in rows])
    assert logs.robustness_score([rows]) == pytest.approx(closed, rel=1e-12)
    assert logs.robustness_score([]) == 0.0 and logs.robustness_score([[]]) == 0.0


def test_robustness_score_takes_the_maximum_over_logs():
    """Eq. 5 over three logs against a midpoint sum of max_k Acc_k(R) on a grid of 200000 cells
    (each of the at most 600 jumps costs at most one cell width: error <= 600 / 200000 * top)."""
    rng = np.random.default_rng(5)
    sets = []
    for k in range(3):   # sigma grows with k: fewer correct predictions, larger radii (the curves cross)
        right = rng.uniform(size=200) < 1 - 0.25 * k
        sets.append([LogRow(i, 1, 1 if ok else 0, float(rng.uniform(0, k + 1)), int(ok))
                     for i, ok in enumerate(right)])
    top = max(r.radius for rows in sets for r in rows)
    cells = 200_000
    grid = (np.arange(cells) + 0.5) * (top / cells)
    curve = np.max([logs.certified_accuracy(rows, grid) for rows in sets], axis=0)
    integral = curve.sum() * (top / cells)
    score = logs.robustness_score(sets)
    assert score == pytest.approx(integral, abs=600 / cells * top)
    assert score > max(logs.robustness_score([rows]) for rows in sets) + 0.05   # no one curve dominates


def test_merge_orders_shards_and_refuses_overlaps():
    rows = random_rows(12, seed=4)
    shards = [rows[8:], rows[:4], rows[4:8]]
    assert logs.merge_logs(shards) == rows
    with pytest.raises(ValueError, match="input 5 appears in two shards"):
        logs.merge_logs([rows[:6], rows[5:]])


def test_accuracy_table():
    rows = logs.parse_log(COHEN_TEXT)
    table = logs.accuracy_table({"sigma 0.25": rows}, [0, 1, 2])
    assert table.splitlines()[0] == "| log | r = 0 | r = 1 | r = 2 | score |"
    assert table.splitlines()[2] == f"| sigma 0.25 | 50.0 | 25.0 | 25.0 | {(0.463 + 2.12) / 4:.4f} |"
