"""The digits example (unicr.examples.digits, docs/digits.md): split, deterministic training, certification
from one set of draws, logs, and the documented commands. Gaussian noise only (catalog radii: no engine
curve), tiny n, a few inputs: well under a minute on one CPU thread."""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from unicr import logs  # noqa: E402
from unicr.examples import digits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def split():
    return digits.load_split()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_split_is_fixed_and_as_documented(split):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    _, expected = train_test_split(np.arange(1797), test_size=0.25, stratify=data.target, random_state=0)
    assert (split.x_train.shape, split.x_test.shape) == ((1347, 64), (450, 64))
    assert np.array_equal(split.test_index, expected)
    assert torch.equal(split.x_test, torch.as_tensor(data.data[expected] / 16, dtype=torch.float32))
    assert float(split.x_train.min()) == 0.0 and float(split.x_train.max()) == 1.0
    counts = np.bincount(split.y_test.numpy(), minlength=10)
    assert np.all(np.abs(counts - np.bincount(data.target) / 4) <= 1)   # stratified: a quarter of each class
    assert np.array_equal(digits.load_split().test_index, split.test_index)


def test_training_is_deterministic_and_restores_torch_settings(split, tmp_path):
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    settings = digits.Settings(out=tmp_path, epochs=2, retrain=True)
    spec = settings.spec("general-normal")
    first, trained = digits.load_or_train(spec, settings, split)
    path = digits.model_path(spec, settings)
    assert trained and path.name == "general-normal-beta1.5-sigma0.5-e2-seed0.pt"
    data = path.read_bytes()
    digits.load_or_train(spec, settings, split)
    assert path.read_bytes() == data
    cached, trained = digits.load_or_train(spec, digits.Settings(out=tmp_path, epochs=2), split)
    assert not trained and all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                                 cached.state_dict().values()))
    assert all(t.dtype == torch.float32 for t in cached.state_dict().values())
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, strict)


def test_gaussian_model_is_accurate_on_clean_test_images(split, tmp_path):
    settings = digits.Settings(out=tmp_path)
    model = digits.train(settings.spec("gaussian"), settings, split)
    assert digits.clean_accuracy(model, split) > 0.9


def test_certify_writes_logs_that_round_trip(tmp_path):
    args = ["certify", "--noise", "gaussian", "--epochs", "2", "--subset", "12", "--n0", "50", "--n", "300",
            "--norms", "1,2,inf"]
    assert digits.main([*args, "--out", str(tmp_path / "a")]) == 0
    root = tmp_path / "a" / "digits"
    for norm in ("l1", "l2", "linf"):
        path = root / "logs" / f"gaussian-sigma0.5-{norm}.tsv"
        rows = logs.read_log(path)
        assert len(rows) == 12 and [r.idx for r in rows] == list(range(12))
        assert logs.write_log(tmp_path / "copy.tsv", rows).read_bytes() == path.read_bytes()
        good = sum(1 for r in rows if r.correct and not r.abstained)
        assert logs.certified_accuracy(rows, [0.0])[0] == good / len(rows)
        assert {r.basis for r in rows if not r.abstained} <= {"tight"}
        assert (root / f"curves-{norm}.png").exists() and (root / f"curves-{norm}.csv").exists()
    assert "robustness score" in (root / "README.md").read_text()
    # same seed, same bytes: a second run from scratch (model included) in another folder
    assert digits.main([*args, "--out", str(tmp_path / "b")]) == 0
    assert _files(root) == _files(tmp_path / "b" / "digits")


def test_all_runs_end_to_end_in_a_temporary_folder(tmp_path):
    # l1 only: general-normal beta >= 1 then has a tight catalog radius, so no engine curve is needed
    assert digits.main(["all", "--out", str(tmp_path), "--noise", "gaussian", "--betas", "1,2", "--norms", "l1",
                        "--epochs", "1", "--subset", "4", "--n", "200", "--copt-subset", "4", "--copt-n", "200"]) == 0
    root = tmp_path / "digits"
    for name in ("README.md", "curves-l1.png", "curves-l1.csv", "copt-quick.md", "copt-quick.csv", "copt-quick.png",
                 "copt-quick/general-normal-beta2-sigma0.5-l1.tsv", "models/gaussian-sigma0.5-e1-seed0.pt"):
        assert (root / name).is_file(), name
    table = (root / "copt-quick.csv").read_text().splitlines()
    assert table[0] == "beta,l1" and [line.split(",")[0] for line in table[1:]] == ["1", "2"]
    assert all(math.isfinite(float(line.split(",")[1])) for line in table[1:])


def test_iopt_is_labelled_and_never_loses_radius_in_the_papers_mode(tmp_path):
    assert digits.main(["iopt", "--out", str(tmp_path), "--epochs", "1", "--subset", "4", "--n", "300"]) == 0
    root = tmp_path / "digits"
    text = (root / "iopt.md").read_text()
    assert text.startswith("# I-OPT on scikit-learn's digits: NOT A CERTIFICATE")
    assert "not a certificate for the neighbourhood of x" in text
    rows = list(csv.DictReader((root / "iopt.csv").read_text().splitlines()))
    assert len(rows) == 8 and {r["selection"] for r in rows} == {"same", "separate"}
    assert all(r["is_certificate"] == "False" and r["norm"] == "l1" for r in rows)
    for r in rows:
        if r["start_prediction"]:
            assert r["prediction"] in (r["start_prediction"], "")   # the class is kept (or "separate" abstains)
        if r["selection"] == "same":
            assert float(r["gain"]) >= 0 and float(r["radius"]) >= float(r["start_radius"])


def test_documented_commands_parse():
    text = (ROOT / "docs" / "digits.md").read_text()
    commands = re.findall(r"^python -m unicr\.examples\.digits (.+)$", text, re.MULTILINE)
    assert {line.split()[0] for line in commands} >= {"train", "certify", "copt", "all", "iopt"}
    for line in commands:
        digits._parser().parse_args(line.split("#")[0].split())
