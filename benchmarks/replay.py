"""Replay and summary of a 100,000-row results.tsv (--quick: 20,000 rows), and the time until
data rows are on screen side by side with VisiData in tmux.

In a fresh process: a bare `csv` module pass over the file (the reference, median of 5); the
summary as the `summary` command makes it (`read_results` then `render_summary`, median of 3);
and the replay screen under `App.run_test`: from building the app (Textual and the app module
already imported) until the screen has loaded the file and rendered once with the data.

Side by side (`tmux_rows`): `autoresearch-tui replay FILE` and `vd FILE` each started in a new
120x40 tmux window; the time from starting the window until its second data row's commit is on
the screen (`tmux capture-pane` every 5 ms), the two tools alternating, median of 5 (--quick: 3),
on a 50-row and a 100,000-row file. VisiData is installed into a benchmark-only virtual
environment (ARBENCH_VISIDATA_VENV, default ~/.cache/autoresearch-bench/visidata) on first use;
without tmux or when it cannot be installed the figure is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, Figure, child_json, median, tempdir

WORDS = ("increase", "decrease", "halve", "double", "swap", "add", "remove", "tune", "try")
THINGS = ("MATRIX_LR", "EMBEDDING_LR", "DEPTH", "WARMDOWN_RATIO", "WEIGHT_DECAY", "batch size", "window pattern",
          "rotary base", "ReLU² → SwiGLU", "value embeddings")


def write_results(path: Path, rows: int, seed: int = 0) -> None:
    """A long results.tsv as the engine writes it: ~15% keeps, a few crashes, commas and Unicode."""
    rng = random.Random(seed)
    best = 1.0
    out = ["commit\tval_bpb\tmemory_gb\tstatus\tdescription\n",
           f"{rng.getrandbits(28):07x}\t{best:.6f}\t44.0\tkeep\tbaseline\n"]
    for i in range(1, rows):
        commit = f"{rng.getrandbits(28):07x}"
        desc = f"{rng.choice(WORDS)} {rng.choice(THINGS)} {rng.randint(1, 99)}, then re-check (#{i})"
        roll = rng.random()
        if roll < 0.04:
            out.append(f"{commit}\t0.000000\t0.0\tcrash\t{desc} (CUDA out of memory)\n")
            continue
        value = best + rng.gauss(0.002, 0.003)
        status = "keep" if value < best else "discard"
        best = min(best, value)
        out.append(f"{commit}\t{value:.6f}\t{44 + rng.random():.1f}\t{status}\t{desc}\n")
    path.write_text("".join(out), encoding="utf-8")


def run(quick: bool = False):
    rows = 20_000 if quick else 100_000
    r = child_json("replay", str(rows), timeout=600)
    csv_s = r["csv_s"]
    yield Figure("replay.csv_pass", csv_s * 1000, "ms", f"none; reference, bare csv.reader over {rows:,} rows", None)
    yield Figure("replay.summary", r["summary_s"] * 1000, "ms",
                 f"< 1000 ms and <= 3x csv = {3 * csv_s * 1000:.0f} ms",
                 r["summary_s"] < 1.0 and r["summary_s"] <= 3 * csv_s, f"{r['summary_s'] / csv_s:.1f}x csv")
    yield Figure("replay.summary_read_results", r["read_s"] * 1000, "ms", "none; of which read_results", None)
    if r.get("error"):
        yield Figure("replay.first_frame", None, "ms", "< 1500 ms", False, r["error"])
        return
    frame = r["frame_s"]
    yield Figure("replay.first_frame", frame * 1000, "ms", f"< 1500 ms and <= 3x csv = {3 * csv_s * 1000:.0f} ms",
                 frame < 1.5 and frame <= 3 * csv_s, f"{frame / csv_s:.1f}x csv")
    yield Figure("replay.first_empty_frame", r["mounted_s"] * 1000, "ms", "none; the screen before the data", None)
    yield from tmux_rows(quick)


VISIDATA = "visidata==3.4"
TMUX = ["tmux", "-L", "arbench-replay"]


def visidata() -> tuple[Path | None, str]:
    """The `vd` of the benchmark's own virtual environment (made on first use), or why there is none."""
    venv = Path(os.environ.get("ARBENCH_VISIDATA_VENV", Path.home() / ".cache" / "autoresearch-bench" / "visidata"))
    vd = venv / "bin" / "vd"
    if vd.exists():
        return vd, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        done = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", VISIDATA], capture_output=True,
                              text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not make a virtual environment for VisiData in {venv}: {exc}"
    if done.returncode != 0 or not vd.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"pip could not install {VISIDATA} into {venv}: {last}"
    return vd, ""


def _on_screen(command: list[str], markers: tuple[str, ...], env: dict[str, str],
               timeout: float = 60.0) -> list[float | None]:
    """Seconds from starting `command` in a new tmux window until each marker is on its screen."""
    name = f"w{time.monotonic_ns()}"
    shell = " ".join(f"'{part}'" for part in command)  # our own paths: no quote inside
    seen: list[float | None] = [None] * len(markers)
    t0 = time.perf_counter()
    subprocess.run([*TMUX, "new-session", "-d", "-x", "120", "-y", "40", "-s", name, shell], check=True, env=env)
    try:
        while None in seen and time.perf_counter() - t0 < timeout:
            screen = subprocess.run([*TMUX, "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout
            now = time.perf_counter() - t0
            seen = [t if t is not None or marker not in screen else now for t, marker in zip(seen, markers)]
            time.sleep(0.005)
        return seen
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", name], capture_output=True)


def tmux_rows(quick: bool):
    if shutil.which("tmux") is None:
        yield Figure("replay.tmux_rows", None, "ms", "first rows no later than VisiData's", None,
                     "skipped: tmux is not installed")
        return
    vd, why = visidata()
    if vd is None:
        yield Figure("replay.tmux_rows", None, "ms", "first rows no later than VisiData's", None, f"skipped: {why}")
        return
    repeats = 3 if quick else 5
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: with .pyc
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "autoresearch_tui")], env=env,
                   capture_output=True)
    subprocess.run([*TMUX, "new-session", "-d", "-s", "keep", "sleep 3600"], check=True)  # the server stays up
    try:
        with tempdir("replay-tmux") as tmp:
            for rows in (50, 20_000 if quick else 100_000):
                path = tmp / f"results-{rows}.tsv"
                write_results(path, rows)
                marker = path.read_text(encoding="utf-8").split("\n", 3)[2].split("\t")[0]
                ours_cmd = [sys.executable, "-m", "autoresearch_tui", "replay", str(path)]
                _on_screen(ours_cmd, (marker,), env)  # warm the file cache for both
                ours, ui, theirs = [], [], []
                for _ in range(repeats):  # alternating: both see the same machine load
                    rows_s, ui_s = _on_screen(ours_cmd, (marker, "q Quit"), env)  # the footer: the app is up
                    ours.append(rows_s)
                    ui.append(ui_s)
                    theirs.append(_on_screen([str(vd), str(path)], (marker,), env)[0])
                if None in ours or None in theirs or None in ui:
                    yield Figure(f"replay.tmux_rows_{rows}", None, "ms", "first rows no later than VisiData's", False,
                                 "a tool did not show its rows within 60 s")
                    continue
                a, b = median(ours) * 1000, median(theirs) * 1000
                yield Figure(f"replay.visidata_rows_{rows}", b, "ms", f"none; VisiData 3.4, {rows:,} rows", None)
                yield Figure(f"replay.tmux_rows_{rows}", a, "ms", f"<= VisiData's {b:.0f} ms", a <= b,
                             f"{a / b:.2f}x VisiData")
                yield Figure(f"replay.tmux_app_{rows}", median(ui) * 1000, "ms",
                             "none; until the full screen (footer) replaces the first rows", None)
    finally:
        subprocess.run([*TMUX, "kill-server"], capture_output=True)


async def _frame(path: Path) -> dict:
    from autoresearch_tui.tui.launch import replay_app
    from autoresearch_tui.tui.widgets.results_table import ResultsTable

    t0 = time.perf_counter()
    app = replay_app(path)
    async with app.run_test(size=(120, 40)) as pilot:
        mounted = time.perf_counter() - t0
        screen = app.screen
        deadline = time.monotonic() + 120
        while not getattr(screen, "loaded", False) and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        if not getattr(screen, "loaded", False):
            return {"error": "the replay screen did not load in 120 s"}
        await pilot.pause()  # the refresh with the data
        frame = time.perf_counter() - t0
        count = screen.query_one(ResultsTable).row_count
    return {"frame_s": frame, "mounted_s": mounted, "table_rows": count}


def child(rows: int) -> None:
    import autoresearch_tui.tui.launch  # noqa: F401 - imports are the startup benchmark's, not this one's
    from autoresearch_tui.engine.results import read_results
    from autoresearch_tui.engine.summary import render_summary

    with tempdir("replay") as tmp:
        path = tmp / "results.tsv"
        write_results(path, rows)
        csv_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            with open(path, newline="", encoding="utf-8") as fh:
                for _row in csv.reader(fh, delimiter="\t"):
                    pass
            csv_times.append(time.perf_counter() - t0)
        summary, reads = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            table = read_results(path)
            reads.append(time.perf_counter() - t0)
            render_summary(table.rows, metric=table.metric, direction=table.direction, session="bench",
                           platform=None, budget_s=300, date_range=None, skipped=table.skipped)
            summary.append(time.perf_counter() - t0)
        result = {"csv_s": median(csv_times), "summary_s": median(summary), "read_s": median(reads)}
        try:
            result.update(asyncio.run(_frame(path)))
        except Exception as exc:  # noqa: BLE001 - reported as a MISS with the reason
            result["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result))


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child(int(sys.argv[2]))
