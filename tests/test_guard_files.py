"""The guard reads refs and the git folder's code paths from the files, caching by stat data:
writes that keep a file's size, made in place or right after the guard looked, are still caught."""

from __future__ import annotations

import subprocess
from pathlib import Path

from autoresearch_tui.engine.guard import Guard, refs


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def repo(tmp_path: Path) -> tuple[Path, Guard, list]:
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "two")
    git(root, "branch", "other")
    git(root, "tag", "v1", "HEAD~1")
    git(root, "checkout", "-q", "-b", "autoresearch/t")
    (root / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    events: list = []
    return root, Guard(root, root / ".git", "t", "autoresearch/t", tmp_path, events.append), events


def test_refs_from_files_match_git(tmp_path: Path) -> None:
    root, guard, _ = repo(tmp_path)
    assert guard._refs() == refs(root)
    git(root, "pack-refs", "--all")
    git(root, "update-ref", "refs/heads/loose", "HEAD~1")
    git(root, "symbolic-ref", "refs/heads/alias", "refs/heads/other")
    assert guard._refs() == refs(root)
    assert guard._refs()["refs/heads/alias"] == git(root, "rev-parse", "other")


def test_in_place_writes_of_the_same_size_are_restored(tmp_path: Path) -> None:
    root, guard, events = repo(tmp_path)
    head, old = git(root, "rev-parse", "HEAD"), git(root, "rev-parse", "HEAD~1")
    other = root / ".git" / "refs" / "heads" / "other"
    hook = root / ".git" / "hooks" / "pre-commit"
    for _ in range(3):  # the same file rewritten again and again, each time right after the guard looked
        guard.before(tip=head)
        with open(other, "r+") as fh:  # no rename: only the file's own stat data changes
            fh.write(old + "\n")
        hook.write_text("#!/bin/sh\nexit 1\n")
        restored = guard.after("agent", 1)
        assert any(r.startswith("other (moved") for r in restored), restored
        assert ".git/hooks/pre-commit (changed; restored)" in restored
        assert git(root, "rev-parse", "other") == head
        assert hook.read_text() == "#!/bin/sh\nexit 0\n"
    guard.before(tip=head)
    assert guard.after("agent", 2) == []
    assert len(events) == 3


def test_packed_refs_edited_are_restored(tmp_path: Path) -> None:
    root, guard, _ = repo(tmp_path)
    git(root, "pack-refs", "--all")
    head, old = git(root, "rev-parse", "HEAD"), git(root, "rev-parse", "HEAD~1")
    guard.before(tip=head)
    packed = root / ".git" / "packed-refs"
    packed.write_text(packed.read_text().replace(f"{head} refs/heads/other", f"{old} refs/heads/other"))
    assert any(r.startswith("other (moved") for r in guard.after("agent", 1))
    assert git(root, "rev-parse", "other") == head


def test_refs_in_new_and_removed_folders_are_seen(tmp_path: Path) -> None:
    root, guard, _ = repo(tmp_path)
    head = git(root, "rev-parse", "HEAD")
    guard.before(tip=head)
    git(root, "update-ref", "refs/planted/deep/x", "HEAD~1")
    assert "refs/planted/deep/x (created; removed)" in guard.after("agent", 1)
    guard.before(tip=head)
    git(root, "update-ref", "-d", "refs/tags/v1")
    (root / ".git" / "refs" / "tags").rmdir()
    assert any(r.startswith("v1 (deleted") for r in guard.after("agent", 2))
    assert guard._refs() == refs(root)
