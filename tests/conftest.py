"""Shared fixtures: real git repositories in temp folders and small real training scripts."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_tui.agents.base import Proposal, ProposalContext, SearchExhausted
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.config import load_config
from autoresearch_tui.engine.loop import Engine

ROOT = Path(__file__).resolve().parents[1]
REAL_RESULTS = Path(os.environ.get("AUTORESEARCH_REAL_RESULTS", ROOT.parent / "shared" / "real-results"))


def real_results_files() -> list[Path]:
    """The real results.tsv fixtures. Missing on a developer's machine: their tests skip; under
    CI=true that is an error, so a CI run never passes without them."""
    files = sorted(REAL_RESULTS.glob("*.tsv"))
    if not files and os.environ.get("CI", "").lower() in ("true", "1"):
        raise RuntimeError(f"the real-results fixtures are missing at {REAL_RESULTS}; "
                           "set AUTORESEARCH_REAL_RESULTS to their folder")
    return files

# A training script whose metric is a pure function of its constants: fast and deterministic.
FAKE_TRAIN = '''\
import math, os, sys, time
LR = 0.1
WIDTH = 8
SLEEP = 0.05
time.sleep(SLEEP)
for i in range(3):
    print(f"\\rstep {i:05d} | loss: {1.0 / (i + 1):.4f}", end="", flush=True)
print()
value = abs(math.log10(LR) - math.log10(0.4)) + 1.0 + abs(WIDTH - 16) / 100
print("---")
print(f"val_bpb:          {value:.6f}")
print("peak_vram_mb:     0.0")
print(f"num_steps:        3")
'''

FAKE_PREPARE = "TIME_BUDGET = 300\n"


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_project(root: Path, train: str = FAKE_TRAIN, prepare: str = FAKE_PREPARE, extra: dict | None = None,
                 ignore: str = "__pycache__/\n") -> Path:
    """The one project factory: a git repository with train.py and prepare.py, one commit."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(train)
    (root / "prepare.py").write_text(prepare)
    (root / ".gitignore").write_text(ignore)
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


def cli(*args: str, cwd: Path | None = None, timeout: float = 120, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "autoresearch_tui", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


class Scripted:
    """A real proposer: edits applied in order: (constant, value), a dict of them, or a callable."""

    name = "scripted"

    def __init__(self, steps):
        self.steps = list(steps)
        self.contexts: list[ProposalContext] = []

    async def propose(self, ctx: ProposalContext) -> Proposal:
        self.contexts.append(ctx)
        if not self.steps:
            raise SearchExhausted("nothing left")
        step = self.steps.pop(0)
        if callable(step):
            return step(ctx)
        edits = step if isinstance(step, dict) else dict([step])
        src = ctx.train_source
        for name, value in edits.items():
            src = re.sub(rf"^{name} = .*$", f"{name} = {value}", src, flags=re.M)
        text = ", ".join(f"{k} -> {v}" for k, v in edits.items())
        return Proposal(src, text, {"constant": next(iter(edits)), "new": next(iter(edits.values()))})


def run_engine(project: Path, proposer, **overrides) -> tuple[Engine, ev.SessionEnded, list[ev.Event]]:
    """A whole session of the real engine in this process; its events as they were emitted."""
    values = {"time_budget": "2s", "metric": "val_bpb:min", "tag": "t1", **overrides}
    config = load_config(project, None, values)
    seen: list[ev.Event] = []
    engine = Engine(config, proposer, listeners=[seen.append])
    engine.prepare()
    end = asyncio.run(engine.run())
    return engine, end, seen
