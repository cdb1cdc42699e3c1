"""Start-up: `autoresearch-tui --help`, and the wizard's first frame.

`--help`: wall time of the installed console script as a subprocess, median of 10 (--quick: 3).
The wizard: `autoresearch-tui wizard PROJECT` as a subprocess in a pseudo-terminal (120x40,
TERM=xterm-256color); the time from spawning it until the terminal output contains the wizard's
first field label, median of 5 (--quick: 2). The process is then killed.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from benchmarks.common import Figure, make_project, median, tempdir

MARKER = b"Training script"  # the wizard's first field label


def script() -> list[str]:
    exe = Path(sys.executable).with_name("autoresearch-tui")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("autoresearch-tui")
    return [found] if found else [sys.executable, "-m", "autoresearch_tui"]


def help_time() -> float:
    t0 = time.perf_counter()
    subprocess.run([*script(), "--help"], check=True, capture_output=True)
    return time.perf_counter() - t0


def wizard_frame(project: Path, timeout: float = 30.0) -> float | None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("TEXTUAL", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([*script(), "wizard", str(project)], stdin=slave, stdout=slave, stderr=slave,
                            cwd=project, env=env, start_new_session=True, close_fds=True)
    os.close(slave)
    seen, found = b"", None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 1 << 16)
            except OSError:
                break
            seen = (seen + data)[-(1 << 20):]
            if MARKER in seen:
                found = time.perf_counter() - t0
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait(10)
        os.close(master)
    return found


def run(quick: bool = False):
    helps = [help_time() for _ in range(3 if quick else 10)]
    yield Figure("startup.help", median(helps) * 1000, "ms", "< 300 ms (console script, subprocess)",
                 median(helps) < 0.3)
    with tempdir("startup") as tmp:
        project = make_project(tmp / "proj")
        frames = [wizard_frame(project) for _ in range(2 if quick else 5)]
    got = [f for f in frames if f is not None]
    if not got:
        yield Figure("startup.wizard_first_frame", None, "ms", "< 1000 ms (subprocess in a pty)", False,
                     f"{MARKER.decode()!r} never appeared on the terminal")
        return
    value = median(got)
    yield Figure("startup.wizard_first_frame", value * 1000, "ms", "< 1000 ms (subprocess in a pty)", value < 1.0,
                 f"median of {len(got)}" + (f", {len(frames) - len(got)} runs never showed it" if len(got) < len(frames) else ""))
