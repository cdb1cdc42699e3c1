"""A Markdown document in a dialog: progress reports and the research summary."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from autoresearch_tui.tui.widgets.lines import LinesView

# Bigger documents are shown as plain text (rendering stays instant). Textual's Markdown widget
# takes seconds for long tables (~2 s per 100 table rows on 2 cores), so the line count counts too.
MARKDOWN_LIMIT = 120_000
MARKDOWN_LINES = 250


def _as_markdown(text: str) -> bool:
    return len(text) <= MARKDOWN_LIMIT and text.count("\n") <= MARKDOWN_LINES


class DocumentScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, markdown: str) -> None:
        super().__init__()
        self.title_text, self.markdown = title, markdown

    def compose(self) -> ComposeResult:
        if _as_markdown(self.markdown):
            with VerticalScroll(id="doc-body", classes="dialog") as body:
                body.border_title = Text(self.title_text)
                body.border_subtitle = "esc closes"
                yield Markdown(self.markdown, id="doc")
        else:
            view = LinesView(id="doc-body", classes="dialog")
            view.border_title = Text(self.title_text)
            yield view

    def on_mount(self) -> None:
        if not _as_markdown(self.markdown):
            self.query_one(LinesView).set_lines(self.markdown.splitlines(), scroll_home=True)
        self.query_one("#doc-body").focus()

    def action_close(self) -> None:
        self.dismiss(None)
