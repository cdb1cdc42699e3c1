"""Data sources for the screens: threads that read files and post Messages. No widgets here.

`SessionSource` follows a session directory (live and `watch` are the same code path): it polls
events.jsonl and the current run's log, survives both not existing yet, the log being rewritten
and events.jsonl being replaced. With parallel workers it follows one worker's runs (the
screen picks which; automatic: the newest run, each until it ends) and reads only the last few
KB of every run in flight, once a second, for their last lines. `ResultsSource` reads a
results.tsv once, for replay.
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
from autoresearch_tui.tui.messages import (EventsArrived, LoadFailed, LogChanged, ResultsLoaded, SessionReset,
                                           SummaryReady, WorkerTails)

POLL_S = 0.2
LOG_EVERY_S = 0.1  # at most this often a new log snapshot, and only once the last was shown
TAIL_EVERY_S = 1.0  # parallel workers: how often the other runs' last lines are read
TAIL_BYTES = 4096
SUMMARY_WAIT_S = 2.0  # replay: the summary starts at the latest this long after the rows were sent


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
        self._nudge = threading.Event()  # wakes the thread early (a worker was selected, or stop)
        self._shown = threading.Event()  # the screen rendered the last LogChanged
        self._shown.set()
        self._thread: threading.Thread | None = None
        self._log_dirty = False
        self._last_log_post = 0.0
        # Parallel workers (worker -> RunStarted), folded from the events by this thread.
        self._runs: dict[int, ev.RunStarted] = {}  # in flight
        self._last: dict[int, ev.RunStarted] = {}  # the last run each worker started
        self._newest: ev.RunStarted | None = None
        self.current: ev.RunStarted | None = None  # the run whose log the buffer follows
        self._want: int | None = None  # the worker the screen asked for (None: automatic)
        self._worker: int | None = None  # the one in effect
        self._tails: dict[int, str] = {}
        self._last_tails = 0.0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "SessionSource":
        self._thread = threading.Thread(target=self._run, name=f"session-source:{self.root.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._nudge.set()

    def join(self, timeout: float = 2.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def log_shown(self) -> None:
        """Called by the screen after it rendered a LogChanged: the next one may be posted."""
        self._shown.set()

    def select_worker(self, worker: int | None) -> None:
        """Follow this worker's runs (None: the newest run, each one until it ends). Any thread."""
        self._want = worker
        self._nudge.set()

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
                self._follow_target()
                if self.follower is not None and self.follower.poll():
                    self._log_dirty = busy = True
                self._maybe_post_log()
                self._maybe_post_tails()
            except Exception as exc:  # noqa: BLE001 - a source must never die silently
                self._post(LoadFailed(f"following {self.root}: {exc}"))
            self._nudge.wait(self.poll / 2 if busy else self.poll)
            self._nudge.clear()

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
            self._runs.clear()
            self._last.clear()
            self._newest = None
            self._post(SessionReset())
        if inode is not None:
            self._inode = inode
        batch: list[ev.Event] = []
        for line in self._events.read():
            event = ev.event_from_json(line)
            if event is not None:
                batch.append(event)
                self._fold(event)
        if not batch:
            return
        self._follow_target()  # before the events are posted: their LogChanged comes after them
        self._post(EventsArrived(batch))

    def _fold(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self._runs[event.worker] = self._last[event.worker] = self._newest = event
        elif isinstance(event, ev.RunFinished):
            self._runs.pop(event.worker, None)
        elif isinstance(event, (ev.SessionStarted, ev.SessionEnded)):
            self._runs.clear()

    def _target(self) -> ev.RunStarted | None:
        """The run the log pane should show."""
        if self._worker is not None:
            return self._runs.get(self._worker) or self._last.get(self._worker)
        current = self.current
        if current is not None and self._runs.get(current.worker) is current:
            return current  # automatic: stay with a run until it ends (parallel runs overlap)
        if self._runs:
            return max(self._runs.values(), key=lambda r: r.ts)
        return self._newest

    def _follow_target(self) -> None:
        switched = self._want != self._worker
        self._worker = self._want
        run = self._target()
        if run is None or (self.current is run and self.follower is not None):
            return
        if switched and self.follower is not None and self.follower.path != self.root / run.log:
            self.buffer.clear()  # another worker asked for: its log alone, not after the previous one's
            self.buffer.total = 0
            self.follower = None
        self._follow(run)

    def _follow(self, run: ev.RunStarted) -> None:
        self.current = run
        path = self.root / run.log
        if self.follower is not None and self.follower.path == path:
            return
        if self.follower is not None:
            self.follower.poll(budget=8 << 20)  # the finished run's last lines (its metric block)
        what = "baseline" if run.iteration == 0 else run.commit[:7]
        retry = " (retry after OOM)" if run.attempt > 1 else ""
        where = f" on w{run.worker}" if len(self._last) > 1 else ""
        self.buffer.add_marker(f"── #{run.iteration} {what}{retry}{where} ── {run.log}")
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
        self._post(LogChanged(self.buffer.snapshot(), self.buffer.total, path, self.current))

    def _maybe_post_tails(self) -> None:
        """Parallel workers: the last line of every run in flight, from the last few KB of its log."""
        now = time.monotonic()
        if len(self._last) < 2 or now - self._last_tails < TAIL_EVERY_S:
            return
        self._last_tails = now
        tails = {w: last_line(self.root / run.log) for w, run in self._runs.items()}
        if tails != self._tails:
            self._tails = tails
            self._post(WorkerTails(dict(tails)))


def last_line(path: Path, size: int = TAIL_BYTES) -> str:
    """The last non-empty line a terminal would show for this log (`\\r` rewrites applied)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            data = fh.read(size)
    except OSError:
        return ""
    buffer = LogBuffer(8)
    buffer.feed(data.decode("utf-8", errors="replace"))
    for line in reversed(buffer.snapshot()):
        if line.strip():
            return line.strip()
    return ""


class ResultsSource:
    """Reads a results.tsv (and its session's events, if given) in a thread, once.

    The rows go to the screen first (ResultsLoaded); the summary, which takes a while on a long
    file, is rendered once the screen has drawn them (`rows_shown`, so that it does not compete
    with the first frame for the interpreter) and follows (SummaryReady)."""

    def __init__(self, results: Path, session: Path | None = None, repo: Path | None = None) -> None:
        self.results = Path(results)
        self.session = Path(session) if session else None
        self.repo = Path(repo) if repo else None
        self.rows_shown = threading.Event()  # set by the screen after the frame with the rows

    def start(self, target: MessagePump) -> threading.Thread:
        def work() -> None:
            head = self.load_head()
            if head is not None:
                target.post_message(head)
            loaded = self.load(with_summary=False)
            if target.post_message(loaded) and isinstance(loaded, ResultsLoaded):
                self.rows_shown.wait(SUMMARY_WAIT_S)
                target.post_message(SummaryReady(self._summary(loaded.table, loaded.state)))

        thread = threading.Thread(target=work, name="results-source", daemon=True)
        thread.start()
        return thread

    def load_head(self) -> ResultsLoaded | None:
        """The head of a long file, parsed on its own: the first screenful shows while the rest is
        read. None for a short file (read whole at once) or a head that does not parse."""
        from autoresearch_tui.engine.results import ResultsFormatError
        from autoresearch_tui.engine.state import SessionState
        from autoresearch_tui.tui.prepaint import HEAD_BYTES, read_head

        try:
            if self.session is not None or self.results.stat().st_size <= HEAD_BYTES:
                return None
            table = read_head(self.results)
        except (OSError, ResultsFormatError, ValueError):
            return None
        if not table.rows:
            return None
        state = SessionState.from_rows(table.rows, table.metric, table.direction)
        return ResultsLoaded(table, state, partial=True)

    def load(self, with_summary: bool = True) -> ResultsLoaded | LoadFailed:
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
        repo = self.repo.resolve() if self.repo else holding_repo(find_repo(self.results.resolve().parent), table.rows)
        summary = self._summary(table, state) if with_summary else None
        return ResultsLoaded(table, state, session_state, repo, summary)

    def _summary(self, table, state) -> str:
        return render_state_summary(state, table.skipped, name=self.results.name)


def holding_repo(repo: Path | None, rows, probe: int = 8) -> Path | None:
    """`repo` if it holds any of the first commits of `rows` (a results file next to its project),
    else None: a file copied into another repository gets no diffs that cannot be there."""
    import subprocess

    from autoresearch_tui.engine.details import clean_commit

    if repo is None:
        return None
    commits = [clean_commit(r.commit)[0] for r in rows[:probe]]
    commits = [c for c in commits if c and all(ch in "0123456789abcdefABCDEF" for ch in c)]
    if not commits:
        return None
    try:
        done = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-check"], capture_output=True, text=True,
                              input="".join(f"{c}^{{commit}}\n" for c in commits), timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return repo if done.returncode == 0 and any(" commit " in ln for ln in done.stdout.splitlines()) else None


def render_state_summary(state, skipped=(), name: str | None = None) -> str:
    """autoresearch-summary.md for what a state holds so far (replay, or mid-session)."""
    from autoresearch_tui.engine.durations import parse_duration
    from autoresearch_tui.engine.reporting import date_range
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
                              date_range=date_range(state.first_ts, state.last_ts) if state.first_ts else None,
                              adjustments=state.platform.adjustments if state.platform else None,
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
