"""The proposer on real-world source text: nanoGPT-style lowercase globals, a config file made
only of assignments, divisibility assertions, crashes and string values the script rejects."""

from __future__ import annotations

import asyncio
from pathlib import Path

from autoresearch_tui.agents.base import Attempt, ProposalContext
from autoresearch_tui.agents.builtin import BuiltinProposer
from autoresearch_tui.agents.constants import (
    compute_names,
    divisibility,
    evaluation_names,
    find_constants,
    trains_by_iterations,
)

ROOT = Path(__file__).resolve().parents[1]

# The head of a popular public GPT training script, as users have it.
TRAIN = '''import os
import time
import math
import torch
from model import GPTConfig, GPT

# default config values
# I/O
out_dir = 'out'
eval_interval = 2000
log_interval = 1
eval_iters = 200
eval_only = False # if True, script exits right after the first eval
always_save_checkpoint = True # if True, always save a checkpoint after each eval
init_from = 'scratch' # 'scratch' or 'resume' or 'gpt2*'
wandb_log = False # disabled by default
wandb_project = 'owt'
dataset = 'openwebtext'
gradient_accumulation_steps = 5 * 8 # used to simulate larger batch sizes
batch_size = 12
block_size = 1024
# model
n_layer = 12
n_head = 12
n_embd = 768
dropout = 0.0 # for pretraining 0 is good, for finetuning try 0.1+
bias = False # do we use bias inside LayerNorm and Linear layers?
# adamw optimizer
learning_rate = 6e-4 # max learning rate
max_iters = 600000 # total number of training iterations
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0 # clip gradients at this value, or disable if == 0.0
decay_lr = True # whether to decay the learning rate
warmup_iters = 2000 # how many steps to warm up for
lr_decay_iters = 600000 # should be ~= max_iters per Chinchilla
min_lr = 6e-5 # minimum learning rate
backend = 'nccl' # 'nccl', 'gloo', etc.
device = 'cuda'
dtype = 'bfloat16' if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else 'float16'
compile = True # use PyTorch 2.0 to compile the model to be faster
config_keys = [k for k,v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str))]
exec(open('configurator.py').read()) # overrides from command line or config file
ddp = int(os.environ.get('RANK', -1)) != -1
if ddp:
    gradient_accumulation_steps //= 8
iter_num = 0
best_val_loss = 1e9

def get_lr(it):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * decay_ratio)) * (learning_rate - min_lr)

while True:
    lr = get_lr(iter_num) if decay_lr else learning_rate
    if iter_num % eval_interval == 0:
        best_val_loss = min(best_val_loss, 1.0)
    iter_num += 1
    if iter_num > max_iters:
        break
'''

MODEL = '''import torch.nn as nn

class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
'''

CONFIG = '''# train a miniature character-level shakespeare model
out_dir = 'out-shakespeare-char'
eval_interval = 250 # keep frequent because we'll overfit
eval_iters = 200
log_interval = 10
always_save_checkpoint = False
wandb_log = False
dataset = 'shakespeare_char'
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256 # context of up to 256 previous characters
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2
learning_rate = 1e-3 # with baby networks can afford to go a bit higher
max_iters = 5000
lr_decay_iters = 5000 # make equal to max_iters usually
min_lr = 1e-4 # learning_rate / 10 usually
beta2 = 0.99 # make a bit bigger because number of tokens per iter is small
warmup_iters = 100 # not super necessary potentially
'''

NEVER = {"out_dir", "eval_interval", "log_interval", "eval_iters", "eval_only", "always_save_checkpoint",
         "init_from", "wandb_log", "wandb_project", "dataset", "backend", "device", "dtype", "compile"}
COMPUTE = {"batch_size", "block_size", "max_iters", "warmup_iters", "lr_decay_iters"}


def ctx(source: str, history=(), project: Path | None = None, train_path: str = "train.py", **kw) -> ProposalContext:
    args = dict(iteration=len(history), train_path=train_path, train_source=source, readonly_source=None,
                metric="val_loss", direction="min", scope="all", history=tuple(history), best=None,
                project=str(project or ""))
    return ProposalContext(**{**args, **kw})


def names(c: ProposalContext) -> set[str]:
    return {k.name for k in BuiltinProposer().candidates(c)}


def propose(c: ProposalContext):
    return asyncio.run(BuiltinProposer().propose(c))


def base() -> list[Attempt]:
    return [Attempt(0, "b", "keep", 1.0, "baseline", {})]


def attempt(n: int, p, status: str) -> Attempt:
    return Attempt(n, f"{n:07d}", status, None if status == "crash" else 2.0, p.description, p.meta)


def test_lowercase_globals_are_knobs_and_loop_state_is_not():
    found = {c.name for c in find_constants(TRAIN)}
    assert {"learning_rate", "n_layer", "n_head", "n_embd", "dropout", "bias", "beta1", "beta2",
            "grad_clip", "decay_lr", "min_lr", "weight_decay"} <= found
    # rebound in the loop or under `if ddp:`: state, not constants; `dtype` is not a literal
    assert not {"iter_num", "best_val_loss", "gradient_accumulation_steps", "dtype", "config_keys"} & found


def test_iteration_count_project_holds_compute_and_never_touches_evaluation():
    assert trains_by_iterations(TRAIN)
    assert compute_names(TRAIN) == COMPUTE
    assert {"eval_interval", "eval_iters", "eval_only", "dataset"} <= evaluation_names(TRAIN)
    knobs = names(ctx(TRAIN))
    assert not knobs & (NEVER | COMPUTE)
    assert {"learning_rate", "n_layer", "n_head", "n_embd", "dropout", "beta2", "min_lr"} <= knobs
    # named in `vary`, a compute constant may change; a category does not unlock it
    assert names(ctx(TRAIN, vary=("max_iters", "learning_rate"))) == {"max_iters", "learning_rate"}
    assert "batch_size" not in names(ctx(TRAIN, vary=("hyperparameters",)))


def test_time_budgeted_samples_are_not_iteration_count_projects():
    for sample in ("spirals", "tinygpt"):
        source = (ROOT / "sample_projects" / sample / "train.py").read_text()
        assert not trains_by_iterations(source), sample
    spirals = (ROOT / "sample_projects" / "spirals" / "train.py").read_text()
    assert {"MAX_STEPS", "BATCH_SIZE"} <= names(ctx(spirals))  # the clock holds compute fixed
    assert not {"SEED", "WARMUP_EXCLUDE"} & names(ctx(spirals))


def test_a_config_file_of_assignments_is_the_editable_file(tmp_path: Path):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "config").mkdir()
    c = ctx(CONFIG, project=tmp_path, train_path="config/train_shakespeare_char.py")
    knobs = names(c)
    assert knobs == {"n_layer", "n_head", "n_embd", "dropout", "learning_rate", "min_lr", "beta2"}
    seen = set()
    history = base()
    for n in range(1, 25):
        p = propose(ctx(CONFIG, history, project=tmp_path, train_path="config/train_shakespeare_char.py"))
        v = {k.name: k.value for k in find_constants(p.new_source)}
        assert v["n_embd"] % v["n_head"] == 0, p.description  # the model's assertion holds
        seen.add(p.meta["constant"])
        history.append(attempt(n, p, "discard"))
    assert {"n_head", "n_embd"} <= seen


def test_divisibility_steps():
    assert ("n_embd", "n_head") in divisibility(MODEL)
    source = "N_EMBD = 384\nN_HEAD = 6\nBLOCK_SIZE = 64\nSEQ_LEN = 256\nassert N_EMBD % N_HEAD == 0\n"
    heads, widths, blocks = set(), set(), set()
    history = base()
    for n in range(1, 16):
        p = propose(ctx(source, history))
        {"N_HEAD": heads, "N_EMBD": widths, "BLOCK_SIZE": blocks, "SEQ_LEN": blocks}[p.meta["constant"]].add(p.meta["new"])
        history.append(attempt(n, p, "discard"))
    assert heads and all(384 % h == 0 for h in heads)  # among the divisors of the width
    assert widths and all(w % 6 == 0 and w / 384 in (0.25, 0.5, 2, 4) for w in widths)
    assert blocks and all(b & (b - 1) == 0 for b in blocks)  # never 65: powers of two only
    # no assertion: a head count still keeps dividing the width
    history = base()
    for n in range(1, 5):
        p = propose(ctx("n_embd = 96\nn_head = 4\n", history, vary=("n_head",)))
        assert 96 % p.meta["new"] == 0
        history.append(attempt(n, p, "discard"))


def test_no_value_past_a_crash_in_the_same_direction():
    source = "n_layer = 6\nlearning_rate = 1e-3\n"
    history = base()
    up = propose(ctx(source, history, vary=("n_layer",)))
    assert up.meta["new"] == 7
    history.append(attempt(1, up, "crash"))
    for n in range(2, 8):
        try:
            p = propose(ctx(source, history, vary=("n_layer",)))
        except Exception:
            break
        assert p.meta["new"] < 7, p.description  # 8 would crash too: only downwards now
        history.append(attempt(n, p, "discard"))
    # after a keep elsewhere the ban still holds from the new base
    kept = Attempt(9, "k", "keep", 0.5, "n_layer 6 -> 5", {"constant": "n_layer", "old": 6, "new": 5})
    p = propose(ctx(source.replace("6", "5"), history + [kept], vary=("n_layer",)))
    assert p.meta["new"] < 7


def test_string_values_the_script_does_not_name():
    spirals = (ROOT / "sample_projects" / "spirals" / "train.py").read_text()
    history = base()
    for n in range(1, 6):
        try:
            p = propose(ctx(spirals, history, vary=("ACTIVATION",)))
        except Exception:
            break
        assert p.meta["new"] in ("tanh", "gelu", "silu")  # what the script lists; never relu2
        history.append(attempt(n, p, "discard"))
    # a script that names no alternative: each unnamed value at most once, none after a crash
    source = 'ACTIVATION = "gelu"\nLR = 0.1\n'
    history = base()
    first = propose(ctx(source, history, vary=("ACTIVATION",)))
    history.append(attempt(1, first, "crash"))
    try:
        again = propose(ctx(source, history, vary=("ACTIVATION",)))
    except Exception as exc:
        assert "exhausted" in str(exc)
    else:
        raise AssertionError(f"proposed {again.description} after an unnamed value crashed")


def test_a_constant_with_its_gate_off_is_not_proposed():
    spirals = (ROOT / "sample_projects" / "spirals" / "train.py").read_text()
    assert "FINAL_LR_FRAC" not in names(ctx(spirals))  # WARMDOWN_RATIO = 0: no effect alone
    on = spirals.replace("WARMDOWN_RATIO = 0.0 ", "WARMDOWN_RATIO = 0.2 ")
    assert "FINAL_LR_FRAC" in names(ctx(on))
    assert "min_lr" not in names(ctx(TRAIN.replace("decay_lr = True", "decay_lr = False")))
