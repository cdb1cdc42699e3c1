"""Monte-Carlo of the keep policies (pure: no git, no processes), used to choose the `confirm` rule.

Metric "lower is better", noise sigma = 1, so gains are in sigmas. Decisions go through the real
`autoresearch_tui.engine.noise.judge`, driven the way the engine drives it: under `confirm`, every
re-run of a candidate is preceded by a run of the best (interleaved), and those runs join the best's
runs. `previous_confirm` is the rule before issue 16 (z x sigma / sqrt(k) against all of the best's
runs, no interleaving), simulated here only for the comparison.

A session's clock counts runs; `drift` shifts every measurement by up to `drift` sigmas (better and
better over the session, the direction that makes a no-op look like a win), as machine load does.

    python -m benchmarks.noise_sim          # the comparison table in benchmarks/README.md
"""

from __future__ import annotations

import math
import random
import sys
import statistics
from dataclasses import dataclass, field

from autoresearch_tui.engine.noise import DEFAULT_MAX_RUNS, NoiseModel, judge, mean


@dataclass
class SimResult:
    candidates: int = 0
    keeps: int = 0
    runs: int = 0  # candidate runs
    best_runs: int = 0  # runs of the best made to confirm (interleaved)
    session_rates: list[float] = field(default_factory=list)  # keep rate of each session

    @property
    def keep_rate(self) -> float:
        return self.keeps / max(self.candidates, 1)

    @property
    def runs_per_candidate(self) -> float:
        """All runs a candidate cost: its own and the best's re-runs made beside it."""
        return (self.runs + self.best_runs) / max(self.candidates, 1)

    def stderr(self) -> float:
        """From the per-session rates: candidates of one session are correlated (a lucky best
        blocks many later ones), so sessions, not candidates, are the independent units."""
        rates = self.session_rates
        return statistics.stdev(rates) / math.sqrt(len(rates)) if len(rates) > 1 else float("nan")


def decide(policy: str, runs: list[float], best: list[float], sigma: float | None, **rule) -> str:
    if policy == "previous_confirm":  # the rule before issue 16
        gain = mean(best) - mean(runs)
        if sigma is None:
            return "keep" if gain > 0 and len(runs) >= 2 else "discard" if gain <= 0 else "rerun"
        threshold = 2.0 * sigma / math.sqrt(len(runs))
        if gain > threshold and len(runs) >= 2:
            return "keep"
        if gain <= 0 or len(runs) >= 3:
            return "discard"
        return "rerun"
    return judge(policy, runs, best, "min", sigma, **rule).action


class Clock:
    """Measurements of one session: true value + drift at this run + N(0, 1)."""

    def __init__(self, rng: random.Random, drift: float, total_runs: int) -> None:
        self.rng, self.drift, self.total, self.t = rng, drift, max(total_runs, 1), 0

    def measure(self, true: float) -> float:
        self.t += 1
        return true - self.drift * min(self.t / self.total, 1.0) + self.rng.gauss(0, 1)


def evaluate(policy: str, true: float, true_best: float, best: list[float], sigma: float | None,
             clock: Clock, out: SimResult, **rule) -> tuple[bool, list[float]]:
    """One candidate as the engine evaluates it; appends the best's interleaved runs to `best`."""
    runs = [clock.measure(true)]
    while (action := decide(policy, runs, best, sigma, **rule)) == "rerun":
        if policy == "confirm":
            best.append(clock.measure(true_best))
            out.best_runs += 1
        runs.append(clock.measure(true))
    out.candidates, out.keeps, out.runs = out.candidates + 1, out.keeps + (action == "keep"), out.runs + len(runs)
    return action == "keep", runs


def chain(policy: str, gain: float, *, sessions: int = 400, iterations: int = 40, seed: int = 1,
          baseline_repeats: int = 2, sigma_known: bool = True, drift: float = 0.0, **rule) -> SimResult:
    """What the engine does: a session of `iterations` candidates, each `gain` sigmas better than the
    current TRUE best; a kept candidate's runs become the best's runs (a lucky keep makes a lucky
    best: the winner's curse). sigma_known=False pools sigma from the repeats seen so far, as the
    engine does."""
    rng, out = random.Random(seed), SimResult()
    for _ in range(sessions):
        clock = Clock(rng, drift, total_runs=iterations * 3)
        model, true_best = NoiseModel(), 0.0
        best = [clock.measure(0.0) for _ in range(max(baseline_repeats, 1))]
        best_commit = "base"
        for v in best:
            model.add(best_commit, v)
        keeps_before = out.keeps
        for i in range(iterations):
            true = true_best - gain
            before = len(best)
            kept, runs = evaluate(policy, true, true_best, best, 1.0 if sigma_known else model.sigma, clock, out, **rule)
            for v in best[before:]:
                model.add(best_commit, v)
            for v in runs:
                model.add(str(i), v)
            if kept:
                true_best, best, best_commit = true, list(runs), str(i)
        out.session_rates.append((out.keeps - keeps_before) / max(iterations, 1))
    return out


def compare(policy: str, quick: bool = False, **kw) -> tuple[SimResult, SimResult]:
    size = dict(sessions=60, iterations=40) if quick else dict(sessions=500, iterations=40)
    return chain(policy, 0.0, seed=11, **size, **kw), chain(policy, 2.0, seed=12, **size, **kw)


ROWS = [  # (label, policy, chain kwargs)
    ("any (reference)", "any", {}),
    ("sigma, z=2 (one run)", "sigma", {}),
    ("previous confirm (z=2 x sigma/sqrt(k), <= 3 runs, no interleaving)", "previous_confirm", {}),
    ("confirm, <= 3 runs", "confirm", {"max_runs": 3}),
    ("confirm, z=2", "confirm", {"z": 2.0}),
    (f"**confirm (chosen: z=1.9, <= {DEFAULT_MAX_RUNS} runs, best window 8)**", "confirm", {}),
    ("chosen, sigma estimated (baseline x2)", "confirm", {"sigma_known": False}),
    ("chosen, drift 1 sigma over the session", "confirm", {"drift": 1.0}),
    ("chosen, drift 1 sigma, sigma estimated", "confirm", {"drift": 1.0, "sigma_known": False}),
    ("previous confirm, drift 1 sigma", "previous_confirm", {"drift": 1.0}),
    ("any, drift 1 sigma", "any", {"drift": 1.0}),
]


def table(quick: bool = False) -> str:
    head = ("| rule | false keeps (no-op candidates) | true keeps (2σ candidates) "
            "| runs per candidate, no-op / 2σ (incl. the best's re-runs) |")
    lines = [head, "|---|---|---|---|"]
    for label, policy, kw in ROWS:
        nf, nt = compare(policy, quick, **kw)
        lines.append(f"| {label} | {nf.keep_rate:.1%} ± {nf.stderr():.1%} | {nt.keep_rate:.1%} ± {nt.stderr():.1%} "
                     f"| {nf.runs_per_candidate:.2f} / {nt.runs_per_candidate:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(quick="--quick" in sys.argv))
