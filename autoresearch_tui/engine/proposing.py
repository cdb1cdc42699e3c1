"""Proposals: the context a proposer sees, and the candidate it returns, fresh or prepared.

With the pipeline on, the next candidate is asked for from the best commit, in a scratch
worktree, while the current one trains (`start_prefetch`); `propose` takes it when it still
applies to the best of the moment (carried over 3-way unless `strict_pipeline`), else asks again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from autoresearch_tui.agents.base import Proposal, ProposalContext, ProposalError
from autoresearch_tui.agents.prompt import read_notes
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.noise import KEEP

if TYPE_CHECKING:
    from autoresearch_tui.engine.loop import Engine


def context(engine: Engine, n: int, feedback: str = "", source: str | None = None,
            project: Path | None = None) -> ProposalContext:
    cfg = engine.config
    readonly, readonly_files = None, cfg.readonly_files()
    if readonly_files and n == 1:
        readonly = "\n\n".join(cfg.path(f).read_text(encoding="utf-8", errors="replace") for f in readonly_files)
    best = next((a for a in reversed(engine.history) if a.status == KEEP), None)
    return ProposalContext(
        iteration=n, train_path=cfg.train_script,
        train_source=source if source is not None else engine.ws.train_source(), readonly_source=readonly,
        metric=cfg.metric or "", direction=cfg.direction or "min", scope=cfg.scope,
        history=tuple(engine.history), best=best, seed=cfg.seed, hypothesis=cfg.hypothesis,
        vary=tuple(cfg.vary), hold=(*cfg.hold, *engine.fair.held()),
        platform=engine.platform.device if engine.platform else "cpu",
        notes="\n\n".join(filter(None, [read_notes(cfg.project, cfg.notes_file), *engine.notes,
                                         engine.fair.agent_note()])),
        project=str(project or cfg.project), readonly_path=", ".join(readonly_files),
        agent_log=str(engine.session.root / "agents" / f"{n:04d}.log") if engine.session else "",
        feedback=feedback, time_budget_s=cfg.time_budget or 0.0, mark=f"{engine.mark}:agent:{n}",
        in_flight=engine.in_flight(),
    )


async def propose(engine: Engine, n: int, feedback: str, best: str) -> Proposal:
    """The next proposal from `best`: the one prepared during the last run if still valid,
    else a fresh one, knowing what the other slots are running."""
    prepared, engine.prefetch = engine.prefetch, None
    if prepared is not None and not feedback:
        base, task = prepared
        try:
            proposal = await task
        except ProposalError as exc:
            engine.emit(ev.Notice(message=f"the prepared candidate failed ({exc}); asking again", level="warning"))
        else:
            _other_files(engine, n, proposal)
            if base == best:
                return proposal
            if not engine.config.strict_pipeline:
                moved = engine.ws.rebase_source(proposal.new_source, base, best)
                if moved is not None:
                    return Proposal(moved, proposal.description, {**proposal.meta, "rebased": True})
            engine.emit(ev.Notice(message="the prepared candidate does not apply to the new best; asking again"))
    elif prepared is not None:
        prepared[1].cancel()
    source, project = engine.ws.proposal_view(best, engine.touches_tree)
    proposal = await engine.proposer.propose(context(engine, n, feedback, source, project))
    _other_files(engine, n, proposal)
    return proposal


def _other_files(engine: Engine, n: int, proposal: Proposal) -> None:
    others = proposal.meta.get("other_files_changed")
    if others:  # made in a scratch worktree, which is reset before its next use: nothing leaks
        engine.emit(ev.GuardrailTripped(iteration=n, reverted=list(others),
                                        reason="only the training script may change (in the worktree)"))


def start_prefetch(engine: Engine, n: int) -> None:
    """While experiment n-1 trains, prepare candidate n from the best commit in a worktree."""
    cfg = engine.config
    if not engine.pipeline or (cfg.max_iterations is not None and n > cfg.max_iterations) or engine.stop_requests:
        return
    base = engine.best_commit
    worktree = engine.ws.prepare_worktree(base)
    ctx = context(engine, n, source=engine.ws.source_at(base), project=worktree)
    task = asyncio.ensure_future(engine.proposer.propose(ctx))
    engine.prefetch = (base, task)
    engine.emit(ev.Notice(message=f"preparing candidate {n} while experiment {n - 1} trains"))

    def ready(done: asyncio.Future) -> None:
        if not done.cancelled() and done.exception() is None:
            engine.emit(ev.CandidatePrepared(iteration=n, description=done.result().description))

    task.add_done_callback(ready)
