"""Git operations on the research branch, through GitPython.

Rules: never force-push, never touch the user's original branch except on an explicit merge,
and keep every tried diff reachable (a ref per discarded experiment) so a reset loses nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import git

from autoresearch_tui.errors import UserError

AUTHOR_ENV = {
    # Commits must work on machines without a git identity (CI, fresh GPU boxes).
    "GIT_AUTHOR_NAME": "autoresearch",
    "GIT_AUTHOR_EMAIL": "autoresearch@localhost",
    "GIT_COMMITTER_NAME": "autoresearch",
    "GIT_COMMITTER_EMAIL": "autoresearch@localhost",
}


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


class GitRepo:
    def __init__(self, project: Path) -> None:
        try:
            self.repo = git.Repo(project, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise UserError(
                f"{project} is not a git repository; run `git init && git add -A && git commit -m init` there first"
            ) from None
        self.root = Path(self.repo.working_tree_dir).resolve()
        self.git = self.repo.git
        if not self._has_identity():
            self.git.update_environment(**AUTHOR_ENV)

    def _has_identity(self) -> bool:
        try:
            reader = self.repo.config_reader()
            return bool(reader.get_value("user", "email", "")) and bool(reader.get_value("user", "name", ""))
        except Exception:
            return False

    # -- state ---------------------------------------------------------------------------
    def check_ready(self) -> None:
        """Refuse states the loop cannot work from, with the fix in the message."""
        if not self.repo.head.is_valid():
            raise UserError("the repository has no commits yet; commit your project first")
        if self.repo.head.is_detached:
            raise UserError("HEAD is detached; check out a branch first (git switch main)")
        if self.is_dirty():
            changed = ", ".join(self.changed_files()[:5])
            raise UserError(f"the working tree has uncommitted changes ({changed}); commit or stash them first")

    def is_dirty(self) -> bool:
        return self.repo.is_dirty(untracked_files=False)

    def status(self) -> tuple[list[str], set[str]]:
        """(tracked paths that differ from HEAD, untracked paths) in one `git status` call."""
        out = self.git.status("--porcelain", "-z", "--untracked-files=all")
        changed, untracked = [], set()
        entries = out.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if code == "??":
                untracked.add(path)
                continue
            if code[0] in "RC":  # renames carry the source path as the next entry
                i += 1
            changed.append(path)
        return changed, untracked

    def changed_files(self) -> list[str]:
        """Tracked paths (relative to the repo root) that differ from HEAD."""
        return self.status()[0]

    def untracked_files(self) -> set[str]:
        return self.status()[1]

    @property
    def branch(self) -> str:
        return self.repo.active_branch.name

    def head(self) -> str:
        # rev-parse, not GitPython's object database: its persistent `cat-file` helper shares the
        # engine's process group and dies with a group SIGTERM (BrokenPipeError on the next use).
        return self.git.rev_parse("HEAD").strip()

    def branch_exists(self, name: str) -> bool:
        return name in {h.name for h in self.repo.heads}

    def rel(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    # -- setup ---------------------------------------------------------------------------
    def exclude(self, patterns: list[str]) -> None:
        """Keep results and session files out of git so `reset --hard` never touches them."""
        info = Path(self.repo.git_dir) / "info"
        info.mkdir(exist_ok=True)
        exclude = info / "exclude"
        existing = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
        new = [p for p in patterns if p not in existing]
        if new:
            with open(exclude, "a", encoding="utf-8") as fh:
                if existing and existing[-1] != "":
                    fh.write("\n")
                fh.write("\n".join(["# autoresearch-tui", *new]) + "\n")

    def create_branch(self, name: str) -> None:
        if self.branch_exists(name):
            raise UserError(f"branch {name} already exists; pick another --tag or continue it with --resume")
        self.git.checkout("-b", name)

    def checkout(self, name: str) -> None:
        self.git.checkout(name)

    # -- experiments ---------------------------------------------------------------------
    def commit_paths(self, paths: list[str], message: str) -> str:
        """Commit exactly these (tracked) paths as they are on disk: one git process."""
        self.git.commit("-m", message, "--no-verify", "--quiet", "--", *paths)
        return self.head()

    def amend(self, paths: list[str], message: str) -> str:
        self.git.add("--", *paths)
        self.git.commit("--amend", "-m", message, "--no-verify", "--quiet")
        return self.head()

    def reset_hard(self, commit: str) -> None:
        self.git.reset("--hard", "--quiet", commit)

    def read_tree(self, commit: str) -> None:
        """Index and working tree as in `commit`; HEAD and the branch do not move."""
        self.git.read_tree("-u", "--reset", commit)

    def restore(self, paths: list[str]) -> None:
        """Put tracked files back as in HEAD."""
        if paths:
            self.git.checkout("HEAD", "--", *paths)

    def keep_ref(self, tag: str, iteration: int, commit: str) -> str:
        """A ref that keeps a discarded experiment reachable after the reset."""
        ref = f"refs/autoresearch/{tag}/{iteration}"
        self.git.update_ref(ref, commit)
        return ref

    def diff(self, base: str, target: str | None = None, path: str | None = None) -> str:
        args = [base] + ([target] if target else []) + (["--", path] if path else [])
        return self.git.diff(*args)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self.git.merge_base("--is-ancestor", ancestor, descendant)
            return True
        except git.GitCommandError:
            return False
