"""Every experiment as a table row, coloured by status and labelled with a glyph and a word
(✓ keep, · discard, ✗ crash) so it reads without colour too.

A Line API widget (like `LinesView`): it keeps a reference to the rows and renders only the lines
on screen, so 100,000 experiments cost what 30 do. Appending rows (live mode) costs the new rows
only: a pass over them for the column widths, then a repaint of the visible lines. Rows are
addressed by their position in the file ("index"); the display order is the file order
(replay) or newest first (live, watch). The header line stays at the top while the rows scroll.

Column widths are measured over all rows (cheap C-level passes, done once per row) and the
description gets the rest of the width, cut with "…". When the pane is narrow the columns
tighten (one space between them, then the status as its glyph only, then no commit column), so
the table fits the 80x24 layout without scrolling sideways; the full description is in the
experiment's detail (Enter) and in the replay's diff-pane title.
"""

from __future__ import annotations

from operator import attrgetter, is_
from typing import Sequence

from rich.cells import cell_len, set_cell_size
from rich.control import strip_control_codes
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from autoresearch_tui.engine.results import ResultRow
from autoresearch_tui.tui.widgets.header import fmt_metric

# A discard without a metric is a run that was killed (by the user or the time limit): its own word.
STATUS = {"keep": ("✓ keep", "green"), "discard": ("○ discard", "grey62"), "crash": ("✗ crash", "red"),
          "killed": ("⊘ killed", "dark_orange")}
GLYPH = {"keep": "✓", "discard": "○", "crash": "✗", "killed": "⊘"}
BEST = "  ★ best"
DESC_MIN = 12  # narrower than this and the other columns give way
CACHE_MAX = 1024  # rendered rows kept (a few screens' worth)

_STYLES = {status: Style.parse(colour) for status, (_, colour) in STATUS.items()}
_BOLD = Style(bold=True)


def kind(row: ResultRow) -> str:
    """keep | discard | crash | killed (a discard that has no metric)."""
    return "killed" if row.status == "discard" and row.metric is None else row.status


def _status_key(row: ResultRow) -> tuple[str, str]:
    return kind(row), row.raw_status

_metric_of = attrgetter("metric")
_commit_of = attrgetter("commit")


def status_word(status: str, raw_status: str = "") -> str:
    word = STATUS.get(status, (status, ""))[0]
    if raw_status and raw_status.lower() != status:
        word = f"{word} ({raw_status})"
    return word


def _text(text: str) -> str:
    """Printable text: control codes would corrupt the terminal (Rich's Text strips them too)."""
    return text if text.isprintable() else strip_control_codes(text).replace("\t", " ")


def _fit(text: str, width: int) -> str:
    """`text` padded or cut (with an ellipsis) to exactly `width` cells."""
    if width <= 0:
        return ""
    size = len(text) if text.isascii() else cell_len(text)
    if size <= width:
        return text + " " * (width - size)
    if width == 1:
        return "…"
    cut = text[: width - 1] if text.isascii() else set_cell_size(text, width - 1)
    return cut + "…"


def _rfit(text: str, width: int) -> str:
    return _fit(text, width) if len(text) >= width else " " * (width - len(text)) + text


class _Layout:
    """Column widths for one table width: where every cell starts and how wide it is."""

    __slots__ = ("width", "sep", "num", "status", "glyph", "metric", "commit", "desc")

    def __init__(self, width: int, sep: int, num: int, status: int, glyph: bool, metric: int, commit: int,
                 desc: int) -> None:
        self.width, self.sep, self.num, self.status, self.glyph = width, sep, num, status, glyph
        self.metric, self.commit, self.desc = metric, commit, desc


class ResultsTable(ScrollView, can_focus=True):
    """The results rows, newest first (live) or in file order (replay), with a row cursor."""

    DEFAULT_CSS = """
    ResultsTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus {
            background-tint: $foreground 5%;
            & > .results-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .results-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .results-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .results-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    COMPONENT_CLASSES = {"results-table--header", "results-table--cursor"}
    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "cursor_page_up", "Page up", show=False),
        Binding("pagedown", "cursor_page_down", "Page down", show=False),
        Binding("home", "cursor_first", "First", show=False),
        Binding("end", "cursor_last", "Last", show=False),
        Binding("enter", "select_cursor", "Open", show=False),
    ]

    class _RowMessage(Message):
        def __init__(self, table: "ResultsTable", index: int) -> None:
            super().__init__()
            self.table, self.index = table, index  # index: the experiment's position in the file

        @property
        def control(self) -> "ResultsTable":
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor moved to another experiment."""

    class RowSelected(_RowMessage):
        """Enter (or a click on the highlighted row) on an experiment."""

    def __init__(self, newest_first: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.newest_first = newest_first
        self._rows: list[ResultRow] = []
        self._source: Sequence[ResultRow] | None = None  # the sequence last given to set_rows
        self._metric = ""
        self.decimals: int | None = 6  # the metric's precision (replay: the file's own)
        self._best: int | None = None
        self._cursor = 0  # display row of the cursor
        self._highlighted: int | None = None  # index last announced with RowHighlighted
        # widths measured over every row, grown as rows are appended
        self._labels: set[tuple[str, str]] = set()
        self._status_w = len("status")
        self._metric_w = 8
        self._commit_w = len("commit")
        self._layout: _Layout | None = None
        self._cache: dict[int, Strip] = {}
        self._header: Strip | None = None

    # -- data ----------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def rows(self) -> Sequence[ResultRow]:
        return self._rows

    @property
    def cursor_row(self) -> int:
        """Display row of the cursor (0 is the top row under the header)."""
        return self._cursor

    @property
    def best_index(self) -> int | None:
        return self._best

    def _reset(self, metric: str) -> None:
        self._rows, self._source, self._metric, self._best = [], None, metric, None
        self._cursor, self._highlighted = 0, None
        self._labels = set()
        self._status_w, self._metric_w, self._commit_w = len("status"), max(8, min(len(metric or "metric"), 12)), 6
        self._invalidate()
        self.scroll_to(0, 0, animate=False, immediate=True)

    def _invalidate(self) -> None:
        self._layout, self._header = None, None
        self._cache.clear()

    def _measure(self, new: Sequence[ResultRow]) -> None:
        """Grow the column widths for `new` rows (C-level passes: ~10 ms for 100,000 rows)."""
        labels = set(map(_status_key, new)) - self._labels
        if labels:
            self._labels |= labels
            self._status_w = max(self._status_w, *(cell_len(status_word(s, raw)) for s, raw in labels))
        values = [m for m in map(_metric_of, new) if m is not None]
        if values:
            extent = max(max(values), -min(values))
            width = len(fmt_metric(extent, self.decimals)) + (min(values) < 0)
            self._metric_w = max(self._metric_w, width)
        commit = min(13, max(map(len, map(_commit_of, new)), default=0))
        self._commit_w = max(self._commit_w, commit)

    def set_rows(self, rows: Sequence[ResultRow], metric: str, best_index: int | None = None,
                 decimals: int | None = 6) -> None:
        """Show `rows`. When they extend the rows shown (the same experiments, more of them),
        only the new ones are measured, and the cursor stays on its experiment (newest first:
        on the newest one when it was there)."""
        old = self._rows
        n_old = len(old)
        same = metric == self._metric and decimals == self.decimals and len(rows) >= n_old and (
            n_old == 0 or (rows is self._source and rows[0] is old[0] and rows[n_old - 1] is old[-1])
            or all(map(is_, rows, old)))
        if not same:
            self.decimals = decimals
            self._reset(metric)
            old, n_old = self._rows, 0
        self._source = rows
        if len(rows) > n_old:
            selected = self.selected_index()
            follow = selected is None or (self.newest_first and self._cursor == 0)
            new = rows[n_old:]
            widths = (self._status_w, self._metric_w, self._commit_w, len(str(max(n_old - 1, 0))))
            self._measure(new)
            old.extend(new)
            n = len(old)
            if widths != (self._status_w, self._metric_w, self._commit_w, len(str(n - 1))):
                self._invalidate()
            self.virtual_size = Size(1, n + 1)
            if self.newest_first:
                added = n - n_old
                if follow:
                    self._cursor = 0
                else:
                    self._cursor = n - 1 - selected
                    if self.scroll_offset.y > 0:  # keep the rows in view where they were
                        self.scroll_to(y=self.scroll_offset.y + added, animate=False, immediate=True)
            elif selected is None:
                self._cursor = 0
            self._scroll_to_cursor()
            self._announce()
        self._mark_best(best_index)
        self.refresh()

    def _mark_best(self, index: int | None) -> None:
        """Star the best experiment's description (and unstar the previous best)."""
        if index == self._best:
            return
        for i in (self._best, index):
            if i is not None:
                self._cache.pop(i, None)
        self._best = index
        self.refresh()

    # -- cursor ----------------------------------------------------------------------------
    def _index_of(self, display_row: int) -> int:
        return len(self._rows) - 1 - display_row if self.newest_first else display_row

    def _row_of(self, index: int) -> int:
        return len(self._rows) - 1 - index if self.newest_first else index

    def selected_index(self) -> int | None:
        """Position (in file order) of the row under the cursor."""
        if not self._rows:
            return None
        return self._index_of(self._cursor)

    def select_index(self, index: int) -> None:
        if not self._rows:
            return
        index = max(0, min(index, len(self._rows) - 1))
        self.move_cursor(self._row_of(index))

    def step(self, delta: int) -> int | None:
        """Move to the experiment `delta` positions later in time (Left/Right)."""
        current = self.selected_index()
        if current is None:
            return None
        target = max(0, min(current + delta, len(self._rows) - 1))
        self.select_index(target)
        return target

    def move_cursor(self, row: int) -> None:
        """Put the cursor on display row `row` (clamped), scroll it into view, announce it."""
        if not self._rows:
            return
        row = max(0, min(row, len(self._rows) - 1))
        if row != self._cursor:
            self._cursor = row
            self.refresh()
        self._scroll_to_cursor()
        self._announce()

    def _announce(self) -> None:
        index = self.selected_index()
        if index is not None and index != self._highlighted:
            self._highlighted = index
            self.post_message(self.RowHighlighted(self, index))

    @property
    def _page(self) -> int:
        """Rows visible under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        if height < 2:  # not laid out yet: on_resize does it
            return
        top, page = round(self.scroll_offset.y), height - 1
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + page:
            self.scroll_to(y=self._cursor - page + 1, animate=False, immediate=True)

    def on_resize(self, event: events.Resize) -> None:
        self._scroll_to_cursor()

    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_cursor_page_up(self) -> None:
        self.move_cursor(self._cursor - self._page)

    def action_cursor_page_down(self) -> None:
        self.move_cursor(self._cursor + self._page)

    def action_cursor_first(self) -> None:
        self.move_cursor(0)

    def action_cursor_last(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def action_select_cursor(self) -> None:
        index = self.selected_index()
        if index is not None:
            self.post_message(self.RowSelected(self, index))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1 or not self._rows:
            return
        row = round(self.scroll_offset.y) + offset.y - 1
        if row >= len(self._rows):
            return
        event.stop()
        if row == self._cursor:
            self.action_select_cursor()
        else:
            self.move_cursor(row)

    # -- rendering -------------------------------------------------------------------------
    def _make_layout(self, width: int) -> _Layout:
        num = max(1, len(str(max(len(self._rows) - 1, 0))))
        metric, commit = self._metric_w, self._commit_w
        # widest first: two spaces, then one, then the status glyph only, then no commit
        for sep, glyph, with_commit in ((2, False, True), (1, False, True), (1, True, True), (1, True, False)):
            status = 1 if glyph else self._status_w
            used = num + status + metric + (commit + sep if with_commit else 0) + 3 * sep
            if width - used >= DESC_MIN or not with_commit:
                return _Layout(width, sep, num, status, glyph, metric, commit if with_commit else 0,
                               max(1, width - used))
        raise AssertionError("unreachable")

    def _current_layout(self) -> _Layout:
        width = self.scrollable_content_region.width
        if self._layout is None or self._layout.width != width:
            self._layout = self._make_layout(width)
            self._cache.clear()
            self._header = None
        return self._layout

    def _cells(self, lay: _Layout, num: str, status: str, metric: str, commit: str, desc: str) -> list[str]:
        gap = " " * lay.sep
        cells = [_rfit(num, lay.num), gap, _fit(status, lay.status), gap, _rfit(metric, lay.metric), gap]
        if lay.commit:
            cells += [_fit(commit, lay.commit), gap]
        cells.append(desc)
        return cells

    def _render_header(self, lay: _Layout) -> Strip:
        style = self.rich_style + self.get_component_rich_style("results-table--header", partial=True)
        cells = self._cells(lay, "#", "" if lay.glyph else "status", self._metric or "metric", "commit",
                            _fit("description", lay.desc))
        return Strip([Segment("".join(cells), style)], lay.width).crop_extend(0, lay.width, style)

    def _render_row(self, lay: _Layout, index: int, extra: Style | None = None) -> Strip:
        r = self._rows[index]
        what = kind(r)
        style = self.rich_style + _STYLES.get(what, Style())
        if extra is not None:
            style += extra
        status = GLYPH.get(what, what[:1]) if lay.glyph else status_word(what, r.raw_status)
        desc = _text(r.description)
        segments = []
        if index == self._best and lay.desc > len(BEST):
            head = self._cells(lay, str(index), status, fmt_metric(r.metric, self.decimals), _text(r.commit[:13]),
                               _fit(desc, lay.desc - len(BEST)))
            segments = [Segment("".join(head), style), Segment(BEST, style + _BOLD)]
        else:
            head = self._cells(lay, str(index), status, fmt_metric(r.metric, self.decimals), _text(r.commit[:13]),
                               _fit(desc, lay.desc))
            segments = [Segment("".join(head), style)]
        return Strip(segments).crop_extend(0, lay.width, style)

    def render_line(self, y: int) -> Strip:
        lay = self._current_layout()
        base = self.rich_style
        if y == 0:
            if self._header is None:
                self._header = self._render_header(lay)
            return self._header
        row = round(self.scroll_offset.y) + y - 1
        n = len(self._rows)
        if row >= n:
            return Strip.blank(lay.width, base)
        index = n - 1 - row if self.newest_first else row
        if row == self._cursor:
            cursor = self.get_component_rich_style("results-table--cursor", partial=True)
            return self._render_row(lay, index, cursor)
        strip = self._cache.get(index)
        if strip is None:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            strip = self._cache[index] = self._render_row(lay, index)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._invalidate()

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self.refresh()

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self.refresh()
