"""Data sources for the screens: threads that read files and post Messages. No widgets here.

`SessionSource` follows a session directory (live and `watch` are the same code path): it polls
events.jsonl and the current run's log, survives both not existing yet, the log being rewritten
and events.jsonl being replaced. `ResultsSource` reads a results.tsv once, for replay.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path

from textual.message_pump import MessagePump

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.logtail import MAX_LINES, LogBuffer, LogFollower
from autoresearch_tui.engine.session import EVENTS, LineTail
from autoresearch_tui.tui.messages import EventsArrived, LoadFailed, LogChanged, ResultsLoaded, SessionReset

POLL_S = 0.2
LOG_EVERY_S = 0.1  # at most this often a new log snapshot, and only once the last was shown


class SessionSource:
    def __init__(self, session_dir: Path, target: MessagePump, poll: float = POLL_S,
                 max_lines: int = MAX_LINES) -> None:
        self.root = Path(session_dir)
        self.target = target
        self.poll = poll
        self.buffer = LogBuffer(max_lines)
        self.follower: LogFollower | None = None
        self._events = LineTail(self.root / EVENTS)
        self._inode: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._shown = threading.Event()  # the screen rendered the last LogChanged
        self._shown.set()
        self._thread: threading.Thread | None = None
        self._log_dirty = False
        self._last_log_post = 0.0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "SessionSource":
        self._thread = threading.Thread(target=self._run, name=f"session-source:{self.root.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def log_shown(self) -> None:
        """Called by the screen after it rendered a LogChanged: the next one may be posted."""
        self._shown.set()

    # -- the thread ----------------------------------------------------------------------
    def _post(self, message) -> bool:
        ok = self.target.post_message(message)
        if not ok:
            self._stop.set()  # the screen is gone
        return ok

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                self._read_events()
                if self.follower is not None and self.follower.poll():
                    self._log_dirty = busy = True
                self._maybe_post_log()
            except Exception as exc:  # noqa: BLE001 - a source must never die silently
                self._post(LoadFailed(f"following {self.root}: {exc}"))
            self._stop.wait(self.poll / 2 if busy else self.poll)

    def _read_events(self) -> None:
        path = self._events.path
        try:
            st = os.stat(path)
            size, inode = st.st_size, (st.st_dev, st.st_ino)
        except OSError:
            size, inode = -1, None
        replaced = inode is not None and self._inode is not None and inode != self._inode
        if replaced or 0 <= size < self._events.offset:  # replaced or truncated: read it again
            self._events = LineTail(path)
            self._post(SessionReset())
        if inode is not None:
            self._inode = inode
        batch: list[ev.Event] = []
        for line in self._events.read():
            event = ev.event_from_json(line)
            if event is not None:
                batch.append(event)
        if not batch:
            return
        last_run = next((e for e in reversed(batch) if isinstance(e, ev.RunStarted)), None)
        if last_run is not None:
            self._follow(last_run)
        self._post(EventsArrived(batch))

    def _follow(self, run: ev.RunStarted) -> None:
        path = self.root / run.log
        if self.follower is not None and self.follower.path == path:
            return
        if self.follower is not None:
            self.follower.poll(budget=8 << 20)  # the finished run's last lines (its metric block)
        what = "baseline" if run.iteration == 0 else run.commit[:7]
        retry = " (retry after OOM)" if run.attempt > 1 else ""
        self.buffer.add_marker(f"── #{run.iteration} {what}{retry} ── {run.log}")
        self.follower = LogFollower(path, self.buffer)
        self._log_dirty = True

    def _maybe_post_log(self) -> None:
        now = time.monotonic()
        if not self._log_dirty or now - self._last_log_post < LOG_EVERY_S:
            return
        if not self._shown.is_set() and now - self._last_log_post < 2.0:
            return  # the screen has not caught up: coalesce into the next snapshot
        self._shown.clear()
        self._log_dirty = False
        self._last_log_post = now
        path = self.follower.path if self.follower else None
        self._post(LogChanged(self.buffer.snapshot(), self.buffer.total, path))


class ResultsSource:
    """Reads a results.tsv (and its session's events, if given) in a thread, once."""

    def __init__(self, results: Path, session: Path | None = None, repo: Path | None = None) -> None:
        self.results = Path(results)
        self.session = Path(session) if session else None
        self.repo = Path(repo) if repo else None

    def start(self, target: MessagePump) -> threading.Thread:
        thread = threading.Thread(target=lambda: target.post_message(self.load()), name="results-source", daemon=True)
        thread.start()
        return thread

    def load(self) -> ResultsLoaded | LoadFailed:
        from autoresearch_tui.engine.details import find_repo
        from autoresearch_tui.engine.results import ResultsFormatError, read_results
        from autoresearch_tui.engine.session import iter_events
        from autoresearch_tui.engine.state import SessionState

        session_state = None
        if self.session is not None:
            session_state = SessionState().apply_all(list(iter_events(self.session / EVENTS)))
        try:
            table = None
            if session_state is not None and session_state.started is not None:
                try:
                    table = read_results(self.results, metric=session_state.metric,
                                         direction=session_state.direction)
                except (ResultsFormatError, ValueError):
                    table = None
            if table is None:
                table = read_results(self.results)
        except (OSError, ResultsFormatError) as exc:
            return LoadFailed(str(exc))
        state = SessionState.from_rows(table.rows, table.metric, table.direction)
        if session_state is not None:
            state.started, state.platform = session_state.started, session_state.platform
            state.first_ts, state.last_ts, state.ended = session_state.first_ts, session_state.last_ts, session_state.ended
        repo = self.repo.resolve() if self.repo else find_repo(self.results.resolve().parent)
        return ResultsLoaded(table, state, session_state, repo, self._summary(table, state))

    def _summary(self, table, state) -> str:
        return render_state_summary(state, table.skipped, name=self.results.name)


def render_state_summary(state, skipped=(), name: str | None = None) -> str:
    """autoresearch-summary.md for what a state holds so far (replay, or mid-session)."""
    from autoresearch_tui.engine.durations import parse_duration
    from autoresearch_tui.engine.summary import render_summary

    cfg = state.config
    budget = None
    if cfg.get("time_budget"):
        try:
            budget = parse_duration(cfg["time_budget"])
        except ValueError:
            budget = None
    try:
        return render_summary(state.rows, metric=state.metric or "metric", direction=state.direction,
                              session=state.started.branch if state.started else name,
                              platform=state.platform.platform if state.platform else None, budget_s=budget,
                              date_range=None, adjustments=state.platform.adjustments if state.platform else None,
                              skipped=skipped)
    except Exception as exc:  # noqa: BLE001 - a summary bug must not hide the table
        return f"# Summary unavailable\n\n{exc}\n"


class ControlChannel:
    """Commands to the engine (control.jsonl), written in order by one thread, never on the UI loop."""

    def __init__(self, session_dir: Path) -> None:
        from autoresearch_tui.engine.session import SessionDir

        self._session = SessionDir(Path(session_dir))
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="control", daemon=True)
        self._thread.start()
        self.errors: list[str] = []

    def send(self, command: str, **fields) -> None:
        self._queue.put((command, fields))

    def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything sent is written (before the app exits)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            command, fields = item
            try:
                self._session.send(command, **fields)
            except OSError as exc:
                self.errors.append(f"{command}: {exc}")
