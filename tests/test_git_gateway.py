"""The git gateway: hooks, fsmonitor and drivers planted in a repository never run."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from autoresearch_tui.core.git import Git, git_dirs, run_async, run_in
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.config import load_config
from autoresearch_tui.engine.api import create_engine
from autoresearch_tui.engine.landing import merge_best
from autoresearch_tui.engine.preflight import bare_error, index_lock_error

from conftest import Scripted, git, make_project

pytestmark = pytest.mark.slow  # starts engines or real training runs

HOOKS = ("pre-commit", "post-commit", "post-checkout", "post-merge", "reference-transaction", "post-rewrite")


def plant(project: Path, marks: Path) -> None:
    """Hooks, an fsmonitor, a filter and a diff driver that each leave a file in `marks` when run."""
    def script(name: str) -> Path:
        path = marks.parent / f"{name}.sh"
        path.write_text(f"#!/bin/sh\ntouch '{marks}/{name}'\ncat\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    marks.mkdir()
    (project / ".gitattributes").write_text("train.py filter=evil diff=evil\n")
    git(project, "add", ".gitattributes")
    git(project, "commit", "-q", "-m", "attributes")
    hooks = project / ".git" / "hooks"
    for name in HOOKS:
        (hooks / name).write_text(f"#!/bin/sh\ntouch '{marks}/hook-{name}'\n")
        (hooks / name).chmod(0o755)
    git(project, "config", "core.fsmonitor", str(script("fsmonitor")))
    git(project, "config", "filter.evil.clean", str(script("clean")))
    git(project, "config", "filter.evil.smudge", str(script("smudge")))
    git(project, "config", "diff.evil.command", str(script("diff")))
    git(project, "config", "diff.evil.textconv", str(script("textconv")))


def test_planted_hooks_and_drivers_never_run(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    marks = tmp_path / "marks"
    plant(project, marks)
    # A plain git command does run them: the plant works.
    git(project, "commit", "-q", "--allow-empty", "-m", "check")
    assert (marks / "hook-post-commit").exists()
    for mark in marks.iterdir():
        mark.unlink()

    for workers, better in ((1, 0.2), (2, 0.3)):
        tag = f"w{workers}"
        config = load_config(project, None, {"time_budget": "20s", "metric": "val_bpb:min", "tag": tag,
                                             "device": "cpu", "workers": workers, "max_iterations": 2})
        seen: list[ev.Event] = []
        engine = create_engine(config, Scripted([("LR", better), ("LR", 0.01)]), listeners=[seen.append])
        engine.prepare()
        end = asyncio.run(engine.run())
        assert end.reason == "max_iterations", seen
        assert [e.status for e in seen if isinstance(e, ev.ResultRecorded)] == ["keep", "keep", "discard"]
        merge_best(project, research_branch=f"autoresearch/{tag}", original_branch="main",
                   base_commit=engine.base_commit, best_commit=engine.best_commit, how="squash",
                   allow_moved=True)
    repo = Git(project)
    assert "+LR = 0.3" in repo.diff("HEAD~1", "HEAD")
    assert asyncio.run(run_async(project, "status", "--porcelain"))[0] == 0
    assert sorted(p.name for p in marks.iterdir()) == []
    assert os.environ.get("GIT_DIR") is None  # nothing leaked into this process


def test_a_linked_worktree_and_a_bare_repository_use_their_repository_config(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj")
    marks = tmp_path / "marks"
    plant(project, marks)
    linked = tmp_path / "linked"
    git(project, "worktree", "add", "-q", "--detach", str(linked))  # plain git: the plants run
    for mark in marks.iterdir():
        mark.unlink()
    own = project / ".git" / "worktrees" / "linked"
    assert git_dirs(linked / "sub-folder-that-is-not-there") == (own, project / ".git")
    (linked / "train.py").write_text("LR = 0.5\n")
    run_in(linked, "add", "train.py")  # the filter named in the shared config is emptied, so never runs
    assert run_in(linked, "diff", "--cached", "--name-only").split() == ["train.py"]
    assert sorted(p.name for p in marks.iterdir()) == []
    (own / "index.lock").write_text("")
    assert f"{own / 'index.lock'} exists" in index_lock_error(linked)
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(bare))
    assert git_dirs(bare / "refs") == (bare, bare)
    assert bare_error(bare).startswith(f"{bare} is a bare repository")
    assert bare_error(linked) is None and git_dirs(tmp_path) is None


def test_head_read_from_the_files_is_what_git_says(tmp_path: Path) -> None:
    """`Git.head()` reads the loose ref git leaves after a commit; packed refs, a linked
    worktree, a detached HEAD, a ref turned into a link and a redirecting GIT_DIR all give the
    answer `git rev-parse HEAD` gives."""
    project = make_project(tmp_path / "p", "x = 1\n", "y = 2\n")
    repo = Git(project)

    def says() -> str:
        return git(project, "rev-parse", "HEAD").strip()

    assert repo.head() == says()
    (project / "train.py").write_text("x = 2\n")
    first = repo.commit_paths(["train.py"], "two")
    assert first == says() and (repo.git_dir / "refs" / "heads").is_dir()
    git(project, "pack-refs", "--all")  # the branch now lives in packed-refs only
    (project / "train.py").write_text("x = 3\n")
    git(project, "commit", "-qam", "three")
    git(project, "pack-refs", "--all")
    assert repo.head() == says() != first
    other = tmp_path / "other"
    git(project, "worktree", "add", "--detach", str(other), first)
    assert Git(other).head() == first
    branch = git(project, "symbolic-ref", "--short", "HEAD").strip()
    ref = repo.common_dir / "refs" / "heads" / branch
    (repo.common_dir / "decoy").write_text(first + "\n")
    ref.unlink(missing_ok=True)
    ref.symlink_to(repo.common_dir / "decoy")  # a planted link: never read as the branch
    assert repo.head() == says()
    ref.unlink()
    git(project, "update-ref", f"refs/heads/{branch}", first)
    assert repo.head() == first == says()
