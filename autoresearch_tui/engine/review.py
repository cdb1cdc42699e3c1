"""The optional review gate (`review = true`): a human approves, edits or rejects a proposal.

The question goes out as an event; the answer comes back through the control file
(`review_approve`, `review_edit` with the new script as `source`, `review_reject`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from autoresearch_tui.agents.base import Proposal
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.control import ReviewAnswer


async def ask(engine: Any, n: int, commit: str, description: str, diff: str) -> tuple[str, str | None]:
    """Publish the question and wait for this iteration's answer: (decision, edited source or None)."""
    engine.emit(ev.ReviewRequested(iteration=n, commit=commit, description=description, diff=diff))
    while True:
        try:
            answer = await asyncio.wait_for(engine.review_answers.get(), 0.5)
        except asyncio.TimeoutError:
            if engine.stop_requests:  # a stop is never ignored: the waiting proposal is dropped
                answer = ReviewAnswer("reject", n)
                break
            continue
        if answer.iteration in (n, 0):  # 0: whichever review is open
            break
    return answer.decision, answer.source


async def review(engine: Any, slot: Any, n: int, commit: str, proposal: Proposal) -> tuple[str | None, Proposal]:
    """Wait for a human: approve runs it, edit replaces the script first, reject drops it. The
    slot's workspace says where the candidate lives (the branch, or a worker's worktree)."""
    ws = engine.ws
    diff = ws.diffs.get(commit) or engine.repo.diff(slot.base, commit, ws.train_rel)
    decision, source = await ask(engine, n, commit, proposal.description, diff)
    if decision == "edit" and source is not None and source != ws.source_at(commit):
        proposal = Proposal(source, proposal.description + " (edited by reviewer)", proposal.meta)
        commit = ws.revise(slot, commit, source, f"exp: {proposal.description}")
        slot.commit, slot.description = commit, proposal.description
        engine.emit(ev.ProposalMade(iteration=n, description=proposal.description, diff=ws.diffs[commit],
                                    meta=proposal.meta))
    engine.emit(ev.ReviewDecided(iteration=n, decision=decision))
    if decision in ("approve", "edit"):
        return commit, proposal
    engine.repo.keep_ref(engine.config.tag, n, commit)
    ws.drop(slot, engine.best_commit)
    slot.release()
    engine.emit(ev.ProposalFailed(iteration=n, reason="rejected by the reviewer"))
    return None, proposal
