"""Noise-aware keep policies: how much better must a run be before it counts as better?

Re-running identical code moves the metric (about 0.03 val_bpb on Apple-silicon forks), so
"better by any amount" keeps noise. This module is pure (no I/O): the engine feeds it the
metric values of repeated runs of the same commit and asks it to judge each candidate.

Policies (config key `keep_policy`):
  any        better than the best's mean by any amount keeps (the reference behaviour)
  min_delta  the improvement must exceed a fixed `min_delta`
  sigma      the improvement must exceed `noise_z` x sigma (sigma pooled from repeated runs);
             while sigma is unknown it falls back to `min_delta` and says so
  confirm    sequential and interleaved: a candidate's first run is screened against the best's
             recent runs; a promising one is re-run, each re-run preceded by a fresh run of the
             best (best, candidate, best, candidate ...), until its mean beats the mean of the
             best's last `BEST_WINDOW` runs by more than z standard errors
             (z x sigma x sqrt(1/k + 1/m), k candidate runs, m best runs; z defaults to 1.9
             here) on at least 2 runs, or falls behind, or reaches `confirm_runs` (6) runs.
             Comparing only with the best's recent runs, measured beside the candidate, cancels
             slow drift of the machine and the winner's curse (a lucky run that made the best
             is soon outvoted by its fresh re-runs). benchmarks/README.md has the simulation and
             the engine figures that chose these defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

POLICIES = ("any", "min_delta", "sigma", "confirm")
KEEP, DISCARD, RERUN = "keep", "discard", "rerun"
DEFAULT_Z = 2.0  # sigma: a single run must win by 2 sigma
CONFIRM_Z = 1.9  # confirm: standard errors of the difference (~3% false keeps over sessions)
DEFAULT_MAX_RUNS = 6  # confirm_runs: at most 6 runs of a candidate; see benchmarks/README.md
DEFAULT_MIN_RUNS = 2  # confirm keeps nothing on a single run
BEST_WINDOW = 8  # confirm compares with the best's last 8 runs: recent, so drift cancels
SCREEN_Z = -0.25  # confirm: a first run this far behind (in standard errors) is not re-run


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


def default_z(policy: str) -> float:
    """The z of a policy when `noise_z` is not set."""
    return CONFIRM_Z if policy == "confirm" else DEFAULT_Z


def judge(policy: str, candidate: list[float], best: list[float], direction: str, sigma: float | None, *,
          min_delta: float = 0.0, z: float | None = None, max_runs: int = DEFAULT_MAX_RUNS,
          min_runs: int = DEFAULT_MIN_RUNS) -> Verdict:
    """Keep, discard or re-run a candidate given its runs so far and the current best's runs
    (oldest first). `z` None: the policy's default (DEFAULT_Z for sigma, CONFIRM_Z for confirm).

    A RERUN verdict under `confirm` means: run the best once more, then the candidate (the engine
    interleaves them, so both see the same machine)."""
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
    z = default_z(policy) if z is None else z
    if policy == "confirm" and sigma is not None:
        return _confirm(candidate, best, direction, sigma, min_delta, z, max_runs, min_runs)
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
        noise = z * sigma
        threshold = max(noise, min_delta)
        how = f"{z:g} x sigma {_f(sigma)} = {_f(noise)}"
        if min_delta > noise:
            how += f", raised to min_delta {_f(min_delta)}"
    if gain > threshold and policy == "confirm" and k < min(min_runs, max_runs):
        return Verdict(RERUN, f"{fallback}promising: {what} improves by {_f(gain)} > {how}; a win needs "
                              f"{min_runs} runs, re-running to confirm (run {k + 1} of at most {max_runs})",
                       threshold)
    if gain > threshold:
        return Verdict(KEEP, f"{fallback}kept: {what} improves by {_f(gain)} > {how}", threshold)
    if gain <= 0:
        word = "no change" if gain == 0 else "not better"
        return Verdict(DISCARD, f"{fallback}discarded, {word}: {what} ({delta})", threshold)
    return Verdict(DISCARD, f"{fallback}discarded: {what} improves by only {_f(gain)}, "
                            f"not above {how} (within noise)", threshold)


def _confirm(candidate: list[float], best: list[float], direction: str, sigma: float, min_delta: float,
             z: float, max_runs: int, min_runs: int) -> Verdict:
    """The sequential, interleaved test (see the module docstring)."""
    recent = best[-BEST_WINDOW:]
    k, m = len(candidate), len(recent)
    cand, ref = mean(candidate), mean(recent)
    gain = improvement(cand, ref, direction)
    se = sigma * math.sqrt(1 / k + 1 / m)
    threshold = max(z * se, min_delta)
    score = gain / se if se > 0 else (math.inf if gain > 0 else -math.inf)  # sigma 0: a tie is no gain
    what = (f"{_runs(k)} {_f(cand)} vs best {_f(ref)}" + (f" (mean of its last {m} runs)" if m > 1 else "")
            + (f": {gain / sigma:+.2f} sigma" if sigma > 0 else ""))
    how = f"{z:g} x sigma {_f(sigma)} x sqrt(1/{k} + 1/{m}) = {_f(z * se)}"
    if min_delta > z * se:
        how += f", raised to min_delta {_f(min_delta)}"
    if k >= min(min_runs, max_runs) and gain > threshold:
        return Verdict(KEEP, f"kept: {what}, improves by {_f(gain)} > {how}", threshold)
    if k == 1 and score < SCREEN_Z:
        word = "no change" if gain == 0 else "not better" if gain < 0 else "too small a gain to confirm"
        return Verdict(DISCARD, f"discarded, {word}: {what}", threshold)
    if k >= 2 and gain <= 0:
        return Verdict(DISCARD, f"discarded after {k} runs, not better: {what}", threshold)
    if k >= max_runs:
        return Verdict(DISCARD, f"discarded after {k} runs: {what}, improves by only {_f(gain)}, "
                                f"not above {how} (within noise)", threshold)
    return Verdict(RERUN, f"{'promising' if gain > threshold else 'grey zone'}: {what} (needs a gain > {how} "
                          f"on {max(min_runs, k + 1)}+ runs); re-running the best, then the candidate "
                          f"(run {k + 1} of at most {max_runs})", threshold)


__all__ = ["BEST_WINDOW", "CONFIRM_Z", "DEFAULT_MAX_RUNS", "DEFAULT_MIN_RUNS", "DEFAULT_Z", "KEEP", "DISCARD", "RERUN",
           "POLICIES", "NoiseModel", "Verdict", "default_z", "improvement", "judge", "mean"]
