"""Test-wide settings: one torch thread per pytest-xdist worker (two workers on two cores would
otherwise oversubscribe the CPU and slow small tensor operations many times over)."""
import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
