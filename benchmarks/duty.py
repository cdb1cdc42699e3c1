"""Duty cycle: the fraction of wall time the accelerator spends training.

A fake agent that takes L = T/4 to answer and a fake training that takes T, through the real
Engine for 30 iterations (--quick: 5, with T = 0.5 s instead of 2 s). Sequentially the agent's time is dead time, so the bound is
T / (T + L) = 80% minus the engine's own overhead. With `pipeline = "on"` (the next proposal is
prepared while the current run trains) the agent's latency hides behind training.
"""

from __future__ import annotations

from benchmarks.common import Figure, config_has, make_project, run_engine, tempdir
from benchmarks.overhead import proposer

TRAIN = '''\
import time
LR = 0.1
WIDTH = 8
NOTE = 0
time.sleep({T})
print("---")
print(f"val_bpb:          {{1.0 + abs(LR - 0.4) + abs(WIDTH - 16) / 100:.6f}}")
'''


def fraction(T: float, iterations: int, pipeline: str | None) -> tuple[float, float]:
    """(training time / wall time, wall time) for one session."""
    from autoresearch_tui.engine import events as ev

    with tempdir("duty") as tmp:
        project = make_project(tmp / "proj", TRAIN.format(T=T))
        prop = proposer()
        prop.latency = T / 4
        run = run_engine(project, prop, max_iterations=iterations, progress_every=0, pipeline=pipeline)
        times = [t for t, e in run.events if isinstance(e, (ev.SessionStarted, ev.SessionEnded))]
        wall = times[-1] - times[0]
        train = sum(e.duration_s for _, e in run.events if isinstance(e, ev.RunFinished))
        return train / wall, wall


def run(quick: bool = False):
    T, n = (0.5, 5) if quick else (2.0, 30)
    bound = T / (T + T / 4)
    has_pipeline = config_has("pipeline")
    seq, wall = fraction(T, n, "off" if has_pipeline else None)
    yield Figure("duty.sequential", seq * 100, "% of wall time training",
                 f"none; bound T/(T+L) = {bound:.0%} with T={T:g}s, L={T / 4:g}s, {n} iterations", None)
    if not has_pipeline:
        yield Figure("duty.pipelined", None, "% of wall time training", ">= 95%", False, "not implemented yet")
        return
    pipe, pwall = fraction(T, n, "on")
    yield Figure("duty.pipelined", pipe * 100, "% of wall time training", ">= 95%", pipe >= 0.95,
                 f"{wall / pwall:.2f}x faster than sequential" + ("; quick: T = 0.5 s, so the engine's own time per iteration weighs more" if quick else "") if pipe < 0.9 else "")
    yield Figure("duty.pipelined_speedup", wall / pwall, "x sequential wall time", "none; ideal (T+L)/T = 1.25", None)
