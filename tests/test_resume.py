"""Resume after a stop or a SIGKILL at any instant: nothing measured is lost, the loop goes on."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.engine.session import SessionDir

from conftest import FAKE_TRAIN, cli, git, make_project

pytestmark = pytest.mark.slow  # starts engines or real training runs

ARGS = ["--time-budget", "5s", "--metric", "val_bpb:min", "--yes", "--headless", "--device", "cpu", "--tag", "night"]


def _is_ancestor(project: Path, a: str, b: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=project).returncode == 0


def check_invariants(project: Path, complete: bool = True) -> None:
    session = SessionDir(project / ".autoresearch" / "night")
    events = session.events()
    rows = read_results(project / "results.tsv").rows
    recorded = [e for e in events if isinstance(e, ev.ResultRecorded)]
    # Every completed experiment has exactly one row, and rows match events one to one.
    iterations = [e.iteration for e in recorded]
    assert len(iterations) == len(set(iterations)), iterations
    assert [r.commit for r in rows] == [e.commit[:7] for e in recorded]
    assert iterations == sorted(iterations)
    head = git(project, "rev-parse", "autoresearch/night")
    for row in rows:
        full = git(project, "rev-parse", row.commit)
        assert _is_ancestor(project, full, head) == (row.status == "keep"), (row, rows)
    assert git(project, "status", "--porcelain") == ""
    if complete:
        assert any(isinstance(e, ev.SessionEnded) for e in events)
        assert iterations == list(range(len(iterations)))


def test_resume_continues_where_it_stopped(project: Path) -> None:
    first = cli("run", str(project), *ARGS, "--max-iterations", "2")
    assert first.returncode == 0, first.stderr
    git(project, "checkout", "-q", "main")  # the user wandered off meanwhile
    again = cli("run", str(project), "--resume", "--max-iterations", "4", "--headless")
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stdout
    rows = read_results(project / "results.tsv").rows
    assert len(rows) == 5 and rows[0].description == "baseline"
    starts = [e for e in SessionDir(project / ".autoresearch" / "night").events() if isinstance(e, ev.SessionStarted)]
    assert [s.resumed for s in starts] == [False, True]
    check_invariants(project)


def test_resume_without_session_is_bad_input(project: Path) -> None:
    result = cli("run", str(project), "--resume", "--headless")
    assert result.returncode == 2 and "no session" in result.stderr


def test_resume_repairs_a_missing_row_and_a_pending_experiment(project: Path) -> None:
    assert cli("run", str(project), *ARGS, "--max-iterations", "2").returncode == 0
    results = project / "results.tsv"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:-1]))  # the last row "lost"
    # An experiment committed but never evaluated (the engine died during its run).
    train = (project / "train.py").read_text()
    width = int(re.search(r"^WIDTH = (\d+)", train, re.M).group(1))  # whatever the proposer left
    (project / "train.py").write_text(re.sub(r"^WIDTH = \d+", f"WIDTH = {width + 4}", train, flags=re.M))
    git(project, "commit", "-qam", f"exp: WIDTH {width} -> {width + 4}")
    out = cli("run", str(project), "--resume", "--max-iterations", "3", "--headless")
    assert out.returncode == 0, out.stderr
    assert "restored 1 missing results.tsv row" in out.stdout
    assert "committed but not evaluated" in out.stdout
    rows = read_results(results).rows
    assert len(rows) == 4 and rows[3].description == f"WIDTH {width} -> {width + 4}"
    check_invariants(project)


def _engine(project: Path, resume: bool) -> subprocess.Popen:
    args = ["run", str(project), "--resume", "--headless"] if resume else ["run", str(project), *ARGS,
                                                                           "--max-iterations", "6"]
    return subprocess.Popen([sys.executable, "-m", "autoresearch_tui", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _ended(project: Path) -> bool:
    session = SessionDir(project / ".autoresearch" / "night")
    return any(isinstance(e, ev.SessionEnded) for e in session.events())


@pytest.mark.timeout(600)
def test_fault_injection_sigkill_at_random_instants(tmp_path: Path) -> None:
    """SIGKILL the headless engine at 30+ random instants, resume each time, check the invariants."""
    rng = random.Random(int(os.environ.get("AUTORESEARCH_FAULT_SEED", "1234")))
    train = FAKE_TRAIN.replace("SLEEP = 0.05", "SLEEP = 0.15")
    kills, sessions = 0, 0
    while kills < 30:
        sessions += 1
        project = make_project(tmp_path / f"s{sessions}", train)
        resume = False
        for attempt in range(40):
            proc = _engine(project, resume)
            delay = rng.uniform(0.05, 2.0)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
            else:
                assert proc.returncode == 0, proc.stderr.read()
            if (project / ".autoresearch" / "night" / "config.toml").exists():
                resume = True
                if _ended(project):
                    break
            elif git(project, "branch", "--list", "autoresearch/night"):
                pytest.fail("branch created without a resumable session")
        else:
            pytest.fail("the session never completed")
        time.sleep(0.2)  # let an orphaned fake run notice its closed pipe
        check_invariants(project)
        rows = read_results(project / "results.tsv").rows
        assert len(rows) == 7
    assert kills >= 30


def test_headless_loop_survives_its_terminal_going_away(project: Path) -> None:
    """SIGHUP (the SSH connection dropped) must not end the night."""
    train = FAKE_TRAIN.replace("SLEEP = 0.05", "SLEEP = 0.4")
    (project / "train.py").write_text(train)
    git(project, "commit", "-qam", "slower")
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch_tui", "run", str(project), *ARGS,
                             "--max-iterations", "3"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    session = SessionDir(project / ".autoresearch" / "night")
    deadline = time.time() + 30
    while time.time() < deadline and not any(isinstance(e, ev.RunStarted) for e in session.events()):
        time.sleep(0.1)
    proc.stdout.close()  # the terminal is gone: writes to it fail from now on
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=60) == 0
    check_invariants(project)
    assert len(read_results(project / "results.tsv").rows) == 4
