"""Replay any results.tsv in the same panes; Left/Right walks the experiments in order.

With a repository (given, or the one holding the file) the diff pane shows `git show` of the
selected commit; with a session folder the log pane shows that experiment's run log.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from autoresearch_tui.engine.details import Detail
from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.tui.messages import LoadFailed, ResultsLoaded, SummaryReady
from autoresearch_tui.tui.screens.panes import PaneScreen
from autoresearch_tui.tui.source import ResultsSource
from autoresearch_tui.tui.widgets.chart import ChartPane
from autoresearch_tui.tui.widgets.diff_view import DiffView
from autoresearch_tui.tui.widgets.header import StatusHeader
from autoresearch_tui.tui.widgets.lines import TextDocument
from autoresearch_tui.tui.widgets.log_view import LogView
from autoresearch_tui.tui.widgets.results_table import ResultsTable


SECTION_ROWS = 200  # rows of a section shown in the summary pane


def sections_markdown(sections) -> str:
    """The file's blocks in another shape, each a table of its own under the summary."""
    out = []
    for sec in sections:
        out += ["", f"## Rows in another shape (from line {sec.first_line})", ""]
        out.append("| " + " | ".join(sec.columns) + " |")
        out.append("|" + "|".join("---" for _ in sec.columns) + "|")
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in sec.rows[:SECTION_ROWS]]
        if len(sec.rows) > SECTION_ROWS:
            out += ["", f"… {len(sec.rows) - SECTION_ROWS} more rows"]
    return "\n".join(out) + ("\n" if out else "")


SUMMARY_AFTER_S = 0.3  # the summary starts rendering this long after the rows were shown


class ReplayScreen(PaneScreen):
    MODE = "replay"
    NEWEST_FIRST = False
    BINDINGS = [
        Binding("left", "step(-1)", "Prev", priority=True),
        Binding("right", "step(1)", "Next", priority=True),
        Binding("a", "toggle_scroll", "Autoscroll", show=False),
        *PaneScreen.FOOTER,
    ]

    def __init__(self, results: Path, session: Path | None = None, repo: Path | None = None) -> None:
        super().__init__()
        self.results = Path(results)
        self.session = Path(session) if session else None
        self.repo = Path(repo) if repo else None
        self.session_state: SessionState | None = None
        self.summary: str | None = None  # None until rendered (after the rows are shown)
        self.skipped: list[tuple[int, str]] = []
        self.loaded = False
        self.source: ResultsSource | None = None
        self._summary_wanted = False  # `u` was pressed before the summary was ready
        self.sections: list = []  # blocks of the file in another shape (results.Section)

    def second_pane_title(self) -> str:
        return "Run log" if self.session else "Summary"

    def compose_second_pane(self) -> ComposeResult:
        if self.session:
            yield LogView("select an experiment to see its run log", id="log")
        else:
            yield TextDocument("reading…", id="summary-pane")

    def on_mount(self) -> None:
        super().on_mount()
        header = self.query_one(StatusHeader)
        header.title = self.results.name
        header.show(self.state, "replay")
        self.query_one(DiffView).set_placeholder("reading the results…")
        skipped = Static("", id="skipped")
        skipped.display = False
        self.query_one("#pane-4").mount(skipped)
        self.source = ResultsSource(self.results, self.session, self.repo)
        self.source.start(self)

    def status_word(self) -> str:
        return "replay"

    # -- data ------------------------------------------------------------------------------
    def on_results_loaded(self, message: ResultsLoaded) -> None:
        if message.partial:  # the first rows, while the rest of a long file is read
            self.state, self.decimals = message.state, message.table.decimals
            header = self.query_one(StatusHeader)
            header.title = f"{self.results.name} (reading…)"
            self.refresh_views(chart=False)
            return
        self.query_one(StatusHeader).title = self.results.name
        self.state, self.session_state, self.repo = message.state, message.session_state, message.repo
        self.skipped, self.loaded = list(message.table.skipped), True
        self.sections = message.table.sections
        self.decimals = message.table.decimals
        # No repository holding these commits and no session: the diff pane has nothing to show,
        # so the table and the chart get its room.
        self.query_one("#panes").set_class(self.repo is None and self.session is None, "-nodiff")
        self.refresh_views(chart=False)  # the rows first; the chart (O(n) to prepare) a frame later
        self.call_after_refresh(self.refresh_chart)
        # The summary renders in the source's thread once the frame with the rows is out (a few
        # frames later; in the same interpreter it would slow that frame down), or when `u` asks.
        self.set_timer(SUMMARY_AFTER_S, self.source.rows_shown.set)
        docs = self.query(TextDocument)
        if docs:
            docs.first().set_placeholder("rendering the summary…")
        if message.summary is not None:
            self._set_summary(message.summary)
        where = f"diffs from {self.repo}" if self.repo else "no git repository: no diffs (give --repo DIR)"
        self.query_one(DiffView).set_placeholder(f"select an experiment ({where})")
        if self.skipped:
            first = "; ".join(f"line {n}: {why}" for n, why in self.skipped[:3])
            more = f"; +{len(self.skipped) - 3} more (u)" if len(self.skipped) > 3 else ""
            label = self.query_one("#skipped", Static)
            label.update(Text(f"⚠ {len(self.skipped)} line(s) not read: {first}{more}"))
            label.display = True
            self.notify(f"{len(self.skipped)} line(s) of {self.results.name} could not be read; "
                        "they are listed under the table and in the summary (u)", severity="warning", timeout=6)
        if not self.state.rows:
            self.query_one(DiffView).set_placeholder("no experiments in this file")
        else:
            self.load_detail(self.query_one(ResultsTable).selected_index() or 0, "panes")

    def on_summary_ready(self, message: SummaryReady) -> None:
        self._set_summary(message.summary)

    def _set_summary(self, text: str) -> None:
        self.summary = text
        docs = self.query(TextDocument)
        if docs:
            docs.first().set_markdown(self.summary + sections_markdown(self.sections))
        if self._summary_wanted:
            self._summary_wanted = False
            self.action_summary()

    def on_load_failed(self, message: LoadFailed) -> None:
        self.loaded = True
        self.summary = ""
        self.query_one(DiffView).set_placeholder(message.message)
        self.notify(message.message, severity="error", timeout=15)

    # -- selection ---------------------------------------------------------------------------
    def on_results_table_row_highlighted(self, event: ResultsTable.RowHighlighted) -> None:
        if not self.loaded:
            return
        index = event.index
        self.query_one(ChartPane).select(index)
        self.load_detail(index, "panes")

    def action_step(self, delta: int) -> None:
        self.query_one(ResultsTable).step(delta)

    def detail_sources(self):
        return self.session_state, self.session, self.repo

    def show_detail_in_panes(self, detail: Detail) -> None:
        diff = self.query_one(DiffView)
        diff.show(detail.diff, note=detail.diff_note)
        self.set_subtitle(1, detail.title)
        logs = self.query(LogView)
        if logs:
            log = logs.first()
            log.set_placeholder(detail.log_note or "no run log")
            log.show(detail.log)
            self.set_subtitle(2, Path(detail.log_note).name if detail.log else "")

    def action_summary(self) -> None:
        if not self.loaded:
            self.notify("still reading the file", timeout=3)
            return
        if self.summary is None:  # opened as soon as it is rendered
            if self.source is not None:
                self.source.rows_shown.set()
            if not self._summary_wanted:
                self._summary_wanted = True
                self.notify("rendering the summary…", timeout=2)
            return
        self.show_document(f"Summary — {self.results.name}",
                           (self.summary or "no summary") + sections_markdown(self.sections))
