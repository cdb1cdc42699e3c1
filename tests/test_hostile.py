"""The hostile corpus: training scripts and agents that attack the history, git, the terminal
and the keys, run through the real CLI on real git repositories (issue 12).

Each attack ends with the same checks: every kept commit is on the research branch (and has its
keep ref), the user's refs are unchanged, no planted hook ran or remains, no key is on disk,
and the working tree is clean.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from autoresearch_tui.engine.lock import SessionLock
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.errors import UserError
from conftest import FAKE_TRAIN, ROOT, cli, git, make_project

KEY = "sk-canary-" + uuid.uuid4().hex  # the agent's key (withheld from runs and hooks)
OTHER = "sk-other-" + uuid.uuid4().hex  # another *_API_KEY the run may see: scrubbed from its log
ENV = {"CANARY_KEY": KEY, "OTHER_API_KEY": OTHER, "PYTHONPATH": str(ROOT)}

# Shared by every attack: git without an identity, and a marker a planted hook would write.
PRELUDE = '''\
import os, subprocess, pathlib
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "evil", "GIT_AUTHOR_EMAIL": "e@e", "GIT_COMMITTER_NAME": "evil",
           "GIT_COMMITTER_EMAIL": "e@e"}
def g(*args):
    subprocess.run(["git", *args], env=GIT_ENV, capture_output=True)
def plant_hooks(marker):
    hooks = pathlib.Path(".git/hooks")
    for name in ("post-commit", "pre-commit", "reference-transaction", "post-checkout", "pre-auto-gc"):
        (hooks / name).write_text(f"#!/bin/sh\\necho {name} >> {marker}\\n")
        (hooks / name).chmod(0o755)
    fsmon = pathlib.Path(".git/fsmonitor.sh")
    fsmon.write_text(f"#!/bin/sh\\necho fsmonitor >> {marker}\\n")
    fsmon.chmod(0o755)
    with open(".git/config", "a") as fh:
        fh.write(f"[core]\\n\\tfsmonitor = {fsmon.resolve()}\\n[filter \\"evil\\"]\\n\\tclean = sh -c 'echo filter >> {marker}; cat'\\n")
    pathlib.Path(".git/info/attributes").write_text("*.py filter=evil\\n")
'''

TRAINING_ATTACKS = {
    "reset_hard": 'g("reset", "--hard", "HEAD~1")',
    "commit": 'pathlib.Path("evil.txt").write_text("x"); g("add", "evil.txt"); g("commit", "-qm", "evil");'
              ' g("commit", "--allow-empty", "-qm", "evil2")',
    "move_refs": 'g("branch", "-f", "main", "HEAD~1"); g("tag", "-f", "v1", "HEAD~1"); g("branch", "-D", "other");'
                 ' g("tag", "planted")',
    "switch_branch": 'g("checkout", "-q", "main"); pathlib.Path("prepare.py").write_text("TIME_BUDGET = 1\\n");'
                     ' pathlib.Path("stray.bin").write_text("junk")',
    "plant_hooks": 'plant_hooks(MARKER)',
    "dirty_tree": 'pathlib.Path("prepare.py").write_text("TIME_BUDGET = 1\\n"); pathlib.Path("stray.bin").write_text("x")',
    "escapes_and_keys": 'print("\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m red", os.environ.get("CANARY_KEY", "no-agent-key"),'
                        ' os.environ.get("OTHER_API_KEY"), flush=True)',
}

AGENT = '''\
import re, sys
{prelude}
MARKER = {marker!r}
sys.stdin.read()
{attack}
src = pathlib.Path("train.py").read_text()
lr = float(re.search(r"^LR = (.+)$", src, re.M).group(1))
pathlib.Path("train.py").write_text(src.replace(f"LR = {{lr}}", f"LR = {{round(lr * 1.5, 6)}}", 1))
{late}
print("working with", os.environ.get("CANARY_KEY"))
print("DESCRIPTION: \\x1b]0;pwned\\x07\\x1b[31mraise LR " + os.environ.get("CANARY_KEY", ""))
'''

# (before its edit, after its edit)
AGENT_ATTACKS = {
    "branch_back": ('g("update-ref", "HEAD", "HEAD~1")', ""),  # the last keep drops off the branch
    "commit": ("", 'g("commit", "-qam", "agent commit"); g("tag", "-f", "v1")'),
    "move_refs": ('g("branch", "-f", "main", "HEAD~1"); g("tag", "-d", "v1"); g("branch", "planted")', ""),
    "switch_branch": ("", 'g("stash", "-q"); g("checkout", "-q", "-b", "agent-branch"); g("stash", "pop")'),
    "plant_hooks": ("plant_hooks(MARKER)", ""),
}


def hostile_project(tmp_path: Path, attack: str = "") -> Path:
    marker = tmp_path / "hook-ran"
    body = f"{PRELUDE}MARKER = {str(marker)!r}\n{attack}\n"
    train = FAKE_TRAIN.replace('print("---")', body + 'print("---")')
    project = make_project(tmp_path / "p", train=train)
    (project / "notes.txt").write_text("second commit, so HEAD~1 exists\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "second")
    git(project, "tag", "v1")
    git(project, "branch", "other")
    return project


def user_refs(project: Path) -> dict[str, str]:
    out = git(project, "for-each-ref", "--format=%(refname) %(objectname)")
    pairs = dict(line.split(" ") for line in out.splitlines())
    return {r: s for r, s in pairs.items() if not r.startswith(("refs/heads/autoresearch/", "refs/autoresearch/"))}


def git_code(project: Path) -> dict[str, bytes]:
    git_dir = project / ".git"
    files = {"config": (git_dir / "config").read_bytes()}
    for folder in ("hooks", "info"):
        for path in sorted((git_dir / folder).rglob("*")):
            files[path.relative_to(git_dir).as_posix()] = path.read_bytes() if path.is_file() else b"<dir>"
    files.pop("info/exclude", None)  # the engine adds its own files there at session start
    return files


def run(project: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
               "--max-iterations", "2", "--tag", "t1", "--device", "cpu", "--agent-key-env", "CANARY_KEY",
               *extra, env=ENV, timeout=timeout)


def assert_trusted(project: Path, result: subprocess.CompletedProcess, refs: dict, code: dict, tmp_path: Path):
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "internal error" not in out
    # Every kept commit is on the branch, with its own ref; the branch ends on the last keep.
    rows = read_results(project / "results.tsv").rows
    assert len(rows) == 3, rows
    tip = git(project, "rev-parse", "refs/heads/autoresearch/t1")
    keeps = [(n, row) for n, row in enumerate(rows) if row.status == "keep"]
    assert keeps and git(project, "rev-parse", keeps[-1][1].commit) == tip
    for n, row in keeps:
        full = git(project, "rev-parse", row.commit)
        subprocess.run(["git", "merge-base", "--is-ancestor", full, tip], cwd=project, check=True)
        assert git(project, "rev-parse", f"refs/autoresearch/t1/keep/{n}") == full
    assert git(project, "symbolic-ref", "HEAD") == "refs/heads/autoresearch/t1"
    # The user's refs, hooks and config are as they were; no planted hook ever ran.
    assert user_refs(project) == refs
    assert git_code(project) == code
    assert not (tmp_path / "hook-ran").exists(), (tmp_path / "hook-ran").read_text()
    # No key anywhere on disk, in commit messages or on the terminal; no escape either.
    for path in [*project.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert KEY.encode() not in data and OTHER.encode() not in data, path
    messages = git(project, "log", "--all", "--format=%B")
    assert KEY not in messages and "\x1b" not in messages
    assert KEY not in out and OTHER not in out and "\x1b" not in result.stdout
    assert "\x1b" not in (project / "results.tsv").read_text()
    assert "\x1b" not in (project / "autoresearch-summary.md").read_text()
    # The working tree is clean.
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.parametrize("name", sorted(TRAINING_ATTACKS))
def test_hostile_training_script(tmp_path: Path, name: str) -> None:
    project = hostile_project(tmp_path, TRAINING_ATTACKS[name])
    refs, code = user_refs(project), git_code(project)
    result = run(project)
    assert_trusted(project, result, refs, code, tmp_path)
    session = project / ".autoresearch" / "t1"
    logs = "".join(p.read_text(errors="replace") for p in (session / "runs").glob("*.log"))
    if name == "escapes_and_keys":
        assert "no-agent-key" in logs  # the agent's key variable never reached the run
        assert "[key removed]" in logs  # another key it saw was cut from its log
    if name == "dirty_tree":  # the run's edit is reset after it; its stray file moved aside at the end
        assert "prepare.py (changed; reset) (the training run changed the repository" in result.stdout
        assert (session / "stray" / "stray.bin").exists()
    if name != "escapes_and_keys":
        assert "guardrail" in result.stdout and "restored" in result.stdout, result.stdout


@pytest.mark.parametrize("name", sorted(AGENT_ATTACKS))
def test_hostile_agent(tmp_path: Path, name: str) -> None:
    agent_session(tmp_path, name, pipeline="off")


@pytest.mark.parametrize("name", ["commit", "move_refs"])
def test_hostile_agent_preparing_while_a_run_trains(tmp_path: Path, name: str) -> None:
    agent_session(tmp_path, name, pipeline="on")  # the agent works in a worktree during the run


def agent_session(tmp_path: Path, name: str, pipeline: str) -> None:
    project = hostile_project(tmp_path)
    marker = tmp_path / "hook-ran"
    agent = tmp_path / "agent.py"
    early, late = AGENT_ATTACKS[name]
    agent.write_text(AGENT.format(prelude=PRELUDE, marker=str(marker), attack=early, late=late))
    refs, code = user_refs(project), git_code(project)
    result = run(project, "--agent", "command", "--agent-cmd", f"{sys.executable} {agent}", "--pipeline", pipeline)
    assert_trusted(project, result, refs, code, tmp_path)
    rows = read_results(project / "results.tsv").rows
    assert rows[1].description.startswith("raise LR"), rows[1]
    assert "guardrail" in result.stdout, result.stdout
    agent_logs = "".join(p.read_text() for p in (project / ".autoresearch" / "t1" / "agents").glob("*.log"))
    assert "working with [key removed]" in agent_logs


@pytest.mark.slow  # a minute of processes that try to survive
def test_no_process_survives_its_run(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    attack = (f'import sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n'
              f'        open({str(pids)!r}, "a").write(f"{{os.getpid()}}\\n")\n'
              f'        os.execvp("sleep", ["sleep", "300"])\n    os._exit(0)\n')
    project = hostile_project(tmp_path, attack)
    result = run(project)
    assert result.returncode == 0, result.stdout + result.stderr
    alive = [int(p) for p in pids.read_text().split() if running(int(p))]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert alive == []


def running(pid: int) -> bool:
    """A zombie is dead: here nobody may reap an orphan (PID 1 of a container need not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# -- 1. one session per repository ---------------------------------------------------------

def slow_project(tmp_path: Path, seconds: float) -> Path:
    """The baseline is quick; every later run sleeps `seconds` (a marker outside the tree)."""
    flag = tmp_path / "baseline-done"
    train = FAKE_TRAIN.replace('print("---")', f'import pathlib\nflag = pathlib.Path({str(flag)!r})\n'
                                              f'time.sleep({seconds} if flag.exists() else 0)\n'
                                              f'flag.touch()\nprint("---")')
    return make_project(tmp_path / "p", train=train)


def start_engine(project: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "autoresearch_tui", "run", str(project), "--headless", "--yes", "--time-budget",
            "60s", "--metric", "val_bpb:min", "--tag", "t1", "--device", "cpu", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **ENV})


def wait_event(project: Path, predicate, proc: subprocess.Popen, timeout: float = 120) -> dict:
    path = project / ".autoresearch" / "t1" / "events.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                event = json.loads(line)
                if predicate(event):
                    return event
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("event not seen")


def test_second_session_in_a_repository_is_refused(tmp_path: Path) -> None:
    project = slow_project(tmp_path, 60)
    proc = start_engine(project)
    try:
        wait_event(project, lambda e: e["kind"] == "run_start" and e["iteration"] == 1, proc)
        for args in (["--tag", "t2"], ["--resume", "--tag", "t1"]):
            second = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric",
                         "val_bpb:min", *args, env=ENV)
            assert second.returncode == 2, second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
            assert "tag t1" in second.stderr and "autoresearch-tui watch" in second.stderr
        assert not (project / ".autoresearch" / "t2").exists()
        assert "autoresearch/t2" not in git(project, "branch")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=120)


def test_stale_lock_is_taken_over_but_a_live_one_is_not(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    path = project / ".git" / "autoresearch.lock"
    # Our own pid with another start time: the pid was reused, the session that wrote it is gone.
    path.write_text(json.dumps({"pid": os.getpid(), "start_time": 1.0, "tag": "old"}))
    lock = SessionLock.acquire(project, "t1", project / ".autoresearch" / "t1")
    assert lock is not None and json.loads(path.read_text())["tag"] == "t1"
    lock.release()
    # A live holder named in the file refuses even where the flock itself is not held.
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        started = psutil.Process(sleeper.pid).create_time()
        path.write_text(json.dumps({"pid": sleeper.pid, "start_time": started, "tag": "live",
                                    "session": ".autoresearch/live"}))
        with pytest.raises(UserError, match="tag live .*autoresearch-tui watch .autoresearch/live"):
            SessionLock.acquire(project, "t1", project / ".autoresearch" / "t1")
    finally:
        sleeper.kill()
        sleeper.wait()


# -- 9. signals ----------------------------------------------------------------------------

def test_group_sigterm_stops_cleanly(tmp_path: Path) -> None:
    project = slow_project(tmp_path, 50)
    proc = start_engine(project)
    wait_event(project, lambda e: e["kind"] == "run_start" and e["iteration"] == 1, proc)
    os.killpg(proc.pid, signal.SIGTERM)  # systemd, `timeout`, `kill -- -PGID`: the whole group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "internal error" not in err and "BrokenPipe" not in err
    rows = read_results(project / "results.tsv").rows
    assert [r.status for r in rows] == ["keep", "discard"]
    assert git(project, "rev-parse", "autoresearch/t1") == git(project, "rev-parse", rows[0].commit)
    assert git(project, "status", "--porcelain") == ""


def test_control_stop_twice_lets_the_run_finish(tmp_path: Path) -> None:
    project = slow_project(tmp_path, 4)
    proc = start_engine(project, "--max-iterations", "5")
    try:
        wait_event(project, lambda e: e["kind"] == "run_start" and e["iteration"] == 1, proc)
        session = str(project / ".autoresearch" / "t1")
        for _ in range(2):
            assert cli("control", session, "stop").returncode == 0
        wait_event(project, lambda e: e["kind"] == "session_end", proc)
    finally:
        proc.communicate(timeout=120)
    rows = read_results(project / "results.tsv").rows
    assert len(rows) == 2 and rows[1].metric is not None and "killed" not in rows[1].description


def test_review_headless(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    refused = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
                  "--review")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "--review" in refused.stderr
    # Review from a config file (as the live screen starts it): a stop is still answered.
    config = tmp_path / "review.toml"
    config.write_text("review = true\nmax_iterations = 3\n")
    proc = start_engine(project, "--config", str(config))
    wait_event(project, lambda e: e["kind"] == "review", proc)
    assert cli("control", str(project / ".autoresearch" / "t1"), "stop").returncode == 0
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert git(project, "status", "--porcelain") == ""


# -- 4. paths ------------------------------------------------------------------------------

def test_planted_symlinks_are_never_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    attack = (f'for name in ("autoresearch-summary.md",):\n'
              f'    p = pathlib.Path(name)\n    p.unlink(missing_ok=True)\n    p.symlink_to({str(outside)!r})\n')
    project = hostile_project(tmp_path, attack)
    result = run(project)
    assert result.returncode == 0, result.stderr
    assert outside.read_text() == "precious\n"
    summary = project / "autoresearch-summary.md"
    assert not summary.is_symlink() and "val_bpb" in summary.read_text()
    # results.tsv swapped for a symlink mid-session: the write is refused, the target untouched.
    attack = (f'p = pathlib.Path("results.tsv")\nif p.exists() and not p.is_symlink():\n'
              f'    p.unlink()\n    p.symlink_to({str(outside)!r})\n')
    project = hostile_project(tmp_path / "second", attack)
    result = run(project)
    assert result.returncode == 1 and "symlink" in result.stderr and "internal error" not in result.stderr
    assert outside.read_text() == "precious\n"


# -- 5. one session's rows -----------------------------------------------------------------

def test_each_session_has_its_own_results(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")

    def session(tag: str, *extra: str) -> None:
        result = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
                     "--max-iterations", "1", "--tag", tag, "--device", "cpu", *extra, env=ENV)
        assert result.returncode == 0, result.stderr
        git(project, "checkout", "-q", "main")

    session("t1")
    session("t2")
    rows = read_results(project / "results.tsv").rows
    assert [r.status for r in rows][0] == "keep" and len(rows) == 2  # one baseline: t2's own
    assert len(read_results(project / ".autoresearch" / "t1" / "results.tsv").rows) == 2
    assert "Baseline" in (project / "autoresearch-summary.md").read_text() or rows
    result = cli("run", str(project), "--resume", "--tag", "t1", "--max-iterations", "2", env=ENV)
    assert result.returncode == 0, result.stderr
    assert len(read_results(project / "results.tsv").rows) == 3  # t1's two rows and its new one
    assert len(read_results(project / ".autoresearch" / "t2" / "results.tsv").rows) == 2


# -- 6. foreign files with escapes ---------------------------------------------------------

def test_foreign_files_with_escapes_are_inert(tmp_path: Path) -> None:
    tsv = tmp_path / "results.tsv"
    tsv.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                   "abc1234\t1.000000\t1.0\tkeep\tbaseline \x1b]0;pwned\x07\n"
                   "def5678\t0.900000\t1.0\tkeep\t\x1b[2J\x1b[31mred\x9b31m \x07bell\n")
    for fmt in ("md", "csv", "latex"):
        out = cli("summary", str(tsv), "--format", fmt)
        assert out.returncode == 0, out.stderr
        assert not any(c in out.stdout for c in "\x1b\x07\x9b"), (fmt, out.stdout)
        assert "red" in out.stdout
    session = tmp_path / "s"
    session.mkdir()
    events = [{"kind": "notice", "message": "\x1b]0;pwned\x07hello \x1b[31mred", "level": "info", "ts": 1.0},
              {"kind": "session_end", "reason": "stopped\x1b[2J", "iterations": 0, "best_commit": None,
               "best_metric": None, "ts": 2.0}]
    (session / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    out = cli("watch", str(session), "--headless")
    assert out.returncode == 0 and "hello red" in out.stdout
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout


# -- 7. keys -------------------------------------------------------------------------------

def test_hooks_never_see_the_agent_key(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    dump = tmp_path / "hook-env.txt"
    config = tmp_path / "hooks.toml"
    config.write_text(f"on_finish = \"env > '{dump}.tmp' && mv '{dump}.tmp' '{dump}'\"\n")
    result = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
                 "--max-iterations", "1", "--tag", "t1", "--device", "cpu", "--agent-key-env", "CANARY_KEY",
                 "--config", str(config), env=ENV)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 30
    while not dump.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    env = dump.read_text()
    assert "AUTORESEARCH_REASON=max_iterations" in env
    assert KEY not in env and "CANARY_KEY" not in env
    assert OTHER in env  # the run's own keys (W&B and the like) are the user's business


def test_control_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "events.jsonl").write_text("")
    target = outside / "target.txt"
    target.write_text("precious\n")
    sessions = project / ".autoresearch"
    sessions.mkdir()
    real = sessions / "real"
    real.mkdir()
    (real / "events.jsonl").write_text("")
    (real / "control.jsonl").symlink_to(target)
    (sessions / "linked").symlink_to(outside)  # a whole session folder swapped for a link
    for session in (real, sessions / "linked"):
        result = cli("control", str(session), "stop")
        assert result.returncode == 1 and "symlink" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert target.read_text() == "precious\n" and not (outside / "control.jsonl").exists()
