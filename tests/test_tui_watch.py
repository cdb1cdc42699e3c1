"""`watch`: the same screen follows a session directory another process writes, read-only."""

from __future__ import annotations

import time

import pytest

from tui_helpers import finish, pid_alive, spawn_headless, wait_for

from autoresearch_tui.engine.session import SessionDir
from autoresearch_tui.tui.launch import watch_app
from autoresearch_tui.tui.widgets.log_view import LogView
from autoresearch_tui.tui.widgets.results_table import ResultsTable

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def headless_engine(tmp_path):
    procs = []

    def start(duration: float = 0.8, iterations: int = 3, budget: str = "1s"):
        popen, session = spawn_headless(tmp_path, "w1", duration=duration, iterations=iterations, budget=budget)
        procs.append((popen, session))
        return popen, session

    yield start
    for popen, session in procs:
        finish(popen, session=session)


async def test_watch_follows_another_process_and_quit_leaves_it(headless_engine):
    popen, session = headless_engine(duration=3.0, budget="5s")  # still running when the watcher quits, even on a busy machine
    # the watcher starts before the session directory exists
    app = watch_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        table = screen.query_one(ResultsTable)
        assert await wait_for(pilot, lambda: table.row_count >= 2, 25), "rows did not appear"
        log = screen.query_one(LogView)
        # a finished run's last lines (its metric) are shown before the next run's log
        assert await wait_for(pilot, lambda: any(line.startswith("val:") for line in log.lines), 10)
        assert sum(line.startswith("── #") for line in log.lines) >= 2
        # read-only: the control keys are not offered, and pressed they say why they do nothing
        assert screen.check_action("kill_run", ()) is False
        control = session / "control.jsonl"
        await pilot.press("k", "p", "s")
        await pilot.pause(0.3)
        assert not control.exists() or control.read_text() == ""
        said = [n.message for n in app._notifications]
        assert sum("read-only here" in m for m in said) == 3
        assert any("autoresearch-tui control" in m and "kill-run" in m for m in said)
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.return_code == 0
    assert popen.poll() is None and pid_alive(popen.pid), "quitting the watcher must not stop the loop"
    assert popen.wait(30) == 0
    events = SessionDir(session).events()
    assert events[-1].kind == "session_end"
    rows = (session.parent.parent / "results.tsv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header, baseline, three experiments


async def test_watch_a_finished_session_shows_everything(headless_engine):
    popen, session = headless_engine(duration=0.2, iterations=2)
    assert popen.wait(30) == 0
    app = watch_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert await wait_for(pilot, lambda: screen.state.ended is not None, 5)
        await pilot.pause(0.3)
        assert screen.query_one(ResultsTable).row_count == 3
        assert screen.query_one(LogView).line_count > 0
        await pilot.press("enter")  # the newest experiment's diff and log
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DetailScreen", 5)
        detail = app.screen.detail
        assert detail.diff.startswith("diff --git")
        assert any("val:" in line for line in detail.log)
        await pilot.press("escape")
        await pilot.press("u")
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DocumentScreen", 5)
        assert "AutoResearch Summary" in app.screen.markdown
        await pilot.press("escape")
        await pilot.press("f")  # the watched loop ended: merging is the natural end of "leave running"
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "FinishScreen", 5)
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


async def test_watch_survives_a_replaced_events_file(tmp_path):
    from autoresearch_tui.engine import events as ev

    session = SessionDir(tmp_path / "s").create()
    session.append(ev.SessionStarted(tag="x", branch="autoresearch/x", project=str(tmp_path), original_branch="main",
                                     base_commit="0" * 40, config={"metric": "val:min"}))
    session.append(ev.ResultRecorded(iteration=0, commit="a" * 40, metric=1.0, memory_gb=0.0, status="keep",
                                     description="baseline", reason="baseline", best_commit="a" * 40, best_metric=1.0))
    app = watch_app(session.root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert await wait_for(pilot, lambda: len(screen.state.rows) == 1, 5)
        (session.root / "events.jsonl").write_text("")  # an engine restart rewrote it
        assert await wait_for(pilot, lambda: len(screen.state.rows) == 0, 5)
        session.append(ev.SessionStarted(tag="x", branch="autoresearch/x", project=str(tmp_path),
                                         original_branch="main", base_commit="0" * 40, config={}, resumed=True))
        assert await wait_for(pilot, lambda: screen.state.started is not None and screen.state.started.resumed, 5)
        # a new, longer file put in place (not appended): noticed by its inode
        replacement = session.root / "events.new"
        lines = [ev.SessionStarted(tag="y", branch="autoresearch/y", project=str(tmp_path), original_branch="main",
                                   base_commit="0" * 40, config={}).to_json()] * 50
        replacement.write_text("\n".join(lines) + "\n")
        replacement.replace(session.root / "events.jsonl")
        assert await wait_for(pilot, lambda: screen.state.started.tag == "y", 5)
        start = time.monotonic()
        await pilot.press("q")
        assert time.monotonic() - start < 5
