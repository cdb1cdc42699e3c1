"""The guard's view of the repository, read from the files instead of git processes.

Refs: HEAD, the loose files under `refs/` and `packed-refs` of the files backend, each re-read
only when its stat data (inode, size, mtime, ctime) changed. ctime cannot be set back by a
program, and a file changed within RACY_NS of being read is read again next time (two writes
in one clock tick look the same). Anything unusual (reftable, symlinks, odd names, lock files,
a symref or line that does not parse, a linked worktree) returns None: the caller asks git.
On Linux an inotify watch on each refs folder and the git folder says which ref files changed
since the last look, so only those are read again (no stat of a thousand discard refs per step).
The index (`IndexView`): whether a training run changed a tracked file, from `.git/index`.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import stat
import struct
import sys
import time
import weakref
import zlib
from pathlib import Path

RACY_NS = 1_000_000_000
RACY_READ_BYTES = 1 << 24  # a racy tracked file bigger than this: git compares it
INDEX_MAX_ENTRIES = 1000  # beyond this many tracked files git's own refresh is faster (2,000: 20 vs 13 ms)
_SHA = re.compile(rb"^([0-9a-f]{40}|[0-9a-f]{64})$")
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
            if _SHA.match(text):
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
            if not _SHA.match(text):
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
            if not _SHA.match(sha) or not name.startswith(b"refs/"):
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
        return (True, None) if _SHA.match(text) else (False, None)


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


_ENTRY = struct.Struct(">10I")
_REGULAR, _EXEC, _LINK = 0o100644, 0o100755, 0o120000
_NO_INDEX_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
                 "GIT_NO_REPLACE_OBJECTS", "GIT_REPLACE_REF_BASE", "GIT_GRAFT_FILE")


class IndexView:
    """Did anything tracked change during a training run? Judged from `.git/index` and stat data.

    `mark()` records the index's stat data before the run; `unchanged(tip)` afterwards is True only
    when (1) the index file was not written since (ctime cannot be set back), (2) its entries hash
    to the tree of `tip` (computed here, the index's own cache-tree is not trusted), and (3) every
    tracked file's stat data equals its entry, including ctime, with each entry recorded strictly
    before the index was written: any write after that (the run's) gives the file a newer ctime;
    an entry recorded in the index's own clock tick has its content hashed and compared, as git
    does. Git's own refresh trusts the same stat data (and the cache-tree besides). False: ask git.
    """

    def __init__(self, root: Path, common_dir: Path) -> None:
        own = own_git_dir(root)
        self.root = root
        self.gitdir = common_dir
        self.usable = own is not None and own.resolve() == common_dir.resolve()
        self.trees: dict[str, str] = {}  # commit -> its tree (content-addressed: never changes)

    def mark(self) -> Sig | None:
        try:
            st = os.lstat(self.gitdir / "index")
        except OSError:
            return None
        return sig(st) if stat.S_ISREG(st.st_mode) else None

    def unchanged(self, before: Sig | None, tip: str) -> bool:
        if not self.usable or before is None or any(os.environ.get(k) for k in _NO_INDEX_ENV):
            return False
        if os.path.lexists(self.gitdir / "info" / "grafts"):
            return False
        try:
            with open(self.gitdir / "index", "rb") as fh:
                st = os.fstat(fh.fileno())
                if sig(st) != before:
                    return False
                data = fh.read()
            entries = _entries(data, len(tip) // 2)
            tree = self._tree_of(tip)
            if entries is None or tree is None or _tree_hash(entries, len(tip) // 2) != tree:
                return False
            return self._files_match(entries, st.st_mtime_ns)
        except (OSError, ValueError, struct.error, zlib.error):
            return False

    def _files_match(self, entries: list[tuple], index_mtime: int) -> bool:
        dirs: set[str] = set()
        for path, _, oid, stats in entries:
            csec, cnsec, msec, mnsec = stats[:4]
            # racy: recorded in the index's own clock tick, so a later write in that tick would not
            # show in the stat data; the content is compared instead, as git does
            racy = csec * 10**9 + cnsec >= index_mtime or msec * 10**9 + mnsec >= index_mtime
            parent = path.rpartition("/")[0]
            while parent and parent not in dirs:  # a folder swapped for a link to a copy is a change
                if not stat.S_ISDIR(os.lstat(os.path.join(self.root, parent)).st_mode):
                    return False
                dirs.add(parent)
                parent = parent.rpartition("/")[0]
            try:
                fst = os.lstat(os.path.join(self.root, path))
            except FileNotFoundError:
                return False
            if stat.S_ISLNK(fst.st_mode):
                kind = _LINK
            elif stat.S_ISREG(fst.st_mode):
                kind = _EXEC if fst.st_mode & 0o100 else _REGULAR
            else:
                return False
            m = 0xFFFFFFFF
            now = (fst.st_ctime_ns // 10**9 & m, fst.st_ctime_ns % 10**9, fst.st_mtime_ns // 10**9 & m,
                   fst.st_mtime_ns % 10**9, fst.st_dev & m, fst.st_ino & m, kind, fst.st_uid & m, fst.st_gid & m,
                   fst.st_size & m)
            if now != stats:  # the entry's mode is among them
                return False
            if racy and _blob_id(os.path.join(self.root, path), fst, len(oid)) != oid:
                return False
        return True

    def _tree_of(self, commit: str) -> str | None:
        """The tree of a loose commit object, its content checked against its name."""
        if commit in self.trees:
            return self.trees[commit]
        if not _SHA.match(commit.encode()):
            return None
        path = self.gitdir / "objects" / commit[:2] / commit[2:]
        try:
            raw = zlib.decompress(path.read_bytes())
        except FileNotFoundError:
            return None  # packed: git reads it
        algo = hashlib.sha1 if len(commit) == 40 else hashlib.sha256
        if algo(raw).hexdigest() != commit or not raw.startswith(b"commit "):
            return None
        body = raw[raw.index(b"\0") + 1:]
        if not body.startswith(b"tree ") or not _SHA.match(body[5:5 + len(commit)]):
            return None
        self.trees[commit] = body[5:5 + len(commit)].decode()
        return self.trees[commit]


def _blob_id(path: str, st: os.stat_result, hash_size: int) -> bytes | None:
    """The object id git gives this file's content (a link: its target); None: too big to read here."""
    if st.st_size > RACY_READ_BYTES:
        return None
    data = os.fsencode(os.readlink(path)) if stat.S_ISLNK(st.st_mode) else Path(path).read_bytes()
    algo = hashlib.sha1 if hash_size == 20 else hashlib.sha256
    return algo(b"blob %d\0%s" % (len(data), data)).digest()


def _entries(data: bytes, hash_size: int) -> list[tuple] | None:
    """(path, mode, object id, stat fields) per entry of a version 2 or 3 index; None: anything else
    (version 4, conflicts, assume-valid, skip-worktree, intent-to-add, gitlinks, split or sparse
    index, more than INDEX_MAX_ENTRIES entries)."""
    if data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3) or count > INDEX_MAX_ENTRIES:
        return None
    out = []
    i = 12
    for _ in range(count):
        stats = _ENTRY.unpack_from(data, i)
        head = i
        oid = data[i + 40:i + 40 + hash_size]
        (flags,) = struct.unpack_from(">H", data, i + 40 + hash_size)
        start = i + 42 + hash_size
        if flags & 0x4000:  # extended flags: skip-worktree or intent-to-add
            return None
        if flags & 0x8000 or flags & 0x3000 or stats[6] not in (_REGULAR, _EXEC, _LINK):
            return None  # assume-valid (git would not look), a conflict stage, a gitlink
        end = data.index(b"\0", start)
        path = data[start:end].decode("utf-8", "surrogateescape")
        if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in path.split("/")):
            return None
        out.append((path, stats[6], oid, stats))
        i = head + ((end - head + 8) & ~7)  # 1 to 8 NULs pad each entry to a multiple of 8
    while i < len(data) - hash_size:  # extensions: optional ones (upper case) only, no split or sparse index
        name = data[i:i + 4]
        (size,) = struct.unpack_from(">I", data, i + 4)
        if not name[:1].isupper() or name in (b"link", b"sdir"):
            return None
        i += 8 + size
    if i != len(data) - hash_size or [e[0] for e in out] != sorted(e[0] for e in out):
        return None
    return out


def _tree_hash(entries: list[tuple], hash_size: int) -> str:
    """The id of the tree these index entries make, as `git write-tree` would write it."""
    algo = hashlib.sha1 if hash_size == 20 else hashlib.sha256

    def tree(items: list[tuple[list[str], int, bytes]]) -> bytes:
        rows: list[tuple[bytes, bytes]] = []
        k = 0
        while k < len(items):
            parts, mode, oid = items[k]
            name = parts[0].encode("utf-8", "surrogateescape")
            if len(parts) == 1:
                rows.append((name, b"%o %s\0%s" % (mode, name, oid)))
                k += 1
                continue
            sub = []
            while k < len(items) and len(items[k][0]) > 1 and items[k][0][0] == parts[0]:
                sub.append((items[k][0][1:], items[k][1], items[k][2]))
                k += 1
            rows.append((name + b"/", b"40000 %s\0%s" % (name, tree(sub))))
        rows.sort(key=lambda r: r[0])
        body = b"".join(r[1] for r in rows)
        return algo(b"tree %d\0%s" % (len(body), body)).digest()

    return tree([(e[0].split("/"), e[1], e[2]) for e in entries]).hex()
