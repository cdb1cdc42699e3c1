"""Shared by the TUI tests: a tiny real project in a temp git repo and polling helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import conftest

TRAIN = '''"""A fake training script: constant hyperparameters, a metric computed from them."""
import time
from prepare import DURATION, FLOOD

LEARNING_RATE = 0.01
DEPTH = 4
WEIGHT_DECAY = 0.1

if FLOOD:
    import sys
    out = sys.stdout
    for i in range(FLOOD):
        out.write(f"\\rstep {i:06d} | loss: 2.5 | progress" if i % 2 else f"line {i:06d} of the flood\\n")
    out.write("\\n")
    out.flush()
t0 = time.time()
i = 0
while time.time() - t0 < DURATION:
    print(f"\\rstep {i:05d} | loss: {3.0 - i * 0.001:.4f}", end="", flush=True)
    i += 1
    time.sleep(0.05)
print()
val = abs(LEARNING_RATE - 0.02) * 10 + abs(DEPTH - 6) * 0.01 + WEIGHT_DECAY * 0.1 + 1.0
print("---")
print(f"val:              {val:.6f}")
'''


def make_project(root: Path, duration: float = 0.5, flood: int = 0) -> Path:
    """conftest's project with the screens' fake script (metric `val`, optional output flood)."""
    return conftest.make_project(root / "proj", TRAIN, f"DURATION = {duration}\nFLOOD = {flood}\n",
                                 ignore="__pycache__/\nresults.tsv\n.autoresearch/\nautoresearch-summary.md\n")


def load(project: Path, **values):
    from autoresearch_tui.engine.config import load_config

    base = {"time_budget": "5s", "metric": "val:min", "max_iterations": "3", "tag": "t1"}
    base.update({k: v if isinstance(v, bool) else str(v) for k, v in values.items()})
    return load_config(project, None, base)


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 15.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await pilot.pause(step)
    return predicate()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def finish(popen: subprocess.Popen | None, pid: int | None = None, session: Path | None = None,
           timeout: float = 15.0) -> None:
    """Stop an engine the test started: ask through the control file, then signal it."""
    if session is not None:
        from autoresearch_tui.engine.control import Stop
        from autoresearch_tui.engine.session import SessionDir

        if (session / "events.jsonl").exists():
            SessionDir(session).send(Stop())
            SessionDir(session).send(Stop())
    deadline = time.monotonic() + timeout
    target = popen.pid if popen is not None else pid
    while target and time.monotonic() < deadline and pid_alive(target):
        if popen is not None and popen.poll() is not None:
            break
        time.sleep(0.1)
    if target and pid_alive(target):
        try:
            os.killpg(target, signal.SIGTERM)
        except OSError:
            pass
        if popen is not None:
            try:
                popen.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(target, signal.SIGKILL)


def spawn_headless(tmp_path: Path, tag: str, *flags: str, duration: float = 0.8, iterations: int = 3,
                   budget: str = "1s") -> tuple[subprocess.Popen, Path]:
    """`run --headless` on a fresh fake project in its own process (as on a GPU box in tmux)."""
    project = make_project(tmp_path, duration=duration)
    argv = [sys.executable, "-m", "autoresearch_tui", "run", str(project), "--headless", "--yes",
            "--time-budget", budget, "--metric", "val:min", "--max-iterations", str(iterations), "--tag", tag,
            *flags]
    with open(tmp_path / "engine.out", "wb") as log:
        popen = subprocess.Popen(argv, cwd=project, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return popen, project / ".autoresearch" / tag
