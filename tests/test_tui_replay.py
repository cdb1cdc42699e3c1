"""Replay of real results.tsv files (and messy ones) in the same panes as the live screen."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from conftest import REAL_RESULTS
from tui_helpers import wait_for

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.session import SessionDir
from autoresearch_tui.tui.launch import replay_app
from autoresearch_tui.tui.widgets.chart import ChartView
from autoresearch_tui.tui.widgets.diff_view import DiffView
from autoresearch_tui.tui.widgets.log_view import LogView
from autoresearch_tui.tui.widgets.results_table import ResultsTable

pytestmark = pytest.mark.timeout(60)

REAL = sorted(REAL_RESULTS.glob("*.tsv"))


def data_rows(path: Path) -> int:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return len(lines) - 1


async def loaded(pilot, app) -> None:
    assert await wait_for(pilot, lambda: getattr(app.screen, "loaded", False), 10)
    await pilot.pause(0.2)


@pytest.mark.skipif(not REAL, reason="no real results files on this machine")
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
async def test_real_results_file(path):
    app = replay_app(path)
    async with app.run_test(size=(120, 36)) as pilot:
        await loaded(pilot, app)
        screen = app.screen
        table = screen.query_one(ResultsTable)
        assert table.row_count == data_rows(path) == len(screen.state.rows)
        assert table.selected_index() == 0
        await pilot.press("right", "right")
        assert table.selected_index() == 2
        await pilot.press("left")
        assert table.selected_index() == 1
        chart = screen.query_one(ChartView)
        assert chart.region.width > 0 and chart.region.height > 0
        drawn = chart.render().plain
        assert "●" in drawn  # the kept baseline at least
        assert chart.selected == 1
        await pilot.press("u")
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DocumentScreen", 5)
        assert "AutoResearch Summary" in app.screen.markdown
        await pilot.press("escape", "q")


@pytest.mark.skipif(not REAL, reason="no real results files on this machine")
async def test_panes_stack_at_80x24_and_the_focused_one_is_large():
    app = replay_app(REAL[0])  # no repository holds its commits: no diff pane
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        screen = app.screen
        assert screen.query_one("#pane-1").region.area == 0
        for number in range(2, 5):  # full width, stacked
            assert screen.query_one(f"#pane-{number}").region.width == 80
        table = screen.query_one("#pane-4")
        assert table.region.height > 2 * screen.query_one("#pane-3").region.height
        await pilot.press("3")  # the chart pane grows, the table shrinks to two lines
        await pilot.pause(0.1)
        assert screen.query_one(ChartView).region.height >= 6
        assert screen.query_one("#pane-4").region.height == 4
        await pilot.press("m")
        assert screen.query_one("#pane-3").region.width == 80
        assert screen.query_one("#pane-4").region.area == 0
        await pilot.press("4")  # another pane while maximised: it takes the screen
        await pilot.pause(0.1)
        assert screen.query_one("#pane-4").region.height > 15
        assert screen.query_one("#pane-3").region.area == 0
        await pilot.press("m")
        assert screen.query_one("#pane-3").region.area > 0


async def test_shape_changes_precision_and_rendered_summary(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("commit\tval_loss\tmemory_gb\tstatus\tdescription\n"
                    "aaaaaaa\t178.84\t1.0\tkeep\tbaseline\n" "bbbbbbb\t170.5\t1.0\tkeep\tLR up\n" "\n"
                    "Columns: commit,tokens,status,notes\n" "ccccccc,100,keep,a note, with a comma\n",
                    encoding="utf-8")
    app = replay_app(path)
    async with app.run_test(size=(160, 45)) as pilot:
        await loaded(pilot, app)
        screen = app.screen
        assert await wait_for(pilot, lambda: screen.summary is not None, 10)
        await pilot.pause(0.2)
        table = screen.query_one(ResultsTable)
        assert "178.84 " in table.render_line(1).text and "178.840000" not in table.render_line(1).text
        doc = "\n".join(screen.query_one("#summary-pane").lines)
        assert "| Baseline metric |" not in doc and "Baseline metric │ Best metric" in doc  # rendered
        assert "Rows in another shape (from line 5)" in doc and "a note, with a comma" in doc
        assert screen.query_one("#pane-1").region.area == 0  # no repository: the table takes the room
        assert screen.query_one("#pane-4").region.width == 160


MESSY = (
    "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    "aaaaaaa\t1.000000\t1.0\tkeep\tbaseline\n"
    "bbbbbbb\t0.990000\n"
    "ccccccc\t0.980000\t1.0\tKEEP\tlower lr, warmup ²\n"
    "ddddddd\t0.000000\t0.0\tcrash\tOOM\n"
    "\n"
    "## Notes\n"
    "| a | b |\n"
)


async def test_messy_file_lists_skipped_lines(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text(MESSY, encoding="utf-8")
    app = replay_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        screen = app.screen
        assert screen.query_one(ResultsTable).row_count == 3
        assert screen.skipped and any(n == 3 for n, _ in screen.skipped)
        label = screen.query_one("#skipped")
        assert label.display and "line 3" in str(label.render())
        await pilot.press("u")
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DocumentScreen", 5)
        assert "line 3" in app.screen.markdown


async def test_not_a_results_file_is_not_fatal(tmp_path):
    path = tmp_path / "results.tsv"
    path.write_text("hello\nworld\n", encoding="utf-8")
    app = replay_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        assert app.screen.query_one(ResultsTable).row_count == 0
        assert "expected" in app.screen.query_one(DiffView).placeholder
        await pilot.press("right", "left", "q")


def _repo_with_commits(root: Path) -> tuple[Path, list[str]]:
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "t")
        cw.set_value("user", "email", "t@example.com")
    shas = []
    for lr in ("0.04", "0.03"):
        (root / "train.py").write_text(f"MATRIX_LR = {lr}\n")
        repo.git.add("train.py")
        repo.git.commit("-m", f"lr {lr}", "--quiet")
        shas.append(repo.head.commit.hexsha)
    return root, shas


async def test_repo_diffs_and_missing_commit(tmp_path):
    root, shas = _repo_with_commits(tmp_path)
    path = root / "results.tsv"  # inside the repository: found without --repo
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    f"{shas[0][:7]}\t1.0\t1.0\tkeep\tbaseline\n"
                    f"{shas[1][:7]}-dirty\t0.9\t1.0\tkeep\tlr 0.03\n"
                    "1234567\t0.95\t1.0\tdiscard\tgone\n", encoding="utf-8")
    app = replay_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot, app)
        diff = app.screen.query_one(DiffView)
        await pilot.press("right")
        assert await wait_for(pilot, lambda: any(line.startswith("+MATRIX_LR = 0.03") for line in diff.lines), 5)
        assert diff.lines[0].startswith(f"commit {shas[1]}")
        await pilot.press("right")
        assert await wait_for(pilot, lambda: "1234567 is not in" in diff.placeholder and not diff.lines, 5)


async def test_session_gives_run_logs_and_proposal_diffs(tmp_path):
    session = SessionDir(tmp_path / ".autoresearch" / "x").create()
    (session.runs / "0000-aaaaaaa.log").write_text("step 1\rstep 2\n---\nval: 1.0\n")
    (session.runs / "0001-bbbbbbb.log").write_text("boom\nval: 0.9\n")
    session.append(ev.SessionStarted(tag="x", branch="autoresearch/x", project=str(tmp_path), original_branch="main",
                                     base_commit="a" * 40, config={"metric": "val:min"}))
    session.append(ev.RunStarted(iteration=0, commit="a" * 40, log="runs/0000-aaaaaaa.log", budget_s=1, limit_s=2))
    session.append(ev.ResultRecorded(iteration=0, commit="a" * 40, metric=1.0, memory_gb=0, status="keep",
                                     description="baseline", reason="baseline", best_commit="a" * 40, best_metric=1.0))
    session.append(ev.ProposalMade(iteration=1, description="x", diff="--- a/train.py\n+++ b/train.py\n-A = 1\n+A = 2"))
    session.append(ev.RunStarted(iteration=1, commit="b" * 40, log="runs/0001-bbbbbbb.log", budget_s=1, limit_s=2))
    session.append(ev.ResultRecorded(iteration=1, commit="b" * 40, metric=0.9, memory_gb=0, status="keep",
                                     description="x", reason="improved", best_commit="b" * 40, best_metric=0.9))
    results = tmp_path / "results.tsv"
    results.write_text("commit\tval\tmemory_gb\tstatus\tdescription\naaaaaaa\t1.0\t0.0\tkeep\tbaseline\n"
                       "bbbbbbb\t0.9\t0.0\tkeep\tx\n", encoding="utf-8")
    app = replay_app(results, session=session.root)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        log = app.screen.query_one(LogView)
        assert await wait_for(pilot, lambda: log.lines == ["step 2", "---", "val: 1.0"], 5)
        await pilot.press("right")
        assert await wait_for(pilot, lambda: "+A = 2" in app.screen.query_one(DiffView).lines, 5)
        assert await wait_for(pilot, lambda: log.lines == ["boom", "val: 0.9"], 5)


def test_rows_are_sent_before_the_summary(tmp_path, monkeypatch):
    """The first frame does not wait for the summary: ResultsLoaded, then SummaryReady."""
    import threading

    from autoresearch_tui.tui import source
    from autoresearch_tui.tui.messages import ResultsLoaded, SummaryReady

    path = tmp_path / "results.tsv"
    path.write_text(MESSY, encoding="utf-8")
    rendering = threading.Event()
    release = threading.Event()
    real = source.render_state_summary

    def slow_summary(*args, **kwargs):
        rendering.set()
        release.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(source, "render_state_summary", slow_summary)

    class Target:
        def __init__(self):
            self.messages = []

        def post_message(self, message):
            self.messages.append(message)
            return True

    target = Target()
    results = source.ResultsSource(path)
    thread = results.start(target)
    assert not rendering.wait(0.3)  # not before the screen has drawn the rows
    assert [type(m) for m in target.messages] == [ResultsLoaded]
    results.rows_shown.set()
    assert rendering.wait(5)
    assert [type(m) for m in target.messages] == [ResultsLoaded]  # the rows, while the summary renders
    assert target.messages[0].summary is None and len(target.messages[0].state.rows) == 3
    release.set()
    thread.join(5)
    assert [type(m) for m in target.messages] == [ResultsLoaded, SummaryReady]
    assert "AutoResearch Summary" in target.messages[1].summary


async def test_summary_key_before_the_summary_is_ready(tmp_path, monkeypatch):
    import threading

    from autoresearch_tui.tui import source

    path = tmp_path / "results.tsv"
    path.write_text(MESSY, encoding="utf-8")
    release = threading.Event()
    real = source.render_state_summary
    monkeypatch.setattr(source, "render_state_summary", lambda *a, **k: (release.wait(5), real(*a, **k))[1])
    app = replay_app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        assert app.screen.summary is None and app.screen.query_one(ResultsTable).row_count == 3
        await pilot.press("u")  # opens once the summary is rendered
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "ReplayScreen"
        release.set()
        assert await wait_for(pilot, lambda: type(app.screen).__name__ == "DocumentScreen", 5)
        assert "line 3" in app.screen.markdown


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs a pty")
def test_first_rows_are_painted_before_the_app_starts(tmp_path):
    """In a real terminal (a pty) the first screenful is on screen before Textual draws anything,
    on the alternate screen, and quitting leaves it."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios
    import time

    path = tmp_path / "results.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    + "".join(f"{i:07x}\t{1 - i / 1000:.6f}\t1.0\tkeep\tstep {i}\n" for i in range(1, 60)),
                    encoding="utf-8")
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch_tui", "replay", str(path)], stdin=child,
                            stdout=child, stderr=child, env={**os.environ, "TERM": "xterm-256color"},
                            start_new_session=True)
    os.close(child)
    out = b""
    deadline = time.monotonic() + 40
    try:
        while b"Summary" not in out and time.monotonic() < deadline:  # the app's footer: it is up
            if select.select([main], [], [], 0.2)[0]:
                out += os.read(main, 65536)
        assert b"Summary" in out, out[-2000:]
        first = out.index(b"0000001")  # the first data row's commit
        assert out.index(b"\x1b[?1049h") < first < out.index(b"Summary")
        painted = out[:out.index(b"Summary")]
        assert b"reading" in painted and b"step 1" in painted
        os.write(main, b"q")
        assert proc.wait(20) == 0
        while select.select([main], [], [], 0.5)[0]:
            try:
                out += os.read(main, 65536)
            except OSError:
                break
        assert out.rfind(b"\x1b[?1049l") > out.index(b"Summary")  # back on the normal screen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
