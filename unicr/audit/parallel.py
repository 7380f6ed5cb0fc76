"""Run the cases of an audit in worker processes (``python -m unicr.audit --jobs N``).

Same seed, same bytes: a case computes the same numbers in a worker as in the command's own
process, because every case runs with the same number of torch CPU threads (``threads``, the
command's ``--threads``) whatever the number of workers, and the workers only compute: the reports
are rendered and written by the calling process (``done``), from results that travel back pickled
(floats and tensors exactly). The report files of different cases are independent, so the order in
which cases finish changes no byte; the audits are returned in the order of the cases.

Workers: on Linux with one thread per case they are forked, so they inherit everything the
calling process holds (certificates loaded from a plugin file, noises the plugin registered with
``unicr.register_noise``). A process forked from one whose OpenMP threads have started hangs in
its first multi-threaded torch call, so with more than one thread per case, on a GPU device or
where fork is unavailable the workers are spawned instead and plan the cases again from the
command line (``replan``: the plugins load again in each worker); a worker whose cases differ
from the caller's fails with a one-line error. Cases whose engine curve is a Monte Carlo one are
started first (the longest; see :func:`cost`). Where no worker process can be started, the cases
run in the calling process, with a one-line note.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import pickle
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from . import core

__all__ = ["default_jobs", "cost", "schedule", "start_method", "run_cases", "START_METHOD"]

#: the multiprocessing start method of the workers; None: chosen by :func:`start_method`
START_METHOD: str | None = None

_WORKER: dict = {}


def default_jobs() -> int:
    """The CPU cores this process may use (at least 1)."""
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        return max(1, count() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cost(case: core.Case, settings: core.Settings) -> int:
    """A cheap rank of a case's running time: 0 a closed-form boundary (Gaussian, uniform), 1 the
    deterministic backend (i.i.d. noise), 2 Monte Carlo."""
    noise = case.noise
    if settings.backend == "mc":
        return 2
    if getattr(noise, "closed_form", None) in ("gaussian", "uniform"):
        return 0
    return 1 if getattr(noise, "iid", False) else 2


def schedule(cases, settings: core.Settings) -> list[int]:
    """Indices of ``cases``, the most expensive first (ties in their order)."""
    return sorted(range(len(cases)), key=lambda i: -cost(cases[i], settings))


def start_method(threads: int, device=None) -> str:
    """'fork' on Linux with one thread per case on the CPU, else 'spawn' (see the module docstring)."""
    if START_METHOD is not None:
        return START_METHOD
    cpu = device is None or str(device).split(":")[0] == "cpu"
    fork = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
    return "fork" if fork and threads == 1 and cpu else "spawn"


# -- worker side ----------------------------------------------------------------------------------

def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    try:
        return pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _die_with(parent: int) -> None:
    """Linux: end this worker when the calling process dies (killed before it could stop its workers)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # died before prctl
        os._exit(1)


def _init(parent: int, threads: int, cases, settings, replan, argv, labels) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller, which stops the workers
    _die_with(parent)
    torch.set_num_threads(threads)
    _WORKER.clear()
    if cases is None:
        try:
            cases, settings = replan(argv)
            if [c.label for c in cases] != labels:
                raise ValueError("the cases planned in a worker process differ from the command's (a plugin "
                                 "that defines different certificates each time it loads?); rerun with --jobs 1")
        except Exception as exc:
            _WORKER["error"] = _portable(exc)
            return
    _WORKER.update(cases=cases, settings=settings)


def _task(index: int) -> bytes:
    """Run case ``index``: pickled (index, seconds, audit without its case and settings, error)."""
    start = time.perf_counter()
    audit, error = None, _WORKER.get("error")
    if error is None:
        try:
            audit = core.run(_WORKER["cases"][index], _WORKER["settings"])
            audit = dataclasses.replace(audit, case=None, settings=None)
        except Exception as exc:
            error = _portable(exc)
    seconds = time.perf_counter() - start
    try:
        return pickle.dumps((index, seconds, audit, error))
    except Exception as exc:
        return pickle.dumps((index, seconds, None, _portable(exc)))


# -- caller side ----------------------------------------------------------------------------------

def _serial(cases, settings, threads, done) -> list[core.Audit]:
    import torch

    torch.set_num_threads(threads)
    audits = []
    for case in cases:
        start = time.perf_counter()
        audit = core.run(case, settings)
        done(audit, time.perf_counter() - start)
        audits.append(audit)
    return audits


def _stop(executor: ProcessPoolExecutor) -> None:
    """Terminate the workers now (running cases are dropped)."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)


def run_cases(cases, settings: core.Settings, *, jobs: int, threads: int = 1, done, replan=None,
              argv=None) -> list[core.Audit]:
    """Run every case, in ``jobs`` worker processes (1: in this process) with ``threads`` torch CPU
    threads each, and return the audits in the order of ``cases``.

    ``done(audit, seconds)`` runs in this process as each case finishes (in the order they finish),
    e.g. to write its report; an exception there, or in a case, stops the workers and propagates
    (a case's own exception as it was raised in the worker). ``replan(argv)`` returns
    (cases, settings) for spawned workers (see the module docstring).
    """
    cases = list(cases)
    jobs = min(int(jobs), len(cases))
    if jobs <= 1:
        return _serial(cases, settings, threads, done)
    method = start_method(threads, settings.device)
    if method == "fork":
        initargs = (os.getpid(), threads, cases, settings, None, None, None)
    elif replan is None:
        raise ValueError(f"worker processes started with {method!r} need the command line to plan the cases")
    else:
        initargs = (os.getpid(), threads, None, None, replan, list(argv), [c.label for c in cases])
    executor = None
    try:
        executor = ProcessPoolExecutor(jobs, multiprocessing.get_context(method), initializer=_init,
                                       initargs=initargs)
        pending = {executor.submit(_task, i) for i in schedule(cases, settings)}
    except (OSError, ValueError, ImportError, NotImplementedError, RuntimeError) as exc:
        if executor is not None:
            _stop(executor)
        print(f"note: --jobs {jobs}: cannot start worker processes ({' '.join(str(exc).split()) or type(exc).__name__}); "
              "running the cases one after the other", file=sys.stderr)
        return _serial(cases, settings, threads, done)
    audits: dict[int, core.Audit] = {}
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                try:
                    index, seconds, audit, error = pickle.loads(future.result())
                except BrokenProcessPool:
                    raise RuntimeError("a worker process died (killed, e.g. out of memory?); rerun with "
                                       "--jobs 1 to run the cases in one process") from None
                if error is not None:
                    raise error
                audit = dataclasses.replace(audit, case=cases[index], settings=settings)
                done(audit, seconds)
                audits[index] = audit
    except BaseException:
        _stop(executor)
        raise
    executor.shutdown(wait=True)
    return [audits[i] for i in range(len(cases))]
