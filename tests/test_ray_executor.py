"""The Ray executor against a local Ray instance: the spirals sample, a time limit and a kill."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import psutil
import pytest

from autoresearch_tui.agents.builtin import BuiltinProposer
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.executors import ray_available
from autoresearch_tui.engine.results import read_results

from conftest import FAKE_TRAIN, ROOT, Scripted, make_project
from test_parallel import check_invariants, run_parallel
from tui_helpers import finish, spawn_headless

from autoresearch_tui.core import processes

WHY_NOT = ray_available()
pytestmark = [pytest.mark.skipif(WHY_NOT is not None, reason=f"Ray tests need the `ray` extra: {WHY_NOT}"),
              pytest.mark.slow]
SPIRALS = ROOT / "sample_projects" / "spirals"


def test_the_ray_instance_a_session_starts_is_marked_and_ended_with_it(tmp_path: Path, monkeypatch) -> None:
    """executor = "ray" and no cluster: the session starts a local instance. Its processes (GCS,
    raylet, workers) carry the session's mark while it runs, and none is left once it ends.
    (First in the module: the other tests' instance must not exist yet in this process.)"""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    popen, session = spawn_headless(tmp_path, "ray1", "--executor", "ray", "--workers", "2", "--device", "cpu",
                                    duration=0.3, iterations=2, budget="20s")
    mark = processes.session_mark(session, "ray1") + ":ray"
    try:
        deadline = time.monotonic() + 180
        marked: list[psutil.Process] = []
        while not marked and popen.poll() is None and time.monotonic() < deadline:
            marked = processes.with_mark(mark)
            time.sleep(0.5)
        names = {p.name() for p in marked if not gone(p.pid)}
        assert names, f"no process carries {mark} while the session runs: {(tmp_path / 'engine.out').read_text()}"
        assert popen.wait(timeout=240) == 0, (tmp_path / "engine.out").read_text()
    finally:
        finish(popen, session=session)
    assert len(read_results(session.parent.parent / "results.tsv").rows) == 3
    deadline = time.monotonic() + 15
    while (left := [p for p in processes.with_mark(mark) if not gone(p.pid)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, [(p.pid, p.name()) for p in left]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             object_store_memory=200 * 1024 * 1024)
    try:
        yield ray
    finally:
        ray.shutdown()


def run_on_ray(project: Path, proposer, values: dict, workers: int = 2, on_event=None):
    return run_parallel(project, proposer, workers, on_event, executor="ray", **values)


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_spirals_runs_three_experiments_through_ray(local_ray, tmp_path: Path) -> None:
    project = make_project(tmp_path / "spirals", (SPIRALS / "train.py").read_text(),
                           (SPIRALS / "prepare.py").read_text())
    # A budget far above the step cap: the runs are step-limited (about 2 s of training).
    engine, end, seen = run_on_ray(project, BuiltinProposer(),
                                   {"time_budget": "60s", "metric": "val_acc:max", "max_iterations": 3})
    assert engine.executor is not None and engine.executor.name == "ray"
    assert end.reason == "max_iterations"
    rows = read_results(project / "results.tsv").rows
    assert len(rows) == 4 and all(r.metric is not None and 0.3 < r.metric <= 1.0 for r in rows), rows
    assert rows[0].status == "keep" and all(r.status in ("keep", "discard") for r in rows[1:])
    events = check_invariants(project)
    session = project / ".autoresearch" / "t1"
    for e in events:
        if isinstance(e, ev.RunStarted):
            raw = (session / e.log).read_bytes()  # streamed back from the task, raw: `\r` progress kept
            assert len(re.findall(rb"\rstep \d{5}", raw)) >= 2 and re.search(rb"^val_acc:\s+0\.\d+$", raw, re.M), raw[-300:]
    assert {e.worker for e in events if isinstance(e, ev.RunStarted)} == {0, 1}


HANG = FAKE_TRAIN.replace(
    "time.sleep(SLEEP)",
    "print('cwd', os.getcwd(), flush=True)\n"
    "import subprocess\nif LR != 0.1:\n"
    "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "    print('pids', os.getpid(), child.pid, flush=True)\n    time.sleep(600)",
)


def test_time_limit_and_kill_are_honoured_on_the_remote_side(local_ray, tmp_path: Path) -> None:
    project = make_project(tmp_path / "hang", HANG)

    marks: list[str] = []

    async def kill_once_running(engine, event):
        log = engine.session.root / event.log
        for _ in range(300):  # the training process is up once its pids reach the local log
            if log.exists() and b"pids" in log.read_bytes():
                break
            await asyncio.sleep(0.1)
        pid = int(re.search(rb"^pids (\d+)", log.read_bytes(), re.M).group(1))
        marks.append(psutil.Process(pid).environ().get(processes.MARK, ""))  # a local instance: same machine
        engine.kill_run(event.worker)

    def on_event(engine, event):
        if isinstance(event, ev.RunStarted) and event.iteration == 2:
            asyncio.ensure_future(kill_once_running(engine, event))

    engine, end, seen = run_on_ray(project, Scripted([("LR", 5.0), ("LR", 6.0)]),
                                   {"time_budget": "2s", "time_limit": "5s", "kill_grace": "1s",
                                    "metric": "val_bpb:min", "max_iterations": 2}, on_event=on_event)
    assert end.reason == "max_iterations"
    events = check_invariants(project)
    finished = {e.iteration: e for e in events if isinstance(e, ev.RunFinished)}
    results = {e.iteration: e for e in events if isinstance(e, ev.ResultRecorded)}
    assert finished[1].timed_out and "timeout" in finished[1].crash_reason
    assert results[1].status == "crash" and "timeout" in results[1].description
    assert results[2].status == "discard" and results[2].reason == "run killed by the user"
    assert marks and marks[0].startswith(f"{engine.mark}:run:2:"), marks  # found and ended like a local run
    session = project / ".autoresearch" / "t1"
    for e in events:
        if isinstance(e, ev.RunStarted):
            log = (session / e.log).read_text()
            cwd = re.search(r"^cwd (.+)$", log, re.M).group(1)
            assert not cwd.startswith(str(project)), cwd  # it ran in the shipped copy, not the worktree
            if e.iteration:
                pids = [int(p) for p in re.search(r"^pids (\d+) (\d+)$", log, re.M).groups()]
                assert all(gone(pid) for pid in pids), pids  # the whole remote process group is gone
