"""N experiments at once, on one machine or a Ray cluster, with one history.

ParallelEngine is the sequential Engine with worker slots (engine/workers.py):

* the loop proposes as before, one proposal at a time from the best commit of that moment, and
  the proposer sees what is in flight (`ProposalContext.in_flight`); the candidate is committed
  in a free worker's worktree (off the branch) and handed to that worker; the loop asks for the
  next proposal as soon as a worker is free;
* each worker runs its candidate on its own device (`CUDA_VISIBLE_DEVICES`, or the platform's
  `AUTORESEARCH_DEVICE` on MPS/CPU) through the executor (local or Ray), then judges it against
  the best of the moment, with the sequential engine's own judgement;
* a winner is replayed onto the best: a fast-forward when it was proposed from the current best,
  else a line-level 3-way merge committed on the branch; when the merge conflicts, or when
  `strict_replay` is set, the replayed version is run again on top of the new best and judged
  again before it is kept;
* results.tsv stays one file, one row per experiment (in the order they finish); the events name
  the worker; every keep is on the branch, no discard is; the main tree stays clean at the best.

Stopping: the first stop request lets the runs in flight finish and starts no new one; the
second kills them all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from contextlib import contextmanager
from typing import Any, Iterator

from autoresearch_tui.agents.base import Attempt, Proposal
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine import metrics, review
from autoresearch_tui.engine.decide import DISCARD, KEEP
from autoresearch_tui.engine.executors import EXECUTORS, Executor, RunSpec, make_executor, ray_available
from autoresearch_tui.engine.loop import Engine, Listener, RunRecord
from autoresearch_tui.engine.workers import CURRENT, Slot, WorkerWorkspace, build_slots, merge_prefer, parse_gpus
from autoresearch_tui.engine.workspace import merge3
from autoresearch_tui.errors import RuntimeFailure, UserError

MAX_REPLAYS = 3  # re-runs on top of a best that keeps moving before the candidate is dropped
TREE_FREE_AGENTS = ("builtin", "openai", "anthropic")  # proposers that never edit files


def wants_parallel(config: Any) -> bool:
    workers = getattr(config, "workers", 1)
    return (workers is not None and int(workers) != 1) or bool(parse_gpus(getattr(config, "gpus", None))) \
        or str(getattr(config, "executor", "local") or "local") != "local"


def make_engine(config: Any, proposer: Any, listeners: list[Listener] | None = None) -> Engine:
    """The engine a config asks for: ParallelEngine for workers/gpus/ray, else the sequential one."""
    cls = ParallelEngine if wants_parallel(config) else Engine
    return cls(config, proposer, listeners)


def _event(cls: type[ev.Event], **values: Any) -> ev.Event:
    """Build an event, leaving out fields this version of events.py does not have."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


class ParallelEngine(Engine):
    def __init__(self, config: Any, proposer: Any, listeners: list[Listener] | None = None) -> None:
        super().__init__(config, proposer, listeners)
        self.pipeline = False  # the workers already overlap proposing and training
        self.slots: list[Slot] = []
        self.executor: Executor | None = None
        self._bases: dict[int, str] = {}  # experiment -> the best commit it was proposed from
        self._issued = 0  # the highest experiment number handed to a worker
        self._tasks: set[asyncio.Future] = set()
        self._deferred: str | None = None  # why the loop ended while runs were still in flight
        self._error: BaseException | None = None
        self._wake = asyncio.Event()

    # -- commands ----------------------------------------------------------------------------
    def request_stop(self) -> int:
        """First: the runs in flight finish, no new one starts. Second: kill them all."""
        count = super().request_stop()
        if count >= 2:
            for slot in self.slots:
                slot.kill.set()
        self._wake.set()
        return count

    def kill_run(self, worker: int | None = None) -> None:
        """Kill the run of one worker, or every run in flight."""
        for slot in self.slots:
            if slot.running and (worker is None or slot.index == worker):
                slot.kill.set()

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self) -> None:
        self._check_executor()
        super().prepare()
        self._use_workers()

    def prepare_resume(self, rerun_pending: bool = True) -> None:
        self._check_executor()
        self._kill_orphans()
        super().prepare_resume(rerun_pending)
        self._use_workers()
        # Results arrive out of order: continue after the highest experiment number used.
        self.iteration = self._issued = max([self.iteration, *(a.iteration for a in self.history)])

    def _check_executor(self) -> None:
        """Refuse a bad executor before anything is created (a branch, a session)."""
        kind = str(getattr(self.config, "executor", "local") or "local")
        if kind not in EXECUTORS:
            raise UserError(f"executor {kind!r} is not one of {', '.join(EXECUTORS)}")
        why = ray_available() if kind == "ray" else None
        if why:
            raise UserError(f'executor = "ray": {why}')

    def _use_workers(self) -> None:
        assert self.repo is not None and self.session is not None
        self.ws = WorkerWorkspace(self.config, self.repo, self.emit, self.session.root, self._claim, self._bases.get)
        self.ws.remove_worktree()  # left behind by a session that was killed

    def _kill_orphans(self) -> None:
        """Runs that outlived a SIGKILLed engine (their own process groups): end them."""
        root = self.config.session_path()
        for pid_file in root.glob("run-w*.pid") if root.exists() else []:
            try:
                os.killpg(int(pid_file.read_text().split()[0]), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass
            pid_file.unlink(missing_ok=True)

    def _setup_workers(self) -> None:
        assert self.platform is not None
        self.executor = make_executor(self.config, self.platform.device)
        self.executor.start()
        self.slots = build_slots(self.config, self.platform, self.executor)
        self.guard.branch_moves = True  # keeps land while other steps run: the guard leaves the branch be
        where = ", ".join(f"w{s.index} {s.device}" for s in self.slots)
        self.emit(ev.Notice(message=f"{len(self.slots)} workers ({self.executor.name} executor): {where}"))

    # -- the loop ----------------------------------------------------------------------------
    async def _loop(self) -> ev.SessionEnded:
        self._setup_workers()
        try:
            end = await super()._loop()
            if end is None:  # the loop ended with runs in flight: let them finish first
                await self._drain()
                end = Engine._finish(self, "killed" if self._killed_out else self._deferred or "stopped")
            return end
        except BaseException:
            for slot in self.slots:
                slot.kill.set()
            live = [t for t in self._tasks if not t.done()]
            if live:
                await asyncio.wait(live, timeout=self.config.kill_grace + 15)
            raise
        finally:
            if self.executor is not None:
                self.executor.close()

    def _finish(self, reason: str) -> ev.SessionEnded:
        if any(not t.done() for t in self._tasks):
            self._deferred = reason
            return None  # type: ignore[return-value]  # _loop finishes after the drain
        return super()._finish(reason)

    async def _propose(self, n: int, feedback: str) -> Proposal:
        """A fresh proposal from the best commit of now, knowing what the workers are running."""
        base = self.best_commit
        self._bases[n] = base
        project = None
        if str(self.config.agent) not in TREE_FREE_AGENTS:  # a coding agent edits files: not the main tree
            project = self.ws.project_in(self.ws.prepare_worktree(base))
        ctx = self._context(n, feedback, source=self.ws.source_at(base), project=project)
        if "in_flight" in {f.name for f in dataclasses.fields(ctx)}:
            ctx = dataclasses.replace(ctx, in_flight=self._in_flight())
        proposal = await self.proposer.propose(ctx)
        others = proposal.meta.get("other_files_changed")
        if others:  # the scratch worktree is reset before its next use: nothing leaks
            self.emit(ev.GuardrailTripped(iteration=n, reverted=list(others),
                                          reason="only the training script may change (in the worktree)"))
        return proposal

    async def _recheck_best(self) -> str:
        """Every worker may be busy, so there is no tree to re-run the best in: pause (naming how to resume)."""
        what, self._recheck = self._recheck, ""
        self.pause_reason = (f"{what}; paused. Fix the cause, then resume: press p in the TUI, or run "
                             f"`autoresearch-tui control {self.config.session_dir}/{self.config.tag} resume`")
        self.emit(ev.Notice(message=self.pause_reason, level="error"))
        self.pause()
        return ""

    def _in_flight(self) -> tuple[Attempt, ...]:
        busy = sorted((s for s in self.slots if s.busy and s.commit), key=lambda s: s.n or 0)
        return tuple(Attempt(s.n or 0, s.commit, "running", None, s.description, dict(s.meta)) for s in busy)

    def _claim(self, n: int, base: str) -> Slot:
        slot = next((s for s in self.slots if not s.busy), None)
        if slot is None:
            raise RuntimeFailure("no free worker for a new candidate (engine bug: please report)")
        slot.release()
        slot.n, slot.base = n, base
        slot.kill.clear()
        return slot

    async def _evaluate(self, n: int, commit: str, proposal: Proposal) -> None:
        """Hand the candidate to its worker; return once another one may be proposed."""
        slot = next((s for s in self.slots if s.n == n), None)
        if self.stop_requests:  # asked to stop while this one was being proposed: start nothing new
            if slot is not None:
                slot.release()
            self.emit(ev.Notice(message=f"stop requested: candidate #{n} was not started"))
            await self._gate()
            return
        if slot is None:  # the experiment a resume found committed on the branch
            assert self.repo is not None
            parent = self.repo.git.rev_parse(f"{commit}^")
            if self.repo.head() == commit:
                self.repo.reset_hard(self.best_commit)
            slot = self._claim(n, parent)
            slot.commit, slot.description, slot.meta = commit, proposal.description, dict(proposal.meta)
        self._bases.pop(n, None)
        self._issued = max(self._issued, n)
        self.iteration = max(self.iteration, n)
        task = asyncio.ensure_future(self._candidate(slot, n, commit, proposal))
        slot.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        await asyncio.sleep(0)  # let the worker start its run before the next proposal is made
        await self._gate()

    def _task_done(self, task: asyncio.Future) -> None:
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()
        self._wake.set()

    async def _gate(self) -> None:
        """Wait for a free worker; when the loop is winding down, wait for every run."""
        cfg = self.config
        while True:
            if self._error is not None:
                raise self._error
            live = [t for t in self._tasks if not t.done()]
            if not live:
                return
            last = cfg.max_iterations is not None and self._issued >= cfg.max_iterations
            if not (self.stop_requests or self._killed_out or last) and any(not s.busy for s in self.slots):
                return
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait([*live, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def _drain(self) -> None:
        while True:
            live = [t for t in self._tasks if not t.done()]
            if not live:
                break
            await asyncio.wait(live)
        if self._error is not None:
            raise self._error

    async def _candidate(self, slot: Slot, n: int, commit: str, proposal: Proposal) -> None:
        """One worker's experiment: run, judge, record (again on top of the new best if asked)."""
        CURRENT.set(slot)
        try:
            while True:
                slot.rerun = None
                await super()._evaluate(n, commit, proposal)
                if slot.rerun is None:
                    break
                commit = slot.rerun
        finally:
            if self.stop_requests < 2:
                slot.kill.clear()
            slot.release()
            self._wake.set()

    # -- running -----------------------------------------------------------------------------
    async def _run(self, n: int, commit: str, attempt: int, batch_scale: float | None = None) -> RunRecord:
        cfg = self.config
        assert self.session is not None and self.platform is not None and self.executor is not None
        slot = CURRENT.get() or self.slots[0]  # the baseline runs on worker 0
        project = self.ws.checkout(slot, commit)
        log = self.session.run_log(n, commit, attempt)
        self.emit(_event(ev.RunStarted, iteration=n, commit=commit, log=str(log.relative_to(self.session.root)),
                         budget_s=cfg.time_budget or 0, limit_s=self.fair.limit(), attempt=attempt, worker=slot.index,
                         device=slot.device, description=slot.description if n else "baseline"))
        updates = {**self.platform.env(cfg.time_budget or 0, batch_scale), **slot.env}
        spec = RunSpec(cfg.command_argv(), project, {**self._base_env(), **updates}, updates, log, self.fair.limit(),
                       cfg.kill_grace, slot.kill, self.session.root / f"run-w{slot.index}.pid", self.ws.links(),
                       slot.index)
        slot.running = True
        self.guard.before()
        try:
            outcome = await self.executor.run(spec)
        finally:
            slot.running = False
            self.guard.after("training run", n)
        r = metrics.read_run(log, cfg.metric or "", cfg.metric_pattern, outcome.exit_code, outcome.timed_out,
                             outcome.killed, self.fair.limit(), outcome.peak_rss_mb)
        self.emit(_event(ev.RunFinished, iteration=n, commit=commit, exit_code=outcome.exit_code,
                         duration_s=round(outcome.duration_s, 3), timed_out=outcome.timed_out, metric=r.metric,
                         summary=r.summary, peak_memory_mb=r.peak_mb, oom=r.oom, crash_reason=r.crash,
                         attempt=attempt, worker=slot.index, cpu_s=outcome.cpu_s))
        return RunRecord(commit, outcome, r.metric, r.summary, r.peak_mb, r.oom, r.crash)

    @contextmanager
    def _best_tree(self, n: int, best: str, commit: str) -> Iterator[None]:
        """The worker's own worktree checks the best out for its run (in _run) and the candidate
        again after it; the main tree stays at the best. The attempt ref keeps the detached
        candidate reachable meanwhile."""
        assert self.repo is not None
        self.repo.keep_ref(self.config.tag, n, commit)
        yield

    def emit(self, event: ev.Event) -> None:
        slot = CURRENT.get()
        if slot is not None and hasattr(event, "worker") and not getattr(event, "worker"):
            event.worker = slot.index  # type: ignore[attr-defined]
        super().emit(event)

    # -- one history -------------------------------------------------------------------------
    def _record(self, n: int, records: Any, status: str, reason: str, description: str,
                meta: dict[str, Any]) -> None:
        slot = CURRENT.get()
        if slot is None or n == 0:
            return super()._record(n, records, status, reason, description, meta)
        listed: list[RunRecord] = list(records) if isinstance(records, (list, tuple)) else [records]
        measured = listed[0].commit
        if status == KEEP:
            kept, rerun, note = self._replay(slot, measured, description)
            if rerun is not None:  # measured on an older best: measure it on the new one
                self.emit(ev.Notice(message=f"#{n} on w{slot.index}: {note}"))
                slot.rerun = rerun
                return
            if kept is None:
                status, reason = DISCARD, note
            else:
                listed = [dataclasses.replace(r, commit=kept) for r in listed]
                if note:
                    self.emit(ev.Notice(message=f"#{n} on w{slot.index}: {note}"))
        # A discard's patch is its own change (kept by commit_source), not the distance to a best
        # that moved since; a replayed keep leaves the measured commit's diff unused.
        if measured not in self.ws.diffs and self.repo is not None:
            self.ws.diffs[measured] = self.repo.diff(slot.base, measured)
        super()._record(n, listed if isinstance(records, (list, tuple)) else listed[0], status, reason,
                        description, meta)
        self.ws.diffs.pop(measured, None)
        self.iteration = max(self.iteration, self._issued)

    def _replay(self, slot: Slot, commit: str, description: str) -> tuple[str | None, str | None, str]:
        """(commit kept on the branch, commit to run again, note) for a winning candidate."""
        repo, ws, best, base = self.repo, self.ws, self.best_commit, slot.base
        assert repo is not None
        if repo.head() != best:
            repo.reset_hard(best)  # the main tree rests at the best; nothing else moves it
        if base == best:
            repo.reset_hard(commit)  # proposed from the current best: a fast-forward
            return commit, None, ""
        base_src, best_src, cand_src = ws.source_at(base), ws.source_at(best), ws.source_at(commit)
        merged = merge3(base_src, best_src, cand_src)
        replay = merged if merged is not None else merge_prefer(base_src, best_src, cand_src)
        if replay == best_src:
            return None, None, "its change is already in the best"
        strict = bool(getattr(self.config, "strict_replay", False))
        if replay == cand_src or (merged is not None and not strict):
            (self.config.path(self.config.train_script)).write_text(replay, encoding="utf-8")
            kept = repo.commit_paths([ws.train_rel], f"exp: {description}")
            how = "3-way merged" if replay != cand_src else "applied"
            return kept, None, f"proposed from {base[:7]}, {how} onto the best {best[:7]} as {kept[:7]}"
        if slot.replays >= MAX_REPLAYS:
            return None, None, f"won, but the best moved {MAX_REPLAYS} times while it was re-run; not kept"
        slot.replays += 1
        why = "it conflicts with" if merged is None else "strict_replay: it is measured again on"
        rerun = ws.commit_source(slot, best, replay, f"exp: {description}")
        slot.base = best
        return None, rerun, f"won against the best, but {why} the new best {best[:7]}: re-running it there"

    async def review(self, n: int, commit: str, proposal: Proposal) -> tuple[str | None, Proposal]:
        """The human review, on the worker's commit (the main tree stays at the best)."""
        slot = next(s for s in self.slots if s.n == n)
        repo, ws = self.repo, self.ws
        assert repo is not None
        diff = ws.diffs.get(commit) or repo.diff(slot.base, commit, ws.train_rel)
        decision, source = await review.ask(self, n, commit, proposal.description, diff)
        if decision == "edit" and source is not None and source != ws.source_at(commit):
            proposal = Proposal(source, proposal.description + " (edited by reviewer)", proposal.meta)
            ws.diffs.pop(commit, None)
            commit = ws.commit_source(slot, slot.base, source, f"exp: {proposal.description}")
            slot.commit, slot.description = commit, proposal.description
            self.emit(ev.ProposalMade(iteration=n, description=proposal.description, diff=ws.diffs[commit],
                                      meta=proposal.meta))
        self.emit(ev.ReviewDecided(iteration=n, decision=decision))
        if decision in ("approve", "edit"):
            return commit, proposal
        repo.keep_ref(self.config.tag, n, commit)
        ws.diffs.pop(commit, None)
        slot.release()
        self.emit(ev.ProposalFailed(iteration=n, reason="rejected by the reviewer"))
        return None, proposal


__all__ = ["ParallelEngine", "make_engine", "parse_gpus", "wants_parallel"]
