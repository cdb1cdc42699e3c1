"""`?`: every key of the screen underneath, including those the footer has no room for."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS_LIVE = [
    ("p", "pause after the current run / resume"),
    ("s", "stop after the current run (twice: kill it now)"),
    ("k", "kill the current run (logged as a discard)"),
    ("i", "instruction for an LLM agent (built-in: vary/hold)"),
    ("v", "review the proposal: a approve, x reject, e edit"),
]
KEYS_PANES = [
    ("1 2 3 4", "focus a pane (on narrow screens it grows)"),
    ("tab shift+tab", "next / previous pane"),
    ("m or z", "maximise / restore the focused pane"),
    ("a", "log auto-scroll on / off (footer: Tail ✓ / ✗)"),
    ("w", "parallel workers: follow the next one (log, diff)"),
    ("↑ ↓ pgup pgdn", "scroll the focused pane / move in the table"),
    ("enter", "open the selected experiment (diff and run log)"),
    ("r", "progress report (before the first: summary so far)"),
    ("u", "research summary"),
    ("f", "finish: summary and merge (once ended; watch too)"),
    ("?", "this help"),
    ("q", "quit"),
]
KEYS_REPLAY = [
    ("← →", "previous / next experiment"),
    ("enter", "open the selected experiment"),
    ("1 2 3 4, tab", "focus a pane"),
    ("m or z", "maximise / restore the focused pane"),
    ("u", "research summary (with lines not read, other blocks)"),
    ("?", "this help"),
    ("q", "quit"),
]


def keys_for(mode: str) -> list[tuple[str, str]]:
    if mode == "replay":
        return KEYS_REPLAY
    if mode == "watch":
        return [("", "watch mode: read-only; the loop is not affected by this screen")] + KEYS_PANES
    return KEYS_LIVE + KEYS_PANES


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, mode: str = "live") -> None:
        super().__init__()
        self.mode = mode

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, what in keys_for(self.mode):
            table.add_row(key, what)
        with VerticalScroll(id="help-body", classes="dialog") as body:
            body.border_title = "Keys"
            body.border_subtitle = "esc closes"
            yield Static(Text("autoresearch — keyboard only; the mouse is optional\n", style="dim"))
            yield Static(table)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
