"""Loop overhead: engine time per iteration outside training and the agent.

A branch with N earlier experiments is built in one `git fast-import` (kept ones on the branch,
discarded ones under refs/autoresearch/<tag>/<n>, as the engine leaves them), with the matching
results.tsv rows and events.jsonl; then the real Engine resumes it for a few iterations with an
instant train.py and an instant proposer. Per iteration: wall time between two IterationStarted
events minus the training subprocess (RunFinished.duration_s) minus the proposer's own time.
The reference is a bare `git commit -a` + `git reset --hard HEAD~1` pair on the same repo.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import subprocess
import time
from pathlib import Path

from benchmarks.common import (
    GIT_ENV, INSTANT_TRAIN, Figure, Scripted, git, make_project, median, run_engine, set_constant, tempdir,
)

TAG = "bench"
DIFF = "--- a/train.py\n+++ b/train.py\n@@ -1,3 +1,3 @@\n-LR = 0.1\n+LR = 0.11\n WIDTH = 8\n"


def build_history(project: Path, n: int) -> None:
    """n experiments after the baseline (1 in 5 kept) as git objects, rows and events."""
    from autoresearch_tui.engine import events as ev
    from autoresearch_tui.engine import results
    from autoresearch_tui.engine.session import SessionDir

    base = git(project, "rev-parse", "HEAD")
    stream, mark = [], 0
    best_mark: int | None = None
    plan = []  # (i, kept, commit mark)
    for i in range(1, n + 1):
        kept = i % 5 == 1
        src = set_constant(INSTANT_TRAIN, "NOTE", i).encode()
        mark += 1
        stream.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(src), src))
        blob = mark
        mark += 1
        ref = f"refs/heads/autoresearch/{TAG}" if kept else f"refs/autoresearch/{TAG}/{i}"
        msg = f"exp: NOTE -> {i}".encode()
        parent = f":{best_mark}" if best_mark else base
        stream.append(b"commit %s\nmark :%d\ncommitter bench <bench@localhost> %d +0000\ndata %d\n%s\nfrom %s\n"
                      b"M 100644 :%d train.py\n\n" % (ref.encode(), mark, 1_700_000_000 + i, len(msg), msg,
                                                      parent.encode(), blob))
        plan.append((i, kept, mark))
        if kept:
            best_mark = mark
    if best_mark is None:  # n == 0: the branch is the base
        git(project, "branch", f"autoresearch/{TAG}", base)
    marks = project.parent / "marks"
    subprocess.run(["git", "fast-import", "--quiet", f"--export-marks={marks}"], cwd=project, check=True,
                   input=b"".join(stream), env={**os.environ, **GIT_ENV})
    sha = dict(line.split() for line in marks.read_text().splitlines())
    git(project, "checkout", "-q", f"autoresearch/{TAG}")

    session = SessionDir(project / ".autoresearch" / TAG).create()
    session.write_origin("main", base)
    session.write_snapshot({"tag": TAG, "metric": "val_bpb:min", "project": str(project)})
    lines = [ev.SessionStarted(tag=TAG, branch=f"autoresearch/{TAG}", project=str(project), original_branch="main",
                               base_commit=base, config={"metric": "val_bpb:min", "time_budget": "60s"}).to_json()]
    rows = [results.header("val_bpb")]
    best_metric, best_commit = 1.3, base
    for i, kept, m in [(0, True, None), *plan]:
        commit = sha[f":{m}"] if m else base
        metric = best_metric - 0.001 if kept and i else best_metric + 0.002 if i else best_metric
        desc = "baseline" if i == 0 else f"NOTE -> {i}, with a comma, and more words to be realistic"
        if kept:
            best_metric, best_commit = metric, commit
        log = f"runs/{i:04d}-{commit[:7]}.log"
        lines += [ev.IterationStarted(iteration=i, parent=best_commit).to_json()]
        if i:
            lines.append(ev.ProposalMade(iteration=i, description=desc, diff=DIFF, meta={"constant": "NOTE"}).to_json())
        lines += [
            ev.RunStarted(iteration=i, commit=commit, log=log, budget_s=60, limit_s=120).to_json(),
            ev.RunFinished(iteration=i, commit=commit, exit_code=0, duration_s=0.03, timed_out=False, metric=metric,
                           summary={"val_bpb": metric}, peak_memory_mb=None).to_json(),
            ev.ResultRecorded(iteration=i, commit=commit, metric=metric, memory_gb=0.0,
                              status="keep" if kept else "discard", description=desc, reason="history",
                              best_commit=best_commit, best_metric=best_metric).to_json(),
        ]
        rows.append(results.format_row(results.ResultRow(commit[:7], metric, 0.0, "keep" if kept else "discard", desc)))
    session.events_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (project / "results.tsv").write_text("".join(rows), encoding="utf-8")


def proposer() -> Scripted:
    counter = iter(range(1, 10**6))

    def step(ctx):
        k = next(counter)
        if k % 3 == 0:  # a real improvement now and then, so keeps and discards both happen
            lr = round(float(ctx.train_source.split("LR = ")[1].split()[0]) + 0.01, 4)
            return set_constant(ctx.train_source, "LR", lr), f"LR -> {lr}"
        return set_constant(ctx.train_source, "NOTE", 10**6 + k), f"NOTE -> {10**6 + k}"

    return Scripted(step)


def measure(history: int, iterations: int, profile: cProfile.Profile | None = None) -> tuple[list[float], float]:
    """(engine overhead per iteration, median bare commit+reset pair), both in seconds."""
    from autoresearch_tui.engine import events as ev

    with tempdir("overhead") as tmp:
        project = make_project(tmp / "proj")
        build_history(project, history)
        prop = proposer()
        run = run_engine(project, prop, resume=True, max_iterations=history + iterations, profile=profile)
        starts = [(t, e.iteration) for t, e in run.events if isinstance(e, ev.IterationStarted)]
        train = {}
        for _, e in run.events:
            if isinstance(e, ev.RunFinished):
                train[e.iteration] = train.get(e.iteration, 0.0) + e.duration_s
        overhead = [t1 - t0 - train.get(n, 0.0) - prop.spent.get(n, 0.0)
                    for (t0, n), (t1, _) in zip(starts, starts[1:])]
        pairs = []
        for k in range(max(5, iterations)):
            (project / "train.py").write_text(set_constant(INSTANT_TRAIN, "NOTE", -k - 1))
            t0 = time.perf_counter()
            git(project, "commit", "-q", "-a", "-m", f"bare {k}")
            git(project, "reset", "-q", "--hard", "HEAD~1")
            pairs.append(time.perf_counter() - t0)
        return overhead, median(pairs)


def run(quick: bool = False):
    iterations, repeats = (6, 1) if quick else (11, 3)
    profile_dir = os.environ.get("ARBENCH_PROFILE")
    for history in (10, 1000):
        overhead, pairs = [], []
        for _ in range(repeats):  # alternate engine and reference blocks: load drifts hit both
            o, p = measure(history, iterations)
            overhead += o
            pairs.append(p)
        med, pair = median(overhead), median(pairs)
        ok = med <= 0.25 and med <= 2 * pair
        yield Figure(f"overhead.per_iteration.history_{history}", med * 1000, "ms",
                     f"median <= 250 ms and <= 2x commit+reset pair = {2 * pair * 1000:.0f} ms", ok,
                     f"{med / pair:.1f}x the pair; {len(overhead)} iterations in {repeats} session(s)")
        yield Figure(f"overhead.max_iteration.history_{history}", max(overhead) * 1000, "ms",
                     "none; the slowest iteration (a progress report every 10)", None)
        yield Figure(f"overhead.git_commit_reset_pair.history_{history}", pair * 1000, "ms", "none; reference", None)
    if profile_dir:  # a separate run: the profiler's own cost must not count in the figures
        prof = cProfile.Profile()
        measure(1000, iterations, prof)
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(25)
        path = Path(profile_dir) / "overhead-1000.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out.getvalue())
