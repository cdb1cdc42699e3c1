"""Worker slots: N experiments at once, on one machine or a Ray cluster, with one history.

The engine (loop.py) is the same for one slot and for N; what differs is where a slot's commits
and runs live. One local slot: the main tree (workspace.Workspace). Workers (`workers`, `gpus`,
`executor = "ray"`): `SlotWorkspace` below, a detached git worktree and a device per worker:

* the loop proposes one proposal at a time from the best commit of that moment, and the proposer
  sees what is in flight (`ProposalContext.in_flight`); the candidate is committed in a free
  worker's worktree on top of that best (a detached commit, off the branch) and handed to that
  worker; the loop asks for the next proposal as soon as a worker is free;
* each worker runs its candidate on its own device (`CUDA_VISIBLE_DEVICES`, or the platform's
  `AUTORESEARCH_DEVICE` on MPS/CPU) through the executor (local or Ray), then judges it against
  the best of the moment, with the one judgement every slot count uses;
* a winner is replayed onto the best (`land`): a fast-forward when it was proposed from the
  current best, else a line-level 3-way merge committed on the branch; when the merge conflicts,
  or when `strict_replay` is set, the replayed version is run again on top of the new best and
  judged again before it is kept;
* results.tsv stays one file, one row per experiment (in the order they finish); the events name
  the worker; every keep is on the branch, no discard is; the main tree stays clean at the best.

Folders the project needs but git does not hold (a `.venv`, a data folder) are linked into each
worktree, so a run there sees what a run in the project would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from autoresearch_tui.agents.base import Proposal
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine import report_files
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.core.git import Git
from autoresearch_tui.engine.workspace import Workspace, merge3, unified_diff

MAX_REPLAYS = 3  # re-runs on top of a best that keeps moving before the candidate is dropped


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


def wants_workers(config: ResearchConfig) -> bool:
    """Worker slots (worktrees) rather than the one slot in the main tree."""
    return config.workers != 1 or bool(config.gpus) or config.executor != "local"


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
    """The workers' worktrees: candidates are detached commits there; the main tree stays at the best."""

    def __init__(self, config: ResearchConfig, repo: Git, emit: Callable[[ev.Event], None],
                 session_root: Path) -> None:
        super().__init__(config, repo, emit, session_root)
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
    def apply(self, slot: Slot, n: int, proposal: Proposal, best: str,
              untracked_before: set[str] | None) -> tuple[str | None, str]:
        self.restore(best, untracked_before, n)  # whatever an agent did to the main tree
        refused = self.refuse(n, self.source_at(slot.base), proposal.new_source)
        if refused:
            return refused
        commit = self.commit_source(slot, slot.base, proposal.new_source, f"exp: {proposal.description}")
        slot.commit, slot.description, slot.meta = commit, proposal.description, dict(proposal.meta)
        self.emit(ev.ProposalMade(iteration=n, description=proposal.description, diff=self.diffs[commit],
                                  meta=proposal.meta))
        return commit, ""

    def proposal_view(self, base: str, touches_tree: bool) -> tuple[str | None, Path | None]:
        """The best of now as the proposer's source; a coding agent edits the scratch worktree
        (the main tree is where keeps land while it works)."""
        project = self.project_in(self.prepare_worktree(base)) if touches_tree else None
        return self.source_at(base), project

    def adopt(self, commit: str, best: str) -> str:
        parent = self.repo.resolve(f"{commit}^") or best
        if self.repo.head() == commit:  # committed on the branch by a sequential session
            self.repo.reset_hard(best)
        return parent

    def revise(self, slot: Slot, commit: str, source: str, message: str) -> str:
        self.diffs.pop(commit, None)
        return self.commit_source(slot, slot.base, source, message)

    def drop(self, slot: Slot, best: str) -> None:
        self.diffs.pop(slot.commit, None)  # the worktree is reset before its next use

    # -- runs -----------------------------------------------------------------------------
    def run_place(self, slot: Slot, commit: str) -> tuple[Path, Path, list[str]]:
        return self.checkout(slot, commit), self.session_root / f"run-w{slot.index}.pid", self.links()

    @contextmanager
    def best_tree(self, n: int, best: str, commit: str) -> Iterator[None]:
        """The worker's worktree checks the best out for its run (run_place) and the candidate
        again after it; the main tree stays at the best. The attempt ref keeps the detached
        candidate reachable meanwhile."""
        self.repo.keep_ref(self.config.tag, n, commit)
        yield

    def land(self, slot: Slot, commit: str, description: str, best: str) -> tuple[str | None, str | None, str]:
        repo = self.repo
        if repo.head() != best:
            repo.reset_hard(best)  # the main tree rests at the best; nothing else moves it
        base = slot.base
        if base == best:
            repo.reset_hard(commit)  # proposed from the current best: a fast-forward
            return commit, None, ""
        base_src, best_src, cand_src = self.source_at(base), self.source_at(best), self.source_at(commit)
        merged = merge3(base_src, best_src, cand_src)
        replay = merged if merged is not None else merge3(base_src, best_src, cand_src, prefer_theirs=True)
        if replay == best_src:
            return None, None, "its change is already in the best"
        if replay == cand_src or (merged is not None and not self.config.strict_replay):
            self.config.path(self.config.train_script).write_text(replay, encoding="utf-8")
            kept = repo.commit_paths([self.train_rel], f"exp: {description}")
            how = "3-way merged" if replay != cand_src else "applied"
            return kept, None, f"proposed from {base[:7]}, {how} onto the best {best[:7]} as {kept[:7]}"
        if slot.replays >= MAX_REPLAYS:
            return None, None, f"won, but the best moved {MAX_REPLAYS} times while it was re-run; not kept"
        slot.replays += 1
        why = "it conflicts with" if merged is None else "strict_replay: it is measured again on"
        rerun = self.commit_source(slot, best, replay, f"exp: {description}")
        slot.base = best
        return None, rerun, f"won against the best, but {why} the new best {best[:7]}: re-running it there"

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
