"""Phase 3: the session is over. Shows autoresearch-summary.md, the kept commits and the final
metric, then offers the merge recommendation (3.2): squash, rebase (fast-forward) or a merge
commit of the best commit into the branch the session started from, or keep the branch as is.

Git work happens in `engine.merge` on a thread worker. Nothing is ever pushed. When the
original branch moved since the session started, the first press only warns; a second press
of the same choice confirms (and even then the original branch's history is never rewritten).
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Markdown, Static

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.merge import MergePlan, MergeResult, merge_best, plan_merge
from autoresearch_tui.engine.session import SessionDir
from autoresearch_tui.engine.state import SessionState
from autoresearch_tui.errors import UserError

SUMMARY_FILE = "autoresearch-summary.md"
HOW_LABELS = {"squash": "Squash", "rebase": "Rebase", "merge": "Merge commit"}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6f}"


def load_session(session_dir: Path) -> tuple[SessionState, ev.SessionStarted | None]:
    """The folded state and the first SessionStarted (where the research began)."""
    events = SessionDir(Path(session_dir)).events()
    first = next((e for e in events if isinstance(e, ev.SessionStarted)), None)
    return SessionState().apply_all(events), first


def find_summary(session_dir: Path, project: Path, branch: str | None) -> Path | None:
    """The project's autoresearch-summary.md if it is this session's, else the session's copy."""
    candidates = [Path(project) / SUMMARY_FILE, Path(session_dir) / SUMMARY_FILE]
    existing = [p for p in candidates if p.is_file()]
    if branch:
        for path in existing:
            try:
                if branch in path.read_text(encoding="utf-8", errors="replace")[:2000]:
                    return path
            except OSError:
                continue
    return existing[0] if existing else None


class FinishScreen(Screen["MergeResult | None"]):
    """Shown when the loop ends. Dismisses with the MergeResult if a merge was done, else None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
    ]

    DEFAULT_CSS = """
    FinishScreen {
        layout: vertical;
    }
    FinishScreen #fin-title {
        height: 1;
        padding: 0 1;
        background: $success-darken-2;
        color: $text;
        text-style: bold;
    }
    FinishScreen #fin-body {
        height: 1fr;
        padding: 0 1;
    }
    FinishScreen #fin-headline {
        height: auto;
        text-style: bold;
        margin-bottom: 1;
    }
    FinishScreen #fin-kept {
        height: auto;
        margin-bottom: 1;
    }
    FinishScreen #fin-summary {
        height: auto;
    }
    FinishScreen #fin-merge {
        height: auto;
        max-height: 12;
        padding: 0 1;
        border-top: solid $primary;
    }
    FinishScreen #fin-question {
        height: auto;
    }
    FinishScreen #fin-warning {
        height: auto;
        color: $warning;
        text-style: bold;
        display: none;
    }
    FinishScreen #fin-warning.-shown {
        display: block;
    }
    FinishScreen #fin-result {
        height: auto;
        display: none;
    }
    FinishScreen #fin-result.-shown {
        display: block;
    }
    FinishScreen #fin-result.-error {
        color: $error;
        text-style: bold;
    }
    FinishScreen #fin-result.-ok {
        color: $success;
        text-style: bold;
    }
    FinishScreen #fin-buttons {
        height: 1;
        margin-top: 1;
    }
    FinishScreen #fin-buttons Button {
        margin-right: 2;
    }
    """

    def __init__(self, session_dir: Path, project: Path, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.session_dir = Path(session_dir)
        self.project = Path(project)
        self.state, self.first_start = load_session(self.session_dir)
        self.plan: MergePlan | None = None
        self.result: MergeResult | None = None
        self.pending_moved: str | None = None  # the choice waiting for its second (confirming) press
        self.busy = False
        self.kept_as_is = False  # "Keep branch as is" was chosen (a merge stays possible)

    # -- facts from the events -------------------------------------------------------------
    @property
    def started(self) -> ev.SessionStarted | None:
        return self.first_start or self.state.started

    @property
    def best_commit(self) -> str | None:
        if self.state.ended and self.state.ended.best_commit:
            return self.state.ended.best_commit
        return self.state.best_commit

    @property
    def best_metric(self) -> float | None:
        if self.state.ended and self.state.ended.best_metric is not None:
            return self.state.ended.best_metric
        return self.state.best_metric

    def metric_spec(self) -> tuple[str, str]:
        spec = str(self.state.config.get("metric") or "")
        name, _, direction = spec.partition(":")
        return name or "metric", direction or str(self.state.config.get("direction") or "min")

    def kept(self) -> list[ev.ResultRecorded]:
        return [r for r in self.state.results if r.status == "keep"]

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        started = self.started
        branch = started.branch if started else "?"
        reason = self.state.ended.reason if self.state.ended else "not finished"
        yield Static(f"Session finished — {branch} ({reason.replace('_', ' ')})", id="fin-title", markup=False)
        with VerticalScroll(id="fin-body"):
            yield Static(self._headline(), id="fin-headline", markup=False)
            yield Static(self._kept_text(), id="fin-kept", markup=False)
            summary = find_summary(self.session_dir, self.project, started.branch if started else None)
            text = summary.read_text(encoding="utf-8", errors="replace") if summary else \
                f"*No {SUMMARY_FILE} in {self.project} or {self.session_dir}.*"
            yield Markdown(text, id="fin-summary")
        with Vertical(id="fin-merge"):
            yield Static(self._question(), id="fin-question", markup=False)
            yield Static("", id="fin-warning", markup=False)
            yield Static("", id="fin-result", markup=False)
            with Horizontal(id="fin-buttons"):
                yield Button("Squash", id="merge-squash", compact=True, disabled=True)
                yield Button("Rebase", id="merge-rebase", compact=True, disabled=True)
                yield Button("Merge commit", id="merge-merge", compact=True, disabled=True)
                yield Button("Keep branch as is", id="merge-keep", variant="primary", compact=True)
                yield Button("Close", id="fin-close", compact=True)
        yield Footer()

    def _headline(self) -> str:
        name, direction = self.metric_spec()
        best, base = self.best_metric, self.state.baseline_metric
        parts = [f"Final {name}: {_fmt(best)} ({direction})"]
        if best is not None and base is not None:
            delta = best - base
            pct = f" ({delta / base * 100:+.2f}%)" if base else ""
            parts.append(f"baseline {_fmt(base)}, {delta:+.6f}{pct}")
        if self.best_commit:
            parts.append(f"best commit {self.best_commit[:7]}")
        parts.append(f"{self.state.iteration} iteration{'s' * (self.state.iteration != 1)}")
        return " · ".join(parts)

    def _kept_text(self) -> str:
        kept = self.kept()
        if not kept:
            return "Kept commits: none (no results recorded)."
        best = (self.best_commit or "")[:7]
        lines = [f"Kept commits ({len(kept)}, best last):"]
        for r in kept:
            mark = "  ← best" if r.commit[:7] == best else ""
            lines.append(f"  #{r.iteration:<3} {r.commit[:7]}  {_fmt(r.metric):>10}  {r.description}{mark}")
        return "\n".join(lines)

    def _question(self) -> str:
        started = self.started
        if started is None:
            return "No session start in the events: nothing to merge."
        best = (self.best_commit or "?")[:7]
        return (f"Merge the best commit {best} into {started.original_branch}? Squash (one commit), rebase "
                f"(fast-forward) or merge commit; or keep {started.branch} as is. Nothing is pushed.")

    def on_mount(self) -> None:
        self._primary("merge-keep")  # until the plan says a merge is possible
        self.refresh_plan()

    def _primary(self, button_id: str) -> None:
        """The one primary button is the one with focus: Enter does what the screen suggests."""
        for button in self.query(Button):
            button.variant = "primary" if button.id == button_id else "default"
        self.query_one(f"#{button_id}", Button).focus()

    # -- plan (thread worker) ----------------------------------------------------------------
    def refresh_plan(self) -> None:
        started, best = self.started, self.best_commit
        if started is None or not best:
            self._set_warning("Nothing to merge: the session has no start event or no best commit.")
            return
        self._plan_worker(started.branch, started.original_branch, started.base_commit, best)

    @work(thread=True, exclusive=True, group="finish-plan")
    def _plan_worker(self, research: str, original: str, base: str, best: str) -> None:
        try:
            plan: MergePlan | str = plan_merge(self.project, research_branch=research, original_branch=original,
                                               base_commit=base, best_commit=best)
        except UserError as exc:
            plan = str(exc)
        except Exception as exc:  # noqa: BLE001 - a git failure is shown, not raised into the UI
            plan = f"cannot inspect the repository: {exc}"
        try:
            self.app.call_from_thread(self._apply_plan, plan)
        except RuntimeError:
            pass

    def _apply_plan(self, plan: MergePlan | str) -> None:
        if isinstance(plan, str):
            self.plan = None
            self._set_warning(plan)
            self._enable(False)
            return
        self.plan = plan
        if plan.problem:
            self._set_warning(f"Cannot merge: {plan.problem}.")
        elif plan.nothing_to_merge:
            self._set_warning("Nothing to merge: the best commit is the baseline (no kept change).")
        elif plan.already_merged:
            self._set_warning(f"{plan.original_branch} already contains the best commit.")
        elif plan.dirty:
            self._set_warning(f"The working tree has uncommitted changes ({', '.join(plan.dirty[:5])}); "
                              "commit or stash them, then choose again.")
        elif plan.moved:
            self._set_warning(self._moved_text(plan))
        else:
            self._set_warning("")
        mergeable = not (plan.problem or plan.nothing_to_merge or plan.already_merged) and self.result is None
        self._enable(mergeable)
        if self.result is None and not self.kept_as_is:
            self._primary("merge-squash" if mergeable and not plan.dirty else "merge-keep")

    @staticmethod
    def _moved_text(plan: MergePlan) -> str:
        head = (plan.original_head or "?")[:7]
        return (f"⚠ {plan.original_branch} moved since the session started ({plan.base_commit[:7]} → {head}): "
                f"the change lands on top, its history is kept. Press a choice twice to confirm.")

    def _set_warning(self, text: str) -> None:
        warning = self.query_one("#fin-warning", Static)
        warning.update(text)
        warning.set_class(bool(text), "-shown")

    def _set_result(self, text: str, ok: bool) -> None:
        result = self.query_one("#fin-result", Static)
        result.update(text)
        result.set_class(True, "-shown")
        result.set_class(ok, "-ok")
        result.set_class(not ok, "-error")

    def _enable(self, enabled: bool) -> None:
        for how in HOW_LABELS:
            self.query_one(f"#merge-{how}", Button).disabled = not enabled

    # -- choices ---------------------------------------------------------------------------
    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id or ""
        if button == "merge-keep":
            self.keep()
        elif button == "fin-close":
            self.action_close()
        elif button.startswith("merge-"):
            self.choose(button.removeprefix("merge-"))

    def keep(self) -> None:
        started = self.started
        branch = started.branch if started else "the research branch"
        if self.result is None:
            self._set_result(f"Kept {branch} as is; nothing was merged. Enter closes; a merge is still "
                             "possible above.", ok=True)
        self.kept_as_is = True
        self.pending_moved = None
        self._primary("fin-close")

    def choose(self, how: str) -> None:
        """First press of a choice on a moved branch warns; the second press confirms."""
        started, best = self.started, self.best_commit
        if self.busy or started is None or not best or self.result is not None:
            return
        plan = self.plan
        allow_moved = False
        if plan is not None and plan.moved:
            if self.pending_moved != how:
                self.pending_moved = how
                self._set_warning(self._moved_text(plan) + f" Press {HOW_LABELS[how]} again to confirm.")
                return
            allow_moved = True
        self.pending_moved = None
        self.busy = True
        self._enable(False)
        self._set_result(f"{HOW_LABELS[how]}: working…", ok=True)
        self._merge_worker(how, started.branch, started.original_branch, started.base_commit, best, allow_moved)

    @work(thread=True, exclusive=True, group="finish-merge")
    def _merge_worker(self, how: str, research: str, original: str, base: str, best: str,
                      allow_moved: bool) -> None:
        try:
            outcome: MergeResult | str = merge_best(self.project, research_branch=research, original_branch=original,
                                                    base_commit=base, best_commit=best, how=how,
                                                    allow_moved=allow_moved)
        except UserError as exc:
            outcome = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown on the screen, the repository was restored
            outcome = f"the {how} failed: {exc}"
        try:
            self.app.call_from_thread(self._apply_merge, outcome)
        except RuntimeError:
            pass

    def _apply_merge(self, outcome: MergeResult | str) -> None:
        self.busy = False
        if isinstance(outcome, str):
            self._set_result(f"✗ {outcome}", ok=False)
            self.refresh_plan()
            return
        self.result = outcome
        self._set_result(f"✓ {outcome.done}. {outcome.original_branch}: {outcome.before[:7]} → {outcome.after[:7]} "
                         f"(checked out). Nothing was pushed. Esc closes.", ok=True)
        self._set_warning("")
        self._enable(False)
        self._primary("fin-close")

    def action_close(self) -> None:
        if self.busy:
            self.notify("a merge is running; wait for it to finish", severity="warning", markup=False)
            return
        self.dismiss(self.result)
