"""The four-pane layout shared by live, watch and replay: every one is a view of a SessionState.

  1 diff of the current / selected experiment   2 training log (replay: summary or run log)
  3 best-metric sparkline and plot              4 results table
"""

from __future__ import annotations

import itertools
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.events import DescendantFocus, Resize
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.tui.messages import DetailLoaded
from autoresearch_tui.tui.widgets.chart import ChartPane
from autoresearch_tui.tui.widgets.diff_view import DiffView
from autoresearch_tui.tui.widgets.header import StatusHeader
from autoresearch_tui.tui.widgets.log_view import LogView
from autoresearch_tui.tui.widgets.results_table import ResultsTable


class Pane(Vertical):
    """A bordered pane with a number in its title; `m` maximises it."""

    def __init__(self, number: int, title: str, **kwargs) -> None:
        super().__init__(id=f"pane-{number}", **kwargs)
        self.number = number
        self.border_title = f"{number} {title}"


NARROW = 100  # below this many columns the panes stack (the focused one large)


class PaneScreen(Screen):
    MODE = "live"
    NEWEST_FIRST = True
    BINDINGS = [
        Binding("1", "focus_pane(1)", "Diff", show=False),
        Binding("2", "focus_pane(2)", "Log", show=False),
        Binding("3", "focus_pane(3)", "Chart", show=False),
        Binding("4", "focus_pane(4)", "Results", show=False),
    ]
    # Subclasses list the keys the footer shows, in footer order (the rest is in `?` help).
    FOOTER = [
        Binding("m,z", "toggle_max", "Max"),
        Binding("u", "summary", "Summary"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "request_quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state = SessionState()
        self.decimals: int | None = 6  # how metric values are written (replay: the file's own precision)
        self._detail_seq = itertools.count(1)
        self._detail_want = 0

    # -- layout ------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        yield from self.compose_top()
        with Grid(id="panes"):
            with Pane(1, "Diff"):
                yield DiffView(id="diff")
            with Pane(2, self.second_pane_title()):
                yield from self.compose_second_pane()
            with Pane(3, "Best metric"):
                yield ChartPane(id="chart")
            with Pane(4, "Results"):
                yield ResultsTable(newest_first=self.NEWEST_FIRST, id="table")
        yield Footer()

    def compose_top(self) -> ComposeResult:
        """Between the header and the panes (live: the workers strip)."""
        yield from ()

    def second_pane_title(self) -> str:
        return "Training log"

    def log_title_notes(self) -> list[str]:
        """What the log pane's title says after its name (live: the worker it follows)."""
        return []

    def update_log_title(self) -> None:
        """The log pane's title: its name, what it follows, and `scroll off` while `a` holds it."""
        notes = self.log_title_notes()
        log = self.query(LogView).first(None)
        if log is not None and not log.auto_scroll:
            notes.append("scroll off")
        pane = self.query_one("#pane-2", Pane)
        title = " · ".join([f"2 {self.second_pane_title()}", *notes])
        if notes and len(title) > pane.size.width - 6:  # 80x24: the notes matter more than the name
            title = " · ".join(["2 Log", *notes])
        pane.border_title = Text(title)

    def compose_second_pane(self) -> ComposeResult:
        yield LogView(id="log")

    def on_mount(self) -> None:
        self.query_one(StatusHeader).mode = self.MODE
        self._enlarge(self.query_one("#pane-4", Pane))
        self.query_one(ResultsTable).focus()
        self._lay_out(self.size.width)

    def on_resize(self, event: Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int) -> None:
        """Two by two from NARROW columns up; below, stacked so every pane gets the full width."""
        if width:
            self.query_one("#panes").set_class(width < NARROW, "-narrow")

    def _enlarge(self, pane: Pane) -> None:
        for other in self.query(Pane):
            other.set_class(other is pane, "-big")

    # -- views -------------------------------------------------------------------------
    def refresh_views(self, chart: bool = True) -> None:
        """Redraw header, table and (unless `chart` is False) chart from self.state."""
        s = self.state
        header = self.query_one(StatusHeader)
        header.decimals = self.decimals
        header.show(s, self.status_word())
        table = self.query_one(ResultsTable)
        best = _best_index(s)
        table.set_rows(s.rows, s.metric, best, self.decimals)
        if chart:
            self.refresh_chart()
        self.set_subtitle(4, f"{len(s.rows)} experiments")

    def refresh_chart(self) -> None:
        s = self.state
        self.query_one(ChartPane).show(s.rows, s.direction, self.query_one(ResultsTable).selected_index(),
                                       s.noise_band)

    def status_word(self) -> str:
        return "running"

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notifications carry descriptions and paths: plain text unless asked otherwise."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def set_subtitle(self, pane: int, text: str) -> None:
        self.query_one(f"#pane-{pane}", Pane).border_subtitle = Text(text) if text else None

    # -- panes -------------------------------------------------------------------------
    def _pane_of(self, widget: Widget | None) -> Pane | None:
        while widget is not None and not isinstance(widget, Pane):
            widget = widget.parent if isinstance(widget.parent, Widget) else None
        return widget

    def action_focus_pane(self, number: int) -> None:
        pane = self.query_one(f"#pane-{number}", Pane)
        if self.query_one("#panes").has_class("-maximized") and not pane.has_class("-max"):
            for other in self.query(Pane):  # maximised: show the asked-for pane instead
                other.set_class(other is pane, "-max")
            self.call_after_refresh(self._focus_in, pane)
            return
        self._focus_in(pane)

    def _focus_in(self, pane: Pane) -> None:
        for widget in pane.query("*"):
            if widget.focusable:
                widget.focus()
                return

    def action_toggle_max(self) -> None:
        grid = self.query_one("#panes")
        if grid.has_class("-maximized"):
            grid.remove_class("-maximized")
            for pane in self.query(Pane):
                pane.remove_class("-max")
            return
        pane = self._pane_of(self.focused) or self.query_one("#pane-4", Pane)
        pane.add_class("-max")
        grid.add_class("-maximized")

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        grid = self.query_one("#panes")
        pane = self._pane_of(event.widget)
        if pane is not None and not pane.has_class("-big"):
            self._enlarge(pane)  # stacked layout: the focused pane is the large one
        if not grid.has_class("-maximized"):
            return
        if pane is not None and not pane.has_class("-max"):
            for other in self.query(Pane):
                other.remove_class("-max")
            pane.add_class("-max")

    def action_toggle_scroll(self) -> None:
        log = self.query(LogView).first(None)
        if log is None:
            return
        log.auto_scroll = not log.auto_scroll
        self.update_log_title()  # the state shows there: no notification per press

    def action_help(self) -> None:
        from autoresearch_tui.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.MODE))

    def show_document(self, title: str, markdown: str) -> None:
        from autoresearch_tui.tui.screens.document import DocumentScreen

        self.app.push_screen(DocumentScreen(title, markdown))

    def action_request_quit(self) -> None:
        self.app.exit(0)

    def action_summary(self) -> None:  # overridden
        pass

    # -- experiment details (diff + run log), loaded in a thread ----------------------------
    def detail_sources(self) -> tuple[SessionState | None, Path | None, Path | None]:
        """(session state, session dir, repository) to look an experiment up in."""
        return self.state, None, None

    def load_detail(self, index: int, target: str) -> None:
        if not 0 <= index < len(self.state.rows):
            return
        from autoresearch_tui.engine.details import load_detail

        row = self.state.rows[index]
        session_state, session, repo = self.detail_sources()
        seq = next(self._detail_seq)
        self._detail_want = seq

        def work() -> None:
            detail = load_detail(row, index, session_state=session_state, session=session, repo=repo)
            if self._detail_want == seq or target == "modal":
                self.post_message(DetailLoaded(detail, target))

        self.run_worker(work, thread=True, group=f"detail-{target}", name="load detail")

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.target == "modal":
            from autoresearch_tui.tui.screens.detail import DetailScreen

            self.app.push_screen(DetailScreen(message.detail))
        else:
            self.show_detail_in_panes(message.detail)

    def show_detail_in_panes(self, detail) -> None:  # replay overrides
        pass

    def on_results_table_row_selected(self, event: ResultsTable.RowSelected) -> None:
        self.load_detail(event.index, "modal")


def _best_index(state: SessionState) -> int | None:
    if state.best_commit is None:
        return None
    for i in range(len(state.rows) - 1, -1, -1):
        if state.rows[i].status == "keep" and state.best_commit.startswith(state.rows[i].commit[:7]):
            return i
    return None
