"""Two status lines: where the loop is (project, branch, iteration, elapsed, state) and how it is
doing (best value, delta vs baseline, platform, the current run's time budget as a bar)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from autoresearch_tui.engine.state import SessionState

STATE_STYLE = {"running": "bold green", "paused": "bold yellow", "stopping": "bold yellow",
               "ended": "bold cyan", "waiting": "yellow", "replay": "bold cyan", "error": "bold red"}


def fmt_metric(value: float | None, decimals: int | None = 6) -> str:
    """Six decimals (results.tsv's own), or the precision a replayed file writes (None: as short as exact)."""
    if value is None:
        return "—"
    return f"{value:.{decimals}f}" if decimals is not None else f"{value:g}"


def fmt_clock(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def fmt_delta(best: float | None, base: float | None) -> str:
    if best is None or base is None:
        return ""
    delta = best - base
    pct = f" ({delta / abs(base) * 100:+.2f}%)" if base else ""
    return f"{delta:+.6f}{pct}"


def budget_bar(frac: float, width: int = 12) -> Text:
    """A bar of the training budget spent (0..1); full means evaluating (or over budget)."""
    text = Text("▕", style="dim")
    full = int(min(max(frac, 0.0), 1.0) * width)
    text.append("█" * full, "yellow" if frac >= 1 else "green")
    text.append("░" * (width - full), "dim")
    text.append("▏", "dim")
    return text


@dataclass
class Training:
    """What the run's log says about its training: when the first step appeared, how far it is."""

    run: object  # the RunStarted it belongs to
    started: float  # wall time the first step line was seen
    fraction: float | None = None  # the log's own progress (0..1), when it prints one


_PCT = re.compile(r"\((\d{1,3}(?:\.\d+)?)%\)")
_STEP = re.compile(r"^\s*(step|iter|epoch)\b", re.I)


def training_progress(line: str) -> tuple[bool, float | None]:
    """(is a training-step line, its progress 0..1 if it prints `(14.0%)`)."""
    if not _STEP.match(line):
        return False, None
    m = _PCT.search(line)
    return True, (min(float(m.group(1)) / 100, 1.0) if m else None)


class StatusHeader(Widget):
    DEFAULT_CSS = "StatusHeader { height: 2; background: $panel; padding: 0 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state: SessionState | None = None
        self.mode = "live"  # live | watch | replay
        self.status = "waiting"  # running | paused | stopping | ended | waiting | replay | error
        self.title = ""  # replay: the results file
        self.training: Training | None = None  # live: the current run's training progress
        self.decimals: int | None = 6  # replay: the file's own precision

    def saw_log_line(self, run, line: str) -> None:
        """The newest line of the current run's log: a step line starts or advances training."""
        is_step, fraction = training_progress(line)
        if not is_step or run is None:
            return
        if self.training is None or self.training.run is not run:
            self.training = Training(run, time.time())
        if fraction is not None:
            self.training.fraction = fraction

    def show(self, state: SessionState, status: str) -> None:
        self.state, self.status = state, status
        self.refresh()

    def render(self) -> Text:
        width = max(self.size.width - 2, 20)  # the padding
        s = self.state or SessionState()
        lines = [_fit(self._line1(s), width, "  "), _fit(self._line2(s), width, " · ")]
        return Text("\n", no_wrap=True, end="").join(lines)

    def _line1(self, s: SessionState) -> list[tuple[int, Text]]:
        """(priority, part) pairs; parts that do not fit are left out, lowest priority first."""
        parts: list[tuple[int, Text]] = []
        word = self.status
        if s.ended is not None and self.mode != "replay":
            word = f"ended ({s.ended.reason})"
        style = STATE_STYLE.get(self.status.split()[0], "bold")
        head = Text(f"■ {word.upper() if self.mode != 'replay' else word}", style)
        if self.mode == "watch":
            head.append(" [watch, read-only]", "dim")
        parts.append((9, head))
        if s.started is not None:
            project = s.started.project.rstrip("/").rsplit("/", 1)[-1]
            parts.append((8, Text(project, "bold")))
            parts.append((3, Text(s.started.branch)))
        elif self.title:
            parts.append((8, Text(self.title, "bold")))
        if self.mode == "replay":
            parts.append((7, Text(_count(len(s.rows), "experiment"))))
        else:
            total = s.config.get("max_iterations")
            parts.append((7, Text(f"#{s.iteration}/{total if total is not None else '∞'}")))
        if s.first_ts is not None:
            end = s.ended.ts if s.ended else (time.time() if self.mode != "replay" else s.last_ts)
            parts.append((6, Text(fmt_clock((end or s.first_ts) - s.first_ts))))
        return parts

    def _line2(self, s: SessionState) -> list[tuple[int, Text]]:
        parts: list[tuple[int, Text]] = []
        wide = self.size.width >= 110
        best = Text(f"best {s.metric or 'metric'} ", "dim")
        best.append(fmt_metric(s.best_metric, self.decimals), "bold green")
        delta = fmt_delta(s.best_metric, s.baseline_metric)
        if delta:
            shown = delta if wide or "(" not in delta else delta[delta.index("(") :]
            better = delta.startswith("-") == (s.direction == "min") and not delta.startswith("+0.000000")
            best.append(f" {shown}" + (" vs baseline" if wide else ""), "green" if better else "")
        parts.append((9, best))
        if len(s.runs) > 1 and self.mode != "replay":
            parts.append((8, Text(f"{len(s.runs)} runs in flight")))  # each on its line of the workers strip
        elif s.run is not None and self.mode != "replay":
            parts.append((8, self._progress(s.run, 12 if wide else 8)))
        if s.platform is not None:
            parts.append((2, Text(s.platform.platform)))
        kept = sum(r.status == "keep" for r in s.rows)
        parts.append((5, Text(f"{_count(len(s.rows), 'run')}, {kept} kept", "dim")))
        if s.prepared is not None and self.mode != "replay":
            parts.append((1, Text(f"next: {s.prepared.description}", "cyan")))
        band = s.noise_band
        if band is not None:
            parts.append((4, Text(f"noise ±{band:.4g}", "dim")))
        tokens = s.spent["tokens_in"] + s.spent["tokens_out"]
        if tokens:
            cost = f" ${s.spent['cost_usd']:.2f}" if s.spent["cost_usd"] else ""
            parts.append((3, Text(f"agent {tokens / 1000:.1f}k tok{cost}", "dim")))
        return parts

    def _progress(self, run, width: int) -> Text:
        """Training against the budget: the log's own percentage where it prints one, else the
        time since the first training step; start-up (before the first step) shown apart."""
        now = time.time()
        text = Text(f"run #{run.iteration} ")
        train = self.training
        if train is None or train.run is not run:
            text.append(f"starting {now - run.ts:.0f}s", "yellow")
            return text
        if train.fraction is not None:
            frac, label = train.fraction, f"{train.fraction * 100:.0f}%"
        else:
            spent = now - train.started
            frac = spent / run.budget_s if run.budget_s > 0 else 0.0
            label = f"{spent:.0f}/{run.budget_s:.0f}s"
        text.append_text(budget_bar(frac, width))
        text.append(f" {label}")
        text.append(f" +{train.started - run.ts:.0f}s start-up", "dim")
        return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fit(parts: list[tuple[int, Text]], width: int, first_sep: str) -> Text:
    """Join the parts with " · "; drop the least important ones until the line fits, never
    cutting a part in two unless the most important one alone is too long."""
    parts = list(parts)
    sep = 3
    while len(parts) > 1 and sum(p.cell_len for _, p in parts) + sep * (len(parts) - 1) > width:
        parts.remove(min(parts, key=lambda p: p[0]))
    text = Text(no_wrap=True, end="")
    for i, (_, part) in enumerate(parts):
        if i:
            text.append(first_sep if i == 1 else " · ")
        text.append_text(part)
    text.truncate(width, overflow="ellipsis")
    return text
