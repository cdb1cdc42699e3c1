"""One session per repository: a lock held while the engine runs.

The lock is `autoresearch.lock` in the repository's git folder (shared by its worktrees). It is
an flock (the kernel drops it when the holder dies, however it dies) and it names the holder's
pid and process start time, so the refusal can say who holds it and a stale file whose pid was
reused by another program is never mistaken for a live session.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

import psutil

from autoresearch_tui.errors import UserError

LOCK = "autoresearch.lock"


def lock_path(project: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=project, capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    common = out.stdout.strip()
    # Relative to `project` on older gits (no --path-format before 2.31).
    return (Path(project) / common).resolve() / LOCK if out.returncode == 0 and common else None


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive(holder: dict) -> bool:
    """The recorded process still runs: same pid and the same start time (not a reused pid)."""
    try:
        pid, started = int(holder["pid"]), float(holder["start_time"])
    except (KeyError, TypeError, ValueError):
        return False
    now = start_time(pid)
    return now is not None and abs(now - started) < 0.05


def _read(fd: int) -> dict:
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 65536)
    try:
        holder = json.loads(data or b"{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def refusal(holder: dict) -> UserError:
    since = time.strftime("%H:%M", time.localtime(float(holder.get("since", 0) or 0)))
    session = holder.get("session") or ".autoresearch/<tag>"
    return UserError(f"another session runs in this repository: tag {holder.get('tag', '?')} "
                     f"(pid {holder.get('pid', '?')}, since {since}); attach with `autoresearch-tui watch {session}` "
                     f"or stop it first (`autoresearch-tui control {session} stop`)")


class SessionLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd

    @classmethod
    def acquire(cls, project: Path, tag: str, session: Path) -> "SessionLock | None":
        """Take the repository's lock, or raise UserError naming the live session."""
        path = lock_path(project)
        if path is None:
            return None  # not a git repository: opening the session says so
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read(fd)
            os.close(fd)
            raise refusal(holder) from None
        holder = _read(fd)
        # flock can be a no-op (some network file systems): a live holder still refuses.
        if holder and int(holder.get("pid", 0) or 0) != os.getpid() and alive(holder):
            os.close(fd)
            raise refusal(holder)
        me = {"pid": os.getpid(), "start_time": start_time(os.getpid()), "tag": tag, "session": str(session),
              "since": time.time()}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode())
        return cls(path, fd)

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def holder(project: Path) -> dict | None:
    """The live session holding the repository's lock, if any (without taking it)."""
    path = lock_path(project)
    if path is None or not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read(fd) or {"tag": "?"}
        data = _read(fd)
        return data if data and alive(data) else None
    finally:
        os.close(fd)
