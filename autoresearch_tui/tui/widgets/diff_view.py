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


def first_change(lines) -> int | None:
    """Index of the first added or removed line (not a `---`/`+++` file header)."""
    for i, line in enumerate(lines):
        if line[:1] in "+-" and not line.startswith(("--- ", "+++ ")):
            return i
    return None


class DiffView(LinesView):
    """The current (or selected) experiment's diff, scrolled to its first change."""

    def __init__(self, placeholder: str = "no experiment yet", **kwargs) -> None:
        super().__init__(placeholder, auto_scroll=False, **kwargs)
        self.title = ""
        self._change: int | None = None
        self._auto_y: int | None = None  # the scroll we set: a resize re-aims unless the user scrolled

    def _aim(self) -> None:
        """The first change near the top, with as much context above it as the height allows."""
        if self._change is None:
            return
        height = self.size.height
        context = 0 if height <= 3 else min(3, (height - 2) // 2)
        y = max(0, self._change - context)
        self.scroll_to(y=y, animate=False, immediate=True)
        self._auto_y = round(self.scroll_y)

    def on_resize(self) -> None:
        # Re-aim unless the user scrolled away (a shrink may have clamped our scroll to the end).
        if self._auto_y is not None and round(self.scroll_y) in (self._auto_y, round(self.max_scroll_y)):
            self._aim()

    def show(self, diff: str, title: str = "", note: str = "") -> None:
        lines = diff.splitlines() if diff else []
        self.title = title
        if not lines and note:
            self.set_placeholder(note)
        elif note and lines and not diff.startswith("commit "):
            lines = [f"# {note}", *lines]
        self.set_lines(lines, scroll_home=True)
        self._change, self._auto_y = first_change(lines), None
        self.call_after_refresh(self._aim)  # once the new virtual size is in place

    def style_line(self, line: str) -> Text:
        if line.startswith("# ") and not line.startswith("# -"):
            return Text(line, style="dim italic", no_wrap=True, end="")
        return Text(line, style=diff_style(line), no_wrap=True, end="")
