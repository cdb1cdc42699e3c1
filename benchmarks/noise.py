"""Noise: how often each keep policy keeps a change that does nothing, and a change that truly helps.

1. Simulation (benchmarks/noise_sim.py, the real `judge`): per candidate against an exactly
   known best, and whole 40-iteration sessions where the best is what the engine would have
   (baseline run twice, a kept candidate's own runs, sigma pooled from the repeats seen so far).
2. The real Engine (once `keep_policy`, `noise_z`, `confirm_runs`, `baseline_repeats` exist in
   ResearchConfig): train.py prints 1.0 - 2*SIGMA*GAIN_STEPS + N(0, SIGMA), seeded per run from a
   counter file, so re-runs of one commit differ. The no-op proposer changes NOTE (unused); the
   true proposer sets GAIN_STEPS to the current best's + 1, i.e. 2 sigma better than the best.
   Rates per candidate commit: kept = its last result row says keep.
"""

from __future__ import annotations

import os

from benchmarks import noise_sim
from benchmarks.common import Figure, Scripted, config_has, make_project, run_engine, set_constant, tempdir

KEYS = ("keep_policy", "noise_z", "confirm_runs", "baseline_repeats")
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
value = 1.0 - 2 * SIGMA * GAIN_STEPS + rng.gauss(0, SIGMA)
print("---")
print(f"val_bpb:          {{value:.6f}}")
print("peak_vram_mb:     0.0")
'''


def _pct(x: float) -> float:
    return round(100 * x, 1)


def sim_figures(quick: bool):
    trials = 4000 if quick else 40000
    pc = {(p, g): noise_sim.per_candidate(p, g, trials=trials, seed=int(g) + 1) for p in ("any", "confirm") for g in (0.0, 2.0)}
    yield Figure("noise.sim.per_candidate.any.false_keeps", _pct(pc["any", 0.0].keep_rate), "%",
                 "none; reference, best known exactly", None)
    yield Figure("noise.sim.per_candidate.any.true_keeps", _pct(pc["any", 2.0].keep_rate), "%", "none; reference", None)
    f, t = pc["confirm", 0.0], pc["confirm", 2.0]
    yield Figure("noise.sim.per_candidate.confirm.false_keeps", _pct(f.keep_rate), "%", "<= 5%, best known exactly",
                 f.keep_rate <= 0.05, f"{f.runs_per_candidate:.2f} runs per no-op candidate")
    yield Figure("noise.sim.per_candidate.confirm.true_keeps", _pct(t.keep_rate), "%", ">= 90%, best known exactly",
                 t.keep_rate >= 0.9, f"{t.runs_per_candidate:.2f} runs per 2-sigma candidate")
    size = dict(sessions=60 if quick else 500, iterations=40, sigma_known=False, baseline_repeats=2)
    for policy in ("any", "sigma", "confirm"):
        nf = noise_sim.chain(policy, 0.0, seed=11, **size)
        nt = noise_sim.chain(policy, 2.0, seed=12, **size)
        target = policy == "confirm"
        yield Figure(f"noise.sim.session.{policy}.false_keeps", _pct(nf.keep_rate), "%",
                     "<= 5%" if target else "none", nf.keep_rate <= 0.05 if target else None,
                     f"{nf.runs_per_candidate:.2f} runs per candidate")
        yield Figure(f"noise.sim.session.{policy}.true_keeps", _pct(nt.keep_rate), "%",
                     ">= 90%" if target else "none", nt.keep_rate >= 0.9 if target else None,
                     f"{nt.runs_per_candidate:.2f} runs per candidate" + ("; the winner's curse: a kept candidate's "
                                                                           "lucky runs become the best" if target else ""))
    nt = noise_sim.chain("confirm", 2.0, seed=12, remeasure=3, **size)
    yield Figure("noise.sim.session.confirm_remeasure3.true_keeps", _pct(nt.keep_rate), "%",
                 "none; if the engine re-ran each new best to 3 runs", None,
                 f"{nt.runs_per_candidate:.2f} runs per candidate")


def engine_rates(policy: str, gain: bool, sessions: int, iterations: int, seed: int) -> tuple[int, int, int]:
    """(candidates, kept, runs of candidates) over `sessions` real engine sessions."""
    from autoresearch_tui.engine import events as ev

    candidates = kept = runs = 0
    for s in range(sessions):
        with tempdir("noise") as tmp:
            project = make_project(tmp / "proj", NOISY_TRAIN.format(sigma=SIGMA))
            os.environ["ARBENCH_NOISE_COUNTER"] = str(tmp / "counter")
            os.environ["ARBENCH_NOISE_SEED"] = f"{seed}-{policy}-{gain}-{s}"
            run = run_engine(project, Scripted(_proposer(gain)), max_iterations=iterations, progress_every=0, keep_policy=policy,
                             noise_z=2.0, confirm_runs=noise_sim.MAX_RUNS, baseline_repeats=2, min_delta=0.0)
            results = [e for _, e in run.events if isinstance(e, ev.ResultRecorded)]
            baseline = {e.commit for e in results if e.iteration == 0}
            last: dict[str, str] = {}
            for e in results:
                if e.commit not in baseline:
                    last[e.commit] = e.status
            candidates += len(last)
            kept += sum(1 for status in last.values() if status == "keep")
            runs += sum(1 for _, e in run.events if isinstance(e, ev.RunFinished) and e.commit not in baseline)
    return candidates, kept, runs


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


def run(quick: bool = False):
    yield from sim_figures(quick)
    if not config_has(*KEYS):
        missing = [k for k in KEYS if not config_has(k)]
        yield Figure("noise.engine", None, "", "false keeps <= 5% with confirm, true keeps >= 90%", False,
                     f"not integrated yet (ResearchConfig lacks {', '.join(missing)}); simulation figures above")
        return
    iterations = 8 if quick else 40
    for policy in ("any", "sigma", "confirm"):
        # Candidates of one session are correlated (a lucky best blocks many): sessions count, not candidates.
        sessions = 1 if quick else 10 if policy == "confirm" else 4
        for gain in (False, True):
            n, k, r = engine_rates(policy, gain, sessions, iterations, seed=7)
            rate = k / max(n, 1)
            what = "true_keeps" if gain else "false_keeps"
            target = ">= 90%" if gain else "<= 5%"
            ok = (rate >= 0.9 if gain else rate <= 0.05) if policy == "confirm" and not quick else None
            if policy != "confirm":
                target = "none; reference"
            elif quick:
                target += " (judged in the full run only: too few candidates here)"
            yield Figure(f"noise.engine.{policy}.{what}", _pct(rate), "%", target, ok,
                         f"{k} of {n} candidates, {r / max(n, 1):.2f} runs each, {sessions}x{iterations} iterations")
