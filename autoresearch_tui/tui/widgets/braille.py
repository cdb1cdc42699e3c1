"""The reference analysis plot drawn with braille dots: every experiment a point (keeps green ●,
discards grey ○ while there is a cell per experiment, else braille dots; crashes red × and killed
runs ⊘ on the bottom row), and the running best as a step line.

Pure functions over values, returning Rich Text lines. Glyphs differ per status, so the plot
still reads without colour (NO_COLOR).

Cost does not grow with the number of points per draw: `prepare` splits the points by status
once (O(n), when the data changes), then `draw_plot` works per pixel column. A column with a few
points draws each; a crowded one draws the discards as one stroke from their minimum to their
maximum, and the running best from its value entering the column to its value leaving it
(exactly what the step line would draw there). Keeps and crashes are always drawn, one by one.
The x axis, which carries the selection mark, is drawn separately (`x_axis`), so moving the
selection redraws one line.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Sequence

from rich.text import Text

_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] in a 2x4 cell
KEEP, DISCARD, CRASH, KILLED = "●", "○", "×", "⊘"
GLYPHS = {"keep": KEEP, "discard": DISCARD, "crash": CRASH, "killed": KILLED}
STYLE = {"keep": "bold green", "discard": "grey62", "crash": "bold red", "killed": "bold dark_orange",
         "best": "green", "axis": "dim", "selected": "bold yellow", "band": "dim green"}
EXACT = 24  # a pixel column with at most this many points draws each of them (exactly as one by one)
DOT, KEEP_MARK, CRASH_MARK, KILLED_MARK = 0, 1, 2, 3
_INF = float("inf")


def _label(value: float) -> str:
    text = f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return text


@dataclass(eq=False)
class ChartData:
    """The points split by how they are drawn; built once per data set."""

    n: int
    values: Sequence[float | None]
    lo: float | None  # the y range (None: no value at all)
    hi: float | None
    kind: list[int]  # per point: DOT (a discard, or any other status), KEEP_MARK, CRASH_MARK or KILLED_MARK
    dlo: list[float]  # the discards' values, +inf for every other point (min over a slice)
    dhi: list[float]  # the same with -inf (max over a slice)
    keeps: list[int]  # the keeps' indices, in order
    keep_values: list[float]  # and their values
    crashes: list[int]  # the indices of runs without a value (crashed or killed), in order
    best: list[float | None]  # the running best, carried over gaps
    first_best: int  # the first index with a best (n: none)
    band: float | None = None  # the noise band: +-band around the running best (z x sigma)


def prepare(values: Sequence[float | None], statuses: Sequence[str], best: Sequence[float | None],
            band: float | None = None) -> ChartData:
    n = len(values)
    kind = [DOT] * n
    dlo = [_INF] * n
    dhi = [-_INF] * n
    keeps: list[int] = []
    keep_values: list[float] = []
    crashes: list[int] = []
    for i, (v, status) in enumerate(zip(values, statuses)):
        if status == "crash" or v is None:  # a discard without a value was killed
            kind[i] = CRASH_MARK if status == "crash" else KILLED_MARK
            crashes.append(i)
        elif status == "keep":
            kind[i] = KEEP_MARK
            keeps.append(i)
            keep_values.append(v)
        else:
            dlo[i] = dhi[i] = v
    filled: list[float | None] = []
    last = None
    for b in best[:n]:
        if b is not None:
            last = b
        filled.append(last)
    filled.extend([last] * (n - len(filled)))
    first = next((i for i, b in enumerate(filled) if b is not None), n)
    known = [v for v in values if v is not None]
    known_best = [b for b in best if b is not None]
    lo = min(min(known, default=_INF), min(known_best, default=_INF))
    hi = max(max(known, default=-_INF), max(known_best, default=-_INF))
    if lo == _INF:
        lo = hi = None
    return ChartData(n, values, lo, hi, kind, dlo, dhi, keeps, keep_values, crashes, filled, first, band or None)


@dataclass(eq=False)
class _Frame:
    """Where things go for one size: label width, plot cells and pixels, the y labels."""

    lw: int
    pw: int
    ph: int
    labels: list[str]


def _note(data: ChartData, width: int, height: int) -> Text | None:
    if data.n == 0:
        return Text("no experiments yet", style="dim italic")
    if width < 12 or height < 4:
        return Text("(pane too small for the chart)", style="dim italic")
    if data.lo is None:
        return Text(f"{data.n} experiment(s), none with a metric yet", style="dim italic")
    return None


def _frame(data: ChartData, width: int, height: int) -> tuple[_Frame, float, float]:
    lo, hi = data.lo, data.hi
    assert lo is not None and hi is not None
    if hi == lo:
        pad = abs(hi) * 0.01 or 0.5
        lo, hi = lo - pad, hi + pad
    labels = [_label(hi), _label((hi + lo) / 2), _label(lo)]
    lw = max(len(s) for s in labels)
    return _Frame(lw, width - lw - 1, height - 1, labels), lo, hi


def draw_plot(data: ChartData, width: int, height: int) -> list[Text]:
    """Every line but the x axis (or one line saying why there is no plot)."""
    note = _note(data, width, height)
    if note is not None:
        return [note]
    frame, lo, hi = _frame(data, width, height)
    n, pw, ph = data.n, frame.pw, frame.ph
    px_w, px_h = pw * 2, ph * 4
    dots = [[0] * pw for _ in range(ph)]
    line_cells = [[False] * pw for _ in range(ph)]
    marks: dict[tuple[int, int], str] = {}
    span, bottom_px = hi - lo, px_h - 1
    k = (px_w - 1) / (n - 1) if n > 1 else 0.0

    def xpix(i: int) -> int:
        return 0 if n == 1 else round(i * k)

    def ypix(v: float) -> int:
        return min(bottom_px, max(0, round((hi - v) / span * bottom_px)))

    def dot(x: int, y: int) -> None:
        dots[y // 4][x // 2] |= _BITS[y % 4][x % 2]

    def stroke(x: int, top: int, bottom: int, line: bool) -> None:
        cx, bit = x // 2, x % 2
        for y in range(top, bottom + 1):
            dots[y // 4][cx] |= _BITS[y % 4][bit]
            if line:
                line_cells[y // 4][cx] = True

    # starts[x]: the first point in pixel column x (xpix is monotonic)
    indices = range(n)
    starts = [bisect_left(indices, x, key=xpix) for x in range(px_w)] + [n]
    dlo, dhi, best, first, kind = data.dlo, data.dhi, data.best, data.first_best, data.kind
    keeps, keep_values, crashes, last_row = data.keeps, data.keep_values, data.crashes, ph - 1

    def row_down(v: float) -> int:  # minus the cell row: grows with the value
        return -(ypix(v) // 4)

    sparse = n <= pw
    band = data.band
    band_cells = [[0] * pw for _ in range(ph)] if band else None
    for x in range(px_w):
        a, b = starts[x], starts[x + 1]
        cx = x // 2
        if band_cells is not None and x % 2 == 0 and best[max(a - 1, first) if a < n else n - 1] is not None:
            # The noise band's edges, dotted: a gain inside it may be luck.
            value = best[max(a - 1, first) if a < n else n - 1]
            for edge in (value + band, value - band):
                if lo <= edge <= hi:
                    y = ypix(edge)
                    band_cells[y // 4][cx] |= _BITS[y % 4][0]
        # the running best: from the value entering this column (the step line's horizontal
        # part) through every value in it (its vertical jumps); an empty column: the horizontal
        s, end = max(a - 1, first), max(a, b)
        if s < end:
            seg = best[s:end]
            stroke(x, ypix(max(seg)), ypix(min(seg)), True)  # type: ignore[type-var]
        if a >= b:
            continue
        if b - a <= EXACT:  # each point, in order: a later mark in the same cell wins
            for i in range(a, b):
                what = kind[i]
                if what == DOT:
                    if sparse:  # room for a glyph per experiment: a discard is a ○, not one dot
                        marks.setdefault((ypix(dlo[i]) // 4, cx), "discard")
                    else:
                        dot(x, ypix(dlo[i]))
                elif what == KEEP_MARK:
                    marks[(ypix(data.values[i]) // 4, cx)] = "keep"  # type: ignore[arg-type]
                else:
                    marks[(last_row, cx)] = "crash" if what == CRASH_MARK else "killed"
            continue
        low = min(dlo[a:b])
        if low != _INF:  # the discards: one stroke from their lowest to their highest
            stroke(x, ypix(max(dhi[a:b])), ypix(low), False)
        ka, kb = bisect_left(keeps, a), bisect_left(keeps, b)
        if ka < kb:  # every cell row a keep falls in: one bisection per row, not one step per keep
            ordered = sorted(keep_values[ka:kb])
            pos, count = 0, len(ordered)
            while pos < count:
                row = ypix(ordered[pos]) // 4
                marks[(row, cx)] = "keep"
                pos = bisect_right(ordered, -row, pos, count, key=row_down)
        ca, cb = bisect_left(crashes, a), bisect_left(crashes, b)
        if ca < cb and not (ka < kb and keeps[kb - 1] > crashes[cb - 1] and marks.get((last_row, cx)) == "keep"):
            marks[(last_row, cx)] = "crash" if kind[crashes[cb - 1]] == CRASH_MARK else "killed"  # unless a later keep
    out: list[Text] = []
    mark_style = {name: STYLE[name] for name in GLYPHS}
    for row in range(ph):
        text = Text(no_wrap=True, end="")
        labels = frame.labels
        label = labels[0] if row == 0 else labels[2] if row == ph - 1 else labels[1] if row == ph // 2 else ""
        text.append(label.rjust(frame.lw), STYLE["axis"])
        text.append("┤" if label else "│", STYLE["axis"])
        run, run_style = [], None  # consecutive cells of one style: one span
        for col in range(pw):
            mark = marks.get((row, col))
            if mark is not None:
                cell, style = GLYPHS[mark], mark_style[mark]
            elif dots[row][col]:
                cell = chr(0x2800 + dots[row][col])
                style = STYLE["best"] if line_cells[row][col] else STYLE["discard"]
            elif band_cells is not None and band_cells[row][col]:
                cell, style = chr(0x2800 + band_cells[row][col]), STYLE["band"]
            else:
                cell, style = " ", None
            if style != run_style and run:
                text.append("".join(run), run_style)
                run = []
            run.append(cell)
            run_style = style
        if run:
            text.append("".join(run), run_style)
        out.append(text)
    return out


def selected_column(data: ChartData, width: int, height: int, selected: int | None) -> int | None:
    if selected is None or _note(data, width, height) is not None:
        return None
    frame, _lo, _hi = _frame(data, width, height)
    px_w = frame.pw * 2
    x = 0 if data.n == 1 else round(selected * (px_w - 1) / (data.n - 1))
    return x // 2


def x_axis(data: ChartData, width: int, height: int, selected: int | None) -> Text | None:
    """The last line: first and last experiment numbers, and ▲ under the selected one."""
    if _note(data, width, height) is not None:
        return None
    frame, _lo, _hi = _frame(data, width, height)
    return _x_axis(data.n, frame.lw, frame.pw, selected_column(data, width, height, selected))


def draw_chart(values: Sequence[float | None], statuses: Sequence[str], best: Sequence[float | None],
               width: int, height: int, selected: int | None = None) -> list[Text]:
    """`height` lines of `width` cells; fewer than 4x12 cells gives a one-line note."""
    data = prepare(values, statuses, best)
    lines = draw_plot(data, width, height)
    axis = x_axis(data, width, height, selected)
    return lines if axis is None else [*lines, axis]


def _x_axis(n: int, lw: int, pw: int, sel_col: int | None) -> Text:
    """`└──0────┬──10────┬──20`: experiment numbers under ticks, about every 10 cells."""
    cells = ["─"] * pw
    px_w = pw * 2

    def col(i: int) -> int:
        return (0 if n == 1 else round(i * (px_w - 1) / (n - 1))) // 2

    last = str(n - 1)
    step = _nice_step(n, pw)
    taken = -2  # the last cell a label used
    limit = pw - len(last) - 1  # the last number goes at the right end, always
    for i in range(0, n, step):
        label, c = str(i), col(i)
        if c <= taken + 1 or c + len(label) > limit:
            continue
        if i:
            cells[c] = "┬"
            c += 1
        cells[c:c + len(label)] = label
        taken = c + len(label) - 1
    if n > 1 and pw > len(last):
        cells[pw - len(last):] = last
    text = Text(" " * lw + "└", style=STYLE["axis"], no_wrap=True, end="")
    for c, ch in enumerate(cells):
        if c == sel_col:
            text.append("▲", STYLE["selected"])
        else:
            text.append(ch, STYLE["axis"])
    return text


def _nice_step(n: int, pw: int) -> int:
    """1, 2, 5, 10, 20, 50, ... experiments between ticks, so ticks are at least 8 cells apart."""
    want = max(1, n * 8 / max(pw, 1))
    step = 1
    while step < want:
        for mult in (2, 5, 10):
            if step * mult >= want:
                return step * mult
        step *= 10
    return step


LEGEND = Text.assemble((KEEP, STYLE["keep"]), " keep  ", (DISCARD, STYLE["discard"]), " discard  ",
                       (CRASH, STYLE["crash"]), " crash  ", (KILLED, STYLE["killed"]), " killed  ",
                       ("⠉⠉", STYLE["best"]), " best", no_wrap=True, end="")
