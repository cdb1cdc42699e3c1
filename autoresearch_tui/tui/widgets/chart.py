"""The metric pane: a sparkline of the running best over a braille plot of every experiment."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from autoresearch_tui.engine.results import ResultRow
from autoresearch_tui.engine.summary import running_best
from autoresearch_tui.tui.widgets.braille import LEGEND, ChartData, draw_plot, prepare, x_axis
from autoresearch_tui.tui.widgets.sparkline import BestLine


class ChartView(Widget, can_focus=True):
    """Redraws itself at its own size, so resizing the terminal redraws the plot.

    The points are prepared once per data set and the plot once per size; moving the selection
    only redraws the x axis (replay steps through 100k experiments without replotting)."""

    DEFAULT_CSS = "ChartView { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values: list[float | None] = []
        self.statuses: list[str] = []
        self.best: list[float | None] = []
        self.selected: int | None = None
        self._data: ChartData = prepare([], [], [])
        self._plot: tuple[tuple[int, int], list[Text]] | None = None  # (size, lines without the x axis)

    def plot(self, values: list[float | None], statuses: list[str], best: list[float | None],
             selected: int | None = None, band: float | None = None) -> None:
        self.values, self.statuses, self.best, self.selected = values, statuses, best, selected
        self._data = prepare(values, statuses, best, band)
        self._plot = None
        self.refresh()

    def select(self, index: int | None) -> None:
        if index != self.selected:
            self.selected = index
            self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        if self._plot is None or self._plot[0] != (width, height):
            self._plot = ((width, height), draw_plot(self._data, width, height))
        lines = self._plot[1]
        axis = x_axis(self._data, width, height, self.selected)
        return Text("\n", no_wrap=True, end="").join(lines if axis is None else [*lines, axis])


class ChartPane(Vertical):
    DEFAULT_CSS = """
    ChartPane { height: 1fr; }
    ChartPane > BestLine { height: 1; }
    ChartPane > #chart-legend { height: 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        yield BestLine(id="sparkline")
        yield ChartView(id="chart-view")
        yield Static(LEGEND, id="chart-legend")

    def show(self, rows: Sequence[ResultRow], direction: str, selected: int | None = None,
             band: float | None = None) -> None:
        """`band`: the measured noise (z x sigma), drawn as dotted edges around the best."""
        last = rows[-1] if rows else None
        shown = self._shown
        if shown is not None and shown[0] is rows and shown[1] == len(rows) and shown[2] is last \
                and shown[3] == direction and shown[4] == band:  # a live refresh without a new result
            self.select(selected)
            return
        self._shown = (rows, len(rows), last, direction, band)
        best = running_best(rows, direction)
        known = [b for b in best if b is not None]
        # The sparkline grows as the metric improves: for a loss, plot its negation.
        self.query_one(BestLine).show([(-b if direction != "max" else b) for b in known])
        self.query_one(ChartView).plot([r.metric for r in rows], [r.status for r in rows], best, selected, band)

    def select(self, index: int | None) -> None:
        self.query_one(ChartView).select(index)
