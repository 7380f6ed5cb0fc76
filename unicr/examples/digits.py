"""Randomized smoothing end to end on a real data set: scikit-learn's bundled digits.

Data: ``sklearn.datasets.load_digits`` (1,797 grey 8x8 images, pixel values 0..16), scaled to [0, 1]
(x / 16) and flattened to d = 64; split once by ``train_test_split(test_size=0.25,
stratify=labels, random_state=0)`` into 1,347 training and 450 test images (test position i is
input i of every log).

Models: an MLP 64 -> 256 -> 256 -> 10 (ReLU), one per noise, trained with noise augmentation
(Cohen et al., ICML 2019, Section 4: fresh draws of the smoothing noise on every step, from a
``torch.Generator`` seeded with ``seed``), Adam, cross entropy; deterministic algorithms on one
thread, so the same seed writes the same bytes.

Certification: Cohen's CERTIFY (:func:`unicr.certify`, binary p_B = 1 - p_A_lower) of each test input
under the noise its model was trained with, in l1, l2 and linf from one set of draws
(:func:`unicr.certify_norms`), seed :func:`unicr.streams.input_seed` (seed, i). A radius has the basis
that :func:`unicr.certify` gives it: "tight"/"sound" (a catalog certificate: a proof at confidence
1 - alpha) or "approximate" (the UniCR engine's R_U, an upper bound on the tight radius up to
estimation: **not a certificate**).

C-OPT (Hong, Wang, Hong, ECCV 2022, Sections 4.2 and 5.3): a grid over the shape beta of the
general-normal noise at equal sigma; one model per (beta, sigma), and per norm the robustness score
(their Eq. 5) R_score = int_0^inf max_sigma Acc_sigma(R) dR (:func:`unicr.logs.robustness_score`).

Commands (``--out DIR``, default ``results``; everything goes under DIR/digits, C-OPT's table and
figure to DIR/copt.*): ``train``, ``certify``, ``copt``, ``all``; see ``docs/digits.md``.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .. import logs
from ..certification import certify_norms
from ..directions import norm_label
from ..errors import check_norm
from ..noises import noise as make_noise
from ..streams import input_seed

__all__ = ["NOISES", "COPT_BETAS", "QUICK_BETAS", "Settings", "NoiseSpec", "Split", "load_split", "make_model",
           "train", "load_or_train", "certify_split", "run_certify", "run_copt", "main"]

#: the noises of ``train`` and ``certify``
NOISES = ("gaussian", "laplace", "uniform", "general-normal")
#: C-OPT's grid over beta (the part of the paper's Table 2 grid from 0.5 to 3)
COPT_BETAS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.25, 2.5, 3.0)
#: the reduced C-OPT grid that ``all`` runs
QUICK_BETAS = (1.5, 2.0, 2.5)
#: C-OPT's default n: every test image, n = 2000 (the paper: 1,000 MNIST images, 1,000 samples)
COPT_N = 2000
NORMS = (1.0, 2.0, math.inf)
DIM, CLASSES, HIDDEN = 64, 10, 256
#: Adam's learning rate and the training batch size
LR, BATCH = 1e-3, 64
#: radii at which README.md reports the certified accuracy, per norm (input units, pixels in [0, 1])
RADII = {1.0: (0.25, 0.5, 0.75, 1.0), 2.0: (0.25, 0.5, 0.75, 1.0), math.inf: (0.025, 0.05, 0.1, 0.15)}
COMMAND = "python -m unicr.examples.digits"


@dataclass(frozen=True)
class Settings:
    """Everything a command depends on. ``sigma``: the per-coordinate standard deviation of every
    noise (pixel units; 0.5 is half the pixel range, the middle of the paper's MNIST set {0.12, 0.25,
    0.5, 1}); ``beta``: the general-normal shape of ``train``/``certify``; ``subset``: the first
    test inputs certified (None: all 450); ``betas``/``sigmas``: C-OPT's grid."""

    out: Path = Path("results")
    noises: tuple[str, ...] = NOISES
    sigma: float = 0.5
    beta: float = 1.5
    epochs: int = 40
    seed: int = 0
    retrain: bool = False
    subset: int | None = 100
    n0: int = 100
    n: int = 10_000
    alpha: float = 0.001
    batch_size: int = 10_000
    norms: tuple[float, ...] = NORMS
    betas: tuple[float, ...] = COPT_BETAS
    sigmas: tuple[float, ...] = (0.5,)

    @property
    def root(self) -> Path:
        return Path(self.out) / "digits"

    def spec(self, name: str) -> "NoiseSpec":
        return NoiseSpec(name, self.sigma, self.beta if name == "general-normal" else None)


@dataclass(frozen=True)
class NoiseSpec:
    """A unicr noise on R^64: family ``name``, ``sigma``, and ``beta`` for the general normal."""

    name: str
    sigma: float
    beta: float | None = None

    @property
    def tag(self) -> str:
        shape = "" if self.beta is None else f"-beta{self.beta:g}"
        return f"{self.name}{shape}-sigma{self.sigma:g}"

    def build(self):
        shape = {} if self.beta is None else {"beta": self.beta}
        return make_noise(self.name, sigma=self.sigma, dim=DIM, **shape)


@dataclass(frozen=True)
class Split:
    """The fixed split: float32 images (N, 64) in [0, 1], int64 labels, and the test images'
    indices in load_digits."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    test_index: np.ndarray


def load_split() -> Split:
    """load_digits scaled by 1/16; train_test_split(test_size=0.25, stratify=y, random_state=0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.as_tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.as_tensor(data.target, dtype=torch.int64)
    train_index, test_index = train_test_split(np.arange(len(y)), test_size=0.25, stratify=data.target,
                                               random_state=0)
    return Split(x[train_index], y[train_index], x[test_index], y[test_index], test_index)


def make_model() -> torch.nn.Sequential:
    """The MLP 64 -> 256 -> 256 -> 10 with ReLU (torch's default initialisation)."""
    return torch.nn.Sequential(torch.nn.Linear(DIM, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                               torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES))


@contextlib.contextmanager
def _deterministic():
    """One thread and deterministic algorithms inside, the caller's settings restored after."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(strict)
        torch.set_num_threads(threads)


def train(spec: NoiseSpec, settings: Settings, split: Split) -> torch.nn.Sequential:
    """A model trained on x + eps, eps drawn fresh from ``spec``'s noise for every batch
    (``settings.epochs`` epochs of shuffled batches of BATCH; initialisation from
    torch.manual_seed(seed), shuffling and noise from a generator seeded with seed)."""
    noise = spec.build()
    with _deterministic():
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            model = make_model()
        generator = torch.Generator().manual_seed(settings.seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        x, y = split.x_train, split.y_train
        for _ in range(settings.epochs):
            order = torch.randperm(len(y), generator=generator)
            for start in range(0, len(y), BATCH):
                batch = order[start:start + BATCH]
                eps = noise.sample(len(batch), generator=generator, dtype=torch.float64).to(torch.float32)
                loss = torch.nn.functional.cross_entropy(model(x[batch] + eps), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return model.eval()


def model_path(spec: NoiseSpec, settings: Settings) -> Path:
    return settings.root / "models" / f"{spec.tag}-e{settings.epochs}-seed{settings.seed}.pt"


def load_or_train(spec: NoiseSpec, settings: Settings, split: Split) -> tuple[torch.nn.Sequential, bool]:
    """(model in eval mode, whether it was trained now): the cached float32 state_dict at
    :func:`model_path` unless it is missing or ``settings.retrain``."""
    path = model_path(spec, settings)
    if path.exists() and not settings.retrain:
        model = make_model()
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval(), False
    model = train(spec, settings, split)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return model, True


def clean_accuracy(model, split: Split) -> float:
    """The base classifier's accuracy on the 450 clean test images."""
    with torch.no_grad():
        return float((model(split.x_test).argmax(1) == split.y_test).double().mean())


def _inputs(settings: Settings, split: Split) -> int:
    return len(split.y_test) if settings.subset is None else min(settings.subset, len(split.y_test))


def certify_split(model, spec: NoiseSpec, settings: Settings, split: Split) -> dict[float, list[logs.LogRow]]:
    """Per norm, the log rows of the first ``settings.subset`` test inputs (idx = test position i,
    certification seed input_seed(seed, i), time 0:00:00)."""
    noise = spec.build()
    rows = {p: [] for p in settings.norms}
    for i in range(_inputs(settings, split)):
        found = certify_norms(model, split.x_test[i], noise, settings.norms, n0=settings.n0, n=settings.n,
                              alpha=settings.alpha, batch_size=settings.batch_size, seed=input_seed(settings.seed, i))
        for p, result in zip(settings.norms, found):
            rows[p].append(logs.LogRow.from_certification(i, int(split.y_test[i]), result))
    return rows


def _write_logs(folder: Path, spec: NoiseSpec, rows: dict[float, list[logs.LogRow]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for p, log in rows.items():
        logs.write_log(folder / f"{spec.tag}-{norm_label(p)}.tsv", log)


def _basis(rows) -> str:
    """What the radii of a log rest on, e.g. 'tight: cohen (97)', with approximate radii in capitals."""
    counts: dict[str, int] = {}
    for row in rows:
        if row.basis is not None:
            key = f"{row.basis}: {row.certificate}" if row.certificate else "APPROXIMATE: engine R_U, not a certificate"
            counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{key} ({count})" for key, count in sorted(counts.items())) or "-"


def _command(sub: str, settings: Settings) -> str:
    """The command line that reproduces ``settings`` for ``sub`` (every option spelled out, ``--out``
    left out)."""
    words = [COMMAND, sub]
    if sub == "certify":
        words += ["--noise", *settings.noises, "--beta", f"{settings.beta:g}", "--sigma", f"{settings.sigma:g}"]
    elif sub == "copt":
        words += ["--betas", ",".join(f"{b:g}" for b in settings.betas),
                  "--sigmas", ",".join(f"{s:g}" for s in settings.sigmas)]
    else:
        words += ["--sigma", f"{settings.sigma:g}"]
    words += ["--epochs", str(settings.epochs), "--seed", str(settings.seed),
              "--subset", "all" if settings.subset is None else str(settings.subset), "--n0", str(settings.n0),
              "--n", str(settings.n), "--alpha", f"{settings.alpha:g}",
              "--norms", ",".join(norm_label(p) for p in settings.norms)]
    return " ".join(words)


def _docs_link(settings: Settings, folder: Path) -> str:
    """The relative link from ``folder`` to docs/digits.md, for ``--out`` inside a checkout."""
    return Path(os.path.relpath(Path(settings.out).parent / "docs" / "digits.md", folder)).as_posix()


def _settings_line(settings: Settings, split: Split) -> str:
    return (f"{_inputs(settings, split)} test inputs, n0 = {settings.n0}, n = {settings.n}, alpha = {settings.alpha:g} "
            f"(largest possible p_A_lower {settings.alpha ** (1 / settings.n):.5f}), binary p_B = 1 - p_A_lower, "
            f"MLP trained {settings.epochs} epochs with noise augmentation, seed {settings.seed}")


def run_train(settings: Settings, split: Split) -> dict[str, torch.nn.Sequential]:
    """Train (or load) one model per noise of ``settings.noises``; prints each wall time."""
    models = {}
    for name in settings.noises:
        spec = settings.spec(name)
        start = time.perf_counter()
        models[name], trained = load_or_train(spec, settings, split)
        print(f"{spec.tag}: {'trained' if trained else 'cached'} ({time.perf_counter() - start:.1f} s), "
              f"clean test accuracy {100 * clean_accuracy(models[name], split):.1f}%  "
              f"{model_path(spec, settings)}", flush=True)
    return models


def run_certify(settings: Settings, split: Split) -> dict[str, dict[float, list[logs.LogRow]]]:
    """Certify each noise's model: logs in DIR/digits/logs, curves DIR/digits/curves-<norm>.png/.csv,
    and DIR/digits/README.md."""
    models = run_train(settings, split)
    found = {}
    for name, model in models.items():
        spec = settings.spec(name)
        start = time.perf_counter()
        found[name] = certify_split(model, spec, settings, split)
        _write_logs(settings.root / "logs", spec, found[name])
        print(f"{spec.tag}: certified {_inputs(settings, split)} inputs in {time.perf_counter() - start:.1f} s",
              flush=True)
    _write_readme(settings, split, models, found)
    return found


def _write_readme(settings: Settings, split: Split, models, found) -> None:
    """Curves per norm (one per noise) and the table of README.md."""
    tags = {name: settings.spec(name).tag for name in models}
    for p in settings.norms:
        logs.write_accuracy_curves({tags[name]: found[name][p] for name in models},
                                   settings.root / f"curves-{norm_label(p)}", xlabel=f"{norm_label(p)} radius",
                                   title=f"digits, certified accuracy ({norm_label(p)})")
    lines = ["# Certified accuracy on scikit-learn's digits", "",
             "Generated by `" + _command("certify", settings) + "` "
             f"(see [docs/digits.md]({_docs_link(settings, settings.root)})).", "",
             _settings_line(settings, split) + ".", "",
             "Radius basis: **tight**/**sound** = a catalog certificate (a proof, at confidence 1 - alpha); "
             "**APPROXIMATE** = the UniCR engine's numerical worst case R_U, an upper bound on the tight radius "
             "up to estimation and the direction search: **not a certificate**. The counts are the "
             "non-abstaining inputs.", ""]
    for p in settings.norms:
        radii = RADII.get(p, RADII[2.0])
        lines += [f"## {norm_label(p)}", "",
                  "| noise | clean acc. (base, 450) | " + " | ".join(f"r = {r:g}" for r in radii)
                  + " | robustness score | radius basis |",
                  "|---|---:|" + "---:|" * (len(radii) + 1) + "---|"]
        for name, model in models.items():
            rows = found[name][p]
            acc = logs.certified_accuracy(rows, (0.0, *radii))
            lines.append(f"| {tags[name]} | {100 * clean_accuracy(model, split):.1f} | "
                         + " | ".join(f"{100 * a:.1f}" for a in acc[1:])
                         + f" | {logs.robustness_score([rows]):.4f} | {_basis(rows)} |")
        lines += ["", "Certified accuracy (%) at r = 0 (smoothed accuracy): "
                  + ", ".join(f"{tags[name]} {100 * logs.certified_accuracy(found[name][p], [0.0])[0]:.1f}"
                              for name in models) + ".", "",
                  f"![certified accuracy, {norm_label(p)}](curves-{norm_label(p)}.png)", ""]
    (settings.root / "README.md").write_text("\n".join(lines), encoding="utf-8")


#: Table 2 of Hong et al. (ECCV 2022): best beta per norm (MNIST, MLP, sigma set {0.12, 0.25, 0.5, 1})
PAPER_BEST = {1.0: 0.75, 2.0: 2.25, math.inf: 2.25}


def run_copt(settings: Settings, split: Split, stem: Path, logs_dir: Path,
             origin: str | None = None) -> dict[float, dict[float, float]]:
    """C-OPT: for each beta of ``settings.betas`` and sigma of ``settings.sigmas``, a general-normal
    model trained and certified; per norm the robustness score max over sigma (Eq. 5). Writes the
    logs to ``logs_dir`` (under ``settings.out``) and ``stem``.md/.csv/.png, whose first line says
    where they come from (``origin``, default: the copt command); returns {beta: {norm: score}}."""
    origin = origin or "Generated by `" + _command("copt", settings) + "`"
    scores: dict[float, dict[float, float]] = {}
    approximate: dict[float, set] = {p: set() for p in settings.norms}
    for beta in settings.betas:
        per_sigma = []
        for sigma in settings.sigmas:
            spec = NoiseSpec("general-normal", sigma, beta)
            start = time.perf_counter()
            model, _ = load_or_train(spec, settings, split)
            rows = certify_split(model, spec, settings, split)
            _write_logs(logs_dir, spec, rows)
            per_sigma.append(rows)
            for p, log in rows.items():
                if any(row.basis == "approximate" for row in log):
                    approximate[p].add(beta)
            print(f"{spec.tag}: clean accuracy {100 * clean_accuracy(model, split):.1f}%, trained/loaded and "
                  f"certified in {time.perf_counter() - start:.1f} s", flush=True)
        scores[beta] = {p: logs.robustness_score([rows[p] for rows in per_sigma]) for p in settings.norms}
    _copt_outputs(settings, split, stem, logs_dir, scores, approximate, origin)
    return scores


def _copt_outputs(settings: Settings, split: Split, stem: Path, logs_dir: Path, scores, approximate,
                  origin: str) -> None:
    from ..audit import style

    betas, norms = list(scores), list(settings.norms)
    best = {p: max(betas, key=lambda b: scores[b][p]) for p in norms}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["beta", *(norm_label(p) for p in norms)])
    for beta in betas:
        writer.writerow([f"{beta:g}", *(repr(scores[beta][p]) for p in norms)])
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_name(stem.name + ".csv").write_text(buf.getvalue(), encoding="utf-8")

    with style.context():
        fig = style.figure(style.WIDE, 2.2)
        axes = fig.subplots(1, len(norms), squeeze=False)[0]
        for ax, p in zip(axes, norms):
            ax.plot(betas, [scores[b][p] for b in betas], marker="o")
            ax.axvline(best[p], color=style.COLORS["red"], linewidth=0.8, linestyle="--",
                       label=f"best beta = {best[p]:g}")
            if p in PAPER_BEST:
                ax.axvline(PAPER_BEST[p], color=style.COLORS["grey"], linewidth=0.8, linestyle=":",
                           label=f"paper: {PAPER_BEST[p]:g}")
            ax.set_xlabel("beta (general normal)")
            ax.set_ylabel("robustness score")
            ax.set_title(f"C-OPT, {norm_label(p)}")
            ax.legend(loc="lower right")
        stem.with_name(stem.name + ".png").write_bytes(style.render(fig)[".png"])

    cell = lambda b, p: f"{scores[b][p]:.4f}{' *' if b in approximate[p] else ''}" \
        + (" **(best)**" if b == best[p] else "")
    lines = ["# C-OPT on scikit-learn's digits", "",
             origin + f" (see [docs/digits.md]({_docs_link(settings, stem.parent)}); logs in `"
             + logs_dir.relative_to(settings.out).as_posix() + "`).",
             "", f"General-normal noise exp(-|x/alpha|^beta) at sigma in {{{', '.join(f'{s:g}' for s in settings.sigmas)}}} "
             f"(per-coordinate standard deviation, pixels in [0, 1], d = 64); one model per (beta, sigma); "
             + _settings_line(settings, split) + ".", "",
             "Robustness score (Hong et al., ECCV 2022, Eq. 5): int_0^inf max_sigma Acc_sigma(R) dR. "
             "`*`: the radii behind the score are **approximate** (the UniCR engine's R_U, an upper bound on the "
             "tight radius, not a certificate); unmarked scores rest on a tight catalog certificate "
             "(yang-general-normal-l1, beta >= 1).", "",
             "| beta | " + " | ".join(norm_label(p) for p in norms) + " |",
             "|---:|" + "---:|" * len(norms)]
    lines += [f"| {b:g} | " + " | ".join(cell(b, p) for p in norms) + " |" for b in betas]
    lines += ["", "Best beta per norm: " + ", ".join(f"{norm_label(p)} {best[p]:g}" for p in norms)
              + " (paper, Table 2: " + ", ".join(f"{norm_label(p)} {PAPER_BEST[p]:g}" for p in norms if p in PAPER_BEST)
              + ").", "",
              "Against the paper: " + ", ".join(
                  f"{norm_label(p)} {'agrees' if best[p] == PAPER_BEST[p] else 'differs'}" for p in norms
                  if p in PAPER_BEST) + ". The paper's Table 2 is on MNIST with an MLP (its Section 5.3; d = 784), "
              "sigma = 1 by its caption and a max over sigma in {0.12, 0.25, 0.5, 1} by its text, 1,000 images and 1,000 Monte Carlo "
              "samples, all radii from the reference UniCR implementation; here d = 64, the sigma set above, "
              "catalog radii where a certificate applies, and n caps p_A_lower (above), which decides how much "
              "the heavy tails of a small beta can gain at p_A near 1 (the paper's explanation of its l1 optimum "
              "0.75). The spread over splits and seeds was not measured: scores within a few percent of each "
              "other may change order under another seed.", "", f"![C-OPT]({stem.name}.png)", ""]
    stem.with_name(stem.name + ".md").write_text("\n".join(lines), encoding="utf-8")


#: I-OPT's two ways of drawing (unicr.iopt): the paper's, and choice on separate draws
IOPT_SELECTIONS = ("same", "separate")


def run_iopt(settings: Settings, split: Split) -> list[dict]:
    """I-OPT (Hong et al., Sections 4.2 and 5.4) on the Gaussian-trained model: per test input and
    norm, :func:`unicr.optimize_noise` hill-climbs general-normal (beta, sigma) from the training
    noise (beta = 2, sigma = ``settings.sigma``; defaults of :class:`unicr.IOptSettings` for the
    moves and ranges, ``settings``' n0, n = n_tune, alpha, seed input_seed(seed, i)), in both
    selection modes. Writes DIR/digits/iopt.md and iopt.csv, labelled **not a certificate**."""
    from ..iopt import NOT_A_CERTIFICATE, IOptSettings, optimize_noise

    spec = settings.spec("gaussian")
    model, _ = load_or_train(spec, settings, split)
    start = ("general-normal", settings.sigma, 2.0)
    found = []
    for p in settings.norms:
        for selection in IOPT_SELECTIONS:
            began = time.perf_counter()
            for i in range(_inputs(settings, split)):
                tune = IOptSettings(n0=settings.n0, n=settings.n, n_tune=settings.n, alpha=settings.alpha,
                                    batch_size=settings.batch_size, seed=input_seed(settings.seed, i),
                                    selection=selection)
                result = optimize_noise(model, split.x_test[i], p, start=start, settings=tune)
                found.append({"norm": p, "selection": selection, "idx": i, "label": int(split.y_test[i]),
                              "result": result})
            print(f"I-OPT {norm_label(p)} {selection}: {_inputs(settings, split)} inputs in "
                  f"{time.perf_counter() - began:.1f} s", flush=True)
    _write_iopt(settings, split, found, NOT_A_CERTIFICATE)
    return found


def _write_iopt(settings: Settings, split: Split, found: list[dict], warning: str) -> None:
    """iopt.csv (one row per input, norm and mode) and iopt.md (the means per norm and mode)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["norm", "selection", "idx", "label", "start_prediction", "start_radius", "beta", "sigma",
                     "prediction", "radius", "gain", "is_certificate"])
    for f in found:
        r = f["result"]
        writer.writerow([norm_label(f["norm"]), f["selection"], f["idx"], f["label"], r.start.prediction,
                         repr(r.start.radius), repr(r.beta), repr(r.sigma), r.prediction, repr(r.radius),
                         repr(r.gain), r.is_certificate])
    settings.root.mkdir(parents=True, exist_ok=True)
    (settings.root / "iopt.csv").write_text(buf.getvalue(), encoding="utf-8")
    command = _command("iopt", settings)
    lines = ["# I-OPT on scikit-learn's digits: NOT A CERTIFICATE", "",
             f"Generated by `{command}` (see [docs/iopt.md]({_docs_link(settings, settings.root).replace('digits.md', 'iopt.md')})).",
             "", f"**{warning}.**", "",
             f"The Gaussian-trained MLP (sigma = {settings.sigma:g}); per test input, unicr.optimize_noise hill-climbs "
             "the general-normal (beta, sigma) from the training noise (beta = 2) with the class kept "
             "(IOptSettings defaults: beta in [1, 4] by 0.25, sigma / sigma0 in [0.5, 2] by factors 1 +- 0.1, "
             f"at most 10 moves). {_settings_line(settings, split)}; 'separate' chooses on n = {settings.n} "
             "draws of the `tune` stream, then certifies once on fresh draws.", "",
             "Start: the radius of the training noise, a certificate where its basis is tight or sound. I-OPT: "
             "the radius at x of the noise chosen for x, which does not bound the smoothed classifier on the "
             "ball (the noise would change with x). Means over the inputs the start certifies.", "",
             "| norm | selection | inputs | start certified | start radius | I-OPT radius | gain | improved | "
             "mean beta | mean sigma / sigma0 |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in settings.norms:
        for selection in IOPT_SELECTIONS:
            group = [f["result"] for f in found if f["norm"] == p and f["selection"] == selection]
            kept = [r for r in group if r.start.prediction is not None]
            if not kept:
                continue
            mean = lambda values: sum(values) / len(values)
            start_mean, chosen_mean = mean([r.start.radius for r in kept]), mean([r.radius for r in kept])
            lines.append(f"| {norm_label(p)} | {selection} | {len(group)} | {len(kept)} | {start_mean:.4f} | "
                         f"{chosen_mean:.4f} | {chosen_mean - start_mean:+.4f} "
                         f"({100 * (chosen_mean / start_mean - 1) if start_mean else 0:+.1f}%) | "
                         f"{sum(r.gain > 0 for r in kept)} | {mean([r.beta for r in kept]):.3f} | "
                         f"{mean([r.sigma for r in kept]) / settings.sigma:.3f} |")
    (settings.root / "iopt.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_all(settings: Settings, split: Split, quick: Settings) -> None:
    """``train`` + ``certify`` with ``settings``, then C-OPT with ``quick`` to DIR/digits/copt-quick.*"""
    run_certify(settings, split)
    run_copt(quick, split, quick.root / "copt-quick", quick.root / "copt-quick",
             "Reduced C-OPT written by `" + COMMAND + " all`, equivalent to `" + _command("copt", quick) + "`")


# -- command line --------------------------------------------------------------------------------

def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(t) for t in text.split(",") if t.strip())


def _norms(text: str) -> tuple[float, ...]:
    return tuple(check_norm(t.strip()) for t in text.split(",") if t.strip())


def _subset(text: str) -> int | None:
    return None if text == "all" else int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    d = Settings()
    for name, help_text in (("train", "train (or reuse) one model per noise"),
                            ("certify", "certify the test inputs in l1, l2, linf; logs, curves, README"),
                            ("copt", "C-OPT over the general-normal beta: DIR/copt.md/.csv/.png"),
                            ("all", "train + certify + a reduced C-OPT"),
                            ("iopt", "I-OPT on the Gaussian model: DIR/digits/iopt.md/.csv (NOT a certificate)")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--out", type=Path, default=d.out, help="output folder (default: results)")
        if name != "copt":
            sub.add_argument("--sigma", type=float, default=d.sigma)
        sub.add_argument("--epochs", type=int, default=d.epochs)
        sub.add_argument("--seed", type=int, default=d.seed)
        sub.add_argument("--retrain", action="store_true", help="train even where cached weights exist")
        sub.add_argument("--threads", type=int, default=1, help="torch threads (default 1; training always uses 1)")
        if name not in ("copt", "iopt"):
            sub.add_argument("--noise", nargs="+", choices=NOISES, default=list(NOISES))
            sub.add_argument("--beta", type=float, default=d.beta, help="the general-normal shape")
        if name != "train":
            sub.add_argument("--subset", type=_subset, default=None if name == "copt" else d.subset,
                             help="the first N test inputs, or 'all'")
            sub.add_argument("--n0", type=int, default=d.n0)
            sub.add_argument("--n", type=int, default=COPT_N if name == "copt" else d.n)
            sub.add_argument("--alpha", type=float, default=d.alpha)
            sub.add_argument("--norms", type=_norms, default=(1.0,) if name == "iopt" else d.norms,
                             help="e.g. 1,2,inf (iopt: default l1, where every beta >= 1 has a catalog radius)")
        if name in ("copt", "all"):
            sub.add_argument("--betas", type=_floats, default=d.betas if name == "copt" else QUICK_BETAS)
        if name == "copt":
            sub.add_argument("--sigmas", type=_floats, default=d.sigmas)
        if name == "all":
            sub.add_argument("--copt-subset", type=_subset, default=30)
            sub.add_argument("--copt-n", type=int, default=2000)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    fields = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__}
    if "noise" in vars(args):
        fields["noises"] = tuple(args.noise)
    settings = Settings(**fields)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    split = load_split()
    if args.command == "train":
        run_train(settings, split)
    elif args.command == "certify":
        run_certify(settings, split)
    elif args.command == "copt":
        run_copt(settings, split, Path(settings.out) / "copt", settings.root / "copt")
    elif args.command == "iopt":
        run_iopt(settings, split)
    else:
        quick = replace(settings, subset=args.copt_subset, n=args.copt_n, sigmas=(settings.sigma,))
        run_all(settings, split, quick)
    print(f"{args.command}: wall time {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
