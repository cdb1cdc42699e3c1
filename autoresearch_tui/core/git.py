"""The one way the app runs git: every git command of the engine and the agents goes through `Git`.

Every command gets the options of `safe_options()`: no hooks, no fsmonitor, no signing program,
and no filter/diff/merge driver defined in the repository's own config (a training run or an
agent can write `.git/config` and `.gitattributes`; what they plant must never run). Diffs also
run without external diff programs or textconv. GitPython is used to read refs without a process.

Rules: never force-push, never touch the user's original branch except on an explicit merge,
and keep every tried diff reachable (a ref per discarded experiment) so a reset loses nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import stat
import subprocess
from pathlib import Path

import git as gitpython

from autoresearch_tui.errors import UserError

GitError = gitpython.GitCommandError

AUTHOR_ENV = {
    # Commits must work on machines without a git identity (CI, fresh GPU boxes).
    "GIT_AUTHOR_NAME": "autoresearch",
    "GIT_AUTHOR_EMAIL": "autoresearch@localhost",
    "GIT_COMMITTER_NAME": "autoresearch",
    "GIT_COMMITTER_EMAIL": "autoresearch@localhost",
}
SAFE_CONFIG = ("core.hooksPath=/dev/null", "core.fsmonitor=false", "commit.gpgSign=false",
               "tag.gpgSign=false", "core.attributesFile=/dev/null", "gc.auto=0", "maintenance.auto=false")
NO_DIFF_DRIVERS = ("--no-ext-diff", "--no-textconv")
_DRIVER = re.compile(r'^\s*\[\s*(filter|diff|merge)\s+"([^"]+)"\s*\]', re.MULTILINE | re.IGNORECASE)
_DRIVER_KEYS = {"filter": ("clean", "smudge", "process"), "diff": ("command", "textconv"), "merge": ("driver",)}


def safe_config(git_dir: Path | None) -> list[str]:
    """The `-c` values for one git command: SAFE_CONFIG, and every driver the repository config
    names emptied (git treats an empty driver command as none); the user's global drivers stay."""
    options = list(SAFE_CONFIG)
    if git_dir is not None:
        for name in ("config", "config.worktree"):
            try:
                text = (git_dir / name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for kind, driver in _DRIVER.findall(text):
                kind = kind.lower()
                options += [f"{kind}.{driver}.{key}=" for key in _DRIVER_KEYS[kind]]
                if kind == "filter":
                    options.append(f"filter.{driver}.required=false")
    return options


def safe_options(git_dir: Path | None) -> list[str]:
    return [arg for value in safe_config(git_dir) for arg in ("-c", value)]


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


async def run_async(cwd: str | Path | None, *args: str) -> tuple[int, str]:
    """(exit code, stdout) of a git command without blocking the event loop (the agents' checks)."""
    git_dir = _common_dir(Path(cwd)) if cwd else None
    try:
        proc = await asyncio.create_subprocess_exec(
            "git", *safe_options(git_dir), *args, cwd=str(cwd) if cwd else None, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return 127, ""
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode("utf-8", "replace").strip("\n")


def run_in(root: Path, *args: str, check: bool = True, timeout: float | None = None, stdin: str | None = None) -> str:
    """stdout of a git command in `root`, as the app's identity and in its own session (a group
    signal to the engine never reaches it). check=False: "" when git fails or cannot start."""
    try:
        out = subprocess.run(["git", *safe_options(_common_dir(Path(root))), *args], cwd=root, capture_output=True,
                             text=True, env={**os.environ, **AUTHOR_ENV}, start_new_session=True, timeout=timeout,
                             input=stdin)
    except (OSError, subprocess.TimeoutExpired):
        if check:
            raise
        return ""
    if out.returncode != 0:
        if check:
            raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip()}")
        return ""
    return out.stdout


def parse_status(out: str) -> tuple[list[str], set[str]]:
    """`git status --porcelain -z --untracked-files=all` -> (changed tracked paths, untracked paths)."""
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


STATUS_ARGS = ("status", "--porcelain", "-z", "--untracked-files=all")
REDIRECTS = ("GIT_DIR", "GIT_COMMON_DIR", "GIT_WORK_TREE")
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _plain_file(path: Path) -> str:
    """A regular file's text (not a link: git's legacy symbolic refs go to git)."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise OSError(f"{path} is not a plain file")
    return path.read_text(encoding="ascii").strip()


def git_dirs(path: Path) -> tuple[Path, Path] | None:
    """(git dir, common dir) of the repository `path` is in, found as git finds it but without a
    process: a linked worktree's own git dir (its index, HEAD) and the main one it shares config and
    refs with; a `.git` folder or a bare repository is both. None: not in a repository."""
    start = Path(path).resolve()
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot, dot
        if dot.is_file():
            text = dot.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                own = (folder / text[len("gitdir:"):].strip()).resolve()
                try:
                    return own, (own / (own / "commondir").read_text().strip()).resolve()
                except OSError:
                    return own, own
        if (folder / "HEAD").is_file() and (folder / "objects").is_dir() and (folder / "refs").is_dir():
            return folder, folder
    return None


def _common_dir(path: Path) -> Path | None:
    """Where the config git reads for `path` lives (None: not in a repository)."""
    dirs = git_dirs(path)
    return dirs[1] if dirs else None


class Git:
    """A repository (or one of its linked worktrees) and every git operation the app performs."""

    def __init__(self, project: Path) -> None:
        try:
            self.repo = gitpython.Repo(project, search_parent_directories=True)
        except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
            raise UserError(
                f"{project} is not a git repository; run `git init && git add -A && git commit -m init` there first"
            ) from None
        self.root = Path(self.repo.working_tree_dir).resolve()
        self.common_dir = Path(self.repo.common_dir).resolve()
        self._git = self.repo.git
        self._git.set_persistent_git_options(c=safe_config(self.common_dir))
        if not self._has_identity():
            self._git.update_environment(**AUTHOR_ENV)

    def run(self, *args: str, exact: bool = False) -> str:
        """The one place a git process starts (GitPython's own calls get the same options).
        `exact`: stdout as it is (by default the last newline is stripped)."""
        config = safe_config(self.common_dir)
        self._git.set_persistent_git_options(c=config)  # GitPython's own commands (cat-file) too
        return self._git.execute(["git", *(a for value in config for a in ("-c", value)), *args],
                                 strip_newline_in_stdout=not exact)

    def use_app_identity(self) -> None:
        """Commit as the app even where the user has an identity (the demo's own repository)."""
        self._git.update_environment(**AUTHOR_ENV)

    def _has_identity(self) -> bool:
        try:
            reader = self.repo.config_reader()
            return bool(reader.get_value("user", "email", "")) and bool(reader.get_value("user", "name", ""))
        except Exception:
            return False

    # -- state ---------------------------------------------------------------------------
    @property
    def git_dir(self) -> Path:
        return Path(self.repo.git_dir)

    def has_commits(self) -> bool:
        return self.repo.head.is_valid()

    @property
    def detached(self) -> bool:
        return self.repo.head.is_detached

    def check_ready(self) -> None:
        """Refuse states the loop cannot work from, with the fix in the message."""
        if not self.has_commits():
            raise UserError("the repository has no commits yet; commit your project first")
        if self.detached:
            raise UserError("HEAD is detached; check out a branch first (git switch main)")
        if self.is_dirty():
            changed = ", ".join(self.changed_files()[:5])
            raise UserError(f"the working tree has uncommitted changes ({changed}); commit or stash them first")

    def is_dirty(self) -> bool:
        return bool(self.changed_files())

    def status(self) -> tuple[list[str], set[str]]:
        """(tracked paths that differ from HEAD, untracked paths) in one `git status` call."""
        return parse_status(self.run(*STATUS_ARGS))

    def changed_files(self) -> list[str]:
        """Tracked paths (relative to the repo root) that differ from HEAD."""
        return parse_status(self.run("status", "--porcelain", "-z", "--untracked-files=no"))[0]

    def untracked_files(self) -> set[str]:
        return self.status()[1]

    def others(self, cwd: Path, ignored: bool = False) -> list[str]:
        """Untracked (or ignored) entries under `cwd`, folders collapsed, relative to `cwd`."""
        args = ["ls-files", "--others", "--exclude-standard", "--directory", *(["--ignored"] if ignored else [])]
        return [line for line in self.run("-C", str(cwd), *args).splitlines() if line.strip()]

    def is_tracked(self, rel: str) -> bool:
        return bool(self.run("ls-files", "--", rel).strip())

    @property
    def branch(self) -> str:
        return self.repo.active_branch.name

    def head(self) -> str:
        """HEAD's commit: read from the files where git leaves it plainly (every commit and reset
        writes the branch's loose ref), else asked of git (packed refs, reftable, anything odd).
        Not GitPython's object database: its persistent `cat-file` helper shares the engine's
        process group and dies with a group SIGTERM (BrokenPipeError on the next use)."""
        return self._head_from_files() or self.run("rev-parse", "HEAD").strip()

    def _head_from_files(self) -> str | None:
        if any(os.environ.get(k) for k in REDIRECTS):  # git would look elsewhere
            return None
        try:
            head = _plain_file(self.git_dir / "HEAD")
            if head.startswith("ref: refs/heads/") and ".." not in head:
                head = _plain_file(self.common_dir / head[len("ref: "):])
        except (OSError, UnicodeError):
            return None
        return head if SHA.fullmatch(head) else None

    def branch_exists(self, name: str) -> bool:
        return name in {h.name for h in self.repo.heads}

    def rel(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    def resolve(self, rev: str) -> str | None:
        """The full sha of a commit, or None when there is no such commit."""
        try:
            return self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip() or None
        except GitError:
            return None

    def message(self, commit: str) -> str:
        return self.run("log", "-1", "--format=%B", commit).strip()

    def log(self, base: str, tip: str) -> list[tuple[str, str]]:
        """(sha, subject) of base..tip, oldest first."""
        rows = []
        for line in self.run("log", "--reverse", "--format=%H%x00%s", f"{base}..{tip}").splitlines():
            sha, _, subject = line.partition("\x00")
            if sha:
                rows.append((sha, subject))
        return rows

    def file_at(self, commit: str, rel: str) -> str:
        """A file's text at a commit, byte-exact (GitPython's `show` strips the last newline)."""
        return self.run("cat-file", "-p", f"{commit}:{rel}", exact=True)

    def diff(self, base: str, target: str | None = None, path: str | None = None) -> str:
        args = [base] + ([target] if target else []) + (["--", path] if path else [])
        return self.run("diff", *NO_DIFF_DRIVERS, *args)

    def show(self, commit: str, *args: str) -> str:
        return self.run("show", *NO_DIFF_DRIVERS, commit, *args)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self.run("merge-base", "--is-ancestor", ancestor, descendant)
            return True
        except GitError:
            return False

    # -- setup ---------------------------------------------------------------------------
    def exclude(self, patterns: list[str]) -> None:
        """Keep results and session files out of git so `reset --hard` never touches them."""
        info = self.common_dir / "info"
        info.mkdir(exist_ok=True)
        exclude = info / "exclude"
        existing = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
        new = [p for p in patterns if p not in existing]
        if new:
            with open(exclude, "a", encoding="utf-8") as fh:
                if existing and existing[-1] != "":
                    fh.write("\n")
                fh.write("\n".join(["# autoresearch-tui", *new]) + "\n")

    def create_branch(self, name: str, at: str | None = None) -> None:
        """A new branch; checked out unless `at` names the commit it starts from."""
        if at is not None:
            self.run("branch", name, at)
            return
        if self.branch_exists(name):
            raise UserError(f"branch {name} already exists; pick another --tag or continue it with --resume")
        self.run("checkout", "-b", name)

    def checkout(self, name: str, *options: str) -> None:
        self.run("checkout", *options, name)

    # -- experiments ---------------------------------------------------------------------
    def commit_paths(self, paths: list[str], message: str) -> str:
        """Commit exactly these (tracked) paths as they are on disk: one git process."""
        self.run("commit", "-m", message, "--no-verify", "--quiet", "--", *paths)
        return self.head()

    def commit_all(self, message: str) -> str:
        self.run("add", "-A")
        self.run("commit", "-m", message, "--no-verify", "--quiet")
        return self.head()

    def amend(self, paths: list[str], message: str) -> str:
        self.run("add", "--", *paths)
        self.run("commit", "--amend", "-m", message, "--no-verify", "--quiet")
        return self.head()

    def reset_hard(self, commit: str) -> None:
        self.run("reset", "--hard", "--quiet", commit)

    def read_tree(self, commit: str) -> None:
        """Index and working tree as in `commit`; HEAD and the branch do not move."""
        self.run("read-tree", "-u", "--reset", commit)

    def restore(self, paths: list[str]) -> None:
        """Put tracked files back as in HEAD."""
        if paths:
            self.run("checkout", "HEAD", "--", *paths)

    def keep_ref(self, tag: str, iteration: int, commit: str) -> str:
        """A ref that keeps a discarded experiment reachable after the reset."""
        ref = f"refs/autoresearch/{tag}/{iteration}"
        self.run("update-ref", ref, commit)
        return ref

    def update_ref(self, ref: str, commit: str) -> None:
        self.run("update-ref", ref, commit)

    # -- worktrees -----------------------------------------------------------------------
    def add_worktree(self, path: Path, commit: str) -> "Git":
        """A detached worktree at `commit` (an existing folder there is replaced)."""
        self.run("worktree", "add", "--detach", "--force", str(path), commit)
        return Git(path)

    def switch_worktree(self, commit: str) -> None:
        """This worktree at `commit`, detached and clean."""
        self.run("checkout", "--detach", "--force", "--quiet", commit)
        self.run("clean", "-fdq")

    def remove_worktree(self, path: Path) -> bool:
        """False when git does not know it as a worktree (any more)."""
        try:
            self.run("worktree", "remove", "--force", str(path))
            return True
        except GitError:
            return False

    def prune_worktrees(self) -> None:
        try:
            self.run("worktree", "prune")
        except GitError:
            pass


def find_root(path: Path) -> Path | None:
    """The root of the git repository holding `path`, if any (no process)."""
    try:
        repo = gitpython.Repo(path if path.is_dir() else path.parent, search_parent_directories=True)
    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
        return None
    return Path(repo.working_tree_dir).resolve() if repo.working_tree_dir else None


def init(path: Path, branch: str = "main") -> Git:
    """A new repository at `path` whose commits are the app's (the demo project)."""
    gitpython.Repo.init(path, initial_branch=branch)
    repo = Git(path)
    repo.use_app_identity()
    return repo
