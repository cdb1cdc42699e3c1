"""
spirals data preparation and evaluation.

READ-ONLY during an autoresearch loop: the agent edits train.py only.

A deterministic, noisy, three-arm 2-D spiral classification problem. The data
is generated from a fixed seed every run (it takes milliseconds), so there is
nothing to download or cache. The metric is val_acc (accuracy on the held-out
split, higher is better).

Run ``python prepare.py`` to print the dataset's stats.
"""

from __future__ import annotations

import math
import os

import torch

# ---------------------------------------------------------------------------
# Fixed constants (do not change: they define the benchmark)
# ---------------------------------------------------------------------------

TIME_BUDGET = float(os.environ.get("AUTORESEARCH_TIME_BUDGET", "5") or 5)  # seconds of training
NUM_CLASSES = 3            # spiral arms
POINTS_PER_CLASS = 1000
TURNS = 1.25               # how many times each arm winds round the centre
NOISE = 0.5                # angular noise (radians, scaled by 1/sqrt(radius))
VAL_FRACTION = 0.2
DATA_SEED = 1234
IN_FEATURES = 2


def make_spirals() -> tuple[torch.Tensor, torch.Tensor]:
    """All points (N, 2) float32 and labels (N,) int64, in a fixed order."""
    g = torch.Generator().manual_seed(DATA_SEED)
    xs, ys = [], []
    for k in range(NUM_CLASSES):
        r = torch.rand(POINTS_PER_CLASS, generator=g) * 0.95 + 0.05
        theta = 2 * math.pi * (k / NUM_CLASSES + TURNS * r)
        theta = theta + NOISE * torch.randn(POINTS_PER_CLASS, generator=g) / r.sqrt() * 0.5
        r = r + 0.02 * torch.randn(POINTS_PER_CLASS, generator=g)
        xs.append(torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1))
        ys.append(torch.full((POINTS_PER_CLASS,), k, dtype=torch.long))
    x = torch.cat(xs).float()
    y = torch.cat(ys)
    perm = torch.randperm(len(y), generator=g)
    return x[perm], y[perm]


def load_splits() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((x_train, y_train), (x_val, y_val)), identical on every call."""
    x, y = make_spirals()
    n_val = int(round(len(y) * VAL_FRACTION))
    return (x[n_val:], y[n_val:]), (x[:n_val], y[:n_val])


class BatchSampler:
    """Shuffled mini-batches from the training split, epoch by epoch, seeded."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                 device: str | torch.device = "cpu", seed: int = 0):
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device)
        self.batch_size = max(1, min(int(batch_size), len(y)))
        self.gen = torch.Generator().manual_seed(int(seed))
        self.epoch = 1
        self._perm = torch.randperm(len(y), generator=self.gen)
        self._pos = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pos + self.batch_size > len(self._perm):
            self._perm = torch.randperm(len(self.y), generator=self.gen)
            self._pos = 0
            self.epoch += 1
        idx = self._perm[self._pos:self._pos + self.batch_size].to(self.device)
        self._pos += self.batch_size
        return self.x[idx], self.y[idx]


@torch.no_grad()
def evaluate_accuracy(model, device: str | torch.device = "cpu") -> float:
    """Fraction of the validation points that ``model(x)`` (logits, (N, 3)) classifies correctly."""
    _, (x_val, y_val) = load_splits()
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        pred = model(x_val.to(device)).argmax(dim=-1).cpu()
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return float((pred == y_val).float().mean().item())


if __name__ == "__main__":
    (xt, yt), (xv, yv) = load_splits()
    print(f"train: {len(yt)} points, val: {len(yv)} points, classes: {NUM_CLASSES}")
    print(f"class counts (val): {torch.bincount(yv, minlength=NUM_CLASSES).tolist()}")
    print(f"TIME_BUDGET={TIME_BUDGET:g}")
