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
        # detection done and the footer drawn (on a busy machine it can come a frame later)
        assert await wait_for(pilot, lambda: "Adjustments:" in screen_text(app) and "Continue" in screen_text(app), 15)
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


# A training script that prints its progress the reference's way: one long `\r`-updated line.
LONG_TRAIN = '''\
import math
LR = 0.1
WIDTH = 8
for i in range(3):
    pct = (i + 1) / 3 * 100
    print(f"\\rstep {i:05d} ({pct:.1f}%) | loss: {1.0 / (i + 1):.6f} | lrm: 1.00 | dt: 312ms | tok/sec: 1,680,000 | mfu: 39.8% | epoch: 1 | remaining: {2 - i}s    ", end="", flush=True)
print()
value = abs(math.log10(LR) - math.log10(0.4)) + 1.0 + abs(WIDTH - 16) / 100
print("---")
print(f"val_bpb:          {value:.6f}")
print("peak_vram_mb:     0.0")
'''
SCROLLBAR_GLYPHS = set("▁▂▃▄▅▆▇█▉▊▋▌▍▎▏▔▕")


def _panes(text: str, first: str, last: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if first in ln)
    end = next(i for i, ln in enumerate(lines) if last in ln)
    return lines[start + 1:end]


@pytest.fixture
def finished_session(tmp_path: Path) -> Path:
    from conftest import make_project

    project = make_project(tmp_path / "proj", train=LONG_TRAIN)
    done = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
               "--max-iterations", "2", "--device", "cpu", "--tag", "wide")
    assert done.returncode == 0, done.stderr
    return project / ".autoresearch" / "wide"


async def test_live_screen_at_80x24_stacks_the_panes_at_full_width(finished_session: Path) -> None:
    app = watch_app(finished_session)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_for(pilot, lambda: app.screen.state.ended is not None, 10)
        await pilot.press("2")  # the log pane large; the others keep two lines each
        await pilot.pause(0.8)
        text = screen_text(app)
        head = text.splitlines()[:2]
        assert "ENDED" in head[0] and "  proj" in head[0] and "…" not in head[1]
        diff = _panes(text, "1 Diff", "2 Training log")
        changed = re.compile(r"│[-+](LR|WIDTH) = ")  # whichever constant the proposer moved: its -/+ lines
        assert any(changed.match(ln) and ln[1] == "-" for ln in diff), diff
        assert any(changed.match(ln) and ln[1] == "+" for ln in diff), diff
        log = [ln.strip("│") for ln in _panes(text, "2 Training log", "3 Best metric")]
        assert max(len(ln.rstrip()) for ln in log) >= 70, log  # the progress line, full width
        for line in diff + log:
            assert not SCROLLBAR_GLYPHS & set(line), line
        check("live-80x24", text)


async def test_live_screen_at_160x45_shows_four_panes(finished_session: Path) -> None:
    app = watch_app(finished_session)
    async with app.run_test(size=(160, 45)) as pilot:
        assert await wait_for(pilot, lambda: app.screen.state.ended is not None, 10)
        await pilot.pause(0.8)
        text = screen_text(app)
        rows = text.splitlines()
        assert any("1 Diff" in ln and "2 Training log" in ln for ln in rows)
        assert any("3 Best metric" in ln and "4 Results" in ln for ln in rows)
        check("live-160x45", text)
