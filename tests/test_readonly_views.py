"""`watch` and `replay` only read: the repository and the session are byte-identical afterwards."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import cli
from tui_helpers import wait_for

from autoresearch_tui.tui.launch import replay_app, watch_app


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


async def test_watch_and_replay_never_write(project: Path) -> None:
    done = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
               "--max-iterations", "3", "--device", "cpu", "--tag", "ro")
    assert done.returncode == 0, done.stderr
    session = project / ".autoresearch" / "ro"
    before = snapshot(project)
    assert cli("watch", str(session), "--headless").returncode == 0
    for app in (watch_app(session), replay_app(project / "results.tsv", session=session, repo=project)):
        async with app.run_test(size=(100, 30)) as pilot:
            assert await wait_for(pilot, lambda: len(getattr(app.screen, "state", None).rows or []) == 4
                                  if getattr(app.screen, "state", None) is not None else False, 10)
            for key in ("down", "enter", "escape", "right", "left"):
                await pilot.press(key)
                await pilot.pause(0.1)
    assert snapshot(project) == before
