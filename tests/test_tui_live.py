"""The live screen fed by a real engine subprocess on a fast fake project."""

from __future__ import annotations

import time

import pytest

from tui_helpers import finish, load, make_project, pid_alive, wait_for

from autoresearch_tui.tui.launch import live_app, start_engine
from autoresearch_tui.tui.screens.quit import QuitScreen
from autoresearch_tui.tui.widgets.diff_view import DiffView
from autoresearch_tui.tui.widgets.log_view import LogView
from autoresearch_tui.tui.widgets.results_table import ResultsTable

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def engine_session(tmp_path):
    started = []

    def start(**kwargs):
        duration = kwargs.pop("duration", 1.5)
        flood = kwargs.pop("flood", 0)
        project = make_project(tmp_path, duration=duration, flood=flood)
        config = load(project, **kwargs)
        engine = start_engine(config)
        started.append((engine, config.session_path()))
        return engine, config.session_path()

    yield start
    for engine, session in started:
        finish(engine.popen, session=session)


async def test_panes_update_kill_and_stop(engine_session):
    engine, session = engine_session(progress_every=1, max_iterations=20)
    app = live_app(session, engine)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        assert await wait_for(pilot, lambda: screen.state.run is not None and screen.state.run.iteration >= 1, 20)
        assert await wait_for(pilot, lambda: screen.query_one(LogView).line_count > 0, 5)
        assert screen.query_one(DiffView).line_count > 0  # the proposal's diff
        assert screen.query_one(ResultsTable).row_count >= 1  # the baseline row
        await pilot.press("k")
        assert await wait_for(pilot, lambda: any("killed" in r.reason for r in screen.state.results), 10)
        killed = next(r for r in screen.state.results if "killed" in r.reason)
        assert killed.status == "discard"
        assert await wait_for(pilot, lambda: screen.state.progress, 5)  # every iteration here
        await pilot.press("r")
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DocumentScreen", 5)
        assert "AutoResearch Progress" in app.screen.markdown
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: app.screen is screen, 3)
        if screen.state.ended is None:  # mid-session `u` renders the summary so far
            await pilot.press("u")
            assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DocumentScreen", 5)
            assert "AutoResearch Summary" in app.screen.markdown
            await pilot.press("escape")
            assert await wait_for(pilot, lambda: app.screen is screen, 3)
        await pilot.press("s")
        assert await wait_for(pilot, lambda: screen.state.ended is not None, 15)
        assert screen.state.ended.reason == "stopped"
        await pilot.pause(0.3)
        assert screen.query_one(ResultsTable).row_count == len(screen.state.rows) >= 2
        assert app.screen.query_one("#status").status == "ended"
        await pilot.press("f")  # the finish screen (summary and merge) is offered once it ended
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "FinishScreen", 5)
    assert engine.popen.wait(10) == 0


async def test_quit_leave_running_keeps_the_engine(engine_session):
    engine, session = engine_session(duration=2.0)
    app = live_app(session, engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert await wait_for(pilot, lambda: screen.state.started is not None, 20)
        await pilot.press("q")
        assert await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), 3)
        await pilot.press("l")
        await pilot.pause(0.2)
    assert app.return_code == 0
    assert pid_alive(engine.pid)
    assert engine.alive()
    # the background loop keeps writing events after the screen is gone
    size = (session / "events.jsonl").stat().st_size
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (session / "events.jsonl").stat().st_size == size:
        time.sleep(0.2)
    assert (session / "events.jsonl").stat().st_size > size


async def test_log_flood_stays_bounded_and_responsive(engine_session):
    engine, session = engine_session(duration=4.0, flood=200_000, max_iterations=1)
    app = live_app(session, engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        log = screen.query_one(LogView)
        assert await wait_for(pilot, lambda: log.total >= 100_000, 25)
        assert log.line_count <= screen.source.buffer.lines.maxlen + 1
        assert len(screen.source.buffer.lines) <= 2000
        # `\r` progress rewrote lines instead of adding them: half the flood is not lines
        assert log.total < 150_000
        before = log.auto_scroll
        t0 = time.monotonic()
        await pilot.press("a")
        assert await wait_for(pilot, lambda: log.auto_scroll != before, 2)
        assert time.monotonic() - t0 < 2
        await pilot.press("4")
        assert screen.focused is screen.query_one(ResultsTable)


async def test_review_approve_reject_edit(engine_session):
    from textual.widgets import TextArea

    engine, session = engine_session(duration=0.3, review=True, max_iterations=2)
    app = live_app(session, engine)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen

        def reviewing(n: int) -> bool:
            return type(app.screen).__name__ == "ReviewScreen" and app.screen.review.iteration == n

        assert await wait_for(pilot, lambda: reviewing(1), 25), "no review dialog for #1"
        first = app.screen.review
        assert await wait_for(pilot, lambda: any(v.line_count for v in app.screen.query(DiffView)), 3)
        await pilot.press("x")  # reject: dropped, and iteration 1 gets a new proposal to review
        assert await wait_for(pilot, lambda: reviewing(1) and app.screen.review is not first, 15)
        assert await wait_for(pilot, lambda: bool(app.screen.query(TextArea)), 3)
        await pilot.press("e")
        area = app.screen.query_one(TextArea)
        assert "LEARNING_RATE" in area.text
        area.text = area.text.replace("DEPTH = 4", "DEPTH = 6", 1)
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: len(screen.state.rows) >= 2, 15)
        edited = screen.state.rows[1]
        assert "edited by reviewer" in edited.description
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "ReviewScreen"
                              and bool(app.screen.query(DiffView)), 15)
        await pilot.press("a")
        assert await wait_for(pilot, lambda: screen.state.ended is not None, 15)
        assert len(screen.state.rows) == 3


async def test_keys_before_the_first_report_progress_and_the_builtin_proposer(engine_session):
    engine, session = engine_session(duration=4.0, time_budget="8s", max_iterations=3)
    app = live_app(session, engine)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert await wait_for(pilot, lambda: len(screen.state.rows) >= 1 and screen.state.run is not None
                              and screen.state.run.iteration >= 1, 30)
        # the header: training progress against the budget once the log prints steps, start-up apart
        header = screen.query_one("#status")
        assert await wait_for(pilot, lambda: "start-up" in header.render().plain, 10)
        assert "/8s" in header.render().plain
        # `a`: the footer says whether the log follows its end
        assert screen.check_action("toggle_scroll", ()) and not screen.check_action("toggle_scroll_back", ())
        await pilot.press("a")
        assert screen.check_action("toggle_scroll_back", ()) and not screen.check_action("toggle_scroll", ())
        await pilot.press("a")
        # `r` before any progress report: the summary so far, with dates and without "every change was kept"
        await pilot.press("r")
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DocumentScreen", 5)
        text = app.screen.markdown
        assert "AutoResearch Summary" in text and "Date:** unknown" not in text
        assert "every change was kept" not in text
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: app.screen is screen, 3)
        # `i` with the built-in proposer: it cannot read free text, and says what it can do
        await pilot.press("i")
        await pilot.pause(0.2)
        assert app.screen is screen  # no prompt for text it would ignore
        said = " ".join(n.message for n in app._notifications)
        assert "cannot read free text" in said and "vary" in said and "hold" in said
        await pilot.press("s", "s")
        assert await wait_for(pilot, lambda: screen.state.ended is not None, 20)
