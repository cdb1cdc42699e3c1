"""A Markdown document in a dialog: progress reports and the research summary."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from autoresearch_tui.tui.widgets.lines import LinesView

MARKDOWN_LIMIT = 120_000  # bigger documents are shown as plain text (rendering stays instant)


class DocumentScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, markdown: str) -> None:
        super().__init__()
        self.title_text, self.markdown = title, markdown

    def compose(self) -> ComposeResult:
        if len(self.markdown) <= MARKDOWN_LIMIT:
            with VerticalScroll(id="doc-body", classes="dialog") as body:
                body.border_title = Text(self.title_text)
                body.border_subtitle = "esc closes"
                yield Markdown(self.markdown, id="doc")
        else:
            view = LinesView(id="doc-body", classes="dialog")
            view.border_title = Text(self.title_text)
            yield view

    def on_mount(self) -> None:
        if len(self.markdown) > MARKDOWN_LIMIT:
            self.query_one(LinesView).set_lines(self.markdown.splitlines(), scroll_home=True)
        self.query_one("#doc-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
