"""A bounded digest of the experiment history for an agent's prompt.

A night can run a thousand experiments; the agent's context must not grow with it (users
report agents whose context fills up and who then stop). The digest keeps: baseline and best,
totals, the last kept changes, the last K results and, per category, how many failed with a
few recent examples, so the agent remembers what did not work without seeing every row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

from autoresearch_tui.agents.base import Attempt
from autoresearch_tui.core.categories import category_for_text

MAX_KEEPS = 30
KEEP_LAST = 15
FAILED_EXAMPLES = 4  # per category
DESC_CHARS = 120
STREAK_FOR_NEW_DIRECTION = 5  # "if the last N iterations all failed, change direction"


def short(text: str, limit: int = DESC_CHARS) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def category_of(attempt: Attempt) -> str:
    cat = attempt.meta.get("category") if isinstance(attempt.meta, dict) else None
    return str(cat) if cat else category_for_text(attempt.description or "")


def fmt_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def _is_baseline(a: Attempt) -> bool:
    return a.iteration == 0


def failure_streak(history: Sequence[Attempt]) -> int:
    """Experiments since the last keep (baseline excluded) that did not improve."""
    streak = 0
    for a in reversed(history):
        if a.status == "keep":
            break
        if not _is_baseline(a):
            streak += 1
    return streak


def _line(a: Attempt) -> str:
    tag = "baseline" if _is_baseline(a) else f"#{a.iteration}"
    return f"- {tag:<5} {a.status:<7} {fmt_metric(a.metric):>9}  {short(a.description)}"


def digest(history: Sequence[Attempt], best: Attempt | None, metric: str, direction: str,
           keep_last: int = KEEP_LAST, max_keeps: int = MAX_KEEPS) -> str:
    """Markdown text whose size does not depend on len(history)."""
    if not history:
        return "No experiments yet: the baseline has not been measured."
    better = "lower" if direction == "min" else "higher"
    baseline = next((a for a in history if _is_baseline(a)), history[0])
    counts = Counter(a.status for a in history if not _is_baseline(a))
    done = sum(counts.values())
    out = [f"Metric `{metric}` ({better} is better). {done} experiments after the baseline: "
           f"{counts.get('keep', 0)} kept, {counts.get('discard', 0)} discarded, "
           f"{counts.get('crash', 0)} crashed."]
    out.append(f"Baseline: {fmt_metric(baseline.metric)}.")
    if best is not None and _is_baseline(best):
        out.append("Best so far: the baseline (nothing has beaten it yet).")
    elif best is not None:
        gain = ""
        if best.metric is not None and baseline.metric is not None:
            gain = f" ({best.metric - baseline.metric:+.6f} vs baseline)"
        out.append(f"Best so far: {fmt_metric(best.metric)}{gain}, #{best.iteration}: {short(best.description)}")

    keeps = [a for a in history if a.status == "keep" and not _is_baseline(a)]
    if keeps:
        out.append("")
        out.append("Kept changes (they are all in the current script), oldest first:")
        if len(keeps) > max_keeps:
            out.append(f"- ({len(keeps) - max_keeps} earlier kept changes not shown)")
        out.extend(_line(a) for a in keeps[-max_keeps:])

    failed: dict[str, list[Attempt]] = defaultdict(list)
    for a in history:
        if a.status in ("discard", "crash") and not _is_baseline(a):
            failed[category_of(a)].append(a)
    if failed:
        out.append("")
        out.append("What did not work, by category (do not repeat these):")
        for cat, items in sorted(failed.items(), key=lambda kv: -len(kv[1])):
            crashes = sum(1 for a in items if a.status == "crash")
            extra = f" ({crashes} crashed)" if crashes else ""
            examples: list[str] = []
            for a in reversed(items):  # newest first, each idea once
                text = short(a.description, 80)
                if text not in examples:
                    examples.append(text)
                if len(examples) == FAILED_EXAMPLES:
                    break
            out.append(f"- {cat}: {len(items)} failed{extra}; recent: " + "; ".join(examples))

    recent = [a for a in history if not _is_baseline(a)][-keep_last:] if keep_last > 0 else []
    if recent:
        out.append("")
        out.append(f"Last {len(recent)} results, oldest first:")
        out.extend(_line(a) for a in recent)
    return "\n".join(out)


def guidance(history: Sequence[Attempt], streak_limit: int = STREAK_FOR_NEW_DIRECTION) -> str:
    """The spec's hypothesis discipline applied to where the night stands now."""
    runs = [a for a in history if not _is_baseline(a)]
    if not runs:
        return "This is the first experiment after the baseline: start with the most promising single change."
    last = runs[-1]
    if last.status == "keep":
        return (f"The last experiment improved the metric ({short(last.description, 80)}): "
                "explore a nearby variation of it (push the same knob a little further, or tune a "
                "closely related one) before moving to a different dimension.")
    streak = failure_streak(history)
    if streak >= streak_limit:
        tried = Counter(category_of(a) for a in runs[-streak:]).most_common(2)
        cats = " and ".join(c for c, _ in tried)
        return (f"The last {streak} experiments all failed (mostly {cats}). Change direction: "
                "try a significantly different kind of change than those.")
    return "The last experiment did not improve the metric: try a different idea; do not repeat it."
