"""Noise: how often each keep policy keeps a change that does nothing, and a change that truly helps.

1. Simulation (benchmarks/noise_sim.py, the real `judge`, driven as the engine drives it): whole
   40-iteration sessions, sigma estimated from the repeats seen so far, with and without drift.
2. The real Engine, one session per project, every key at its default but `keep_policy`:
   train.py prints 1.0 - 2*SIGMA*GAIN_STEPS - drift + N(0, SIGMA), seeded per run from a counter
   file, so re-runs of one commit differ. The no-op proposer changes NOTE (unused); the true
   proposer sets GAIN_STEPS to the current best's + 1, i.e. 2 sigma better than the best. Drift:
   the n-th run of the session is DRIFT * SIGMA * min(n / DRIFT_RUNS, 1) better (lower), a slow
   shift of one sigma over the session, the direction that makes later runs (candidates) look
   better than the best's earlier runs.
   A candidate is a commit; it counts as kept when its last result row says keep. Runs per
   candidate count every run made for it: its own and the best's runs beside it.
   Candidates of one session are correlated (one lucky best blocks many), so the standard error
   comes from the per-session rates: sd(rates) / sqrt(sessions).
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass

from benchmarks import noise_sim
from benchmarks.common import Figure, Scripted, make_project, run_engine, set_constant, tempdir

SIGMA = 0.01
NOISY_TRAIN = '''\
import os, random
GAIN_STEPS = 0
NOTE = 0
SIGMA = {sigma}
path = os.environ["ARBENCH_NOISE_COUNTER"]
n = int(open(path).read() or 0) if os.path.exists(path) else 0
open(path, "w").write(str(n + 1))
rng = random.Random(f"{{os.environ.get('ARBENCH_NOISE_SEED', '0')}}-{{n}}")
drift = float(os.environ.get("ARBENCH_NOISE_DRIFT", "0")) * SIGMA * min(n / int(os.environ.get("ARBENCH_NOISE_DRIFT_RUNS", "1")), 1)
value = 1.0 - 2 * SIGMA * GAIN_STEPS - drift + rng.gauss(0, SIGMA)
print("---")
print(f"val_bpb:          {{value:.6f}}")
print("peak_vram_mb:     0.0")
'''


@dataclass
class Rates:
    per_session: list[float]
    candidates: int = 0
    kept: int = 0
    runs: int = 0  # every run after the baseline: candidates' runs and the best's runs beside them

    @property
    def rate(self) -> float:
        return self.kept / max(self.candidates, 1)

    @property
    def stderr(self) -> float:
        s = self.per_session
        return statistics.stdev(s) / math.sqrt(len(s)) if len(s) > 1 else float("nan")

    @property
    def runs_per_candidate(self) -> float:
        return self.runs / max(self.candidates, 1)


def _pct(x: float) -> float:
    return round(100 * x, 1)


def engine_rates(policy: str, gain: bool, sessions: int, iterations: int, seed: int, drift: float = 0.0) -> Rates:
    from autoresearch_tui.engine import events as ev

    out = Rates([])
    for s in range(sessions):
        with tempdir("noise") as tmp:
            project = make_project(tmp / "proj", NOISY_TRAIN.format(sigma=SIGMA))
            os.environ.update(ARBENCH_NOISE_COUNTER=str(tmp / "counter"), ARBENCH_NOISE_SEED=f"{seed}-{policy}-{gain}-{drift}-{s}",
                              ARBENCH_NOISE_DRIFT=str(drift), ARBENCH_NOISE_DRIFT_RUNS=str(iterations * 3))
            run = run_engine(project, Scripted(_proposer(gain)), max_iterations=iterations, progress_every=0,
                             keep_policy=policy)
            results = [e for _, e in run.events if isinstance(e, ev.ResultRecorded)]
            last = {e.commit: e.status for e in results if e.iteration > 0}
            kept = sum(1 for status in last.values() if status == "keep")
            out.per_session.append(kept / max(len(last), 1))
            out.candidates += len(last)
            out.kept += kept
            out.runs += sum(1 for _, e in run.events if isinstance(e, ev.RunFinished) and e.iteration > 0)
    return out


def _proposer(gain: bool):
    """NOTE always changes (every candidate is its own commit); GAIN_STEPS only for true gains."""
    counter = iter(range(1, 10**6))

    def step(ctx):
        n = next(counter)
        source = set_constant(ctx.train_source, "NOTE", n)
        if not gain:
            return source, f"NOTE -> {n} (no-op)"
        steps = int(ctx.train_source.split("GAIN_STEPS = ")[1].split()[0]) + 1
        return set_constant(source, "GAIN_STEPS", steps), f"GAIN_STEPS -> {steps} (2 sigma better), try {n}"

    return step


def sim_figures(quick: bool):
    size = dict(sessions=60 if quick else 500, iterations=40, sigma_known=False)
    for label, policy, gain, drift in (("false_keeps", "confirm", 0.0, 0.0), ("true_keeps", "confirm", 2.0, 0.0),
                                       ("drift.false_keeps", "confirm", 0.0, 1.0)):
        r = noise_sim.chain(policy, gain, seed=11 if gain == 0 else 12, drift=drift, **size)
        target = ">= 90%" if gain else "<= 5%"
        ok = r.keep_rate >= 0.9 if gain else r.keep_rate <= 0.05
        yield Figure(f"noise.sim.session.{policy}.{label}", _pct(r.keep_rate), "%", target, ok,
                     f"± {_pct(r.stderr())}, {r.runs_per_candidate:.2f} runs per candidate (incl. the best's), "
                     f"{size['sessions']}x40 simulated")


def run(quick: bool = False):
    yield from sim_figures(quick)
    iterations = 8 if quick else 40
    plan = [  # (policy, gain, drift, sessions)
        ("any", False, 0.0, 1 if quick else 3), ("any", True, 0.0, 1 if quick else 3),
        ("sigma", False, 0.0, 1 if quick else 3), ("sigma", True, 0.0, 1 if quick else 3),
        ("confirm", False, 0.0, 1 if quick else 10), ("confirm", True, 0.0, 1 if quick else 10),
        ("confirm", False, 1.0, 1 if quick else 10), ("confirm", True, 1.0, 1 if quick else 4),
    ]
    for policy, gain, drift, sessions in plan:
        r = engine_rates(policy, gain, sessions, iterations, seed=7, drift=drift)
        what = ("drift." if drift else "") + ("true_keeps" if gain else "false_keeps")
        has_target = policy == "confirm" and not (drift and gain)
        target = (">= 90%" if gain else "<= 5%") if has_target else "none; reference"
        if has_target and quick:
            target += " (judged in the full run only: too few candidates here)"
        ok = (r.rate >= 0.9 if gain else r.rate <= 0.05) if has_target and not quick else None
        yield Figure(f"noise.engine.{policy}.{what}", _pct(r.rate), "%", target, ok,
                     f"± {_pct(r.stderr)} (per-session sd / sqrt({sessions})), {r.kept} of {r.candidates} candidates, "
                     f"{r.runs_per_candidate:.2f} runs per {'true' if gain else 'no-op'} candidate incl. the best's, "
                     f"{sessions}x{iterations} iterations")
