"""core/processes.py: marked process trees end completely; pid files never hit a reused pid."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from autoresearch_tui.core import processes
from autoresearch_tui.engine.runner import run_process

# Double-forks a daemon in a new session (setsid): out of the run's group and tree at once.
ESCAPE = """\
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(1), os.close(2)  # not holding the output pipe: only its mark can find it
        open(r'{ready}.tmp', 'w').write(str(os.getpid()))
        os.rename(r'{ready}.tmp', r'{ready}')
        time.sleep(600)
    os._exit(0)
while not os.path.exists(r'{ready}'):
    time.sleep(0.01)
print("val_bpb: 1.0")
"""


def gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not processes.alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_setsid_grandchild_ends_with_its_run(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = tmp_path / "train.py"
    script.write_text(ESCAPE.format(ready=ready))
    outcome = asyncio.run(run_process([sys.executable, str(script)], cwd=tmp_path, env=None, log_path=tmp_path / "log",
                                      limit_s=60, mark="test:run:1"))
    assert outcome.exit_code == 0
    escaped = int(ready.read_text())
    assert gone(escaped), "the setsid grandchild outlived its run"


def test_pid_file_of_a_reused_pid_is_not_signalled(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        pid_file = tmp_path / "run.pid"
        # The recorded start time is not the bystander's: its pid was reused since.
        pid_file.write_text(f"{bystander.pid} 12345.000 nobody:run\n")
        assert processes.end_recorded(pid_file) is None
        assert bystander.poll() is None and not pid_file.exists()
        processes.write_pid(pid_file, bystander.pid, "nobody:run")
        assert processes.end_recorded(pid_file)
        assert bystander.wait(20) != 0
    finally:
        bystander.kill()


def test_a_hook_is_ended_after_its_timeout(tmp_path: Path) -> None:
    proc = processes.run_hook("sleep 600 & sleep 600", tmp_path, dict(os.environ), "test:hook", timeout_s=1)
    assert proc is not None
    children: list = []
    deadline = time.monotonic() + 20
    while len(children) < 2 and time.monotonic() < deadline:  # sh and its two sleeps are up
        children = [c for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == "sleep"]
        time.sleep(0.05)
    assert len(children) == 2
    assert proc.wait(30) != 0
    assert all(gone(c.pid) for c in children)
