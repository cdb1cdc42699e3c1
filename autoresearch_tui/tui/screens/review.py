"""`review = true`: a proposal waits for the human. Approve runs it, reject drops it, edit lets
you change the training script first (the engine amends the commit)."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from autoresearch_tui.engine.control import ReviewAnswer
from autoresearch_tui.engine.events import ReviewRequested
from autoresearch_tui.tui.widgets.diff_view import DiffView


class ReviewScreen(ModalScreen[ReviewAnswer | None]):
    """Dismisses with the answer (`source` for an edit only); None leaves the review pending."""

    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("x", "reject", "Reject"),
        Binding("e", "edit", "Edit"),
        Binding("ctrl+s", "save", "Save edit", show=False),
        Binding("escape", "later", "Later"),
    ]

    def __init__(self, review: ReviewRequested, source: str | None = None) -> None:
        super().__init__()
        self.review = review
        self.source = source  # the training script as proposed (for editing), if it could be read
        self.editing = False

    def compose(self) -> ComposeResult:
        with Vertical(id="review-body", classes="dialog") as body:
            body.border_title = Text(f"Review #{self.review.iteration}: {self.review.description}")
            body.border_subtitle = "a approve · x reject · e edit · esc later"
            yield DiffView(id="review-diff")
            yield TextArea(self.source or "", id="review-edit", show_line_numbers=True)
            yield Static("", id="review-hint")

    def on_mount(self) -> None:
        self.query_one(DiffView).show(self.review.diff)
        self.query_one(TextArea).display = False
        self.query_one(DiffView).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "reject", "edit"):
            return not self.editing
        if action == "save":
            return self.editing
        return True

    def _answer(self, decision: str, source: str | None = None) -> None:
        self.dismiss(ReviewAnswer(decision, self.review.iteration, source))

    def action_approve(self) -> None:
        self._answer("approve")

    def action_reject(self) -> None:
        self._answer("reject")

    def action_edit(self) -> None:
        if self.source is None:
            self.notify("the training script could not be read; approve or reject", severity="warning")
            return
        self.editing = True
        self.query_one(DiffView).display = False
        area = self.query_one(TextArea)
        area.display = True
        area.focus()
        self.query_one("#review-hint", Static).update("ctrl+s runs the edited script · esc cancels the edit")
        self.refresh_bindings()

    def action_save(self) -> None:
        self._answer("edit", source=self.query_one(TextArea).text)

    def action_later(self) -> None:
        if self.editing:
            self.editing = False
            self.query_one(TextArea).display = False
            self.query_one(DiffView).display = True
            self.query_one(DiffView).focus()
            self.query_one("#review-hint", Static).update("")
            self.refresh_bindings()
            return
        self.dismiss(None)


class ReviewFlow:
    """The live screen's side: open the dialog when a review is pending, send the answer.

    Mixed into LiveScreen; uses its `state`, `read_only`, `_send` and `_review_open`.
    """

    def _follow_review(self) -> None:
        review = self.state.review
        if review is None:
            if self._review_open is not None and type(self.app.screen).__name__ == "ReviewScreen":
                self.app.screen.dismiss(None)  # answered elsewhere
            self._review_open = None
            self.refresh_bindings()
            return
        if self._review_open is review:
            return
        if self.read_only:
            self.notify(f"#{review.iteration} waits for a review in the live screen", timeout=8)
            self._review_open = review
            return
        self.refresh_bindings()
        self.action_review()

    def action_review(self) -> None:
        review = self.state.review
        if review is None or self.read_only:
            return
        self._review_open = review
        started = self.state.started
        script = Path(started.project) / str(self.state.config.get("train_script", "train.py")) if started else None

        def load() -> None:
            try:
                source = script.read_text(encoding="utf-8") if script is not None else None
            except OSError:
                source = None
            self.app.call_from_thread(self._open_review, review, source)

        self.run_worker(load, thread=True, name="read train script")

    def _open_review(self, review, source: str | None) -> None:
        if self.state.review is not review:
            return
        if isinstance(self.app.screen, ReviewScreen):
            self.app.screen.dismiss(None)  # an older review, answered elsewhere

        def answered(answer: ReviewAnswer | None) -> None:
            if answer is None:
                self.notify("the proposal waits for your review: press v", timeout=5)
                return
            self._send(answer)
            self.notify(f"#{review.iteration}: {answer.decision}", timeout=3)

        self.app.push_screen(ReviewScreen(review, source), answered)
