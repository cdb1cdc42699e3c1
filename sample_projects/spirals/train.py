"""
spirals: a small MLP classifying a noisy three-arm 2-D spiral.

This is the file the research agent edits. Hyperparameters are the top-level
constants below; there are no command-line flags. Training stops after
MAX_STEPS optimiser steps or when TIME_BUDGET seconds of training time are
spent, whichever comes first; then val_acc (higher is better) is printed in
the summary block. With the default budget the run is step-limited, so it is
deterministic on a given machine.
"""

import math
import os
import sys
import time
import warnings

t_start = time.time()
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch
import torch.nn as nn
import torch.nn.functional as F

from prepare import IN_FEATURES, NUM_CLASSES, TIME_BUDGET, BatchSampler, evaluate_accuracy, load_splits

# ---------------------------------------------------------------------------
# Hyperparameters (edit these)
# ---------------------------------------------------------------------------

# Model
HIDDEN = 16             # width of each hidden layer
DEPTH = 2               # number of hidden layers
ACTIVATION = "relu"     # one of "relu", "tanh", "gelu", "silu"

# Optimisation
LEARNING_RATE = 0.003   # peak Adam(W) learning rate
ADAM_BETAS = (0.9, 0.999)
WEIGHT_DECAY = 0.0
BATCH_SIZE = 64
MAX_STEPS = 1500        # step cap: the run stops here if the time budget lasts
WARMDOWN_RATIO = 0.0    # fraction of the run spent decaying the LR linearly
FINAL_LR_FRAC = 0.0     # LR at the end of the warm-down, as a fraction of the peak

SEED = 0

# ---------------------------------------------------------------------------
# Environment (set by autoresearch-tui; not hyperparameters)
# ---------------------------------------------------------------------------


def _pick_device() -> str:
    want = os.environ.get("AUTORESEARCH_DEVICE", "").strip().lower()
    if want:
        return want
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


DEVICE = _pick_device()
COMPILE = os.environ.get("AUTORESEARCH_COMPILE", "0").strip() == "1"
BATCH_SCALE = float(os.environ.get("AUTORESEARCH_BATCH_SCALE", "1.0") or 1.0)
GRAD_ACCUM = max(1, int(os.environ.get("AUTORESEARCH_GRAD_ACCUM", "1") or 1))
DEVICE_BATCH = max(1, int(round(BATCH_SIZE * BATCH_SCALE)))
WARMUP_EXCLUDE = 10     # steps <= this are start-up/compilation: not counted in the budget
# "wall" (default, as in the reference): the budget is wall-clock training time.
# "cpu": on the CPU device, count the process's CPU time instead, so that other
# programs competing for the cores slow the run down without shrinking it.
BUDGET_CLOCK = os.environ.get("AUTORESEARCH_BUDGET_CLOCK", "wall").strip().lower()
budget_clock = time.process_time if (BUDGET_CLOCK == "cpu" and DEVICE == "cpu") else time.time

torch.manual_seed(SEED)
if DEVICE == "cpu":
    torch.set_num_threads(int(os.environ.get("AUTORESEARCH_NUM_THREADS") or 1))

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


def build_model() -> nn.Module:
    if ACTIVATION not in _ACTIVATIONS:
        raise ValueError(f"ACTIVATION must be one of {sorted(_ACTIVATIONS)}, not {ACTIVATION!r}")
    layers: list[nn.Module] = []
    width = IN_FEATURES
    for _ in range(DEPTH):
        layers += [nn.Linear(width, HIDDEN), _ACTIVATIONS[ACTIVATION]()]
        width = HIDDEN
    layers.append(nn.Linear(width, NUM_CLASSES))
    return nn.Sequential(*layers)


def lr_multiplier(progress: float) -> float:
    if WARMDOWN_RATIO <= 0 or progress < 1.0 - WARMDOWN_RATIO:
        return 1.0
    frac = min(1.0, (progress - (1.0 - WARMDOWN_RATIO)) / WARMDOWN_RATIO)
    return 1.0 + frac * (FINAL_LR_FRAC - 1.0)


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

(x_train, y_train), _ = load_splits()
loader = BatchSampler(x_train, y_train, DEVICE_BATCH, DEVICE, seed=SEED)
model = build_model().to(DEVICE)
num_params = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, betas=ADAM_BETAS,
                              weight_decay=WEIGHT_DECAY)
train_model = torch.compile(model) if COMPILE else model
print(f"device: {DEVICE} | params: {num_params:,} | batch: {DEVICE_BATCH}x{GRAD_ACCUM} | "
      f"max steps: {MAX_STEPS} | time budget: {TIME_BUDGET:g}s", flush=True)


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    elif DEVICE == "mps":
        torch.mps.synchronize()


# ---------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------

step = 0
total_training_time = 0.0
smooth_loss = None
last_print = 0.0
samples_per_step = DEVICE_BATCH * GRAD_ACCUM
train_model.train()
while True:
    t0 = time.time()
    c0 = budget_clock()
    time_progress = total_training_time / TIME_BUDGET if TIME_BUDGET > 0 else 1.0
    progress = min(1.0, max(step / MAX_STEPS if MAX_STEPS > 0 else 0.0, time_progress))
    lrm = lr_multiplier(progress)
    for group in optimizer.param_groups:
        group["lr"] = LEARNING_RATE * lrm

    loss_sum = 0.0
    for _ in range(GRAD_ACCUM):
        x, y = loader.next_batch()
        loss = F.cross_entropy(train_model(x), y)
        (loss / GRAD_ACCUM).backward()
        loss_sum += loss.detach()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    train_loss = float(loss_sum.item()) / GRAD_ACCUM
    sync()
    dt = time.time() - t0
    budget_dt = dt if budget_clock is time.time else budget_clock() - c0
    step += 1

    if math.isnan(train_loss) or train_loss > 100:
        print("\nFAIL", flush=True)
        sys.exit(1)

    if step > WARMUP_EXCLUDE:
        total_training_time += budget_dt
    smooth_loss = train_loss if smooth_loss is None else 0.95 * smooth_loss + 0.05 * train_loss
    done = (MAX_STEPS > 0 and step >= MAX_STEPS) or (step > WARMUP_EXCLUDE and total_training_time >= TIME_BUDGET)

    now = time.time()
    if done or now - last_print >= 0.1:
        last_print = now
        time_progress = total_training_time / TIME_BUDGET if TIME_BUDGET > 0 else 1.0
        pct = 100.0 * min(1.0, max(step / MAX_STEPS if MAX_STEPS > 0 else 0.0, time_progress))
        sps = int(samples_per_step / dt) if dt > 0 else 0
        remaining = max(0.0, TIME_BUDGET - total_training_time)
        print(f"\rstep {step:05d} ({pct:.1f}%) | loss: {smooth_loss:.6f} | lrm: {lrm:.2f} | "
              f"dt: {dt * 1000:.1f}ms | samples/sec: {sps:,} | epoch: {loader.epoch} | "
              f"remaining: {remaining:.0f}s    ", end="", flush=True)
    if done:
        break

print(flush=True)

# ---------------------------------------------------------------------------
# Evaluation and summary
# ---------------------------------------------------------------------------

val_acc = evaluate_accuracy(model, device=DEVICE)
peak_vram_mb = torch.cuda.max_memory_allocated() / 1024 / 1024 if DEVICE == "cuda" else 0.0
t_end = time.time()

print("---")
print(f"val_acc:          {val_acc:.6f}")
print(f"training_seconds: {total_training_time:.1f}")
print(f"total_seconds:    {t_end - t_start:.1f}")
print(f"peak_vram_mb:     {peak_vram_mb:.1f}")
print(f"num_steps:        {step}")
print(f"num_params_M:     {num_params / 1e6:.6f}")
