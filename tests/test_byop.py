"""Bring your own project: the compute contract, inert edits, the breaker, and the itergpt sample."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_tui.agents.base import Proposal
from autoresearch_tui.engine import contract, events as ev, inert
from autoresearch_tui.engine.results import read_results

from conftest import FAKE_TRAIN, Scripted, cli, git, make_project, run_engine

SAMPLES = Path(__file__).resolve().parent.parent / "sample_projects"

# Trains for a count of busy-loop steps: more ITERS = more compute and a better metric.
ITER_TRAIN = '''\
import math, os, sys
ITERS = 6_000_000
LR = 0.1
x = 0
for i in range(ITERS):
    x += i * i
loss = 1.0 / math.log10(ITERS)
print(f"step {ITERS}: train loss {loss:.6f}, val loss {loss + 0.01:.6f}")
value = abs(math.log10(LR) - math.log10(0.4)) + 10.0 / math.log10(ITERS)
print(f"val_bpb: {value:.6f}")
'''
# The same script under the time-budget contract (it reads the budget variable).
BUDGET_TRAIN = ITER_TRAIN.replace("x = 0\n", "x = 0\nbudget = float(os.environ['AUTORESEARCH_TIME_BUDGET'])\n")

pytestmark = pytest.mark.slow  # engine sessions on sample-like projects


def notices(events: list[ev.Event]) -> list[str]:
    return [e.message for e in events if isinstance(e, ev.Notice)]


def summary_of(project: Path) -> str:
    return (project / "autoresearch-summary.md").read_text()


# -- static detection ------------------------------------------------------------------------

def test_contract_of_the_samples(tmp_path: Path) -> None:
    itergpt = contract.detect(SAMPLES / "itergpt")
    assert itergpt.by_iterations and not itergpt.reads_budget and not itergpt.reads_batch_scale
    assert contract.BATCH_SCALE_VAR in itergpt.unread
    tinygpt = contract.detect(SAMPLES / "tinygpt")
    assert tinygpt.reads_budget and not tinygpt.by_iterations and tinygpt.reads_batch_scale
    # The reference keeps its own TIME_BUDGET in prepare.py: a clock holds compute there too.
    ref = make_project(tmp_path / "ref", "print('val_bpb: 1.0')\n", "TIME_BUDGET = 300\n")
    assert not contract.detect(ref).by_iterations
    argv = ["python", "train.py", "config/x.py", "--learning_rate=2e-3", "--n_layer=4", "--compile"]
    assert contract.command_overrides(argv) == ["learning_rate", "n_layer"]


def test_hard_limit_allows_for_the_measured_start_up() -> None:
    # 4 s budget, 9 s baseline of which 4 s training: 5 s start-up and evaluation on top.
    assert contract.limit_after_baseline(4, 2, 9.0, 4.0) == 18.0
    # A script that ignores the budget (30 s of training for 4 s) is allowed 2x its own run.
    assert contract.limit_after_baseline(4, 2, 33.0, 30.0) == 66.0
    assert contract.baseline_limit(4, 2) == 8 + contract.BASELINE_STARTUP_S


def test_fingerprint_ignores_timings_but_not_losses() -> None:
    a = "\rstep 00001 | loss: 3.500000 | dt: 312ms | tok/sec: 1,680,000\nstep 50: train loss 3.1, val loss 3.2\n"
    b = a.replace("312ms", "297ms").replace("1,680,000", "1,702,113")
    assert inert.fingerprint(a, 1.0) == inert.fingerprint(b, 1.0)
    assert inert.fingerprint(a, 1.0) != inert.fingerprint(a.replace("3.500000", "3.500001"), 1.0)
    assert inert.fingerprint(a, 1.0) != inert.fingerprint(a, 1.1)


def test_doctor_reports_held_names_and_the_budget_contract(tmp_path: Path) -> None:
    project = tmp_path / "itergpt"
    shutil.copytree(SAMPLES / "itergpt", project)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "init")
    out = cli("doctor", "--train", "config/train_default.py", "--readonly", "model.py", "--metric", "val_loss:min",
              "--time-budget", "10s", "--train-command",
              "python train.py config/train_default.py --learning_rate=2e-3", cwd=project)
    assert "held by the train command: learning_rate" in out.stdout, out.stdout + out.stderr
    assert "does not read AUTORESEARCH_TIME_BUDGET" in out.stdout
    assert "not read by the script: AUTORESEARCH_COMPILE" in out.stdout


# -- the engine ------------------------------------------------------------------------------

def test_iteration_count_project_does_not_keep_a_gain_bought_with_compute(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", ITER_TRAIN, "")
    engine, end, events = run_engine(project, Scripted([("ITERS", "24_000_000"), ("LR", 0.2)]), max_iterations=2,
                                     time_budget="20s")
    rows = read_results(project / "results.tsv").rows
    assert [r.status for r in rows] == ["keep", "discard", "keep"]
    assert rows[1].metric < rows[0].metric  # better, and still not kept: it trained 4x longer
    finished = [e for e in events if isinstance(e, ev.RunFinished)]
    assert all(e.cpu_s and e.cpu_s > 0 for e in finished)
    assert finished[1].cpu_s > 2 * finished[0].cpu_s
    recorded = [e for e in events if isinstance(e, ev.ResultRecorded)]
    assert "the best's CPU time" in recorded[1].reason
    assert any("trains by iteration count and does not read AUTORESEARCH_TIME_BUDGET" in m for m in notices(events))
    text = summary_of(project)
    assert "Not kept for their compute" in text and "#1 ITERS -> 24_000_000" in text
    assert "batch_scale: 0.25 (not read by the script)" in text
    assert "ITERS = 6_000_000" in (project / "train.py").read_text()  # git agrees with the table


def test_time_budget_project_keeps_it_and_flags_the_compute(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", BUDGET_TRAIN, "")
    engine, end, events = run_engine(project, Scripted([("ITERS", "24_000_000")]), max_iterations=1,
                                     time_budget="20s")
    assert [r.status for r in read_results(project / "results.tsv").rows] == ["keep", "keep"]
    assert any("honours the time budget" in m for m in notices(events))
    assert any(m.startswith("#1 used") and "CPU time" in m for m in notices(events))


def test_an_edit_shadowed_by_a_config_file_is_reported_inert_and_held(tmp_path: Path) -> None:
    train = FAKE_TRAIN.replace("SLEEP = 0.05\n", "SLEEP = 0.05\nexec(open('config.py').read())\n")
    project = make_project(tmp_path / "p", train, "", extra={"config.py": "LR = 0.1\n"})
    proposer = Scripted([("LR", 0.3), ("WIDTH", 16)])
    engine, end, events = run_engine(project, proposer, max_iterations=2, readonly_script="config.py")
    message = "edits to `LR` have no effect: overridden by the train command or a config file?"
    assert message in notices(events)
    assert "LR" in proposer.contexts[1].hold and "LR" in proposer.contexts[1].notes
    assert "Edits to `LR` have no effect" in summary_of(project)
    rows = read_results(project / "results.tsv").rows
    assert rows[1].metric == rows[0].metric and rows[2].metric != rows[0].metric


def test_command_line_overrides_are_held_from_the_start(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    proposer = Scripted([("WIDTH", 16)])
    run_engine(project, proposer, max_iterations=1, train_command="python train.py --LR=0.2")
    assert "LR" in proposer.contexts[0].hold
    assert "Held (set by the train command): LR" in summary_of(project)


def test_breaker_goes_on_when_the_best_commit_still_runs(project: Path) -> None:
    def missing_module(ctx):
        src = ctx.train_source.replace("import math", "import math, not_installed_module_xyz")
        src = src.replace("LR = 0.1", f"LR = {0.1 + len(ctx.history) / 100}")
        return Proposal(src, f"try {len(ctx.history)}", {})

    proposer = Scripted([missing_module] * 3 + [("LR", 0.2)])
    engine, end, events = run_engine(project, proposer, max_iterations=4, circuit_breaker=3)
    assert not any(isinstance(e, ev.LoopPaused) for e in events)
    assert end.reason == "max_iterations"
    assert any("still runs" in m and "the changes were at fault" in m for m in notices(events))
    assert "crashed the same way" in proposer.contexts[3].feedback  # the agent is told why
    rows = read_results(project / "results.tsv").rows
    assert [r.status for r in rows] == ["keep", "crash", "crash", "crash", "keep"]  # the check is no row


def test_no_oom_retry_when_the_script_ignores_the_batch_scale(tmp_path: Path) -> None:
    train = "import sys\nLR = 0.1\nprint('RuntimeError: CUDA out of memory') if LR > 0.15 else print('val_bpb: 1.0')\n" \
            "sys.exit(1 if LR > 0.15 else 0)\n"
    project = make_project(tmp_path / "p", train, "")
    engine, end, events = run_engine(project, Scripted([("LR", 0.2)]), max_iterations=1)
    starts = [e for e in events if isinstance(e, ev.RunStarted) and e.iteration == 1]
    assert len(starts) == 1
    assert any("no retry with a smaller batch" in m for m in notices(events))


def test_a_slow_start_does_not_time_out_the_baseline(tmp_path: Path) -> None:
    # Start-up (imports, data) takes longer than budget x factor; training honours the budget.
    train = FAKE_TRAIN.replace("SLEEP = 0.05", "SLEEP = 2.5").replace(
        "import math, os, sys, time\n", "import math, os, sys, time\nB = os.environ['AUTORESEARCH_TIME_BUDGET']\n")
    project = make_project(tmp_path / "p", train, "")
    engine, end, events = run_engine(project, Scripted([("LR", 0.2)]), max_iterations=1, time_budget="1s")
    rows = read_results(project / "results.tsv").rows
    assert [r.status for r in rows] == ["keep", "keep"]
    limits = [e.limit_s for e in events if isinstance(e, ev.RunStarted)]
    assert limits[0] > 2 and 2 * 2.5 <= limits[1] < limits[0]


# -- the itergpt sample, as a user would configure it ----------------------------------------

def _sample_repo(tmp_path: Path) -> Path:
    project = tmp_path / "itergpt"
    shutil.copytree(SAMPLES / "itergpt", project, ignore=shutil.ignore_patterns("__pycache__", "out", "*.bin"))
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "init")
    return project


def _train(project: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", "config/train_default.py", *flags], cwd=project,
                          capture_output=True, text=True, timeout=300)


def test_itergpt_runs_seeded_by_iteration_count(tmp_path: Path) -> None:
    project = _sample_repo(tmp_path)
    first = _train(project, "--max_iters=20", "--eval_interval=10")
    assert first.returncode == 0, first.stderr
    assert re.search(r"^step 10: train loss \d+\.\d{4}, val loss \d+\.\d{4}$", first.stdout, re.M)
    assert "num_steps: 21" in first.stdout and (project / "out" / "ckpt.pt").exists()
    again = _train(project, "--max_iters=20", "--eval_interval=10")
    metric = re.compile(r"^val_loss: (\d+\.\d+)$", re.M)
    assert metric.search(first.stdout).group(1) == metric.search(again.stdout).group(1)  # bit-identical
    assert git(project, "status", "--porcelain") == ""  # data and checkpoint are ignored
    bad = _train(project, "--max_iters=2", "--n_head=3")
    assert bad.returncode != 0 and "assert config.n_embd % config.n_head == 0" in bad.stderr


COMPUTE_OR_EVAL = {"max_iters", "lr_decay_iters", "batch_size", "gradient_accumulation_steps", "block_size",
                   "eval_interval", "eval_iters", "final_eval_batches"}


def _check_session(project: Path, out: str) -> list:
    rows = read_results(project / "results.tsv").rows
    assert len(rows) == 9, out
    assert "paused" not in out
    changed = [r for r in rows[1:] if r.metric is not None and r.metric != rows[0].metric]
    assert len(changed) >= 5, out
    for row in rows[1:]:
        if row.status == "keep":
            assert not any(name in row.description for name in COMPUTE_OR_EVAL), row
    head = git(project, "rev-parse", "HEAD")
    for row in rows:
        full = git(project, "rev-parse", row.commit)
        on_branch = subprocess_ok(project, "merge-base", "--is-ancestor", full, head)
        assert on_branch == (row.status == "keep"), row
    assert git(project, "status", "--porcelain") == ""
    return rows


def subprocess_ok(cwd: Path, *args: str) -> bool:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_itergpt_config_file_as_the_editable_file(tmp_path: Path) -> None:
    project = _sample_repo(tmp_path)
    out = cli("run", "--headless", "--yes", "--train", "config/train_default.py", "--readonly", "model.py",
              "--train-command", "python train.py config/train_default.py", "--metric", "val_loss:min",
              "--time-budget", "10s", "--max-iterations", "8", "--tag", "s1", cwd=project, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    _check_session(project, out.stdout)
    assert "trains by iteration count" in out.stdout
    assert re.search(r"#1 finished in [0-9.]+ s \(CPU [0-9.]+ s\)", out.stdout)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_itergpt_train_script_as_the_editable_file_with_overrides(tmp_path: Path) -> None:
    project = _sample_repo(tmp_path)
    out = cli("run", "--headless", "--yes", "--train", "train.py", "--readonly", "model.py",
              "--train-command", "python train.py config/train_quick.py --learning_rate=2e-3",
              "--metric", "val_loss:min", "--time-budget", "10s", "--max-iterations", "8", "--tag", "s2",
              cwd=project, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "held (set by the train command's --name=value" in out.stdout and "learning_rate" in out.stdout
    assert "have no effect: overridden by the train command or a config file?" in out.stdout
    _check_session(project, out.stdout)
    summary = (project / "autoresearch-summary.md").read_text()
    assert "Held (set by the train command): learning_rate" in summary and "have no effect" in summary
