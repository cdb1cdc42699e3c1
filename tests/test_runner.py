"""Process hygiene: a run's whole tree ends on timeout or kill; a flood of output stays bounded."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import psutil

from autoresearch_tui.engine.runner import run_process

SPAWNER = r'''
import os, subprocess, sys, time
# A worker, a shell pipeline and an escaper that leaves the process group (like some launchers).
w = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
p = subprocess.Popen(["/bin/sh", "-c", "sleep 600 | cat"])
e = subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)"])
time.sleep(0.5)
print("pids", w.pid, p.pid, e.pid, flush=True)
time.sleep(600)
'''


def _descendants_gone(log: Path, root_pids: list[int]) -> None:
    text = log.read_text()
    pids = [int(x) for x in re.search(r"pids (\d+) (\d+) (\d+)", text).groups()]
    deadline = time.time() + 5
    alive = pids
    while time.time() < deadline:
        alive = [p for p in pids + root_pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError(f"still alive: {alive}")


def test_timeout_ends_workers_pipelines_and_escapers(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    outcome = asyncio.run(run_process([sys.executable, "-c", SPAWNER], cwd=tmp_path, env=dict(os.environ),
                                      log_path=log, limit_s=2.0, grace_s=0.5, sample_every=0.1))
    assert outcome.timed_out and not outcome.killed
    _descendants_gone(log, [])


def test_kill_request_ends_the_tree(tmp_path: Path) -> None:
    log = tmp_path / "run.log"

    async def main():
        kill = asyncio.Event()
        task = asyncio.ensure_future(run_process([sys.executable, "-c", SPAWNER], cwd=tmp_path,
                                                 env=dict(os.environ), log_path=log, limit_s=60, grace_s=0.5,
                                                 kill_event=kill, sample_every=0.1))
        for _ in range(100):
            await asyncio.sleep(0.1)
            if log.exists() and "pids" in log.read_text():
                break
        kill.set()
        return await task

    outcome = asyncio.run(main())
    assert outcome.killed and not outcome.timed_out and outcome.duration_s < 10
    _descendants_gone(log, [])


def test_sigterm_is_tried_before_sigkill(tmp_path: Path) -> None:
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (print('got SIGTERM, saving', flush=True), sys.exit(0)))\n"
              "print('ready', flush=True)\ntime.sleep(60)\n")
    log = tmp_path / "run.log"
    outcome = asyncio.run(run_process([sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ),
                                      log_path=log, limit_s=1.0, grace_s=5))
    assert outcome.timed_out and "got SIGTERM, saving" in log.read_text()
    assert outcome.duration_s < 5


def test_flood_is_capped_on_disk_keeping_head_and_tail(tmp_path: Path) -> None:
    script = ("import sys\nw = sys.stdout.write\nw('FIRST LINE\\n')\n"
              "for i in range(300000):\n    w(f'\\rstep {i:07d} progress')\n    w(f'line {i}\\n') if i % 2 else None\n"
              "w('\\n---\\nval_bpb: 1.234567\\n')\n")
    log = tmp_path / "run.log"
    outcome = asyncio.run(run_process([sys.executable, "-c", script], cwd=tmp_path, env=dict(os.environ),
                                      log_path=log, limit_s=60, log_cap=1 << 20, tail_keep=1 << 18))
    size = log.stat().st_size
    assert outcome.exit_code == 0 and outcome.bytes_dropped > 0
    assert size < (1 << 20) + (1 << 18) + 1000
    text = log.read_text()
    assert text.startswith("FIRST LINE") and "log capped" in text and text.rstrip().endswith("val_bpb: 1.234567")


def test_missing_command_is_reported_not_raised(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    outcome = asyncio.run(run_process(["definitely-not-a-command-xyz"], cwd=tmp_path, env=dict(os.environ),
                                      log_path=log, limit_s=5))
    assert outcome.exit_code is None and "could not start" in log.read_text()
