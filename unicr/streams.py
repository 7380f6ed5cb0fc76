"""Named random streams: one seed, one independent stream per purpose.

Every Monte Carlo draw of the engine comes from a generator keyed by (seed, purpose, chunk):
``numpy.random.SeedSequence([seed, PURPOSES[purpose], chunk])`` hashes the key into a 64-bit torch
seed, so the streams of different purposes, seeds and chunks never coincide (the pilot of seed s is
not the main stream of seed s + 1, as an additive offset would make it).

Purposes: ``main`` (the reported band), ``pilot`` (bracketing the boundary), ``search`` (screening
directions), ``witness`` (:func:`unicr.witness_margin`), ``confirm`` (the audit's confirmation of
suspect rows) and ``recheck`` (re-checking stored witnesses); for certification
(:mod:`unicr.certification`), ``select`` (CERTIFY's n0 draws that choose the class), ``estimate`` (its n
fresh draws that bound p_A) and ``predict`` (PREDICT's draws); ``tune`` (the draws on which
:func:`unicr.optimize_noise` chooses a noise, ``selection="separate"``). New purposes get new
numbers: the existing ones never change, so old seeds keep their bytes.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["PURPOSES", "generator", "check_purpose", "input_seed"]

PURPOSES = {"main": 1, "pilot": 2, "search": 3, "witness": 4, "confirm": 5, "recheck": 6,
            "select": 7, "estimate": 8, "predict": 9, "tune": 10}


def check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; allowed: {', '.join(PURPOSES)}")
    return purpose


def generator(seed: int, purpose: str, chunk: int = 0, device=None) -> torch.Generator:
    """A torch generator for chunk ``chunk`` of the ``purpose`` stream of ``seed`` (seed >= 0)."""
    words = np.random.SeedSequence([int(seed), PURPOSES[check_purpose(purpose)], int(chunk)]) \
        .generate_state(2, np.uint32)
    gen = torch.Generator(device=device if device is not None else "cpu")
    gen.manual_seed((int(words[0]) << 32) | int(words[1]))
    return gen


def input_seed(seed: int, index: int) -> int:
    """The seed of input ``index`` of a data set certified with ``seed``: a 63-bit hash of
    (seed, index), so an input's draws do not depend on which shard or order certifies it."""
    words = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return ((int(words[0]) & 0x7FFFFFFF) << 32) | int(words[1])
