"""Where proposals become commits: guardrails, the syntax check, and the pipeline's worktree.

Only the training script may change. Whatever an agent does to the tree or to git (edits other
files, commits, switches branch) is undone here before its change is committed.
"""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path
from typing import Callable

from autoresearch_tui.agents.base import Proposal
from autoresearch_tui.engine import events as ev, sanitize
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.engine.gitops import GitRepo, file_hash
from autoresearch_tui.errors import RuntimeFailure


class Workspace:
    def __init__(self, config: ResearchConfig, repo: GitRepo, emit: Callable[[ev.Event], None],
                 session_root: Path) -> None:
        self.config, self.repo, self.emit = config, repo, emit
        self.train_rel = repo.rel(config.path(config.train_script))
        self.readonly_hashes = {rel: file_hash(repo.root / rel)
                                for rel in (repo.rel(config.path(f)) for f in config.readonly_files())}
        self.worktree = session_root / "worktree"
        self.diffs: dict[str, str] = {}  # commit -> its diff, computed once in apply()

    # -- the main tree ---------------------------------------------------------------------
    def train_source(self) -> str:
        return self.config.path(self.config.train_script).read_text(encoding="utf-8")

    def apply(self, n: int, proposal: Proposal, best: str, untracked_before: set[str] | None) -> tuple[str | None, str]:
        """Enforce the guardrails, write the proposal, commit. (commit, "") or (None, why not)."""
        cfg, repo = self.config, self.repo
        self.restore(best, untracked_before, n)
        old_source = self.train_source()
        refused = self.refuse(n, old_source, proposal.new_source)
        if refused:
            return refused
        cfg.path(cfg.train_script).write_text(proposal.new_source, encoding="utf-8")
        commit = repo.commit_paths([self.train_rel], f"exp: {sanitize.line(proposal.description)}")
        self.diffs[commit] = unified_diff(self.train_rel, old_source, proposal.new_source)
        self.emit(ev.ProposalMade(iteration=n, description=proposal.description, diff=self.diffs[commit],
                                  meta=proposal.meta))
        return commit, ""

    def diff_of(self, best: str, commit: str) -> str:
        """The experiment's diff against the best it started from (kept from apply when known)."""
        return self.diffs.pop(commit, None) or self.repo.diff(best, commit)

    def refuse(self, n: int, old_source: str, new_source: str) -> tuple[None, str] | None:
        """Why a proposal is not worth a run (no change, a syntax error: seconds, not a run)."""
        if new_source == old_source:
            return self.reject(n, "the proposal left the training script unchanged")
        if self.config.train_script.endswith(".py"):
            try:
                compile(new_source, self.config.train_script, "exec")
            except SyntaxError as exc:
                return self.reject(n, f"syntax error in {self.config.train_script} line {exc.lineno}: {exc.msg}")
        return None

    def reject(self, n: int, reason: str) -> tuple[None, str]:
        self.emit(ev.ProposalFailed(iteration=n, reason=reason))
        return None, reason

    def restore(self, best: str, untracked_before: set[str] | None, n: int | None = None) -> None:
        """Back to the best commit on the research branch, whatever the agent did to git or files."""
        cfg, repo = self.config, self.repo
        reverted: list[str] = []
        if repo.repo.head.is_detached or repo.branch != cfg.branch:
            repo.git.checkout("-f", cfg.branch)
            reverted.append(f"HEAD (the agent switched branch; back on {cfg.branch})")
        if repo.head() != best:
            reverted.append(f"HEAD (the agent moved it; restored {best[:7]})")
        changed, untracked = repo.status()
        reverted += [p for p in changed if p != self.train_rel]
        # None: the proposer cannot touch the tree (the built-in one), so nothing new is its doing.
        new_files = sorted(untracked - untracked_before) if untracked_before is not None else []
        if reverted or changed:
            repo.reset_hard(best)
        for rel in new_files:
            (repo.root / rel).unlink(missing_ok=True)
        for rel, digest in self.readonly_hashes.items():
            if file_hash(repo.root / rel) != digest:
                raise RuntimeFailure(f"{rel} differs from its state at session start even after a reset; "
                                     "it must not change during a session")
        if n is not None and (reverted or new_files):
            self.emit(ev.GuardrailTripped(iteration=n, reverted=sorted(set(reverted + new_files)),
                                          reason="only the training script may change"))

    # -- the pipeline: the next candidate is prepared while the current one trains ----------
    def source_at(self, commit: str) -> str:
        # Byte-exact (GitPython's `show` strips the trailing newline).
        out = subprocess.run(["git", "cat-file", "-p", f"{commit}:{self.train_rel}"], cwd=self.repo.root,
                             capture_output=True, check=True)
        return out.stdout.decode("utf-8")

    def prepare_worktree(self, base: str) -> Path:
        """A detached worktree at `base` where an agent can work while the main tree trains."""
        if not (self.worktree / ".git").exists():
            self.repo.git.worktree("add", "--detach", "--force", str(self.worktree), base)
        else:
            wt = GitRepo(self.worktree)
            wt.git.checkout("--detach", "--force", base)
            wt.git.clean("-fdq")
        return self.worktree

    def rebase_source(self, new_source: str, base: str, best: str) -> str | None:
        """Carry a change prepared on `base` over to the new `best` (3-way); None on a conflict."""
        return merge3(self.source_at(base), self.source_at(best), new_source)

    def remove_worktree(self) -> None:
        if (self.worktree / ".git").exists():
            try:
                self.repo.git.worktree("remove", "--force", str(self.worktree))
            except Exception:  # noqa: BLE001 - a leftover worktree folder is harmless
                pass


def _edits(base: list[str], other: list[str]) -> list[tuple[int, int, list[str]]]:
    ops = difflib.SequenceMatcher(None, base, other, autojunk=False).get_opcodes()
    return [(i1, i2, other[j1:j2]) for tag, i1, i2, j1, j2 in ops if tag != "equal"]


def _clash(a: tuple[int, int, list[str]], b: tuple[int, int, list[str]]) -> bool:
    (a1, a2, _), (b1, b2, _) = a, b
    if a1 == a2 and b1 == b2:
        return a1 == b1  # two insertions at one place: their order is unknown
    if a1 == a2:
        return b1 < a1 < b2
    if b1 == b2:
        return a1 < b1 < a2
    return max(a1, b1) < min(a2, b2)


def merge3(base: str, ours: str, theirs: str) -> str | None:
    """Line-level 3-way merge where only overlapping edits conflict.

    Unlike diff3, edits to adjacent lines (two constants next to each other) merge cleanly,
    which is the common case for hyperparameter blocks.
    """
    lines = base.splitlines(keepends=True)
    mine, yours = _edits(lines, ours.splitlines(keepends=True)), _edits(lines, theirs.splitlines(keepends=True))
    if any(_clash(a, b) for a in mine for b in yours):
        return None
    for i1, i2, new in sorted(mine + yours, key=lambda e: (e[0], e[1]), reverse=True):
        lines[i1:i2] = new
    return "".join(lines)


def unified_diff(path: str, old: str, new: str) -> str:
    """A git-style unified diff of one file, computed here instead of by a git process."""
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 f"a/{path}", f"b/{path}")
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
