"""The command line as a user meets it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli, git, make_project, real_results_files

BASE = ["--time-budget", "1s", "--metric", "val_bpb:min", "--max-iterations", "1", "--yes", "--headless"]


def assert_bad_input(result, *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_help_everywhere() -> None:
    for args in ([], ["run"], ["demo"], ["summary"], ["watch"], ["replay"], ["instruct"]):
        result = cli(*args, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout


def test_missing_project(tmp_path: Path) -> None:
    assert_bad_input(cli("run", str(tmp_path / "nope"), *BASE), "does not exist")


def test_not_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("X = 1\n")
    (tmp_path / "prepare.py").write_text("Y = 1\n")
    assert_bad_input(cli("run", str(tmp_path), *BASE), "not a git repository", "git init")


def test_dirty_tree(project: Path) -> None:
    (project / "train.py").write_text("LR = 5\n")
    assert_bad_input(cli("run", str(project), *BASE), "uncommitted changes", "train.py")


def test_detached_head(project: Path) -> None:
    git(project, "checkout", "-q", "--detach")
    assert_bad_input(cli("run", str(project), *BASE), "detached")


def test_tag_already_used(project: Path) -> None:
    git(project, "branch", "autoresearch/used")
    assert_bad_input(cli("run", str(project), *BASE, "--tag", "used"), "already exists", "--resume")


def test_invalid_tag(project: Path) -> None:
    assert_bad_input(cli("run", str(project), *BASE, "--tag", "bad tag"), "tag", "valid branch name")


def test_train_equals_readonly(project: Path) -> None:
    assert_bad_input(cli("run", str(project), *BASE, "--readonly", "train.py"), "same file")


def test_train_outside_repository(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text("X = 1\n")
    assert_bad_input(cli("run", str(project), *BASE, "--train", str(outside)), "outside the project")


def test_missing_train_script(project: Path) -> None:
    assert_bad_input(cli("run", str(project), *BASE, "--train", "nothere.py"), "nothere.py", "does not exist")


@pytest.mark.parametrize("budget", ["0", "-5m", "five minutes"])
def test_bad_budgets(project: Path, budget: str) -> None:
    args = [f"--time-budget={budget}", "--metric", "val_bpb:min", "--yes", "--headless"]
    assert_bad_input(cli("run", str(project), *args), "time_budget", "5m")


def test_missing_budget(project: Path) -> None:
    assert_bad_input(cli("run", str(project), "--metric", "val_bpb:min", "--yes", "--headless"),
                     "time_budget is not set")


@pytest.mark.parametrize("metric,needle", [("val_bpb", "needs a direction"), ("val_bpb:up", "unknown direction")])
def test_bad_metrics(project: Path, metric: str, needle: str) -> None:
    args = ["--time-budget", "1s", "--metric", metric, "--yes", "--headless"]
    assert_bad_input(cli("run", str(project), *args), "metric", needle)


def test_unparseable_toml_names_the_line(project: Path) -> None:
    (project / "autoresearch.toml").write_text('metric = "val_bpb:min"\ntime_budget = [oops\n')
    assert_bad_input(cli("run", str(project), "--yes", "--headless"), "autoresearch.toml", "line 2")


def test_wrongly_typed_toml_names_key_and_line(project: Path) -> None:
    (project / "autoresearch.toml").write_text('metric = "val_bpb:min"\ntime_budget = "5m"\nmax_iterations = "lots"\n')
    assert_bad_input(cli("run", str(project), "--yes", "--headless"), "line 3", "max_iterations", "whole number")


def test_unknown_toml_key(project: Path) -> None:
    (project / "autoresearch.toml").write_text('metrc = "val_bpb:min"\n')
    assert_bad_input(cli("run", str(project), "--yes", "--headless"), "unknown key 'metrc'", "metric")


def test_training_command_not_found(project: Path) -> None:
    assert_bad_input(cli("run", str(project), *BASE, "--train-command", "no-such-python train.py"),
                     "no-such-python", "not found")


def test_results_file_tracked_by_git(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", extra={"results.tsv": "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"})
    assert_bad_input(cli("run", str(project), *BASE), "tracked by git")


@pytest.mark.slow  # runs an engine
def test_headless_run_end_to_end(project: Path) -> None:
    result = cli("run", str(project), *BASE[:4], "--max-iterations", "2", "--yes", "--headless", "--tag", "e2e")
    assert result.returncode == 0, result.stderr
    assert "AutoResearch Config" in result.stdout and "session ended" in result.stdout
    rows = (project / "results.tsv").read_text().splitlines()
    assert rows[0] == "commit\tval_bpb\tmemory_gb\tstatus\tdescription" and len(rows) == 4


@pytest.mark.slow  # runs an engine
def test_baseline_crash_exits_1(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", "raise SystemExit('no data')\n")
    result = cli("run", str(project), *BASE)
    assert result.returncode == 1
    assert "baseline crashed" in result.stdout


def test_summary_of_real_results(tmp_path: Path) -> None:
    files = real_results_files()
    if not files:
        pytest.skip("no real results beside the repository")
    for path in files:
        out = tmp_path / f"{path.stem}.md"
        result = cli("summary", str(path), "-o", str(out))
        assert result.returncode == 0, result.stderr
        text = out.read_text()
        assert "# AutoResearch Summary" in text and "## What Didn't Work" in text


def test_summary_formats_and_bad_files(tmp_path: Path) -> None:
    files = real_results_files()
    if files:
        latex = cli("summary", str(files[0]), "--format", "latex")
        assert latex.returncode == 0 and "\\begin{tabular}" in latex.stdout
    assert_bad_input(cli("summary", str(tmp_path / "missing.tsv")), "does not exist")
    binary = tmp_path / "binary.tsv"
    binary.write_bytes(bytes(range(256)) * 20)
    assert_bad_input(cli("summary", str(binary)))
    prose = tmp_path / "notes.tsv"
    prose.write_text("just some notes\nnothing tabular here\n")
    assert_bad_input(cli("summary", str(prose)), "commit")


@pytest.mark.slow  # runs an engine
@pytest.mark.parametrize("printed", ["val_bpb: nan", "val_bpb: inf", "val_loss: 1.0"])
def test_metric_never_printed_or_not_finite_is_bad_input(tmp_path: Path, printed: str) -> None:
    project = make_project(tmp_path / "p", f"print('---')\nprint('{printed}')\n")
    result = cli("run", str(project), *BASE)
    assert result.returncode == 2, result.stderr
    assert "check --metric" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow  # runs an engine
def test_doctor_reports_each_check(project: Path) -> None:
    good = cli("doctor", str(project), "--metric", "val_bpb:min", "--time-budget", "2s", "--device", "cpu",
               "--baseline", "--baseline-budget", "1s")
    assert good.returncode == 0, good.stdout + good.stderr
    lines = good.stdout.splitlines()
    assert any(line.startswith("ok    short baseline: val_bpb = ") for line in lines)
    assert all(line.split()[0] in ("ok", "warn") for line in lines)
    (project / "train.py").write_text("LR = 1\n")
    bad = cli("doctor", str(project), "--metric", "val_bpb:min", "--time-budget", "2s", "--device", "cpu")
    assert bad.returncode == 1
    assert "FAIL  clean working tree: uncommitted changes (train.py)" in bad.stdout


@pytest.mark.slow  # runs an engine
def test_files_are_never_world_writable_even_with_umask_0(project: Path) -> None:
    import stat
    import subprocess
    import sys

    cmd = (f"umask 000; exec {sys.executable} -m autoresearch_tui run {project} --headless --yes "
           "--time-budget 1s --metric val_bpb:min --max-iterations 1 --device cpu")
    result = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    written = [project / "results.tsv", project / "autoresearch-summary.md", *(project / ".autoresearch").rglob("*")]
    assert len(written) > 8
    for path in written:
        assert not path.stat().st_mode & stat.S_IWOTH, path


@pytest.mark.slow  # runs an engine
def test_headless_run_with_two_workers(project: Path) -> None:
    result = cli("run", str(project), "--headless", "--yes", "--time-budget", "2s", "--metric", "val_bpb:min",
                 "--max-iterations", "4", "--workers", "2", "--device", "cpu", "--tag", "par")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on worker 1" in result.stdout
    rows = (project / "results.tsv").read_text().splitlines()[1:]
    assert len(rows) == 5
    head = git(project, "rev-parse", "autoresearch/par")
    import subprocess

    for row in rows:
        commit, status = row.split("\t")[0], row.split("\t")[3]
        ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", commit, head], cwd=project).returncode == 0
        assert ancestor == (status == "keep"), row


@pytest.mark.slow  # runs an engine
def test_max_iterations_zero_runs_the_baseline_only(project: Path) -> None:
    result = cli("run", str(project), *BASE[:4], "--max-iterations", "0", "--yes", "--headless", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert len((project / "results.tsv").read_text().splitlines()) == 2
    assert "| Max iterations         | 0 " in result.stdout


def test_replay_of_a_file_that_is_not_a_results_table(tmp_path: Path) -> None:
    binary = tmp_path / "binary.tsv"
    binary.write_bytes(b"\x00\x01\x02binary" * 50)
    assert_bad_input(cli("replay", str(binary)), "binary")
    prose = tmp_path / "notes.tsv"
    prose.write_text("just prose\n")
    assert_bad_input(cli("replay", str(prose)), "commit")
    assert_bad_input(cli("replay", str(tmp_path / "missing.tsv")), "does not exist")
