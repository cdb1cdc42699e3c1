"""Command line: `autoresearch-tui [PROJECT]`, run, demo, summary, watch, replay, instruct.

Heavy imports (Textual, GitPython) happen inside the commands so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from autoresearch_tui import __version__, exit_codes
from autoresearch_tui.errors import RuntimeFailure, UserError

COMMANDS = ("run", "demo", "summary", "watch", "replay", "instruct", "control", "wizard", "doctor",
            "serve")


class Parser(argparse.ArgumentParser):
    """One line for bad arguments (no usage dump), exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        hint = " (a value starting with '-' needs '=', e.g. --time-budget=-5m)" if "expected one argument" in message else ""
        self.exit(exit_codes.BAD_INPUT, f"{self.prog}: {message}{hint}; see {self.prog} --help\n")


def _config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per config key, from the schema (the values are read and checked by it too)."""
    from autoresearch_tui.engine.config import KEYS

    g = p.add_argument_group("research config (overrides autoresearch.toml)")
    g.add_argument("--config", type=Path, help="config file (default: PROJECT/autoresearch.toml)")
    for spec in KEYS.values():
        help_text = spec.help.replace("%", "%%")
        if spec.boolean:
            g.add_argument(spec.flag, dest=spec.name, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        else:
            g.add_argument(spec.flag, dest=spec.name, metavar=spec.metavar, choices=spec.choices, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="autoresearch-tui",
        description="Autonomous ML research loop: propose a change, train for a fixed budget, keep or discard.",
        epilog="Run `autoresearch-tui COMMAND --help` for a command's options. "
               "`autoresearch-tui [PROJECT]` opens the config wizard.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    run = sub.add_parser("run", help="run the research loop on a project", description="Run the research loop.")
    run.add_argument("project", nargs="?", default=".", type=Path, help="project folder (default: .)")
    run.add_argument("--headless", action="store_true", help="no screen: one plain line per event")
    run.add_argument("--yes", "-y", action="store_true", help="start without asking for confirmation")
    run.add_argument("--resume", action="store_true",
                     help="continue the session of --tag (default: the newest) after a stop, kill or reboot")
    run.add_argument("--discard-pending", action="store_true",
                     help="with --resume: discard an experiment that was committed but not evaluated "
                          "(default: run it again)")
    _config_flags(run)

    wizard = sub.add_parser("wizard", help="open the config wizard (same as `autoresearch-tui PROJECT`)")
    wizard.add_argument("project", nargs="?", default=".", type=Path)
    _config_flags(wizard)

    demo = sub.add_parser("demo", help="copy a sample project to a new folder and run the loop on it (offline)")
    demo.add_argument("--sample", default="tinygpt", choices=("tinygpt", "spirals"), help="sample project")
    demo.add_argument("--dir", type=Path, help="where to create the demo project (default: ./autoresearch-demo)")
    demo.add_argument("--headless", action="store_true", help="no screen: one plain line per event")
    demo.add_argument("--time-budget", help="training time per run (default 30s for tinygpt, 10s for spirals)")
    demo.add_argument("--max-iterations", default="5", help="experiments after the baseline (default 5)")

    summ = sub.add_parser("summary", help="write autoresearch-summary.md from any results.tsv")
    summ.add_argument("results", type=Path, help="a results.tsv file")
    summ.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    summ.add_argument("--metric", help="metric column and direction, e.g. val_bpb:min (default: from the header)")
    summ.add_argument("--format", choices=("md", "latex", "csv"), default="md",
                      help="md: the full summary; latex/csv: the table of all experiments")

    watch = sub.add_parser("watch", help="attach read-only to a loop another process runs")
    watch.add_argument("session", nargs="?", type=Path, help="session folder (default: newest under .autoresearch)")
    watch.add_argument("--headless", action="store_true", help="print event lines instead of the screen")

    serve = sub.add_parser("serve", help="serve the read-only watch screen to a browser")
    serve.add_argument("session", nargs="?", type=Path, help="session or project folder (default: newest under .)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs the "
                                                           "access token it prints)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")

    replay = sub.add_parser("replay", help="open a past results.tsv in the app")
    replay.add_argument("results", type=Path)
    replay.add_argument("--session", type=Path, help="its session folder (for run logs)")
    replay.add_argument("--repo", type=Path, help="the repository (to show each commit's diff)")

    doctor = sub.add_parser("doctor", help="check everything a night needs, one line per check")
    doctor.add_argument("project", nargs="?", default=".", type=Path)
    doctor.add_argument("--baseline", action="store_true",
                        help="also run a short baseline and check the metric is printed")
    doctor.add_argument("--baseline-budget", default="10s", help="time budget of that baseline (default 10s)")
    _config_flags(doctor)

    control = sub.add_parser("control", help="pause, resume or stop a running loop from another terminal")
    control.add_argument("session", type=Path, help="session folder (.autoresearch/<tag>) or project folder")
    control.add_argument("action", choices=("pause", "resume", "stop", "kill-run"),
                         help="pause after the current run, resume, stop after the current run, kill the run")

    instruct = sub.add_parser("instruct", help="add guidance for the next proposals of a running loop")
    instruct.add_argument("session", type=Path)
    instruct.add_argument("text")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from autoresearch_tui.engine.config import KEYS

    return {k: getattr(args, k) for k in KEYS if getattr(args, k, None) is not None}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The user's umask, but never world-writable results or session files.
    os.umask(os.umask(0) | 0o002)
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["wizard", *argv]
    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a full disk under stdout must fail here, not in the interpreter's exit
        return code
    except UserError as exc:
        print(f"autoresearch-tui: {_inert(exc)}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    except RuntimeFailure as exc:
        print(f"autoresearch-tui: {_inert(exc)}", file=sys.stderr)
        return exit_codes.RUNTIME_FAILURE
    except KeyboardInterrupt:
        return exit_codes.RUNTIME_FAILURE
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _internal_error(exc)
        where = f" writing {exc.filename}" if exc.filename else ""
        # Whatever was left unwritten in stdout's buffer goes nowhere, so the exit adds no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"autoresearch-tui: no space left on the device{where}; free some space and run again",
              file=sys.stderr)
        return exit_codes.RUNTIME_FAILURE
    except Exception as exc:  # noqa: BLE001 - one line and a report file instead of a traceback
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    from autoresearch_tui.crash import one_line

    print(one_line(exc), file=sys.stderr)
    return exit_codes.RUNTIME_FAILURE


def _inert(exc: Exception) -> str:
    """The message as one line with no escape sequence or key (it may quote agent output)."""
    from autoresearch_tui.engine.sanitize import line

    return line(str(exc))


def _dispatch(args: argparse.Namespace) -> int:
    from autoresearch_tui import commands

    handler = getattr(commands, f"cmd_{args.command}")
    return handler(args, _overrides(args))
