"""Which category a change belongs to: architecture, optimizer, hyperparameters or other.

Used to restrict the built-in proposer by modification scope and to group the summary's
"what didn't work" table. Constant names map by keyword; free-text descriptions likewise.
"""

from __future__ import annotations

import re

ARCHITECTURE = "architecture"
OPTIMIZER = "optimizer"
HYPERPARAMETERS = "hyperparameters"
OTHER = "other"
SCOPES = (ARCHITECTURE, HYPERPARAMETERS, OPTIMIZER, "all")

# Order matters: the first category with a matching keyword wins.
_NAME_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (OPTIMIZER, ("LR", "LEARNING", "BETA", "DECAY", "WARMUP", "WARMDOWN", "MOMENTUM", "EPS", "CLIP",
                 "COOLDOWN", "FINAL_LR", "SCHEDULE", "OPTIM", "NESTEROV")),
    (ARCHITECTURE, ("DEPTH", "DIM", "HEAD", "RATIO", "WINDOW", "LAYER", "WIDTH", "EMBD", "EMBED",
                    "HIDDEN", "ASPECT", "MLP", "ACTIVATION", "NORM", "VOCAB", "SEQ", "CONTEXT",
                    "KERNEL", "EXPANSION", "N_")),
    (HYPERPARAMETERS, ("BATCH", "DROPOUT", "ACCUM", "STEPS", "EPOCH", "SEED", "PRECISION",
                       "DTYPE", "LABEL_SMOOTH", "TOKENS")),
)

_TEXT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (OPTIMIZER, ("lr", "learning rate", "beta", "adam", "muon", "lion", "sgd", "weight decay",
                 "decay", "warmup", "warmdown", "cooldown", "schedule", "optimizer", "clip",
                 "momentum")),
    (ARCHITECTURE, ("depth", "layer", "dim", "head", "attention", "attn", "mlp", "activation",
                    "relu", "gelu", "silu", "swiglu", "norm", "embed", "window", "aspect",
                    "conv", "residual", "rope", "width", "architecture", "model size")),
    (HYPERPARAMETERS, ("batch", "dropout", "accum", "seed", "precision", "bf16", "fp16", "fp32",
                       "curriculum", "seq len", "tokens", "steps")),
)


def category_for_name(name: str) -> str:
    """Category of a constant such as MATRIX_LR or DEVICE_BATCH_SIZE."""
    upper = name.upper()
    parts = set(re.split(r"_+", upper))
    for category, keywords in _NAME_KEYWORDS:
        for key in keywords:
            if key.endswith("_"):
                if upper.startswith(key):
                    return category
            elif key in parts or (len(key) > 3 and key in upper):
                return category
    return HYPERPARAMETERS


def category_for_text(text: str) -> str:
    """Best-effort category of a free-text description; OTHER when nothing matches."""
    lowered = text.lower()
    # A constant name in the description is the strongest signal.
    match = re.search(r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{3,})\b", text)
    if match:
        return category_for_name(match.group(1))
    for category, keywords in _TEXT_KEYWORDS:
        for key in keywords:
            if re.search(r"(?<![a-z])" + re.escape(key) + r"(?![a-z])", lowered):
                return category
    return OTHER


def in_scope(name: str, scope: str) -> bool:
    return scope == "all" or category_for_name(name) == scope
