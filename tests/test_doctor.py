"""`doctor` on projects that are not shaped like the samples: no prepare.py, a script that ignores
the time budget, a tag whose session already exists."""

from __future__ import annotations

from pathlib import Path

from conftest import FAKE_TRAIN, cli, git, make_project

FLAGS = ("--metric", "val_bpb:min", "--time-budget", "2s", "--device", "cpu")


def _line(stdout: str, name: str) -> str:
    return next(line for line in stdout.splitlines() if f" {name}: " in line)


def test_no_prepare_py_protects_nothing_extra_and_says_how(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    git(project, "rm", "-q", "prepare.py")
    git(project, "commit", "-q", "-m", "no prepare.py")
    result = cli("doctor", str(project), *FLAGS)
    line = _line(result.stdout, "read-only script")
    assert line.startswith("ok") and "no prepare.py" in line and "--readonly" in line and "reverted" in line
    assert result.returncode == 0, result.stdout
    # The loop starts there too (the default no longer names a missing file).
    run = cli("run", str(project), *FLAGS, "--max-iterations", "0", "--yes", "--headless")
    assert run.returncode == 0, run.stderr
    assert "Read-only script       | none" in run.stdout


def test_readonly_list_is_checked_file_by_file(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", extra={"data.py": "D = 1\n"})
    ok = cli("doctor", str(project), *FLAGS, "--readonly", "prepare.py,data.py")
    assert "prepare.py, data.py (hash-checked every iteration)" in _line(ok.stdout, "read-only script")
    bad = cli("doctor", str(project), *FLAGS, "--readonly", "prepare.py,nope.py")
    line = _line(bad.stdout, "read-only script")
    assert line.startswith("FAIL") and "nope.py does not exist" in line and bad.returncode == 1


def test_baseline_far_over_its_budget_is_flagged(tmp_path: Path) -> None:
    slow = "import time\ntime.sleep(7)\n" + FAKE_TRAIN  # ignores AUTORESEARCH_TIME_BUDGET
    project = make_project(tmp_path / "p", train=slow)
    result = cli("doctor", str(project), *FLAGS, "--baseline", "--baseline-budget", "0.5s")
    assert _line(result.stdout, "short baseline").startswith("ok")
    line = _line(result.stdout, "time budget honoured")
    assert line.startswith("warn") and "AUTORESEARCH_TIME_BUDGET" in line and "0.5s budget" in line
    quick = cli("doctor", str(make_project(tmp_path / "q")), *FLAGS, "--baseline", "--baseline-budget", "1s")
    assert "time budget honoured" not in quick.stdout
