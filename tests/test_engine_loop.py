"""The research loop on real git repositories with real training subprocesses."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import psutil
import pytest

from autoresearch_tui.agents.base import Proposal, ProposalContext
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.config import load_config
from autoresearch_tui.engine.loop import Engine
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.engine.control import Stop
from autoresearch_tui.engine.session import SessionDir
from autoresearch_tui.engine.state import SessionState

from conftest import FAKE_TRAIN, Scripted, git, make_project, run_engine

pytestmark = pytest.mark.slow  # starts engines or real training runs


def rows(project: Path):
    return read_results(project / "results.tsv").rows


def test_keep_discard_history_matches_git(project: Path) -> None:
    steps = [("LR", 0.2), ("LR", 0.05), ("WIDTH", 16), ("LR", 0.1)]
    engine, end, events = run_engine(project, Scripted(steps), max_iterations=4)
    table = rows(project)
    assert [r.status for r in table] == ["keep", "keep", "discard", "keep", "discard"]
    assert table[0].description == "baseline"
    assert end.reason == "max_iterations" and end.iterations == 4
    head = git(project, "rev-parse", "HEAD")
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "autoresearch/t1"
    for row in table:
        full = git(project, "rev-parse", row.commit)
        ancestor = _is_ancestor(project, full, head)
        assert ancestor == (row.status == "keep"), row
    # Discarded attempts stay reachable: a ref and a patch per discard; every keep has its ref too.
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/autoresearch/t1").split()
    kept = [f"refs/autoresearch/t1/keep/{n}" for n, row in enumerate(table) if row.status == "keep"]
    assert refs == ["refs/autoresearch/t1/2", "refs/autoresearch/t1/4", *kept]
    session = SessionDir(project / ".autoresearch" / "t1")
    assert len(list(session.attempts.glob("*.patch"))) == 2
    assert "LR = 0.05" in (session.attempts / f"0002-{table[2].commit}.patch").read_text()
    # The working tree is clean at rest and the best script is checked out.
    assert git(project, "status", "--porcelain") == ""
    assert "WIDTH = 16" in (project / "train.py").read_text() and "LR = 0.2" in (project / "train.py").read_text()
    # The events replay the same rows.
    state = SessionState().apply_all(session.events())
    assert [(r.commit, r.status, r.metric) for r in state.rows] == [(r.commit, r.status, r.metric) for r in table]
    assert state.best_commit == head and state.ended is not None
    # The original branch was never touched.
    assert git(project, "log", "--oneline", "main").count("\n") == 0
    assert (project / "autoresearch-summary.md").exists()


def _is_ancestor(project: Path, a: str, b: str) -> bool:
    import subprocess

    return subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=project).returncode == 0


def test_results_and_session_are_ignored_by_git(project: Path) -> None:
    run_engine(project, Scripted([("LR", 0.05)]), max_iterations=1)
    assert git(project, "status", "--porcelain", "--ignored=no") == ""
    exclude = (project / ".git" / "info" / "exclude").read_text()
    assert "/results.tsv" in exclude and "/.autoresearch/" in exclude


def test_crash_is_recorded_and_reset(project: Path) -> None:
    def boom(ctx):
        return Proposal(ctx.train_source.replace("time.sleep(SLEEP)", "raise RuntimeError('exploded on purpose')"),
                        "make it crash", {})

    engine, end, events = run_engine(project, Scripted([boom, ("LR", 0.2)]), max_iterations=2)
    table = rows(project)
    assert [r.status for r in table] == ["keep", "crash", "keep"]
    assert table[1].metric is None
    raw = (project / "results.tsv").read_text().splitlines()[2].split("\t")
    assert raw[1] == "0.000000" and raw[2] == "0.0"
    finished = [e for e in events if isinstance(e, ev.RunFinished) and e.iteration == 1][0]
    assert "exploded on purpose" in finished.crash_reason
    assert "exploded" not in (project / "train.py").read_text()


def test_nan_metric_is_a_crash(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FAKE_TRAIN.replace('value = abs', 'value = float("nan") if LR > 1 else abs'))
    engine, end, events = run_engine(project, Scripted([("LR", 5.0)]), max_iterations=1)
    table = rows(project)
    assert table[1].status == "crash"
    result = [e for e in events if isinstance(e, ev.ResultRecorded)][-1]
    assert "NaN" in result.reason


def test_missing_metric_is_a_crash_with_reason(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FAKE_TRAIN.replace('print(f"val_bpb:', 'print(f"other:'))
    engine, end, events = run_engine(project, Scripted([]), max_iterations=1)
    assert end.reason == "bad_metric"
    assert "never printed" in [e for e in events if isinstance(e, ev.ResultRecorded)][0].reason


def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    hang = FAKE_TRAIN.replace(
        "time.sleep(SLEEP)",
        "import subprocess\nif LR > 1:\n    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "    print('child', child.pid, flush=True)\n    time.sleep(600)",
    )
    project = make_project(tmp_path / "p", hang)
    engine, end, events = run_engine(project, Scripted([("LR", 5.0)]), max_iterations=1,
                                     time_budget="1s", kill_grace="1s")
    finished = [e for e in events if isinstance(e, ev.RunFinished) and e.iteration == 1][0]
    assert finished.timed_out and "timeout" in finished.crash_reason
    assert finished.duration_s < 10
    assert rows(project)[1].status == "crash"
    log = (project / ".autoresearch" / "t1" / [e for e in events if isinstance(e, ev.RunStarted)][-1].log).read_text()
    child_pid = int(re.search(r"child (\d+)", log).group(1))
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE


def test_oom_retries_once_with_half_batch(tmp_path: Path) -> None:
    oom = FAKE_TRAIN.replace(
        "time.sleep(SLEEP)",
        "if LR > 1 and float(os.environ['AUTORESEARCH_BATCH_SCALE']) > 0.2:\n"
        "    print('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB', flush=True)\n"
        "    sys.exit(1)",
    )
    project = make_project(tmp_path / "p", oom)
    engine, end, events = run_engine(project, Scripted([("LR", 2.0)]), max_iterations=1)
    starts = [e for e in events if isinstance(e, ev.RunStarted) and e.iteration == 1]
    assert [s.attempt for s in starts] == [1, 2]
    first = [e for e in events if isinstance(e, ev.RunFinished) and e.iteration == 1][0]
    assert first.oom
    assert rows(project)[1].status in ("keep", "discard")  # the retry produced a metric
    assert rows(project)[1].metric is not None


def test_oom_twice_is_discarded_as_crash(tmp_path: Path) -> None:
    oom = FAKE_TRAIN.replace(
        "time.sleep(SLEEP)",
        "if LR > 1 and os.environ['AUTORESEARCH_BATCH_SCALE']:\n"
        "    print('RuntimeError: MPS backend out of memory', flush=True)\n    sys.exit(1)",
    )
    project = make_project(tmp_path / "p", oom)
    engine, end, events = run_engine(project, Scripted([("LR", 2.0)]), max_iterations=1)
    assert len([e for e in events if isinstance(e, ev.RunStarted) and e.iteration == 1]) == 2
    assert rows(project)[1].status == "crash"
    assert "out of memory" in rows(project)[1].description


def test_protected_files_are_reverted(project: Path) -> None:
    def rogue(ctx):
        root = Path(ctx.project)
        (root / "prepare.py").write_text("TIME_BUDGET = 1\n")
        (root / "notes.txt").write_text("agent scribbles")
        (root / ".gitignore").write_text("")
        src = ctx.train_source.replace("LR = 0.1", "LR = 0.2")
        return Proposal(src, "LR up plus sneaky edits", {})

    engine, end, events = run_engine(project, Scripted([rogue]), max_iterations=1)
    tripped = [e for e in events if isinstance(e, ev.GuardrailTripped)]
    assert tripped and {"prepare.py", "notes.txt", ".gitignore"} <= set(tripped[0].reverted)
    assert (project / "prepare.py").read_text() == "TIME_BUDGET = 300\n"
    assert not (project / "notes.txt").exists()
    changed = git(project, "show", "--name-only", "--format=", "HEAD").split()
    assert changed == ["train.py"]


def test_agent_that_commits_and_switches_branch_is_restored(project: Path) -> None:
    def committer(ctx):
        root = Path(ctx.project)
        src = ctx.train_source.replace("LR = 0.1", "LR = 0.2")
        (root / "train.py").write_text(src)
        git(root, "commit", "-qam", "agent commit")
        git(root, "checkout", "-q", "main")
        return Proposal(src, "LR 0.1 -> 0.2", {})

    engine, end, events = run_engine(project, Scripted([committer]), max_iterations=1)
    assert git(project, "rev-parse", "--abbrev-ref", "HEAD") == "autoresearch/t1"
    assert git(project, "log", "-1", "--format=%s") == "exp: LR 0.1 -> 0.2"
    assert git(project, "log", "--oneline", "main").count("\n") == 0  # main untouched
    assert any(isinstance(e, ev.GuardrailTripped) for e in events)


def test_syntax_error_and_empty_change_are_reasked(project: Path) -> None:
    bad = lambda ctx: Proposal(ctx.train_source.replace("LR = 0.1", "LR = = 0.1"), "broken", {})
    same = lambda ctx: Proposal(ctx.train_source, "nothing", {})
    proposer = Scripted([bad, same, ("LR", 0.2)])
    engine, end, events = run_engine(project, proposer, max_iterations=1)
    failed = [e.reason for e in events if isinstance(e, ev.ProposalFailed)]
    assert "syntax error" in failed[0] and "unchanged" in failed[1]
    assert "syntax error" in proposer.contexts[1].feedback
    assert len([e for e in events if isinstance(e, ev.RunStarted)]) == 2  # baseline + one real run
    assert [r.status for r in rows(project)] == ["keep", "keep"]


def test_stop_request_finishes_current_run(project: Path) -> None:
    config = load_config(project, None, {"time_budget": "2s", "metric": "val_bpb:min", "tag": "t1"})
    engine = Engine(config, Scripted([("LR", 0.2), ("LR", 0.3), ("LR", 0.35)]), listeners=[])

    def stop_after_first_result(event):
        if isinstance(event, ev.ResultRecorded) and event.iteration == 1:
            engine.request_stop()

    engine.listeners.append(stop_after_first_result)
    engine.prepare()
    end = asyncio.run(engine.run())
    assert end.reason == "stopped" and end.iterations == 1
    assert len(rows(project)) == 2


def test_exhausted_proposer_ends_cleanly(project: Path) -> None:
    engine, end, events = run_engine(project, Scripted([("LR", 0.2)]))
    assert end.reason == "exhausted" and end.iterations == 1


def test_control_file_stop_from_another_process(project: Path) -> None:
    slow = Scripted([("SLEEP", 1.0), ("LR", 0.3), ("LR", 0.35), ("LR", 0.36)])
    config = load_config(project, None, {"time_budget": "5s", "metric": "val_bpb:min", "tag": "t1"})
    engine = Engine(config, slow)

    def on_event(event):
        if isinstance(event, ev.RunStarted) and event.iteration == 1:
            SessionDir(config.session_path()).send(Stop())

    engine.listeners.append(on_event)
    engine.prepare()
    end = asyncio.run(engine.run())
    assert end.reason == "stopped" and end.iterations == 1


def test_refuses_existing_branch(project: Path) -> None:
    from autoresearch_tui.errors import UserError

    git(project, "branch", "autoresearch/t1")
    config = load_config(project, None, {"time_budget": "2s", "metric": "val_bpb:min", "tag": "t1"})
    with pytest.raises(UserError, match="already exists"):
        Engine(config, Scripted([])).prepare()


def test_circuit_breaker_pauses_when_the_best_commit_fails_too(tmp_path: Path) -> None:
    gpu = tmp_path / "gpu_ok"
    gpu.write_text("")
    train = FAKE_TRAIN.replace("import math, os, sys, time\n",
                               f"import math, os, sys, time\nassert os.path.exists({str(gpu)!r}), 'device lost'\n")
    project = make_project(tmp_path / "p", train)

    def device_lost(ctx):
        gpu.unlink(missing_ok=True)  # the environment breaks during the night
        return Proposal(ctx.train_source.replace("LR = 0.1", f"LR = {0.1 + len(ctx.history) / 100}"),
                        f"try {len(ctx.history)}", {})

    config = load_config(project, None, {"time_budget": "2s", "metric": "val_bpb:min", "tag": "t1",
                                         "max_iterations": 10, "circuit_breaker": 3})
    seen: list[ev.Event] = []
    engine = Engine(config, Scripted([device_lost] * 10), listeners=[seen.append])

    def on_event(event):
        if isinstance(event, ev.LoopPaused):
            engine.request_stop()  # the user reads why, then stops

    engine.listeners.append(on_event)
    engine.prepare()
    end = asyncio.run(engine.run())
    paused = [e for e in seen if isinstance(e, ev.LoopPaused)]
    assert len(paused) == 1 and paused[0].breaker and "device lost" in paused[0].reason
    assert "fails too" in paused[0].reason and "autoresearch-tui control .autoresearch/t1 resume" in paused[0].reason
    assert end.reason == "stopped" and end.iterations == 3


def test_divergence_does_not_trip_the_breaker(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FAKE_TRAIN.replace('value = abs', 'value = float("nan") if LR > 1 else abs'))
    steps = [("LR", 2.0), ("LR", 3.0), ("LR", 4.0), ("LR", 5.0)]
    engine, end, events = run_engine(project, Scripted(steps), max_iterations=4, circuit_breaker=2)
    assert not any(isinstance(e, ev.LoopPaused) for e in events)
    assert end.reason == "max_iterations"


class Slow(Scripted):
    """A scripted agent that takes time to think, like an LLM."""

    def __init__(self, steps, latency: float):
        super().__init__(steps)
        self.latency = latency

    async def propose(self, ctx: ProposalContext) -> Proposal:
        await asyncio.sleep(self.latency)
        return await super().propose(ctx)


def test_pipelined_proposals_are_prepared_during_runs_and_rebased_after_keeps(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FAKE_TRAIN.replace("SLEEP = 0.05", "SLEEP = 0.6"))
    steps = [("LR", 0.2), ("WIDTH", 12), ("LR", 0.05), ("WIDTH", 16)]
    engine, end, events = run_engine(project, Slow(steps, 0.3), max_iterations=4, pipeline="on")
    table = rows(project)
    assert [r.status for r in table] == ["keep", "keep", "keep", "discard", "keep"]
    # Candidate 2 was prepared from the baseline while 1 trained, then carried onto the new best.
    made = {e.iteration: e for e in events if isinstance(e, ev.ProposalMade)}
    assert made[2].meta.get("rebased") and "WIDTH = 12" in made[2].diff
    assert "LR = 0.2" in (project / "train.py").read_text() and "WIDTH = 16" in (project / "train.py").read_text()
    assert sum("preparing candidate" in getattr(e, "message", "") for e in events) >= 3
    prepared = [e for e in events if isinstance(e, ev.CandidatePrepared)]
    assert [e.description for e in prepared][:1] == ["WIDTH -> 12"]  # shown in the UI while #1 trains
    head = git(project, "rev-parse", "HEAD")
    for row in table:
        assert _is_ancestor(project, git(project, "rev-parse", row.commit), head) == (row.status == "keep")
    assert not (project / ".autoresearch" / "t1" / "worktree").exists()
    assert git(project, "status", "--porcelain") == ""


def test_merge3_merges_adjacent_edits_and_refuses_overlaps() -> None:
    from autoresearch_tui.engine.workspace import merge3

    base = "import x\nLR = 0.1\nWIDTH = 8\n\ntrain()\n"
    ours, theirs = base.replace("LR = 0.1", "LR = 0.2"), base.replace("WIDTH = 8", "WIDTH = 12")
    assert merge3(base, ours, theirs) == "import x\nLR = 0.2\nWIDTH = 12\n\ntrain()\n"
    assert merge3(base, ours, base.replace("LR = 0.1", "LR = 0.3")) is None
    assert merge3(base, ours, base) == ours


# A training script whose metric values come, one per run, from a queue file: fully scripted noise.
QUEUED = '''\
import os, pathlib
LR = 0.1
queue = pathlib.Path(os.environ["METRIC_QUEUE"])
values = queue.read_text().split()
queue.write_text("\\n".join(values[1:]))
print("---")
print(f"val_bpb:          {float(values[0]):.6f}")
'''


def _queued(tmp_path: Path, values: list[float], monkeypatch) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    queue = tmp_path / "queue.txt"
    queue.write_text("\n".join(map(str, values)))
    monkeypatch.setenv("METRIC_QUEUE", str(queue))
    return make_project(tmp_path / "p", QUEUED)


def _order(events: list[ev.Event]) -> list[tuple[int, str]]:
    return [(e.iteration, e.commit[:7]) for e in events if isinstance(e, ev.RunStarted)]


def test_confirm_policy_interleaves_the_best_and_discards_noise(tmp_path: Path, monkeypatch) -> None:
    # baseline x3, candidate, best, candidate, best, candidate (its mean falls behind: discarded)
    project = _queued(tmp_path, [1.00, 1.02, 0.98, 0.99, 1.01, 1.005, 0.995, 1.02], monkeypatch)
    engine, end, events = run_engine(project, Scripted([("LR", 0.2)]), max_iterations=1, keep_policy="confirm")
    table = rows(project)
    base, cand = table[0].commit, table[3].commit
    assert [r.status for r in table] == ["keep"] * 3 + ["discard"] * 3  # the best's runs are not rows
    assert "re-run 2/3: noise estimate" in table[1].description and "re-run 3/3: confirming" in table[5].description
    assert _order(events)[3:] == [(1, cand), (1, base), (1, cand), (1, base), (1, cand)]
    final = [e for e in events if isinstance(e, ev.ResultRecorded)][-1]
    assert "after 3 runs" in final.reason and final.rerun == 2
    remeasured = [e for e in events if isinstance(e, ev.BestRemeasured)]
    assert [(e.metric, e.runs) for e in remeasured] == [(1.01, 4), (0.995, 5)]
    assert engine.best_runs == [1.0, 1.02, 0.98, 1.01, 0.995]
    # Learned as the session goes: pooled over the best's runs (beside candidates too) and the candidate's.
    import statistics

    pooled = ((statistics.variance(engine.best_runs) * 4 + statistics.variance([0.99, 1.005, 1.02]) * 2) / 6) ** 0.5
    assert abs(engine.noise.sigma - pooled) < 1e-9
    assert git(project, "rev-parse", "HEAD") == git(project, "rev-parse", "main")
    assert git(project, "status", "--porcelain") == ""
    summary = (project / "autoresearch-summary.md").read_text()
    assert "Runs spent confirming: 4 of 8 (50%): 2 re-runs of candidates, 2 runs of the best beside them" in summary


def test_confirm_policy_keeps_a_clear_win_on_two_runs_and_refines_the_new_best(tmp_path: Path, monkeypatch) -> None:
    values = [1.00, 1.02, 0.98, 0.90, 1.00, 0.91,  # #1: a clear win, kept on its second run
              0.905, 0.92, 0.915]  # #2: level with the new best; the best's run beside it refines it
    project = _queued(tmp_path, values, monkeypatch)
    engine, end, events = run_engine(project, Scripted([("LR", 0.2), ("LR", 0.3)]), max_iterations=2,
                                     keep_policy="confirm")
    table = rows(project)
    base, first, second = table[0].commit, table[3].commit, table[5].commit
    assert [r.status for r in table] == ["keep"] * 5 + ["discard"] * 2
    # No re-runs of a new best on their own: it is measured again only beside the next candidate.
    assert _order(events)[3:] == [(1, first), (1, base), (1, first), (2, second), (2, first), (2, second)]
    assert engine.best_runs == [0.9, 0.91, 0.92] and abs(engine.best_metric - 0.91) < 1e-9
    assert "LR = 0.2" in (project / "train.py").read_text()
    assert git(project, "status", "--porcelain") == ""


def test_any_policy_keeps_noise_that_sigma_rejects(tmp_path: Path, monkeypatch) -> None:
    project = _queued(tmp_path, [1.00, 0.99], monkeypatch)
    run_engine(project, Scripted([("LR", 0.2)]), max_iterations=1, keep_policy="any")
    assert [r.status for r in rows(project)] == ["keep", "keep"]
    project2 = _queued(tmp_path / "b", [1.00, 1.02, 0.98, 0.99], monkeypatch)
    engine, end, events = run_engine(project2, Scripted([("LR", 0.2)]), max_iterations=1, keep_policy="sigma")
    assert [r.status for r in rows(project2)] == ["keep"] * 3 + ["discard"]
    assert "within noise" in [e for e in events if isinstance(e, ev.ResultRecorded)][-1].reason


def test_summary_states_noise_and_flags_keeps_within_it(tmp_path: Path, monkeypatch) -> None:
    project = _queued(tmp_path, [1.00, 1.02, 0.98, 0.995], monkeypatch)
    run_engine(project, Scripted([("LR", 0.2)]), max_iterations=1, keep_policy="any", baseline_repeats=3)
    summary = (project / "autoresearch-summary.md").read_text()
    assert "Noise: noise sigma 0.020000" in summary and "keep policy: any, z = 2" in summary
    # 0.995 on one run vs 1.0 on three: +0.2 standard errors, well within the noise
    assert "Kept changes within the noise (gain at most 2 standard errors" in summary
    assert "LR -> 0.2 (+0.2 standard errors over 1 vs 3 runs)" in summary
    top = summary.split("## Top Improvements")[1].split("## What Didn't Work")[0]
    assert "re-run" not in top  # re-runs of the baseline are not improvements


def test_hooks_run_on_new_best_and_finish(project: Path, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    run_engine(project, Scripted([("LR", 0.2), ("LR", 0.05)]), max_iterations=2,
               on_new_best=f'echo "best $AUTORESEARCH_DESCRIPTION $AUTORESEARCH_METRIC" >> {log}',
               on_finish=f'echo "finish $AUTORESEARCH_REASON" >> {log}')
    import time

    deadline = time.time() + 5
    while time.time() < deadline and "finish" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.05)
    lines = sorted(log.read_text().splitlines())
    assert len(lines) == 2 and lines[0].startswith("best LR -> 0.2 1.38")  # only the new best, not the discard
    assert lines[1] == "finish max_iterations"
