"""Audit harness set-up: one torch thread per test.

Cases are independent and seeded, so ``pytest audits -n auto`` spreads them over cores; with one
thread per worker the workers do not oversubscribe the CPU (on a 2-core machine, 2 threads per
process under load made a curve 5x slower). The previous setting is restored after each test.
"""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
