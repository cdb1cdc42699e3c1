"""Parallel workers in the live / watch screen: a line per worker, `w` picks the followed one.

The sessions are real: `autoresearch_tui run --headless --workers 2` (an engine with two worker slots in
worktrees) on a fake training script, followed by the watch screen.
"""

from __future__ import annotations


import pytest

from tui_helpers import finish, spawn_headless, wait_for

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.tui.launch import watch_app
from autoresearch_tui.tui.source import last_line
from autoresearch_tui.tui.widgets.diff_view import DiffView
from autoresearch_tui.tui.widgets.log_view import LogView
from autoresearch_tui.tui.widgets.workers import WorkersStrip

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@pytest.fixture
def parallel_engine(tmp_path):
    procs = []

    def start(duration: float = 1.0, iterations: int = 4, workers: int = 2):
        popen, session = spawn_headless(tmp_path, "par", "--workers", str(workers), "--device", "cpu",
                                        duration=duration, iterations=iterations, budget="2s")
        procs.append((popen, session))
        return popen, session

    yield start
    for popen, session in procs:
        finish(popen, session=session)


def _run(n: int, worker: int, ts: float) -> ev.RunStarted:
    return ev.RunStarted(iteration=n, commit=f"{n:040d}", log=f"runs/{n:04d}.log", budget_s=2, limit_s=4,
                         worker=worker, device=f"cuda:{worker}", description=f"change {n}", ts=ts)


def _end(n: int, worker: int) -> ev.RunFinished:
    return ev.RunFinished(iteration=n, commit=f"{n:040d}", exit_code=0, duration_s=1.0, timed_out=False,
                          metric=1.0, summary={}, peak_memory_mb=None, worker=worker)


def test_state_keeps_the_runs_in_flight_per_worker():
    s = SessionState()
    a, b = _run(1, 0, 10.0), _run(2, 1, 11.0)
    s.apply_all([a, b])
    assert s.runs == {0: a, 1: b} and s.run is b and s.multi_worker
    s.apply(_end(2, 1))  # the newer one ends first: `run` falls back to the one still in flight
    assert s.runs == {0: a} and s.run is a
    assert s.workers[1] is b  # the last run a worker started stays known (its log, its candidate)
    s.apply(_end(1, 0))
    assert s.runs == {} and s.run is None
    s.apply(_run(3, 1, 12.0))
    s.apply(ev.SessionEnded(reason="stopped", iterations=3, best_commit=None, best_metric=None))
    assert s.runs == {} and s.run is None

    single = SessionState().apply_all([_run(0, 0, 1.0)])  # the sequential loop: worker 0 only
    assert single.run is single.runs[0] and not single.multi_worker
    single.apply(_end(0, 0))
    assert single.run is None and single.last_run is not None


def test_last_line_applies_carriage_returns(tmp_path):
    path = tmp_path / "run.log"
    path.write_bytes(b"x" * 10_000 + b"\nstarting\nstep 1 | loss 3\rstep 2 | loss 2\rstep 3 | loss 1\n\n")
    assert last_line(path) == "step 3 | loss 1"
    assert last_line(tmp_path / "missing.log") == ""


async def test_watch_running_parallel_session_strip_and_w(parallel_engine):
    popen, session = parallel_engine(duration=1.5, iterations=6)
    app = watch_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        strip = screen.query_one(WorkersStrip)
        assert not strip.display  # nothing until a second worker shows up
        assert await wait_for(pilot, lambda: len(screen.state.runs) == 2, 45), "the two runs never overlapped"
        await pilot.pause(0.2)
        assert strip.display and strip.region.height == 2
        text = strip.render().plain
        assert "w0 cpu" in text and "w1 cpu" in text
        assert "runs in flight" in str(screen.query_one("#status").render())
        # the other runs' last lines arrive about once a second
        assert await wait_for(pilot, lambda: any("step" in t for t in strip.tails.values()), 10)
        # the four panes keep room at 80x24: full width, two lines each, the focused one larger
        for number in range(1, 5):
            pane = screen.query_one(f"#pane-{number}")
            assert pane.region.width == 80 and pane.region.height >= 4, pane.region
        assert screen.query_one("#pane-4").region.height >= 7
        log = screen.query_one(LogView)
        for worker in (0, 1):
            await pilot.press("w")
            assert screen.worker == worker
            assert f"· w{worker}" in str(screen.query_one("#pane-2").border_title)
            assert await wait_for(pilot, lambda: screen.shown_run is not None and screen.shown_run.worker == worker,
                                  5)
            assert await wait_for(pilot, lambda: any(f"on w{worker} ──" in line for line in log.lines), 5)
            assert all(" on w" not in line or f" on w{worker} " in line for line in log.lines if line.startswith("──"))
            assert strip.shown == worker and f"▶ w{worker}" in strip.render().plain
            # the diff pane shows the followed worker's candidate
            run = screen.followed_run()
            assert run.worker == worker
            assert str(screen.query_one("#pane-1").border_subtitle).endswith(f"· w{worker}")
            if run.iteration:
                assert screen.query_one(DiffView).lines == screen.state.proposals[run.iteration].diff.splitlines()
        await pilot.press("w")  # back to automatic
        assert screen.worker is None and "auto" in str(screen.query_one("#pane-2").border_title)
    assert popen.wait(60) == 0


async def test_watch_finished_parallel_session(parallel_engine):
    popen, session = parallel_engine(duration=0.3, iterations=4)
    assert popen.wait(60) == 0
    app = watch_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert await wait_for(pilot, lambda: screen.state.ended is not None, 10)
        await pilot.pause(0.3)
        strip = screen.query_one(WorkersStrip)
        assert sorted(screen.state.workers) == [0, 1] and screen.state.runs == {}
        text = strip.render().plain
        assert text.count("idle · last #") == 2
        # the footer offers `w` (and gives `a` its room at 80 columns; `a` still works)
        keys = screen.active_bindings
        assert keys["w"].binding.show and keys["w"].enabled and not keys["a"].binding.show
        log = screen.query_one(LogView)
        for worker in (0, 1):
            await pilot.press("w")
            last = screen.state.workers[worker]
            # the log pane shows that worker's last run, to its metric line
            assert await wait_for(pilot, lambda: any(line.startswith("val:") for line in log.lines)
                                  and any(last.log in line for line in log.lines), 5)
        # `a`: the state goes to the pane's title, not to a notification per press
        told = []
        screen.notify = lambda *args, **kwargs: told.append(args)
        title = lambda: str(screen.query_one("#pane-2").border_title)  # noqa: E731
        await pilot.press("a")
        assert not log.auto_scroll and "scroll off" in title()
        await pilot.press("a", "a", "a")
        assert log.auto_scroll and "scroll off" not in title()
        assert told == []
        await pilot.press("q")
    assert app.return_code == 0
