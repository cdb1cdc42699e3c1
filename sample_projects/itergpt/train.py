"""
itergpt: a tiny byte-level GPT trained for a fixed number of iterations (nanoGPT style).

Configuration is module-level globals below, overridden by config files and --key=value
flags through configurator.py:

    python train.py config/train_default.py --learning_rate=2e-3

Trains for max_iters iterations (not for a time budget), evaluates every eval_interval steps
(`step N: train loss X, val loss Y`), saves a checkpoint in out_dir and prints `val_loss: X`,
the mean cross-entropy (nats) on a fixed, seeded set of validation windows.
"""
import math
import os
import sys
import time

import torch

from model import GPT, GPTConfig

# -----------------------------------------------------------------------------
# default config values
out_dir = 'out'
eval_interval = 50
log_interval = 10
eval_iters = 8
always_save_checkpoint = False
# data
dataset = 'stdlib_char'
gradient_accumulation_steps = 1
batch_size = 8
block_size = 32
# model
n_layer = 2
n_head = 2
n_embd = 32
dropout = 0.0
# adamw optimizer
learning_rate = 6e-4
max_iters = 100
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0
# learning rate decay settings
decay_lr = True
warmup_iters = 10
lr_decay_iters = 100
min_lr = 6e-5
# system
device = 'cpu'
seed = 1337
final_eval_batches = 16   # fixed-size final evaluation: part of the metric, not a hyperparameter
# -----------------------------------------------------------------------------
config_keys = [k for k, v in globals().items() if not k.startswith('_') and isinstance(v, (int, float, bool, str))]
exec(open('configurator.py').read())  # overrides from command line or config file
config = {k: globals()[k] for k in config_keys}
# -----------------------------------------------------------------------------

t0 = time.time()
torch.manual_seed(seed)
torch.set_num_threads(1)  # deterministic and CPU-fast on a shared machine

data_dir = os.path.join('data', dataset)
if not os.path.exists(os.path.join(data_dir, 'val.bin')):
    sys.path.insert(0, data_dir)
    import prepare
    prepare.build()
train_data = torch.frombuffer(bytearray(open(os.path.join(data_dir, 'train.bin'), 'rb').read()), dtype=torch.uint8)
val_data = torch.frombuffer(bytearray(open(os.path.join(data_dir, 'val.bin'), 'rb').read()), dtype=torch.uint8)


def get_batch(split, generator=None, size=None):
    data = train_data if split == 'train' else val_data
    ix = torch.randint(len(data) - block_size - 1, (size or batch_size,), generator=generator)
    x = torch.stack([data[i:i + block_size].long() for i in ix])
    y = torch.stack([data[i + 1:i + 1 + block_size].long() for i in ix])
    return x.to(device), y.to(device)


model = GPT(GPTConfig(block_size=block_size, vocab_size=256, n_layer=n_layer, n_head=n_head,
                      n_embd=n_embd, dropout=dropout)).to(device)
optimizer = model.configure_optimizers(weight_decay, learning_rate, (beta1, beta2))


@torch.no_grad()
def estimate_loss():
    out = {}
    model.eval()
    for split in ['train', 'val']:
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            X, Y = get_batch(split)
            _, loss = model(X, Y)
            losses[k] = loss.item()
        out[split] = losses.mean()
    model.train()
    return out


def get_lr(it):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / max(1, lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


X, Y = get_batch('train')
t_train = time.time()
iter_num = 0
while True:
    lr = get_lr(iter_num) if decay_lr else learning_rate
    for group in optimizer.param_groups:
        group['lr'] = lr
    if iter_num % eval_interval == 0:
        losses = estimate_loss()
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    for micro_step in range(gradient_accumulation_steps):
        _, loss = model(X, Y)
        loss = loss / gradient_accumulation_steps
        X, Y = get_batch('train')
        loss.backward()
    if grad_clip != 0.0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if iter_num % log_interval == 0:
        print(f"iter {iter_num}: loss {loss.item() * gradient_accumulation_steps:.4f}, lr {lr:.2e}")
    iter_num += 1
    if not math.isfinite(loss.item()):
        print("FAIL: loss is not finite")
        sys.exit(1)
    if iter_num > max_iters:
        break
training_seconds = time.time() - t_train

# the metric: a fixed, seeded set of validation windows, whatever the training did
model.eval()
g = torch.Generator().manual_seed(1234)
with torch.no_grad():
    final = [model(*get_batch('val', generator=g, size=16))[1].item() for _ in range(final_eval_batches)]
val_loss = sum(final) / len(final)

os.makedirs(out_dir, exist_ok=True)
torch.save({'model': model.state_dict(), 'config': config, 'iter_num': iter_num}, os.path.join(out_dir, 'ckpt.pt'))
print(f"val_loss: {val_loss:.6f}")
print(f"training_seconds: {training_seconds:.1f}")
print(f"total_seconds: {time.time() - t0:.1f}")
print(f"num_steps: {iter_num}")
