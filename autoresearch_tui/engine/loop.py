"""The research loop (Phases 1-3): baseline, then propose -> commit -> run -> decide -> log.

The engine publishes every step as an event to the session directory and to in-process
listeners. Commands arrive as method calls or through the session's control file.

One engine for every slot count: the sequential loop is one slot in the main tree; workers are
N slots in worktrees (slots.py), run by the local or the Ray executor. Where a slot's commits and
runs live is its workspace's business (workspace.py, slots.py); the loop asks both the same.

Keep or discard is decided on one path, measure.py: `measure` runs a candidate on its slot and
asks noise.judge (re-running while in doubt), then `record_outcome` lands a keep (with workers:
replayed onto the best of the moment), writes the rows (durable), then the ref and patch of a
discard, then resets the branch to the best. What the proposer sees and the pipeline's prepared
candidate: proposing.py.

Stopping: the first stop request lets the runs in flight finish and starts no new one; the
second kills them all.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Callable

from autoresearch_tui.agents.base import (
    Attempt, Proposal, ProposalError, Proposer, SearchExhausted,
)
from autoresearch_tui.engine import events as ev
from autoresearch_tui.core import processes, sanitize, secrets
from autoresearch_tui.core.git import Git
from autoresearch_tui.engine import hardware, hooks, measure, noise, proposing, report_files, results, review, setup
from autoresearch_tui.engine.config import ResearchConfig
from autoresearch_tui.engine.control import ReviewAnswer, watch_control
from autoresearch_tui.engine.fairness import Fairness
from autoresearch_tui.engine.guard import Guard
from autoresearch_tui.engine.noise import CRASH
from autoresearch_tui.engine.resume import Recovered, recover
from autoresearch_tui.engine.executors import Executor, LocalExecutor, check_executor, make_executor
from autoresearch_tui.engine.session import SessionDir, write_atomic
from autoresearch_tui.engine.slots import Slot, SlotWorkspace, build_slots, wants_workers
from autoresearch_tui.engine.workspace import Workspace
from autoresearch_tui.errors import RuntimeFailure

Listener = Callable[[ev.Event], None]
MAX_FAILED_PROPOSALS = 3


class Engine:
    def __init__(self, config: ResearchConfig, proposer: Proposer, listeners: list[Listener] | None = None) -> None:
        self.config = config
        self.proposer = proposer
        self.listeners = list(listeners or [])
        self.stop_requests = 0
        self.paused = False
        self.notes: list[str] = []
        self.slotted = wants_workers(config)  # worker slots in worktrees, else one slot in the main tree
        self.slots = [Slot(0, "")]  # the workers' slots replace it once the platform is known
        self.executor: Executor = LocalExecutor()
        self._tasks: set[asyncio.Future] = set()  # one per candidate in flight
        self._wake = asyncio.Event()  # a slot came free, or a stop request
        self._error: BaseException | None = None  # raised by a candidate's task
        self._issued = 0  # the highest experiment number handed to a slot
        self._resume = asyncio.Event()
        self._resume.set()
        self.rows: list[results.ResultRow] = []
        self.history: list[Attempt] = []
        self.best_commit = ""
        self.best_metric: float | None = None  # the mean of best_runs
        self.best_runs: list[float] = []  # metric of each run of the best commit
        self.noise = noise.NoiseModel()
        self.reruns = self.best_reruns = 0  # runs spent confirming: candidates' re-runs, the best's runs beside them
        self.iteration = 0
        self.started = time.time()
        self.platform: hardware.Platform | None = None
        self.session: SessionDir | None = None
        self.repo: Git | None = None
        self.recovered: Recovered | None = None
        self.ws: Workspace | None = None  # type: ignore[assignment]
        self.mark = ""  # the process mark of this session (core/processes.py)
        self.killed_out = False  # the second stop request killed a run: end the session
        self.pause_reason = ""
        self.crash_streak: tuple[str, int] = ("", 0)
        self.recheck = ""  # the breaker tripped: re-run the best commit before deciding to pause
        self.prefetch: tuple[str, asyncio.Future] | None = None  # (base commit, proposal task)
        self.spent = {"tokens_in": 0.0, "tokens_out": 0.0, "cost_usd": 0.0}
        self.review_answers: asyncio.Queue[ReviewAnswer] = asyncio.Queue()
        # Prepare the next candidate during a run; workers overlap proposing and training already.
        self.pipeline = not self.slotted and (
            config.pipeline == "on" or (config.pipeline == "auto" and config.agent not in ("builtin", "optuna")))
        self.touches_tree = bool(getattr(proposer, "touches_tree", True))  # see agents.base.Proposer

    # -- commands (from the TUI, signal handlers or the control file) -------------------
    def request_stop(self) -> int:
        """First: the runs in flight finish, no new one starts. Second: kill them all."""
        self.stop_requests += 1
        self._resume.set()
        if self.stop_requests >= 2:
            for slot in self.slots:
                slot.kill.set()
        self._wake.set()
        if self.session is not None:
            self.emit(ev.StopRequested(kill=self.stop_requests >= 2))
        return self.stop_requests

    def kill_run(self, worker: int | None = None) -> None:
        """Kill the current run (recorded as discard), or one worker's. With one slot a kill that
        arrives between runs kills the next (the user pressed it for the run on screen)."""
        for slot in self.slots:
            if (worker is None or slot.index == worker) and (slot.running or len(self.slots) == 1):
                slot.kill.set()

    def pause(self) -> None:
        self.paused = True
        self._resume.clear()

    def resume(self) -> None:
        self.paused = False
        self._resume.set()

    def instruct(self, text: str) -> None:
        self.notes.append(text)

    def answer_review(self, answer: ReviewAnswer) -> None:
        self.review_answers.put_nowait(answer)

    # -- events ----------------------------------------------------------------------------
    def emit(self, event: ev.Event) -> None:
        if self.session is not None:
            self.session.append(event)
        for listener in self.listeners:
            listener(event)

    # -- setup -----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check everything and create the branch and session; raises UserError on bad input."""
        check_executor(self.config)
        self._adopt(setup.start(self.config))

    def prepare_resume(self, rerun_pending: bool = True) -> None:
        """Continue `autoresearch/<tag>`: reconcile what a crash left behind, then go on."""
        cfg = self.config
        check_executor(self.config)
        opened = setup.reopen(cfg)
        rec = recover(opened.repo, opened.session, opened.results_path, cfg.branch, cfg.tag, rerun_pending)
        started = rec.state.started
        if not opened.original_branch:
            opened.original_branch, opened.base_commit = (
                (started.original_branch, started.base_commit) if started else ("?", opened.repo.head()))
        self._adopt(opened)
        self.recovered = rec
        self.rows, self.history = list(rec.rows), list(rec.history)
        # Worker results arrive out of order: continue after the highest experiment number used.
        self.iteration = self._issued = max([rec.iteration, *(a.iteration for a in rec.history)])
        self.best_commit = rec.best_commit or ""
        self.noise = noise.NoiseModel({c: list(v) for c, v in rec.state.noise.groups.items()})  # rows + BestRemeasured
        for event in rec.new_events:
            if isinstance(event, ev.ResultRecorded) and event.status != CRASH:
                self.noise.add(event.commit, event.metric)
        self.reruns = sum(1 for e in rec.state.results if e.iteration and e.rerun)
        self.best_reruns = rec.state.remeasured
        self.best_runs = self.noise.runs(self.best_commit) or ([rec.best_metric] if rec.best_metric is not None else [])
        self.best_metric = noise.mean(self.best_runs) if self.best_runs else None
        if started is not None:
            self.started = started.ts

    def _adopt(self, opened: setup.Opened) -> None:
        self.repo, self.session, self.results_path = opened.repo, opened.session, opened.results_path
        self.original_branch, self.base_commit = opened.original_branch, opened.base_commit
        kind = SlotWorkspace if self.slotted else Workspace
        self.ws = kind(self.config, opened.repo, self.emit, opened.session.root)
        self.ws.remove_worktree()  # left behind by a session that was killed
        self.mark = processes.session_mark(opened.session.root, self.config.tag)
        self.fair = Fairness(self.config, self.emit)
        self.guard = Guard.for_repo(opened.repo, self.config.tag, self.config.branch, opened.session.root, self.emit)

    def _start_slots(self) -> None:
        assert self.platform is not None
        self.executor = make_executor(self.config, self.platform.device, f"{self.mark}:ray")
        self.executor.start()
        if not self.slotted:
            return
        self.slots = build_slots(self.config, self.platform, self.executor)
        self.guard.branch_moves = True  # keeps land while other steps run: the guard leaves the branch be
        where = ", ".join(f"w{s.index} {s.device}" for s in self.slots)
        self.emit(ev.Notice(message=f"{len(self.slots)} workers ({self.executor.name} executor): {where}"))

    # -- main ------------------------------------------------------------------------------
    async def run(self) -> ev.SessionEnded:
        if self.repo is None:
            self.prepare()
        cfg, repo = self.config, self.repo
        assert repo is not None and self.session is not None
        env = self.run_env()
        self.platform = await hardware.detect(cfg.command_argv(), cfg.train_script, cfg.project, env, cfg.device,
                                              f"{self.mark}:probe")
        snapshot = {**cfg.to_dict(), "project": str(cfg.project), "platform": self.platform.to_dict()}
        self.session.write_snapshot(snapshot)
        self.emit(ev.SessionStarted(tag=cfg.tag, branch=cfg.branch, project=str(cfg.project),
                                    original_branch=self.original_branch, base_commit=self.base_commit,
                                    config=snapshot, resumed=self.recovered is not None))
        p = self.platform
        self.emit(ev.PlatformDetected(platform=p.platform, device=p.device, adjustments=p.adjustments,
                                      notes=p.notes, torch_version=p.torch_version, probe_error=p.probe_error))
        results.ensure_header(self.results_path, cfg.metric)
        self.fair.announce()
        control = asyncio.ensure_future(watch_control(self.session, self))
        try:
            return await self._loop()
        finally:
            control.cancel()
            if self.prefetch is not None:
                self.prefetch[1].cancel()
            self.ws.remove_worktree()
            for kind in ("run", "agent"):  # whatever got away from its run or agent
                processes.end_tree(None, f"{self.mark}:{kind}")

    async def _loop(self) -> ev.SessionEnded:
        self._start_slots()
        try:
            reason = await self._steps()
            await self._drain()  # the runs in flight finish first
            return self._finish("killed" if self.killed_out else reason)
        except BaseException:
            for slot in self.slots:
                slot.kill.set()
            live = [t for t in self._tasks if not t.done()]
            if live:
                await asyncio.wait(live, timeout=self.config.kill_grace + 15)
            raise
        finally:
            self.executor.close()

    async def _steps(self) -> str:
        """Baseline, then propose -> commit -> hand to a slot, until a reason to end (returned)."""
        cfg, repo = self.config, self.repo
        assert repo is not None
        rec = self.recovered
        if rec is not None:
            for event in rec.new_events:
                self.emit(event)
            for repair in rec.repairs:
                self.emit(ev.Notice(message=f"resume: {repair}", level="warning"))
        if not self.best_commit:
            self.best_commit = repo.head()
            ended = await measure.baseline(self)
            if ended:
                return ended
        if rec is not None and rec.pending is not None:
            n, commit, description, meta = rec.pending
            self.emit(ev.IterationStarted(iteration=n, parent=self.best_commit))
            self.emit(ev.ProposalMade(iteration=n, description=description,
                                      diff=repo.diff(self.best_commit, commit, self.ws.train_rel), meta=meta))
            slot = self.claim(n, self.ws.adopt(commit, self.best_commit))
            slot.commit, slot.description, slot.meta = commit, description, dict(meta)
            await self._evaluate(slot, n, commit, Proposal("", description, meta))
            if self.killed_out:
                return "killed"
        failed_proposals, feedback = 0, ""
        while True:
            if cfg.max_iterations is not None and self.iteration >= cfg.max_iterations:
                return "max_iterations"
            if self.stop_requests:
                return "stopped"
            if cfg.max_cost is not None and self.spent["cost_usd"] >= cfg.max_cost:
                self.emit(ev.Notice(message=f"the agent has spent ${self.spent['cost_usd']:.2f}, "
                                            f"the max_cost of ${cfg.max_cost:.2f}; stopping", level="warning"))
                return "cost_cap"
            if self.paused:
                self.emit(ev.LoopPaused(reason=self.pause_reason or "paused by the user; resume to continue",
                                        breaker=bool(self.pause_reason)))
                await self._resume.wait()
                self.pause_reason = ""
                if self.stop_requests:
                    return "stopped"
                self.emit(ev.LoopResumed())
            n = self.iteration + 1
            self.emit(ev.IterationStarted(iteration=n, parent=self.best_commit))
            untracked_before = self.repo.untracked_files() if self.touches_tree else None
            base = self.best_commit
            self.guard.before(tip=base, quiet=self.prefetch is None)
            slot: Slot | None = None
            try:
                proposal = sanitize.proposal(await proposing.propose(self, n, feedback, base))
            except ProposalError as exc:
                self.guard.after("agent", n)
                report_files.add_spend(self.spent, getattr(exc, "meta", None) or {})
                self.emit(ev.ProposalFailed(iteration=n, reason=str(exc), meta=getattr(exc, "meta", None) or {}))
                if isinstance(exc, SearchExhausted):
                    return "exhausted"
                if exc.fatal:
                    self.emit(ev.Notice(message=str(exc), level="error"))
                    return "agent_unavailable"
                commit, feedback = None, str(exc)
            else:
                self.guard.after("agent", n)
                report_files.add_spend(self.spent, proposal.meta)
                slot = self.claim(n, base)
                commit, feedback = self.ws.apply(slot, n, proposal, self.best_commit, untracked_before)
                if commit is not None and cfg.review:
                    commit, proposal = await review.review(self, slot, n, commit, proposal)
                    if commit is None:
                        continue  # rejected by the reviewer: not the agent's failure
            if commit is None or slot is None:
                if slot is not None:
                    slot.release()
                self.ws.restore(self.best_commit, untracked_before)
                failed_proposals += 1
                if failed_proposals >= MAX_FAILED_PROPOSALS:
                    self.emit(ev.Notice(message=f"{failed_proposals} proposals in a row were unusable "
                                                f"(last: {feedback}); stopping", level="error"))
                    return "proposals_failed"
                continue
            failed_proposals, feedback = 0, ""
            proposing.start_prefetch(self, n + 1)
            await self._evaluate(slot, n, commit, proposal)
            if self.killed_out:
                return "killed"
            if self.recheck:
                feedback = await measure.recheck_best(self)

    # -- slots ---------------------------------------------------------------------------
    def claim(self, n: int, base: str) -> Slot:
        slot = next((s for s in self.slots if not s.busy), None)
        if slot is None:
            raise RuntimeFailure("no free slot for a new candidate (engine bug: please report)")
        slot.release()
        slot.n, slot.base = n, base
        return slot

    def free(self, slot: Slot) -> None:
        """The slot's work is done: a kill aimed at it is spent (unless the session is being killed)."""
        if self.stop_requests < 2:
            slot.kill.clear()
        slot.release()

    def in_flight(self) -> tuple[Attempt, ...]:
        busy = sorted((s for s in self.slots if s.busy and s.commit), key=lambda s: s.n or 0)
        return tuple(Attempt(s.n or 0, s.commit, "running", None, s.description, dict(s.meta)) for s in busy)

    async def _evaluate(self, slot: Slot, n: int, commit: str, proposal: Proposal) -> None:
        """Hand the candidate to its slot; return once another one may be proposed (one slot:
        once this one is recorded)."""
        if self.stop_requests:  # asked to stop while this one was being proposed: start nothing new
            self.ws.drop(slot, self.best_commit)
            slot.release()
            self.emit(ev.Notice(message=f"stop requested: candidate #{n} was not started"))
            await self._gate()
            return
        self._issued = max(self._issued, n)
        self.iteration = max(self.iteration, n)
        task = asyncio.ensure_future(self._candidate(slot, n, commit, proposal))
        slot.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        await asyncio.sleep(0)  # let the slot start its run before the next proposal is made
        await self._gate()

    def _task_done(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()
        self._wake.set()

    async def _gate(self) -> None:
        """Wait for a free slot; when the loop is winding down, wait for every run."""
        cfg = self.config
        while True:
            if self._error is not None:
                raise self._error
            live = [t for t in self._tasks if not t.done()]
            if not live:
                return
            last = cfg.max_iterations is not None and self._issued >= cfg.max_iterations
            if not (self.stop_requests or self.killed_out or last) and any(not s.busy for s in self.slots):
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
        """One slot's experiment: run, judge, record (again on top of the new best if asked)."""
        try:
            while True:
                slot.rerun = None
                await measure.measure(self, slot, n, commit, proposal)
                if slot.rerun is None:
                    break
                commit = slot.rerun
        finally:
            self.free(slot)
            self._wake.set()

    def write_progress(self, n: int) -> None:
        assert self.session is not None
        text = report_files.progress(self.config, self.rows, self.history, n, self.started)
        write_atomic(self.session.reports / f"progress-{n:04d}.md", text)
        self.emit(ev.ProgressReport(iteration=n, markdown=text))

    def _finish(self, reason: str) -> ev.SessionEnded:
        cfg = self.config
        assert self.session is not None
        self.guard.close(self.iteration)
        path = report_files.final(cfg, self.session.root, self.rows, self.platform, self.started, self.spent,
                                  self.noise, (self.reruns, self.best_reruns), self.fair)
        end = ev.SessionEnded(reason=reason, iterations=self.iteration, best_commit=self.best_commit or None,
                              best_metric=self.best_metric, summary_path=str(path))
        self.emit(end)
        hooks.fire(cfg.on_finish, cfg.project, {"AUTORESEARCH_REASON": reason,
                                                "AUTORESEARCH_BEST": f"{self.best_metric}"}, f"{self.mark}:hook")
        return end

    # -- helpers ---------------------------------------------------------------------------
    def run_env(self) -> dict[str, str]:
        return secrets.clean_env({**os.environ, "PYTHONUNBUFFERED": "1"}, self.config)

