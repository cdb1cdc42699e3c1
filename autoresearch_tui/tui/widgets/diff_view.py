"""Unified diff, coloured like git: additions green, removals red, hunks cyan, headers dim.

Without colour (NO_COLOR) the `+`/`-` prefixes still say it all.
"""

from __future__ import annotations

from rich.text import Text

from autoresearch_tui.tui.widgets.lines import LinesView

_HEADERS = ("diff --git", "index ", "--- ", "+++ ", "new file", "deleted file", "similarity", "rename ",
            "commit ", "Author:", "Date:", "old mode", "new mode")


def diff_style(line: str) -> str:
    if line.startswith(_HEADERS):
        return "dim"
    if line.startswith("@@"):
        return "cyan"
    if line.startswith("+"):
        return "green"
    if line.startswith("-"):
        return "red"
    return ""


class DiffView(LinesView):
    """The current (or selected) experiment's diff."""

    def __init__(self, placeholder: str = "no experiment yet", **kwargs) -> None:
        super().__init__(placeholder, auto_scroll=False, **kwargs)
        self.title = ""

    def show(self, diff: str, title: str = "", note: str = "") -> None:
        lines = diff.splitlines() if diff else []
        self.title = title
        if not lines and note:
            self.set_placeholder(note)
        elif note and lines and not diff.startswith("commit "):
            lines = [f"# {note}", *lines]
        self.set_lines(lines, scroll_home=True)

    def style_line(self, line: str) -> Text:
        if line.startswith("# ") and not line.startswith("# -"):
            return Text(line, style="dim italic", no_wrap=True, end="")
        return Text(line, style=diff_style(line), no_wrap=True, end="")
