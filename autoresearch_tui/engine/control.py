"""Commands to a running engine, typed like its events, carried by the session's control.jsonl.

Writers (the live screen, `control`, `instruct`) append one JSON line per command; the engine
reads the lines written since it started. The wire format is {"cmd": name, "ts": time, fields}.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.session import LineTail, SessionDir

POLL_S = 0.5


@dataclass
class Command:
    name: ClassVar[str] = ""

    @property
    def cmd(self) -> str:
        return self.name

    def to_json(self) -> str:
        return json.dumps({"cmd": self.cmd, "ts": time.time(), **asdict(self)})


@dataclass
class Stop(Command):
    """First: finish the current run(s), then stop. Second: kill them now."""

    name: ClassVar[str] = "stop"


@dataclass
class KillRun(Command):
    """Kill a run (recorded as discard); `worker` None: every run in flight."""

    name: ClassVar[str] = "kill_run"
    worker: int | None = None


@dataclass
class Pause(Command):
    name: ClassVar[str] = "pause"


@dataclass
class Resume(Command):
    name: ClassVar[str] = "resume"


@dataclass
class Instruct(Command):
    """A note the next proposals see."""

    name: ClassVar[str] = "instruct"
    text: str = ""


@dataclass
class ReviewAnswer(Command):
    """`review = true`: approve, edit (with the new training script as `source`) or reject."""

    name: ClassVar[str] = "review"
    decision: str = "reject"  # approve | edit | reject
    iteration: int = 0
    source: str | None = None

    @property
    def cmd(self) -> str:
        return f"review_{self.decision}"

    def to_json(self) -> str:
        return json.dumps({"cmd": self.cmd, "ts": time.time(), "iteration": self.iteration,
                           **({"source": self.source} if self.source is not None else {})})


SIMPLE = {cls.name: cls for cls in (Stop, KillRun, Pause, Resume, Instruct)}
DECISIONS = ("approve", "edit", "reject")


def command_from_dict(data: dict[str, Any]) -> Command | None:
    """The command a control line holds; None for anything unknown or malformed."""
    name = str(data.get("cmd", ""))
    if name.startswith("review_") and name.removeprefix("review_") in DECISIONS:
        source = data.get("source")
        try:
            iteration = int(data.get("iteration", 0))
        except (TypeError, ValueError):
            return None
        return ReviewAnswer(name.removeprefix("review_"), iteration, source if isinstance(source, str) else None)
    if name == "kill_run":
        worker = data.get("worker")
        return KillRun(worker if isinstance(worker, int) else None)
    if name == "instruct":
        text = data.get("text")
        return Instruct(str(text)) if text else None
    cls = SIMPLE.get(name)
    return cls() if cls is not None else None


def command_named(name: str) -> Command:
    """A command without fields from its name (`control stop`); KeyError for an unknown name."""
    return SIMPLE[name]()


class ControlInbox:
    """The engine's side of control.jsonl: commands written since the engine started."""

    def __init__(self, path: Path) -> None:
        start = path.stat().st_size if path.exists() else 0
        self._tail = LineTail(path, start)

    def read(self) -> list[Command]:
        out = []
        for line in self._tail.read():
            try:
                data = json.loads(line)
            except (ValueError, RecursionError):  # a line nested too deep is not a command either
                continue
            command = command_from_dict(data) if isinstance(data, dict) else None
            if command is not None:
                out.append(command)
        return out


class Controllable(Protocol):
    stop_requests: int

    def request_stop(self) -> int: ...
    def kill_run(self, worker: int | None = None) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def instruct(self, text: str) -> None: ...
    def answer_review(self, answer: ReviewAnswer) -> None: ...
    def emit(self, event: ev.Event) -> None: ...


def apply(command: Command, engine: Controllable) -> None:
    if isinstance(command, Stop):
        # Stop means "after the current run", however often it is sent; killing is kill_run.
        if not engine.stop_requests:
            engine.request_stop()
    elif isinstance(command, KillRun):
        engine.kill_run(command.worker)
    elif isinstance(command, Pause):
        engine.pause()
    elif isinstance(command, Resume):
        engine.resume()
    elif isinstance(command, ReviewAnswer):
        engine.answer_review(command)
    elif isinstance(command, Instruct):
        engine.instruct(command.text)
        engine.emit(ev.Notice(message=f"instruction noted: {command.text}"))


async def watch_control(session: SessionDir, engine: Controllable) -> None:
    inbox = ControlInbox(session.control_path)
    while True:
        for command in inbox.read():
            apply(command, engine)
        await asyncio.sleep(POLL_S)
