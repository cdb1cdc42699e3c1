"""keep_policy confirm in the real engine with a noisy training script: the best runs beside each
re-run of a candidate (best, candidate, best, candidate), its runs are refined, and a SIGKILL
during the best's run loses nothing on resume."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.config import load_config
from autoresearch_tui.engine.loop import Engine
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.engine.session import SessionDir

from conftest import cli, git, make_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.noise import NOISY_TRAIN, SIGMA, _proposer  # noqa: E402
from benchmarks.common import Scripted  # noqa: E402

pytestmark = pytest.mark.slow  # engine sessions, SIGKILLed engines

# Noise N(0, 0.01) seeded from a run counter (re-runs differ, sessions repeat), a weak real effect
# of LR, and a pause long enough to be killed in.
SLOW_NOISY_TRAIN = '''\
import os, random, time
LR = 0.1
path = os.environ["NOISE_COUNTER"]
n = int(open(path).read() or 0) if os.path.exists(path) else 0
open(path, "w").write(str(n + 1))
time.sleep(float(os.environ.get("NOISE_SLEEP", "0")))
value = 1.0 + 0.002 * abs(LR - 0.4) + random.Random(f"kill-{n}").gauss(0, 0.01)
print("---")
print(f"val_bpb:          {value:.6f}")
print("peak_vram_mb:     0.0")
'''


def _interleaved(events: list[ev.Event]) -> dict[int, list[str]]:
    """Iteration -> 'b'/'c' for each run: of the best of that moment, or of the candidate."""
    best, out = "", {}
    for e in events:
        if isinstance(e, ev.ResultRecorded):
            best = e.best_commit
        elif isinstance(e, ev.RunStarted) and e.iteration > 0:
            out.setdefault(e.iteration, []).append("b" if e.commit == best else "c")
    return out


def test_confirm_runs_the_best_beside_each_rerun_and_refines_it(tmp_path: Path, monkeypatch) -> None:
    project = make_project(tmp_path / "p", NOISY_TRAIN.format(sigma=SIGMA))
    monkeypatch.setenv("ARBENCH_NOISE_COUNTER", str(tmp_path / "counter"))
    monkeypatch.setenv("ARBENCH_NOISE_SEED", "interleave")
    config = load_config(project, None, {"time_budget": "2s", "metric": "val_bpb:min", "tag": "t",
                                         "keep_policy": "confirm", "max_iterations": 6, "progress_every": 0})
    seen: list[ev.Event] = []
    engine = Engine(config, Scripted(_proposer(True)), listeners=[seen.append])  # 2-sigma gains
    engine.prepare()
    asyncio.run(engine.run())

    orders = _interleaved(seen)
    assert len(orders) == 6
    for n, order in orders.items():  # candidate, then (best, candidate) pairs: never two of one in a row
        assert order[0] == "c" and all(a != b for a, b in zip(order, order[1:])) and order[-1] == "c", (n, order)
    assert max(map(len, orders.values())) >= 3  # some candidate needed the best beside it
    remeasured = [e for e in seen if isinstance(e, ev.BestRemeasured)]
    assert len(remeasured) == sum(order.count("b") for order in orders.values())
    # Each BestRemeasured comes between the best's run and the candidate's next run.
    kinds = [type(e).__name__ for e in seen if isinstance(e, (ev.RunStarted, ev.BestRemeasured))]
    assert all(kinds[i + 1] == "RunStarted" for i, k in enumerate(kinds) if k == "BestRemeasured")
    # The best's runs: its own rows, then every run of it beside later candidates.
    best = engine.best_commit
    rows = read_results(project / "results.tsv").rows
    own = [r.metric for r in rows if r.commit == best[:7]]
    beside = [e.metric for e in remeasured if e.commit == best]
    assert engine.best_runs == own + beside == engine.noise.runs(best)
    assert best[:7] != rows[0].commit  # true gains were kept
    assert len(rows) == 3 + sum(order.count("c") for order in orders.values())  # the best's runs are no rows
    assert git(project, "status", "--porcelain") == ""
    summary = (project / "autoresearch-summary.md").read_text()
    assert f"{len(remeasured)} runs of the best beside them" in summary


def _events(project: Path) -> list[ev.Event]:
    return SessionDir(project / ".autoresearch" / "night").events()


def test_sigkill_during_the_best_run_loses_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", SLOW_NOISY_TRAIN)
    env = {**os.environ, "NOISE_COUNTER": str(tmp_path / "counter"), "NOISE_SLEEP": "1.5"}  # time to be killed in
    args = ["run", str(project), "--time-budget", "5s", "--metric", "val_bpb:min", "--yes", "--headless",
            "--device", "cpu", "--tag", "night", "--keep-policy", "confirm", "--vary", "LR", "--max-iterations", "6"]
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch_tui", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed_at = None
    deadline = time.time() + 120
    while killed_at is None and time.time() < deadline and proc.poll() is None:
        best = ""
        for e in _events(project):
            if isinstance(e, ev.ResultRecorded):
                best = e.best_commit
            elif isinstance(e, ev.RunStarted) and e.iteration > 0 and e.commit == best:
                killed_at = e
        if killed_at is None:
            time.sleep(0.05)
    assert killed_at is not None, "no run of the best beside a candidate: " + (proc.stderr.read() if proc.poll() else "")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n = killed_at.iteration
    candidate = next(e.commit for e in _events(project) if isinstance(e, ev.RunStarted) and e.iteration == n
                     and e.commit != killed_at.commit)
    # Killed mid-run: the best's files in the tree, the branch (and HEAD) still on the candidate.
    assert git(project, "rev-parse", "autoresearch/night") == candidate
    assert (project / "train.py").read_text() == git(project, "show", f"{killed_at.commit}:train.py") + "\n"
    assert git(project, "status", "--porcelain", "--untracked-files=no") == "M  train.py"
    before = [e for e in _events(project) if isinstance(e, ev.BestRemeasured)]
    rows_before = read_results(project / "results.tsv").rows

    again = cli("run", str(project), "--resume", "--headless", env={**env, "NOISE_SLEEP": "0"}, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "committed but not evaluated: running it again" in again.stdout

    events = _events(project)
    rows = read_results(project / "results.tsv").rows
    recorded = [e for e in events if isinstance(e, ev.ResultRecorded)]
    assert rows[:len(rows_before)] == rows_before  # nothing measured was lost or rewritten
    assert [r.commit for r in rows] == [e.commit[:7] for e in recorded]  # rows and events agree
    assert any(r.commit == candidate[:7] for r in rows)  # the killed candidate was evaluated after all
    assert {e.iteration for e in recorded} == set(range(7))
    head = git(project, "rev-parse", "autoresearch/night")
    for row in rows:
        full = git(project, "rev-parse", row.commit)
        on_branch = subprocess.run(["git", "merge-base", "--is-ancestor", full, head], cwd=project).returncode == 0
        assert on_branch == (row.status == "keep"), row
    assert git(project, "rev-parse", "HEAD") == head and git(project, "status", "--porcelain") == ""
    assert git(project, "symbolic-ref", "--short", "HEAD") == "autoresearch/night"
    # The best's runs measured before the kill still count: the resumed engine's summary has them all.
    after = [e for e in events if isinstance(e, ev.BestRemeasured)]
    assert after[:len(before)] == before
    summary = (project / "autoresearch-summary.md").read_text()
    assert f"{len(after)} runs of the best beside them" in summary


def test_parallel_workers_run_the_best_in_their_own_worktree(tmp_path: Path, monkeypatch) -> None:
    project = make_project(tmp_path / "p", NOISY_TRAIN.format(sigma=SIGMA))
    monkeypatch.setenv("ARBENCH_NOISE_COUNTER", str(tmp_path / "counter"))
    monkeypatch.setenv("ARBENCH_NOISE_SEED", "parallel")
    config = load_config(project, None, {"time_budget": "2s", "metric": "val_bpb:min", "tag": "t", "device": "cpu",
                                         "workers": 2, "keep_policy": "confirm", "max_iterations": 6,
                                         "progress_every": 0})
    seen: list[ev.Event] = []
    engine = Engine(config, Scripted(_proposer(True)), listeners=[seen.append])
    engine.prepare()
    asyncio.run(engine.run())

    runs: dict[int, list[tuple[int, str]]] = {}
    for e in seen:
        if isinstance(e, ev.RunStarted) and e.iteration > 0:
            runs.setdefault(e.iteration, []).append((e.worker, e.commit))
    remeasured = [e for e in seen if isinstance(e, ev.BestRemeasured)]
    assert remeasured and len(runs) == 6
    for n, order in runs.items():
        assert len({w for w, _ in order}) == 1  # one worker: the best and the candidate on the same device
        candidate = order[0][1]
        assert all((c == candidate) == (i % 2 == 0) for i, (_, c) in enumerate(order)), (n, order)
    rows = read_results(project / "results.tsv").rows
    assert len(rows) == 3 + sum((len(o) + 1) // 2 for o in runs.values())
    head = git(project, "rev-parse", "autoresearch/t")
    assert git(project, "rev-parse", "HEAD") == head and git(project, "status", "--porcelain") == ""
    assert engine.best_commit == head
    assert engine.best_runs == engine.noise.runs(head)[-len(engine.best_runs):]


def test_sigkill_at_random_instants_under_confirm(tmp_path: Path) -> None:
    """Kills anywhere in the interleaved runs (between the tree moves, mid-run, mid-record): each
    resume goes on, and every finished session tells one consistent story."""
    import random

    rng = random.Random(16)
    kills, sessions = 0, 0
    while kills < 10:
        sessions += 1
        project = make_project(tmp_path / f"s{sessions}", SLOW_NOISY_TRAIN)
        env = {**os.environ, "NOISE_COUNTER": str(tmp_path / f"counter{sessions}"), "NOISE_SLEEP": "0.1"}
        first = ["run", str(project), "--time-budget", "5s", "--metric", "val_bpb:min", "--yes", "--headless",
                 "--device", "cpu", "--tag", "night", "--keep-policy", "confirm", "--vary", "LR",
                 "--max-iterations", "5"]
        for attempt in range(60):
            started = (project / ".autoresearch" / "night" / "config.toml").exists()
            args = ["run", str(project), "--resume", "--headless"] if started else first
            proc = subprocess.Popen([sys.executable, "-m", "autoresearch_tui", *args], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                proc.wait(timeout=rng.uniform(1.0, 4.0) if kills < 10 else 300)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                time.sleep(0.2)
                continue
            assert proc.returncode == 0, proc.stderr.read()
            if any(isinstance(e, ev.SessionEnded) for e in _events(project)):
                break
        else:
            raise AssertionError("the session never completed")
        _check_consistent(project)


def _check_consistent(project: Path) -> None:
    events = _events(project)
    rows = read_results(project / "results.tsv").rows
    recorded = [e for e in events if isinstance(e, ev.ResultRecorded)]
    assert [r.commit for r in rows] == [e.commit[:7] for e in recorded]
    assert {e.iteration for e in recorded} == set(range(6))
    head = git(project, "rev-parse", "autoresearch/night")
    for row in rows:
        full = git(project, "rev-parse", row.commit)
        on_branch = subprocess.run(["git", "merge-base", "--is-ancestor", full, head], cwd=project).returncode == 0
        assert on_branch == (row.status == "keep"), row
    assert git(project, "symbolic-ref", "--short", "HEAD") == "autoresearch/night"
    assert git(project, "status", "--porcelain") == ""
