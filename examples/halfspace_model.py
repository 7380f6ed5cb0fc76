"""A model and a data set with known answers, for ``python -m unicr.certify`` (docs/certify.md).

MODEL is the half-space classifier f(z) = 1[z_1 > 0] on inputs of shape (1, 2, 2), z_1 the first
pixel, as a torch module returning the logits (-z_1, z_1). For noise symmetric about 0 the smoothed
classifier predicts class 1 exactly where x_1 > 0, so the largest l_p ball around x on which it is
constant has radius |x_1| in every l_p: a sound certificate never reports more.

``python examples/halfspace_model.py`` writes examples/halfspace_data.npz: 21 inputs with first
pixels -1, -0.9, ..., 0.9, 1 (the other pixels standard normal, seed 0; float32) and labels
y = 1[x_1 > 0]. The input with x_1 = 0 is a coin flip, where CERTIFY abstains.
"""
from pathlib import Path

import numpy as np
import torch


class HalfSpace(torch.nn.Module):
    """Logits (-z_1, z_1) of a batch (B, 1, 2, 2): class 1 iff the first pixel is positive."""

    def forward(self, z):
        first = z.reshape(z.shape[0], -1)[:, 0]
        return torch.stack([-first, first], dim=1)


MODEL = HalfSpace()


def make_data(count: int = 21, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x (count, 1, 2, 2) with first pixels evenly spaced over [-1, 1], y = 1[x_1 > 0]."""
    x = np.random.default_rng(seed).standard_normal((count, 1, 2, 2)).astype(np.float32)
    x[:, 0, 0, 0] = np.linspace(-1.0, 1.0, count).round(6)
    return x, (x[:, 0, 0, 0] > 0).astype(np.int64)


if __name__ == "__main__":
    x, y = make_data()
    np.savez(Path(__file__).with_name("halfspace_data.npz"), x=x, y=y)
