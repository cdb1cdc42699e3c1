"""Entry points used by commands.py: live, wizard, watch, replay. Each builds a ResearchApp.

The `*_app` builders are separate so tests and the screenshot script drive the real app with
`App.run_test()`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from autoresearch_tui import exit_codes

from autoresearch_tui.tui.app import ResearchApp


def start_engine(config: Any):
    """Check, write the exact config beside the session, spawn the detached engine."""
    from autoresearch_tui.engine.preflight import check_can_start, write_launch_config
    from autoresearch_tui.engine.spawn import spawn_engine

    check_can_start(config)
    return spawn_engine(config, write_launch_config(config))


def live_app(session_dir: Path, engine: Any = None, *, bell: bool = False) -> ResearchApp:
    from autoresearch_tui.tui.screens.live import LiveScreen

    return ResearchApp(lambda app: LiveScreen(Path(session_dir), engine=engine, bell=bell))


def watch_app(session_dir: Path) -> ResearchApp:
    from autoresearch_tui.tui.screens.live import LiveScreen

    return ResearchApp(lambda app: LiveScreen(Path(session_dir), read_only=True))


def replay_app(results: Path, session: Path | None = None, repo: Path | None = None) -> ResearchApp:
    from autoresearch_tui.tui.screens.replay import ReplayScreen

    return ResearchApp(lambda app: ReplayScreen(Path(results), session, repo))


def wizard_app(config: Any, demo: bool = False, *, bell: bool = False) -> ResearchApp:
    """The wizard, then (on confirm) the engine is spawned and the live screen follows it."""
    from autoresearch_tui.tui.screens.wizard import WizardScreen

    def open_wizard(app: ResearchApp, cfg: Any) -> None:
        app.push_screen(WizardScreen(cfg, demo=demo), lambda result: confirmed(app, result))

    def confirmed(app: ResearchApp, result: Any) -> None:
        if result is None:
            app.exit(0, message="not started")
            return
        app.run_worker(lambda: spawn(app, result), thread=True, name="spawn engine")

    def spawn(app: ResearchApp, cfg: Any) -> None:
        from autoresearch_tui.errors import UserError
        from autoresearch_tui.tui.screens.live import LiveScreen

        try:
            engine = start_engine(cfg)
        except UserError as exc:
            app.call_from_thread(app.notify, str(exc), title="Cannot start", severity="error", timeout=15)
            app.call_from_thread(open_wizard, app, cfg)
            return
        screen = LiveScreen(cfg.session_path(), engine=engine, bell=bell or cfg.bell)
        app.call_from_thread(app.push_screen, screen)

    def start(app: ResearchApp):
        open_wizard(app, config)
        return None

    return ResearchApp(start)


def _run(app: ResearchApp, headless: bool = False) -> int:
    result = app.run(headless=headless)
    if app.crash_line:
        print(app.crash_line, file=sys.stderr)
        return exit_codes.RUNTIME_FAILURE
    code = app.return_code
    return code if code else (result if isinstance(result, int) else 0)


def live(config: Any, confirm: bool = True) -> int:
    if confirm:
        return wizard(config)
    engine = start_engine(config)  # UserError reaches the CLI as one line
    return _run(live_app(config.session_path(), engine, bell=config.bell))


def wizard(config: Any, demo: bool = False) -> int:
    return _run(wizard_app(config, demo))


def watch(session_dir: Path) -> int:
    return _run(watch_app(session_dir))


def replay(results: Path, session: Path | None = None, repo: Path | None = None) -> int:
    return _run(replay_app(results, session, repo))
