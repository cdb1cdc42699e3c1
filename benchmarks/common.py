"""Shared by the benchmarks: the figure line, medians, temp git projects, a scripted proposer, an
in-process engine driver and an RSS sampler."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@localhost"}

# A training script that prints its metric and exits (the "instant" training of the benchmarks).
INSTANT_TRAIN = '''\
LR = 0.1
WIDTH = 8
NOTE = 0
print("---")
print(f"val_bpb:          {1.0 + abs(LR - 0.4) + abs(WIDTH - 16) / 100:.6f}")
print("peak_vram_mb:     0.0")
'''


@dataclass
class Figure:
    name: str
    value: float | str | None
    unit: str
    target: str
    ok: bool | None  # None: information only
    note: str = ""

    def line(self) -> str:
        value = "n/a" if self.value is None else self.value if isinstance(self.value, str) else _num(self.value)
        verdict = "info" if self.ok is None else "ok" if self.ok else "MISS"
        note = f": {self.note}" if self.note else ""
        return f"{self.name}: {value} {self.unit} (target: {self.target}, {verdict}{note})".replace("  ", " ")


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}" if abs(x) >= 0.01 else f"{x:.2g}"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True,
                         text=True, input=input)
    return out.stdout.strip()


@contextmanager
def tempdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"arbench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_project(root: Path, train: str = INSTANT_TRAIN, extra: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(train)
    (root / "prepare.py").write_text("TIME_BUDGET = 300\n")
    (root / ".gitignore").write_text("__pycache__/\n")
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "bench")
    git(root, "config", "user.email", "bench@localhost")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


def set_constant(source: str, name: str, value: Any) -> str:
    return re.sub(rf"^{name} = .*$", f"{name} = {value}", source, count=1, flags=re.M)


class Scripted:
    """A proposer: `step(ctx) -> (new_source, description)`; optional latency; time spent is kept."""

    name = "bench"
    touches_tree = False  # like the built-in proposer: returns a source, writes no files

    def __init__(self, step: Callable[[Any], tuple[str, str]], latency: float = 0.0) -> None:
        self.step, self.latency = step, latency
        self.spent: dict[int, float] = {}

    async def propose(self, ctx):
        from autoresearch_tui.agents.base import Proposal

        t0 = time.perf_counter()
        if self.latency:
            await asyncio.sleep(self.latency)
        source, description = self.step(ctx)
        self.spent[ctx.iteration] = self.spent.get(ctx.iteration, 0.0) + time.perf_counter() - t0
        return Proposal(source, description, {})


def bump(name: str) -> Callable[[Any], tuple[str, str]]:
    """A proposer step that sets constant `name` to a new value each time (a no-op for NOTE)."""
    counter = iter(range(1, 10**9))

    def step(ctx) -> tuple[str, str]:
        n = next(counter)
        return set_constant(ctx.train_source, name, n), f"{name} -> {n}"

    return step


@dataclass
class EngineRun:
    engine: Any
    end: Any
    events: list = field(default_factory=list)  # (perf_counter, event)
    wall_s: float = 0.0


def run_engine(project: Path, proposer, *, resume: bool = False, profile: Any = None, **overrides) -> EngineRun:
    """The real Engine, in this process, on `project`; every event is timestamped as it is emitted."""
    from autoresearch_tui.engine.config import load_config
    from autoresearch_tui.engine.loop import Engine

    values = {"time_budget": "60s", "metric": "val_bpb:min", "tag": "bench", "device": "cpu", **overrides}
    config = load_config(project, None, {k: v for k, v in values.items() if v is not None})
    seen: list = []
    engine = Engine(config, proposer, listeners=[lambda e: seen.append((time.perf_counter(), e))])
    t0 = time.perf_counter()
    engine.prepare_resume() if resume else engine.prepare()
    if profile is not None:
        profile.enable()
    try:
        end = asyncio.run(engine.run())
    finally:
        if profile is not None:
            profile.disable()
    return EngineRun(engine, end, seen, time.perf_counter() - t0)


def config_has(*keys: str) -> bool:
    import dataclasses

    from autoresearch_tui.engine.config import ResearchConfig

    names = {f.name for f in dataclasses.fields(ResearchConfig)}
    return all(k in names for k in keys)


class RssSampler:
    """Peak resident memory of some processes, sampled in a thread."""

    def __init__(self, pids: Callable[[], list[int]], every: float = 0.02) -> None:
        self.pids, self.every = pids, every
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for pid in self.pids():
                try:
                    total += psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self.every)


def child_json(module: str, *args: str, timeout: float = 300) -> dict:
    """Run `python -m benchmarks.<module> --child ARGS` in a fresh process; its last stdout line is JSON."""
    import json

    proc = subprocess.run([PYTHON, "-m", f"benchmarks.{module}", "--child", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{module} child failed ({proc.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])
