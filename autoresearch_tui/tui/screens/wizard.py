"""The config wizard (Phase 0 and Phase 1 of the spec): one field per parameter, validated as
you type, the platform detected in the background, then the Research Config table to confirm.

Keyboard: Tab / Shift-Tab between fields, Enter continues (form -> confirmation -> Start),
Esc goes back (confirmation -> form -> cancel). Start writes autoresearch.toml and dismisses
the screen with the final ResearchConfig; cancel dismisses with None.

All checks live in `engine.preflight` (pure) and `engine.hardware` (the probe); git runs in a
thread worker, never on the UI thread.
"""

from __future__ import annotations

import asyncio

import copy
import os
from pathlib import Path
import shlex
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, ContentSwitcher, Footer, Input, Label, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from autoresearch_tui.engine import hardware, preflight
from autoresearch_tui.engine.config import CONFIG_FILE, ResearchConfig
from autoresearch_tui.errors import UserError
from autoresearch_tui.tui.screens.wizard_fields import FieldSpec, field_specs

def _fid(key: str) -> str:
    return f"f-{key}"


class WizardScreen(Screen["ResearchConfig | None"]):
    """Phase 0: collect and confirm the research config. Dismisses with the config or None."""

    BINDINGS = [
        Binding("escape", "back", "Back / cancel"),
        Binding("ctrl+n", "advance", "Continue / start", show=True),
    ]

    # Its rules live in the app's one stylesheet; named here so the screen also works alone.
    CSS_PATH = str(Path(__file__).resolve().parents[1] / "app.tcss")

    def __init__(self, config: ResearchConfig, demo: bool = False, *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.base = config
        self.demo = demo
        self.specs = field_specs()
        self.initial = preflight.field_values(config)
        self.errors: dict[str, str | None] = {}
        self.touched: set[str] = {k for k, v in self.initial.items() if v}
        self.git_error: str | None = None
        self.branch_error: str | None = None
        self.git_checked_tag: str | None = None
        self.agent_error: str | None = None
        self.agent_checked: str | None = None
        self.platform: hardware.Platform | None = None
        self.platform_error: str | None = None
        self.platform_argv: list[str] | None = None
        self.final: ResearchConfig | None = None
        self.table_text: str = ""
        self.step = "form"
        self._git_worker: Worker[Any] | None = None
        self._last_default_command = preflight.default_command(config)

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        title = "AutoResearch — research config" + (" (demo project)" if self.demo else "")
        yield Static(f"{title} · {self.base.project}", id="wiz-title", markup=False)
        with Vertical(id="wiz-status"):
            yield Static("", id="wiz-git", markup=False)
            yield Static("Platform: detecting…", id="wiz-platform", markup=False)
            yield Static("", id="wiz-platform-notes", markup=False)
        with ContentSwitcher(initial="wiz-step-form", id="wiz-steps"):
            with Vertical(id="wiz-step-form", classes="wiz-step"):
                with VerticalScroll(id="wiz-form"):
                    for spec in self.specs:
                        yield from self._compose_field(spec)
                with Horizontal(classes="wiz-buttons"):
                    yield Button("Cancel", id="wiz-cancel", compact=True)
                    yield Button("Continue ▸", id="wiz-continue", variant="primary", compact=True)
                    yield Static("Tab: next · Enter: continue · Esc: cancel", classes="wiz-hint", markup=False)
            with Vertical(id="wiz-step-confirm", classes="wiz-step"):
                with VerticalScroll(id="wiz-confirm-body"):
                    yield Static("", id="wiz-table", markup=False)
                    yield Static("", id="wiz-confirm-extra", markup=False)
                    yield Static("", id="wiz-confirm-error", markup=False)
                with Horizontal(classes="wiz-buttons"):
                    yield Button("◂ Back", id="wiz-back", compact=True)
                    yield Button("Start", id="wiz-start", variant="success", compact=True)
                    yield Static("Enter: start · Esc: back", classes="wiz-hint", markup=False)
        yield Footer()

    def _compose_field(self, spec: FieldSpec) -> ComposeResult:
        value = self.initial.get(spec.key, "")
        with Vertical(classes="wiz-field", id=f"wiz-field-{spec.key}"):
            with Horizontal(classes="wiz-row"):
                yield Label(spec.label, classes="wiz-label")
                if spec.options is not None:
                    values = [v for _, v in spec.options]
                    fallback = "all" if "all" in values else values[0]  # the spec's default / builtin
                    yield Select(spec.options, value=value if value in values else fallback,
                                 allow_blank=False, compact=True, id=_fid(spec.key))
                else:
                    yield Input(value=value, placeholder=spec.placeholder, compact=True, id=_fid(spec.key))
            yield Static(self._help(spec.key, value), classes="wiz-help", id=f"help-{spec.key}",
                         markup=False)
            yield Static("", classes="wiz-error", id=f"err-{spec.key}", markup=False)

    def _help(self, key: str, value: str) -> str:
        spec = next(s for s in self.specs if s.key == key)
        if key == "tag" and value.strip():
            return f"Creates branch autoresearch/{value.strip()} (default: today)."
        return spec.help

    def on_mount(self) -> None:
        self.query_one(f"#{_fid('train_script')}", Input).focus()
        self.validate_all()
        self.start_git_check()
        self.start_platform_detection()
        self.set_interval(3.0, self._recheck_git_if_broken)

    # -- values ----------------------------------------------------------------------------
    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for spec in self.specs:
            widget = self.query_one(f"#{_fid(spec.key)}")
            if isinstance(widget, Select):
                out[spec.key] = "" if widget.value is Select.NULL else str(widget.value)
            else:
                assert isinstance(widget, Input)
                out[spec.key] = widget.value
        return out

    def validate_all(self) -> dict[str, str | None]:
        values = self.values()
        for spec in self.specs:
            self.errors[spec.key] = preflight.field_error(spec.key, values[spec.key], values, self.base.project)
        if not self.errors.get("tag") and self.branch_error and self.git_checked_tag == values["tag"].strip():
            self.errors["tag"] = self.branch_error
        if not self.errors.get("agent") and self.agent_error and self.agent_checked == values["agent"]:
            self.errors["agent"] = self.agent_error
        self._show_errors()
        return dict(self.errors)

    def _show_errors(self) -> None:
        for spec in self.specs:
            message = self.errors.get(spec.key)
            shown = bool(message) and spec.key in self.touched
            err = self.query_one(f"#err-{spec.key}", Static)
            err.update(f"✗ {message}" if shown else "")
            err.set_class(shown, "-shown")
            widget = self.query_one(f"#{_fid(spec.key)}")
            widget.set_class(shown, "-invalid")
        self._update_buttons()

    @property
    def valid(self) -> bool:
        return not any(self.errors.values()) and self.git_error is None

    def _update_buttons(self) -> None:
        self.query_one("#wiz-start", Button).disabled = not self.valid

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("f-")
        if not key:
            return
        self.touched.add(key)
        if key == "train_script":
            self._follow_default_command(event.value)
        if key == "tag":
            self.query_one("#help-tag", Static).update(self._help("tag", event.value))
            self.start_git_check()
        self.validate_all()

    @on(Input.Blurred)
    def _input_blurred(self, event: Input.Blurred) -> None:
        key = (event.input.id or "").removeprefix("f-")
        if key:
            self.touched.add(key)
            self.validate_all()

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        if event.select.id == _fid("agent"):
            self.touched.add("agent")
            self.start_git_check()
        self.validate_all()

    def _follow_default_command(self, train_script: str) -> None:
        """Keep the command at the default while the user has not edited it."""
        command = self.query_one(f"#{_fid('train_command')}", Input)
        new_default = preflight.default_command(self.base, train_script.strip() or "train.py")
        if command.value == self._last_default_command:
            command.value = new_default
        self._last_default_command = new_default

    # -- git (thread worker) -----------------------------------------------------------------
    def start_git_check(self) -> None:
        """Git state, the branch for the tag and the agent, checked on a thread."""
        values = self.values()
        self._git_worker = self._git_check(values["tag"].strip(), values["agent"])

    @work(thread=True, exclusive=True, group="wizard-git")
    def _git_check(self, tag: str, agent: str) -> None:
        git_problem = preflight.git_error(self.base.project)
        branch_problem = preflight.branch_error(self.base.project, tag, self.base.session_dir) if tag else None
        probe = copy.copy(self.base)
        probe.agent = agent
        agent_problem = preflight.agent_error(probe) if agent in preflight.agent_names() else None
        if get_current_worker().is_cancelled:
            return
        try:
            self.app.call_from_thread(self._apply_git, tag, agent, git_problem, branch_problem, agent_problem)
        except RuntimeError:
            pass  # the app is shutting down

    def _apply_git(self, tag: str, agent: str, git_problem: str | None, branch_problem: str | None,
                   agent_problem: str | None = None) -> None:
        if not self.is_attached:
            return  # a check that finished after the screen closed
        self.git_error = git_problem
        self.branch_error = branch_problem
        self.git_checked_tag = tag
        self.agent_error = agent_problem
        self.agent_checked = agent
        git_line = self.query_one("#wiz-git", Static)
        git_line.update(f"✗ Git: {git_problem}" if git_problem else "")
        git_line.set_class(bool(git_problem), "-error")
        if branch_problem:
            self.touched.add("tag")
        self.validate_all()

    def _recheck_git_if_broken(self) -> None:
        if self.git_error and (self._git_worker is None or self._git_worker.is_finished):
            self.start_git_check()

    async def _wait_git(self) -> None:
        worker = self._git_worker
        if worker is not None and worker.state in (WorkerState.PENDING, WorkerState.RUNNING):
            try:
                await worker.wait()
            except Exception:  # noqa: BLE001 - cancelled by a newer check or failed: use what we have
                pass

    # -- platform (async worker) -------------------------------------------------------------
    def start_platform_detection(self, config: ResearchConfig | None = None) -> None:
        config = config or self.base
        try:
            argv = config.command_argv()
        except ValueError:
            return
        if argv == self.platform_argv and (self.platform is not None or self.platform_error):
            return
        self.platform_argv = argv
        self.platform = None
        self.query_one("#wiz-platform", Static).update(f"Platform: detecting with {shlex.join(argv[:1])}…")
        self.query_one("#wiz-platform-notes", Static).update("")
        self._detect(config, argv)

    @work(exclusive=True, group="wizard-platform")
    async def _detect(self, config: ResearchConfig, argv: list[str]) -> None:
        try:
            platform = await hardware.detect(argv, config.train_script, config.project, dict(os.environ),
                                             config.device)
        except Exception as exc:  # noqa: BLE001 - detect() already falls back; this is a last resort
            self.platform_error = str(exc)
            self.query_one("#wiz-platform", Static).update(f"Platform: detection failed ({exc}); assuming CPU")
            return
        self.platform = platform
        self.platform_error = None
        extra = f", torch {platform.torch_version}" if platform.torch_version else ""
        name = platform.details.get("device_name")
        self.query_one("#wiz-platform", Static).update(
            f"Platform: {platform.describe()}" + (f" · {name}" if name else "") + extra)
        self.query_one("#wiz-platform-notes", Static).update(f"Adjustments: {platform.notes}" if platform.notes else "")
        if self.step == "confirm" and self.final is not None:
            self._render_confirm(self.final)

    def platform_text(self) -> str:
        if self.platform is not None:
            return self.platform.describe()
        if self.platform_error:
            return "CPU (detection failed)"
        return "[detecting…]"

    # -- steps -----------------------------------------------------------------------------
    @on(Input.Submitted)
    async def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.action_advance()

    @on(Button.Pressed)
    async def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button.id
        if button == "wiz-cancel":
            self.dismiss(None)
        elif button == "wiz-continue":
            await self.to_confirm()
        elif button == "wiz-back":
            self.to_form()
        elif button == "wiz-start":
            await self.start()

    async def action_advance(self) -> None:
        if self.step == "form":
            await self.to_confirm()
        else:
            await self.start()

    def action_back(self) -> None:
        if self.step == "confirm":
            self.to_form()
        else:
            self.dismiss(None)

    async def to_confirm(self) -> bool:
        """Validate everything; show the confirmation step, or focus the first problem."""
        self.touched.update(s.key for s in self.specs)
        self.start_git_check()  # fresh: the user may have fixed the repository meanwhile
        await self._wait_git()
        self.validate_all()
        bad = next((s.key for s in self.specs if self.errors.get(s.key)), None)
        if bad is not None:
            widget = self.query_one(f"#{_fid(bad)}")
            widget.focus()
            self.query_one("#wiz-form", VerticalScroll).scroll_to_widget(
                self.query_one(f"#wiz-field-{bad}"), animate=False)
            self.notify(f"{self._label(bad)}: {self.errors[bad]}", severity="error", timeout=4, markup=False)
            return False
        if self.git_error:
            self.notify(f"Git: {self.git_error}", severity="error", timeout=6, markup=False)
            return False
        try:
            config = preflight.build_config(self.base, self.values())
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=6, markup=False)
            return False
        self.final = config
        self.start_platform_detection(config)
        self.step = "confirm"
        self.add_class("-confirm")
        self._render_confirm(config)
        self.query_one("#wiz-confirm-error", Static).set_class(False, "-shown")
        self.query_one(ContentSwitcher).current = "wiz-step-confirm"
        self._update_buttons()
        self.query_one("#wiz-start", Button).focus()
        return True

    def _render_confirm(self, config: ResearchConfig) -> None:
        self.table_text = config.table(platform=self.platform_text())
        self.query_one("#wiz-table", Static).update(self.table_text)
        lines = [
            f"Command: {shlex.join(config.command_argv())}",
            f"Agent: {config.agent} · seed {config.seed}",
        ]
        if config.hypothesis:
            lines.append(f"Hypothesis: {config.hypothesis}")
        if self.platform is not None and self.platform.notes:
            lines.append(f"Platform adjustments: {self.platform.notes}")
        lines.append(f"Start saves this as {config.project / CONFIG_FILE} and creates {config.branch}.")
        self.query_one("#wiz-confirm-extra", Static).update("\n".join(lines))

    def to_form(self) -> None:
        self.step = "form"
        self.remove_class("-confirm")
        self.query_one(ContentSwitcher).current = "wiz-step-form"
        self.query_one(f"#{_fid('train_script')}", Input).focus()

    async def start(self) -> None:
        """Re-check, save autoresearch.toml, dismiss with the config."""
        if self.step != "confirm" or self.final is None:
            return
        self.start_git_check()
        await self._wait_git()
        self.validate_all()
        error = self.query_one("#wiz-confirm-error", Static)
        if not self.valid:
            problem = self.git_error or next((f"{self._label(k)}: {m}" for k, m in self.errors.items() if m), "")
            error.update(f"✗ Cannot start: {problem}")
            error.set_class(True, "-shown")
            return
        config = self.final
        try:
            written = self._save(config)
        except OSError as exc:
            error.update(f"✗ Cannot write {CONFIG_FILE}: {exc}")
            error.set_class(True, "-shown")
            return
        if written and self.demo:  # the demo's own repository: commit it rather than leave it untracked
            from autoresearch_tui.demo import commit_config

            await asyncio.to_thread(commit_config, config.project)
        elif written:  # a tracked autoresearch.toml that changed makes the tree dirty: say so now
            self.start_git_check()
            await self._wait_git()
            if self.git_error and CONFIG_FILE in self.git_error:
                error.update(f"✗ {CONFIG_FILE} is tracked by git and now holds these values, so the tree is "
                             f"not clean: commit it (git commit -m 'research config' {CONFIG_FILE}), "
                             "then press Start again.")
                error.set_class(True, "-shown")
                return
        self.dismiss(config)

    @staticmethod
    def _save(config: ResearchConfig) -> bool:
        """Write autoresearch.toml (keeping its comments and order) unless it already says exactly this;
        True if written."""
        path = config.project / CONFIG_FILE
        existing = path.read_text(encoding="utf-8") if path.is_file() else None
        text = config.toml_text(existing)
        if text == existing:
            return False  # unchanged: a committed file stays untouched
        path.write_text(text, encoding="utf-8")
        return True

    def _label(self, key: str) -> str:
        return next((s.label for s in self.specs if s.key == key), key)
