"""Parallel experiments: N workers, one history, the sequential loop's invariants."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from autoresearch_tui.agents.base import Attempt, Proposal, ProposalContext
from autoresearch_tui.agents.builtin import BuiltinProposer
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.config import load_config
from autoresearch_tui.engine.control import ReviewAnswer
from autoresearch_tui.engine.api import create_engine
from autoresearch_tui.engine.loop import Engine
from autoresearch_tui.engine.slots import parse_gpus
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.engine.session import SessionDir
from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.engine.workspace import merge3

from conftest import FAKE_TRAIN, Scripted, git, make_project

pytestmark = pytest.mark.slow  # starts engines or real training runs

SLOW_TRAIN = FAKE_TRAIN.replace("SLEEP = 0.05", "SLEEP = 0.3")


def run_parallel(project: Path, proposer, workers: int = 4, on_event=None, **overrides):
    values = {"time_budget": "20s", "metric": "val_bpb:min", "tag": "t1", "device": "cpu", "workers": workers,
              **overrides}
    config = load_config(project, None, values)
    seen: list[ev.Event] = []
    engine = Engine(config, proposer, listeners=[seen.append])
    if on_event is not None:
        engine.listeners.append(lambda e: on_event(engine, e))
    engine.prepare()
    end = asyncio.run(engine.run())
    return engine, end, seen


def _is_ancestor(project: Path, a: str, b: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=project).returncode == 0


def check_invariants(project: Path, tag: str = "t1") -> list:
    """What the sequential loop guarantees, for a parallel session."""
    session = SessionDir(project / ".autoresearch" / tag)
    events = session.events()
    rows = read_results(project / "results.tsv").rows
    recorded = [e for e in events if isinstance(e, ev.ResultRecorded)]
    iterations = [e.iteration for e in recorded]
    assert len(iterations) == len(set(iterations)), iterations  # one row per experiment
    assert sorted(iterations) == list(range(len(iterations)))
    assert [r.commit for r in rows] == [e.commit[:7] for e in recorded]
    started = {e.iteration for e in events if isinstance(e, ev.RunStarted)}
    assert started == set(iterations)  # every experiment that ran has its row
    head = git(project, "rev-parse", f"autoresearch/{tag}")
    assert git(project, "rev-parse", "HEAD") == head
    for row in rows:
        full = git(project, "rev-parse", row.commit)
        assert _is_ancestor(project, full, head) == (row.status == "keep"), (row, rows)
    assert git(project, "status", "--porcelain") == ""
    assert len(git(project, "worktree", "list").splitlines()) == 1
    assert not (session.root / "workers").exists() and not (session.root / "worktree").exists()
    state = SessionState().apply_all(events)
    assert [(r.commit, r.status) for r in state.rows] == [(r.commit, r.status) for r in rows]
    assert state.best_commit == head
    return events


def max_overlap(events: list) -> int:
    live, top = 0, 0
    for e in events:
        if isinstance(e, ev.RunStarted):
            live += 1
            top = max(top, live)
        elif isinstance(e, ev.RunFinished):
            live -= 1
    return top


def test_four_workers_keep_the_sequential_invariants(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_TRAIN)
    engine, end, seen = run_parallel(project, BuiltinProposer(), workers=4, max_iterations=12)
    assert end.reason == "max_iterations" and end.iterations == 12
    events = check_invariants(project)
    rows = read_results(project / "results.tsv").rows
    assert len(rows) == 13 and rows[0].description == "baseline"
    assert {"keep", "discard"} <= {r.status for r in rows[1:]}
    assert max_overlap(events) == 4
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    assert {e.worker for e in starts} == {0, 1, 2, 3}
    # The worker is on every run and result event, and they agree.
    by_iteration = {e.iteration: e.worker for e in starts}
    for e in events:
        if isinstance(e, (ev.RunFinished, ev.ResultRecorded)):
            assert e.worker == by_iteration[e.iteration], e
    # Discards stay reachable; each patch is the candidate's own change (one constant).
    discards = [e for e in events if isinstance(e, ev.ResultRecorded) and e.status == "discard"]
    session = SessionDir(project / ".autoresearch" / "t1")
    for e in discards:
        assert git(project, "rev-parse", e.attempt_ref) == e.commit
        patch = (session.attempts / f"{e.iteration:04d}-{e.commit[:7]}.patch").read_text()
        assert len([ln for ln in patch.splitlines() if ln.startswith("+") and not ln.startswith("+++")]) == 1
    # No two candidates in flight at once were the same change.
    made = [e for e in events if isinstance(e, ev.ProposalMade)]
    assert len({e.description for e in made}) == len(made)


def test_proposer_sees_what_is_in_flight(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_TRAIN)
    proposer = Scripted([("LR", 0.2), ("WIDTH", 12), ("LR", 0.3)])
    run_parallel(project, proposer, workers=3, max_iterations=3)
    flights = [tuple(a.description for a in ctx.in_flight) for ctx in proposer.contexts]
    assert flights == [(), ("LR -> 0.2",), ("LR -> 0.2", "WIDTH -> 12")]
    assert all(a.status == "running" and a.metric is None for a in proposer.contexts[2].in_flight)


def test_builtin_proposer_avoids_what_is_in_flight() -> None:
    source = "LR = 0.1\nWIDTH = 8\n"
    base = dict(iteration=1, train_path="train.py", train_source=source, readonly_source=None, metric="loss",
                direction="min", scope="all", history=(), best=None)
    proposer = BuiltinProposer()
    first = proposer.plan(ProposalContext(**base))
    running = Attempt(1, "abc1234", "running", None, first.description, first.meta)
    second = proposer.plan(ProposalContext(**{**base, "iteration": 2}, in_flight=(running,)))
    assert (second.meta["constant"], second.meta["new"]) != (first.meta["constant"], first.meta["new"])
    assert second.meta["constant"] != first.meta["constant"]  # a constant nobody runs comes first
    # With every other constant held, it stays on the same one but picks another value.
    held = proposer.plan(ProposalContext(**{**base, "iteration": 2, "hold": ("WIDTH",)}, in_flight=(running,)))
    assert held.meta["constant"] == "LR" and held.meta["new"] != first.meta["new"]


def test_devices_are_assigned_per_worker(tmp_path: Path) -> None:
    train = SLOW_TRAIN.replace("time.sleep(SLEEP)",
                               "time.sleep(SLEEP)\nprint('cvd=' + os.environ.get('CUDA_VISIBLE_DEVICES', '-'),"
                               " 'dev=' + os.environ['AUTORESEARCH_DEVICE'])")
    project = make_project(tmp_path / "p", train)
    engine, end, seen = run_parallel(project, Scripted([("LR", 0.2), ("WIDTH", 12), ("LR", 0.3)]), workers=1,
                                     gpus="4,5", device="cuda", max_iterations=3)
    assert [s.device for s in engine.slots] == ["cuda:4", "cuda:5"]
    session = project / ".autoresearch" / "t1"
    for e in seen:
        if isinstance(e, ev.RunStarted):
            log = (session / e.log).read_text()
            assert f"cvd={'45'[e.worker]} dev=cuda" in log, (e.worker, log)
    check_invariants(project)
    assert parse_gpus("0, 1,2") == ["0", "1", "2"] and parse_gpus([3, 4]) == ["3", "4"] and parse_gpus(None) == []


def _slow(edits: dict, sleep: float = 0.9):
    """A candidate that trains longer than the others, so it finishes after a later one."""
    return {**edits, "SLEEP": sleep}


def test_late_winner_is_3way_merged_onto_the_new_best(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FAKE_TRAIN)
    proposer = Scripted([_slow({"LR": 0.2}), ("WIDTH", 16)])
    engine, end, seen = run_parallel(project, proposer, workers=2, max_iterations=2)
    events = check_invariants(project)
    results = {e.iteration: e for e in events if isinstance(e, ev.ResultRecorded)}
    assert [e.iteration for e in events if isinstance(e, ev.ResultRecorded)] == [0, 2, 1]  # 2 finished first
    assert results[1].status == results[2].status == "keep"
    ran = {e.iteration: e.commit for e in events if isinstance(e, ev.RunStarted)}
    assert results[2].commit == ran[2]  # proposed from the best of its time: a fast-forward
    assert results[1].commit != ran[1]  # replayed as a new commit on the branch
    assert git(project, "rev-parse", f"{results[1].commit}^") == results[2].commit
    train = (project / "train.py").read_text()
    assert "LR = 0.2" in train and "WIDTH = 16" in train
    assert any("3-way merged" in getattr(e, "message", "") for e in events)
    assert len([e for e in events if isinstance(e, ev.RunStarted)]) == 3  # no re-run


def test_strict_replay_runs_the_merged_version_again(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", FAKE_TRAIN)
    proposer = Scripted([_slow({"LR": 0.2}, 0.6), ("WIDTH", 16)])
    engine, end, seen = run_parallel(project, proposer, workers=2, max_iterations=2, strict_replay=True)
    events = check_invariants(project)
    runs = [e for e in events if isinstance(e, ev.RunStarted) and e.iteration == 1]
    assert len(runs) == 2 and runs[0].commit != runs[1].commit
    result = next(e for e in events if isinstance(e, ev.ResultRecorded) and e.iteration == 1)
    assert result.commit == runs[1].commit and result.status == "keep"
    assert abs(result.metric - 1.30103) < 1e-5  # measured with both changes: LR 0.2 and WIDTH 16


def test_conflicting_winner_is_rerun_on_top_of_the_new_best(tmp_path: Path) -> None:
    train = FAKE_TRAIN.replace('print(f"num_steps:        3")', 'print(f"num_steps:        3")\nTAIL = 0')
    project = make_project(tmp_path / "p", train)
    # 1: the best LR, slow. 2: another LR (conflict on that line) plus an unrelated edit, fast.
    proposer = Scripted([_slow({"LR": 0.4}, 0.6), {"LR": 0.3, "TAIL": 1}])
    engine, end, seen = run_parallel(project, proposer, workers=2, max_iterations=2)
    events = check_invariants(project)
    runs = [e for e in events if isinstance(e, ev.RunStarted) and e.iteration == 1]
    assert len(runs) == 2  # measured on its own base, then again on top of the new best
    result = next(e for e in events if isinstance(e, ev.ResultRecorded) and e.iteration == 1)
    assert result.status == "keep" and result.commit == runs[1].commit
    train = (project / "train.py").read_text()
    assert "LR = 0.4" in train and "TAIL = 1" in train  # its LR wins the overlap, the rest is kept
    assert any("re-running it there" in getattr(e, "message", "") for e in events)


def test_merge_preferring_theirs_keeps_the_candidates_side_of_an_overlap() -> None:
    base = "A = 1\nB = 2\n\nC = 3\n"
    best = base.replace("A = 1", "A = 5").replace("C = 3", "C = 7")
    cand = base.replace("A = 1", "A = 9")
    assert merge3(base, best, cand, prefer_theirs=True) == "A = 9\nB = 2\n\nC = 7\n"


def test_first_stop_lets_runs_in_flight_finish(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_TRAIN)
    stopped_at: list[int] = []

    def on_event(engine, event):
        if isinstance(event, ev.ResultRecorded) and event.iteration >= 1 and not stopped_at:
            stopped_at.append(len([e for e in seen_ref[0] if isinstance(e, ev.RunStarted)]))
            engine.request_stop()

    seen_ref: list[list] = []
    values = {"time_budget": "20s", "metric": "val_bpb:min", "tag": "t1", "device": "cpu"}
    config = load_config(project, None, values)
    config.workers = 3
    seen: list[ev.Event] = []
    seen_ref.append(seen)
    engine = Engine(config, BuiltinProposer(), listeners=[seen.append])
    engine.listeners.append(lambda e: on_event(engine, e))
    engine.prepare()
    end = asyncio.run(engine.run())
    assert end.reason == "stopped"
    events = check_invariants(project)
    starts = [e for e in events if isinstance(e, ev.RunStarted)]
    assert len(starts) == stopped_at[0]  # nothing new started after the stop request
    assert len(starts) >= 3
    assert not any("killed" in e.description for e in events if isinstance(e, ev.ResultRecorded))


def test_second_stop_kills_every_run(tmp_path: Path) -> None:
    hang = FAKE_TRAIN.replace(
        "time.sleep(SLEEP)",
        "import subprocess\nif LR != 0.1:\n"
        "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "    print('child', child.pid, flush=True)\n    time.sleep(600)",
    )
    project = make_project(tmp_path / "p", hang)

    def on_event(engine, event):
        running = [s for s in engine.slots if s.running]
        if isinstance(event, ev.RunStarted) and event.iteration == 3 and len(running) >= 2:
            asyncio.get_running_loop().call_later(0.5, lambda: (engine.request_stop(), engine.request_stop()))

    t0 = time.monotonic()
    engine, end, seen = run_parallel(project, Scripted([("LR", 0.2), ("LR", 0.3), ("LR", 0.4), ("LR", 0.5)]),
                                     workers=3, on_event=on_event, kill_grace="1s")
    assert time.monotonic() - t0 < 20
    assert end.reason == "killed"
    events = check_invariants(project)
    results = [e for e in events if isinstance(e, ev.ResultRecorded) and e.iteration > 0]
    assert len(results) == 3 and all(e.description.endswith("(killed)") for e in results)
    session = project / ".autoresearch" / "t1"
    for e in events:
        if isinstance(e, ev.RunStarted) and e.iteration > 0:
            match = re.search(r"child (\d+)", (session / e.log).read_text())
            if match:
                pid = int(match.group(1))
                assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_resume_after_a_parallel_session_continues_the_numbering(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_TRAIN)
    run_parallel(project, BuiltinProposer(), workers=3, max_iterations=4)
    config = load_config(project, None, {"time_budget": "20s", "metric": "val_bpb:min", "tag": "t1",
                                         "device": "cpu", "max_iterations": 7})
    config.workers = 3
    engine = create_engine(config, BuiltinProposer())
    assert engine.slotted  # worker slots in worktrees, as the first session had
    engine.prepare_resume()
    end = asyncio.run(engine.run())
    assert end.reason == "max_iterations"
    check_invariants(project)
    assert len(read_results(project / "results.tsv").rows) == 8


class SlowScripted(Scripted):
    """Takes its time to think, like an LLM agent."""

    async def propose(self, ctx: ProposalContext) -> Proposal:
        await asyncio.sleep(0.4)
        return await super().propose(ctx)


def test_stop_while_proposing_starts_nothing_new(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_TRAIN)

    def on_event(engine, event):
        if isinstance(event, ev.IterationStarted) and event.iteration == 2:
            engine.request_stop()  # candidate 2 is being proposed now

    engine, end, seen = run_parallel(project, SlowScripted([("LR", 0.2), ("WIDTH", 12), ("LR", 0.3)]),
                                     workers=3, on_event=on_event)
    assert end.reason == "stopped"
    check_invariants(project)
    assert sorted(e.iteration for e in seen if isinstance(e, ev.RunStarted)) == [0, 1]
    assert any("#2 was not started" in getattr(e, "message", "") for e in seen)


def test_review_approve_edit_reject_with_workers(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_TRAIN)
    answers = {1: "approve", 3: "reject"}

    def on_event(engine, event):
        if isinstance(event, ev.ReviewRequested):
            decision, source = answers.get(event.iteration, "edit"), None
            if decision == "edit":  # 2: the reviewer rewrites the change
                source = SLOW_TRAIN.replace("WIDTH = 8", "WIDTH = 16").replace("LR = 0.1", "LR = 0.3")
            engine.answer_review(ReviewAnswer(decision, event.iteration, source))

    engine, end, seen = run_parallel(project, Scripted([("LR", 0.2), ("WIDTH", 12), ("LR", 0.05)]), workers=2,
                                     on_event=on_event, review=True, max_iterations=3)
    check_invariants(project)
    results = {e.iteration: e for e in seen if isinstance(e, ev.ResultRecorded)}
    assert set(results) == {0, 1, 2}  # 3 was rejected: never run, no row
    assert results[2].description.endswith("(edited by reviewer)") and results[2].status == "keep"
    train = (project / "train.py").read_text()
    assert "WIDTH = 16" in train and "LR = 0.3" in train  # the reviewer's version won
    assert git(project, "rev-parse", "--verify", "refs/autoresearch/t1/3")  # the rejected diff stays reachable
    assert git(project, "rev-parse", "HEAD") == git(project, "rev-parse", "autoresearch/t1")


def test_a_coding_agent_works_in_a_scratch_worktree_not_the_main_tree(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_TRAIN)
    seen_projects: list[str] = []

    def agent(ctx):
        root = Path(ctx.project)
        seen_projects.append(ctx.project)
        (root / "notes.txt").write_text("agent scribbles")
        (root / "prepare.py").write_text("TIME_BUDGET = 1\n")
        src = ctx.train_source.replace("LR = 0.1", "LR = 0.2")
        (root / "train.py").write_text(src)
        return Proposal(src, "LR up", {"other_files_changed": ["notes.txt", "prepare.py"]})

    engine, end, seen = run_parallel(project, Scripted([agent]), workers=2, max_iterations=1, agent="command")
    check_invariants(project)
    assert seen_projects and Path(seen_projects[0]).resolve() != project.resolve()
    assert ".autoresearch" in seen_projects[0]
    assert not (project / "notes.txt").exists() and (project / "prepare.py").read_text() == "TIME_BUDGET = 300\n"
    assert any(isinstance(e, ev.GuardrailTripped) for e in seen)
    assert "LR = 0.2" in (project / "train.py").read_text()
