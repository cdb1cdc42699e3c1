"""The one way the app starts and ends processes: training runs, agents, hooks, the probe, the engine.

Every process starts in its own session (process group) with `AUTORESEARCH_PROC=<mark>` in its
environment. Ending one ends its tree: the group, every descendant psutil still sees, and every
process carrying the mark, which finds what double-forked or called setsid to get away. A pid
file records pid and start time, so a pid the system has since reused is never signalled.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import psutil

MARK = "AUTORESEARCH_PROC"
HOOK_TIMEOUT_S = 120.0


def unique_mark(kind: str) -> str:
    return f"{kind}:{os.getpid()}:{time.monotonic_ns()}"


def marked(env: dict[str, str] | None, mark: str) -> dict[str, str]:
    return {**(os.environ if env is None else env), MARK: mark}


@contextmanager
def marking(mark: str) -> Iterator[None]:
    """Children that code not ours starts meanwhile (Ray starting its local instance) carry
    `mark`: they inherit this process's environment."""
    before = os.environ.get(MARK)
    os.environ[MARK] = mark
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MARK, None)
        else:
            os.environ[MARK] = before


def session_mark(root: Path, tag: str) -> str:
    """The mark prefix of one session: its tag and where it lives (two projects may share a tag)."""
    return f"{tag}@{hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:8]}"


async def start(argv: list[str], *, cwd: Path | str | None, env: dict[str, str] | None, mark: str,
                stdin: Any = asyncio.subprocess.DEVNULL, stdout: Any = asyncio.subprocess.PIPE,
                stderr: Any = asyncio.subprocess.STDOUT) -> asyncio.subprocess.Process:
    """An asyncio child in its own process group, marked."""
    return await asyncio.create_subprocess_exec(
        *argv, cwd=str(cwd) if cwd else None, env=marked(env, mark), stdin=stdin, stdout=stdout, stderr=stderr,
        start_new_session=True)


def popen(argv: list[str] | str, *, cwd: Path | str | None, env: dict[str, str] | None, mark: str,
          shell: bool = False, stdout: Any = subprocess.DEVNULL, stderr: Any = subprocess.DEVNULL) -> subprocess.Popen:
    """A detached child in its own session, marked (it may outlive this process)."""
    return subprocess.Popen(argv, shell=shell, cwd=str(cwd) if cwd else None, env=marked(env, mark),
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True)


def run_hook(command: str, cwd: Path, env: dict[str, str], mark: str,
             timeout_s: float = HOOK_TIMEOUT_S) -> subprocess.Popen | None:
    """The user's own shell command (by design through the shell; values only as environment
    variables), ended after `timeout_s` even when this process is gone first (coreutils timeout
    signals its whole group)."""
    argv = ["sh", "-c", command]
    if shutil.which("timeout"):
        argv = ["timeout", "-k", "5", f"{timeout_s:g}", *argv]
    try:
        proc = popen(argv, cwd=cwd, env=env, mark=mark)
    except OSError:
        return None  # a broken notifier must never stop the research loop

    def watchdog() -> None:
        try:
            proc.wait(timeout_s + 10)
        except subprocess.TimeoutExpired:
            end_tree(proc.pid, mark)

    threading.Thread(target=watchdog, daemon=True).start()
    return proc


# -- finding and ending ------------------------------------------------------------------------

def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def with_mark(mark: str, since: float = 0.0) -> list[psutil.Process]:
    """Processes marked `mark` or below it (`mark:...`), started at or after `since` (time.time())."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["create_time"]):
        if proc.pid == me or (since and (proc.info.get("create_time") or 0) < since - 1):
            continue
        try:
            value = proc.environ().get(MARK, "")
        except psutil.Error:
            continue
        if value and (value == mark or value.startswith(mark + ":")):
            found.append(proc)
    return found


def signal_tree(pid: int | None, sig: int, mark: str | None = None, since: float = 0.0,
                extra: Iterable[psutil.Process] = ()) -> None:
    """Signal a process group, every descendant, the processes carrying `mark`, and `extra`."""
    procs: dict[int, psutil.Process] = {}
    if pid is not None:
        try:
            procs.update((p.pid, p) for p in tree(psutil.Process(pid)))
        except psutil.Error:
            pass
        try:
            os.killpg(pid, sig)  # the group leader's pid is the group's id (start_new_session)
        except (ProcessLookupError, PermissionError):
            pass
    if mark:
        procs.update((p.pid, p) for p in with_mark(mark, since))
    procs.update((p.pid, p) for p in extra)
    for proc in procs.values():
        try:
            if proc.is_running():  # psutil checks the create time, so a reused pid is safe
                proc.send_signal(sig)
        except psutil.Error:
            pass


def end_tree(pid: int | None, mark: str | None = None, since: float = 0.0) -> None:
    signal_tree(pid, signal.SIGKILL, mark, since)


async def stop(proc: asyncio.subprocess.Process, grace_s: float, mark: str | None = None,
               since: float = 0.0) -> None:
    """SIGTERM the tree, wait up to `grace_s` for the leader, then SIGKILL the tree."""
    signal_tree(proc.pid, signal.SIGTERM, mark, since)
    await exited(proc, grace_s)
    end_tree(proc.pid, mark, since)


async def exited(proc: asyncio.subprocess.Process, timeout: float) -> bool:
    """Whether the leader exits within timeout. Polls returncode because on recent Pythons
    proc.wait() also waits for every child still holding the output pipe."""
    deadline = time.monotonic() + timeout
    while proc.returncode is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# -- pid files: what a later process may end -----------------------------------------------------

def write_pid(path: Path, pid: int, mark: str) -> None:
    """`pid start-time mark`: enough to recognise the same process later."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = 0.0
    path.write_text(f"{pid} {created:.3f} {mark}\n")


def end_recorded(path: Path) -> str | None:
    """End the tree a pid file names if that process is still the one recorded; remove the file.
    Returns what was done, or None when nothing was left to end."""
    try:
        pid_s, created_s, mark = (path.read_text().split() + ["", ""])[:3]
        pid, created = int(pid_s), float(created_s or 0)
    except (OSError, ValueError):
        return None
    path.unlink(missing_ok=True)
    same = False
    try:
        same = abs(psutil.Process(pid).create_time() - created) < 0.01
    except psutil.Error:
        pass
    strays = with_mark(mark) if mark else []
    if not same and not strays:
        return None
    end_tree(pid if same else None, mark or None)
    return f"ended the orphaned process tree of {pid}"
