"""
tinygpt: a small byte-level GPT trained on the Python standard library's source.

This is the file the research agent edits. Hyperparameters are the top-level
constants below; there are no command-line flags. The run trains for
TIME_BUDGET seconds of training time (from prepare.py / the
AUTORESEARCH_TIME_BUDGET environment variable), then evaluates val_bpb
(bits per byte on a fixed validation subset, lower is better) and prints the
summary block.
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

from prepare import MAX_SEQ_LEN, TIME_BUDGET, VOCAB_SIZE, BatchSampler, evaluate_bpb, load_splits

# ---------------------------------------------------------------------------
# Hyperparameters (edit these)
# ---------------------------------------------------------------------------

# Model
DEPTH = 2               # number of transformer blocks
N_EMBD = 64             # model width
N_HEAD = 4              # attention heads (must divide N_EMBD)
MLP_RATIO = 4           # MLP hidden width = MLP_RATIO * N_EMBD
SEQ_LEN = 128           # context length (<= MAX_SEQ_LEN in prepare.py)
ACTIVATION = "gelu"     # one of "gelu", "relu", "silu"
DROPOUT = 0.0
TIE_EMBEDDINGS = False  # share the token embedding with the output layer

# Optimisation
LEARNING_RATE = 3e-4    # peak AdamW learning rate
ADAM_BETAS = (0.9, 0.95)
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0         # max grad norm (0 disables)
WARMUP_STEPS = 10       # linear warm-up, in optimiser steps
WARMDOWN_RATIO = 0.2    # fraction of the time budget spent decaying the LR
FINAL_LR_FRAC = 0.1     # LR at the end, as a fraction of the peak
DEVICE_BATCH_SIZE = 16  # sequences per micro-batch; reduce if OOM
EVAL_BATCH_SIZE = 2**5

SEED = 42

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
BATCH_SIZE = max(1, int(round(DEVICE_BATCH_SIZE * BATCH_SCALE)))
WARMUP_EXCLUDE = 10     # steps <= this are start-up/compilation: not counted in the budget
# "wall" (default, as in the reference): the budget is wall-clock training time.
# "cpu": on the CPU device, count the process's CPU time instead, so that other
# programs competing for the cores slow the run down without shrinking it.
BUDGET_CLOCK = os.environ.get("AUTORESEARCH_BUDGET_CLOCK", "wall").strip().lower()
budget_clock = time.process_time if (BUDGET_CLOCK == "cpu" and DEVICE == "cpu") else time.time

torch.manual_seed(SEED)
if DEVICE == "cpu":
    # A model this small gains little from intra-op threads, and a thread per
    # core makes step times collapse when anything else uses the machine, so
    # use half the cores (1 on a 2-core box, at most 4) unless told otherwise.
    _threads = os.environ.get("AUTORESEARCH_NUM_THREADS")
    torch.set_num_threads(int(_threads) if _threads else max(1, min(4, (os.cpu_count() or 2) // 2)))
if DEVICE == "cuda":
    torch.cuda.manual_seed_all(SEED)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
AMP_DTYPE = torch.bfloat16 if DEVICE == "cuda" else None

# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


class CausalSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        assert N_EMBD % N_HEAD == 0, "N_HEAD must divide N_EMBD"
        self.qkv = nn.Linear(N_EMBD, 3 * N_EMBD)
        self.proj = nn.Linear(N_EMBD, N_EMBD)
        self.proj.is_residual = True

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        k = k.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        v = v.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=DROPOUT if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        if ACTIVATION not in _ACTIVATIONS:
            raise ValueError(f"ACTIVATION must be one of {sorted(_ACTIVATIONS)}, not {ACTIVATION!r}")
        self.fc = nn.Linear(N_EMBD, MLP_RATIO * N_EMBD)
        self.act = _ACTIVATIONS[ACTIVATION]()
        self.proj = nn.Linear(MLP_RATIO * N_EMBD, N_EMBD)
        self.proj.is_residual = True
        self.drop = nn.Dropout(DROPOUT)

    def forward(self, x):
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(N_EMBD)
        self.attn = CausalSelfAttention()
        self.ln2 = nn.LayerNorm(N_EMBD)
        self.mlp = MLP()

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(VOCAB_SIZE, N_EMBD)
        self.pos_emb = nn.Embedding(SEQ_LEN, N_EMBD)
        self.drop = nn.Dropout(DROPOUT)
        self.blocks = nn.ModuleList([Block() for _ in range(DEPTH)])
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, VOCAB_SIZE, bias=False)
        if TIE_EMBEDDINGS:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            std = 0.02 / math.sqrt(2 * DEPTH) if getattr(m, "is_residual", False) else 0.02
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def lr_multiplier(step: int, progress: float) -> float:
    """Linear warm-up over WARMUP_STEPS, flat, then linear warm-down over the
    last WARMDOWN_RATIO of the time budget to FINAL_LR_FRAC."""
    if WARMUP_STEPS > 0 and step < WARMUP_STEPS:
        return (step + 1) / WARMUP_STEPS
    if WARMDOWN_RATIO <= 0 or progress < 1.0 - WARMDOWN_RATIO:
        return 1.0
    frac = min(1.0, (progress - (1.0 - WARMDOWN_RATIO)) / WARMDOWN_RATIO)
    return 1.0 + frac * (FINAL_LR_FRAC - 1.0)


# ---------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------

assert SEQ_LEN <= MAX_SEQ_LEN, f"SEQ_LEN must be <= {MAX_SEQ_LEN}"
train_data, val_data = load_splits()
loader = BatchSampler(train_data, BATCH_SIZE, SEQ_LEN, DEVICE, seed=SEED)

model = GPT().to(DEVICE)
num_params = sum(p.numel() for p in model.parameters())
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
    lr=LEARNING_RATE, betas=ADAM_BETAS,
)
train_model = torch.compile(model) if COMPILE else model

tokens_per_step = BATCH_SIZE * SEQ_LEN * GRAD_ACCUM
# Rough FLOPs per token (forward + backward): 6 * params + attention.
flops_per_token = 6 * num_params + 12 * DEPTH * N_EMBD * SEQ_LEN
print(f"device: {DEVICE} | compile: {int(COMPILE)} | params: {num_params:,} | "
      f"batch: {BATCH_SIZE}x{SEQ_LEN}x{GRAD_ACCUM} | time budget: {TIME_BUDGET:g}s", flush=True)


def autocast():
    if AMP_DTYPE is None:
        return torch.autocast(device_type="cpu", enabled=False)
    return torch.autocast(device_type=DEVICE, dtype=AMP_DTYPE)


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
train_model.train()
while True:
    sync()
    t0 = time.time()
    c0 = budget_clock()
    progress = min(1.0, total_training_time / TIME_BUDGET) if TIME_BUDGET > 0 else 1.0
    lrm = lr_multiplier(step, progress)
    for group in optimizer.param_groups:
        group["lr"] = LEARNING_RATE * lrm

    loss_sum = 0.0
    for _ in range(GRAD_ACCUM):
        x, y = loader.next_batch()
        with autocast():
            logits = train_model(x)
            loss = F.cross_entropy(logits.float().view(-1, VOCAB_SIZE), y.reshape(-1))
        (loss / GRAD_ACCUM).backward()
        loss_sum += loss.detach()
    if GRAD_CLIP > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
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
    smooth_loss = train_loss if smooth_loss is None else 0.9 * smooth_loss + 0.1 * train_loss
    done = step > WARMUP_EXCLUDE and total_training_time >= TIME_BUDGET

    now = time.time()
    if done or now - last_print >= 0.1:
        last_print = now
        pct = 100.0 * min(1.0, total_training_time / TIME_BUDGET) if TIME_BUDGET > 0 else 100.0
        tok_sec = int(tokens_per_step / dt) if dt > 0 else 0
        remaining = max(0.0, TIME_BUDGET - total_training_time)
        print(f"\rstep {step:05d} ({pct:.1f}%) | loss: {smooth_loss:.6f} | lrm: {lrm:.2f} | "
              f"dt: {dt * 1000:.0f}ms | tok/sec: {tok_sec:,} | epoch: {loader.epoch} | "
              f"remaining: {remaining:.0f}s    ", end="", flush=True)
    if done:
        break

print(flush=True)

# ---------------------------------------------------------------------------
# Evaluation and summary
# ---------------------------------------------------------------------------

with autocast():
    val_bpb = evaluate_bpb(model, seq_len=SEQ_LEN, batch_size=EVAL_BATCH_SIZE, device=DEVICE, val=val_data)

total_tokens = step * tokens_per_step
peak_vram_mb = torch.cuda.max_memory_allocated() / 1024 / 1024 if DEVICE == "cuda" else 0.0
mfu = 0.0
if DEVICE == "cuda" and total_training_time > 0:
    steps_counted = max(1, step - WARMUP_EXCLUDE)
    achieved = flops_per_token * tokens_per_step * steps_counted / total_training_time
    mfu = 100.0 * achieved / 989.5e12  # H100 bf16 dense peak, as in the reference
t_end = time.time()

print("---")
print(f"val_bpb:          {val_bpb:.6f}")
print(f"training_seconds: {total_training_time:.1f}")
print(f"total_seconds:    {t_end - t_start:.1f}")
print(f"peak_vram_mb:     {peak_vram_mb:.1f}")
print(f"mfu_percent:      {mfu:.2f}")
print(f"total_tokens_M:   {total_tokens / 1e6:.1f}")
print(f"num_steps:        {step}")
print(f"num_params_M:     {num_params / 1e6:.3f}")
print(f"depth:            {DEPTH}")
