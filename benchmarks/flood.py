"""Log flood: 1,000,000 lines (half of them `\\r` progress updates) through the engine into the
live screen.

A fresh process (so its peak RSS is the app's own) starts the real engine the way the app does
(`launch.start_engine`: a detached `autoresearch-tui run --headless` process) on a project whose
baseline run prints the flood, and opens the live screen on the session under `App.run_test`.
Figures: lines/s from the run's start (RunStarted) until the live screen shows the metric line
that follows the flood; the engine's own ingest rate (lines / RunFinished.duration_s); the app
process's peak RSS (ru_maxrss); the worst delay between a key press (up or down: scroll the
focused log by a line; sent every 50 ms from a thread, as the terminal driver's input thread sends keys) and its action
running, over the presses sent during the flood.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path

from benchmarks.common import Figure, RssSampler, child_json, make_project, median, tempdir

FLOOD_TRAIN = '''\
import sys
LR = 0.1
n_lines = {lines} if LR == 0.1 else 10  # only the baseline floods
out = sys.stdout
for start in range(0, n_lines, 10000):
    parts = []
    for i in range(start, min(start + 10000, n_lines)):
        if i % 2:
            parts.append(f"\\rstep {{i:07d}} | loss: 2.512345 | lrm: 1.00 | dt: 312ms | tok/sec: 1,680,000")
        else:
            parts.append(f"line {{i:07d}} of the flood, as a chatty training script prints it\\n")
    out.write("".join(parts))
out.write("\\n---\\nval_bpb:          1.000000\\npeak_vram_mb:     0.0\\n")
out.flush()
'''


def run(quick: bool = False):
    lines, repeats = (200_000, 1) if quick else (1_000_000, 3)
    runs = [child_json("flood", str(lines), timeout=600) for _ in range(repeats)]
    bad = [r["error"] for r in runs if r.get("error")]
    if bad:
        yield Figure("flood.lines_per_s", None, "lines/s", ">= 200,000", False, bad[0])
        return
    rate = median([r["lines_per_s"] for r in runs])
    took = median([r["seconds"] for r in runs])
    yield Figure("flood.lines_per_s", rate, "lines/s", ">= 200,000 (engine -> log -> live screen)", rate >= 200_000,
                 f"median of {repeats}: {lines:,} lines in {took:.1f} s end to end")
    yield Figure("flood.engine_ingest_lines_per_s", median([r["engine_lines_per_s"] for r in runs]), "lines/s",
                 "none; the engine's runner alone (lines / run duration)", None)
    rss = max(r["rss_mb"] for r in runs)
    yield Figure("flood.peak_rss_app", rss, "MB", "< 150 MB (the live screen's process)", rss < 150)
    yield Figure("flood.peak_rss_engine", max(r["engine_rss_mb"] for r in runs), "MB", "none; the engine process", None)
    delays = sorted(d for r in runs for d in r["key_ms"])
    worst = delays[-1] if delays else float("nan")
    yield Figure("flood.worst_key_delay", worst, "ms", "< 100 ms", worst < 100,
                 f"median {median(delays):.1f} ms over {len(delays)} presses during {repeats} flood(s)")
    yield Figure("flood.lines_shown_of_total", median([r["shown_total"] for r in runs]), "lines counted by the screen",
                 f"none; {lines // 2:,} newline-terminated lines printed, the rest `\\r` rewrites or skipped", None)


async def _measure(lines: int, tmp: Path) -> dict:
    from autoresearch_tui.engine import events as ev
    from autoresearch_tui.engine.config import load_config
    from autoresearch_tui.engine.control import Stop
    from autoresearch_tui.engine.session import SessionDir, iter_events
    from autoresearch_tui.tui.launch import live_app, start_engine
    from autoresearch_tui.tui.widgets.log_view import LogView

    project = make_project(tmp / "proj", FLOOD_TRAIN.format(lines=lines))
    config = load_config(project, None, {"time_budget": "600s", "metric": "val_bpb:min", "tag": "flood",
                                         "device": "cpu", "max_iterations": 1, "progress_every": 0})
    engine = start_engine(config)
    session = config.session_path()
    try:
        app = live_app(session, engine)
        start_by = time.monotonic() + 60
        with RssSampler(lambda: [engine.pid], every=0.05) as engine_rss:
            async with app.run_test(size=(120, 40)) as pilot:
                while not _mounted(app, LogView) and time.monotonic() < start_by:
                    await pilot.pause(0.01)
                screen = app.screen
                log = screen.query_one(LogView)
                typist = Typist(app)
                log.focus()
                for name in ("scroll_up", "scroll_down"):
                    original = getattr(log, f"action_{name}")

                    def wrapped(original=original) -> None:
                        typist.handled.set()
                        original()

                    setattr(log, f"action_{name}", wrapped)
                deadline = time.monotonic() + 300
                done = False
                typist.start()
                try:
                    while not done and time.monotonic() < deadline:
                        await asyncio.sleep(0.01)
                        done = any(line.startswith("val_bpb:") for line in list(log.lines)[-20:])
                        if not done and not engine.alive() and screen.state.ended is not None:
                            await pilot.pause(0.5)
                            done = any(line.startswith("val_bpb:") for line in list(log.lines)[-20:])
                            break
                    end = time.time()
                finally:
                    typist.halt.set()
                    while typist.is_alive():  # its last key must be handled before the app closes
                        await asyncio.sleep(0.01)
                delays = typist.delays
                shown_total = log.total
                if not done:
                    tail = engine.output.read_text(errors="replace").strip().splitlines()[-2:] \
                        if engine.output.exists() else []
                    return {"error": "the live screen never showed the end of the flood: " + " | ".join(tail)}
        events = list(iter_events(session / "events.jsonl"))
        started = next(e.ts for e in events if isinstance(e, ev.RunStarted) and e.iteration == 0)
        finished = [e for e in events if isinstance(e, ev.RunFinished) and e.iteration == 0]
        duration = finished[0].duration_s if finished else float("nan")
        delays = [d * 1000 for t, d in delays if started <= t <= end]
        return {"lines_per_s": lines / (end - started), "seconds": end - started,
                "engine_lines_per_s": lines / duration,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "engine_rss_mb": engine_rss.peak_mb, "key_ms": delays, "shown_total": shown_total}
    finally:
        SessionDir(session).send(Stop())
        SessionDir(session).send(Stop())
        _end(engine)


def _mounted(app, widget) -> bool:
    try:
        return bool(app.screen.query(widget))
    except Exception:  # noqa: BLE001 - no screen on the stack yet
        return False


class Typist(threading.Thread):
    """Presses up and down (scroll the log) every 50 ms from another thread, as the terminal driver's input thread does,
    and times each press until the screen's action runs."""

    def __init__(self, app) -> None:
        super().__init__(daemon=True)
        self.app, self.handled, self.halt = app, threading.Event(), threading.Event()
        self.delays: list[tuple[float, float]] = []  # (wall clock when sent, seconds until handled)
        self.count = 0

    def press(self, timeout: float) -> None:
        from textual import events

        self.handled.clear()
        self.count += 1
        key = events.Key(("up", "down")[self.count % 2], None)  # scroll the focused log
        key.set_sender(self.app)
        wall, sent = time.time(), time.perf_counter()
        self.app._driver.send_message(key)
        if self.handled.wait(timeout):
            self.delays.append((wall, time.perf_counter() - sent))

    def run(self) -> None:
        for _ in range(2):  # warm-up: first-use costs are not the flood's
            self.press(5.0)
        self.delays.clear()
        while not self.halt.wait(0.05):
            self.press(10.0)


def _end(engine) -> None:
    deadline = time.monotonic() + 15
    while engine.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    if engine.alive():
        try:
            os.killpg(engine.pid, signal.SIGKILL)
        except OSError:
            pass
        if engine.popen is not None:
            engine.popen.wait(5)


def child(lines: int) -> None:
    with tempdir("flood") as tmp:
        try:
            result = asyncio.run(_measure(lines, tmp))
        except Exception as exc:  # noqa: BLE001 - reported as a MISS with the reason
            result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child(int(sys.argv[2]))
