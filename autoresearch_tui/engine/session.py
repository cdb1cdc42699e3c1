"""The append-only session directory: the one data source for live view, `watch` and replay.

Layout of `.autoresearch/<tag>/`:
  config.toml        config snapshot (plus platform) at session start
  events.jsonl       one typed event per line, appended and flushed
  runs/<n>-<commit>.log   raw training output, one file per run
  attempts/<n>-<commit>.patch   diff of every discarded or crashed experiment
  reports/progress-<n>.md       progress reports
  control.jsonl      commands from other processes (stop, pause, instruct), read by the engine
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import tomli_w

from autoresearch_tui.core import safefs
from autoresearch_tui.engine.events import Event, event_from_json

if TYPE_CHECKING:
    from autoresearch_tui.engine.control import Command

EVENTS = "events.jsonl"
DURABLE = {"session_start", "result", "session_end"}
CONTROL = "control.jsonl"


def append_line(path: Path, line: str, sync: bool = True) -> None:
    """One write of a whole line; a crash can at worst leave a truncated last line."""
    safefs.append(path, (line.rstrip("\n") + "\n").encode("utf-8"), sync)


def write_atomic(path: Path, text: str) -> None:
    safefs.write_atomic(path, text.encode("utf-8"))


@dataclass
class SessionDir:
    root: Path

    @property
    def events_path(self) -> Path:
        return self.root / EVENTS

    @property
    def control_path(self) -> Path:
        return self.root / CONTROL

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def attempts(self) -> Path:
        return self.root / "attempts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def create(self) -> "SessionDir":
        for folder in (self.root, self.runs, self.attempts, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def exists(self) -> bool:
        return (self.root / "config.toml").exists() or self.events_path.exists()

    def repair_tail(self) -> None:
        """After a kill mid-write: end the truncated last line so new events start clean."""
        try:
            with open(self.events_path, "rb") as fh:
                fh.seek(-1, 2)
                last = fh.read(1)
        except (FileNotFoundError, OSError):
            return
        if last != b"\n":
            append_line(self.events_path, "")

    def append(self, event: Event) -> None:
        # fsync what resume relies on; the rest reaches the OS at once (a killed process loses
        # nothing), and only a power cut could lose it: not worth a disk flush per event.
        append_line(self.events_path, event.to_json(), sync=event.kind in DURABLE)

    def run_log(self, iteration: int, commit: str, attempt: int = 1) -> Path:
        suffix = f"-retry{attempt - 1}" if attempt > 1 else ""
        return self.runs / f"{iteration:04d}-{commit[:7]}{suffix}.log"

    def write_snapshot(self, data: dict[str, Any]) -> None:
        write_atomic(self.root / "config.toml", tomli_w.dumps(_toml_safe(data)))

    def write_origin(self, branch: str, commit: str) -> None:
        write_atomic(self.root / "origin.json", json.dumps({"original_branch": branch, "base_commit": commit}))

    def origin(self) -> tuple[str, str] | None:
        """(original branch, base commit) the session started from."""
        try:
            data = json.loads((self.root / "origin.json").read_text())
            return data["original_branch"], data["base_commit"]
        except (OSError, ValueError, KeyError):
            return None

    def events(self) -> list[Event]:
        return list(iter_events(self.events_path))

    # -- control channel (other processes -> engine) ------------------------------------
    def send(self, command: Command) -> None:
        """One typed command (engine/control.py) for the engine to read."""
        append_line(self.control_path, command.to_json())


def _toml_safe(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _toml_safe(v) for k, v in data.items() if v is not None}
    if isinstance(data, (list, tuple)):
        return [_toml_safe(v) for v in data if v is not None]
    if isinstance(data, Path):
        return str(data)
    return data


def iter_events(path: Path) -> Iterator[Event]:
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.endswith("\n"):
                return  # truncated last line: the writer died mid-line or is mid-write
            event = event_from_json(line)
            if event is not None:
                yield event


class LineTail:
    """Reads whole lines appended to a file since the last call (for events and control)."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset

    def read(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        return data[: end + 1].decode("utf-8", errors="replace").splitlines()


class EventTail:
    """Follows events.jsonl; survives the file appearing later or the engine restarting."""

    def __init__(self, path: Path) -> None:
        self._tail = LineTail(path)

    def read(self) -> list[Event]:
        events = []
        for line in self._tail.read():
            event = event_from_json(line)
            if event is not None:
                events.append(event)
        return events

