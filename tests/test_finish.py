"""FinishScreen on a session made by a real headless run: summary, kept commits, merge choices."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Button, Markdown, Static

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.merge import MergeResult
from autoresearch_tui.engine.session import SessionDir
from autoresearch_tui.tui.screens.finish import FinishScreen

from conftest import cli, git, make_project

UNSET = object()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real headless session (builtin proposer, fake train.py), copied by each test."""
    proj = make_project(tmp_path_factory.mktemp("run") / "proj")
    result = cli("run", str(proj), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
                 "--max-iterations", "3", "--tag", "fin")
    assert result.returncode == 0, result.stderr + result.stdout
    return proj


@pytest.fixture
def proj(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "proj"
    shutil.copytree(finished_run, copy, symlinks=True)
    return copy


class FinishApp(App):
    def __init__(self, session: Path, project: Path) -> None:
        super().__init__()
        self.session, self.project = session, project
        self.result: object = UNSET

    def on_mount(self) -> None:
        self.push_screen(FinishScreen(self.session, self.project), self.done)

    def done(self, result: MergeResult | None) -> None:
        self.result = result


def kept_commits(proj: Path) -> list[tuple[str, str]]:
    session = SessionDir(proj / ".autoresearch" / "fin")
    return [(e.commit, e.description) for e in session.events()
            if isinstance(e, ev.ResultRecorded) and e.status == "keep"]


def text(screen: FinishScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).content)


async def idle(pilot, screen: FinishScreen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while screen.busy or any(not w.is_finished for w in screen.workers):
        assert time.monotonic() < deadline, "worker did not finish"
        await asyncio.sleep(0.02)
    await pilot.pause()


async def press(pilot, screen: FinishScreen, button_id: str) -> None:
    button = screen.query_one(f"#{button_id}", Button)
    assert not button.disabled, button_id
    button.focus()
    while button.has_class("-active"):  # a Button ignores presses during its 0.2 s press effect
        await pilot.pause(0.05)
    await pilot.press("enter")
    await idle(pilot, screen)


async def test_shows_summary_kept_commits_and_final_metric(proj: Path) -> None:
    kept = kept_commits(proj)
    assert len(kept) >= 2  # the baseline and at least one improvement
    app = FinishApp(proj / ".autoresearch" / "fin", proj)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, FinishScreen)
        await idle(pilot, screen)
        summary = screen.query_one("#fin-summary", Markdown).source
        assert summary.startswith("# AutoResearch Summary") and "autoresearch/fin" in summary
        listing = text(screen, "#fin-kept")
        for commit, description in kept:
            assert commit[:7] in listing and description in listing
        best = screen.best_commit
        assert best == kept[-1][0]
        assert f"{best[:7]}" in listing.splitlines()[-1] and "← best" in listing
        headline = text(screen, "#fin-headline")
        assert f"{screen.best_metric:.6f}" in headline and "val_bpb" in headline
        question = text(screen, "#fin-question")
        assert "autoresearch/fin" in question and "main" in question
        for how in ("squash", "rebase", "merge"):
            assert not screen.query_one(f"#merge-{how}", Button).disabled
        assert not screen.query_one("#fin-warning", Static).has_class("-shown")  # main did not move
        # the button drawn as the primary one is the one Enter presses
        primary = [b.id for b in screen.query(Button) if b.variant == "primary"]
        assert primary == ["merge-squash"] and screen.focused is screen.query_one("#merge-squash", Button)


async def test_choosing_squash_merges_the_best_commit(proj: Path) -> None:
    base = git(proj, "rev-parse", "main")
    best = kept_commits(proj)[-1][0]
    app = FinishApp(proj / ".autoresearch" / "fin", proj)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await idle(pilot, screen)
        await press(pilot, screen, "merge-squash")
        result = text(screen, "#fin-result")
        assert result.startswith("✓ squashed") and "Nothing was pushed" in result
        assert all(screen.query_one(f"#merge-{h}", Button).disabled for h in ("squash", "rebase", "merge"))
        await pilot.press("escape")
        await pilot.pause()
    assert isinstance(app.result, MergeResult) and app.result.how == "squash"
    assert git(proj, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(proj, "rev-parse", "main^") == base
    assert git(proj, "rev-parse", "main^{tree}") == git(proj, "rev-parse", f"{best}^{{tree}}")
    assert git(proj, "rev-parse", "autoresearch/fin") == best
    assert git(proj, "remote") == ""  # nothing to push to, nothing pushed
    assert git(proj, "status", "--porcelain", "--untracked-files=no") == ""


async def test_moved_branch_needs_a_second_press(proj: Path) -> None:
    git(proj, "checkout", "-q", "main")
    (proj / "NOTES.md").write_text("notes\n")
    git(proj, "add", "NOTES.md")
    git(proj, "commit", "-q", "-m", "notes on main")
    moved = git(proj, "rev-parse", "main")
    git(proj, "checkout", "-q", "autoresearch/fin")
    app = FinishApp(proj / ".autoresearch" / "fin", proj)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await idle(pilot, screen)
        warning = screen.query_one("#fin-warning", Static)
        assert warning.has_class("-shown") and "main moved since the session started" in str(warning.content)
        await press(pilot, screen, "merge-merge")
        assert "again to confirm" in str(warning.content)
        assert git(proj, "rev-parse", "main") == moved  # nothing happened yet
        await press(pilot, screen, "merge-merge")
        assert text(screen, "#fin-result").startswith("✓ merged")
    parents = git(proj, "log", "-1", "--format=%P", "main").split()
    assert parents[0] == moved  # on top: main's history is kept
    assert (proj / "NOTES.md").exists()


async def test_keep_branch_as_is(proj: Path) -> None:
    base = git(proj, "rev-parse", "main")
    app = FinishApp(proj / ".autoresearch" / "fin", proj)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await idle(pilot, screen)
        await press(pilot, screen, "merge-keep")
        assert "nothing was merged" in text(screen, "#fin-result")
        # not a dead screen: a merge is still offered, and Enter (on the primary Close) closes
        assert not screen.query_one("#merge-squash", Button).disabled
        close = screen.query_one("#fin-close", Button)
        assert screen.focused is close and close.variant == "primary"
        while close.has_class("-active"):
            await pilot.pause(0.05)
        await pilot.press("enter")
        await pilot.pause()
    assert app.result is None
    assert git(proj, "rev-parse", "main") == base
    assert git(proj, "rev-parse", "--abbrev-ref", "HEAD") == "autoresearch/fin"


async def test_dirty_tree_refusal_is_shown(proj: Path) -> None:
    (proj / "train.py").write_text("changed\n")
    app = FinishApp(proj / ".autoresearch" / "fin", proj)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await idle(pilot, screen)
        assert "uncommitted changes" in str(screen.query_one("#fin-warning", Static).content)
        await press(pilot, screen, "merge-squash")
        assert text(screen, "#fin-result").startswith("✗") and "uncommitted changes" in text(screen, "#fin-result")
    assert (proj / "train.py").read_text() == "changed\n"


async def test_hand_written_session_with_only_a_baseline(tmp_path: Path) -> None:
    """Events written directly (no engine): the best is the baseline, so nothing to merge."""
    proj = make_project(tmp_path / "proj")
    base = git(proj, "rev-parse", "HEAD")
    git(proj, "checkout", "-q", "-b", "autoresearch/solo")
    session = SessionDir(tmp_path / "session").create()
    session.append(ev.SessionStarted(tag="solo", branch="autoresearch/solo", project=str(proj),
                                     original_branch="main", base_commit=base,
                                     config={"metric": "val_bpb:min", "time_budget": "1s"}))
    session.append(ev.ResultRecorded(iteration=0, commit=base, metric=1.5, memory_gb=0.0, status="keep",
                                     description="baseline", reason="baseline", best_commit=base, best_metric=1.5))
    session.append(ev.ResultRecorded(iteration=1, commit="f" * 40, metric=1.7, memory_gb=0.0, status="discard",
                                     description="LR 0.1 -> 0.2", reason="worse", best_commit=base,
                                     best_metric=1.5))
    session.append(ev.SessionEnded(reason="stopped", iterations=1, best_commit=base, best_metric=1.5))
    (session.root / "autoresearch-summary.md").write_text("# AutoResearch Summary\n\n**Research session:** "
                                                          "autoresearch/solo\n")
    app = FinishApp(session.root, proj)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await idle(pilot, screen)
        assert "autoresearch/solo" in screen.query_one("#fin-summary", Markdown).source
        listing = text(screen, "#fin-kept")
        assert base[:7] in listing and "LR 0.1 -> 0.2" not in listing  # discarded: not listed as kept
        assert "Nothing to merge" in str(screen.query_one("#fin-warning", Static).content)
        assert all(screen.query_one(f"#merge-{h}", Button).disabled for h in ("squash", "rebase", "merge"))
