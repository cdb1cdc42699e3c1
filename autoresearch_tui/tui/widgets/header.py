"""Two status lines: where the loop is (project, branch, iteration, elapsed, state) and how it is
doing (best value, delta vs baseline, platform, the current run's time budget as a bar)."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widget import Widget

from autoresearch_tui.engine.state import SessionState

STATE_STYLE = {"running": "bold green", "paused": "bold yellow", "stopping": "bold yellow",
               "ended": "bold cyan", "waiting": "yellow", "replay": "bold cyan", "error": "bold red"}


def fmt_metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


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


def budget_bar(elapsed: float, budget: float, limit: float, width: int = 12) -> Text:
    """A bar of the training budget; past the budget (start-up and eval) it fills in another style."""
    text = Text("▕", style="dim")
    if budget <= 0:
        return text.append("?" * width + "▏")
    frac = min(elapsed / budget, 1.0)
    full = int(frac * width)
    over = elapsed > budget
    text.append("█" * full, "yellow" if over else "green")
    text.append("░" * (width - full), "dim")
    text.append("▏", "dim")
    return text


class StatusHeader(Widget):
    DEFAULT_CSS = "StatusHeader { height: 2; background: $panel; padding: 0 1; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state: SessionState | None = None
        self.mode = "live"  # live | watch | replay
        self.status = "waiting"  # running | paused | stopping | ended | waiting | replay | error
        self.title = ""  # replay: the results file

    def show(self, state: SessionState, status: str) -> None:
        self.state, self.status = state, status
        self.refresh()

    def render(self) -> Text:
        width = max(self.size.width, 20)
        s = self.state or SessionState()
        lines = [self._line1(s), self._line2(s)]
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return Text("\n", no_wrap=True, end="").join(lines)

    def _line1(self, s: SessionState) -> Text:
        text = Text(no_wrap=True, end="")
        word = self.status
        if s.ended is not None and self.mode != "replay":
            word = f"ended ({s.ended.reason})"
        style = STATE_STYLE.get(self.status.split()[0], "bold")
        text.append(f"■ {word.upper() if self.mode != 'replay' else word}", style)
        if self.mode == "watch":
            text.append(" [watch, read-only]", "dim")
        if s.started is not None:
            project = s.started.project.rstrip("/").rsplit("/", 1)[-1]
            text.append(f"  {project}", "bold")
            text.append(f" · {s.started.branch}")
        elif self.title:
            text.append(f"  {self.title}", "bold")
        if self.mode == "replay":
            text.append(f" · {len(s.rows)} experiments")
        else:
            total = s.config.get("max_iterations")
            text.append(f" · #{s.iteration}/{total if total is not None else '∞'}")
        if s.first_ts is not None:
            end = s.ended.ts if s.ended else (time.time() if self.mode != "replay" else s.last_ts)
            text.append(f" · {fmt_clock((end or s.first_ts) - s.first_ts)}")
        return text

    def _line2(self, s: SessionState) -> Text:
        text = Text(no_wrap=True, end="")
        wide = self.size.width >= 110
        text.append(f"best {s.metric or 'metric'} ", "dim")
        text.append(fmt_metric(s.best_metric), "bold green")
        delta = fmt_delta(s.best_metric, s.baseline_metric)
        if delta:
            shown = delta if wide or "(" not in delta else delta[delta.index("(") :]
            better = delta.startswith("-") == (s.direction == "min") and not delta.startswith("+0.000000")
            text.append(f" {shown}" + (" vs baseline" if wide else ""), "green" if better else "")
        if len(s.runs) > 1 and self.mode != "replay":
            text.append(f" · {len(s.runs)} runs in flight")  # each on its line of the workers strip
        elif s.run is not None and self.mode != "replay":
            elapsed = time.time() - s.run.ts
            text.append(f" · run #{s.run.iteration} ")
            text.append_text(budget_bar(elapsed, s.run.budget_s, s.run.limit_s, 12 if wide else 8))
            text.append(f" {elapsed:.0f}/{s.run.budget_s:.0f}s")
        if s.platform is not None:
            text.append(f" · {s.platform.platform}")
        kept = sum(r.status == "keep" for r in s.rows)
        text.append(f" · {len(s.rows)} runs, {kept} kept", "dim")
        if s.prepared is not None and self.mode != "replay":
            text.append(f" · next: {s.prepared.description}", "cyan")
        band = s.noise_band
        if band is not None:
            text.append(f" · noise ±{band:.4g}", "dim")
        tokens = s.spent["tokens_in"] + s.spent["tokens_out"]
        if tokens:
            cost = f" ${s.spent['cost_usd']:.2f}" if s.spent["cost_usd"] else ""
            text.append(f" · agent {tokens / 1000:.1f}k tok{cost}", "dim")
        return text
