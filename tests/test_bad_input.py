"""Bad input, as a user types it: the real CLI in a subprocess answers with one line and exit 2 —
never a traceback, never "internal error"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from conftest import cli, git, make_project

RUN = ["--time-budget", "1s", "--metric", "val_bpb:min", "--max-iterations", "1", "--yes", "--headless"]


def _bare(tmp: Path) -> Path:
    project = make_project(tmp / "src")
    git(tmp, "clone", "-q", "--bare", str(project), str(tmp / "bare.git"))
    return tmp / "bare.git"


def _tracked_link(tmp: Path) -> Path:
    project = make_project(tmp / "p")
    (project / "autoresearch-summary.md").symlink_to(tmp / "elsewhere.md")
    git(project, "add", "autoresearch-summary.md")
    git(project, "commit", "-q", "-m", "a link")
    return project


def _toml(text: str) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        return make_project(tmp / "p", extra={"autoresearch.toml": text})
    return setup


def _with_file(name: str, text: str) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        return make_project(tmp / "p", extra={name: text})
    return setup


def _a_file(tmp: Path) -> Path:
    (tmp / "f").write_text("x")
    return tmp / "f"


def _project(tmp: Path) -> Path:
    return make_project(tmp / "p")


def _index_lock(tmp: Path) -> Path:
    project = make_project(tmp / "p")
    (project / ".git" / "index.lock").write_text("")
    return project


def _with_session(tmp: Path) -> Path:
    project = make_project(tmp / "p")
    session = project / ".autoresearch" / "old"
    session.mkdir(parents=True)
    (session / "config.toml").write_text('tag = "old"\nmetric = "val_bpb:min"\ntime_budget = "1s"\n')
    git(project, "branch", "autoresearch/old")
    return project


def _results_link(tmp: Path) -> Path:
    project = make_project(tmp / "p")
    (project / "link.tsv").symlink_to(tmp / "target.tsv")
    return project


def _planted_session_link(tmp: Path) -> Path:
    project = make_project(tmp / "p")
    (tmp / "elsewhere").mkdir()
    (project / ".autoresearch").mkdir()
    (project / ".autoresearch" / "t1").symlink_to(tmp / "elsewhere")
    return project


def _nested_events(tmp: Path) -> Path:
    session = tmp / "s"
    session.mkdir()
    (session / "events.jsonl").write_text("[" * 100000 + "\n")
    return session


# (name, setup(tmp) -> path, argv with {p} for that path, words the line must hold)
CASES = [
    ("tag of 300 characters", _project, ["run", "{p}", *RUN, "--tag", "x" * 300], ["tag", "at most 64"]),
    ("time limit factor nan", _project, ["run", "{p}", *RUN, "--time-limit-factor", "nan"], ["time_limit_factor"]),
    ("time limit factor inf", _project, ["run", "{p}", *RUN, "--time-limit-factor", "inf"], ["time_limit_factor"]),
    ("time limit factor 1e308", _project, ["run", "{p}", *RUN, "--time-limit-factor", "1e308"], ["at most 100"]),
    ("time_budget = inf", _toml("time_budget = inf\n"), ["run", "{p}", "--metric", "val_bpb:min", "--yes",
                                                         "--headless"], ["time_budget", "line 1"]),
    ("metric_pattern ((", _toml('metric_pattern = "(("\n'), ["run", "{p}", *RUN], ["metric_pattern",
                                                                                   "regular expression"]),
    ("--config is a folder", _project, ["run", "{p}", *RUN, "--config", "{p}"], ["is a folder"]),
    ("bare repository: run", _bare, ["run", "{p}", *RUN], ["bare repository", "git clone"]),
    ("bare repository: doctor", _bare, ["doctor", "{p}"], ["bare repository"]),
    ("bare repository: wizard", _bare, ["{p}"], ["bare repository"]),
    ("unbalanced quote", _project, ["run", "{p}", *RUN, "--train-command", "python3 'train.py"], ["quotes"]),
    ("demo --dir is a file", _a_file,
     ["demo", "--headless", "--dir", "{p}"], ["is a file"]),
    ("stale index.lock", _index_lock, ["run", "{p}", *RUN], ["index.lock", "rm "]),
    ("noise_z = nan", _toml("noise_z = nan\n"), ["run", "{p}", *RUN], ["noise_z", "finite"]),
    ("max_cost = nan", _toml("max_cost = nan\n"), ["run", "{p}", *RUN], ["max_cost", "finite"]),
    ("gpus = a,b", _toml('gpus = "a,b"\n'), ["run", "{p}", *RUN], ["gpus", "GPU id"]),
    ("another --metric on --resume", _with_session, ["run", "{p}", "--resume", "--tag", "old", "--metric",
                                                     "acc:max", "--headless"], ["--metric", "val_bpb:min"]),
    ("--discard-pending without --resume", _project, ["run", "{p}", *RUN, "--discard-pending"], ["--resume"]),
    ("train_script in .git", _toml('train_script = ".git/config"\n'), ["run", "{p}", *RUN], [".git"]),
    ("summary of a folder", _project, ["summary", "{p}"], ["is a folder", "results.tsv"]),
    ("results in .git", _project, ["run", "{p}", *RUN, "--results", ".git/config"], ["results_file", ".git"]),
    ("results outside", _project, ["run", "{p}", *RUN, "--results", "../r.tsv"], ["outside the project"]),
    ("results a symlink", _results_link, ["run", "{p}", *RUN, "--results", "link.tsv"], ["symbolic link"]),
    ("results tracked", _project, ["run", "{p}", *RUN, "--results", "prepare.py"], ["tracked"]),
    ("session folder a symlink", _planted_session_link, ["run", "{p}", *RUN, "--tag", "t1"],
     ["session_dir", "symbolic link"]),
    ("session dir in .git", _project, ["run", "{p}", *RUN, "--session-dir", ".git/x"], ["session_dir", ".git"]),
    ("summary a tracked link", _tracked_link, ["run", "{p}", *RUN], ["autoresearch-summary.md", "link"]),
    ("summary tracked", _with_file("autoresearch-summary.md", "# old\n"), ["run", "{p}", *RUN],
     ["autoresearch-summary.md is tracked", "git rm --cached"]),
]


@pytest.mark.parametrize(("name", "setup", "argv", "needles"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, name, setup, argv, needles) -> None:
    path = setup(tmp_path)
    args = [a.replace("{p}", str(path)) for a in argv]
    result = cli(*args, cwd=tmp_path, env={"XDG_STATE_HOME": str(tmp_path / "state")}, timeout=60)
    err = result.stderr.strip()
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], err)
    assert "Traceback" not in result.stderr + result.stdout and "internal error" not in err, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_full_disk_is_one_line(tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC, as a full disk does: here it is the summary's stdout."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    results = tmp_path / "results.tsv"
    rows = "".join(f"a{i:06x}\t{1.0 + i / 100:.6f}\t0.0\tdiscard\texperiment {i}\n" for i in range(2000))
    results.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n" + rows)
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "autoresearch_tui", "summary", str(results)], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=60,
                                env={**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")})
    err = result.stderr.strip()
    assert result.returncode == 1 and len(err.splitlines()) == 1, err
    assert "no space left" in err and "internal error" not in err and "Traceback" not in err


def test_existing_session_points_to_resume_and_watch(tmp_path: Path) -> None:
    project = _with_session(tmp_path)
    result = cli("doctor", str(project), "--tag", "old", "--time-budget", "1s", "--metric", "val_bpb:min")
    line = next(l for l in result.stdout.splitlines() if "research branch free" in l)
    assert "run --resume --tag old" in line and "watch" in line and "pick another tag" in line
    (project / ".autoresearch" / "old" / "events.jsonl").write_text(json.dumps({"kind": "session_end"}) + "\n")
    result = cli("doctor", str(project), "--tag", "old", "--time-budget", "1s", "--metric", "val_bpb:min")
    line = next(l for l in result.stdout.splitlines() if "research branch free" in l)
    assert "finish screen" in line


def test_watch_skips_a_deeply_nested_event_line(tmp_path: Path) -> None:
    from autoresearch_tui.engine.events import SessionEnded

    session = _nested_events(tmp_path)
    with open(session / "events.jsonl", "a") as fh:
        fh.write(SessionEnded(reason="stopped", iterations=0, best_commit=None, best_metric=None).to_json() + "\n")
    result = cli("watch", "--headless", str(session), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert "stopped" in result.stdout


def test_an_error_inside_the_app_is_a_report_and_one_line(tmp_path: Path, monkeypatch, capfd) -> None:
    from textual.screen import Screen

    from autoresearch_tui.tui import launch
    from autoresearch_tui.tui.app import ResearchApp

    class Broken(Screen):
        def on_mount(self) -> None:
            raise RuntimeError("a bug in a screen")

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    code = launch._run(ResearchApp(lambda app: Broken()), headless=True)
    out, err = capfd.readouterr()
    assert code == 1
    assert "Traceback" not in out + err and "a bug in a screen" not in out
    assert err.strip().splitlines() == [err.strip()] and "RuntimeError: a bug in a screen" in err
    reports = list((tmp_path / "autoresearch-tui").glob("crash-*.log"))
    assert len(reports) == 1 and "a bug in a screen" in reports[0].read_text()
