"""Fold the event stream into what a view needs. Live, `watch`, replay and resume share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.noise import NoiseModel, default_z
from autoresearch_tui.engine.reporting import add_spend
from autoresearch_tui.engine.results import ResultRow


@dataclass
class SessionState:
    started: ev.SessionStarted | None = None
    platform: ev.PlatformDetected | None = None
    rows: list[ResultRow] = field(default_factory=list)
    results: list[ev.ResultRecorded] = field(default_factory=list)
    proposals: dict[int, ev.ProposalMade] = field(default_factory=dict)
    iteration: int = 0
    run: ev.RunStarted | None = None  # the run in progress, if any (several workers: the newest started)
    runs: dict[int, ev.RunStarted] = field(default_factory=dict)  # worker -> its run in progress
    workers: dict[int, ev.RunStarted] = field(default_factory=dict)  # worker -> the last run it started
    worker_results: dict[int, ev.ResultRecorded] = field(default_factory=dict)  # worker -> its last result
    last_run: ev.RunFinished | None = None
    best_commit: str | None = None
    best_metric: float | None = None
    progress: list[ev.ProgressReport] = field(default_factory=list)
    notices: list[ev.Notice] = field(default_factory=list)
    ended: ev.SessionEnded | None = None
    first_ts: float | None = None
    last_ts: float | None = None
    run_logs: dict[int, str] = field(default_factory=dict)  # iteration -> log (relative), last attempt
    paused: bool = False  # the engine waits before the next iteration (LoopPaused until LoopResumed)
    pause_reason: str = ""
    stopping: bool = False  # a stop was requested: the current run finishes, then the session ends
    metric_name: str = ""  # replay: the metric column when there is no config
    direction_name: str = ""
    review: ev.ReviewRequested | None = None  # a proposal waiting for approve / edit / reject
    prepared: ev.CandidatePrepared | None = None  # pipelining: the next candidate, ready
    noise: NoiseModel = field(default_factory=NoiseModel)  # from re-runs of one commit
    remeasured: int = 0  # runs of the best beside candidates (keep_policy confirm)
    spent: dict[str, float] = field(default_factory=lambda: {"tokens_in": 0.0, "tokens_out": 0.0, "cost_usd": 0.0})

    @classmethod
    def from_rows(cls, rows: Sequence[ResultRow], metric: str, direction: str) -> "SessionState":
        """A state for a results.tsv without events (replay): rows only, best from the rows."""
        from autoresearch_tui.engine.analysis import best_row

        state = cls(rows=list(rows), metric_name=metric, direction_name=direction)
        best = best_row(state.rows, direction)
        if best is not None:
            state.best_commit, state.best_metric = best.commit, best.metric
        state.iteration = max(len(state.rows) - 1, 0)
        return state

    @property
    def metric(self) -> str:
        spec = str(self.config.get("metric") or "")
        return spec.split(":", 1)[0] if spec else self.metric_name

    @property
    def direction(self) -> str:
        spec = str(self.config.get("metric") or "")
        if ":" in spec:
            return spec.split(":", 1)[1]
        return str(self.config.get("direction") or self.direction_name or "min")

    @property
    def config(self) -> dict[str, Any]:
        return self.started.config if self.started else {}

    @property
    def baseline_metric(self) -> float | None:
        if self.results:
            return self.results[0].metric
        return self.rows[0].metric if self.rows else None

    def apply(self, event: ev.Event) -> None:
        if self.first_ts is None:
            self.first_ts = event.ts
        self.last_ts = event.ts
        if isinstance(event, ev.SessionStarted):
            self.started, self.ended, self.stopping = event, None, False
            self.run = None
            self.runs.clear()  # a resumed session: what was in flight died with the old engine
        elif isinstance(event, ev.PlatformDetected):
            self.platform = event
        elif isinstance(event, ev.IterationStarted):
            self.iteration, self.paused = event.iteration, False
        elif isinstance(event, ev.CandidatePrepared):
            self.prepared = event
        elif isinstance(event, ev.ProposalMade):
            self.proposals[event.iteration] = event
            add_spend(self.spent, event.meta)
            if self.prepared is not None and self.prepared.iteration <= event.iteration:
                self.prepared = None
        elif isinstance(event, ev.ProposalFailed):
            add_spend(self.spent, event.meta)
        elif isinstance(event, ev.ReviewRequested):
            self.review = event
        elif isinstance(event, ev.ReviewDecided):
            self.review = None
        elif isinstance(event, ev.RunStarted):
            self.run = self.runs[event.worker] = self.workers[event.worker] = event
            self.run_logs[event.iteration] = event.log
        elif isinstance(event, ev.RunFinished):
            self.runs.pop(event.worker, None)
            self.last_run = event
            self.run = max(self.runs.values(), key=lambda r: r.ts) if self.runs else None
        elif isinstance(event, ev.ResultRecorded):
            self.results.append(event)
            self.rows.append(
                ResultRow(event.commit[:7], event.metric, event.memory_gb, event.status, event.description,
                          line=len(self.rows) + 2)
            )
            self.best_commit, self.best_metric = event.best_commit, event.best_metric
            self.worker_results[event.worker] = event
            if event.status != "crash":
                self.noise.add(event.commit, event.metric)
        elif isinstance(event, ev.BestRemeasured):
            self.noise.add(event.commit, event.metric)
            self.remeasured += 1
            if event.commit == self.best_commit:
                self.best_metric = event.best_metric
        elif isinstance(event, ev.ProgressReport):
            self.progress.append(event)
        elif isinstance(event, ev.Notice):
            self.notices.append(event)
        elif isinstance(event, ev.LoopPaused):
            self.paused, self.pause_reason = True, event.reason
        elif isinstance(event, ev.LoopResumed):
            self.paused, self.pause_reason = False, ""
        elif isinstance(event, ev.StopRequested):
            self.stopping = True
        elif isinstance(event, ev.SessionEnded):
            self.ended, self.run, self.review = event, None, None
            self.runs.clear()

    @property
    def multi_worker(self) -> bool:
        """More than one worker has run something (parallel experiments)."""
        return len(self.workers) > 1

    @property
    def noise_band(self) -> float | None:
        """z x sigma of the measured noise (None until a commit has run twice)."""
        sigma, z = self.noise.sigma, self.config.get("noise_z")
        return None if sigma is None else float(default_z(str(self.config.get("keep_policy"))) if z is None else z) * sigma

    def apply_all(self, events: list[ev.Event]) -> "SessionState":
        for event in events:
            self.apply(event)
        return self
