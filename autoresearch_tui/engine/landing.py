"""Phase 3.2: merge the best research commit back into the branch the session started from.

Rules (the spec plus ours): never push (so never force-push); never rewrite the original
branch's history; refuse a dirty tree; refuse a branch that moved since the session started
unless the caller confirmed it (`allow_moved`); on a conflict abort and put everything back.
Only the commits up to the best commit are merged: an experiment still on the branch after it
(a run killed mid-way) is left out.

  squash  one new commit on top of the original branch with the combined change
  merge   a merge commit (--no-ff) on the original branch with the research commits as 2nd parent
  rebase  the research commits replayed onto the original branch head, then the original branch
          fast-forwarded to them; when the branch did not move this is a plain fast-forward to
          the best commit itself (no new commits)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autoresearch_tui.core.git import Git, GitError
from autoresearch_tui.errors import UserError

HOWS = ("squash", "rebase", "merge")


@dataclass
class MergePlan:
    """What a merge would meet, computed without changing anything (for the finish screen)."""

    original_branch: str
    research_branch: str
    base_commit: str
    best_commit: str
    original_head: str | None  # None: the original branch no longer exists
    commits: list[tuple[str, str]] = field(default_factory=list)  # (sha, subject), base..best, oldest first
    moved: bool = False  # the original branch head is not base_commit any more
    already_merged: bool = False  # best_commit is already in the original branch
    dirty: list[str] = field(default_factory=list)  # uncommitted tracked changes
    problem: str | None = None  # why no merge is possible at all

    @property
    def nothing_to_merge(self) -> bool:
        return not self.commits


@dataclass
class MergeResult:
    how: str
    done: str  # one line: what was done
    original_branch: str
    before: str  # original branch head before
    after: str  # original branch head after (== new_head)
    new_head: str
    merged: list[tuple[str, str]] = field(default_factory=list)  # research commits included
    moved: bool = False


def plan_merge(project: Path, *, research_branch: str, original_branch: str, base_commit: str,
               best_commit: str) -> MergePlan:
    """Inspect the repository: moved branch, commits to merge, dirty tree. Changes nothing."""
    repo = Git(project)
    plan = MergePlan(original_branch=original_branch, research_branch=research_branch,
                     base_commit=base_commit, best_commit=best_commit, original_head=None)
    base, best = repo.resolve(base_commit), repo.resolve(best_commit)
    head = repo.resolve(f"refs/heads/{original_branch}")
    plan.original_head = head
    if head is None:
        plan.problem = f"the original branch {original_branch} does not exist any more"
        return plan
    if base is None or best is None:
        missing = base_commit if base is None else best_commit
        plan.problem = f"commit {missing[:7]} is not in this repository"
        return plan
    plan.base_commit, plan.best_commit = base, best
    if not repo.is_ancestor(base, best):
        plan.problem = f"the best commit {best[:7]} does not descend from the session's base {base[:7]}"
        return plan
    plan.commits = repo.log(base, best)
    plan.moved = head != base
    plan.already_merged = bool(plan.commits) and repo.is_ancestor(best, head)
    plan.dirty = repo.changed_files() if repo.is_dirty() else []
    return plan


def merge_best(project: Path, *, research_branch: str, original_branch: str, base_commit: str,
               best_commit: str, how: str, message: str | None = None,
               allow_moved: bool = False) -> MergeResult:
    """Merge base..best into `original_branch`; leaves the user on `original_branch`.

    Raises UserError (one line) for every refusal; after a failed attempt the repository is as
    it was (same branch checked out, same heads, clean tree).
    """
    if how not in HOWS:
        raise UserError(f"unknown merge method {how!r}: use squash, rebase or merge")
    plan = plan_merge(project, research_branch=research_branch, original_branch=original_branch,
                      base_commit=base_commit, best_commit=best_commit)
    if plan.problem:
        raise UserError(plan.problem)
    if plan.nothing_to_merge:
        raise UserError("the best commit is the baseline: no kept change to merge")
    if plan.already_merged:
        raise UserError(f"{original_branch} already contains the best commit {plan.best_commit[:7]}")
    if plan.dirty:
        raise UserError(f"the working tree has uncommitted changes ({', '.join(plan.dirty[:5])}); "
                        "commit or stash them first")
    assert plan.original_head is not None
    before, base, best = plan.original_head, plan.base_commit, plan.best_commit
    if plan.moved and not allow_moved:
        raise UserError(f"{original_branch} moved since the session started (was {base[:7]}, now {before[:7]}); "
                        "confirm to merge on top of it anyway")
    repo = Git(project)
    start = _where(repo)
    tag = research_branch.rsplit("/", 1)[-1]
    n = len(plan.commits)
    try:
        repo.run("checkout", "--quiet", original_branch)
        if how == "squash":
            msg = message or _squash_message(research_branch, plan.commits)
            try:
                repo.run("merge", "--squash", "--quiet", best)
            except GitError as exc:
                repo.run("reset", "--hard", "--quiet", before)
                raise UserError(f"squash of {research_branch} onto {original_branch} conflicts "
                                f"({_conflict_hint(exc)}); nothing was changed") from None
            if not repo.run("diff", "--cached", "--name-only").strip():
                repo.run("reset", "--hard", "--quiet", before)
                raise UserError(f"{original_branch} already has every change of {best[:7]}; nothing to squash")
            repo.run("commit", "-m", msg, "--no-verify", "--quiet")
            done = f"squashed {n} commit{'s' * (n != 1)} of {research_branch} up to {best[:7]} into one commit on {original_branch}"
        elif how == "merge":
            msg = message or f"Merge {research_branch} up to {best[:7]} (autoresearch {tag}, {n} kept change{'s' * (n != 1)})"
            try:
                repo.run("merge", "--no-ff", "--no-edit", "--no-verify", "--quiet", "-m", msg, best)
            except GitError as exc:
                _abort(repo, "merge", before)
                raise UserError(f"merging {research_branch} into {original_branch} conflicts "
                                f"({_conflict_hint(exc)}); the merge was aborted, nothing changed") from None
            done = f"merged {research_branch} up to {best[:7]} into {original_branch} with a merge commit"
        else:  # rebase
            if not plan.moved:
                repo.run("merge", "--ff-only", "--quiet", best)
                done = f"fast-forwarded {original_branch} to {best[:7]} ({n} commit{'s' * (n != 1)} of {research_branch})"
            else:
                new_tip = _replay(repo, before, plan.commits, research_branch, original_branch)
                repo.run("merge", "--ff-only", "--quiet", new_tip)
                done = (f"replayed {n} commit{'s' * (n != 1)} of {research_branch} onto {original_branch} "
                        f"and fast-forwarded it to {new_tip[:7]}")
    except UserError:
        _restore(repo, start)
        raise
    except GitError as exc:
        _restore(repo, start, original_branch=original_branch, original_head=before)
        raise UserError(f"git failed during the {how}: {_conflict_hint(exc)}; nothing was changed") from None
    after = repo.head()
    if not repo.is_ancestor(before, after):  # belt and braces: history of the branch is kept
        repo.run("update-ref", f"refs/heads/{original_branch}", before)
        repo.run("reset", "--hard", "--quiet", before)
        raise UserError(f"the {how} would have rewritten {original_branch}; it was undone")
    return MergeResult(how=how, done=done, original_branch=original_branch, before=before, after=after,
                       new_head=after, merged=plan.commits, moved=plan.moved)


def _replay(repo: Git, onto: str, commits: list[tuple[str, str]], research_branch: str,
            original_branch: str) -> str:
    """Cherry-pick the research commits onto `onto` in a detached HEAD; the new tip's sha."""
    repo.run("checkout", "--quiet", "--detach", onto)
    try:
        for sha, _ in commits:
            repo.run("cherry-pick", "--allow-empty", "--keep-redundant-commits", sha)
    except GitError as exc:
        try:
            repo.run("cherry-pick", "--abort")
        except GitError:
            repo.run("reset", "--hard", "--quiet", onto)
        repo.run("checkout", "--quiet", original_branch)
        raise UserError(f"replaying {research_branch} onto {original_branch} conflicts "
                        f"({_conflict_hint(exc)}); it was aborted, nothing changed; try merge instead") from None
    tip = repo.head()
    repo.run("checkout", "--quiet", original_branch)
    return tip


def _where(repo: Git) -> str:
    """The branch (or commit, if detached) checked out now."""
    return repo.head() if repo.detached else repo.branch


def _abort(repo: Git, what: str, fallback: str) -> None:
    try:
        repo.run(what, "--abort")
    except GitError:
        repo.run("reset", "--hard", "--quiet", fallback)


def _restore(repo: Git, start: str, original_branch: str | None = None,
             original_head: str | None = None) -> None:
    """Put the checkout back where it was; the original branch back at its old head if moved."""
    git_dir = repo.git_dir
    if (git_dir / "MERGE_HEAD").exists():
        _abort(repo, "merge", "HEAD")
    if (git_dir / "CHERRY_PICK_HEAD").exists() or (git_dir / "sequencer").exists():
        _abort(repo, "cherry-pick", "HEAD")
    if original_branch and original_head and repo.resolve(f"refs/heads/{original_branch}") != original_head:
        if _where(repo) == original_branch:
            repo.run("reset", "--hard", "--quiet", original_head)
        else:
            repo.run("update-ref", f"refs/heads/{original_branch}", original_head)
    try:
        repo.run("checkout", "--quiet", start)
    except GitError:
        pass


def _squash_message(research_branch: str, commits: list[tuple[str, str]]) -> str:
    n = len(commits)
    lines = [f"autoresearch: {n} kept change{'s' * (n != 1)} from {research_branch}", ""]
    for sha, subject in commits:
        lines.append(f"- {sha[:7]} {subject}")
    return "\n".join(lines)


def _conflict_hint(exc: GitError) -> str:
    text = " ".join(str(exc.stderr or exc.stdout or exc).split())
    for marker in ("CONFLICT", "error:", "fatal:"):
        i = text.find(marker)
        if i >= 0:
            return text[i:i + 160].strip(" '\"")
    return text[:160] or "git error"
