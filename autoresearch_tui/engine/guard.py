"""The history belongs to the engine: what a training run or an agent does to git is undone.

Before each run and each agent step the refs are recorded (HEAD, branches, tags, everything
under refs/); afterwards whatever moved is put back. Commits the step made are kept under
`refs/autoresearch/<tag>/forensic/<n>` so nothing is lost, but never on a branch. The git
folder's code paths (`.git/hooks`, `.git/config`, `.git/info`) are compared with their state
at session start and restored, before any git command could run what was planted there.
The refs and those paths are read from the files (`gitstate`), re-read only where their stat data
changed; git itself is asked when the files look unusual and before anything is restored.
Whether a training run edited tracked files is read from `.git/index` and the files' stat data
(`gitindex.IndexView`); `git status` answers whenever that cannot tell.
Every kept commit gets `refs/autoresearch/<tag>/keep/<n>`, so a keep can never become
unreachable. At the end of the session the working tree is left clean.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any, Callable

from autoresearch_tui.core.git import run_in
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.gitindex import IndexView
from autoresearch_tui.engine.gitstate import RefFiles, TreeFiles

PROTECTED = ("config", "hooks", "info")


def git(root: Path, *args: str, check: bool = True) -> str:
    """A git command through the gateway (no hook, no fsmonitor), outside the engine's process group."""
    return run_in(root, *args, check=check)


def refs(root: Path) -> dict[str, str]:
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def symbolic_head(root: Path) -> str | None:
    return git(root, "symbolic-ref", "-q", "HEAD", check=False).strip() or None


def _snapshot_files(gitdir: Path) -> dict[str, tuple[str, bytes, int]]:
    """Relative path -> (kind, content or link target, mode) for the protected git files."""
    out: dict[str, tuple[str, bytes, int]] = {}

    def add(path: Path) -> None:
        st = os.lstat(path)
        rel = path.relative_to(gitdir).as_posix()
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path).encode(), 0)
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", b"", stat.S_IMODE(st.st_mode))
            for child in sorted(path.iterdir()):
                add(child)
        elif stat.S_ISREG(st.st_mode):
            out[rel] = ("file", path.read_bytes(), stat.S_IMODE(st.st_mode))
        else:
            out[rel] = ("other", b"", 0)

    for name in PROTECTED:
        if os.path.lexists(gitdir / name):
            add(gitdir / name)
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Guard:
    def __init__(self, root: Path, gitdir: Path, tag: str, branch: str, session_root: Path,
                 emit: Callable[[ev.Event], None]) -> None:
        self.root, self.gitdir, self.tag, self.branch = root, gitdir, tag, branch
        self.session_root, self.emit = session_root, emit
        self.ref_files = RefFiles(root, gitdir)
        self.tree = TreeFiles(gitdir, PROTECTED)
        self.index = IndexView(root, gitdir)
        self.index_sig = None  # the index's stat data when the first of the open steps began
        self.clean = self.tree.sigs()  # stat data at which the protected files were last as below
        self.files = _snapshot_files(gitdir)
        self.untracked = self._untracked()
        self.user: dict[str, str] | None = None  # refs the engine never moves
        self.managed: dict[str, str] = {}  # refs/autoresearch/<tag>/... as the engine left them
        self.tip: str | None = None
        self.branch_moves = False  # parallel workers: the engine moves the branch while steps run
        self.open = 0
        self.kept = 0  # forensic refs made so far (their names stay unique)

    @classmethod
    def for_repo(cls, repo: Any, tag: str, branch: str, session_root: Path,
                 emit: Callable[[ev.Event], None]) -> "Guard":
        return cls(repo.root, Path(repo.repo.common_dir).resolve(), tag, branch, session_root, emit)

    # -- which refs are whose ------------------------------------------------------------
    @property
    def _mine(self) -> str:
        return f"refs/autoresearch/{self.tag}/"

    @property
    def _forensic(self) -> str:
        return f"refs/autoresearch/{self.tag}/forensic/"

    @property
    def _branch_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    def _refs(self) -> dict[str, str]:
        fast = self.ref_files.refs()
        return refs(self.root) if fast is None else fast

    def _symbolic_head(self) -> str | None:
        read, head = self.ref_files.head()
        return head if read else symbolic_head(self.root)

    # -- around a step -------------------------------------------------------------------
    def before(self, tip: str | None = None, quiet: bool = True) -> None:
        """Record the refs before a run or an agent step.

        `tip`: the commit the research branch must point at (HEAD on it) during the step; ignored
        where the engine moves the branch itself while steps run (`branch_moves`: parallel workers).
        `quiet`: no other step is running, so the user's refs as they are now are the user's.
        """
        current = self._refs()
        mine, forensic, branch = self._mine, self._forensic, self._branch_ref  # not per ref: a long history has 1,000s
        if self.user is None or (quiet and self.open == 0):
            self.user = {r: s for r, s in current.items() if r != branch and not r.startswith(mine)}
        self.managed = {r: s for r, s in current.items() if r.startswith(mine) and not r.startswith(forensic)}
        self.tip = None if self.branch_moves else tip
        if self.open == 0:
            self.index_sig = self.index.mark()
        self.open += 1

    def after(self, label: str, n: int) -> list[str]:
        """Put back what the step changed; returns (and reports) what was restored."""
        self.open = max(0, self.open - 1)
        restored = self._restore_files()
        current = self._refs()
        changes = self._changes(current)
        if changes:  # git's own word before anything is put back
            changes = self._changes(refs(self.root))
        keep: list[str] = []
        moved = False
        known = set((self.user or {}).values()) | set(self.managed.values()) | {self.tip}
        for ref, old, new in changes:
            if new and new not in known:
                keep.append(new)
                known.add(new)
            moved = moved or ref == self._branch_ref
            if old:
                git(self.root, "update-ref", "--no-deref", ref, old)
                restored.append(f"{_short(ref)} ({'moved' if new else 'deleted'}; restored {old[:7]})")
            else:
                git(self.root, "update-ref", "--no-deref", "-d", ref)
                restored.append(f"{_short(ref)} (created; removed)")
        if self.tip is not None:
            head = self._symbolic_head()
            if head != self._branch_ref:
                detached = git(self.root, "rev-parse", "-q", "--verify", "HEAD", check=False).strip()
                if detached and detached not in known:
                    keep.append(detached)
                git(self.root, "symbolic-ref", "HEAD", self._branch_ref)
                restored.append(f"HEAD ({'detached' if head is None else _short(head)}; back on {self.branch})")
                moved = True
            dirty = [] if moved or label != "training run" else self._run_changes(current)
            if moved or dirty:  # a run has no business editing tracked files: back to the commit it ran
                self._unlink_folder_links(dirty)
                git(self.root, "reset", "--hard", "--quiet", self.tip)
                restored += [f"{p} (changed; reset)" for p in dirty]
        for sha in keep:
            self.kept += 1
            git(self.root, "update-ref", f"{self._forensic}{n}-{self.kept}", sha)
        if restored:
            where = f"; its commits stay under {self._forensic}{n}-*" if keep else ""
            self.emit(ev.GuardrailTripped(iteration=n, reverted=restored,
                                          reason=f"the {label} changed the repository; restored{where}"))
        return restored

    def _changes(self, current: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
        """(ref, value before the step, value now) for each ref the step moved, created or deleted."""
        wanted = {**(self.user or {}), **self.managed}
        differ = {r for r, _ in set(current.items()) ^ set(wanted.items())} | {self._branch_ref}
        out = []
        for ref in sorted(differ):
            if ref.startswith(self._forensic) or (ref == self._branch_ref and self.tip is None):
                continue
            if ref.startswith(self._mine) and ref not in self.managed:
                continue  # the engine's own new refs (a keep, a discarded attempt) while steps ran
            old = self.tip if ref == self._branch_ref else wanted.get(ref)
            new = current.get(ref)
            if new != old:
                out.append((ref, old, new))
        return out

    def _restore_files(self) -> list[str]:
        sigs = self.tree.sigs()
        if sigs is not None and sigs == self.clean:
            return []
        changed = self._put_back_files()
        if changed:  # stat data taken before the contents are compared, so a later write still shows
            sigs = self.tree.sigs()
            if _snapshot_files(self.gitdir) != self.files:
                sigs = None
        self.clean = sigs
        return changed

    def _put_back_files(self) -> list[str]:
        now = _snapshot_files(self.gitdir)
        if now == self.files:
            return []
        changed = []
        for rel in sorted(set(now) - set(self.files), reverse=True):
            _remove(self.gitdir / rel)
            changed.append(f".git/{rel} (planted; removed)")
        for rel, (kind, data, mode) in sorted(self.files.items()):
            path, cur = self.gitdir / rel, now.get(rel)
            if cur == (kind, data, mode) or kind == "other":
                continue
            if cur is not None and (cur[0] != kind or kind == "link"):
                _remove(path)
            if kind == "dir":
                path.mkdir(exist_ok=True)
                os.chmod(path, mode)
            elif kind == "link":
                os.symlink(data.decode(), path)
            else:
                tmp = path.with_name(f".{path.name}.restore")
                tmp.unlink(missing_ok=True)
                tmp.write_bytes(data)
                os.chmod(tmp, mode)
                os.replace(tmp, path)
            changed.append(f".git/{rel} ({'changed' if cur is not None else 'deleted'}; restored)")
        return changed

    # -- the engine's own refs ------------------------------------------------------------
    def keep(self, n: int, commit: str) -> str:
        ref = f"{self._mine}keep/{n}"
        git(self.root, "update-ref", ref, commit)
        self.managed[ref] = commit
        return ref

    # -- session end ----------------------------------------------------------------------
    def close(self, n: int) -> None:
        """Leave the working tree clean: tracked changes reset, new stray files moved aside."""
        restored = self._restore_files()
        tracked = self._tracked_changes()
        if tracked:
            self._unlink_folder_links(tracked)
            git(self.root, "reset", "--hard", "--quiet")
            restored += [f"{p} (changed; reset)" for p in tracked]
        stray = self.session_root / "stray"
        for rel in sorted(self._untracked() - self.untracked):
            dest = stray / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(self.root / rel, dest)
            except OSError:
                continue
            restored.append(f"{rel} (new; moved to {dest.relative_to(self.session_root)})")
        if restored:
            self.emit(ev.GuardrailTripped(iteration=n, reverted=restored,
                                          reason="the working tree is left clean at the end of the session"))

    def _unlink_folder_links(self, paths: list[str]) -> None:
        """A link where a tracked file's folder should be: git never writes through it, so
        `reset --hard` would leave the file missing. The link goes (never what it points to)."""
        for rel in paths:
            folder = self.root
            for part in rel.split("/")[:-1]:
                folder = folder / part
                if folder.is_symlink():
                    folder.unlink()
                    break

    def _run_changes(self, current: dict[str, str]) -> list[str]:
        """Tracked paths the run changed: none when the index and stat data say so, else git's word."""
        replaced = any(r.startswith("refs/replace/") for r in current)  # git would read another commit
        if self.tip is not None and not replaced and self.index.unchanged(self.index_sig, self.tip):
            return []
        return self._tracked_changes()

    def _tracked_changes(self) -> list[str]:
        out = git(self.root, "status", "--porcelain", "-z", "--untracked-files=no", check=False)
        return [e[3:] for e in out.split("\0") if len(e) > 3]

    def _untracked(self) -> set[str]:
        out = git(self.root, "status", "--porcelain", "-z", "--untracked-files=all", check=False)
        return {e[3:] for e in out.split("\0") if e.startswith("?? ")}


def _short(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix):]
    return ref
