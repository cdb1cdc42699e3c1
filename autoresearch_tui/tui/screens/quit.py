"""Quitting the live screen: stop the loop, or leave it running and say how to reattach."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.markup import escape
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitScreen(ModalScreen[str | None]):
    """Dismisses with "stop", "leave" or None (cancel)."""

    BINDINGS = [
        Binding("escape", "choose('')", "Cancel"),
        Binding("s", "choose('stop')", "Stop loop"),
        Binding("l", "choose('leave')", "Leave running"),
    ]

    def __init__(self, session_dir: str) -> None:
        super().__init__()
        self.session_dir = session_dir

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-body", classes="dialog") as body:
            body.border_title = "Quit"
            yield Static("The research loop runs in its own process.\n\n"
                         "[b]s[/b]  stop it after the current run (the summary is written)\n"
                         "[b]l[/b]  leave it running in the background; reattach with\n"
                         f"   [b]autoresearch-tui watch {escape(self.session_dir)}[/b]\n"
                         "[b]esc[/b] go back", id="quit-text")
            with Horizontal(id="quit-buttons"):
                yield Button("Stop loop (s)", id="stop", variant="error")
                yield Button("Leave running (l)", id="leave", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose({"stop": "stop", "leave": "leave"}.get(event.button.id or "", ""))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)
