"""`python -m benchmarks.plotext_chart`: the reference chart redrawn with plotext 6 vs the hand-drawn
braille renderer (`tui/widgets/braille.py`), on the same data.

plotext is fed what per-pixel-column binning leaves to draw (per column: the discards' lowest and
highest value, every keep, the running best), so it does not pay for 100,000 points either; its
time includes turning its output into Rich Text (what a Textual widget needs). plotext is not a
dependency: run this with a Python that has it (`pip install plotext==6.1.0` in a scratch venv,
with this repository on PYTHONPATH). Median of 7 redraws per case.
"""

from __future__ import annotations

import random
import statistics
import time

from autoresearch_tui.engine.analysis import _running
from autoresearch_tui.tui.widgets.braille import draw_plot, prepare


def session(n: int):
    rng = random.Random(0)
    values, statuses, level = [], [], 1.0
    for i in range(n):
        if i % 997 == 0:
            values.append(None)
            statuses.append("crash")
            continue
        v = 1.0 - i / n * 0.05 + rng.gauss(0.02, 0.01)
        statuses.append("keep" if v < level else "discard")
        level = min(level, v)
        values.append(v)
    return values, statuses, _running([v if s == "keep" else None for v, s in zip(values, statuses)], "min")


def binned(values, statuses, best, px_w: int):
    n, cols = len(values), {}
    for i, (v, s) in enumerate(zip(values, statuses)):
        column = cols.setdefault(round(i * (px_w - 1) / max(n - 1, 1)), [None, None, [], None])
        if v is None:
            continue
        if s == "keep":
            column[2].append(v)
        else:
            column[0] = v if column[0] is None else min(column[0], v)
            column[1] = v if column[1] is None else max(column[1], v)
        column[3] = best[i]
    dx, dy, kx, ky, bx, by = [], [], [], [], [], []
    for x, (lo, hi, keeps, b) in sorted(cols.items()):
        if lo is not None:
            dx += [x, x]
            dy += [lo, hi]
        kx += [x] * len(keeps)
        ky += keeps
        if b is not None:
            bx.append(x)
            by.append(b)
    return dx, dy, kx, ky, bx, by


def plotext_redraw(points, width: int, height: int):
    import plotext as plt
    from rich.text import Text

    dx, dy, kx, ky, bx, by = points
    fig = plt.figure
    fig.clear()
    fig.plot_size(width, height)
    fig.draw(fig.signal(dx, dy, marker="braille"))
    fig.draw(fig.signal(bx, by, marker="braille"))
    fig.draw(fig.signal(kx, ky, marker="●"))
    return Text.from_ansi(str(fig.build()))


def median_s(fn, k: int = 7) -> float:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    for n in (100, 100_000):
        values, statuses, best = session(n)
        data = prepare(values, statuses, best)
        for width, height in ((78, 16), (160, 40)):
            ours = median_s(lambda: draw_plot(data, width, height))
            points = binned(values, statuses, best, 2 * width)
            theirs = median_s(lambda: plotext_redraw(points, width, height))
            print(f"{n:>7,} points {width}x{height}: hand-drawn {ours * 1000:6.1f} ms, "
                  f"plotext 6 {theirs * 1000:6.1f} ms ({theirs / ours:.1f}x)")


if __name__ == "__main__":
    main()
