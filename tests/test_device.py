"""Device handling and host synchronisation of the engine, testable without a GPU (issue 11).

* Every public entry point takes ``device=``; here it is "cpu" (and "cuda" where torch sees one),
  so the device-handling code paths run on a machine without a GPU. On the CPU the result must be
  bitwise the result of the default ``device=None`` (same seed, same bytes); on any device the
  shapes are right and the values finite.
* Host synchronisation: a hot loop that synchronises with the host once per lambda would serialise
  the GPU. The tests count host syncs on the CPU in two ways and require the count not to grow with
  the number of lambdas evaluated: (1) calls of the Tensor methods that read a value to the host
  (``item``, ``__bool__``, ``__float__``, ``__int__``, ``__index__``, ``tolist``, ``cpu``, ``numpy``),
  monkeypatched with counting wrappers; (2) dispatched operators that synchronise on a GPU because
  the size of their output depends on the data or because they read a value (``_local_scalar_dense``,
  ``nonzero``, boolean-mask indexing, ``unique``, ``bincount``, ...), seen by a TorchDispatchMode.
  A positive control checks that a statistic which does sync once per lambda is caught.
* ``scripts/gpu_benchmark.py --device cpu --quick`` runs and writes its JSON.
"""
from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import unicr
from unicr.audit import LOOSE, SUSPECT, TIGHT, UNCONFIRMED, Settings, audit, cli, ranking
from unicr.boundary import lambda_grid, solve_ray
from unicr.directions import equal_direction
from unicr.statistics import MonteCarloRay

ROOT = Path(__file__).resolve().parents[1]
DIM = 8
SAMPLES = 2000
P_A = [0.6, 0.9]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                  reason="no CUDA device"))]
COLUMNS = ("radius", "lower", "upper", "witness_scale")


def _same_curve(a, b) -> None:
    """Two radius_curve frames hold the same bytes (and the same witness directions)."""
    for col in COLUMNS:
        assert np.array_equal(a[col].to_numpy(dtype=float), b[col].to_numpy(dtype=float)), col
    assert list(a["direction"]) == list(b["direction"])
    assert all(x.direction == y.direction for x, y in zip(a["witness"], b["witness"]))


def _check_curve(df, n: int) -> None:
    assert len(df) == n
    values = df[list(COLUMNS)].to_numpy(dtype=float)
    assert np.isfinite(values).all() and (values > 0).all()
    assert (df["lower"] <= df["radius"]).all() and (df["radius"] <= df["upper"]).all()


# -- device= through every entry point ----------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_certified_radius_device(device):
    noise = unicr.noise("laplace", sigma=1.0, dim=DIM)
    r = unicr.certified_radius(noise, 0.8, 1, samples=SAMPLES, device=device, backend="mc")
    assert np.isfinite([r.radius, r.lower, r.upper]).all() and 0 < r.lower <= r.radius <= r.upper
    assert r.witness.delta().shape == (DIM,)
    if device == "cpu":
        default = unicr.certified_radius(noise, 0.8, 1, samples=SAMPLES, backend="mc")
        assert (r.radius, r.lower, r.upper, r.witness.scale) == \
            (default.radius, default.lower, default.upper, default.witness.scale)
        assert r.witness.direction == default.witness.direction


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("p_b", [None, 0.05], ids=["binary", "p_b"])
def test_radius_curve_device(device, p_b):
    noise = unicr.noise("laplace", sigma=1.0, dim=DIM)
    df = unicr.radius_curve(noise, 2, P_A, p_b=p_b, samples=SAMPLES, device=device, backend="mc")
    _check_curve(df, len(P_A))
    if device == "cpu":
        _same_curve(df, unicr.radius_curve(noise, 2, P_A, p_b=p_b, samples=SAMPLES, backend="mc"))


@pytest.mark.parametrize("device", DEVICES)
def test_radius_curve_exact_backend_device(device):
    """The deterministic backend's statistic hands its tensors back on the requested device
    (general (p_A, p_B): solved on the lam grid like a Monte Carlo ray)."""
    noise = unicr.noise("gaussian", sigma=1.0, dim=DIM)
    df = unicr.radius_curve(noise, 2, P_A, p_b=0.05, device=device, backend="exact", search="axis")
    _check_curve(df, len(P_A))
    assert (df["backend"] == "exact").all()
    if device == "cpu":
        _same_curve(df, unicr.radius_curve(noise, 2, P_A, p_b=0.05, backend="exact", search="axis"))


@pytest.mark.parametrize("device", DEVICES)
def test_radius_curve_pso_device(device):
    noise = unicr.noise("laplace", sigma=1.0, dim=DIM)
    options = dict(samples=SAMPLES, search_samples=500, backend="mc", search="pso")
    df = unicr.radius_curve(noise, 1, P_A, device=device, **options)
    _check_curve(df, len(P_A))
    if device == "cpu":
        _same_curve(df, unicr.radius_curve(noise, 1, P_A, **options))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", ["mc", "auto"])
def test_witness_margin_device(device, backend):
    noise = unicr.noise("laplace", sigma=1.0, dim=DIM)
    witness = unicr.certified_radius(noise, 0.8, 1, samples=SAMPLES, backend="mc", search="diagonal").witness
    m = unicr.witness_margin(noise, witness.rescaled(2 * witness.delta_norm), 0.8, samples=SAMPLES,
                             device=device, backend=backend)
    assert np.isfinite([m.estimate, m.lower, m.upper]).all() and m.lower <= m.estimate <= m.upper
    assert m.backend == ("mc" if backend == "mc" else "exact")
    if device == "cpu":
        default = unicr.witness_margin(noise, witness.rescaled(2 * witness.delta_norm), 0.8, samples=SAMPLES,
                                       backend=backend)
        assert (m.estimate, m.lower, m.upper) == (default.estimate, default.lower, default.upper)


def _distribution_noise(device):
    """A torch Distribution over R^d (not i.i.d.: the whole vector is drawn). Its parameters live on
    the engine's device: torch's log_prob does not mix a CUDA sample with CPU parameters of shape (d,)."""
    zeros = torch.zeros(DIM, dtype=torch.float64, device=device)
    return unicr.DistributionNoise(torch.distributions.Independent(torch.distributions.Normal(zeros, zeros + 1), 1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["gaussian", "laplace", "uniform", "distribution"])
def test_monte_carlo_ray_device(device, name):
    """critical, scores and margin: shapes, finiteness and the device of the results; on the CPU the
    same bytes as the default device."""
    noise = _distribution_noise(device) if name == "distribution" else unicr.noise(name, sigma=1.0, dim=DIM)
    direction = equal_direction(DIM, DIM, 2.0)
    lams = torch.linspace(0.05, 2.0, 7, dtype=torch.float64)
    p_a = torch.tensor([0.6, 0.9], dtype=torch.float64)
    p_b = torch.tensor([0.3, 0.05], dtype=torch.float64)

    def evaluate(dev):
        ray = MonteCarloRay(noise, direction, samples=SAMPLES, seed=3, device=dev)
        on = torch.device(dev or "cpu")
        return (ray.critical(lams.to(on)), ray.scores(lams.to(on), p_a.to(on), p_b.to(on)),
                ray.margin(lams.to(on), p_a.to(on), p_b.to(on)))

    out = evaluate(device)
    for triple, shape in zip(out, [(7,), (7, 2), (7, 2)]):
        for x in triple:
            assert x.shape == shape and x.device.type == device and x.dtype == torch.float64
            assert torch.isfinite(x).all()
        est, lo, hi = triple
        assert (lo <= est).all() and (est <= hi).all()
    if device == "cpu":
        for triple, default in zip(out, evaluate(None)):
            assert all(torch.equal(x, y) for x, y in zip(triple, default))


@pytest.mark.parametrize("device", DEVICES)
def test_audit_api_device(device):
    settings = dict(dim=DIM, p_a=tuple(P_A), samples=SAMPLES, backend="mc")
    result = audit("teng", 1, settings=Settings(device=device, **settings))
    assert len(result.rows) == len(P_A)
    assert all(np.isfinite([r.radius, r.lower, r.upper]).all() for r in result.rows)
    assert result.verdict in (TIGHT, LOOSE, SUSPECT, UNCONFIRMED)
    if device == "cpu":
        default = audit("teng", 1, settings=Settings(**settings))
        assert [(r.radius, r.lower, r.upper, r.verdict) for r in result.rows] == \
            [(r.radius, r.lower, r.upper, r.verdict) for r in default.rows]


def _cli_json(argv, capsys):
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("device", DEVICES)
def test_cli_device(device, tmp_path, capsys):
    """python -m unicr.audit ... --device DEVICE, then --recheck of a witness with --device."""
    argv = ["--certificate", "cohen", "--norm", "2", "--dim", str(DIM), "--samples", str(SAMPLES),
            "--p-a", "0.6,0.9", "--backend", "mc", "--json"]
    (doc,) = _cli_json(argv + ["--device", device, "--out", str(tmp_path / "a")], capsys)
    rows = [(r["radius"], r["lower"], r["upper"]) for r in doc["rows"]]
    assert len(rows) == 2 and np.isfinite(rows).all()
    if device == "cpu":
        (default,) = _cli_json(argv + ["--out", str(tmp_path / "b")], capsys)
        assert rows == [(r["radius"], r["lower"], r["upper"]) for r in default["rows"]]
    # a witness refuted at twice its norm, re-checked on the device
    noise = unicr.noise("gaussian", sigma=1.0, dim=DIM)
    witness = unicr.certified_radius(noise, 0.6, 2, samples=SAMPLES, backend="mc", search="diagonal").witness
    path = tmp_path / "witness.json"
    path.write_text(json.dumps({"noise": {"family": "gaussian", "sigma": 1.0, "dim": DIM}, "p_a": 0.6,
                                "witness": witness.rescaled(2 * witness.delta_norm).to_dict()}))
    (checked,) = _cli_json(["--recheck", str(path), "--samples", str(SAMPLES), "--backend", "mc",
                            "--device", device, "--json"], capsys)
    assert checked["holds"] and np.isfinite([checked["estimate"], checked["lower"], checked["upper"]]).all()


@pytest.mark.parametrize("device", DEVICES)
def test_ranking_device(device, monkeypatch):
    """unicr.audit.rank passes Settings.device to every curve (two families, two norms here)."""
    monkeypatch.setattr(ranking, "FAMILIES", ranking.FAMILIES[:2])
    monkeypatch.setattr(ranking, "NORMS", (1.0, 2.0))
    settings = dict(dim=DIM, p_a=tuple(P_A), samples=SAMPLES, backend="mc", search="axis")
    result = ranking.rank(Settings(device=device, **settings))
    for p in ranking.NORMS:
        assert set(result.radius[p]) == {label for label, _, _ in ranking.FAMILIES}
        assert all(np.isfinite(np.stack(r)).all() and np.shape(r) == (3, len(P_A))
                   for r in result.radius[p].values())
    if device == "cpu":
        default = ranking.rank(Settings(**settings))
        assert all(np.array_equal(np.stack(result.radius[p][k]), np.stack(default.radius[p][k]))
                   for p in ranking.NORMS for k in result.radius[p])


# -- host synchronisation --------------------------------------------------------------------------

#: Tensor methods that copy a value to the host (a device sync on a GPU)
HOST_READS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy")
#: operators that synchronise on a GPU: a value read, or an output size that depends on the data
SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "_unique", "_unique2", "unique_dim",
            "unique_consecutive", "bincount", "repeat_interleave"}
INDEX_OPS = {"index", "index_put", "index_put_", "_index_put_impl_"}
#: the most by which the syncs of a run over 4G lambdas may exceed those over G lambdas (the
#: boundary solver's bounded extension and refinement rounds may differ between the two grids)
SLACK = 8
G = 32


class _SyncOps(TorchDispatchMode):
    """Counts the dispatched operators that would synchronise a GPU with the host."""

    def __init__(self, counts):
        super().__init__()
        self.counts = counts

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNC_OPS:
            self.counts["op:" + name] += 1
        elif name in INDEX_OPS and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                                       for i in args[1] if i is not None):
            self.counts[f"op:{name}[bool mask]"] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture
def count_syncs(monkeypatch):
    """count_syncs(fn) -> (host reads, sync operators) during fn(), each a Counter by name."""
    reads = collections.Counter()

    def wrap(name, original):
        def counted(self, *args, **kwargs):
            reads[name] += 1
            return original(self, *args, **kwargs)
        return counted

    def count(fn):
        reads.clear()
        ops = collections.Counter()
        with monkeypatch.context() as patch:
            for name in HOST_READS:
                patch.setattr(torch.Tensor, name, wrap(name, getattr(torch.Tensor, name)))
            with _SyncOps(ops):
                fn()
        return collections.Counter(reads), ops
    return count


def _assert_no_growth(count_syncs, run, what: str) -> None:
    """run(g) evaluates a statistic on a grid of g lambdas; its syncs at 4G may exceed those at G
    by at most SLACK (a sync per lambda adds >= 3G)."""
    small, large = count_syncs(lambda: run(G)), count_syncs(lambda: run(4 * G))
    for kind, a, b in zip(("host reads", "sync operators"), small, large):
        assert sum(b.values()) <= sum(a.values()) + SLACK, (
            f"{what}: {kind} grow with the number of lambdas: {G} lambdas {dict(a)}, {4 * G} lambdas {dict(b)}")


def _ray(name, p, samples=SAMPLES):
    return MonteCarloRay(unicr.noise(name, sigma=1.0, dim=DIM), equal_direction(DIM, DIM, p), samples=samples)


NOISES = [("gaussian", 2.0), ("laplace", 1.0), ("uniform", float("inf"))]
PAIRS = {"binary": (torch.tensor([0.6, 0.9], dtype=torch.float64), torch.tensor([0.4, 0.1], dtype=torch.float64)),
         "general": (torch.tensor([0.6, 0.9], dtype=torch.float64), torch.tensor([0.2, 0.05], dtype=torch.float64))}


@pytest.mark.parametrize("name, p", NOISES, ids=[n for n, _ in NOISES])
def test_statistics_sync_once_per_call(count_syncs, name, p):
    """MonteCarloRay.critical, .scores and .margin: the same syncs for G and 4G lambdas."""
    ray = _ray(name, p)
    p_a, p_b = PAIRS["general"]
    grid = lambda g: lambda_grid(0.01, 5.0, g - 1)
    _assert_no_growth(count_syncs, lambda g: ray.critical(grid(g)), f"{name} critical")
    _assert_no_growth(count_syncs, lambda g: ray.scores(grid(g), p_a, p_b), f"{name} scores")
    _assert_no_growth(count_syncs, lambda g: ray.margin(grid(g), p_a, p_b), f"{name} margin")
    # the statistics themselves: no growth at all
    for fn in (lambda g: ray.critical(grid(g)), lambda g: ray.scores(grid(g), p_a, p_b)):
        assert count_syncs(lambda: fn(G)) == count_syncs(lambda: fn(4 * G))


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("name, p", NOISES, ids=[n for n, _ in NOISES])
def test_solve_ray_syncs_do_not_grow(count_syncs, name, p, pair):
    """unicr.boundary.solve_ray with points = G and 4G, with a pilot (binary and general p_B)."""
    ray = _ray(name, p, samples=10_000)
    pilot = MonteCarloRay(ray.noise, ray.direction, samples=1000, stream="pilot")
    p_a, p_b = PAIRS[pair]
    _assert_no_growth(count_syncs, lambda g: solve_ray(ray, p_a, p_b, scale=1.0, pilot=pilot, points=g),
                      f"{name} solve_ray ({pair})")


@pytest.mark.parametrize("search", ["diagonal", "sparse"])
def test_radius_curve_syncs_grow_slower_than_lambdas(count_syncs, monkeypatch, search):
    """A whole Monte Carlo curve at points = 16 and 64: the lambdas evaluated grow, the syncs do not."""
    lambdas = []
    original = MonteCarloRay.log_ratios

    def log_ratios(self, lams):
        lambdas.append(lams.numel())
        return original(self, lams)

    monkeypatch.setattr(MonteCarloRay, "log_ratios", log_ratios)
    noise = unicr.noise("laplace", sigma=1.0, dim=DIM)
    runs = {}
    for points in (16, 64):
        lambdas.clear()
        reads, ops = count_syncs(lambda: unicr.radius_curve(noise, 1, [0.6, 0.8, 0.95], samples=10_000,
                                                            backend="mc", search=search, points=points))
        runs[points] = (sum(lambdas), sum(reads.values()), sum(ops.values()))
    (lam16, reads16, ops16), (lam64, reads64, ops64) = runs[16], runs[64]
    assert lam64 >= lam16 + 40
    assert reads64 <= reads16 + SLACK and ops64 <= ops16 + SLACK, runs
    assert max(reads64, ops64) < lam64, runs


class _PerLambdaSync:
    """A ray statistic that reads every lambda back to the host: what the tests must catch."""

    def __init__(self, ray):
        self.ray = ray

    def critical(self, lams):
        [float(lam) for lam in lams]
        return self.ray.critical(lams)


def test_sync_counter_catches_a_per_lambda_sync(count_syncs):
    """Positive control: a statistic that syncs once per lambda fails the no-growth check."""
    ray = _PerLambdaSync(_ray("gaussian", 2.0))
    with pytest.raises(AssertionError, match="grow with the number of lambdas"):
        _assert_no_growth(count_syncs, lambda g: ray.critical(lambda_grid(0.01, 5.0, g - 1)), "per-lambda")
    reads, ops = count_syncs(lambda: ray.critical(lambda_grid(0.01, 5.0, G - 1)))
    assert reads["__float__"] >= G and ops["op:_local_scalar_dense"] >= G


# -- the GPU benchmark script ----------------------------------------------------------------------

def test_gpu_benchmark_script_quick(tmp_path):
    out = tmp_path / "x.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_benchmark.py"), "--device", "cpu", "--quick",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    for key in ("device", "device_name", "torch_version", "calibration", "throughput_definition",
                "throughput_unit", "settings", "cases", "total_seconds"):
        assert key in report, key
    assert report["device"] == "cpu" and report["torch_version"] == torch.__version__
    assert report["settings"]["quick"] is True
    assert report["calibration"]["matmul_float64"]["tflops"] > 0
    assert report["calibration"]["elementwise_float64"]["gbytes_per_second"] > 0
    cases = report["cases"]
    assert {(c["noise"], c["norm"]) for c in cases} >= {("gaussian", "l2"), ("gaussian", "linf"),
                                                        ("laplace", "l1"), ("laplace", "l2")}
    assert len({c["dim"] for c in cases}) == 2
    for c in cases:
        assert c["direction"] == "diagonal" and c["support"] == c["dim"]
        assert c["samples"] > 0 and isinstance(c["reduced"], bool)
        for timing in (c["curve"], c["ray"]):
            assert timing["seconds"] > 0 and timing["throughput"] > 0 and timing["finite"]
            assert timing["draw_coordinate_lambdas"] > 0
        assert c["ray"]["repeat_bitwise_equal"] is True   # on the CPU: same seed, same bytes
        assert c["curve"]["log_ratio_calls"] >= 1 and c["curve"]["lambdas_main"] >= report["settings"]["points"]
