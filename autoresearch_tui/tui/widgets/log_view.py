"""The streaming training log: a bounded snapshot of display lines, newest at the bottom."""

from __future__ import annotations

from rich.text import Text

from autoresearch_tui.tui.widgets.lines import LinesView


class LogView(LinesView):
    def __init__(self, placeholder: str = "waiting for the first run…", **kwargs) -> None:
        super().__init__(placeholder, auto_scroll=True, **kwargs)
        self.total = 0  # complete lines the run has printed (may be far more than shown)

    def show(self, lines: list[str], total: int | None = None) -> None:
        if total is not None:
            self.total = total
        self.set_lines(lines)

    def style_line(self, line: str) -> Text:
        if line.startswith(("── ", "[… ")):
            return Text(line, style="bold dim", no_wrap=True, end="")
        low = line[:40].lower()
        if low.startswith(("traceback", "error", "fail")) or "error:" in low:
            return Text(line, style="red", no_wrap=True, end="")
        return Text(line, no_wrap=True, end="")
