"""Messages the data sources post to the screens. Small dataclasses, posted from threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from autoresearch_tui.engine.details import Detail
    from autoresearch_tui.engine.events import Event
    from autoresearch_tui.engine.results import ResultsTable
    from autoresearch_tui.engine.state import SessionState


@dataclass
class EventsArrived(Message, bubble=False):
    """New events from events.jsonl, oldest first (the first batch is the whole history)."""

    events: list[Event]


@dataclass
class SessionReset(Message, bubble=False):
    """events.jsonl shrank or was replaced: start the state again from the new file."""


@dataclass
class LogChanged(Message, bubble=False):
    """The tail of the current run's log; a newer one makes an unhandled older one useless."""

    lines: list[str]
    total: int  # complete lines seen in this log
    path: Path | None = None
    run: Event | None = None  # the RunStarted whose log this is

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LogChanged)


@dataclass
class WorkerTails(Message, bubble=False):
    """Parallel workers: the last line each run in flight printed (worker -> line), about once a second."""

    tails: dict[int, str]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WorkerTails)


@dataclass
class ResultsLoaded(Message, bubble=False):
    """A results.tsv (and optionally its session's events) was read, for replay."""

    table: ResultsTable
    state: SessionState
    session_state: SessionState | None = None
    repo: Path | None = None
    summary: str | None = None  # autoresearch-summary.md; None: SummaryReady follows with it
    partial: bool = False  # the file's first screenfuls only: the whole file follows


@dataclass
class SummaryReady(Message, bubble=False):
    """The summary of the rows a ResultsLoaded carried (rendered after the rows were shown)."""

    summary: str


@dataclass
class LoadFailed(Message, bubble=False):
    message: str


@dataclass
class DetailLoaded(Message, bubble=False):
    """The diff and run log of one experiment (loaded in a thread)."""

    detail: Detail
    target: str = field(default="panes")  # "panes" or "modal"
