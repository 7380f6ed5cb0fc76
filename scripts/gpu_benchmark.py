"""GPU benchmark of the Monte Carlo engine: p_A -> R curves along the full diagonal, as JSON.

    python scripts/gpu_benchmark.py                        # cuda, 10^6 draws, d = 3072 and 150528
    python scripts/gpu_benchmark.py --device cpu --quick   # smoke run: tiny sizes, a few seconds

For every case (noise, norm, d) the direction is the full diagonal (``equal_direction(d, d, p)``:
every coordinate sampled) and the backend is Monte Carlo. Two timings per case:

* ``curve``: a whole ``unicr.radius_curve`` (binary, the default p_A grid, ``--points`` lam grid
  points) with the diagonal as the only searched direction; every ``MonteCarloRay.log_ratios``
  call of the run (main ray and pilot) is counted, with its draws, support and number of lambdas;
* ``ray``: one ``MonteCarloRay.critical`` call on lam = 0 and ``--points`` - 1 geometric lambdas
  from 1e-3 to 10 noise scales along v, i.e. the statistic without the boundary solver around it
  (timed after the curve, so the kernels are warm; rays whose draws fit in memory make them in the
  constructor, untimed, as the engine does once per ray).

Throughput (draw-coordinates per second) = sum over the timed log_ratios calls of
(draws of the ray x support size of the direction x lambdas in the call) / wall seconds of the
timing, synchronised (torch.cuda.synchronize) on both ends. Noises with a sufficient statistic
along the ray (Gaussian, uniform) draw one number per draw instead of the support's coordinates;
their draw-coordinates per second are then *effective* rates (``sampling`` says which), and
``draw_lambdas_per_second`` leaves the support out.

Budget: the measured work is kept within ``--budget`` seconds (default 200, so that the run ends
within 5 minutes on one H100 with start-up and calibration). Each case is first probed at up to two
smaller sample sizes (which also warms the kernels up); the time at ``--samples`` draws is
extrapolated linearly (times 1.3, and times 2 for the curve plus the fixed grid), and where it
exceeds the case's share of the remaining budget, or the memory estimate exceeds half the free
device memory, the case runs with fewer draws: ``reduced`` and ``reduction`` in the JSON say so
and why (``reduced_cases`` lists them; a curve at the size of the second probe reuses that probe's
timing, ``from_probe``). Cases run cheapest first, so a cheap case leaves its unused share to the
costly ones (Laplace at d = 150528, which draws 10^6 x 150528 coordinates afresh for every call:
the draws do not fit in memory). Expect those to be reduced at the default budget.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import unicr  # noqa: E402
from unicr.boundary import lambda_grid  # noqa: E402
from unicr.directions import equal_direction, norm_label  # noqa: E402
from unicr.statistics import MonteCarloRay  # noqa: E402

#: (noise, norm): Gaussian l2/linf, Laplace l1/l2, uniform linf
CASES = (("gaussian", 2.0), ("gaussian", math.inf), ("laplace", 1.0), ("laplace", 2.0), ("uniform", math.inf))
DIMS = (3072, 150_528)
QUICK_DIMS = (16, 48)
SAFETY = 1.3
#: the fixed-grid call is repeated (bitwise comparison) when it took less than this
REPEAT_SECONDS = 2.0
#: bytes per (lambda x pooled draw) in one log_ratios + histogram pass (float64 L, int64 bins,
#: weights and temporaries), for the memory estimate
BYTES_PER_LAMBDA_DRAW = 8 * 8
DEFINITION = ("draw-coordinates per second = sum over the timed MonteCarloRay.log_ratios calls of "
              "(draws of the ray x support size of the direction (coordinates per draw; d on the full "
              "diagonal) x lambdas evaluated in the call) / wall-clock seconds of the timing, "
              "synchronised on both ends; for sampling='sufficient statistic' noises the coordinates are "
              "not drawn one by one and the rate is an effective one")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def best_time(fn, device, repeat: int) -> float:
    fn()  # warm-up
    return min(timed(fn, device)[1] for _ in range(repeat))


def calibration(device: torch.device, quick: bool) -> dict:
    """A fixed matmul in float64 and float32 and a memory-bound elementwise pass."""
    out = {}
    for dtype, n in ((torch.float64, 256 if quick else 4096), (torch.float32, 256 if quick else 8192)):
        a = torch.randn(n, n, device=device, dtype=dtype, generator=torch.Generator(device).manual_seed(0))
        b = torch.randn(n, n, device=device, dtype=dtype, generator=torch.Generator(device).manual_seed(1))
        seconds = best_time(lambda: a @ b, device, 3)
        name = str(dtype).replace("torch.", "")
        out[f"matmul_{name}"] = {"n": n, "seconds": seconds, "tflops": 2 * n**3 / seconds / 1e12}
    elements = (1 << 16) if quick else (1 << 27)
    x = torch.ones(elements, device=device, dtype=torch.float64)
    seconds = best_time(lambda: x.mul_(1.0), device, 3)
    out["elementwise_float64"] = {"elements": elements, "seconds": seconds,
                                  "gbytes_per_second": 2 * 8 * elements / seconds / 1e9}
    out["note"] = "best of 3 after a warm-up; matmul allow_tf32=" + str(torch.backends.cuda.matmul.allow_tf32)
    return out


def support_width(noise, direction) -> int:
    """Coordinates per draw that the sampler draws for the direction (as MonteCarloRay does)."""
    return direction.support_size if noise.iid else noise.dim


def sufficient(noise, direction) -> bool:
    """Whether MonteCarloRay draws a sufficient statistic along the ray instead of the coordinates."""
    return bool(noise.symmetric and noise.ray_sampler(direction.values, direction.groups) is not None)


@contextlib.contextmanager
def counting():
    """Record (draws, support, lambdas, stream) of every MonteCarloRay.log_ratios call."""
    calls = []
    original = MonteCarloRay.log_ratios

    def log_ratios(self, lams):
        calls.append((self.samples, support_width(self.noise, self.direction), int(lams.numel()), self.stream))
        return original(self, lams)

    MonteCarloRay.log_ratios = log_ratios
    try:
        yield calls
    finally:
        MonteCarloRay.log_ratios = original


def draw_coordinates(calls) -> int:
    return sum(n * k * g for n, k, g, _ in calls)


def run_curve(noise, p, direction, samples, args, device):
    """One timed radius_curve: (seconds, log_ratios calls, curve DataFrame)."""
    with counting() as calls:
        df, seconds = timed(lambda: unicr.radius_curve(
            noise, p, unicr.DEFAULT_P_A_GRID, samples=samples, seed=args.seed, device=str(device),
            backend="mc", search=(direction,), points=args.points), device)
    return seconds, calls, df


def noise_scale_along(noise, direction) -> float:
    """The noise scale in units of lam along v: sigma / ||v||_2 (the fixed grid spans 1e-3 to 10 of it)."""
    return float(noise.sigma or noise.scale) / direction.norm(2.0)


def round_down(n: int, multiple: int = 20) -> int:
    """n rounded down to two significant digits and to a multiple of ``multiple``."""
    if n <= multiple:
        return multiple
    digits = 10 ** max(0, int(math.log10(n)) - 1)
    return max(multiple, (n // digits * digits) // multiple * multiple)


def memory_estimate(samples: int, points: int) -> int:
    """Bytes of the largest log_ratios + histogram pass: (points + 1) lambdas x 2 * samples pooled draws."""
    return BYTES_PER_LAMBDA_DRAW * (points + 1) * 2 * samples


def plan_samples(noise, p, direction, args, device, budget: float):
    """Choose the draws of the case: at most what fits in memory, then probe at up to two smaller
    sizes and extrapolate the time. Returns (draws, predicted seconds, probe records, reason or None,
    the last probe's (seconds, calls, curve) and whether that probe ran warm)."""
    requested = args.samples
    reasons = []
    cap = requested
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if memory_estimate(requested, args.points) > 0.5 * free:
            cap = round_down(int(0.5 * free / memory_estimate(1, args.points)))
            reasons.append(f"memory: {memory_estimate(requested, args.points) / 2**30:.1f} GiB estimated at "
                           f"{requested} draws, over half the free {free / 2**30:.1f} GiB")
    per_draw = 1 if sufficient(noise, direction) else support_width(noise, direction)
    n1 = int(min(cap, max(1000, (1 << 25) // per_draw)))
    n2 = int(min(cap, 8 * n1))
    probes = []
    for n in dict.fromkeys((n1, n2)):
        last = run_curve(noise, p, direction, n, args, device)
        probes.append({"samples": n, "seconds": last[0], "draw_coordinate_lambdas": draw_coordinates(last[1])})
    t1, t2 = probes[0]["seconds"], probes[-1]["seconds"]
    slope = max((t2 - t1) / (n2 - n1), 0.0) if n2 > n1 else t2 / n2
    # the timed curve plus the fixed-grid call, which costs about as much (both evaluate ~65 lambdas
    # on the main ray)
    predict = lambda n: SAFETY * 2.0 * (t2 + slope * (n - n2))
    chosen = cap
    if predict(cap) > budget and n2 < cap:
        fit = n2 + (budget / (SAFETY * 2.0) - t2) / slope if slope > 0 else cap
        chosen = min(cap, max(n2, round_down(int(fit))))
        reasons.append(f"time: {predict(cap):.0f} s predicted at {cap} draws (curve and fixed grid), "
                       f"over this case's share of the budget, {budget:.0f} s")
    reason = "; ".join(reasons) if chosen < requested else None
    return chosen, predict(chosen), probes, reason, last, len(probes) == 2


def bench_case(name, p, dim, args, device, budget):
    noise = unicr.noise(name, sigma=1.0, dim=dim)
    direction = equal_direction(dim, dim, p)
    width = support_width(noise, direction)
    entry = {"noise": name, "norm": norm_label(p), "dim": dim, "direction": direction.label,
             "support": width, "sampling": "sufficient statistic" if sufficient(noise, direction) else "coordinates",
             "samples_requested": args.samples}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    samples, predicted, probes, reason, last, warm = plan_samples(noise, p, direction, args, device, budget)
    entry.update({"samples": samples, "reduced": samples < args.samples, "reduction": reason,
                  "predicted_seconds": predicted, "probes": probes})
    # the last probe, when it ran at the chosen size after a first (warm-up) probe, is the timing
    reused = warm and samples == probes[-1]["samples"]
    seconds, calls, df = last if reused else run_curve(noise, p, direction, samples, args, device)
    coords = draw_coordinates(calls)
    radius = df["radius"].to_numpy(dtype=float)
    entry["curve"] = {
        "seconds": seconds, "p_a_points": len(df), "points": args.points,
        "log_ratio_calls": len(calls),
        "lambdas_main": sum(g for _, _, g, s in calls if s == "main"),
        "lambdas_pilot": sum(g for _, _, g, s in calls if s == "pilot"),
        "draw_coordinate_lambdas": coords,
        "throughput": coords / seconds,
        "draw_lambdas_per_second": sum(n * g for n, _, g, _ in calls) / seconds,
        "radius_at_p_a": {str(a): float(r) for a, r in zip(df["p_a"], radius) if a in (0.6, 0.9, 0.99)},
        "finite": bool(np.isfinite(radius).all()),
        "from_probe": reused,
    }
    scale = noise_scale_along(noise, direction)
    lo, hi = 1e-3 * scale, 10.0 * scale
    ray = MonteCarloRay(noise, direction, samples=samples, seed=args.seed, device=device)
    lams = lambda_grid(lo, hi, args.points - 1, device=device)
    # no warm-up call: the curve has just run the same kernels, and a warm-up would draw the
    # samples of an uncached ray once more (cached rays draw them here, in the constructor, untimed)
    (z, _, _), ray_seconds = timed(lambda: ray.critical(lams), device)
    ray_coords = ray.samples * width * lams.numel()
    entry["ray"] = {"call": "MonteCarloRay.critical", "lambdas": int(lams.numel()),
                    "lambda_range": [0.0, lo, hi], "scale_along_v": scale, "seconds": ray_seconds,
                    "draw_coordinate_lambdas": ray_coords, "throughput": ray_coords / ray_seconds,
                    "draw_lambdas_per_second": ray.samples * lams.numel() / ray_seconds,
                    "finite": bool(torch.isfinite(z).all())}
    # same seed, same bytes? (histograms add weights with atomics on a GPU); only where cheap
    entry["ray"]["repeat_bitwise_equal"] = (bool(torch.equal(z, ray.critical(lams)[0]))
                                            if ray_seconds < REPEAT_SECONDS else None)
    if device.type == "cuda":
        entry["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
        entry["memory_estimate_bytes"] = memory_estimate(samples, args.points)
    return entry


def commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda; cpu for a smoke run)")
    parser.add_argument("--samples", type=int, default=1_000_000, help="Monte Carlo draws (default 10^6)")
    parser.add_argument("--dims", default=None, help=f"comma list of dimensions (default {','.join(map(str, DIMS))})")
    parser.add_argument("--points", type=int, default=64, help="lam grid points of a ray (default 64)")
    parser.add_argument("--budget", type=float, default=200.0,
                        help="seconds for the measured work, probes included (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 with --quick)")
    parser.add_argument("--out", default="results/gpu_benchmark.json", help="JSON output path")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny sizes (d = {QUICK_DIMS}, 2000 draws, 16 points): a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples = min(args.samples, 2000)
        args.points = min(args.points, 16)
    if args.threads or args.quick:
        torch.set_num_threads(args.threads or 1)
    dims = tuple(int(x) for x in args.dims.split(",")) if args.dims else (QUICK_DIMS if args.quick else DIMS)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda but torch.cuda.is_available() is False (use --device cpu)")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    start = time.perf_counter()
    report = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else (
            platform.processor() or platform.machine()),
        "torch_version": torch.__version__, "cuda_version": torch.version.cuda,
        "unicr_version": unicr.__version__, "commit": commit(), "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "throughput_definition": DEFINITION, "throughput_unit": "draw-coordinates per second",
        "settings": {"samples": args.samples, "dims": list(dims), "points": args.points,
                     "p_a_points": len(unicr.DEFAULT_P_A_GRID), "seed": args.seed, "backend": "mc",
                     "direction": "full diagonal", "dtype": "float64", "budget_seconds": args.budget,
                     "quick": args.quick},
    }
    report["calibration"] = calibration(device, args.quick)

    def cost_rank(case):   # cheapest first: by dimension, sufficient statistics before coordinates
        name, p, dim = case
        return dim, not sufficient(unicr.noise(name, sigma=1.0, dim=dim), equal_direction(dim, dim, p))

    order = sorted(((name, p, d) for d in dims for name, p in CASES), key=cost_rank)
    deadline = time.perf_counter() + args.budget
    cases = []
    for i, (name, p, dim) in enumerate(order):
        budget = max(0.0, deadline - time.perf_counter()) / (len(order) - i)
        entry = bench_case(name, p, dim, args, device, budget)
        cases.append(entry)
        c = entry["curve"]
        print(f"{name:9s} {norm_label(p):5s} d={dim:<7d} n={entry['samples']:<8d} curve {c['seconds']:7.2f} s "
              f"{c['throughput']:.3e} coord/s   ray {entry['ray']['throughput']:.3e} coord/s"
              + ("   (reduced)" if entry["reduced"] else ""), flush=True)
    report["cases"] = cases
    report["reduced_cases"] = [f"{c['noise']} {c['norm']} d={c['dim']}: {c['samples']} draws ({c['reduction']})"
                               for c in cases if c["reduced"]]
    report["total_seconds"] = time.perf_counter() - start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({report['total_seconds']:.1f} s)")
    return report


if __name__ == "__main__":
    main()
