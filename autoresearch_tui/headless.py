"""Headless output: one plain line per event, readable in a log file or over SSH."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from autoresearch_tui.engine import events as ev, sanitize
from autoresearch_tui.engine.durations import format_duration


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


def describe(event: ev.Event) -> str | None:
    """The line for one event, or None for events that need no line."""
    if isinstance(event, ev.SessionStarted):
        verb = "resumed" if event.resumed else "started"
        return (f"session {event.tag} {verb} on {event.branch} (from {event.original_branch} "
                f"@ {event.base_commit[:7]}) in {event.project}")
    if isinstance(event, ev.PlatformDetected):
        adj = ", ".join(f"{k}={v}" for k, v in event.adjustments.items())
        torch = f", torch {event.torch_version}" if event.torch_version else ""
        return f"platform {event.platform}{torch}: {adj}" + (f" ({event.notes})" if event.probe_error else "")
    if isinstance(event, ev.ProposalMade):
        return f"#{event.iteration} proposal: {event.description}"
    if isinstance(event, ev.CandidatePrepared):
        return f"#{event.iteration} prepared during the current run: {event.description}"
    if isinstance(event, ev.ProposalFailed):
        return f"#{event.iteration} no usable proposal: {event.reason}"
    if isinstance(event, ev.GuardrailTripped):
        return f"#{event.iteration} guardrail: reverted {', '.join(event.reverted)} ({event.reason})"
    if isinstance(event, ev.RunStarted):
        what = "baseline" if event.iteration == 0 else f"{event.commit[:7]}"
        if event.worker or event.device:
            what += f" on worker {event.worker}" + (f" ({event.device})" if event.device else "")
        retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        return (f"#{event.iteration} running {what}{retry}: budget {format_duration(event.budget_s)}, "
                f"limit {format_duration(event.limit_s)}, log {event.log}")
    if isinstance(event, ev.RunFinished):
        mem = f", peak {event.peak_memory_mb:.0f} MB" if event.peak_memory_mb else ""
        tail = f", crash: {event.crash_reason}" if event.crash_reason else ""
        cpu = f" (CPU {event.cpu_s:.1f} s)" if event.cpu_s else ""
        return f"#{event.iteration} finished in {event.duration_s:.1f} s{cpu}: metric {_fmt(event.metric)}{mem}{tail}"
    if isinstance(event, ev.ResultRecorded):
        worker = f" [w{event.worker}]" if event.worker else ""
        return (f"#{event.iteration}{worker} {event.status.upper():<7} {_fmt(event.metric)}  {event.description}"
                f"  [{event.reason}; best {_fmt(event.best_metric)} @ {event.best_commit[:7]}]")
    if isinstance(event, ev.BestRemeasured):
        return (f"#{event.iteration} best {event.commit[:7]} re-measured beside the candidate: {_fmt(event.metric)} "
                f"(mean of its {event.runs} runs {_fmt(event.best_metric)})")
    if isinstance(event, ev.ProgressReport):
        return "\n" + event.markdown.rstrip() + "\n"
    if isinstance(event, ev.Notice):
        return f"{event.level}: {event.message}"
    if isinstance(event, ev.LoopPaused):
        return f"paused: {event.reason}"
    if isinstance(event, ev.StopRequested):
        return "stop requested: killing the current run" if event.kill else "stop requested: finishing the current run"
    if isinstance(event, ev.LoopResumed):
        return "resumed"
    if isinstance(event, ev.SessionEnded):
        return (f"session ended ({event.reason}) after {event.iterations} iterations; best {_fmt(event.best_metric)}"
                f" @ {(event.best_commit or '-')[:7]}; summary {event.summary_path}")
    return None


class LinePrinter:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: ev.Event) -> None:
        line = describe(event)
        if line is None:
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(event.ts))
        try:
            self.stream.write(f"[{stamp}] {sanitize.block(line)}\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # the terminal went away (SSH dropped): the loop goes on, the session dir has it all
