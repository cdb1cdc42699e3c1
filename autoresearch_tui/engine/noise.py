"""Noise-aware keep policies: how much better must a run be before it counts as better?

Re-running identical code moves the metric (about 0.03 val_bpb on Apple-silicon forks), so
"better by any amount" keeps noise. This module is pure (no I/O): the engine feeds it the
metric values of repeated runs of the same commit and asks it to judge each candidate.

Policies (config key `keep_policy`):
  any        better than the best's mean by any amount keeps (the reference behaviour)
  min_delta  the improvement must exceed a fixed `min_delta`
  sigma      the improvement must exceed `noise_z` x sigma (sigma pooled from repeated runs);
             while sigma is unknown it falls back to `min_delta` and says so
  confirm    sequential: after k runs of the candidate it keeps if k >= 2 (`min_runs`) and its
             mean wins by more than z x sigma / sqrt(k); it is discarded as soon as its mean is not
             better at all; otherwise it is re-run, up to `confirm_runs` (3) runs in all, then
             discarded. Nothing is kept on a single run: that halves the winner's curse (a lucky
             run becoming a best that real improvements cannot beat). benchmarks/README.md has
             the simulation that chose this rule and its defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

POLICIES = ("any", "min_delta", "sigma", "confirm")
KEEP, DISCARD, CRASH = "keep", "discard", "crash"  # the three results.tsv statuses
RERUN = "rerun"  # a verdict only: run it again before deciding
DEFAULT_Z = 2.0
DEFAULT_MAX_RUNS = 3  # confirm_runs: 3 runs at most (2 re-runs); see benchmarks/README.md
DEFAULT_MIN_RUNS = 2  # confirm keeps nothing on a single run


@dataclass(frozen=True)
class Verdict:
    action: str  # keep | discard | rerun
    reason: str  # a sentence with the numbers, for events and the UI
    threshold: float | None  # the improvement required at this step (metric units); None: any

    @property
    def keep(self) -> bool:
        return self.action == KEEP


@dataclass
class NoiseModel:
    """Groups of repeated runs of the same commit, pooled into one noise estimate."""

    groups: dict[str, list[float]] = field(default_factory=dict)

    def add(self, commit: str, value: float | None) -> None:
        """Record one run's metric; crashes (None) and non-finite values are ignored."""
        if value is None or not math.isfinite(value):
            return
        self.groups.setdefault(commit, []).append(float(value))

    def runs(self, commit: str) -> list[float]:
        return list(self.groups.get(commit, ()))

    @property
    def count(self) -> int:
        """Degrees of freedom of the pooled estimate: sum over groups of (n - 1)."""
        return sum(len(v) - 1 for v in self.groups.values() if v)

    @property
    def sigma(self) -> float | None:
        """Pooled sample standard deviation; None until some commit has two runs."""
        dof = self.count
        if dof <= 0:
            return None
        ss = 0.0
        for values in self.groups.values():
            if len(values) >= 2:
                m = sum(values) / len(values)
                ss += sum((x - m) ** 2 for x in values)
        return math.sqrt(ss / dof)

    def describe(self) -> str:
        sigma = self.sigma
        if sigma is None:
            return "noise unknown: no commit has been run twice yet"
        repeated = sum(1 for v in self.groups.values() if len(v) >= 2)
        runs = sum(len(v) for v in self.groups.values() if len(v) >= 2)
        return (f"noise sigma {_f(sigma)} from {runs} runs of {repeated} repeated "
                f"commit{'s' if repeated != 1 else ''} ({self.count} degrees of freedom)")


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def improvement(candidate: float, best: float, direction: str) -> float:
    """How much better `candidate` is than `best`; positive = better, in metric units."""
    return best - candidate if direction == "min" else candidate - best


def _f(x: float) -> str:
    return f"{x:.6f}" if abs(x) < 1e4 else f"{x:.6g}"


def _runs(k: int) -> str:
    return "1 run" if k == 1 else f"mean of {k} runs"


def judge(policy: str, candidate: list[float], best: list[float], direction: str, sigma: float | None, *,
          min_delta: float = 0.0, z: float = DEFAULT_Z, max_runs: int = DEFAULT_MAX_RUNS,
          min_runs: int = DEFAULT_MIN_RUNS) -> Verdict:
    """Keep, discard or re-run a candidate given its runs so far and the current best's runs.

    `min_runs` (confirm only): a candidate is never kept on fewer runs, even a clear win, while
    `max_runs` allows another run; this halves the winner's curse (see benchmarks/README.md)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown keep_policy {policy!r}: use one of {', '.join(POLICIES)}")
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be min or max, got {direction!r}")
    if not candidate:
        raise ValueError("judge needs at least one run of the candidate")
    k = len(candidate)
    cand = mean(candidate)
    if not best:
        return Verdict(KEEP, f"first measurement ({_f(cand)}): nothing to beat", None)
    ref = mean(best)
    gain = improvement(cand, ref, direction)
    what = f"{_runs(k)} {_f(cand)} vs best {_f(ref)}" + (f" (mean of {len(best)} runs)" if len(best) > 1 else "")
    delta = f"{cand - ref:+.6f}"

    if policy == "any":
        if gain > 0:
            return Verdict(KEEP, f"improved: {what} ({delta})", None)
        word = "no change" if gain == 0 else "regression"
        return Verdict(DISCARD, f"{word}: {what} ({delta})", None)

    fallback = ""
    if policy == "min_delta" or sigma is None:
        threshold, how = min_delta, f"min_delta {_f(min_delta)}"
        if policy != "min_delta":
            fallback = (f"noise sigma unknown yet (no commit run twice), so falling back to min_delta "
                        f"{_f(min_delta)}{' = any improvement' if min_delta <= 0 else ''}; ")
    else:
        scale = 1.0 if policy == "sigma" else math.sqrt(k)
        noise = z * sigma / scale
        threshold = max(noise, min_delta)
        how = f"{z:g} x sigma {_f(sigma)}" + (f" / sqrt({k})" if scale != 1.0 else "") + f" = {_f(noise)}"
        if min_delta > noise:
            how += f", raised to min_delta {_f(min_delta)}"

    confirming = policy == "confirm" and k < min(min_runs, max_runs)
    if gain > threshold and not confirming:
        return Verdict(KEEP, f"{fallback}kept: {what} improves by {_f(gain)} > {how}", threshold)
    if gain <= 0:
        word = "no change" if gain == 0 else "not better"
        return Verdict(DISCARD, f"{fallback}discarded, {word}: {what} ({delta})", threshold)
    if gain > threshold:
        return Verdict(RERUN, f"{fallback}promising: {what} improves by {_f(gain)} > {how}; a win needs "
                              f"{min_runs} runs, re-running to confirm (run {k + 1} of at most {max_runs})",
                       threshold)
    if policy == "confirm" and k < max_runs:
        return Verdict(RERUN, f"{fallback}grey zone: {what} improves by {_f(gain)}, not above {how}; "
                              f"re-running to confirm (run {k + 1} of at most {max_runs})", threshold)
    after = f" after {k} runs" if policy == "confirm" and k > 1 else ""
    return Verdict(DISCARD, f"{fallback}discarded{after}: {what} improves by only {_f(gain)}, "
                            f"not above {how} (within noise)", threshold)


__all__ = ["DEFAULT_MAX_RUNS", "DEFAULT_MIN_RUNS", "DEFAULT_Z", "KEEP", "DISCARD", "RERUN", "POLICIES", "NoiseModel", "Verdict",
           "improvement", "judge", "mean"]
