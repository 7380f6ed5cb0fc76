"""Test-wide settings: one torch thread per test process.

Cases are independent and seeded, so ``pytest -n auto`` spreads them over cores; with one thread
per worker the workers do not oversubscribe the CPU (on this 2-core machine, 2 threads per process
under load made a curve about 5x slower)."""
import torch

torch.set_num_threads(1)
