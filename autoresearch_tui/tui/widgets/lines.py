"""A scrollable list of text lines that renders only what is visible (Textual's Line API).

Replacing the whole list is cheap (a reference swap), so a source can hand over a fresh
snapshot many times a second; rendering cost depends on the pane height, not the line count.
"""

from __future__ import annotations

import textwrap
from typing import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

_MORE = Style(dim=True)
WIDTH_SAMPLE = 400  # lines measured for the horizontal scroll width (the newest ones)


class LinesView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LinesView { background: $surface; overflow: auto auto; scrollbar-size-vertical: 1; scrollbar-size-horizontal: 0; }
    """

    auto_scroll: var[bool] = var(True)

    def __init__(self, placeholder: str = "", *, auto_scroll: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lines: Sequence[str] = ()
        self._cache: dict[int, Strip] = {}
        self.placeholder = placeholder
        self.set_reactive(LinesView.auto_scroll, auto_scroll)

    @property
    def lines(self) -> Sequence[str]:
        return self._lines

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def set_placeholder(self, text: str) -> None:
        self.placeholder = text
        if not self._lines:
            self.refresh()

    def set_lines(self, lines: Sequence[str], scroll_home: bool = False) -> None:
        self._lines = lines
        self._cache.clear()
        sample = lines[-WIDTH_SAMPLE:] if len(lines) > WIDTH_SAMPLE else lines
        width = max((cell_len(line) for line in sample), default=0)
        if len(sample) < len(lines):
            width = max(width, self.virtual_size.width)
        self.virtual_size = Size(width, len(lines))
        if scroll_home:
            self.scroll_home(animate=False, immediate=True)
        elif self.auto_scroll:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def watch_auto_scroll(self, value: bool) -> None:
        if value:
            self.scroll_end(animate=False, x_axis=False)

    def style_line(self, line: str) -> Text:
        """Override to colour a line. Must not wrap."""
        return Text(line, no_wrap=True, end="")

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        index = scroll_y + y
        base = self.rich_style
        if not self._lines:
            wrapped = textwrap.wrap(self.placeholder, max(width - 1, 10)) if self.placeholder else []
            if y < len(wrapped):
                text = Text(wrapped[y], style="dim italic", no_wrap=True, end="")
                strip = Strip(list(text.render(self.app.console)), text.cell_len).apply_style(base)
                return strip.crop_extend(0, width, base)
            return Strip.blank(width, base)
        if index >= len(self._lines):
            return Strip.blank(width, base)
        strip = self._cache.get(index)
        if strip is None:
            text = self.style_line(self._lines[index])
            strip = Strip(list(text.render(self.app.console)), text.cell_len).apply_style(base)
            if len(self._cache) > 512:
                self._cache.clear()
            self._cache[index] = strip
        shown = strip.crop_extend(scroll_x, scroll_x + width, base)
        if strip.cell_length > scroll_x + width and width > 1:  # more to the right (→ scrolls)
            shown = Strip.join([shown.crop(0, width - 1), Strip([Segment("…", base + _MORE)], 1)])
        return shown.apply_offsets(scroll_x, index)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()



class TextDocument(LinesView):
    """Markdown shown as plain lines (headings bold): wide tables scroll instead of squeezing."""

    def __init__(self, placeholder: str = "", **kwargs) -> None:
        super().__init__(placeholder, auto_scroll=False, **kwargs)

    def style_line(self, line: str) -> Text:
        if line.startswith("#"):
            return Text(line.lstrip("# "), style="bold", no_wrap=True, end="")
        if line.startswith("**"):
            return Text(line.replace("**", ""), style="", no_wrap=True, end="")
        return Text(line, no_wrap=True, end="")
