"""The guard reads refs and the git folder's code paths from the files, caching by stat data:
writes that keep a file's size, made in place or right after the guard looked, are still caught."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

from autoresearch_tui.engine.gitindex import IndexView
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


def test_refs_read_again_one_by_one_match_git_through_many_steps(tmp_path: Path) -> None:
    """Between two looks only the refs written are read again (a step writes one or two of a
    thousand): created, moved, deleted with and without a packed value, a new folder, a symbolic
    ref, a repack. After each, the view is what `git for-each-ref` says."""
    import random

    root, guard, _ = repo(tmp_path)
    one, two = git(root, "rev-parse", "HEAD~1"), git(root, "rev-parse", "HEAD")
    for i in range(300):
        git(root, "update-ref", f"refs/autoresearch/t/{i}", one)
    git(root, "pack-refs", "--all")
    time.sleep(1.1)  # settled: packed-refs is then trusted by its stat data, and loose refs are patched in
    assert guard._refs() == refs(root)
    loose = root / ".git" / "refs" / "autoresearch" / "t"
    loose.mkdir(parents=True, exist_ok=True)  # pack-refs removed the emptied folders
    assert guard._refs() == refs(root)
    for change in (lambda: (loose / "5").write_text(two + "\n"),  # a loose value over a packed one
                   lambda: (loose / "5").unlink(),  # the packed value shows again
                   lambda: git(root, "update-ref", "refs/autoresearch/t/new", two),
                   lambda: (loose / "new").unlink()):  # gone: no packed value under it
        change()
        assert guard._refs() == refs(root)
    rng = random.Random(7)
    steps = [
        lambda: git(root, "update-ref", f"refs/autoresearch/t/{rng.randrange(400)}", rng.choice((one, two))),
        lambda: git(root, "update-ref", "-d", f"refs/autoresearch/t/{rng.randrange(400)}"),
        lambda: git(root, "update-ref", "refs/heads/other", rng.choice((one, two))),
        lambda: git(root, "update-ref", f"refs/autoresearch/t/keep/{rng.randrange(50)}", two),
        lambda: (root / ".git" / "refs" / "autoresearch" / "t" / "5").write_text(two + "\n"),
        lambda: [p.unlink() for p in (root / ".git" / "refs" / "autoresearch" / "t").glob(f"{rng.randrange(400)}")],
    ]
    for n in range(60):
        rng.choice(steps)()
        if n == 20:
            git(root, "symbolic-ref", "refs/heads/alias", "refs/heads/other")
        if n == 45:
            git(root, "pack-refs", "--all")
            time.sleep(1.1)
        assert guard._refs() == refs(root), n


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


# -- after a training run: "nothing tracked changed" from the index and stat data -------------------

RUN = [sys.executable, "-c"]


def tracked_repo(tmp_path: Path) -> tuple[Path, Guard, str]:
    root = tmp_path / "w"
    (root / "src").mkdir(parents=True)
    (root / "train.py").write_text("LR = 0.1\n")
    (root / "src" / "model.py").write_text("WIDTH = 8\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    time.sleep(0.05)  # the files' clock tick is over before git writes the index (else racy: git is asked)
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    return root, Guard(root, root / ".git", "t", "main", tmp_path, [].append), git(root, "rev-parse", "HEAD")


def run_step(guard: Guard, tip: str, root: Path, code: str) -> list[str]:
    guard.before(tip=tip)
    subprocess.run([*RUN, code], cwd=root, check=True)
    return guard.after("training run", 1)


def test_untouched_tree_is_judged_from_the_index(tmp_path: Path) -> None:
    root, guard, tip = tracked_repo(tmp_path)
    assert guard.index.unchanged(guard.index.mark(), tip)
    assert run_step(guard, tip, root, "open('log.txt', 'w').write('x')") == []


def test_same_size_edit_with_mtime_set_back_is_reset(tmp_path: Path) -> None:
    root, guard, tip = tracked_repo(tmp_path)
    edit = ("import os; p = 'src/model.py'; st = os.stat(p); open(p, 'w').write('WIDTH = 9\\n');"
            " os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))")
    assert run_step(guard, tip, root, edit) == ["src/model.py (changed; reset)"]
    assert (root / "src" / "model.py").read_text() == "WIDTH = 8\n"


def test_a_run_that_rewrites_the_index_is_judged_by_git(tmp_path: Path) -> None:
    root, guard, tip = tracked_repo(tmp_path)
    edit = "import subprocess; open('train.py', 'w').write('LR = 9.9\\n'); subprocess.run(['git', 'add', 'train.py'])"
    assert run_step(guard, tip, root, edit) == ["train.py (changed; reset)"]
    assert git(root, "status", "--porcelain") == ""
    # the index rewritten to the same entries (a refresh) is not trusted either
    sig = guard.index.mark()
    git(root, "update-index", "--really-refresh")
    os.utime(root / ".git" / "index")
    assert not guard.index.unchanged(sig, tip)


def test_folder_swapped_for_a_link_to_itself_is_seen(tmp_path: Path) -> None:
    root, guard, tip = tracked_repo(tmp_path)  # the files keep their stat data; git sees them deleted
    swap = "import os; os.rename('src', '../moved'); os.symlink(os.path.abspath('../moved'), 'src')"
    assert run_step(guard, tip, root, swap) == ["src/model.py (changed; reset)"]
    assert not (root / "src").is_symlink() and (root / "src" / "model.py").read_text() == "WIDTH = 8\n"
    assert git(root, "status", "--porcelain") == "" and (tmp_path / "moved" / "model.py").exists()


def restat(index: Path, root: Path) -> None:
    """The index's entries given their files' stat data as it is now (content ids kept), as a
    write in the same clock tick as git's look would leave them; the index's mtime in that tick."""
    data = bytearray(index.read_bytes())
    i = 12
    for _ in range(struct.unpack_from(">I", data, 8)[0]):
        end = data.index(b"\0", i + 62)
        st = os.lstat(root / data[i + 62:end].decode())
        struct.pack_into(">10I", data, i, st.st_ctime_ns // 10**9, st.st_ctime_ns % 10**9, st.st_mtime_ns // 10**9,
                         st.st_mtime_ns % 10**9, st.st_dev & 0xFFFFFFFF, st.st_ino, 0o100644, st.st_uid, st.st_gid,
                         st.st_size)
        i += (end - i + 8) & ~7
    index.write_bytes(data[:-20] + hashlib.sha1(data[:-20]).digest())
    newest = max(os.lstat(root / p).st_mtime_ns for p in ("train.py", "src/model.py"))
    os.utime(index, ns=(newest, newest))


def test_racy_entries_are_compared_by_content(tmp_path: Path) -> None:
    root, guard, tip = tracked_repo(tmp_path)
    index = root / ".git" / "index"
    restat(index, root)  # same content: the fast path still answers
    assert guard.index.unchanged(guard.index.mark(), tip)
    (root / "train.py").write_text("LR = 0.9\n")  # same size; its entry now says so, in the index's tick
    restat(index, root)
    assert not guard.index.unchanged(guard.index.mark(), tip)
    assert run_step(guard, tip, root, "pass") == ["train.py (changed; reset)"]
    assert (root / "train.py").read_text() == "LR = 0.1\n"


def test_unusual_states_ask_git(tmp_path: Path) -> None:
    root, guard, tip = tracked_repo(tmp_path)
    assert guard.index.unchanged(guard.index.mark(), tip)
    git(root, "gc", "-q", "--prune=now")  # the commit only in a pack: git reads it (a tree once read is kept)
    fresh = IndexView(root, root / ".git")
    assert not fresh.unchanged(fresh.mark(), tip) and guard.index.unchanged(guard.index.mark(), tip)
    git(root, "update-index", "--assume-unchanged", "train.py")  # git would not look at it
    assert not guard.index.unchanged(guard.index.mark(), tip)


def test_the_workspace_reads_a_clean_tree_from_the_index_and_still_reverts_an_edit(tmp_path: Path) -> None:
    """Before each proposal the workspace checks what changed since the last step. With a proposer
    that cannot touch the tree the check reads the index and stat data (no git process); a tracked
    file edited meanwhile (a hook, say), even at the same size with its mtime set back, is reverted
    and reported as before."""
    from autoresearch_tui.core.git import Git
    from autoresearch_tui.engine.config import load_config
    from autoresearch_tui.engine.workspace import Workspace

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_project

    project = make_project(tmp_path / "p", extra={"notes.txt": "alpha\n"})
    config = load_config(project, None, {"time_budget": "5s", "metric": "val_bpb:min", "tag": "t"})
    git(project, "checkout", "-q", "-b", config.branch)
    events: list = []
    repo = Git(project)
    ws = Workspace(config, repo, events.append, tmp_path / "session")
    best = repo.head()
    time.sleep(1.1)  # the index is older than its entries' racy window: the fast path applies
    assert ws._clean_at(best)
    ws.restore(best, None, 1)
    assert events == []
    notes = project / "notes.txt"
    st = notes.stat()
    notes.write_text("omega\n")
    os.utime(notes, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not ws._clean_at(best)
    ws.restore(best, None, 2)
    assert notes.read_text() == "alpha\n"
    assert [e.reverted for e in events] == [["notes.txt"]]
