"""The optional review gate (`review = true`): a human approves, edits or rejects a proposal.

The question goes out as an event; the answer comes back through the control file
(`review_approve`, `review_edit` with the new script as `source`, `review_reject`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from autoresearch_tui.agents.base import Proposal
from autoresearch_tui.engine import events as ev


async def ask(engine: Any, n: int, commit: str, description: str, diff: str) -> tuple[str, str | None]:
    """Publish the question and wait for this iteration's answer: (decision, edited source or None)."""
    engine.emit(ev.ReviewRequested(iteration=n, commit=commit, description=description, diff=diff))
    while True:
        try:
            answer = await asyncio.wait_for(engine.review_answers.get(), 0.5)
        except asyncio.TimeoutError:
            if engine.stop_requests:  # a stop is never ignored: the waiting proposal is dropped
                answer = {"cmd": "review_reject"}
                break
            continue
        if answer.get("iteration", n) == n:
            break
    decision = str(answer.get("cmd", "reject")).removeprefix("review_")
    source = answer.get("source")
    return decision, source if isinstance(source, str) else None


async def review(engine: Any, n: int, commit: str, proposal: Proposal) -> tuple[str | None, Proposal]:
    """Wait for a human: approve runs it, edit replaces the script first, reject drops it."""
    repo = engine.repo
    diff = repo.diff(engine.best_commit, commit, engine.ws.train_rel)
    decision, source = await ask(engine, n, commit, proposal.description, diff)
    if decision == "edit" and source is not None and source != engine.ws.train_source():
        engine.config.path(engine.config.train_script).write_text(source, encoding="utf-8")
        commit = repo.amend([engine.ws.train_rel], f"exp: {proposal.description} (edited by reviewer)")
        proposal = Proposal(source, proposal.description + " (edited by reviewer)", proposal.meta)
        engine.emit(ev.ProposalMade(iteration=n, description=proposal.description,
                                    diff=repo.diff(engine.best_commit, commit, engine.ws.train_rel),
                                    meta=proposal.meta))
    engine.emit(ev.ReviewDecided(iteration=n, decision=decision))
    if decision in ("approve", "edit"):
        return commit, proposal
    repo.keep_ref(engine.config.tag, n, commit)
    repo.reset_hard(engine.best_commit)
    engine.emit(ev.ProposalFailed(iteration=n, reason="rejected by the reviewer"))
    return None, proposal
