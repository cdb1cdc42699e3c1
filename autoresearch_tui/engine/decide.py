"""Keep or discard: the spec's Phase 2.4 table (better by any amount keeps)."""

from __future__ import annotations

KEEP, DISCARD, CRASH = "keep", "discard", "crash"


def is_better(value: float, best: float | None, direction: str) -> bool:
    if best is None:
        return True
    return value < best if direction == "min" else value > best


def decide(metric: float | None, crash: str | None, best: float | None, direction: str) -> tuple[str, str]:
    """(status, reason) for one finished run."""
    if crash or metric is None:
        return CRASH, crash or "no metric"
    if is_better(metric, best, direction):
        delta = "" if best is None else f" ({metric - best:+.6f} vs best {best:.6f})"
        return KEEP, "improved" + delta
    if best is not None and metric == best:
        return DISCARD, f"no change ({metric:.6f})"
    return DISCARD, f"regression: {metric:.6f} vs best {best:.6f} ({metric - best:+.6f})"
