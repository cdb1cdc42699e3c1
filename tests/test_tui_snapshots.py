"""Snapshot tests of the three screens at 80x24: the text a person sees, compared with a golden copy.

Volatile parts (commit hashes, clocks, dates, temp paths, the platform line) are masked. When a
screen changes on purpose, regenerate with `UPDATE_SNAPSHOTS=1 python -m pytest tests/test_tui_snapshots.py`
and review the diff of tests/snapshots/ like any other change.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from conftest import REAL_RESULTS, cli, real_results_files
from tui_helpers import wait_for

from autoresearch_tui.engine.config import load_config
from autoresearch_tui.tui.launch import replay_app, watch_app, wizard_app

SNAPSHOTS = Path(__file__).parent / "snapshots"
SIZE = (80, 24)
MASKS = [
    (re.compile(r"\b[0-9a-f]{7,40}\b"), "<hash>"),
    (re.compile(r"\b\d\d:\d\d(:\d\d)?\b"), "<time>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d\b"), "<date>"),
    (re.compile(r"/tmp/\S+"), "<tmp>"),
    (re.compile(r"\b[a-z]{3}\d{1,2}\b"), "<tag>"),
    (re.compile(r"\d+(\.\d+)?\s?(ms|s)\b"), "<dur>"),
]


def screen_text(app) -> str:
    strips = app.screen._compositor.render_strips()
    lines = [strip.text.rstrip() for strip in strips]
    text = "\n".join(lines)
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text + "\n"


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not os.environ.get("UPDATE_SNAPSHOTS"):
            pytest.fail(f"snapshot {path.name} did not exist; written now, review and commit it")
        return
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), "golden", "now"))
        pytest.fail(f"screen {name} changed (UPDATE_SNAPSHOTS=1 to accept):\n{diff}")


@pytest.mark.skipif(REAL_RESULTS / "Bervaso__autoresearch-macos.tsv" not in real_results_files(),
                    reason="no real results")
async def test_replay_snapshot() -> None:
    app = replay_app(REAL_RESULTS / "Bervaso__autoresearch-macos.tsv")
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: getattr(app.screen, "loaded", False), 10)
        # The summary renders in a thread: wait for it and the footer, however loaded the machine.
        assert await wait_for(pilot, lambda: "AutoResearch Summary" in (t := screen_text(app)) and "q Quit" in t, 30)
        check("replay-80x24", screen_text(app))


async def test_wizard_snapshot(project: Path) -> None:
    config = load_config(project, None, {"tag": "snap"})
    app = wizard_app(config)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: "Adjustments:" in screen_text(app), 15)  # detection done
        await pilot.pause(0.3)
        text = screen_text(app)
        text = re.sub(r"(Platform: ).*", r"\1<platform>", text)
        text = re.sub(r"(Adjustments: ).*", r"\1<adjustments>", text)
        check("wizard-80x24", text)


async def test_watch_of_a_finished_session_snapshot(project: Path) -> None:
    done = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
               "--max-iterations", "3", "--device", "cpu", "--tag", "snap")
    assert done.returncode == 0, done.stderr
    app = watch_app(project / ".autoresearch" / "snap")
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: getattr(app.screen, "state", None) is not None
                              and app.screen.state.ended is not None, 10)
        await pilot.pause(0.8)
        check("watch-finished-80x24", screen_text(app))
