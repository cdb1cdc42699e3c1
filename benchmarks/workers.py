"""Parallel workers: experiments per wall-clock second with 4 workers vs the sequential loop.

A fake training of fixed length (sleep T = 1 s, then print the metric) and a fake instant agent
(one constant of eight set to a random value per proposal, some better, most not), through the
real engines on CPU: the sequential Engine, then the same Engine with 4 worker slots. Each session runs
its baseline, then a window of W seconds (--quick: 6 s, else 30 s); the stop request at the end
of the window lets the runs in flight finish. The figure is the ratio of the rates (experiments
finished in the window / time of the last one finished in it); the counts in the window are in
the note. Both sessions are then checked for the sequential loop's invariants.

    python -m benchmarks workers [--quick]     or     python -m benchmarks.workers [--quick]
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Figure, git, make_project, tempdir

NAMES = [f"C{i}" for i in range(8)]
TRAIN = "import time\n" + "".join(f"{n} = 1\n" for n in NAMES) + '''\
time.sleep({T})
print("---")
print(f"val_bpb:          {{1.0 + sum((v - 5) ** 2 for v in ({names})) / 100:.6f}}")
print("peak_vram_mb:     0.0")
'''.replace("{names}", ", ".join(NAMES) + ",")


class InstantAgent:
    """Answers at once: one constant (round robin) set to a random value 0..9."""

    name = "bench-workers"
    touches_tree = False  # returns a source, writes no files (like the built-in proposer)

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.count = 0

    async def propose(self, ctx):
        from autoresearch_tui.agents.base import Proposal

        busy = {a.meta.get("constant") for a in getattr(ctx, "in_flight", ())}
        names = [n for n in NAMES if n not in busy] or NAMES
        name = names[self.count % len(names)]
        self.count += 1
        current = int(re.search(rf"^{name} = (\d+)$", ctx.train_source, re.M).group(1))
        value = self.rng.choice([v for v in range(10) if v != current])
        source = re.sub(rf"^{name} = .*$", f"{name} = {value}", ctx.train_source, count=1, flags=re.M)
        return Proposal(source, f"{name} {current} -> {value}", {"constant": name, "old": current, "new": value})


def session(project: Path, workers: int, window: float) -> dict:
    """One session on `project`: experiments finished within `window` s after the baseline."""
    from autoresearch_tui.engine import events as ev
    from autoresearch_tui.engine.config import load_config
    from autoresearch_tui.engine.loop import Engine

    config = load_config(project, None, {"time_budget": "60s", "metric": "val_bpb:min", "tag": "bench",
                                         "device": "cpu", "progress_every": 0, "pipeline": "off"})
    stamps: list[tuple[float, ev.Event]] = []
    config.workers = workers  # 1: one slot in the main tree; more: worker slots in worktrees
    engine = Engine(config, InstantAgent())

    def listen(event: ev.Event) -> None:
        now = time.perf_counter()
        stamps.append((now, event))
        if isinstance(event, ev.ResultRecorded) and event.iteration == 0:
            asyncio.get_running_loop().call_later(window, engine.request_stop)

    engine.listeners.append(listen)
    engine.prepare()
    asyncio.run(engine.run())
    t0 = next(t for t, e in stamps if isinstance(e, ev.ResultRecorded) and e.iteration == 0)
    done = [t - t0 for t, e in stamps if isinstance(e, ev.ResultRecorded) and e.iteration > 0 and t - t0 <= window]
    runs = len([e for _, e in stamps if isinstance(e, ev.RunStarted) and e.iteration > 0])
    return {"count": len(done), "rate": len(done) / done[-1] if done else 0.0, "runs": runs,
            "problems": invariants(project, "bench")}


def invariants(project: Path, tag: str) -> list[str]:
    """The sequential loop's guarantees; an empty list when they all hold."""
    from autoresearch_tui.engine import events as ev
    from autoresearch_tui.engine.results import read_results
    from autoresearch_tui.engine.session import SessionDir

    problems = []
    events = SessionDir(project / ".autoresearch" / tag).events()
    rows = read_results(project / "results.tsv").rows
    recorded = [e for e in events if isinstance(e, ev.ResultRecorded)]
    iterations = sorted(e.iteration for e in recorded)
    if iterations != list(range(len(iterations))) or len(rows) != len(recorded):
        problems.append("not one row per experiment")
    ran = {e.iteration for e in events if isinstance(e, ev.RunStarted)}
    if ran != set(iterations):
        problems.append("an experiment ran without a row")
    head = git(project, "rev-parse", f"autoresearch/{tag}")
    for row in rows:
        full = git(project, "rev-parse", row.commit)
        on_branch = subprocess.run(["git", "merge-base", "--is-ancestor", full, head], cwd=project).returncode == 0
        if on_branch != (row.status == "keep"):
            problems.append(f"{row.status} {row.commit} {'is' if on_branch else 'is not'} on the branch")
    if git(project, "status", "--porcelain"):
        problems.append("working tree not clean")
    if len(git(project, "worktree", "list").splitlines()) != 1:
        problems.append("worktrees left behind")
    return problems


def run(quick: bool = False):
    T, window, workers = 1.0, (6.0 if quick else 30.0), 4
    results = {}
    for n in (1, workers):
        with tempdir(f"workers{n}") as tmp:
            project = make_project(tmp / "proj", TRAIN.format(T=T))
            results[n] = session(project, n, window)
    one, many = results[1], results[workers]
    ratio = many["rate"] / one["rate"] if one["rate"] else 0.0
    note = (f"{one['count']} experiments in {window:g} s with 1 worker, {many['count']} with {workers} "
            f"(T = {T:g} s of training each)")
    yield Figure("workers", round(ratio, 2), "x", ">= 3.6x", ratio >= 3.6, note)
    problems = one["problems"] + many["problems"]
    yield Figure("workers.invariants", "hold" if not problems else "broken", "",
                 "keeps on the branch, no discard on it, one row per experiment, clean tree", not problems,
                 "; ".join(problems))


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv[1:]):
        print(figure.line(), flush=True)
