"""A scrollable list of text lines that renders only what is visible (Textual's Line API).

Replacing the whole list is cheap (a reference swap), so a source can hand over a fresh
snapshot many times a second; rendering cost depends on the pane height, not the line count.
"""

from __future__ import annotations

import re
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

    def style_at(self, index: int) -> Text:
        return self.style_line(self._lines[index])

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
            text = self.style_at(index)
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
    """Markdown shown as plain lines: headings bold, **bold** marks dropped, tables as aligned
    columns (wide ones scroll instead of squeezing). Cheap on a summary with 1,000 table rows,
    where Textual's Markdown widget would take seconds."""

    def __init__(self, placeholder: str = "", **kwargs) -> None:
        super().__init__(placeholder, auto_scroll=False, **kwargs)
        self._headings: set[int] = set()

    def set_markdown(self, text: str) -> None:
        lines, self._headings = markdown_lines(text)
        self.set_lines(lines, scroll_home=True)

    def style_at(self, index: int) -> Text:
        line = self._lines[index]
        bold = index in self._headings or (index - 1 in self._headings and line[:1] in "═─")
        return Text(line, style="bold" if bold else "", no_wrap=True, end="")


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]*)`")
MAX_CELL = 60  # a table cell wider than this is cut with "…"


def _inline(text: str) -> str:
    return _CODE.sub(r"\1", _BOLD.sub(r"\1", text))


def _cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    cells = re.split(r"(?<!\\)\|", body)
    return [_inline(c.strip().replace("\\|", "|")) for c in cells]


def _table(block: list[str]) -> list[str]:
    rows = [_cells(ln) for ln in block if not re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", ln)]
    if not rows:
        return []
    n = max(map(len, rows))
    rows = [r + [""] * (n - len(r)) for r in rows]
    rows = [[c if len(c) <= MAX_CELL else c[: MAX_CELL - 1] + "…" for c in r] for r in rows]
    widths = [max(cell_len(r[i]) for r in rows) for i in range(n)]
    numeric = [all(_numeric(r[i]) for r in rows[1:] if r[i]) for i in range(n)]

    def fmt(row: list[str]) -> str:
        cells = []
        for i, c in enumerate(row):
            pad = " " * (widths[i] - cell_len(c))
            cells.append(pad + c if numeric[i] else c + pad)
        return " │ ".join(cells).rstrip()

    out = [fmt(rows[0]), "─┼─".join("─" * w for w in widths)]
    out += [fmt(r) for r in rows[1:]]
    return out


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.,]+%?( \([-+][\d.]+%?\))?|—", text))


def markdown_lines(text: str) -> tuple[list[str], set[int]]:
    """(display lines, indices of heading lines) for Markdown text."""
    out: list[str] = []
    headings: set[int] = set()
    block: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            block.append(line)
            continue
        if block:
            out += _table(block)
            block = []
        if line.startswith("#"):
            title = _inline(line.lstrip("#").strip())
            headings.add(len(out))
            out += [title, ("═" if line.startswith("# ") else "─") * cell_len(title)]
            continue
        if line.startswith("- "):
            out.append("• " + _inline(line[2:]))
        elif line.startswith("  - "):
            out.append("  ◦ " + _inline(line[4:]))
        else:
            out.append(_inline(line))
    if block:
        out += _table(block)
    return out, headings
