"""Writes that never follow a symlink planted in the work tree.

A training run or an agent can replace `results.tsv`, the summary or a session folder with a
symlink at any moment. Every component below the work tree's root is opened with O_NOFOLLOW
(openat-style, one directory at a time), so such a write fails instead of landing elsewhere.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from autoresearch_tui.errors import RuntimeFailure

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_roots: set[str] = set()  # work-tree roots seen first: a `.git` planted deeper cannot move the anchor


def _anchor(folder: str) -> str:
    """The outermost known work tree holding `folder`, else the nearest folder with a `.git`."""
    parts = [folder]
    while True:
        parent = os.path.dirname(parts[-1])
        if parent == parts[-1]:
            break
        parts.append(parent)
    for p in reversed(parts):
        if p in _roots:
            return p
    for p in parts:
        if os.path.lexists(os.path.join(p, ".git")):
            _roots.add(p)
            return p
    return folder


def _unsafe(path: Path, exc: OSError) -> RuntimeFailure:
    return RuntimeFailure(f"refusing to write {path}: it or a folder on its way is a symlink "
                          f"(planted during the session?); remove it and resume")


def open_dir(folder: Path) -> int:
    """A file descriptor of `folder`, reached without following symlinks below the work tree."""
    folder = Path(os.path.abspath(folder))
    anchor = _anchor(str(folder))
    rel = os.path.relpath(folder, anchor)
    fd = os.open(anchor, os.O_RDONLY | DIRECTORY)
    try:
        for part in ([] if rel == "." else rel.split(os.sep)):
            nxt = os.open(part, os.O_RDONLY | DIRECTORY | NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _unsafe(folder, exc) from None
        raise
    return fd


def open_fd(path: Path, flags: int, mode: int = 0o666) -> int:
    path = Path(os.path.abspath(path))
    dfd = open_dir(path.parent)
    try:
        return os.open(path.name, flags | NOFOLLOW, mode, dir_fd=dfd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _unsafe(path, exc) from None
        raise
    finally:
        os.close(dfd)


def open_append(path: Path) -> int:
    return open_fd(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def append(path: Path, data: bytes, sync: bool = True, fresh_line: bool = False) -> None:
    """One write at the end of `path`, never through a link: a crash can at worst leave a
    truncated last line. fresh_line: if an earlier crash left one, start on a new line."""
    fd = open_fd(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        size = os.fstat(fd).st_size if fresh_line else 0
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, sync: bool = False) -> None:
    """Replace `path` with `data` via a temporary file in the same (verified) folder."""
    path = Path(os.path.abspath(path))
    dfd = open_dir(path.parent)
    tmp = f".{path.name}.{os.getpid()}.tmp"
    try:
        try:
            os.unlink(tmp, dir_fd=dfd)  # a planted file or link at the temporary name
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666, dir_fd=dfd)
        try:
            os.write(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)  # replaces a link, never its target
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
        raise
    finally:
        os.close(dfd)
