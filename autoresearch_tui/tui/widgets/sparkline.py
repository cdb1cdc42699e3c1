"""The running best as one line of block characters, one cell per experiment (binned when there
are more experiments than cells). Higher bars are better, whatever the metric's direction.

Textual's Sparkline stretches any data to the full width, so one value (or one unchanged value)
became a solid bar; this one draws only what there is and says when nothing has changed yet.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

BARS = "▁▂▃▄▅▆▇█"


def spark(values: list[float], width: int) -> Text:
    """`values`: higher is better. At most `width` cells."""
    if not values or width <= 0:
        return Text("no metric yet", style="dim italic", no_wrap=True, end="")
    if len(values) > width:  # each cell: the last value in its bin (the best so far there)
        values = [values[min(len(values) - 1, (c + 1) * len(values) // width - 1)] for c in range(width)]
    lo, hi = min(values), max(values)
    if hi == lo:
        note = " no improvement yet" if len(values) > 1 else " baseline only"
        text = Text(BARS[0] * len(values), style="green", no_wrap=True, end="")
        if len(values) + len(note) <= width:
            text.append(note, "dim italic")
        return text
    top = len(BARS) - 1
    cells = "".join(BARS[round((v - lo) / (hi - lo) * top)] for v in values)
    return Text(cells, style="green", no_wrap=True, end="")


class BestLine(Widget):
    DEFAULT_CSS = "BestLine { height: 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values: list[float] = []

    def show(self, values: list[float]) -> None:
        self.values = values
        self.refresh()

    def render(self) -> Text:
        return spark(self.values, self.size.width)
