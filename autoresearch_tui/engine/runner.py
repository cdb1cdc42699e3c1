"""Run one training process: its own process group, merged output streamed to a log, a hard limit.

The raw bytes go to the log file untouched (`\\r` progress lines included); readers split on
`\\r` and `\\n` for display. The whole process tree is ended on timeout or kill.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from autoresearch_tui.core import processes, safefs, secrets

CHUNK = 1 << 16
LOG_CAP_BYTES = 64 << 20  # keep the head and the tail of a run that prints without end
TAIL_KEEP = 8 << 20


@dataclass
class RunOutcome:
    exit_code: int | None
    duration_s: float
    timed_out: bool
    killed: bool  # stopped by the user (kill-run or second Ctrl-C)
    peak_rss_mb: float
    log_path: Path
    bytes_written: int
    bytes_dropped: int
    cpu_s: float | None = None  # CPU time (user + system) of the whole process tree


class LogWriter:
    """Writes the raw log, capping it: after LOG_CAP_BYTES only a rolling tail is kept."""

    def __init__(self, path: Path, cap: int = LOG_CAP_BYTES, tail_keep: int = TAIL_KEEP) -> None:
        self.path = path
        self.cap, self.tail_keep = cap, tail_keep
        self.fh = os.fdopen(safefs.open_fd(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb")
        self.scrubber = secrets.StreamScrubber()  # a run that prints a key never writes it
        self.written = 0
        self.dropped = 0
        self.tail = bytearray()

    def write(self, data: bytes) -> None:
        data = self.scrubber.feed(data)
        if self.written < self.cap:
            room = self.cap - self.written
            head, data = data[:room], data[room:]
            self.fh.write(head)
            self.fh.flush()
            self.written += len(head)
        if data:
            self.tail += data
            if len(self.tail) > self.tail_keep:
                cut = len(self.tail) - self.tail_keep
                del self.tail[:cut]
                self.dropped += cut

    def close(self) -> None:
        rest = self.scrubber.flush()
        if rest:
            self.scrubber = secrets.StreamScrubber()
            self.write(rest)
        if self.tail or self.dropped:
            note = f"\n[autoresearch-tui: log capped, {self.dropped} bytes cut here; the tail follows]\n"
            self.fh.write(note.encode() + bytes(self.tail))
        self.fh.close()


async def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    limit_s: float,
    grace_s: float = 10.0,
    kill_event: asyncio.Event | None = None,
    on_output: Callable[[bytes], None] | None = None,
    sample_every: float = 0.25,
    pid_file: Path | None = None,
    log_cap: int = LOG_CAP_BYTES,
    tail_keep: int = TAIL_KEEP,
    mark: str | None = None,
) -> RunOutcome:
    mark = mark or processes.unique_mark("run")
    log = LogWriter(log_path, log_cap, tail_keep)
    start, started_at = time.monotonic(), time.time()
    try:
        proc = await processes.start(argv, cwd=cwd, env=env, mark=mark)
    except OSError as exc:
        log.write(f"could not start {argv[0]!r}: {exc}\n".encode())
        log.close()
        return RunOutcome(None, 0.0, False, False, 0.0, log_path, 0, 0)

    if pid_file is not None:
        # Lets a resumed engine end a run that outlived a SIGKILLed engine.
        processes.write_pid(pid_file, proc.pid, mark)
    peak = 0.0
    seen: dict[int, psutil.Process] = {}  # every descendant ever sampled, to end leavers too
    cpu: dict[int, float] = {}  # pid -> its latest CPU time; summed, also over children that exited
    timed_out = killed = False

    async def pump() -> None:
        assert proc.stdout is not None
        while True:
            data = await proc.stdout.read(CHUNK)
            if not data:
                return
            log.write(data)
            if on_output is not None:
                on_output(data)

    async def sample() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while True:
            total = 0
            for p in processes.tree(root):
                seen.setdefault(p.pid, p)
                try:
                    total += p.memory_info().rss
                    times = p.cpu_times()
                    cpu[p.pid] = times.user + times.system
                except psutil.Error:
                    pass
            peak = max(peak, total / 2**20)
            await asyncio.sleep(sample_every)

    def end(sig: int = signal.SIGKILL) -> None:
        processes.signal_tree(proc.pid, sig, mark, started_at, seen.values())

    async def exited() -> None:
        # Not proc.wait(): it also waits for the pipes to close, which a daemon the run left
        # behind (setsid + fork, holding stdout) never does.
        await processes.exited(proc, math.inf)

    async def stop(reason_timeout: bool) -> None:
        nonlocal timed_out, killed
        timed_out, killed = reason_timeout, not reason_timeout
        end(signal.SIGTERM)
        try:
            await asyncio.wait_for(exited(), grace_s)
        except asyncio.TimeoutError:
            pass
        end()

    pump_task = asyncio.ensure_future(pump())
    sample_task = asyncio.ensure_future(sample())
    waiters = [asyncio.ensure_future(exited())]
    kill_wait = asyncio.ensure_future(kill_event.wait()) if kill_event is not None else None
    if kill_wait:
        waiters.append(kill_wait)
    try:
        done, _ = await asyncio.wait(waiters, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
        if waiters[0] not in done:
            await stop(reason_timeout=not (kill_wait and kill_wait in done))
        await exited()
        # Grandchildren that kept the pipe open would block the pump forever.
        end()
        try:
            await asyncio.wait_for(pump_task, 5)
        except asyncio.TimeoutError:
            pump_task.cancel()
        try:
            await asyncio.wait_for(proc.wait(), 5)  # reaps the transport once the pipes closed
        except asyncio.TimeoutError:
            pass
    finally:
        for task in (sample_task, kill_wait, *waiters):
            if task is not None and not task.done():
                task.cancel()
        if proc.returncode is None:
            end()
        log.close()
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    return RunOutcome(
        exit_code=proc.returncode,
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        killed=killed,
        peak_rss_mb=peak,
        log_path=log_path,
        bytes_written=log.written,
        bytes_dropped=log.dropped,
        cpu_s=round(sum(cpu.values()), 3) if cpu else None,
    )
