"""The guard's view of the repository, read from the files instead of git processes.

Refs: HEAD, the loose files under `refs/` and `packed-refs` of the files backend, each re-read
only when its stat data (inode, size, mtime, ctime) changed. ctime cannot be set back by a
program, and a file changed within RACY_NS of being read is read again next time (two writes
in one clock tick look the same). Anything unusual (reftable, symlinks, odd names, lock files,
a symref or line that does not parse, a linked worktree) returns None: the caller asks git.
On Linux an inotify watch on each refs folder and the git folder says which ref files changed
since the last look, so only those are read again (no stat of a thousand discard refs per step).
The index: gitindex.py.
"""

from __future__ import annotations

import ctypes
import os
import re
import stat
import struct
import sys
import time
import weakref
from pathlib import Path

RACY_NS = 1_000_000_000
SHA = re.compile(rb"^([0-9a-f]{40}|[0-9a-f]{64})$")
_NAME = re.compile(r"^[A-Za-z0-9_+@,=-][A-Za-z0-9._+@,=-]*$")

Sig = tuple[int, int, int, int, int]
_NO_PACKED: dict[str, str] = {}  # one object, so an unchanged view is recognised; never written


def sig(st: os.stat_result) -> Sig:
    return (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def settled(st: os.stat_result, now: int) -> bool:
    """Old enough that a later change must show in its stat data."""
    return st.st_ctime_ns < now - RACY_NS and st.st_mtime_ns < now - RACY_NS


def own_git_dir(root: Path) -> Path | None:
    dot = root / ".git"
    return dot if dot.is_dir() and not dot.is_symlink() else None


_MASK = 0x2 | 0x4 | 0x8 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800  # every write, create, move, delete
_OVERFLOW, _IGNORED, _ISDIR = 0x4000, 0x8000, 0x40000000
_EVENT = struct.Struct("iIII")


class Watch:
    """Names written in watched folders since the last `changes()` (Linux inotify)."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(0o4000 | 0o2000000)  # non-blocking, close-on-exec
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        weakref.finalize(self, os.close, self.fd)
        self.folders: dict[int, str] = {}

    def add(self, folder: str) -> None:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(folder), _MASK)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.folders[wd] = folder

    def changes(self) -> list[tuple[str | None, str]] | None:
        """(folder, name) per event; None: events were lost or a folder came or went."""
        out: list[tuple[str | None, str]] = []
        whole = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return None if whole else out
            i = 0
            while i < len(data):
                wd, mask, _, size = _EVENT.unpack_from(data, i)
                name = data[i + 16:i + 16 + size].rstrip(b"\0").decode("utf-8", "surrogateescape")
                i += 16 + size
                if mask & (_OVERFLOW | _IGNORED | _ISDIR) or wd not in self.folders:
                    whole = True
                else:
                    out.append((self.folders[wd], name))


def _watch() -> Watch | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return Watch()
    except (OSError, AttributeError):
        return None


class RefFiles:
    """refs -> sha and HEAD's target, as `git for-each-ref` and `git symbolic-ref` give them."""

    def __init__(self, root: Path, common_dir: Path) -> None:
        own = own_git_dir(root)
        self.gitdir = common_dir
        # a linked worktree keeps HEAD and its per-worktree refs elsewhere: git reads those
        self.usable = own is not None and own.resolve() == common_dir.resolve()
        self._files: dict[str, tuple[Sig | None, bytes]] = {}
        self._packed: tuple[Sig | None, dict[str, str]] | None = None
        self.watch = _watch() if self.usable else None
        self._loose: dict[str, bytes] | None = None  # as of the last look, when a watch tells what changed
        self._same = False  # the last `_watched` found no ref file written
        self._changed: set[str] = set()  # the ref names the last `_watched` read again
        self._symrefs: dict[str, str] = {}  # symbolic refs of the last full look: name -> target
        self._view: tuple[dict[str, str], dict[str, str]] | None = None  # (packed, refs) of the last look

    def _read(self, path: str, key: str, st: os.stat_result, now: int) -> bytes:
        s = (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        hit = self._files.get(key)
        if hit is not None and hit[0] == s:
            return hit[1]
        with open(path, "rb") as fh:
            data = fh.read()
        self._files[key] = (s if settled(st, now) else None, data)
        return data

    def refs(self) -> dict[str, str] | None:
        if not self.usable or os.path.lexists(self.gitdir / "reftable"):
            return None
        now = time.time_ns()
        loose = self._watched(now)
        packed = self._packed_refs(now)
        if packed is None:
            self._loose = None
            return None
        if loose is not None and self._view is not None and self._view[0] is packed:
            if self._same:
                return dict(self._view[1])
            patched = self._patch(self._view[1], packed)
            if patched is not None:
                self._view = (packed, patched)
                return dict(patched)
        self._view = None
        if loose is None:
            loose, seen = {}, set()
            try:
                if self.watch is not None:
                    self.watch.changes()  # the walk below reads everything written until now
                    self.watch.add(str(self.gitdir))
            except OSError:
                self.watch = None
            if not self._walk(str(self.gitdir / "refs"), "refs", loose, seen, now):
                self._loose = None
                return None
            for key in set(self._files) - seen - {"HEAD"}:
                del self._files[key]
            self._loose = loose if self.watch is not None else None
        out = dict(packed)
        symrefs: dict[str, str] = {}
        for name, data in loose.items():
            text = data.strip()
            if SHA.match(text):
                out[name] = text.decode()
            elif text.startswith(b"ref: "):
                symrefs[name] = text[5:].decode("utf-8", "replace").strip()
            else:
                return None
        for name, target in symrefs.items():
            for _ in range(5):
                if target in symrefs:
                    target = symrefs[target]
            if target not in out:
                return None
            out[name] = out[target]
        self._symrefs = symrefs
        if self._loose is not None:
            self._view = (packed, out)
        return dict(out)

    def _patch(self, view: dict[str, str], packed: dict[str, str]) -> dict[str, str] | None:
        """The last view with only the refs the watch saw written read again (a step writes one
        or two of a thousand); None where anything unusual needs the full look."""
        if self._loose is None or self._changed & self._symrefs.keys():
            return None
        out = dict(view)
        for name in self._changed:
            data = self._loose.get(name)
            if data is None:  # deleted: the packed value shows again, if any
                if name in packed:
                    out[name] = packed[name]
                else:
                    out.pop(name, None)
                continue
            text = data.strip()
            if not SHA.match(text):
                return None
            out[name] = text.decode()
        for name, target in self._symrefs.items():  # their values follow their targets
            for _ in range(5):
                if target in self._symrefs:
                    target = self._symrefs[target]
            if target not in out:
                return None
            out[name] = out[target]
        return out

    def _watched(self, now: int) -> dict[str, bytes] | None:
        """The loose refs from the last look with what the watch says changed read again; None: walk."""
        if self.watch is None or self._loose is None:
            return None
        changes = self.watch.changes()
        if changes is None:
            return None
        self._same = True
        self._changed = set()
        top = str(self.gitdir)
        refs_dir = os.path.join(top, "refs")
        for folder, base in changes:
            if folder == top:
                if base == "refs" or base == "reftable":
                    return None
                continue  # packed-refs is checked by its stat data; the index and others do not matter
            self._same = False
            path = os.path.join(folder, base)
            name = "refs" + path[len(refs_dir):]
            self._changed.add(name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                self._loose.pop(name, None)
                self._files.pop(name, None)
                continue
            except OSError:
                return None
            if not stat.S_ISREG(st.st_mode) or not _NAME.match(base) or base.endswith(".lock") or ".." in base:
                return None
            try:
                self._loose[name] = self._read(path, name, st, now)
            except OSError:
                return None
        return self._loose

    def _walk(self, folder: str, prefix: str, loose: dict[str, bytes], seen: set[str], now: int) -> bool:
        if self.watch is not None:
            try:
                self.watch.add(folder)  # before the listing: a change during the walk is seen next time
            except OSError:
                self.watch = None
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return True
        except OSError:
            return False
        for entry in entries:
            base = entry.name
            if not _NAME.match(base) or base.endswith(".lock") or ".." in base:
                return False
            name = f"{prefix}/{base}"
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISREG(mode):
                seen.add(name)
                try:
                    loose[name] = self._read(entry.path, name, st, now)
                except OSError:
                    return False
            elif not stat.S_ISDIR(mode) or not self._walk(entry.path, name, loose, seen, now):
                return False
        return True

    def _packed_refs(self, now: int) -> dict[str, str] | None:
        path = self.gitdir / "packed-refs"
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._packed = None
            return _NO_PACKED
        if not stat.S_ISREG(st.st_mode):
            return None
        s = sig(st)
        if self._packed is not None and self._packed[0] == s:
            return self._packed[1]
        out: dict[str, str] = {}
        for line in path.read_bytes().splitlines():
            if not line or line.startswith((b"#", b"^")):
                continue
            sha, _, name = line.partition(b" ")
            if not SHA.match(sha) or not name.startswith(b"refs/"):
                return None
            out[name.decode("utf-8", "replace")] = sha.decode()
        self._packed = (s if settled(st, now) else None, out)
        return out

    def head(self) -> tuple[bool, str | None]:
        """(read, the ref HEAD points at or None when detached); read False: ask git."""
        if not self.usable:
            return False, None
        path = self.gitdir / "HEAD"
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                return False, None
            text = self._read(str(path), "HEAD", st, time.time_ns()).strip()
        except OSError:
            return False, None
        if text.startswith(b"ref: "):
            return True, text[5:].decode("utf-8", "replace").strip() or None
        return (True, None) if SHA.match(text) else (False, None)


class TreeFiles:
    """Stat data of files and folders under some git-dir paths: equal means nothing was written."""

    def __init__(self, gitdir: Path, names: tuple[str, ...]) -> None:
        self.gitdir, self.names = gitdir, names

    def sigs(self) -> dict[str, tuple] | None:
        """rel -> stat data (links: their target); None when something changed too recently to tell."""
        out: dict[str, tuple] = {}
        now = time.time_ns()
        fresh = False

        def add(path: str, rel: str, st: os.stat_result) -> None:
            nonlocal fresh
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
                with os.scandir(path) as entries:
                    for entry in entries:
                        add(entry.path, f"{rel}/{entry.name}", entry.stat(follow_symlinks=False))
            else:
                out[rel] = ("file", *sig(st))
                fresh = fresh or not settled(st, now)

        try:
            for name in self.names:
                path = os.path.join(self.gitdir, name)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                add(path, name, st)
        except OSError:  # changed while read
            return None
        return None if fresh else out
