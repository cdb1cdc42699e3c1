"""engine.landing: squash / rebase / merge of the best commit into the original branch, on real repos."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch_tui.engine.landing import merge_best, plan_merge
from autoresearch_tui.errors import UserError

from conftest import git, make_project

TRAIN = "LR = 0.1\nDEPTH = 4\nWIDTH = 8\nprint('val: 1.0')\n"


def commit_edit(repo: Path, old: str, new: str, message: str, path: str = "train.py") -> str:
    file = repo / path
    file.write_text(file.read_text().replace(old, new) if file.exists() else new)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def research(tmp_path: Path) -> dict:
    """main @ base; autoresearch/t with 3 commits: LR (kept), DEPTH (kept, best), WIDTH (after best)."""
    repo = make_project(tmp_path / "proj", train=TRAIN, extra={"README.md": "hello\n"})
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "autoresearch/t")
    c1 = commit_edit(repo, "LR = 0.1", "LR = 0.2", "exp: LR 0.1 -> 0.2")
    c2 = commit_edit(repo, "DEPTH = 4", "DEPTH = 8", "exp: DEPTH 4 -> 8")
    c3 = commit_edit(repo, "WIDTH = 8", "WIDTH = 16", "exp: WIDTH 8 -> 16 (not evaluated)")
    # a discarded experiment, reachable only through the engine's ref
    git(repo, "update-ref", "refs/autoresearch/t/9", c3)
    return {"repo": repo, "base": base, "c1": c1, "c2": c2, "c3": c3}


def kwargs(r: dict, how: str, **extra) -> dict:
    return dict(research_branch="autoresearch/t", original_branch="main", base_commit=r["base"],
                best_commit=r["c2"], how=how, **extra)


def head(repo: Path, ref: str = "HEAD") -> str:
    return git(repo, "rev-parse", ref)


def current_branch(repo: Path) -> str:
    return git(repo, "rev-parse", "--abbrev-ref", "HEAD")


def is_ancestor(repo: Path, a: str, b: str) -> bool:
    try:
        git(repo, "merge-base", "--is-ancestor", a, b)
        return True
    except Exception:
        return False


def clean(repo: Path) -> bool:
    return git(repo, "status", "--porcelain", "--untracked-files=no") == ""


def assert_best_content(repo: Path, ref: str = "main") -> None:
    text = git(repo, "show", f"{ref}:train.py")
    assert "LR = 0.2" in text and "DEPTH = 8" in text
    assert "WIDTH = 8" in text and "WIDTH = 16" not in text  # the commit after best is left out


def test_squash_puts_one_commit_on_main(research: dict) -> None:
    r, repo = research, research["repo"]
    result = merge_best(repo, **kwargs(r, "squash"))
    assert current_branch(repo) == "main"
    assert result.before == r["base"] and result.after == head(repo, "main") == result.new_head
    assert git(repo, "rev-parse", "main^") == r["base"]  # exactly one commit on top
    assert git(repo, "rev-list", "--count", "main") == "2"
    assert_best_content(repo)
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert "LR 0.1 -> 0.2" in message and "DEPTH 4 -> 8" in message and "WIDTH" not in message
    assert is_ancestor(repo, r["base"], "main")
    assert head(repo, "autoresearch/t") == r["c3"]  # the research branch is untouched
    assert [sha for sha, _ in result.merged] == [r["c1"], r["c2"]]
    assert clean(repo)


def test_squash_with_custom_message(research: dict) -> None:
    r, repo = research, research["repo"]
    merge_best(repo, **kwargs(r, "squash", message="tuned LR and depth"))
    assert git(repo, "log", "-1", "--format=%s", "main") == "tuned LR and depth"


def test_rebase_fast_forwards_to_best(research: dict) -> None:
    r, repo = research, research["repo"]
    result = merge_best(repo, **kwargs(r, "rebase"))
    assert current_branch(repo) == "main"
    assert head(repo, "main") == r["c2"] == result.after
    assert "fast-forward" in result.done
    assert is_ancestor(repo, r["base"], "main")
    assert not is_ancestor(repo, r["c3"], "main")
    assert_best_content(repo)


def test_merge_commit_has_both_parents(research: dict) -> None:
    r, repo = research, research["repo"]
    result = merge_best(repo, **kwargs(r, "merge"))
    parents = git(repo, "log", "-1", "--format=%P", "main").split()
    assert parents == [r["base"], r["c2"]]
    assert result.after == head(repo, "main")
    assert current_branch(repo) == "main"
    assert not is_ancestor(repo, r["c3"], "main")
    assert_best_content(repo)


def test_moved_branch_is_refused_without_allow_moved(research: dict) -> None:
    r, repo = research, research["repo"]
    git(repo, "checkout", "-q", "main")
    moved = commit_edit(repo, "hello", "hello world", "docs", path="README.md")
    git(repo, "checkout", "-q", "autoresearch/t")
    plan = plan_merge(repo, research_branch="autoresearch/t", original_branch="main", base_commit=r["base"],
                      best_commit=r["c2"])
    assert plan.moved and plan.original_head == moved and len(plan.commits) == 2
    for how in ("squash", "rebase", "merge"):
        with pytest.raises(UserError, match="moved since the session started"):
            merge_best(repo, **kwargs(r, how))
    assert head(repo, "main") == moved
    assert current_branch(repo) == "autoresearch/t"
    assert clean(repo)


@pytest.mark.parametrize("how", ["squash", "merge", "rebase"])
def test_moved_branch_with_allow_moved_lands_on_top(research: dict, how: str) -> None:
    r, repo = research, research["repo"]
    git(repo, "checkout", "-q", "main")
    moved = commit_edit(repo, "hello", "hello world", "docs", path="README.md")
    git(repo, "checkout", "-q", "autoresearch/t")
    result = merge_best(repo, **kwargs(r, how, allow_moved=True))
    assert result.moved and result.before == moved
    assert is_ancestor(repo, moved, "main")  # main's history is kept, never rewritten
    assert is_ancestor(repo, r["base"], "main")
    assert current_branch(repo) == "main"
    assert_best_content(repo)
    assert (repo / "README.md").read_text() == "hello world\n"
    assert head(repo, "autoresearch/t") == r["c3"]
    if how == "squash":
        assert git(repo, "rev-parse", "main^") == moved
    elif how == "merge":
        assert git(repo, "log", "-1", "--format=%P", "main").split() == [moved, r["c2"]]
    else:  # replayed copies of c1, c2 on top of the moved head, then a fast-forward
        subjects = git(repo, "log", "--format=%s", f"{moved}..main").splitlines()
        assert subjects == ["exp: DEPTH 4 -> 8", "exp: LR 0.1 -> 0.2"]
        assert not is_ancestor(repo, r["c2"], "main")  # copies, the research commits stay as they were


def test_dirty_tree_is_refused(research: dict) -> None:
    r, repo = research, research["repo"]
    (repo / "train.py").write_text("changed\n")
    with pytest.raises(UserError, match="uncommitted changes"):
        merge_best(repo, **kwargs(r, "squash"))
    assert head(repo, "main") == r["base"]
    assert current_branch(repo) == "autoresearch/t"
    assert (repo / "train.py").read_text() == "changed\n"


@pytest.mark.parametrize("how", ["squash", "merge", "rebase"])
def test_conflict_aborts_and_restores(research: dict, how: str) -> None:
    r, repo = research, research["repo"]
    git(repo, "checkout", "-q", "main")
    moved = commit_edit(repo, "LR = 0.1", "LR = 0.05", "main: LR 0.05")
    git(repo, "checkout", "-q", "autoresearch/t")
    with pytest.raises(UserError, match="conflict"):
        merge_best(repo, **kwargs(r, how, allow_moved=True))
    assert head(repo, "main") == moved
    assert head(repo, "autoresearch/t") == r["c3"]
    assert current_branch(repo) == "autoresearch/t"
    assert clean(repo)
    git_dir = repo / ".git"
    assert not (git_dir / "MERGE_HEAD").exists() and not (git_dir / "CHERRY_PICK_HEAD").exists()


def test_best_is_baseline_is_refused(research: dict) -> None:
    r, repo = research, research["repo"]
    with pytest.raises(UserError, match="baseline"):
        merge_best(repo, **{**kwargs(r, "squash"), "best_commit": r["base"]})
    assert head(repo, "main") == r["base"]


def test_already_merged_is_refused(research: dict) -> None:
    r, repo = research, research["repo"]
    merge_best(repo, **kwargs(r, "rebase"))
    with pytest.raises(UserError, match="already contains"):
        merge_best(repo, **kwargs(r, "squash"))


def test_unknown_method_and_missing_branch(research: dict) -> None:
    r, repo = research, research["repo"]
    with pytest.raises(UserError, match="unknown merge method"):
        merge_best(repo, **kwargs(r, "octopus"))
    with pytest.raises(UserError, match="does not exist"):
        merge_best(repo, **{**kwargs(r, "squash"), "original_branch": "nope"})


def test_nothing_is_pushed(research: dict, tmp_path: Path) -> None:
    r, repo = research, research["repo"]
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    before = git(repo, "ls-remote", "origin")
    for how in ("merge",):
        merge_best(repo, **kwargs(r, how))
    assert git(repo, "ls-remote", "origin") == before
    assert head(repo, "main") != r["base"]
    assert git(repo, "rev-parse", "origin/main") == r["base"]
