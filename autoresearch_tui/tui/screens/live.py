"""The live loop screen, also `watch` (read-only): a view of a session directory.

The engine is another process (spawned detached, or started by someone else); this screen
only follows its files through SessionSource and sends commands through control.jsonl.
"""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.tui.messages import EventsArrived, LoadFailed, LogChanged, SessionReset, WorkerTails
from autoresearch_tui.tui.screens.panes import PaneScreen
from autoresearch_tui.tui.screens.review import ReviewFlow
from autoresearch_tui.tui.source import ControlChannel, SessionSource, render_state_summary
from autoresearch_tui.tui.widgets.diff_view import DiffView
from autoresearch_tui.tui.widgets.header import StatusHeader, fmt_metric
from autoresearch_tui.tui.widgets.log_view import LogView
from autoresearch_tui.tui.widgets.workers import WorkersStrip

CONTROL_ACTIONS = {"toggle_pause", "stop", "kill_run", "instruct", "review"}
SUMMARY_FILE = "autoresearch-summary.md"
READ_ONLY_KEYS = {"p": "pause", "s": "stop", "k": "kill the run", "i": "instruct", "v": "review", "f": "finish"}
CONTROL_WORDS = {"p": "control {dir} pause", "s": "control {dir} stop", "k": "control {dir} kill-run",
                 "i": "instruct {dir} \"TEXT\""}


class LiveScreen(ReviewFlow, PaneScreen):
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause"),
        Binding("s", "stop", "Stop"),
        Binding("k", "kill_run", "Kill"),
        Binding("f", "finish", "Finish"),
        Binding("i", "instruct", "Instruct", show=False),
        Binding("v", "review", "Review"),
        Binding("a", "toggle_scroll", "Tail ✓"),  # the footer says whether the log follows its end
        Binding("a", "toggle_scroll_back", "Tail ✗"),
        Binding("a", "toggle_log_scroll", "Scroll", show=False),  # with workers: `w` takes its footer room
        Binding("w", "next_worker", "Worker"),
        Binding("r", "report", "Report"),
        *PaneScreen.FOOTER,
    ]

    def __init__(self, session_dir: Path, *, engine=None, read_only: bool = False, bell: bool = False) -> None:
        super().__init__()
        self.MODE = "watch" if read_only else "live"
        self.session_dir = Path(session_dir)
        self.engine = engine  # EngineProcess when this app spawned it
        self.read_only = read_only
        self.bell = bell
        self.source: SessionSource | None = None
        self.control = None if read_only else ControlChannel(self.session_dir)
        self.pause_requested = False
        self.stop_requests = 0
        self._caught_up = False
        self._engine_gone_told = False
        self._review_open = None  # the ReviewRequested whose dialog was opened
        # Parallel workers: the one the log and diff panes follow (None: automatic, the newest
        # run until it ends), and the run the log pane shows now (from the source).
        self.worker: int | None = None
        self.shown_run: ev.RunStarted | None = None
        self._candidate: ev.ProposalMade | None = None  # the proposal the diff pane shows (several workers)

    def compose_top(self) -> ComposeResult:
        yield WorkersStrip(id="workers")

    # -- lifecycle -----------------------------------------------------------------------
    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(LogView).set_placeholder(f"waiting for {self.session_dir}/events.jsonl …")
        self.source = SessionSource(self.session_dir, self).start()
        self.set_interval(1.0, self._tick)
        self._size_strip()
        self.refresh_views()

    def on_unmount(self) -> None:
        if self.source is not None:
            self.source.stop()
        if self.control is not None:
            self.control.close()

    def on_resize(self, event: events.Resize) -> None:
        self._size_strip()
        self.call_after_refresh(self.update_log_title)  # its width decides how long it may be

    def _size_strip(self) -> None:
        """At most a fifth of the screen for the workers strip (4 lines at 80x24)."""
        strip = self.query_one(WorkersStrip)
        strip.max_lines = max(2, (self.size.height - 3) // 5)
        self._show_workers()

    def _show_workers(self) -> None:
        shown = self.worker if self.worker is not None else self.shown_run.worker if self.shown_run else None
        self.query_one(WorkersStrip).show(self.state, shown, self.worker is not None)

    def _tick(self) -> None:
        self.query_one(StatusHeader).show(self.state, self.status_word())
        if self.state.multi_worker:
            self.query_one(WorkersStrip).refresh()  # the elapsed times
        if self.engine is not None and self.state.ended is None and not self._engine_gone_told \
                and not self.engine.alive():
            self._engine_gone_told = True
            self.run_worker(self._tell_engine_gone, thread=True, name="engine output")

    def _tell_engine_gone(self) -> None:
        from autoresearch_tui.engine.metrics import read_tail

        tail = [ln for ln in read_tail(self.engine.output, 4096).splitlines() if ln.strip()]
        last = tail[-1] if tail else "no output"
        self.app.call_from_thread(self.notify, f"the engine exited: {last}\n(full output: {self.engine.output})",
                                  title="Engine stopped", severity="error", timeout=30)

    def status_word(self) -> str:
        s = self.state
        if s.ended is not None:
            return "ended"
        if s.started is None:
            return "waiting"
        if s.review is not None:
            return "waiting for review"
        if self.stop_requests or s.stopping:
            return "stopping"
        if s.paused:
            return "paused"
        if self.pause_requested:
            return "pausing after this run"
        return "running"

    # -- data ------------------------------------------------------------------------------
    def on_events_arrived(self, message: EventsArrived) -> None:
        for event in message.events:
            self.state.apply(event)
            if self._caught_up:
                self._announce(event)
        if self.state.multi_worker:
            self._show_candidate()
        else:
            last_proposal = next((e for e in reversed(message.events) if isinstance(e, ev.ProposalMade)), None)
            if last_proposal is not None:
                self.query_one(DiffView).show(last_proposal.diff)
                self.set_subtitle(1, f"#{last_proposal.iteration} {last_proposal.description}")
            elif not self.state.proposals and self.state.run is not None:
                self.query_one(DiffView).set_placeholder("the baseline: the unmodified training script")
        self._follow_review()
        if not self._caught_up and self.state.ended is not None:
            more = "" if self.read_only else "; press f for the summary and merge"
            self.notify(f"this session has ended ({self.state.ended.reason}){more}", timeout=8)
        self._caught_up = True
        self.refresh_views()
        self._show_workers()
        self.update_log_title()
        self.refresh_bindings()  # finish / review / control keys depend on the state

    def _announce(self, event: ev.Event) -> None:
        if isinstance(event, ev.ProgressReport):
            self.notify(f"progress report at iteration {event.iteration}: press r", title="Progress", timeout=8)
        elif isinstance(event, ev.ResultRecorded) and event.status == "keep" and event.iteration > 0:
            self.notify(f"#{event.iteration} {fmt_metric(event.metric)}: {event.description}", title="New best",
                        timeout=6)
            if self.bell:
                self.app.bell()
        elif isinstance(event, ev.Notice) and event.level in ("warning", "error"):
            self.notify(event.message, severity=event.level, timeout=10)
        elif isinstance(event, ev.GuardrailTripped):
            self.notify(f"reverted {', '.join(event.reverted)}: {event.reason}", severity="warning")
        elif isinstance(event, ev.SessionEnded):
            self.pause_requested, self.stop_requests = False, 0
            more = "" if self.read_only else " Press f for the summary and merge."
            self.notify(f"session ended ({event.reason}); best {fmt_metric(event.best_metric)}.{more}",
                        title="Finished", timeout=15)

    def on_log_changed(self, message: LogChanged) -> None:
        self.query_one(LogView).show(message.lines, message.total)
        if message.lines and message.run is not None and message.run is self.state.run:
            self.query_one(StatusHeader).saw_log_line(self.state.run, message.lines[-1])
        if message.path is not None:
            self.set_subtitle(2, f"{message.path.name} · {message.total} lines")
        if message.run is not None and message.run is not self.shown_run:
            self.shown_run = message.run  # type: ignore[assignment]
            if self.state.multi_worker:
                self._show_candidate()
                self._show_workers()
                self.update_log_title()
        if self.source is not None:
            self.source.log_shown()

    def on_worker_tails(self, message: WorkerTails) -> None:
        self.query_one(WorkersStrip).set_tails(message.tails)

    # -- parallel workers ----------------------------------------------------------------------
    def followed_run(self) -> ev.RunStarted | None:
        """The run whose log and candidate the panes show (several workers)."""
        s = self.state
        if self.worker is not None:
            return s.runs.get(self.worker) or s.workers.get(self.worker)
        if self.shown_run is not None:
            return self.shown_run
        return s.run

    def _show_candidate(self) -> None:
        """Several workers: the diff pane shows the candidate of the run the log pane follows."""
        run = self.followed_run()
        if run is None:
            return
        diff = self.query_one(DiffView)
        proposal = self.state.proposals.get(run.iteration) if run.iteration else None
        where = f" · w{run.worker}"
        if proposal is None:
            self._candidate = None
            diff.show("")
            diff.set_placeholder("the baseline: the unmodified training script" if run.iteration == 0
                                 else f"no diff recorded for #{run.iteration}")
            self.set_subtitle(1, f"#{run.iteration}{' baseline' if run.iteration == 0 else ''}{where}")
            return
        if proposal is not self._candidate:  # the same candidate: keep the scroll position
            self._candidate = proposal
            diff.show(proposal.diff)
        self.set_subtitle(1, f"#{run.iteration} {proposal.description}{where}")

    def log_title_notes(self) -> list[str]:
        if not self.state.multi_worker:
            return []
        if self.worker is not None:
            return [f"w{self.worker}"]
        run = self.shown_run
        return [f"auto: w{run.worker}" if run is not None else "auto"]

    def action_toggle_log_scroll(self) -> None:
        self.action_toggle_scroll()

    def action_toggle_scroll_back(self) -> None:
        self.action_toggle_scroll()

    def action_toggle_scroll(self) -> None:
        super().action_toggle_scroll()
        self.refresh_bindings()  # the footer shows the new state

    def action_next_worker(self) -> None:
        """`w`: follow the next worker (automatic, w0, w1, …, automatic)."""
        workers = sorted(self.state.workers)
        if len(workers) < 2:
            return
        order: list[int | None] = [None, *workers]
        at = order.index(self.worker) if self.worker in order else 0
        self.worker = order[(at + 1) % len(order)]
        if self.source is not None:
            self.source.select_worker(self.worker)
        self._show_candidate()
        self._show_workers()
        self.update_log_title()

    def on_session_reset(self, message: SessionReset) -> None:
        self.state = SessionState()
        self._caught_up = False
        self.worker, self.shown_run = None, None
        if self.source is not None:
            self.source.select_worker(None)
        self.refresh_views()
        self._show_workers()
        self.update_log_title()

    def on_load_failed(self, message: LoadFailed) -> None:
        self.notify(message.message, severity="error", timeout=10)

    # -- commands --------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "review":
            return not self.read_only and self.state.review is not None
        if action in CONTROL_ACTIONS:
            if self.read_only:
                return False
            return None if self.state.ended is not None else True
        if action == "finish":  # offered once the session has ended (watch too: merging ends "leave running")
            return self.state.ended is not None
        if action == "next_worker":  # only with parallel workers
            return self.state.multi_worker
        if action in ("toggle_scroll", "toggle_scroll_back"):  # one `a` in the footer (80 columns hold one of a / w)
            log = self.query(LogView).first(None)
            following = log is None or log.auto_scroll
            return not self.state.multi_worker and following == (action == "toggle_scroll")
        return True

    def on_key(self, event: events.Key) -> None:
        """Watch: the control keys say why they do nothing instead of doing nothing silently."""
        if not self.read_only or event.character not in READ_ONLY_KEYS:
            return
        if event.character == "f" and self.state.ended is not None:
            return  # the finish binding takes it
        event.stop()
        if event.character == "f":
            self.notify("the finish screen opens when the watched session has ended", timeout=4)
            return
        how = CONTROL_WORDS.get(event.character)
        hint = (f"from a shell: autoresearch-tui {how.format(dir=self.session_dir)}" if how
                else "reviews are answered in the terminal that runs the loop")
        self.notify(f"read-only here ({READ_ONLY_KEYS[event.character]}): this is a watch; {hint}",
                    title="Watch", timeout=8)

    def _send(self, command: str, **fields) -> None:
        if self.control is not None:
            self.control.send(command, **fields)

    def action_toggle_pause(self) -> None:
        if self.state.paused or self.pause_requested:
            self._send("resume")
            self.pause_requested = False
            self.state.paused = False
            self.notify("resuming", timeout=3)
        else:
            self._send("pause")
            self.pause_requested = True
            self.notify("pausing after the current run (p again resumes)", timeout=4)
        self.query_one(StatusHeader).show(self.state, self.status_word())

    def action_stop(self) -> None:
        self.stop_requests += 1
        self._send("stop" if self.stop_requests == 1 else "kill_run")
        if self.stop_requests == 1:
            self.notify("stopping after the current run (s again kills it now)", timeout=5)
        else:
            self.notify("killing the current run and stopping", severity="warning", timeout=5)
        self.query_one(StatusHeader).show(self.state, self.status_word())

    def action_kill_run(self) -> None:
        if self.state.run is None:
            self.notify("no run in progress", timeout=3)
            return
        if self.state.multi_worker:  # the run the log pane shows, not every run in flight
            run = self.followed_run()
            current = self.state.runs.get(run.worker) if run is not None else None
            if run is None or current is None or current.log != run.log:
                self.notify("the followed worker has no run in progress (w picks another)", timeout=3)
                return
            self._send("kill_run", worker=run.worker)
            self.notify(f"killing run #{run.iteration} on w{run.worker} (recorded as a discard)",
                        severity="warning", timeout=4)
            return
        self._send("kill_run")
        self.notify(f"killing run #{self.state.run.iteration} (recorded as a discard)", severity="warning",
                    timeout=4)

    def action_instruct(self) -> None:
        from autoresearch_tui.tui.screens.prompt import PromptScreen

        if self.state.config.get("agent", "builtin") == "builtin":
            # The built-in proposer edits constants by rule; it has no way to read a sentence.
            self.notify("the built-in proposer cannot read free text. Steer it with `vary` / `hold` "
                        "(constants or categories, e.g. hold = [\"DEPTH\"], vary = [\"optimizer\"]) in "
                        "autoresearch.toml or --vary/--hold, then resume; or use an LLM agent (--agent).",
                        title="Instruction", severity="warning", timeout=12)
            return

        def sent(text: str | None) -> None:
            if text:
                self._send("instruct", text=text)
                self.notify("instruction sent; the next proposals see it", timeout=4)

        self.app.push_screen(PromptScreen("Instruction", "Guidance for the next proposals (enter sends):"), sent)

    def action_report(self) -> None:
        if not self.state.progress:  # none yet (one every N iterations): the summary so far
            every = self.state.config.get("progress_every", 10)
            self.notify(f"no progress report yet (one every {every} iterations): the summary so far", timeout=4)
            self.action_summary()
            return
        report = self.state.progress[-1]
        self.show_document(f"Progress — iteration {report.iteration}", report.markdown)

    def action_summary(self) -> None:
        state, ended = self.state, self.state.ended

        def read() -> None:
            candidates = [self.session_dir / SUMMARY_FILE]
            if ended is not None and ended.summary_path:
                candidates.insert(0, Path(ended.summary_path))
            for path in candidates if ended is not None else []:
                try:
                    text = path.read_text(encoding="utf-8")
                except OSError:
                    continue
                self.app.call_from_thread(self.show_document, f"Summary — {path}", text)
                return
            if not state.rows:
                self.app.call_from_thread(self.notify, "no experiment has finished yet", timeout=4)
                return
            text = render_state_summary(state)  # the file is written when the session ends
            self.app.call_from_thread(self.show_document, "Summary so far (provisional)", text)

        self.run_worker(read, thread=True, name="read summary")

    def action_finish(self) -> None:
        if self.state.ended is None:
            self.notify("the finish screen opens when the session has ended", timeout=4)
            return
        try:
            from autoresearch_tui.tui.screens.finish import FinishScreen
        except ImportError as exc:
            self.notify(f"finish screen not available: {exc}", severity="error")
            return
        project = Path(self.state.started.project) if self.state.started else self.session_dir.parent.parent
        self.app.push_screen(FinishScreen(self.session_dir, project))

    def action_request_quit(self) -> None:
        hint = f"autoresearch-tui watch {self.session_dir}"
        running = self.state.ended is None and (self.engine.alive() if self.engine is not None else True)
        if self.read_only or not running:
            self.app.exit(0)
            return
        from autoresearch_tui.tui.screens.quit import QuitScreen

        def chosen(choice: str | None) -> None:
            if choice == "stop":
                self._send("stop")
                if self.control is not None:
                    self.control.flush()
                self.app.exit(0, message=f"stopping after the current run; follow it with: {hint}")
            elif choice == "leave":
                pid = f" (pid {self.engine.pid})" if self.engine is not None else ""
                self.app.exit(0, message=f"the loop keeps running in the background{pid}; reattach with: {hint}")

        self.app.push_screen(QuitScreen(str(self.session_dir)), chosen)

    def detail_sources(self):
        return self.state, self.session_dir, None
