"""Worker slots for parallel experiments: a detached git worktree and a device per worker.

The main tree stays on the research branch at the best commit. A candidate is committed in its
worker's worktree on top of the best commit of the moment it was proposed (a detached commit,
off the branch); only a keep moves the branch (see parallel.py). Folders the project needs but
git does not hold (a `.venv`, a data folder) are linked into each worktree, so a run there sees
what a run in the project would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autoresearch_tui.agents.base import Proposal
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine import report_files
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.core.git import Git
from autoresearch_tui.engine.workspace import Workspace, unified_diff


@dataclass(eq=False)
class Slot:
    """One worker: where its runs execute and what it holds now."""

    index: int
    device: str  # what the screen shows: "cuda:2", "mps", "cpu", "ray"
    env: dict[str, str] = field(default_factory=dict)  # CUDA_VISIBLE_DEVICES for a local CUDA worker
    kill: asyncio.Event = field(default_factory=asyncio.Event)
    repo: Git | None = None
    head: str = ""  # what the worktree has checked out
    n: int | None = None  # the experiment in this slot (None: free)
    base: str = ""  # the best commit the candidate was proposed from (its parent)
    commit: str = ""  # the candidate as committed in the worktree
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    task: asyncio.Future | None = None
    rerun: str | None = None  # set by a keep that must be measured again on top of the new best
    replays: int = 0
    running: bool = False  # a training process is up (kill_run targets it)

    @property
    def busy(self) -> bool:
        return self.n is not None

    def release(self) -> None:
        self.n, self.base, self.commit, self.description, self.meta = None, "", "", "", {}
        self.task, self.rerun, self.replays = None, None, 0


def parse_gpus(value: Any) -> list[str]:
    """`0,1,2,3` or [0, 1] -> ["0", "1", ...]."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]


def build_slots(config: ResearchConfig, platform: Any, executor: Any) -> list[Slot]:
    """One slot per worker: `workers` (0 = one per GPU), `gpus` (which ones, round robin)."""
    gpus = parse_gpus(config.gpus)
    count = config.workers or 0
    remote = executor.name != "local"
    devices = int(platform.details.get("device_count") or 0)
    if count <= 0:  # auto: one per GPU (of this machine, or of the cluster)
        if remote:
            count = int(executor.resources().get("GPU" if platform.device == "cuda" else "CPU", 1))
        else:
            count = len(gpus) or (devices if platform.device == "cuda" else 1) or 1
    elif count == 1 and gpus:
        count = len(gpus)
    slots = []
    for i in range(max(1, count)):
        if remote:  # the cluster assigns the device (Ray sets CUDA_VISIBLE_DEVICES in the task)
            slots.append(Slot(i, executor.name))
        elif platform.device == "cuda":
            gpu = gpus[i % len(gpus)] if gpus else str(i % (devices or count))
            slots.append(Slot(i, f"cuda:{gpu}", {"CUDA_VISIBLE_DEVICES": gpu}))
        else:  # MPS / CPU: the workers share the device named by AUTORESEARCH_DEVICE
            slots.append(Slot(i, platform.device))
    return slots


class SlotWorkspace(Workspace):
    def __init__(self, config: ResearchConfig, repo: Git, emit: Callable[[ev.Event], None],
                 session_root: Path, claim: Callable[[int, str], Slot], base_of: Callable[[int], str]) -> None:
        super().__init__(config, repo, emit, session_root)
        self.claim, self.base_of = claim, base_of
        self.workers_root = session_root / "workers"
        rel = os.path.relpath(config.project.resolve(), repo.root)
        self.project_rel = Path(rel) if rel != "." else Path()
        self._links: list[str] | None = None
        self._sources: dict[str, str] = {}  # commit -> training script (commits never change)

    def source_at(self, commit: str) -> str:
        if commit not in self._sources:
            if len(self._sources) > 256:
                self._sources.clear()
            self._sources[commit] = super().source_at(commit)
        return self._sources[commit]


    # -- proposals become commits in a worker's worktree ---------------------------------
    def apply(self, n: int, proposal: Proposal, best: str,
              untracked_before: set[str] | None) -> tuple[str | None, str]:
        self.restore(best, untracked_before, n)  # whatever an agent did to the main tree
        base = self.base_of(n) or best
        base_source = self.source_at(base)
        refused = self.refuse(n, base_source, proposal.new_source)
        if refused:
            return refused
        slot = self.claim(n, base)
        commit = self.commit_source(slot, base, proposal.new_source, f"exp: {proposal.description}")
        slot.commit, slot.description, slot.meta = commit, proposal.description, dict(proposal.meta)
        self.emit(ev.ProposalMade(iteration=n, description=proposal.description, diff=self.diffs[commit],
                                  meta=proposal.meta))
        return commit, ""

    def commit_source(self, slot: Slot, parent: str, source: str, message: str) -> str:
        """A detached commit `parent` + `source` for the training script, made in the slot's worktree.

        Its diff (against `parent`, i.e. the candidate's own change) is kept for the event and the
        patch of a discard."""
        project = self.checkout(slot, parent)
        (project / self.config.train_script).write_text(source, encoding="utf-8")
        assert slot.repo is not None
        slot.head = slot.repo.commit_paths([self.train_rel], message)
        self._sources[slot.head] = source
        self.diffs[slot.head] = unified_diff(self.train_rel, self.source_at(parent), source)
        return slot.head

    # -- worktrees ---------------------------------------------------------------------------
    def worker_tree(self, slot: Slot) -> Path:
        return self.workers_root / f"w{slot.index}"

    def project_in(self, worktree: Path) -> Path:
        return worktree / self.project_rel

    def checkout(self, slot: Slot, commit: str) -> Path:
        """The slot's worktree at `commit`, clean; returns the project folder inside it."""
        path = self.worker_tree(slot)
        slot.repo = self.worktree_at(path, commit, slot.repo, slot.head)
        slot.head = commit
        project = self.project_in(path)
        self._link(project)
        return project

    def links(self) -> list[str]:
        """Top-level untracked or ignored entries of the project, linked into every worktree."""
        if self._links is None:
            cfg = self.config
            skip = {".git", "__pycache__", Path(cfg.session_dir).parts[0] if cfg.session_dir else "",
                    Path(cfg.results_file).parts[0], report_files.SUMMARY_FILE}
            names: set[str] = set()
            for ignored in (False, True):
                names |= {line.rstrip("/").split("/")[0] for line in self.repo.others(cfg.project, ignored)}
            self._links = sorted(n for n in names - skip if n and not n.startswith(".autoresearch"))
        return self._links

    def _link(self, project: Path) -> None:
        for name in self.links():
            target, link = self.config.project / name, project / name
            if target.exists() and not link.exists() and not link.is_symlink():
                try:
                    link.symlink_to(target, target_is_directory=target.is_dir())
                except OSError:
                    pass  # no symlinks here (some Windows set-ups): the run goes without it

    def remove_worktree(self) -> None:
        super().remove_worktree()
        if self.workers_root.exists():
            for path in sorted(self.workers_root.iterdir()):
                self.drop_worktree(path)
            shutil.rmtree(self.workers_root, ignore_errors=True)
        self.repo.prune_worktrees()
