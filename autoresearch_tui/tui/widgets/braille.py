"""The reference analysis plot drawn with braille dots: every experiment a point (keeps green ●,
discards grey dots, crashes red × on the bottom row), and the running best as a step line.

Pure function over values, returning Rich Text lines. Glyphs differ per status, so the plot
still reads without colour (NO_COLOR).
"""

from __future__ import annotations

from typing import Sequence

from rich.text import Text

_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] in a 2x4 cell
KEEP, CRASH = "●", "×"
STYLE = {"keep": "bold green", "discard": "grey50", "crash": "bold red", "best": "green", "axis": "dim",
         "selected": "bold yellow"}


def _label(value: float) -> str:
    text = f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return text


def draw_chart(values: Sequence[float | None], statuses: Sequence[str], best: Sequence[float | None],
               width: int, height: int, selected: int | None = None) -> list[Text]:
    """`height` lines of `width` cells; fewer than 4x12 cells gives a one-line note."""
    n = len(values)
    if n == 0:
        return [Text("no experiments yet", style="dim italic")]
    known = [v for v in values if v is not None] + [b for b in best if b is not None]
    if width < 12 or height < 4:
        return [Text("(pane too small for the chart)", style="dim italic")]
    if not known:
        return [Text(f"{n} experiment(s), none with a metric yet", style="dim italic")]
    lo, hi = min(known), max(known)
    if hi == lo:
        pad = abs(hi) * 0.01 or 0.5
        lo, hi = lo - pad, hi + pad
    labels = [_label(hi), _label((hi + lo) / 2), _label(lo)]
    lw = max(len(s) for s in labels)
    pw, ph = width - lw - 1, height - 1  # plot cells; the last row is the x axis
    px_w, px_h = pw * 2, ph * 4
    dots = [[0] * pw for _ in range(ph)]
    line_cells = [[False] * pw for _ in range(ph)]
    marks: dict[tuple[int, int], str] = {}

    def xpix(i: int) -> int:
        return 0 if n == 1 else round(i * (px_w - 1) / (n - 1))

    def ypix(v: float) -> int:
        return min(px_h - 1, max(0, round((hi - v) / (hi - lo) * (px_h - 1))))

    def dot(x: int, y: int, line: bool = False) -> None:
        cy, cx = y // 4, x // 2
        dots[cy][cx] |= _BITS[y % 4][x % 2]
        if line:
            line_cells[cy][cx] = True

    # running best: a step line (horizontal until the next improvement, then a vertical jump)
    prev: tuple[int, int] | None = None
    for i, b in enumerate(best):
        if b is None:
            continue
        x, y = xpix(i), ypix(b)
        if prev is not None:
            for xx in range(prev[0], x + 1):
                dot(xx, prev[1], True)
            for yy in range(min(prev[1], y), max(prev[1], y) + 1):
                dot(x, yy, True)
        prev = (x, y)
    if prev is not None:
        for xx in range(prev[0], px_w):
            dot(xx, prev[1], True)
    for i, (v, status) in enumerate(zip(values, statuses)):
        x = xpix(i)
        if status == "crash" or v is None:
            marks[(ph - 1, x // 2)] = "crash"
        elif status == "keep":
            marks[(ypix(v) // 4, x // 2)] = "keep"
        else:
            dot(x, ypix(v))
    out: list[Text] = []
    for row in range(ph):
        text = Text(no_wrap=True, end="")
        label = labels[0] if row == 0 else labels[2] if row == ph - 1 else labels[1] if row == ph // 2 else ""
        text.append(label.rjust(lw), STYLE["axis"])
        text.append("┤" if label else "│", STYLE["axis"])
        for col in range(pw):
            mark = marks.get((row, col))
            if mark == "keep":
                text.append(KEEP, STYLE["keep"])
            elif mark == "crash":
                text.append(CRASH, STYLE["crash"])
            elif dots[row][col]:
                text.append(chr(0x2800 + dots[row][col]), STYLE["best"] if line_cells[row][col] else STYLE["discard"])
            else:
                text.append(" ")
        out.append(text)
    out.append(_x_axis(n, lw, pw, None if selected is None else xpix(selected) // 2))
    return out


def _x_axis(n: int, lw: int, pw: int, sel_col: int | None) -> Text:
    cells = [" "] * pw
    left, right = "0", str(n - 1)
    for i, ch in enumerate(left):
        if i < pw:
            cells[i] = ch
    for i, ch in enumerate(reversed(right)):
        if pw - 1 - i > len(left):
            cells[pw - 1 - i] = ch
    text = Text(" " * lw + "└", style=STYLE["axis"], no_wrap=True, end="")
    for col, ch in enumerate(cells):
        if col == sel_col:
            text.append("▲", STYLE["selected"])
        else:
            text.append(ch, STYLE["axis"])
    return text


LEGEND = Text.assemble((KEEP, STYLE["keep"]), " keep  ", ("⠂", STYLE["discard"]), " discard  ",
                       (CRASH, STYLE["crash"]), " crash  ", ("⠉⠉", STYLE["best"]), " best",
                       no_wrap=True, end="")
