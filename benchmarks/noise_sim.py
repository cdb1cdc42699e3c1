"""Monte-Carlo of the keep policies (pure: no git, no processes), used to choose the `confirm` rule.

Metric "lower is better", noise sigma = 1, so gains are in sigmas. Decisions go through the real
`autoresearch_tui.engine.noise.judge`; `two_sample` is the rejected alternative, simulated here only.

    python -m benchmarks.noise_sim          # the comparison table in benchmarks/README.md
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass

from autoresearch_tui.engine.noise import DEFAULT_MAX_RUNS, DEFAULT_MIN_RUNS, DEFAULT_Z, NoiseModel, judge, mean

Z, MAX_RUNS, MIN_RUNS = DEFAULT_Z, DEFAULT_MAX_RUNS, DEFAULT_MIN_RUNS


@dataclass
class SimResult:
    candidates: int = 0
    keeps: int = 0
    runs: int = 0

    @property
    def keep_rate(self) -> float:
        return self.keeps / max(self.candidates, 1)

    @property
    def runs_per_candidate(self) -> float:
        return self.runs / max(self.candidates, 1)


def decide(policy: str, runs: list[float], best: list[float], sigma: float | None, z: float = Z,
           max_runs: int = MAX_RUNS, min_runs: int = MIN_RUNS) -> str:
    if policy == "two_sample":  # threshold z*sigma*sqrt(1/k + 1/k_best): counts the best's own noise
        gain = mean(best) - mean(runs)
        if sigma is None:
            return "keep" if gain > 0 else "discard"
        threshold = z * sigma * math.sqrt(1 / len(runs) + 1 / len(best))
        if gain > threshold:
            return "keep"
        return "discard" if gain <= 0 or len(runs) >= max_runs else "rerun"
    return judge(policy, runs, best, "min", sigma, z=z, max_runs=max_runs, min_runs=min_runs).action


def _candidate(policy: str, true: float, best: list[float], sigma: float | None, rng: random.Random,
               rule: dict) -> tuple[bool, list[float]]:
    runs = [true + rng.gauss(0, 1)]
    while (action := decide(policy, runs, best, sigma, **rule)) == "rerun":
        runs.append(true + rng.gauss(0, 1))
    return action == "keep", runs


def per_candidate(policy: str, gain: float, *, trials: int = 20000, seed: int = 1, best_runs: int = 0,
                  **rule) -> SimResult:
    """Independent candidates, each `gain` sigmas better than a best that is known exactly
    (best_runs=0) or measured afresh `best_runs` times; sigma known."""
    rng, out = random.Random(seed), SimResult()
    for _ in range(trials):
        best = [0.0] if best_runs == 0 else [rng.gauss(0, 1) for _ in range(best_runs)]
        kept, runs = _candidate(policy, -gain, best, 1.0, rng, rule)
        out.candidates, out.keeps, out.runs = out.candidates + 1, out.keeps + kept, out.runs + len(runs)
    return out


def chain(policy: str, gain: float, *, sessions: int = 400, iterations: int = 40, seed: int = 1,
          baseline_repeats: int = 2, remeasure: int = 0, sigma_known: bool = True, **rule) -> SimResult:
    """What the engine does: a session of `iterations` candidates, each `gain` sigmas better than the
    current TRUE best; a kept candidate's runs become the best's runs (so a lucky keep makes a lucky
    best: the winner's curse). remeasure=N runs every new best until it has N runs. sigma_known=False
    pools sigma from the runs seen so far (baseline repeats and re-runs), as the engine will."""
    rng, out = random.Random(seed), SimResult()
    for _ in range(sessions):
        model, true_best = NoiseModel(), 0.0
        best = [rng.gauss(0, 1) for _ in range(max(baseline_repeats, 1))]
        for v in best:
            model.add("base", v)
        for i in range(iterations):
            true = true_best - gain
            kept, runs = _candidate(policy, true, best, 1.0 if sigma_known else model.sigma, rng, rule)
            for v in runs:
                model.add(str(i), v)
            out.candidates, out.keeps, out.runs = out.candidates + 1, out.keeps + kept, out.runs + len(runs)
            if kept:
                true_best, best = true, list(runs)
                while len(best) < remeasure:
                    best.append(true + rng.gauss(0, 1))
                    model.add(str(i), best[-1])
                    out.runs += 1
    return out


def compare(policy: str, quick: bool = False, **kw) -> tuple[SimResult, SimResult]:
    size = dict(sessions=60, iterations=40) if quick else dict(sessions=500, iterations=40)
    return chain(policy, 0.0, seed=11, **size, **kw), chain(policy, 2.0, seed=12, **size, **kw)


_ONE = {"min_runs": 1}  # a clear win keeps on its first run (the rule as first proposed)
ROWS = [  # (label, policy, per-candidate kwargs, chain kwargs)
    ("any (reference)", "any", {}, {}),
    ("sigma, z=2 (one run)", "sigma", {}, {}),
    ("confirm z=2, keep on 1 run, <= 2 runs", "confirm", {**_ONE, "max_runs": 2}, {**_ONE, "max_runs": 2}),
    ("confirm z=2, keep on 1 run, <= 3 runs", "confirm", _ONE, _ONE),
    ("two-sample z=2, keep on 1 run, <= 3 runs", "two_sample", {}, {}),
    ("**confirm z=2, keep on >= 2 runs, <= 3 runs (chosen)**", "confirm", {}, {}),
    ("confirm z=2, keep on >= 2 runs, <= 4 runs", "confirm", {"max_runs": 4}, {"max_runs": 4}),
    ("confirm z=1.8, keep on >= 2 runs, <= 3 runs", "confirm", {"z": 1.8}, {"z": 1.8}),
    ("chosen, sigma estimated (baseline x2)", "confirm", None, {"sigma_known": False}),
    ("chosen, sigma estimated (baseline x3)", "confirm", None, {"sigma_known": False, "baseline_repeats": 3}),
    ("chosen + each new best re-run to 3 runs", "confirm", None, {"remeasure": 3}),
]


def table(quick: bool = False) -> str:
    trials = 4000 if quick else 40000
    head = ("| rule | false keeps vs exact best | true keeps vs exact best | false keeps vs best of 2 runs "
            "| chain: false keeps (no-op) | chain: true keeps (2σ each) | runs/candidate (no-op, 2σ) |")
    lines = [head, "|" + "---|" * 7]
    for label, policy, pc, ck in ROWS:
        if pc is not None:
            f0 = per_candidate(policy, 0.0, trials=trials, seed=1, **pc).keep_rate
            t0 = per_candidate(policy, 2.0, trials=trials, seed=2, **pc).keep_rate
            f2 = per_candidate(policy, 0.0, trials=trials, seed=3, best_runs=2, **pc).keep_rate
            cells = [f"{f0:.1%}", f"{t0:.1%}", f"{f2:.1%}"]
        else:
            cells = ["", "", ""]
        nf, nt = compare(policy, quick, **ck)
        cells += [f"{nf.keep_rate:.1%}", f"{nt.keep_rate:.1%}",
                  f"{nf.runs_per_candidate:.2f}, {nt.runs_per_candidate:.2f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(quick="--quick" in sys.argv))
