"""``python -m unicr.certify``: certify a data set into Cohen-format logs, merge shards, draw curves.

The model is the half-space f(z) = 1[z_1 > 0] (examples/halfspace_model.py) on 21 inputs with
first pixels -1, -0.9, ..., 1: for noise symmetric about 0 the tight radius of input i is |x_1| in
every l_p, so a tight or sound certificate's radius is at most |x_1| unless its Clopper-Pearson
bound fails (probability <= alpha per input). Tests that assert it take alpha = share(inputs)
(tests/budget.py: a false failure at most 1e-4 per test, union bound over the inputs), although
every draw here is seeded and each test deterministic; the Gaussian l2 radius is sigma * Phi^-1(p_A_lower) exactly (Cohen et al.).

Most runs call :func:`unicr.certify_cli.main` in this process; the documented example
(docs/certify.md) and ``--help`` run as real ``python -m unicr.certify`` processes.
"""
from __future__ import annotations

import importlib.util
import math
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from tests.budget import share
from unicr import logs
from unicr.certify_cli import main, select

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "halfspace_model.py"
FAST = ["--n", "1000", "--n0", "100", "--no-time"]

#: models, noises and a data set of one's own, loaded by spec
PLUGIN = '''
import numpy as np
import torch

import unicr
from unicr import noises


def first(z):
    return z.reshape(z.shape[0], -1)[:, 0]


def logits(z):
    return torch.stack([-first(z), first(z)], dim=1)


def labels(z):
    return (first(z) > 0).long()


def wrong_shape(z):
    return torch.zeros(z.shape[0], 2, 3)


def broken(z):
    raise RuntimeError("boom")


def negative(z):
    return torch.full((z.shape[0],), -2)


CALLS = [0]


def interrupted(z):
    """Ctrl-C on the fourth call: the probe, input 0's two batches, then input 1."""
    CALLS[0] += 1
    if CALLS[0] == 4:
        raise KeyboardInterrupt
    return logits(z)


NOT_CALLABLE = 3


class MyGauss(noises.Gaussian):
    """A noise of one's own (a subclass: no catalog certificate, the engine's radius)."""
    name = "my-gauss"


def gaussian(dim, sigma):
    return unicr.noise("gaussian", sigma=sigma, dim=dim)


LAPLACE = unicr.noise("laplace", sigma=0.5, dim=4)
LAPLACE_5 = unicr.noise("laplace", sigma=0.5, dim=5)


class Pairs:
    """A sequence of (x, label) pairs, as a torch Dataset is."""

    def __init__(self, path):
        data = np.load(path)
        self.x, self.y = data["x"], data["y"]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), int(self.y[i])


DATA = Pairs(__file__.replace("plugin.py", "data.npz"))
'''


def load_example():
    spec = importlib.util.spec_from_file_location("halfspace_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with data.npz (the example's data), data.pt, pairs.pt, plugin.py and the example model."""
    folder = tmp_path_factory.mktemp("certify")
    x, y = load_example().make_data()
    np.savez(folder / "data.npz", x=x, y=y)
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, folder / "data.pt")
    torch.save((torch.from_numpy(x), torch.from_numpy(y)), folder / "pairs.pth")
    (folder / "plugin.py").write_text(PLUGIN)
    shutil.copy(EXAMPLE, folder / "model.py")
    return folder


def base(work, out, *, noise=("--noise", "gaussian", "--sigma", "0.5"), norm="2", model="model.py:MODEL",
         data="data.npz", extra=()) -> list[str]:
    return ["--model", f"{work}/{model}", "--data", f"{work}/{data}", *noise, "--norm", norm,
            "--out", str(out), *FAST, *extra]


def certify(capsys, argv) -> str:
    """Runs main(argv), expects exit 0 and returns stdout."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def first_pixels(work) -> np.ndarray:
    return np.load(work / "data.npz")["x"][:, 0, 0, 0].astype(np.float64)


# -- the module and its names -----------------------------------------------------------------------

def test_module_keeps_the_function_and_runs_as_a_command():
    script = ("import unicr.certify, unicr, inspect; from unicr.certification import certify; "
              "print(unicr.certify is certify, inspect.isfunction(unicr.certify))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["True", "True"], done.stderr
    done = subprocess.run([sys.executable, "-m", "unicr.certify", "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m unicr.certify")
    assert "i % skip != 0: continue; if i == max: break" in done.stdout and done.stderr == ""


def test_help_and_argument_errors_do_not_import_torch():
    script = ("import sys\nfrom unicr.certify_cli import main\n"
              "code = main(['--model', 'm.py:M', '--data', 'd.npz', '--noise', 'gaussian', '--sigma', '0.5', "
              "'--norm', '2', '--out', 'x.tsv', '--n0', '0'])\n"
              "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print(code, [m for m in ('torch', 'matplotlib', 'pandas') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.stdout.splitlines()[-1] == "2 []", done.stderr


def test_example_data_is_what_the_generator_writes():
    x, y = load_example().make_data()
    stored = np.load(ROOT / "examples" / "halfspace_data.npz")
    assert np.array_equal(stored["x"], x) and np.array_equal(stored["y"], y) and stored["x"].dtype == np.float32


def test_selection_follows_cohens_loop():
    assert select(21, 1, -1, 0, None) == tuple(range(21))
    assert select(21, 2, 14, 0, None) == (0, 2, 4, 6, 8, 10, 12)
    assert select(21, 3, 10, 0, None) == (0, 3, 6, 9, 12, 15, 18)   # 10 % 3 != 0: never breaks
    assert select(21, 2, 14, 5, 11) == (6, 8, 10)
    assert select(21, 1, 3, 5, 30) == ()
    assert select(10000, 20, 10000, 0, None) == tuple(range(0, 10000, 20))


# -- radii with known answers -----------------------------------------------------------------------

@pytest.mark.parametrize("noise, norm, certificate", [
    (("--noise", "gaussian", "--sigma", "0.5"), "2", "cohen"),
    (("--noise", "gaussian", "--sigma", "0.5"), "1", "cohen"),
    (("--noise", "gaussian", "--sigma", "0.5"), "inf", "cohen"),
    (("--noise", "laplace", "--sigma", "0.5"), "1", "teng"),
], ids=["gaussian-l2", "gaussian-l1", "gaussian-linf", "laplace-l1"])
def test_half_space_radii(capsys, work, tmp_path, noise, norm, certificate):
    out = tmp_path / "log.tsv"
    # radius <= |x_1| for 20 inputs: alpha = share(21); n = 10^4 keeps |x_1| >= 0.1 certified
    summary = certify(capsys, base(work, out, noise=noise, norm=norm, extra=["--n", "10000", "--alpha", share(21)]))
    rows, t = logs.read_log(out), first_pixels(work)
    assert [r.idx for r in rows] == list(range(21))
    certified = [r for r in rows if not r.abstained]
    assert len(certified) >= 17 and rows[10].abstained   # x_1 = 0 is a coin flip
    for r in certified:
        assert r.predict == int(t[r.idx] > 0) == r.label and r.correct == 1
        assert r.basis == "tight" and r.certificate == certificate
        assert 0 < r.radius <= abs(t[r.idx])
    if noise[1] == "gaussian":
        sigma, d = 0.5, 4
        scale = {"2": 1.0, "1": 1.0, "inf": 1 / math.sqrt(d)}[norm]
        for r in certified:
            assert abs(r.radius - scale * sigma * stats.norm.ppf(r.p_a_lower)) <= 1e-12
    assert summary.startswith(f"{out}: 21 inputs, {21 - len(certified)} abstained")
    assert f"robustness score {logs.robustness_score([rows]):.6g}" in summary


def test_formats_models_and_noises_of_ones_own_give_the_same_rows(capsys, work, tmp_path):
    """Logits or labels; .npz, .pt dict, .pth tuple or a sequence of pairs; a registered name, a
    factory or a Noise instance: the same bytes."""
    def run(name, **kwargs):
        certify(capsys, base(work, tmp_path / name, **kwargs))
        return (tmp_path / name).read_bytes()

    gaussian = run("a.tsv")
    assert run("b.tsv", model="plugin.py:logits") == gaussian
    assert run("c.tsv", model="plugin.py:labels") == gaussian
    assert run("d.tsv", data="data.pt") == gaussian
    assert run("e.tsv", data="pairs.pth") == gaussian
    assert run("f.tsv", data="plugin.py:DATA") == gaussian
    assert run("g.tsv", noise=("--noise", f"{work}/plugin.py:gaussian", "--sigma", "0.5")) == gaussian
    laplace = run("h.tsv", noise=("--noise", "laplace", "--sigma", "0.5"), norm="1")   # Teng's certificate
    assert run("i.tsv", noise=("--noise", f"{work}/plugin.py:LAPLACE"), norm="1") == laplace != gaussian


def test_a_noise_class_of_ones_own(capsys, work, tmp_path):
    """A Noise subclass named by spec, called with dim and sigma: no catalog certificate applies, so
    the radius is the engine's R_U (basis approximate), at most sigma Phi^-1(p_A_lower) (the curve is
    looked up at a grid point at or below p_A_lower) and within 5% of it."""
    out = tmp_path / "log.tsv"
    certify(capsys, base(work, out, noise=("--noise", f"{work}/plugin.py:MyGauss", "--sigma", "0.5"),
                         extra=["--start", "15", "--alpha", share(6)]))
    rows, t = logs.read_log(out), first_pixels(work)
    assert [r.idx for r in rows] == list(range(15, 21))
    for r in rows:
        exact = 0.5 * stats.norm.ppf(r.p_a_lower)
        assert r.basis == "approximate" and r.certificate is None
        assert 0.95 * exact <= r.radius <= exact * (1 + 1e-9) and r.radius <= t[r.idx]


# -- shards, merge, columns -------------------------------------------------------------------------

@pytest.mark.parametrize("selection, shards", [
    ([], [(0, 7), (7, 14), (14, 21)]),
    (["--skip", "2", "--max", "14"], [(0, 5), (5, 9), (9, 100)]),
], ids=["start-stop", "skip-max"])
def test_merged_shards_equal_one_run(capsys, work, tmp_path, selection, shards):
    whole = tmp_path / "whole.tsv"
    certify(capsys, base(work, whole, extra=selection))
    parts = []
    for k, (start, stop) in enumerate(shards):
        parts.append(tmp_path / f"shard-{k}.tsv")
        certify(capsys, base(work, parts[-1], extra=[*selection, "--start", start, "--stop", stop]))
    merged = tmp_path / "merged.tsv"
    text = certify(capsys, ["merge", *reversed(parts), "--out", merged])
    assert merged.read_bytes() == whole.read_bytes()
    assert text == f"{merged}: {len(logs.read_log(whole))} rows from 3 shard logs\n"
    expected = select(21, 2, 14, 0, None) if selection else tuple(range(21))
    assert tuple(r.idx for r in logs.read_log(whole)) == expected


def test_cohen_columns_and_merge_refusals(capsys, work, tmp_path):
    cohen, full = tmp_path / "cohen.tsv", tmp_path / "full.tsv"
    certify(capsys, base(work, cohen, extra=["--cohen", "--stop", "10"]))
    certify(capsys, base(work, full, extra=["--start", "10"]))
    lines = cohen.read_text().splitlines()
    assert lines[0] == "idx\tlabel\tpredict\tradius\tcorrect\ttime"
    assert len(lines) == 11 and all(len(line.split("\t")) == 6 for line in lines)
    assert [r.idx for r in logs.read_log(cohen)] == list(range(10))
    assert all(r.p_a_lower is None and r.basis is None for r in logs.read_log(cohen))
    check_bad(capsys, tmp_path, ["merge", cohen, full, "--out", tmp_path / "m.tsv"], "different columns")
    check_bad(capsys, tmp_path, ["merge", full, full, "--out", tmp_path / "m.tsv"], "appears in two shards")
    check_bad(capsys, tmp_path, ["merge", full, tmp_path / "nope.tsv", "--out", tmp_path / "m.tsv"], "cannot read")


def test_time_column_and_progress(capsys, work, tmp_path):
    """Without --no-time the time column is each input's wall time; off a terminal, one progress line
    on stderr every --every inputs and at the end."""
    out = tmp_path / "log.tsv"
    argv = base(work, out, extra=["--stop", "3", "--every", "2"])
    argv.remove("--no-time")
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 0
    assert all(re.fullmatch(r"0:00:\d\d(\.\d{6})?", r.time) for r in logs.read_log(out))
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("[2/3] input 1 done (") and lines[1].startswith("[3/3] input 2 done (")


# -- bad input, interruption ------------------------------------------------------------------------

def tree(folder: Path) -> set:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def check_bad(capsys, folder: Path, argv, words: str, code: int = 2) -> None:
    """main(argv) exits with ``code`` and one stderr line containing ``words``, no traceback, and
    writes nothing in ``folder`` (no log, no temporary)."""
    before = tree(folder)
    got = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert got == code, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err and out == "", err
    assert err.startswith("unicr-certify: "), err
    assert words in err, err
    assert tree(folder) == before


BAD = [  # (what to change in the good command line, words of the message)
    ({"--data": "{w}/missing.npz"}, "does not exist"),
    ({"--data": "{w}/plugin.py"}, "expected a .npz file"),
    ({"--data": "{w}/garbage.npz"}, "not a readable .npz"),
    ({"--data": "{w}/keys.npz"}, "must hold arrays 'x'"),
    ({"--data": "{w}/short_y.npz"}, "y must have shape (N,) = (5,)"),
    ({"--data": "{w}/float_y.npz"}, "integer labels"),
    ({"--data": "{w}/plugin.py:NOT_CALLABLE"}, "must be a sequence"),
    ({"--data": "{w}/plugin.py:NOPE"}, "no attribute"),
    ({"--model": "{w}/missing.py:MODEL"}, "does not exist"),
    ({"--model": "{w}/plugin.py:NOPE"}, "no attribute"),
    ({"--model": "no_such_module_xyz:MODEL"}, "failed to import"),
    ({"--model": "{w}/plugin.py:"}, "malformed"),
    ({"--model": "{w}/plugin.py:NOT_CALLABLE"}, "must be callable"),
    ({"--model": "{w}/plugin.py:wrong_shape"}, "got shape (1, 2, 3)"),
    ({"--model": "{w}/plugin.py:broken"}, "RuntimeError: boom"),
    ({"--model": "{w}/plugin.py:negative"}, "labels >= 0"),
    ({"--noise": "{w}/plugin.py:LAPLACE_5", "--sigma": None}, "has dimension 5"),
    ({"--noise": "{w}/plugin.py:LAPLACE"}, "drop --sigma"),
    ({"--noise": "{w}/plugin.py:NOT_CALLABLE"}, "must be a unicr.Noise"),
    ({"--noise": "nosuch"}, "nosuch"),
    ({"--sigma": None}, "needs --sigma"),
    ({"--sigma": "0"}, "--sigma must be a finite number > 0"),
    ({"--sigma": "-1"}, "--sigma must be a finite number > 0"),
    ({"--shape": "beta"}, "invalid --shape"),
    ({"--shape": "beta=1.5"}, "unknown parameter 'beta'"),
    ({"--norm": "0"}, "--norm must be p > 0"),
    ({"--norm": "abc"}, "--norm must be p > 0"),
    ({"--n0": "0"}, "--n0 must be an integer >= 1"),
    ({"--n": "0"}, "--n must be an integer >= 1"),
    ({"--n": "many"}, "invalid int value"),
    ({"--alpha": "0"}, "--alpha must lie in the open interval (0, 1)"),
    ({"--alpha": "1.5"}, "--alpha must lie in the open interval (0, 1)"),
    ({"--batch": "0"}, "--batch must be an integer >= 1"),
    ({"--seed": "-1"}, "--seed must be an integer >= 0"),
    ({"--skip": "0"}, "--skip must be an integer >= 1"),
    ({"--max": "-2"}, "--max must be an integer >= -1"),
    ({"--start": "5", "--stop": "4"}, "--stop must be >= --start"),
    ({"--start": "-1"}, "--start must be an integer >= 0"),
    ({"--p-b": "both"}, "invalid choice"),
    ({"--device": "foo"}, "--device 'foo' is not supported"),
    ({"--radii": "a,b"}, "--radii must be"),
    ({"--out": "{w}"}, "is a folder"),
    ({"--out": "{w}/plugin.py/log.tsv"}, "is under the file"),
    ({"--model": None}, "the following arguments are required: --model"),
    ({"--bogus": ""}, "unrecognized arguments: --bogus"),
]


@pytest.fixture(scope="module")
def bad_files(work):
    (work / "garbage.npz").write_text("not a zip file")
    np.savez(work / "keys.npz", a=np.zeros((3, 4)), b=np.zeros(3))
    np.savez(work / "short_y.npz", x=np.zeros((5, 4)), y=np.zeros(4, dtype=np.int64))
    np.savez(work / "float_y.npz", x=np.zeros((3, 4)), y=np.array([0.0, 0.5, 1.0]))
    return work


@pytest.mark.parametrize("change, words", BAD, ids=[f"{i}-{next(iter(c))}" for i, (c, _) in enumerate(BAD)])
def test_bad_input_exits_2_with_one_line_and_no_log(capsys, bad_files, tmp_path, change, words):
    work = bad_files
    argv = base(work, tmp_path / "logs" / "log.tsv")
    for option, value in change.items():
        if option in argv:
            i = argv.index(option)
            argv[i:i + 2] = [] if value is None else [option, value.format(w=work)]
        elif value is not None:
            argv += [option, value.format(w=work)] if value else [option]
    check_bad(capsys, tmp_path, argv, words)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available")
def test_unavailable_device(capsys, work, tmp_path):
    check_bad(capsys, tmp_path, base(work, tmp_path / "log.tsv", extra=["--device", "cuda"]), "no CUDA device")


def test_curve_refusals(capsys, work, tmp_path):
    log = tmp_path / "a.tsv"
    log.write_text("idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t1\t1\t0.5\t1\t0:00:00\n")
    check_bad(capsys, tmp_path, ["curve", log, log, "--out", tmp_path / "c"], "curve names must differ")
    check_bad(capsys, tmp_path, ["curve", log, "--label", "x", "--label", "y", "--out", tmp_path / "c"],
              "one --label per log")
    check_bad(capsys, tmp_path, ["curve", tmp_path / "nope.tsv", "--out", tmp_path / "c"], "cannot read log")
    (tmp_path / "bad.tsv").write_text("idx\tlabel\n")
    check_bad(capsys, tmp_path, ["curve", tmp_path / "bad.tsv", "--out", tmp_path / "c"], "bad.tsv:1: header")


def test_interrupt_exits_130_and_leaves_no_log(capsys, work, tmp_path):
    check_bad(capsys, tmp_path, base(work, tmp_path / "log.tsv", model="plugin.py:interrupted"),
              "interrupted; no log written", code=130)


def test_internal_error_exits_3(capsys, work, tmp_path, monkeypatch):
    import unicr.certification

    def crash(*args, **kwargs):
        raise ZeroDivisionError("planted")

    monkeypatch.setattr(unicr.certification, "certify", crash)
    check_bad(capsys, tmp_path, base(work, tmp_path / "log.tsv"),
              "internal error: ZeroDivisionError: planted (rerun with --debug for the traceback)", code=3)


# -- curves -----------------------------------------------------------------------------------------

def test_curve_on_unicr_and_cohen_logs(capsys, work, tmp_path):
    one, two = tmp_path / "s25.tsv", tmp_path / "s50.tsv"
    certify(capsys, base(work, one, noise=("--noise", "gaussian", "--sigma", "0.25")))
    certify(capsys, base(work, two, extra=["--cohen"]))
    out = certify(capsys, ["curve", one, two, "--out", tmp_path / "fig" / "curve", "--radii", "0,0.5"])
    named = {"s25": logs.read_log(one), "s50": logs.read_log(two)}
    score = logs.robustness_score(list(named.values()))
    assert out == (logs.accuracy_table(named, [0, 0.5])
                   + f"robustness score (Eq. 5, max over 2 logs): {score:.6g}\n"
                   + f"curve: {tmp_path}/fig/curve.png, {tmp_path}/fig/curve.csv\n")
    assert (tmp_path / "fig" / "curve.png").read_bytes()[:4] == b"\x89PNG"
    csv = (tmp_path / "fig" / "curve.csv").read_text().splitlines()
    assert csv[0] == "radius,s25,s50" and csv[1].startswith("0.0,")


# -- the documented example -------------------------------------------------------------------------

def documented_example() -> tuple[list[str], str]:
    """The commands of docs/certify.md's quick start and the output shown below them."""
    text = (ROOT / "docs" / "certify.md").read_text()
    section = text[text.index("## Quick start"):]
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    output = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in commands.replace("\\\n", " ").splitlines() if line.strip()], output


def test_documented_example_runs_as_written(tmp_path):
    commands, output = documented_example()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    printed = ""
    for argv in commands:
        assert argv[0] == "python"
        done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        printed += done.stdout
    assert printed == output
    head = (ROOT / "docs" / "certify.md").read_text().split("The first lines of\n`logs/gaussian-0.5.tsv`:")[1]
    shown = re.search(r"```text\n(.*?)```", head, re.S).group(1)
    assert (tmp_path / "logs" / "gaussian-0.5.tsv").read_text().startswith(shown)
    assert (tmp_path / "logs" / "gaussian.png").exists()


def test_readme_shows_the_documented_example():
    """The README's command-line example is the quick start tested above, word for word."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Certify a data set from the command line"):]
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    assert [shlex.split(line) for line in commands.replace("\\\n", " ").splitlines() if line.strip()] \
        == documented_example()[0]
    assert "here 0.5027 across the two" in section and "max over 2 logs): 0.5027" in documented_example()[1]
