"""One experiment full screen: its diff above its run log (Enter on a table row)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen

from autoresearch_tui.engine.details import Detail
from autoresearch_tui.tui.widgets.diff_view import DiffView
from autoresearch_tui.tui.widgets.log_view import LogView


class DetailScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close"), Binding("tab", "app.focus_next", "Next", show=False)]

    def __init__(self, detail: Detail) -> None:
        super().__init__()
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="detail-body", classes="dialog") as body:
            body.border_title = Text(self.detail.title)
            body.border_subtitle = "esc closes · tab switches"
            diff = DiffView(id="detail-diff")
            diff.border_title = "diff"
            yield diff
            log = LogView(id="detail-log")
            log.border_title = "run log"
            yield log

    def on_mount(self) -> None:
        d = self.detail
        self.query_one(DiffView).show(d.diff, note=d.diff_note)
        log = self.query_one(LogView)
        log.set_placeholder(d.log_note or "no log")
        log.show(d.log)
        log.border_subtitle = Text(d.log_note) if d.log else None
        self.query_one(DiffView).focus()

    def action_close(self) -> None:
        self.dismiss(None)
