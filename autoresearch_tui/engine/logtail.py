"""Follow a training log as a terminal shows it: bounded, `\\r` rewrites the line, floods skipped.

A training script may print 100k lines a second or one endless line of `\\r` progress updates;
a viewer must keep only what it can show. `LogBuffer` keeps the last N display lines;
`LogFollower` reads a growing file in bounded chunks and jumps ahead when it falls behind.
No Textual here: the screens read snapshots of the buffer.
"""

from __future__ import annotations

import codecs
import os
import re
from collections import deque
from pathlib import Path

MAX_LINES = 2000
MAX_LINE_CHARS = 4000
START_TAIL = 256 << 10  # attaching to a long log: show its end, not its start
CHUNK = 1 << 20
MAX_BEHIND = 8 << 20  # further behind than this: skip to the end

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: str) -> str:
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return _CONTROL.sub("", text.expandtabs(4)) if text.isprintable() is False else text


def _visible(segment_line: str) -> str:
    """What a terminal shows for one line that may hold `\\r` rewrites."""
    line = segment_line.rstrip("\r")
    if "\r" in line:
        for part in reversed(line.split("\r")):
            if part:
                return part
        return ""
    return line


class LogBuffer:
    """The last `max_lines` display lines plus the line being written (no newline yet)."""

    def __init__(self, max_lines: int = MAX_LINES, max_line_chars: int = MAX_LINE_CHARS) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.max_line_chars = max_line_chars
        self.total = 0  # complete lines ever seen
        self._prev = ""  # last non-empty `\r` segment of the current line
        self._cur = ""  # text after the last `\r` of the current line

    @property
    def current(self) -> str:
        return _clean(self._cur or self._prev)

    def feed(self, text: str) -> None:
        if not text:
            return
        pieces = text.split("\n")
        if len(pieces) > 1:
            self._add_partial(pieces[0])
            first = self.current
            self._prev, self._cur = "", ""
            body = pieces[1:-1]
            keep = self.lines.maxlen or len(body) + 1
            self.total += len(body) + 1
            cap = self.max_line_chars
            if len(body) < keep:
                self.lines.append(first[:cap])
            self.lines.extend(_clean(_visible(line))[:cap] for line in body[-keep:])
        self._add_partial(pieces[-1])

    def _add_partial(self, tail: str) -> None:
        if not tail:
            return
        cap = self.max_line_chars
        if "\r" not in tail:
            if len(self._cur) < cap:
                self._cur = (self._cur + tail)[:cap]
            return
        parts = tail.split("\r")
        first, rest = parts[0], parts[1:]
        if len(self._cur) < cap:
            self._cur = (self._cur + first)[:cap]
        done = [self._cur] + rest[:-1]
        for part in reversed(done):
            if part:
                self._prev = part[:cap]
                break
        self._cur = rest[-1][:cap]

    def add_marker(self, text: str) -> None:
        """A line of the viewer's own (e.g. `── run #3 ──`), after the current line."""
        if self._cur or self._prev:
            self.lines.append(self.current[: self.max_line_chars])
            self._prev, self._cur = "", ""
        self.lines.append(text)

    def clear(self) -> None:
        self.lines.clear()
        self._prev = self._cur = ""

    def snapshot(self) -> list[str]:
        out = list(self.lines)
        current = self.current
        if current:
            out.append(current)
        return out


class LogFollower:
    """Reads what was appended to one log file since the last poll, into a LogBuffer."""

    def __init__(self, path: Path, buffer: LogBuffer, start_tail: int = START_TAIL) -> None:
        self.path = path
        self.buffer = buffer
        self.offset: int | None = None  # None until the file exists
        self.start_tail = start_tail
        self.skipped_bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def poll(self, budget: int = 4 * CHUNK) -> bool:
        """Read up to `budget` new bytes; True when the buffer changed."""
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return False
        if self.offset is None:
            self.offset = max(0, size - self.start_tail)
            if self.offset:
                self.buffer.add_marker(f"[… {_mb(self.offset)} earlier output not shown …]")
        if size < self.offset:  # truncated or rewritten (the runner caps huge logs)
            self.buffer.add_marker("[… log rewritten; following from its end …]")
            self.offset = max(0, size - self.start_tail)
            self._decoder.reset()
        if size - self.offset > MAX_BEHIND:
            jump = size - CHUNK
            self.buffer.add_marker(f"[… {_mb(jump - self.offset)} skipped to keep up …]")
            self.skipped_bytes += jump - self.offset
            self.offset = jump
            self._decoder.reset()
        changed = False
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                while budget > 0:
                    data = fh.read(min(CHUNK, budget))
                    if not data:
                        break
                    self.offset += len(data)
                    budget -= len(data)
                    self.buffer.feed(self._decoder.decode(data))
                    changed = True
        except OSError:
            return changed
        return changed


def read_log_lines(path: Path, max_lines: int = MAX_LINES, tail_bytes: int = 4 << 20) -> list[str]:
    """The display lines at the end of a finished log (for a selected experiment)."""
    buffer = LogBuffer(max_lines)
    follower = LogFollower(path, buffer, start_tail=tail_bytes)
    follower.poll(budget=tail_bytes + CHUNK)
    return buffer.snapshot()


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} KB"
