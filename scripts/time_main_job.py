"""Time the main job, ``python -m unicr.audit --all`` with default settings, against the calibration.

    python scripts/time_main_job.py [--out results/main_job_timing.json] [-- extra audit options]

Runs the calibration workload of audits/test_benchmarks.py, then the main job in a child process
(its reports go to a temporary directory), then the calibration again, and writes a JSON with the
wall-clock seconds, the child's peak resident memory (ru_maxrss of the children: the largest
single process, the main one or a worker), the calibration seconds before and after, and the ratio
of the main job to their mean, so that the figure can be compared across machines and loads.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed_calibration() -> float:
    import torch
    from audits.test_benchmarks import calibration
    torch.set_num_threads(1)
    start = time.perf_counter()
    calibration()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "results" / "main_job_timing.json"))
    parser.add_argument("extra", nargs="*", help="extra options of the audit command (after --)")
    args = parser.parse_args(argv)
    import torch
    load = os.getloadavg()[0]
    before = timed_calibration()
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "unicr.audit", "--all", "--out", tmp, *args.extra]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    after = timed_calibration()
    calibration = 0.5 * (before + after)
    record = {
        "command": " ".join(["python -m unicr.audit --all", *args.extra]),
        "wall_seconds": round(wall, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "calibration_seconds": [round(before, 3), round(after, 3)],
        "ratio_to_calibration": round(wall / calibration, 1),
        "cases": sum(1 for line in done.stderr.splitlines() if line.startswith("[")),
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_before": load},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
