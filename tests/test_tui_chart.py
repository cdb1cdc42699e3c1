"""The braille chart: per-pixel-column drawing, exact while columns are not crowded, and a
selection move that does not replot."""

from __future__ import annotations

import random
import time

from rich.text import Text

from autoresearch_tui.engine.analysis import _running
from autoresearch_tui.tui.widgets.braille import _BITS, CRASH, EXACT, GLYPHS, KEEP, STYLE, _label, _x_axis, draw_chart


def reference_chart(values, statuses, best, width, height, selected=None) -> list[Text]:
    """The chart drawn one point at a time (the implementation before per-column drawing)."""
    n = len(values)
    known = [v for v in values if v is not None] + [b for b in best if b is not None]
    lo, hi = min(known), max(known)
    if hi == lo:
        pad = abs(hi) * 0.01 or 0.5
        lo, hi = lo - pad, hi + pad
    labels = [_label(hi), _label((hi + lo) / 2), _label(lo)]
    lw = max(len(s) for s in labels)
    pw, ph = width - lw - 1, height - 1
    px_w, px_h = pw * 2, ph * 4
    dots = [[0] * pw for _ in range(ph)]
    line_cells = [[False] * pw for _ in range(ph)]
    marks = {}

    def xpix(i):
        return 0 if n == 1 else round(i * (px_w - 1) / (n - 1))

    def ypix(v):
        return min(px_h - 1, max(0, round((hi - v) / (hi - lo) * (px_h - 1))))

    def dot(x, y, line=False):
        dots[y // 4][x // 2] |= _BITS[y % 4][x % 2]
        if line:
            line_cells[y // 4][x // 2] = True

    prev = None
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
            marks[(ph - 1, x // 2)] = "crash" if status == "crash" else "killed"
        elif status == "keep":
            marks[(ypix(v) // 4, x // 2)] = "keep"
        elif n <= pw:  # a cell per experiment: a discard is a glyph
            marks.setdefault((ypix(v) // 4, x // 2), "discard")
        else:
            dot(x, ypix(v))
    out = []
    for row in range(ph):
        text = Text(no_wrap=True, end="")
        label = labels[0] if row == 0 else labels[2] if row == ph - 1 else labels[1] if row == ph // 2 else ""
        text.append(label.rjust(lw), STYLE["axis"])
        text.append("┤" if label else "│", STYLE["axis"])
        for col in range(pw):
            mark = marks.get((row, col))
            if mark is not None:
                text.append(GLYPHS[mark], STYLE[mark])
            elif dots[row][col]:
                text.append(chr(0x2800 + dots[row][col]), STYLE["best"] if line_cells[row][col] else STYLE["discard"])
            else:
                text.append(" ")
        out.append(text)
    out.append(_x_axis(n, lw, pw, None if selected is None else xpix(selected) // 2))
    return out


def cells(text: Text) -> list[tuple[str, str]]:
    styles = [""] * len(text.plain)
    for span in text.spans:
        for i in range(span.start, span.end):
            styles[i] = str(span.style)
    return list(zip(text.plain, styles))


def session(rng: random.Random, n: int, direction: str = "min"):
    values, statuses = [], []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.08:
            values.append(None if rng.random() < 0.5 else 0.0)
            statuses.append("crash")
        elif roll < 0.25:
            values.append(rng.uniform(0.9, 1.1))
            statuses.append("keep")
        elif roll < 0.3:
            values.append(None)
            statuses.append("discard")
        else:
            values.append(rng.uniform(0.9, 1.2))
            statuses.append("discard")
    best = _running([v if s == "keep" else None for v, s in zip(values, statuses)], direction)
    return values, statuses, best


def test_same_as_one_point_at_a_time_when_columns_are_not_crowded():
    rng = random.Random(7)
    for _ in range(600):
        n = rng.choice([1, 2, 3, 7, 20, 60, 150, 400])
        values, statuses, best = session(rng, n, rng.choice(["min", "max"]))
        if rng.random() < 0.1:
            best = [None] * n
        if all(v is None for v in values + best):
            continue  # a one-line note, not a chart
        width, height = rng.choice([(12, 4), (30, 8), (56, 15), (80, 20)])
        pw = width - 7  # at least: labels are at most 6 cells wide here
        if n > 1 and n / (2 * pw) > EXACT / 2:
            continue  # crowded columns are drawn as strokes (below)
        selected = rng.randrange(n)
        got = draw_chart(values, statuses, best, width, height, selected)
        want = reference_chart(values, statuses, best, width, height, selected)
        assert [cells(t) for t in got] == [cells(t) for t in want], (n, width, height)


def test_crowded_columns_keep_keeps_crashes_and_the_range():
    rng = random.Random(3)
    n = 100_000
    values, statuses, best, level = [], [], [], 1.0
    for i in range(n):
        if i % 997 == 0:
            values.append(None)
            statuses.append("crash")
        else:
            v = 1.0 - i / n * 0.05 + rng.gauss(0.02, 0.01)
            statuses.append("keep" if v < level else "discard")
            level = min(level, v)
            values.append(v)
    best = _running([v if s == "keep" else None for v, s in zip(values, statuses)], "min")
    t0 = time.perf_counter()
    got = draw_chart(values, statuses, best, 60, 14)
    elapsed = time.perf_counter() - t0
    want = reference_chart(values, statuses, best, 60, 14)
    assert elapsed < 1.0  # ~30 ms; one point at a time took ~200 ms
    plot_got, plot_want = [t.plain for t in got], [t.plain for t in want]
    # every keep and crash of the exact drawing is there, and every dot it has (strokes from a
    # column's lowest to its highest discard may add more)
    for row_got, row_want in zip(plot_got[:-1], plot_want[:-1]):
        for a, b in zip(row_got, row_want):
            if b in (KEEP, CRASH):
                assert a == b
            if 0x2800 < ord(b) <= 0x28FF:
                assert 0x2800 < ord(a) <= 0x28FF and (ord(a) - 0x2800) & (ord(b) - 0x2800) == ord(b) - 0x2800
    assert plot_got[-1] == plot_want[-1]


async def test_moving_the_selection_does_not_replot():
    from textual.app import App, ComposeResult

    from autoresearch_tui.tui.widgets.chart import ChartView

    class One(App):
        def compose(self) -> ComposeResult:
            yield ChartView()

    rng = random.Random(1)
    values, statuses, best = session(rng, 20_000)
    app = One()
    async with app.run_test(size=(60, 16)) as pilot:
        view = app.query_one(ChartView)
        view.plot(values, statuses, best, 0)
        await pilot.pause()
        plotted = view._plot
        assert plotted is not None
        first = view.render().plain
        view.select(10_000)
        await pilot.pause()
        assert view._plot is plotted  # only the x axis was drawn again
        moved = view.render().plain
        assert moved.splitlines()[:-1] == first.splitlines()[:-1]
        assert moved.splitlines()[-1] != first.splitlines()[-1] and "▲" in moved.splitlines()[-1]
        await pilot.resize_terminal(70, 18)
        await pilot.pause()
        assert view.render().plain.count("\n") == 17  # a new size replots


def test_noise_band_edges_are_drawn_around_the_best() -> None:
    from autoresearch_tui.tui.widgets.braille import STYLE, draw_plot, prepare

    values = [1.0, 0.99, 1.01, 0.98, 1.02, 0.97]
    statuses = ["keep"] + ["discard"] * 5
    best = [1.0] * 6
    plain = draw_plot(prepare(values, statuses, best), 40, 10)
    banded = draw_plot(prepare(values, statuses, best, band=0.02), 40, 10)
    count = lambda lines: sum(c != " " for t in lines for c in t.plain)  # noqa: E731
    assert count(banded) > count(plain)  # the band's dotted edges
    assert any(span.style == STYLE["band"] for t in banded for span in t.spans)
    assert not any(span.style == STYLE["band"] for t in plain for span in t.spans)


def test_sparkline_draws_only_what_there_is():
    from autoresearch_tui.tui.widgets.sparkline import spark

    assert spark([], 40).plain == "no metric yet"
    one = spark([1.0], 40).plain
    assert one.startswith("▁ ") and "█" not in one  # one value: one cell, not a full-width bar
    flat = spark([1.0, 1.0, 1.0], 40).plain
    assert flat.startswith("▁▁▁ ") and "no improvement" in flat
    assert spark([0.0, 1.0], 40).plain == "▁█"
    assert len(spark([float(i) for i in range(500)], 40).plain) == 40  # binned to the width


def test_axis_ticks_and_statuses_without_colour(tmp_path):
    from autoresearch_tui.engine.results import read_results
    from autoresearch_tui.tui.widgets.braille import prepare

    axis = _x_axis(25, 5, 72, None).plain
    assert "┬5" in axis and "┬10" in axis and axis.rstrip().endswith("24") and "└0" in axis
    # a killed run (discard written as 0.000000) and a crash: no metric, distinct glyphs, and the
    # y axis is not stretched down to 0
    path = tmp_path / "results.tsv"
    path.write_text("commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
                    "a\t1.000000\t1.0\tkeep\tbase\nb\t0.000000\t0.0\tdiscard\tx (killed)\n"
                    "c\t0.000000\t0.0\tcrash\ty\nd\t1.010000\t1.0\tdiscard\tz\n", encoding="utf-8")
    rows = read_results(path).rows
    values, statuses = [r.metric for r in rows], [r.status for r in rows]
    best = _running([v if s == "keep" else None for v, s in zip(values, statuses)], "min")
    data = prepare(values, statuses, best)
    assert data.lo == 1.0 and data.hi == 1.01
    drawn = "".join(t.plain for t in draw_chart(values, statuses, best, 40, 8))
    assert all(glyph in drawn for glyph in (GLYPHS["keep"], GLYPHS["discard"], GLYPHS["crash"], GLYPHS["killed"]))
