"""The Textual application: one stylesheet, one first screen given by `launch`."""

from __future__ import annotations

from typing import Callable

from textual.app import App
from textual.screen import Screen


class ResearchApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "autoresearch"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, start: Callable[["ResearchApp"], Screen | None]) -> None:
        super().__init__()
        self._start = start

    def on_mount(self) -> None:
        screen = self._start(self)
        if screen is not None:
            self.push_screen(screen)

    crash_line: str | None = None

    def _handle_exception(self, error: Exception) -> None:
        """An error inside the app: a crash report and one line (printed by `launch` once the screen is
        gone), not Textual's traceback over the terminal."""
        from autoresearch_tui.crash import one_line

        self.crash_line = one_line(error)
        super()._handle_exception(error)  # exits with code 1; a test's pilot still sees the exception
        self._exit_renderables.clear()

    async def action_quit(self) -> None:
        """ctrl+q goes through the screen's quit (the live screen asks what to do with the loop)."""
        request = getattr(self.screen, "action_request_quit", None)
        if request is not None:
            request()
        else:
            self.exit(0)
