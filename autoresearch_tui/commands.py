"""What each CLI command does. The screens live in `tui/`; this module stays free of them."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

from autoresearch_tui import exit_codes
from autoresearch_tui.errors import UserError


def make_proposer(config: Any, check: bool = True):
    """The configured proposer, checked before the night starts (CLI on PATH, key set, endpoint up)."""
    from autoresearch_tui.agents.base import AgentUnavailable
    from autoresearch_tui.agents.registry import check_backend, make_proposer as build

    try:
        proposer = build(config)
    except AgentUnavailable as exc:
        raise UserError(f"agent: {exc}") from None
    problem = check_backend(config) if check else None
    if problem:
        raise UserError(f"agent: {problem}")
    return proposer


def load(project: Path, config_file: Path | None, overrides: dict[str, Any]):
    from autoresearch_tui.engine.config import load_config

    if not project.exists():
        raise UserError(f"project folder {project} does not exist")
    if not project.is_dir():
        raise UserError(f"{project} is not a folder; give the project folder that holds train.py")
    _refuse_bare(project)
    return load_config(project, config_file, overrides)


def _refuse_bare(project: Path) -> None:
    from autoresearch_tui.engine.preflight import bare_error

    if problem := bare_error(project):
        raise UserError(problem)


def _refuse_index_lock(project: Path) -> None:
    """At a fresh start a left-over index.lock would fail the first git write deep in the loop: say it now."""
    from autoresearch_tui.engine.preflight import index_lock_error

    if problem := index_lock_error(project):
        raise UserError(problem)


# -- run ----------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    if args.discard_pending and not args.resume:
        raise UserError("--discard-pending only applies with --resume (it discards the experiment a stopped "
                        "session left unevaluated); add --resume or drop it")
    if args.resume:
        config = load_for_resume(args.project, overrides)  # resume removes the locks a killed session left
        return run_headless(config, resume=True, rerun_pending=not args.discard_pending)
    config = load(args.project, args.config, overrides)
    if args.headless and overrides.get("review"):
        raise UserError("--review needs the live screen to answer the reviews; run without --headless")
    from autoresearch_tui.engine.lock import holder, refusal

    live = holder(config.project)  # first: a live session's index.lock is not a stale one
    if live:
        raise refusal(live)
    _refuse_index_lock(config.project)
    if not args.headless:
        from autoresearch_tui.tui import launch

        return launch.live(config, confirm=not args.yes)
    return run_headless(config, confirm=not args.yes)


def load_for_resume(project: Path, overrides: dict[str, Any]):
    """The config a session started with (its snapshot), with CLI flags on top."""
    from autoresearch_tui.engine.config import ResearchConfig, apply_values, load_toml

    if not project.is_dir():
        raise UserError(f"project folder {project} does not exist")
    _refuse_bare(project)
    root = project.resolve()
    base = ResearchConfig(project=root)
    tag = overrides.get("tag")
    session = (root / base.session_dir / tag) if tag else find_session(root / base.session_dir) \
        if (root / base.session_dir).is_dir() else None
    if session is None or not (session / "config.toml").exists():
        where = f"for tag {tag!r} " if tag else ""
        raise UserError(f"no session {where}to resume in {root / base.session_dir}; start one without --resume")
    data, _ = load_toml(session / "config.toml")
    data = {k: v for k, v in data.items() if k not in ("project", "platform")}
    config = apply_values(ResearchConfig(project=root), data, source=str(session / "config.toml"))
    config.tag = session.name
    started = config.metric_spec
    config = apply_values(config, {k: v for k, v in overrides.items() if k != "tag"})
    if started and config.metric_spec != started:
        raise UserError(f"session {session.name} measures {started}, so its results cannot be compared on "
                        f"{config.metric_spec}; drop --metric, or start a new session with another --tag")
    return config


def run_headless(config: Any, confirm: bool = False, resume: bool = False, rerun_pending: bool = True) -> int:
    from autoresearch_tui.engine.config import validate
    from autoresearch_tui.engine.lock import SessionLock
    from autoresearch_tui.engine.parallel import make_engine
    from autoresearch_tui.headless import LinePrinter

    printer = LinePrinter()
    engine = make_engine(config, make_proposer(config), listeners=[printer])
    validate(config)
    lock = SessionLock.acquire(config.project, config.tag, config.session_path())
    try:
        print(config.table(platform="[detected at start]"), flush=True)
        if confirm and not resume and sys.stdin.isatty():
            answer = input("Start this research session? [Y/n] ").strip().lower()
            if answer not in ("", "y", "yes"):
                print("not started")
                return exit_codes.OK
        if resume:
            engine.prepare_resume(rerun_pending)
        else:
            engine.prepare()
        end = asyncio.run(_run_with_signals(engine))
    finally:
        if lock is not None:
            lock.release()
    if end.reason == "bad_metric":
        print(f"autoresearch-tui: the baseline did not print a usable {config.metric}; check --metric "
              f"(see {engine.session.root / 'runs'})", file=sys.stderr)
        return exit_codes.BAD_INPUT
    return exit_codes.RUNTIME_FAILURE if end.reason in ("baseline_crashed", "agent_unavailable") else exit_codes.OK


async def _run_with_signals(engine: Any):
    loop = asyncio.get_running_loop()

    def on_interrupt() -> None:
        count = engine.request_stop()
        msg = ("stopping after the current run (Ctrl-C again to kill it)" if count == 1
               else "killing the current run and stopping")
        print(f"\n{msg}", file=sys.stderr, flush=True)

    def on_term() -> None:
        engine.request_stop()
        engine.request_stop()

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    loop.add_signal_handler(signal.SIGTERM, on_term)
    # A headless loop outlives its terminal: an SSH drop must not end the night.
    loop.add_signal_handler(signal.SIGHUP, lambda: None)
    try:
        return await engine.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


# -- demo ---------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from autoresearch_tui.demo import create_demo_project

    if args.dir is not None and args.dir.exists() and not args.dir.is_dir():
        raise UserError(f"--dir {args.dir} is a file; give a new folder for the demo project")
    project, values = create_demo_project(args.sample, args.dir)
    if args.time_budget:
        values["time_budget"] = args.time_budget
    values["max_iterations"] = args.max_iterations
    from autoresearch_tui.engine.config import load_config

    config = load_config(project, None, values)
    print(f"demo project: {project}", flush=True)
    if args.headless:
        return run_headless(config, confirm=False)
    from autoresearch_tui.tui import launch

    return launch.wizard(config, demo=True)


# -- summary ------------------------------------------------------------------------------

def cmd_summary(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from autoresearch_tui.engine import summary
    from autoresearch_tui.engine.config_values import parse_metric
    from autoresearch_tui.engine.results import ResultsFormatError, read_results

    if args.results.is_dir():
        hint = f" such as {args.results / 'results.tsv'}" if (args.results / "results.tsv").is_file() else ""
        raise UserError(f"{args.results} is a folder; give the path of a results.tsv file{hint}")
    if not args.results.is_file():
        raise UserError(f"{args.results} does not exist; give the path of a results.tsv")
    metric = direction = None
    if args.metric:
        if ":" in args.metric:
            try:
                metric, direction = parse_metric(args.metric)
            except ValueError as exc:
                raise UserError(f"--metric: {exc}") from None
        else:
            metric = args.metric
    try:
        table = read_results(args.results, metric=metric, direction=direction)
    except ResultsFormatError as exc:
        raise UserError(str(exc)) from None
    for line, reason in table.skipped:
        print(f"{args.results}:{line}: skipped: {reason}", file=sys.stderr)
    if args.format == "md":
        text = summary.render_summary(
            table.rows, metric=table.metric, direction=table.direction, session=args.results.stem,
            platform=None, budget_s=None, date_range=None, skipped=table.skipped,
        )
    else:
        text = summary.experiments_table(table.rows, metric=table.metric, direction=table.direction, fmt=args.format)
    if args.output:
        summary.write_summary(args.output, text)
        print(f"wrote {args.output} ({len(table.rows)} experiments)", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return exit_codes.OK


# -- watch / replay / wizard / instruct ---------------------------------------------------

def find_session(path: Path | None) -> Path:
    """A session folder: given, or the newest under ./.autoresearch."""
    if path is not None:
        if (path / "events.jsonl").exists() or (path / "config.toml").exists():
            return path
        if (path / ".autoresearch").is_dir():
            path = path / ".autoresearch"
        if path.is_dir():
            # config.toml is written first: a session killed before its first event still counts.
            candidates = [p for p in path.iterdir() if (p / "events.jsonl").exists() or (p / "config.toml").exists()]
            if candidates:
                return max(candidates, key=lambda p: max(f.stat().st_mtime for f in p.iterdir()))
        raise UserError(f"{path} is not a session folder (no events.jsonl); give .autoresearch/<tag>")
    return find_session(Path.cwd())


def cmd_watch(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    session = find_session(args.session)
    if args.headless:
        return watch_headless(session)
    from autoresearch_tui.tui import launch

    return launch.watch(session)


def cmd_serve(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    import errno

    from autoresearch_tui import serve

    if not 0 <= args.port < 65536:
        raise UserError(f"--port {args.port}: give a port from 1 to 65535 (0: any free port)")
    session = find_session(args.session)
    try:
        serve.serve(session, args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {args.port} on {args.host} is in use; pick another with --port") from None
        raise UserError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return exit_codes.OK


def watch_headless(session: Path, poll: float = 0.5, once: bool = False) -> int:
    from autoresearch_tui.engine.events import SessionEnded
    from autoresearch_tui.engine.session import EventTail
    from autoresearch_tui.headless import LinePrinter

    tail, printer = EventTail(session / "events.jsonl"), LinePrinter()
    try:
        while True:
            ended = False
            for event in tail.read():
                printer(event)
                ended = isinstance(event, SessionEnded)
            if once or ended:
                return exit_codes.OK
            time.sleep(poll)
    except KeyboardInterrupt:
        return exit_codes.OK  # detaching never disturbs the loop


def cmd_replay(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from autoresearch_tui.engine.results import ResultsFormatError, read_results
    from autoresearch_tui.tui import prepaint

    if not args.results.is_file():
        raise UserError(f"{args.results} does not exist; give the path of a results.tsv")
    try:  # not a results table at all: one line here, not an empty screen
        head = prepaint.read_head(args.results)
    except ResultsFormatError:
        try:  # the header may be further down than the head
            head = read_results(args.results)
        except ResultsFormatError as exc:
            raise UserError(str(exc)) from None
    painted = prepaint.paint(head, args.results.name)  # the first rows before Textual starts
    try:
        from autoresearch_tui.tui import launch

        return launch.replay(args.results, session=args.session, repo=args.repo)
    finally:
        if painted:
            prepaint.leave()


def cmd_wizard(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    config = load(args.project, args.config, overrides)
    from autoresearch_tui.tui import launch

    return launch.wizard(config)


def cmd_doctor(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from autoresearch_tui.engine.preflight import Check, check_project

    config = load(args.project, args.config, overrides)
    checks = list(check_project(config))
    from autoresearch_tui.engine import hardware
    import os

    platform = asyncio.run(hardware.detect(config.command_argv(), config.train_script, config.project,
                                           dict(os.environ), config.device))
    checks.append(Check("platform", True, platform.describe() + (f"; {platform.notes}" if platform.probe_error
                                                                 else ""), fatal=False))
    if not config.metric:
        checks.append(Check("metric", False, "metric is not set: pass --metric val_bpb:min"))
    if config.time_budget is None:
        checks.append(Check("time budget", False, "time_budget is not set: pass --time-budget 5m"))
    if args.baseline and config.metric:
        checks.extend(_baseline_checks(config, platform, args.baseline_budget))
    for check in checks:
        mark = "ok  " if check.ok else ("FAIL" if check.fatal else "warn")
        print(f"{mark}  {check.name}: {check.message}", flush=True)
    return exit_codes.OK if all(c.ok or not c.fatal for c in checks) else exit_codes.RUNTIME_FAILURE


# A baseline is "far over its budget" past 2x the budget plus start-up and evaluation slack.
OVER_BUDGET_FACTOR, OVER_BUDGET_SLACK_S = 2.0, 5.0


def _baseline_checks(config: Any, platform: Any, budget: str) -> list[Any]:
    import os
    import tempfile

    from autoresearch_tui.engine import metrics
    from autoresearch_tui.engine.durations import parse_duration
    from autoresearch_tui.engine.preflight import Check
    from autoresearch_tui.engine.runner import run_process

    try:
        seconds = parse_duration(budget)
    except ValueError as exc:
        raise UserError(f"--baseline-budget: {exc}") from None
    log = Path(tempfile.mkdtemp(prefix="autoresearch-doctor-")) / "baseline.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **platform.env(seconds)}
    outcome = asyncio.run(run_process(config.command_argv(), cwd=config.project, env=env, log_path=log,
                                      limit_s=seconds * config.time_limit_factor + 60, grace_s=5))
    r = metrics.read_run(log, config.metric, config.metric_pattern, outcome.exit_code, outcome.timed_out,
                         False, seconds * config.time_limit_factor + 60, outcome.peak_rss_mb)
    checks = []
    if outcome.timed_out or outcome.duration_s > OVER_BUDGET_FACTOR * seconds + OVER_BUDGET_SLACK_S:
        checks.append(Check("time budget honoured", False,
                            f"the baseline ran {outcome.duration_s:.0f} s on a {budget} budget: the script does not "
                            "stop at the budget (does it train by iteration count?); make it stop after "
                            "AUTORESEARCH_TIME_BUDGET seconds so runs compare at equal time", fatal=False))
    if r.crash:
        return [Check("short baseline", False, f"{r.crash} (log: {log})"), *checks]
    return [Check("short baseline", True, f"{config.metric} = {r.metric:.6f} after {outcome.duration_s:.0f} s"),
            *checks]


def cmd_control(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from autoresearch_tui.engine.session import SessionDir

    session = SessionDir(find_session(args.session))
    session.send(args.action.replace("-", "_"))
    print(f"sent {args.action} to {session.root}")
    return exit_codes.OK


def cmd_instruct(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    from autoresearch_tui.engine.session import SessionDir

    session = SessionDir(find_session(args.session))
    if not args.text.strip():
        raise UserError("the instruction is empty")
    session.send("instruct", text=args.text)
    print(f"sent to {session.root}: the next proposals will see it")
    return exit_codes.OK

