"""The one small interface every proposer implements.

The engine owns git, runs and decisions; a proposer only reads context and returns a new
version of the training script with a one-line description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Attempt:
    """One finished experiment as a proposer sees it (baseline included, iteration 0)."""

    iteration: int
    commit: str
    status: str  # keep | discard | crash
    metric: float | None  # None for a crash
    description: str
    meta: dict[str, Any] = field(default_factory=dict)  # what the proposer attached to it


@dataclass(frozen=True)
class ProposalContext:
    iteration: int  # the iteration about to run (1 = first after the baseline)
    train_path: str  # relative to the project root
    train_source: str  # current best version of the training script
    readonly_source: str | None
    metric: str
    direction: str  # "min" | "max"
    scope: str  # architecture | hyperparameters | optimizer | all
    history: tuple[Attempt, ...]  # oldest first
    best: Attempt | None
    seed: int = 0
    hypothesis: str | None = None
    vary: tuple[str, ...] = ()  # experiment plan: constant names or categories to vary
    hold: tuple[str, ...] = ()  # experiment plan: constant names or categories never to change
    platform: str = "cpu"
    notes: str = ""  # user's research notes (program.md) and live instructions
    project: str = ""  # absolute project folder (coding-agent CLIs run there)
    readonly_path: str = ""  # relative to the project root
    agent_log: str = ""  # absolute path: stream the agent's own output here (the UI tails it)
    feedback: str = ""  # why the previous answer was rejected (syntax error, no change, ...)
    time_budget_s: float = 0.0
    # Parallel experiments: candidates other workers are running now (status "running", no
    # metric yet); propose something different from them.
    in_flight: tuple[Attempt, ...] = ()
    mark: str = ""  # the process mark of the agent's processes (see core/processes.py)


@dataclass(frozen=True)
class Proposal:
    new_source: str
    description: str
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. constant, old, new, category


class ProposalError(Exception):
    """No usable change this time; the engine re-asks (counted) unless `fatal`."""

    fatal = False


class SearchExhausted(ProposalError):
    """Nothing left to try: the session ends normally."""

    fatal = True


class AgentUnavailable(ProposalError):
    """The agent cannot work at all (missing CLI, rejected key): stop with one clear line."""

    fatal = True


class Proposer(Protocol):
    """`touches_tree = False` (optional, default True) says the proposer never writes files: the
    engine then skips the untracked-files check and lets it work from the main tree."""

    name: str

    async def propose(self, ctx: ProposalContext) -> Proposal: ...


class AgentFailed(ProposalError):
    """One try of an external agent produced nothing usable (timeout, bad answer, no change)."""
