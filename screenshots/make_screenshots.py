"""Regenerate the SVG screenshots in this folder from the real app.

    .venv/bin/python screenshots/make_screenshots.py

Drives the app with `App.run_test(size=(160, 45))` and `save_screenshot()`:
  live.svg            a real short session on a copy of sample_projects/spirals (a fake fast
                      project when the sample or torch is missing, or SHOTS_FAKE=1 on a busy
                      machine), mid-run: four panes
  live-80x24.svg      the same at the smallest supported size: the panes stacked, the log large
  help-80x24.svg      its `?` help
  workers-80x24.svg   a session with 3 parallel workers (the fake project, on the CPU): the
                      workers strip, the log pane following w1 (`w`)
  replay.svg          replay of a real results.tsv (Bervaso/autoresearch-macos)
  replay-80x24.svg    the same at 80x24 (no repository: no diff pane)
  replay-nocolor.svg  the same as replay.svg with NO_COLOR set
  wizard.svg          the config wizard, when it is installed
Each picture is checked for local paths (the temporary folder, this checkout, the interpreter).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = Path(os.environ.get("AUTORESEARCH_REAL_RESULTS", Path(__file__).resolve().parents[2] / "shared" / "real-results"))
SIZE = (160, 45)

FAKE_TRAIN = '''"""A fake fast training script in the autoresearch format (no torch)."""
import time
DEPTH = 4
MATRIX_LR = 0.04
WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.2
t0 = time.time()
step = 0
while time.time() - t0 < 2.5:
    pct = (time.time() - t0) / 2.5 * 100
    print(f"\\rstep {step:05d} ({pct:4.1f}%) | loss: {3.5 - step * 0.004:.6f} | dt: 50ms | remaining: {2.5 - time.time() + t0:.0f}s    ", end="", flush=True)
    step += 1
    time.sleep(0.05)
print()
val = 1.0 + abs(DEPTH - 6) * 0.01 + abs(MATRIX_LR - 0.05) * 2 + WARMUP_RATIO * 0.05 + WEIGHT_DECAY * 0.02
print("---")
print(f"val_bpb:          {val:.6f}")
print(f"training_seconds: 2.5")
print(f"num_steps:        {step}")
'''


def save(app, name: str, out: Path, root: Path | None) -> None:
    """save_screenshot, then a check that no local path (the temporary folder, this checkout, the
    interpreter) is in the picture: the SVG fixes each text run's length, so it cannot be edited."""
    app.save_screenshot(name, str(out))
    text = (out / name).read_text(encoding="utf-8")
    candidates = {str(HERE.parent), sys.prefix} | ({str(root), str(root.resolve())} if root else set())
    local = [p for p in candidates if p in text]
    if local:
        print(f"{name}: WARNING, local path(s) in the picture: {', '.join(local)}", file=sys.stderr)


async def wait_for(pilot, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await pilot.pause(0.2)
    return predicate()


def _fake_project(root: Path) -> tuple[Path, dict]:
    import git

    project = root / "fake-project"
    project.mkdir()
    (project / "train.py").write_text(FAKE_TRAIN)
    (project / "prepare.py").write_text("TIME_BUDGET = 3\n")
    (project / ".gitignore").write_text("results.tsv\n.autoresearch/\nautoresearch-summary.md\n")
    repo = git.Repo.init(project, initial_branch="main")
    repo.git.update_environment(GIT_AUTHOR_NAME="demo", GIT_AUTHOR_EMAIL="demo@localhost",
                                GIT_COMMITTER_NAME="demo", GIT_COMMITTER_EMAIL="demo@localhost")
    repo.git.add("-A")
    repo.git.commit("-m", "fake project", "--quiet")
    return project, {"time_budget": "3s", "metric": "val_bpb:min"}


def _project(root: Path) -> tuple[Path, dict]:
    from autoresearch_tui.demo import create_demo_project

    try:
        import importlib.util

        if os.environ.get("SHOTS_FAKE"):
            raise RuntimeError("SHOTS_FAKE is set")
        if importlib.util.find_spec("torch") is None:
            raise RuntimeError("no torch")
        project, values = create_demo_project("spirals", root / "spirals")
        return project, {**values, "time_budget": "10s"}  # start-up on a busy CPU box takes seconds
    except Exception as exc:  # noqa: BLE001 - any trouble: the torch-free fake project
        print(f"spirals unavailable ({exc}); using a fake project", file=sys.stderr)
        return _fake_project(root)


async def shoot_live(out: Path) -> None:
    from autoresearch_tui.engine.config import load_config
    from autoresearch_tui.tui.launch import live_app, start_engine
    from autoresearch_tui.tui.widgets.log_view import LogView

    root = Path(tempfile.mkdtemp(prefix="autoresearch-shots-"))
    project, values = _project(root)
    config = load_config(project, None, {**values, "max_iterations": "12", "tag": "shots"})
    engine = start_engine(config)
    session = config.session_path()
    try:
        app = live_app(session, engine)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            ok = await wait_for(pilot, lambda: len(screen.state.rows) >= 5 and screen.state.run is not None
                                and screen.query_one(LogView).line_count >= 2, 240)
            await pilot.pause(1.0)
            print(f"live: {len(screen.state.rows)} rows, mid-run={ok}")
            save(app, "live.svg", out, root)
            await pilot.resize_terminal(80, 24)
            await pilot.press("2")  # the log pane large: full-width lines
            await pilot.pause(0.8)
            save(app, "live-80x24.svg", out, root)
            await pilot.press("question_mark")
            await pilot.pause(0.3)
            save(app, "help-80x24.svg", out, root)
    finally:
        _stop_engine(engine, session, root)


def _stop_engine(engine, session: Path, root: Path) -> None:
    """Two stop commands kill the run in flight; then the temporary project goes."""
    from autoresearch_tui.engine.session import SessionDir

    SessionDir(session).send("stop")
    SessionDir(session).send("stop")
    if engine.popen is not None:
        try:
            engine.popen.wait(30)
        except Exception:  # noqa: BLE001 - a screenshot script must clean up whatever happened
            engine.popen.kill()
    shutil.rmtree(root, ignore_errors=True)


async def shoot_workers(out: Path) -> None:
    from autoresearch_tui.engine.config import load_config
    from autoresearch_tui.tui.launch import live_app, start_engine
    from autoresearch_tui.tui.widgets.log_view import LogView

    root = Path(tempfile.mkdtemp(prefix="autoresearch-shots-"))
    project, values = _fake_project(root)
    config = load_config(project, None, {**values, "max_iterations": "12", "tag": "workers", "workers": "3",
                                         "device": "cpu"})
    engine = start_engine(config)
    session = config.session_path()
    try:
        app = live_app(session, engine)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            ok = await wait_for(pilot, lambda: len(screen.state.rows) >= 4 and len(screen.state.runs) == 3, 120)
            await pilot.press("w", "w")  # automatic -> w0 -> w1
            await wait_for(pilot, lambda: any(" on w1 ──" in line for line in screen.query_one(LogView).lines), 10)
            await pilot.pause(1.2)  # the other workers' last lines, the elapsed times
            print(f"workers: {len(screen.state.rows)} rows, 3 in flight={ok}")
            save(app, "workers-80x24.svg", out, root)
    finally:
        _stop_engine(engine, session, root)


async def shoot_replay(out: Path) -> None:
    from autoresearch_tui.tui.launch import replay_app

    path = REAL / "Bervaso__autoresearch-macos.tsv"
    if not path.exists():
        print(f"replay: {path} not found; skipped", file=sys.stderr)
        return
    for name, no_color, size in (("replay.svg", False, SIZE), ("replay-80x24.svg", False, (80, 24)),
                                 ("replay-nocolor.svg", True, SIZE)):
        if no_color:
            os.environ["NO_COLOR"] = "1"
        try:
            app = replay_app(path)
            async with app.run_test(size=size) as pilot:
                await wait_for(pilot, lambda: getattr(app.screen, "summary", None) is not None, 10)
                for _ in range(8):  # exp8, the conv-mixer keep
                    await pilot.press("right")
                await pilot.pause(0.8)
                save(app, name, out, path.parent)
        finally:
            os.environ.pop("NO_COLOR", None)
        print(f"replay: {name}")


async def shoot_wizard(out: Path) -> None:
    from autoresearch_tui.demo import create_demo_project
    from autoresearch_tui.engine.config import load_config
    from autoresearch_tui.tui.launch import wizard_app

    root = Path(tempfile.gettempdir()) / "autoresearch-demo"  # a stable path for the picture
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    try:
        try:
            project, values = create_demo_project("spirals", root / "spirals")
        except Exception:  # noqa: BLE001
            project, values = _fake_project(root)
        # the default train command is this interpreter's path: name it as a user would
        app = wizard_app(load_config(project, None, {**values, "train_command": "python train.py"}), demo=True)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(2.0)
            save(app, "wizard.svg", out, None)  # its fixed /tmp/autoresearch-demo is meant to be seen
        print("wizard: wizard.svg")
    except ImportError as exc:
        print(f"wizard: not available ({exc})", file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def main(which: list[str]) -> None:
    out = HERE
    shots = {"replay": shoot_replay, "wizard": shoot_wizard, "live": shoot_live, "workers": shoot_workers}
    for name in which or list(shots):
        await shots[name](out)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
