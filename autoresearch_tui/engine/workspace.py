"""Where a slot's commits and runs live. `Workspace`: the main tree (one local slot); the
worker slots' worktrees are `slots.SlotWorkspace`. The engine asks both the same questions.

Here too: the guardrails and the syntax check (only the training script may change; whatever an
agent does to the tree or to git is undone before its change is committed), and the scratch
worktree where the pipeline prepares the next candidate.
"""

from __future__ import annotations

import difflib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from autoresearch_tui.agents.base import Proposal
from autoresearch_tui.core import sanitize
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.engine.gitindex import IndexView
from autoresearch_tui.core.git import Git, file_hash
from autoresearch_tui.engine.resume import RUN_PID
from autoresearch_tui.errors import RuntimeFailure

if TYPE_CHECKING:
    from autoresearch_tui.engine.slots import Slot


class Workspace:
    def __init__(self, config: ResearchConfig, repo: Git, emit: Callable[[ev.Event], None],
                 session_root: Path) -> None:
        self.config, self.repo, self.emit = config, repo, emit
        self.train_rel = repo.rel(config.path(config.train_script))
        self.readonly_hashes = {rel: file_hash(repo.root / rel)
                                for rel in (repo.rel(config.path(f)) for f in config.readonly_files())}
        self.session_root = session_root
        self.worktree = session_root / "worktree"
        self.diffs: dict[str, str] = {}  # commit -> its diff, computed once in apply()
        self.index = IndexView(repo.root, repo.common_dir)
        self._scratch: Git | None = None  # the scratch worktree's repository, once made

    # -- the main tree ---------------------------------------------------------------------
    def train_source(self) -> str:
        return self.config.path(self.config.train_script).read_text(encoding="utf-8")

    def apply(self, slot: Slot, n: int, proposal: Proposal, best: str,
              untracked_before: set[str] | None) -> tuple[str | None, str]:
        """Enforce the guardrails, write the proposal, commit on the branch. (commit, "") or (None, why not)."""
        cfg, repo = self.config, self.repo
        self.restore(best, untracked_before, n)
        old_source = self.train_source()
        refused = self.refuse(n, old_source, proposal.new_source)
        if refused:
            return refused
        cfg.path(cfg.train_script).write_text(proposal.new_source, encoding="utf-8")
        commit = repo.commit_paths([self.train_rel], f"exp: {sanitize.line(proposal.description)}")
        self.diffs[commit] = unified_diff(self.train_rel, old_source, proposal.new_source)
        slot.commit, slot.description, slot.meta = commit, proposal.description, dict(proposal.meta)
        self.emit(ev.ProposalMade(iteration=n, description=proposal.description, diff=self.diffs[commit],
                                  meta=proposal.meta))
        return commit, ""

    def proposal_view(self, base: str, touches_tree: bool) -> tuple[str | None, Path | None]:
        """(script source, folder) the proposer works from: None, None = the main tree as it is."""
        return None, None

    def adopt(self, commit: str, best: str) -> str:
        """A candidate a resume found committed but not evaluated; returns its parent. On the
        main tree it is the branch's tip already, on top of the best."""
        return best

    def revise(self, slot: Slot, commit: str, source: str, message: str) -> str:
        """The reviewer's version replaces the candidate (amended on the branch)."""
        self.config.path(self.config.train_script).write_text(source, encoding="utf-8")
        self.diffs.pop(commit, None)
        revised = self.repo.amend([self.train_rel], message)
        self.diffs[revised] = unified_diff(self.train_rel, self.source_at(slot.base), source)
        return revised

    def drop(self, slot: Slot, best: str) -> None:
        """A candidate that will not run (rejected, or a stop came first): off the branch."""
        self.diffs.pop(slot.commit, None)
        self.repo.reset_hard(best)

    # -- runs -----------------------------------------------------------------------------
    def run_place(self, slot: Slot, commit: str) -> tuple[Path, Path, list[str]]:
        """(folder the run starts in, its pid file, names linked in): the main tree, at `commit` already."""
        return self.config.project, self.session_root / RUN_PID, []

    @contextmanager
    def best_tree(self, n: int, best: str, commit: str) -> Iterator[None]:
        """keep_policy confirm re-runs the best beside candidate n. The main tree holds the best's
        files while it runs; HEAD and the branch stay on the candidate, so a kill at any instant
        leaves it committed and reachable, and resume finds a dirty tree on the branch (reset) and
        the candidate not evaluated (run again)."""
        self.repo.read_tree(best)
        try:
            yield
        finally:
            self.repo.reset_hard(commit)

    def land(self, slot: Slot, commit: str, description: str, best: str) -> tuple[str | None, str | None, str]:
        """(commit kept on the branch, commit to run again, note) for a winner: on the main tree
        the winner is on the branch already."""
        return commit, None, ""

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
        if repo.detached or repo.branch != cfg.branch:
            repo.checkout(cfg.branch, "-f")
            reverted.append(f"HEAD (the agent switched branch; back on {cfg.branch})")
        if repo.head() != best:
            reverted.append(f"HEAD (the agent moved it; restored {best[:7]})")
        if untracked_before is None and not reverted and self._clean_at(best):
            changed, untracked = [], set()  # a proposer that cannot touch the tree: only tracked files matter
        else:
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

    def _clean_at(self, best: str) -> bool:
        """Tracked files as `best` has them, read from the index and stat data without a process
        (gitindex.IndexView: the index's entries hash to best's tree, every file's stat data is
        its entry's). False: ask git. Replace refs would make git read another commit."""
        common = self.repo.common_dir
        try:
            packed = (common / "packed-refs").read_bytes() if (common / "packed-refs").is_file() else b""
        except OSError:
            return False
        if os.path.lexists(common / "refs" / "replace") or b"refs/replace/" in packed:
            return False
        return self.index.unchanged(self.index.mark(), best)

    # -- the pipeline: the next candidate is prepared while the current one trains ----------
    def source_at(self, commit: str) -> str:
        return self.repo.file_at(commit, self.train_rel)

    def prepare_worktree(self, base: str) -> Path:
        """A detached worktree at `base` where an agent can work while the main tree trains."""
        self._scratch = self.worktree_at(self.worktree, base, self._scratch)
        return self.worktree

    # -- detached worktrees (the scratch one above, the workers' in slots.py) ---------------
    def worktree_at(self, path: Path, commit: str, tree: Git | None, head: str = "") -> Git:
        """`path` as a clean detached worktree at `commit`, made when missing; `tree` and `head`:
        what the caller knows is there already. Returns the worktree's repository."""
        if tree is None or not (path / ".git").exists():
            if path.exists():
                self.drop_worktree(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            return self.repo.add_worktree(path, commit)
        if head != commit:
            tree.switch_worktree(commit)
        return tree

    def drop_worktree(self, path: Path) -> None:
        if not self.repo.remove_worktree(path):  # not a registered worktree (any more)
            shutil.rmtree(path, ignore_errors=True)

    def rebase_source(self, new_source: str, base: str, best: str) -> str | None:
        """Carry a change prepared on `base` over to the new `best` (3-way); None on a conflict."""
        return merge3(self.source_at(base), self.source_at(best), new_source)

    def remove_worktree(self) -> None:
        if (self.worktree / ".git").exists():
            self.repo.remove_worktree(self.worktree)  # a leftover worktree folder is harmless
        self._scratch = None


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


def merge3(base: str, ours: str, theirs: str, prefer_theirs: bool = False) -> str | None:
    """Line-level 3-way merge where only overlapping edits conflict (None), or, with
    `prefer_theirs`, where `theirs` wins every overlap (a candidate re-run on a new best).

    Unlike diff3, edits to adjacent lines (two constants next to each other) merge cleanly,
    which is the common case for hyperparameter blocks.
    """
    lines = base.splitlines(keepends=True)
    mine, yours = _edits(lines, ours.splitlines(keepends=True)), _edits(lines, theirs.splitlines(keepends=True))
    if prefer_theirs:
        mine = [a for a in mine if not any(_clash(a, b) for b in yours)]
    elif any(_clash(a, b) for a in mine for b in yours):
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
