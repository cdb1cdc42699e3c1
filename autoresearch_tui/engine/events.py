"""Typed events the engine publishes; one JSON object per line in events.jsonl.

Every view (live, `watch`, replay) is built from this stream, so anything a screen shows
must be derivable from these events plus the per-run log files.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from autoresearch_tui.engine import sanitize


@dataclass
class Event:
    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> str:
        data = sanitize.deep({"kind": self.kind, **asdict(self)})
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@dataclass
class SessionStarted(Event):
    kind: ClassVar[str] = "session_start"
    tag: str
    branch: str
    project: str
    original_branch: str
    base_commit: str
    config: dict[str, Any]
    resumed: bool = False


@dataclass
class PlatformDetected(Event):
    kind: ClassVar[str] = "platform"
    platform: str  # CUDA | MPS | CPU
    device: str  # cuda | mps | cpu
    adjustments: dict[str, Any]
    notes: str = ""
    torch_version: str | None = None
    probe_error: str | None = None


@dataclass
class IterationStarted(Event):
    kind: ClassVar[str] = "iteration_start"
    iteration: int
    parent: str  # the best commit the change starts from


@dataclass
class ProposalMade(Event):
    kind: ClassVar[str] = "proposal"
    iteration: int
    description: str
    diff: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class CandidatePrepared(Event):
    """Pipelining: the next proposal is ready while the current experiment still trains."""

    kind: ClassVar[str] = "prepared"
    iteration: int
    description: str


@dataclass
class ProposalFailed(Event):
    kind: ClassVar[str] = "proposal_failed"
    iteration: int
    reason: str
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. tokens spent on the failed try


@dataclass
class ReviewRequested(Event):
    """`review = true`: the committed proposal waits for approve / edit / reject."""

    kind: ClassVar[str] = "review"
    iteration: int
    commit: str
    description: str
    diff: str


@dataclass
class ReviewDecided(Event):
    kind: ClassVar[str] = "review_done"
    iteration: int
    decision: str  # approve | edit | reject


@dataclass
class GuardrailTripped(Event):
    """The proposal touched something it must not; the engine reverted it."""

    kind: ClassVar[str] = "guardrail"
    iteration: int
    reverted: list[str]
    reason: str


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run_start"
    iteration: int
    commit: str
    log: str  # path relative to the session directory
    budget_s: float
    limit_s: float
    attempt: int = 1  # 2 = the OOM retry
    worker: int = 0  # parallel experiments: which worker runs it (0 in the sequential loop)
    device: str = ""  # e.g. "cuda:1" with parallel workers
    description: str = ""


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "run_end"
    iteration: int
    commit: str
    exit_code: int | None
    duration_s: float
    timed_out: bool
    metric: float | None
    summary: dict[str, Any]
    peak_memory_mb: float | None
    oom: bool = False
    crash_reason: str | None = None
    attempt: int = 1
    worker: int = 0
    cpu_s: float | None = None  # CPU time of the run's process tree (the compute it used)


@dataclass
class ResultRecorded(Event):
    """One results.tsv row was appended; `reason` says why keep/discard/crash."""

    kind: ClassVar[str] = "result"
    iteration: int
    commit: str
    metric: float | None
    memory_gb: float
    status: str  # keep | discard | crash
    description: str
    reason: str
    best_commit: str
    best_metric: float | None
    attempt_ref: str | None = None  # where a discarded/crashed diff stays reachable
    rerun: int = 0  # 0: the experiment's run; 1, 2, ...: re-runs of the same commit (noise, confirmation)
    worker: int = 0  # parallel experiments: the worker that ran it


@dataclass
class BestRemeasured(Event):
    """keep_policy confirm: the best commit ran once more, just before candidate `iteration`'s
    next run, so both see the same machine. Not an experiment, so no results.tsv row: its value
    joins the best's runs (and the noise estimate)."""

    kind: ClassVar[str] = "best_rerun"
    iteration: int  # the candidate it was measured beside
    commit: str  # the best commit
    metric: float
    runs: int  # the best's runs so far, this one included
    best_metric: float  # the mean of them
    worker: int = 0


@dataclass
class ProgressReport(Event):
    kind: ClassVar[str] = "progress"
    iteration: int
    markdown: str


@dataclass
class Notice(Event):
    kind: ClassVar[str] = "notice"
    message: str
    level: str = "info"  # info | warning | error


@dataclass
class LoopPaused(Event):
    """The loop waits before the next iteration (user pause or circuit breaker)."""

    kind: ClassVar[str] = "paused"
    reason: str
    breaker: bool = False  # True: the same failure repeated; fix the cause, then resume


@dataclass
class StopRequested(Event):
    """Seen by every view: the current run finishes (or is killed), then the session ends."""

    kind: ClassVar[str] = "stop_requested"
    kill: bool = False


@dataclass
class LoopResumed(Event):
    kind: ClassVar[str] = "resumed"


@dataclass
class SessionEnded(Event):
    kind: ClassVar[str] = "session_end"
    reason: str  # max_iterations | stopped | killed | error
    iterations: int
    best_commit: str | None
    best_metric: float | None
    summary_path: str | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        SessionStarted,
        PlatformDetected,
        IterationStarted,
        ProposalMade,
        CandidatePrepared,
        ProposalFailed,
        ReviewRequested,
        ReviewDecided,
        GuardrailTripped,
        RunStarted,
        RunFinished,
        ResultRecorded,
        BestRemeasured,
        ProgressReport,
        Notice,
        LoopPaused,
        LoopResumed,
        StopRequested,
        SessionEnded,
    )
}


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """Rebuild an event; unknown kinds or fields from a newer version are tolerated."""
    cls = EVENT_TYPES.get(data.get("kind", ""))
    if cls is None:
        return None
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


def event_from_json(line: str) -> Event | None:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None  # a truncated last line after a crash, or nesting no event has
    return event_from_dict(sanitize.deep(data)) if isinstance(data, dict) else None
