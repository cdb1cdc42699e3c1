"""The remote side of a Ray training run: standard library only, so it ships by value.

`stream_run` runs in a Ray task (a streaming generator) inside the candidate's working_dir.
It starts the training command in its own process group, yields the merged output in chunks
(bytes, at most every CHUNK_S seconds), enforces the time limit itself (SIGTERM to the group,
`grace_s`, then SIGKILL) and yields a final dict with the outcome. A cancelled task (the user
killed the run) raises KeyboardInterrupt here: the `finally` takes the whole group down.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time

CHUNK_S = 0.2
CHUNK_BYTES = 1 << 16


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _end_group(proc: subprocess.Popen, grace_s: float) -> None:
    _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _rss_mb(pid: int) -> float:
    try:
        import psutil
    except ImportError:
        return 0.0
    try:
        root = psutil.Process(pid)
        total = 0
        for p in [root, *root.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20
    except psutil.Error:
        return 0.0


def stream_run(argv: list[str], env_updates: dict[str, str], limit_s: float, grace_s: float):
    env = {**os.environ, **env_updates}
    if shutil.which("timeout"):
        # Backstop: if this Ray worker itself is killed, coreutils `timeout` still ends the run.
        backstop = f"{max(1.0, limit_s + grace_s + 30):.0f}"
        argv = ["timeout", "-s", "KILL", backstop, *argv]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=os.getcwd(), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        yield f"could not start {argv[0]!r}: {exc}\n".encode()
        yield {"exit_code": None, "duration_s": 0.0, "timed_out": False, "peak_rss_mb": 0.0}
        return
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    buf = bytearray()
    last_flush = last_sample = start
    peak = 0.0
    timed_out = eof = False
    kill_at: float | None = None
    exited_at: float | None = None
    try:
        while not eof:
            now = time.monotonic()
            if not timed_out and now - start > limit_s:
                timed_out = True
                _signal_group(proc.pid, signal.SIGTERM)
                kill_at = now + grace_s
            if kill_at is not None and now >= kill_at:
                _signal_group(proc.pid, signal.SIGKILL)
                kill_at = None
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                _signal_group(proc.pid, signal.SIGKILL)  # children still holding the pipe
            if exited_at is not None and now - exited_at > 5:
                break
            for _key, _mask in sel.select(timeout=0.1):
                try:
                    data = os.read(fd, CHUNK_BYTES)
                except BlockingIOError:
                    continue
                if not data:
                    eof = True
                buf += data
            if now - last_sample >= 0.5 and proc.poll() is None:
                last_sample = now
                peak = max(peak, _rss_mb(proc.pid))
            if buf and (eof or len(buf) >= CHUNK_BYTES or now - last_flush >= CHUNK_S):
                last_flush = now
                yield bytes(buf)
                buf.clear()
        proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)
        if buf:
            yield bytes(buf)
        yield {"exit_code": proc.returncode, "duration_s": time.monotonic() - start, "timed_out": timed_out,
               "peak_rss_mb": peak}
    finally:
        sel.close()
        if proc.poll() is None or _group_alive(proc.pid):
            _end_group(proc, grace_s)
