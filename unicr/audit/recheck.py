"""Independent re-check of stored witnesses (``python -m unicr.audit --recheck FILE.json``).

A witness is a perturbation delta = scale * v with K(delta) <= 0 claimed at some (p_A, p_B); if it
holds, no radius above ||delta||_p is sound there. FILE may be

- a case's JSON summary (``OUT/<certificate>/<...>.json``): every row that carries a witness;
- the ``--json`` output of a run: a list of such summaries;
- a single witness file: ``{"noise": {"family", "sigma" or "scale", "dim", "shape"}, "p_a": ..., "p_b": ... (optional),
  "witness": {...}}`` (optionally ``certificate``, ``norm``, ``claimed``, ``samples``, ``seed``).

Each witness is re-evaluated with :func:`unicr.witness_margin` on its own random stream
(``recheck`` of the audit's seed, independent of the audit's and the confirmation's streams), ``CONFIRM_FACTOR`` times the audit's draws (or ``samples``), the
deterministic backend where it applies (``backend="auto"``), at the Bonferroni level
1 - (1 - c)/m over the m witnesses of the file. It *holds* when the upper end of K is <= 0.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..noises import noise as make_noise
from ..radius import witness_margin
from .core import engine_backend, margin_record
from .verdicts import CONFIRM_FACTOR, confirmation_level

__all__ = ["DEFAULT_WITNESS_SAMPLES", "witnesses", "recheck"]

#: draws for a single witness file that records no sample size
DEFAULT_WITNESS_SAMPLES = 1_000_000


def _entry(source: dict, noise: dict, p_a, p_b, witness: dict, claimed, samples, seed, confidence) -> dict:
    return {"certificate": source.get("certificate", ""), "lp": source.get("norm", witness.get("p", "")),
            "noise": noise, "p_a": float(p_a), "p_b": None if p_b is None else float(p_b),
            "witness": witness, "claimed": None if claimed is None else float(claimed),
            "samples": samples, "seed": seed, "confidence": confidence}


def witnesses(data) -> list[dict]:
    """The witnesses held by a parsed JSON document (see the module docstring for the forms)."""
    docs = data if isinstance(data, list) else [data]
    found = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise ValueError("recheck file must hold a JSON object or a list of objects")
        if "rows" in doc:
            s = doc.get("settings", {})
            samples = CONFIRM_FACTOR * int(s["samples"]) if "samples" in s else DEFAULT_WITNESS_SAMPLES
            for row in doc["rows"]:
                if isinstance(row, dict) and row.get("witness"):
                    found.append(_entry(doc, doc["noise"], row["p_a"], row.get("p_b"), row["witness"],
                                        row.get("claimed"), samples, int(s.get("seed", 0)),
                                        float(s.get("confidence", 0.99))))
        elif "witness" in doc:
            found.append(_entry(doc, doc["noise"], doc["p_a"], doc.get("p_b"), doc["witness"], doc.get("claimed"),
                                int(doc.get("samples", DEFAULT_WITNESS_SAMPLES)), int(doc.get("seed", 0)),
                                float(doc.get("confidence", 0.99))))
        else:
            raise ValueError("recheck file must be an audit summary (with 'rows'), a list of them, or a "
                             "witness file (with 'noise', 'p_a' and 'witness')")
    return found


def recheck(path, *, samples: int | None = None, backend: str = "auto", device=None) -> list[dict]:
    """Re-evaluate every witness in the JSON file ``path``; one result dict per witness."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read recheck file {str(path)!r}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"recheck file {str(path)!r} is not valid JSON: {exc}") from None
    try:
        entries = witnesses(data)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"recheck file {str(path)!r} is malformed: missing or invalid {exc}") from None
    backend, _ = engine_backend(backend)
    results = []
    for e in entries:
        spec = e["noise"]
        try:
            scale = {} if spec.get("scale") is None else {"scale": spec["scale"]}  # a noise without a variance
            noise = make_noise(spec["family"], sigma=spec.get("sigma"), dim=int(spec["dim"]), **spec.get("shape", {}),
                               **scale)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"recheck file {str(path)!r}: malformed noise {spec!r} ({exc})") from None
        level = confirmation_level(e["confidence"], len(entries))
        n = int(samples) if samples is not None else e["samples"]
        margin = witness_margin(noise, e["witness"], e["p_a"], e["p_b"], samples=n,
                                seed=e["seed"], stream="recheck", device=device, confidence=level,
                                backend=backend)
        results.append({"certificate": e["certificate"], "lp": e["lp"], "noise": noise.describe(),
                        "p_a": e["p_a"], "claimed": e["claimed"], **margin_record(margin, level)})
    return results
