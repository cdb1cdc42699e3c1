"""
tinygpt data preparation, data loading and evaluation.

READ-ONLY during an autoresearch loop: the agent edits train.py only.

The corpus is the Python standard library's own ``*.py`` files, which every
machine that can run this script has offline. Files are read in sorted order
(deterministic), every 10th file goes to the validation split, and the byte
streams are cached under ``$AUTORESEARCH_CACHE`` (default
``~/.cache/autoresearch-tui/tinygpt/``) so later runs start fast.

The tokenizer is the identity on bytes (vocabulary 256), so the mean
cross-entropy in bits is directly the number of bits per byte (val_bpb).

Run ``python prepare.py`` to build (or rebuild) the cache and print its stats.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Fixed constants (do not change: they define the benchmark)
# ---------------------------------------------------------------------------

MAX_SEQ_LEN = 256          # longest context train.py may use
VOCAB_SIZE = 256           # bytes
TIME_BUDGET = float(os.environ.get("AUTORESEARCH_TIME_BUDGET", "60") or 60)  # seconds of training
EVAL_TOKENS = 64 * 1024    # number of predicted bytes in the validation evaluation
EVAL_SEED = 1234           # fixed seed for picking the validation windows
MAX_CORPUS_BYTES = 4 * 1024 * 1024   # cap on the corpus size (train + val)
VAL_EVERY = 10             # every VAL_EVERY-th file (sorted order) is validation
FILE_SEPARATOR = b"\n\x00\n"   # marks file boundaries in the byte stream
CORPUS_VERSION = 1         # bump to invalidate old caches

STDLIB_DIR = Path(os.__file__).parent


def cache_dir() -> Path:
    """Directory holding the cached byte streams."""
    root = os.environ.get("AUTORESEARCH_CACHE")
    if root:
        return Path(root).expanduser() / "tinygpt"
    return Path.home() / ".cache" / "autoresearch-tui" / "tinygpt"


def _corpus_files() -> list[Path]:
    return sorted(p for p in STDLIB_DIR.glob("*.py") if p.is_file())


def _cache_key(files: list[Path]) -> str:
    h = hashlib.sha256()
    h.update(f"v{CORPUS_VERSION}|{MAX_CORPUS_BYTES}|{VAL_EVERY}|{sys.version_info[:2]}".encode())
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"|{p.name}:{st.st_size}".encode())
    return h.hexdigest()[:16]


def _build_corpus(files: list[Path]) -> tuple[bytes, bytes]:
    train_parts: list[bytes] = []
    val_parts: list[bytes] = []
    total = 0
    for i, p in enumerate(files):
        try:
            data = p.read_bytes()
        except OSError:
            continue
        if total + len(data) > MAX_CORPUS_BYTES:
            data = data[: max(0, MAX_CORPUS_BYTES - total)]
        if not data:
            break
        total += len(data)
        (val_parts if i % VAL_EVERY == VAL_EVERY - 1 else train_parts).append(data + FILE_SEPARATOR)
        if total >= MAX_CORPUS_BYTES:
            break
    return b"".join(train_parts), b"".join(val_parts)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_splits(verbose: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (train, val) as 1-D uint8 tensors, building the cache if needed."""
    files = _corpus_files()
    if not files:
        raise RuntimeError(f"no *.py files found in {STDLIB_DIR}")
    key = _cache_key(files)
    d = cache_dir()
    train_path, val_path = d / f"train-{key}.bin", d / f"val-{key}.bin"
    train_b = val_b = None
    if train_path.exists() and val_path.exists():
        try:
            train_b, val_b = train_path.read_bytes(), val_path.read_bytes()
        except OSError:
            train_b = val_b = None
    if not train_b or not val_b:
        train_b, val_b = _build_corpus(files)
        try:
            _atomic_write(train_path, train_b)
            _atomic_write(val_path, val_b)
            if verbose:
                print(f"wrote cache to {d}")
        except OSError as e:  # read-only home etc.: carry on uncached
            print(f"warning: could not write cache in {d}: {e}", file=sys.stderr)
    train = torch.frombuffer(bytearray(train_b), dtype=torch.uint8)
    val = torch.frombuffer(bytearray(val_b), dtype=torch.uint8)
    return train, val


class BatchSampler:
    """Random (x, y) windows from a split, driven by its own seeded generator.

    ``epoch`` is the number of passes over the split so far (1-based), counted
    in bytes consumed.
    """

    def __init__(self, data: torch.Tensor, batch_size: int, seq_len: int,
                 device: str | torch.device = "cpu", seed: int = 0):
        if seq_len > MAX_SEQ_LEN:
            raise ValueError(f"seq_len {seq_len} exceeds MAX_SEQ_LEN {MAX_SEQ_LEN}")
        if len(data) <= seq_len + 1:
            raise ValueError("split too small for seq_len")
        self.data = data
        self.batch_size = int(batch_size)
        self.seq_len = int(seq_len)
        self.device = torch.device(device)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.offsets = torch.arange(self.seq_len + 1)
        self.tokens_seen = 0

    @property
    def epoch(self) -> int:
        return 1 + self.tokens_seen // len(self.data)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(self.data) - self.seq_len - 1, (self.batch_size,), generator=self.gen)
        chunk = self.data[starts[:, None] + self.offsets].long()
        self.tokens_seen += self.batch_size * self.seq_len
        x, y = chunk[:, :-1], chunk[:, 1:]
        if self.device.type != "cpu":
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
        return x, y

    def __iter__(self):
        while True:
            yield self.next_batch()


def make_dataloader(split: str, batch_size: int, seq_len: int,
                    device: str | torch.device = "cpu", seed: int = 0) -> BatchSampler:
    """Batch sampler over ``split`` ("train" or "val")."""
    train, val = load_splits()
    return BatchSampler(train if split == "train" else val, batch_size, seq_len, device, seed)


@torch.no_grad()
def evaluate_bpb(model, seq_len: int = MAX_SEQ_LEN, batch_size: int = 32,
                 device: str | torch.device = "cpu", val: torch.Tensor | None = None) -> float:
    """Bits per byte of ``model`` on a fixed subset of the validation split.

    ``model(x)`` must return logits of shape (B, T, VOCAB_SIZE) for a LongTensor
    x of shape (B, T). The subset is EVAL_TOKENS predicted bytes, taken from
    windows of ``seq_len`` whose starts are drawn with a fixed seed, so the
    result depends only on the model (and seq_len), not on the caller's RNG.
    """
    if val is None:
        _, val = load_splits()
    seq_len = int(min(seq_len, MAX_SEQ_LEN))
    n_windows = max(1, EVAL_TOKENS // seq_len)
    gen = torch.Generator().manual_seed(EVAL_SEED)
    starts = torch.randint(0, len(val) - seq_len - 1, (n_windows,), generator=gen)
    offsets = torch.arange(seq_len + 1)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    total_nats = 0.0
    total_bytes = 0
    dev = torch.device(device)
    try:
        for i in range(0, n_windows, batch_size):
            chunk = val[starts[i:i + batch_size, None] + offsets].long().to(dev)
            x, y = chunk[:, :-1], chunk[:, 1:]
            logits = model(x).float()
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
            total_nats += float(loss.item())
            total_bytes += y.numel()
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return total_nats / (math.log(2) * total_bytes)


if __name__ == "__main__":
    tr, va = load_splits(verbose=True)
    print(f"corpus: {STDLIB_DIR} ({len(_corpus_files())} files)")
    print(f"cache:  {cache_dir()}")
    print(f"train:  {len(tr):,} bytes")
    print(f"val:    {len(va):,} bytes")
    print(f"MAX_SEQ_LEN={MAX_SEQ_LEN} TIME_BUDGET={TIME_BUDGET:g} EVAL_TOKENS={EVAL_TOKENS}")
