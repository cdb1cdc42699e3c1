"""Best values and gains over results rows, shared by the summary, the charts and the state.

A keep is by construction the best at its time, so keeps are the candidates for "best"; a file
with no keeps falls back to every row with a metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter, itemgetter

from autoresearch_tui.engine.results import ResultRow

_status_of = attrgetter("status")
_metric_of = attrgetter("metric")



def _better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "max" else a < b


def _candidates(rows: Sequence[ResultRow], statuses: list[str] | None = None,
                metrics: list[float | None] | None = None) -> list[float | None]:
    """Each row's metric when the row can be the best, else None. A keep is by construction the
    best at its time; without any, fall back to every run that did not crash.
    (`statuses`, `metrics`: the rows' columns, when the caller has them already.)"""
    statuses = list(map(_status_of, rows)) if statuses is None else statuses
    metrics = list(map(_metric_of, rows)) if metrics is None else metrics
    kept = [m if s == "keep" else None for s, m in zip(statuses, metrics)]
    if kept.count(None) < len(kept):
        return kept
    return [m if s != "crash" else None for s, m in zip(statuses, metrics)]


def _running(candidates: list[float | None], direction: str) -> list[float | None]:
    best: float | None = None
    out: list[float | None] = []
    add = out.append
    if direction == "max":
        for m in candidates:
            if m is not None and (best is None or m > best):
                best = m
            add(best)
    else:
        for m in candidates:
            if m is not None and (best is None or m < best):
                best = m
            add(best)
    return out


def _best_of(candidates: list[float | None], direction: str) -> int:
    known = [m for m in candidates if m is not None]
    if not known:
        return -1
    return candidates.index(max(known) if direction == "max" else min(known))  # the earliest


def running_best(rows: Sequence[ResultRow], direction: str = "min") -> list[float | None]:
    """Best candidate metric up to and including each row (None before the first)."""
    return _running(_candidates(rows), direction)


def best_index(rows: Sequence[ResultRow], direction: str = "min") -> int:
    """Iteration of the earliest row with the best candidate metric; -1 when there is none."""
    return _best_of(_candidates(rows), direction)


def best_row(rows: Sequence[ResultRow], direction: str = "min") -> ResultRow | None:
    i = best_index(rows, direction)
    return rows[i] if i >= 0 else None


def baseline_row(rows: Sequence[ResultRow]) -> ResultRow | None:
    return rows[0] if rows else None


def kept_gains(rows: Sequence[ResultRow], direction: str = "min", *, _statuses: list[str] | None = None,
               _metrics: list[float | None] | None = None) -> list[tuple[int, ResultRow, float]]:
    """(iteration, row, signed gain over the best before it), best gain first.

    Only keeps that beat the running best are ranked: a keep that was worse than the best (a
    file written by another tool, or a noisy re-measure) is not an improvement. The first keep
    (the baseline) and later rows marked `baseline` are not ranked; they restart the chain.
    Re-runs of one commit (noise estimate, confirmation) count once, at their mean.
    """
    statuses = list(map(_status_of, rows)) if _statuses is None else _statuses
    keep = [i for i, s in enumerate(statuses) if s == "keep"]
    kept = [rows[i] for i in keep]
    values = list(map(_metric_of, kept)) if _metrics is None else [_metrics[i] for i in keep]
    out = _chained_gains(keep, kept, values, direction)
    out.sort(key=_gain, reverse=direction == "max")  # stable: equal gains keep their order
    return out


def _chained_gains(keep: list[int], kept: list[ResultRow], values: list[float | None], direction: str
                   ) -> list[tuple[int, ResultRow, float]]:
    out: list[tuple[int, ResultRow, float]] = []
    groups: list[list] = []  # [iteration, row, sum of its values, number of values]
    for i, r, m in zip(keep, kept, values):
        if m is None:
            continue
        if groups and groups[-1][1].commit == r.commit:
            groups[-1][2] += m
            groups[-1][3] += 1
        else:
            groups.append([i, r, m, 1])
    best: float | None = None
    for i, r, total, count in groups:
        value = total / count
        if best is None or r.raw_status.lower() == "baseline":
            best = value
        elif _better(value, best, direction):
            out.append((i, r, value - best))
            best = value
    return out


_gain = itemgetter(2)
