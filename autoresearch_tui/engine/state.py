"""Fold the event stream into what a view needs. Live, `watch`, replay and resume share it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.results import ResultRow


@dataclass
class SessionState:
    started: ev.SessionStarted | None = None
    platform: ev.PlatformDetected | None = None
    rows: list[ResultRow] = field(default_factory=list)
    results: list[ev.ResultRecorded] = field(default_factory=list)
    proposals: dict[int, ev.ProposalMade] = field(default_factory=dict)
    iteration: int = 0
    run: ev.RunStarted | None = None  # the run in progress, if any
    last_run: ev.RunFinished | None = None
    best_commit: str | None = None
    best_metric: float | None = None
    progress: list[ev.ProgressReport] = field(default_factory=list)
    notices: list[ev.Notice] = field(default_factory=list)
    ended: ev.SessionEnded | None = None
    first_ts: float | None = None
    last_ts: float | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.started.config if self.started else {}

    @property
    def baseline_metric(self) -> float | None:
        return self.results[0].metric if self.results else None

    def apply(self, event: ev.Event) -> None:
        if self.first_ts is None:
            self.first_ts = event.ts
        self.last_ts = event.ts
        if isinstance(event, ev.SessionStarted):
            self.started, self.ended = event, None
        elif isinstance(event, ev.PlatformDetected):
            self.platform = event
        elif isinstance(event, ev.IterationStarted):
            self.iteration = event.iteration
        elif isinstance(event, ev.ProposalMade):
            self.proposals[event.iteration] = event
        elif isinstance(event, ev.RunStarted):
            self.run = event
        elif isinstance(event, ev.RunFinished):
            self.run, self.last_run = None, event
        elif isinstance(event, ev.ResultRecorded):
            self.results.append(event)
            self.rows.append(
                ResultRow(event.commit[:7], event.metric, event.memory_gb, event.status, event.description,
                          line=len(self.rows) + 2)
            )
            self.best_commit, self.best_metric = event.best_commit, event.best_metric
        elif isinstance(event, ev.ProgressReport):
            self.progress.append(event)
        elif isinstance(event, ev.Notice):
            self.notices.append(event)
        elif isinstance(event, ev.SessionEnded):
            self.ended, self.run = event, None

    def apply_all(self, events: list[ev.Event]) -> "SessionState":
        for event in events:
            self.apply(event)
        return self
