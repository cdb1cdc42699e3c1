"""Did anything tracked change? Judged from `.git/index` and stat data, without a git process.

Used by the guard after a training run and by the workspace before a proposal; whenever this
cannot tell, the caller asks `git status`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import zlib
from pathlib import Path

from autoresearch_tui.engine.gitstate import SHA, Sig, own_git_dir, sig

RACY_READ_BYTES = 1 << 24  # a racy tracked file bigger than this: git compares it
INDEX_MAX_ENTRIES = 1000  # beyond this many tracked files git's own refresh is faster (2,000: 20 vs 13 ms)
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
        if not SHA.match(commit.encode()):
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
        if not body.startswith(b"tree ") or not SHA.match(body[5:5 + len(commit)]):
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
