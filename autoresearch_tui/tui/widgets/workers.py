"""Parallel workers, one line each: device, candidate, elapsed, the run's last log line.

    ▶ w1 cuda:1  #12 MATRIX_LR 0.04 -> 0.05   01:23  step 00420 (42.0%) | loss: 3.1
      w2 cuda:2  idle · #9 discard 0.991200

Shown above the panes of the live / watch screen once more than one worker has run something.
`▶` marks the worker whose log (and candidate) the panes show. When there are more workers than
lines, the lines scroll to keep that worker in view.
"""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.tui.widgets.header import fmt_clock, fmt_metric

STATUS_STYLE = {"keep": "green", "discard": "", "crash": "red"}


def _fit(text: str, width: int) -> Text:
    """`text` in exactly `width` cells (cut with an ellipsis)."""
    out = Text(text, no_wrap=True, end="")
    out.truncate(max(width, 0), overflow="ellipsis", pad=True)
    return out


class WorkersStrip(Widget):
    DEFAULT_CSS = """
    WorkersStrip { height: 0; padding: 0 1; background: $boost; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state: SessionState | None = None
        self.tails: dict[int, str] = {}
        self.shown: int | None = None  # the worker the log pane follows
        self.pinned = False  # chosen with `w` (else: automatic)
        self.max_lines = 4

    def show(self, state: SessionState, shown: int | None, pinned: bool) -> None:
        self.state, self.shown, self.pinned = state, shown, pinned
        lines = min(len(state.workers), self.max_lines) if state.multi_worker else 0
        if self.styles.height is None or self.styles.height.value != lines:
            self.styles.height = lines
        self.display = lines > 0
        self.refresh()

    def set_tails(self, tails: dict[int, str]) -> None:
        self.tails = tails
        self.refresh()

    def window(self) -> list[int]:
        """The workers on screen: all of them, or a window that holds the followed one."""
        s = self.state
        workers = sorted(s.workers) if s is not None else []
        room = max(1, self.max_lines)
        if len(workers) <= room:
            return workers
        at = workers.index(self.shown) if self.shown in workers else 0
        start = min(max(0, at - room + 1), len(workers) - room)
        return workers[start:start + room]

    def render(self) -> Text:
        s = self.state
        if s is None or not s.workers:
            return Text("")
        width = max(self.size.width, 20)
        workers = self.window()
        dev_w = max(cell_len(s.workers[w].device or "?") for w in s.workers)
        num_w = max(len(f"w{w}") for w in s.workers)
        it_w = max(len(f"#{r.iteration}") for r in s.workers.values())
        fixed = 2 + num_w + 1 + dev_w + 2 + it_w + 1
        rest = max(width - fixed, 10)
        desc_w = min(max(12, rest * 2 // 5), 40)
        now = time.time()
        lines = []
        for w in workers:
            last = s.workers[w]
            run = s.runs.get(w)
            mine = w == self.shown
            line = Text(no_wrap=True, end="")
            line.append("▶ " if mine else "  ", "bold yellow" if mine and self.pinned else "bold")
            line.append(f"w{w}".ljust(num_w), "bold" if mine else "")
            line.append(" ")
            line.append_text(_fit(last.device or "?", dev_w))
            line.append("  ")
            if run is not None:
                line.append(f"#{run.iteration}".rjust(it_w), "bold")
                line.append(" ")
                desc = "baseline" if run.iteration == 0 else (run.description or self._description(run.iteration))
                line.append_text(_fit(desc, desc_w))
                elapsed = now - run.ts
                over = run.budget_s > 0 and elapsed > run.budget_s
                line.append(f"  {fmt_clock(elapsed)}", "yellow" if over else "green")
                tail = self.tails.get(w, "")
                if tail:
                    line.append("  ")
                    line.append(tail, "dim")
            else:
                line.append("idle", "dim italic")
                result = s.worker_results.get(w)
                if result is not None:
                    line.append(f" · last #{result.iteration} ", "dim")
                    line.append(f"{result.status} {fmt_metric(result.metric)}",
                                STATUS_STYLE.get(result.status, "") + " dim")
            line.truncate(width, overflow="ellipsis")
            lines.append(line)
        return Text("\n", no_wrap=True, end="").join(lines)

    def _description(self, iteration: int) -> str:
        proposal = self.state.proposals.get(iteration) if self.state is not None else None
        return proposal.description if proposal is not None else ""
