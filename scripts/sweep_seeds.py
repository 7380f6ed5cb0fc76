"""Sweep one statistical check of the test suite over many seeds; report its failure rate.

Each statistical test is a ``check_*(..., seed)`` function that the test calls with one fixed
seed (tests/test_engine.py, tests/test_exact.py). This script calls the same function over
``--seeds`` consecutive seeds from ``--start`` and prints the observed failures, the rate, and a
one-sided 95% Clopper-Pearson upper bound on the true rate, to compare with the budget
(tests/budget.py, FAILURE_RATE = 1e-4 per test). It also summarises the diagnostics a check
returns (e.g. how close the band's extent came to its bound).

    python scripts/sweep_seeds.py --list
    python scripts/sweep_seeds.py general-pa-pb --seeds 200
    python scripts/sweep_seeds.py closed-forms-uniform-l1 --seeds 50 --start 1000 --jobs 2

An AssertionError counts as a failure; any other exception is an error (reported, not counted).
Zero failures in n seeds bounds the rate by about 3/n at 95%: confirming 1e-4 itself would take
some 30 000 seeds, so a sweep checks that nothing is grossly off (e.g. the 3% of seeds that
failed before the budget), and the derivations in the checks' docstrings do the rest.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def registry() -> dict:
    """name -> (callable(seed) -> dict | None, what it runs)."""
    import test_certify as tc
    import test_engine as te
    import test_exact as tx

    checks = {}
    for case in te.CASE_IDS:
        checks[f"closed-forms-{case}"] = (partial(te.check_closed_form, case),
                                         "test_closed_forms_d3072: 26 p_A, d = 3072, 1e5 draws")
    for case in ("gaussian-l2", "uniform-l1"):
        checks[f"coverage-rate-{case}"] = (partial(te.check_coverage_rate, case, 40),
                                           "test_coverage_rate: 40 independent radii, 1e4 draws each")
    for case in ("gaussian-l1", "laplace-l1"):
        checks[f"coverage-rate-long-{case}"] = (partial(te.check_coverage_rate, case, 400),
                                                "test_coverage_rate_long (slow): 400 radii")
    checks.update({
        "general-pa-pb": (te.check_general_pa_pb, "test_general_pa_pb_gaussian"),
        "far-tail": (te.check_far_tail, "test_tilting_reaches_far_tail"),
        "other-lp-0.5": (partial(te.check_other_lp, 0.5), "test_other_lp_gaussian[0.5]"),
        "other-lp-3": (partial(te.check_other_lp, 3.0), "test_other_lp_gaussian[3.0]"),
        "uniform-ball": (te.check_uniform_ball, "test_uniform_ball_matches_cap_formula"),
        "torch-distribution": (te.check_torch_distribution, "test_torch_distribution_noise"),
        "dense-witness": (te.check_dense_witness, "test_laplace_l2_dense_witness_beats_axis"),
        "pso": (te.check_pso, "test_pso_refinement_starts_from_sparse_family"),
    })
    for name in tx.MC_FAMILIES:
        checks[f"exact-monte-carlo-{name}"] = (partial(tx.check_monte_carlo, name, 10_000),
                                              f"test_fft_path_against_monte_carlo[{name}]")
    for case in tc.IDS:
        checks[f"certify-half-space-{case}"] = (partial(tc.check_half_space, case),
                                                f"test_half_space[{case}] (tests/test_certify.py), one seed")
    return checks


def _run_one(name: str, seed: int):
    import torch

    torch.set_num_threads(1)
    check, _ = registry()[name]
    start = time.perf_counter()
    try:
        info = check(seed=seed)
        return seed, "ok", info or {}, time.perf_counter() - start
    except AssertionError as exc:
        return seed, "fail", {"message": (str(exc) or repr(exc))[:300]}, time.perf_counter() - start
    except Exception:  # noqa: BLE001 - an error is reported, not counted as a failure
        return seed, "error", {"message": traceback.format_exc(limit=3)[-600:]}, time.perf_counter() - start


def summarise(name: str, results: list, elapsed: float) -> None:
    from tests.budget import FAILURE_RATE, clopper_pearson_upper

    runs = [r for r in results if r[1] != "error"]
    fails = [r for r in runs if r[1] == "fail"]
    errors = [r for r in results if r[1] == "error"]
    n, k = len(runs), len(fails)
    print(f"\n{name}: {k} failures in {n} seeds (rate {k / max(n, 1):.4f}); "
          f"95% Clopper-Pearson upper bound {clopper_pearson_upper(k, n) if n else math.nan:.4f} "
          f"(budget {FAILURE_RATE:g} per test); {len(errors)} errors; "
          f"{elapsed:.0f} s wall, {sum(r[3] for r in results) / max(len(results), 1):.1f} s per seed")
    for seed, _, info, _ in fails:
        print(f"  FAIL seed {seed}: {info['message']}")
    for seed, _, info, _ in errors[:3]:
        print(f"  ERROR seed {seed}: {info['message']}")
    keys = sorted({key for r in runs if r[1] == "ok" for key, v in r[2].items() if isinstance(v, (int, float))})
    for key in keys:
        values = sorted(float(r[2][key]) for r in runs if r[1] == "ok" and key in r[2])
        mid = values[len(values) // 2]
        print(f"  {key:28s} min {values[0]:.4g}  median {mid:.4g}  max {values[-1]:.4g}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", nargs="?", help="which check (see --list)")
    parser.add_argument("--seeds", type=int, default=200, help="number of seeds (default 200)")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--jsonl", type=Path, help="also write one JSON line per seed (status, diagnostics) here")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    checks = registry()
    if args.list or not args.check:
        for key, (_, what) in checks.items():
            print(f"{key:36s} {what}")
        return 0
    if args.check not in checks:
        print(f"unknown check {args.check!r}; see --list", file=sys.stderr)
        return 2
    seeds = range(args.start, args.start + args.seeds)
    start = time.perf_counter()
    results = []
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(args.jobs) as pool:
            for r in pool.map(_run_one, [args.check] * len(seeds), seeds):
                results.append(r)
                print(f"seed {r[0]}: {r[1]} ({r[3]:.1f} s)", flush=True)
    else:
        for seed in seeds:
            r = _run_one(args.check, seed)
            results.append(r)
            print(f"seed {r[0]}: {r[1]} ({r[3]:.1f} s)", flush=True)
    summarise(args.check, results, time.perf_counter() - start)
    if args.jsonl:
        import json
        with open(args.jsonl, "w") as f:
            for seed, status, info, seconds in results:
                f.write(json.dumps({"check": args.check, "seed": seed, "status": status, "seconds": seconds,
                                    **{k: (float(v) if isinstance(v, (int, float)) else str(v))
                                       for k, v in info.items()}}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
