"""Every experiment as a table row, coloured by status and labelled with a glyph and a word
(✓ keep, · discard, ✗ crash) so it reads without colour too. Row keys are row positions."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from autoresearch_tui.engine.results import ResultRow
from autoresearch_tui.tui.widgets.header import fmt_metric

STATUS = {"keep": ("✓ keep", "green"), "discard": ("· discard", "grey62"), "crash": ("✗ crash", "red")}


def status_cell(row: ResultRow) -> Text:
    word, style = STATUS.get(row.status, (row.status, ""))
    if row.raw_status and row.raw_status.lower() != row.status:
        word = f"{word} ({row.raw_status})"
    return Text(word, style=style)


def _desc_cell(row: ResultRow, best: bool) -> Text:
    style = STATUS.get(row.status, ("", ""))[1]
    text = Text(row.description, style=style)
    if best:
        text.append("  ★ best", "bold")
    return text


class ResultsTable(DataTable):
    def __init__(self, newest_first: bool = True, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.newest_first = newest_first
        self._shown: list[ResultRow] = []
        self._metric = ""
        self._best: int | None = None

    def _columns(self, metric: str) -> None:
        self.clear(columns=True)
        self.add_column("#", key="n")
        self.add_column("status", key="status")
        self.add_column(metric or "metric", key="metric")
        self.add_column("commit", key="commit")
        self.add_column("description", key="description")
        self._metric, self._shown, self._best = metric, [], None

    def _mark_best(self, index: int | None) -> None:
        """Star the best experiment's description (and unstar the previous best)."""
        if index == self._best:
            return
        for i, star in ((self._best, False), (index, True)):
            if i is not None and i < len(self._shown):
                self.update_cell(str(i), "description", _desc_cell(self._shown[i], star), update_width=True)
        self._best = index

    def set_rows(self, rows: Sequence[ResultRow], metric: str, best_index: int | None = None) -> None:
        """Show `rows`; only rows not shown yet are added, so the cursor stays on its row."""
        if metric != self._metric or not self.columns or len(rows) < len(self._shown) \
                or any(a is not b for a, b in zip(self._shown, rows)):
            self._columns(metric)
        if len(rows) == len(self._shown):
            self._mark_best(best_index)
            return
        selected = self.selected_index()
        follow = selected is None or (self.newest_first and self.cursor_row == 0)
        for i in range(len(self._shown), len(rows)):
            r = rows[i]
            style = STATUS.get(r.status, ("", ""))[1]
            self.add_row(Text(str(i), style=style, justify="right"), status_cell(r),
                         Text(fmt_metric(r.metric), style=style), Text(r.commit[:13], style=style),
                         _desc_cell(r, False), key=str(i))
        self._shown = list(rows)
        self._mark_best(best_index)
        if self.newest_first:
            self.sort("n", key=lambda cell: int(cell.plain), reverse=True)
        if follow:
            self.move_cursor(row=0, scroll=True)
        else:
            self.select_index(selected)

    def selected_index(self) -> int | None:
        """Position (in file order) of the row under the cursor."""
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        except Exception:  # noqa: BLE001 - an empty or changing table
            return None
        return int(key.value) if key.value is not None else None

    def select_index(self, index: int) -> None:
        if not self.row_count:
            return
        index = max(0, min(index, self.row_count - 1))
        try:
            row = self.get_row_index(str(index))
        except Exception:  # noqa: BLE001
            return
        self.move_cursor(row=row, scroll=True)

    def step(self, delta: int) -> int | None:
        """Move to the experiment `delta` positions later in time (Left/Right)."""
        current = self.selected_index()
        if current is None:
            return None
        target = max(0, min(current + delta, self.row_count - 1))
        self.select_index(target)
        return target
