"""The config wizard in a real Textual app on a real git project: typing, validation, confirm, Start."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Button, ContentSwitcher, Input, Select, Static

from autoresearch_tui.engine import preflight
from autoresearch_tui.engine.config import ResearchConfig, default_tag, load_config
from autoresearch_tui.tui.screens.wizard import WizardScreen

from conftest import git, make_project

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - 3.10
    import tomli as tomllib

UNSET = object()


class WizardApp(App):
    def __init__(self, config: ResearchConfig, demo: bool = False) -> None:
        super().__init__()
        self.config = config
        self.demo = demo
        self.result: object = UNSET

    def on_mount(self) -> None:
        self.push_screen(WizardScreen(self.config, demo=self.demo), self.finished)

    def finished(self, result: ResearchConfig | None) -> None:
        self.result = result


def wizard(app: App) -> WizardScreen:
    screen = app.screen
    assert isinstance(screen, WizardScreen), screen
    return screen


async def type_into(pilot, key: str, text: str) -> None:
    screen = wizard(pilot.app)
    field = screen.query_one(f"#f-{key}", Input)
    field.focus()
    await pilot.pause()
    await pilot.press("end", "ctrl+u")
    if text:
        await pilot.press(*text)
    await pilot.pause()


def error(screen: WizardScreen, key: str) -> str:
    widget = screen.query_one(f"#err-{key}", Static)
    return str(widget.content) if widget.has_class("-shown") else ""


async def settle(pilot, screen: WizardScreen, timeout: float = 10.0) -> None:
    """Wait for the git thread worker (and the platform probe, so no test leaves it running)."""
    await wait_platform(pilot, screen)
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while screen._git_worker is not None and not screen._git_worker.is_finished:
        assert time.monotonic() < deadline, "git check did not finish"
        await asyncio.sleep(0.02)
    await pilot.pause()


async def wait_platform(pilot, screen: WizardScreen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while screen.platform is None and screen.platform_error is None:
        assert time.monotonic() < deadline, "platform detection did not finish"
        await asyncio.sleep(0.05)
    await pilot.pause()


def start_disabled(screen: WizardScreen) -> bool:
    return screen.query_one("#wiz-start", Button).disabled


def step(screen: WizardScreen) -> str | None:
    return screen.query_one(ContentSwitcher).current


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


# -- prefill ------------------------------------------------------------------------------

async def test_fields_prefilled_from_config_and_project(proj: Path) -> None:
    app = WizardApp(load_config(proj))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await settle(pilot, screen)
        values = screen.values()
        assert values["train_script"] == "train.py"
        assert values["readonly_script"] == "prepare.py"
        assert values["time_budget"] == "" and values["metric"] == ""  # ask, do not assume
        assert values["max_iterations"] == "unlimited"
        assert values["scope"] == "all"
        assert values["tag"] == default_tag()
        assert values["results_file"] == "results.tsv"
        assert values["agent"] == "builtin"
        assert values["train_command"].endswith("train.py") and sys.executable in values["train_command"]
        assert values["seed"] == "0" and values["hypothesis"] == ""
        assert start_disabled(screen)  # no budget, no metric yet
        await pilot.press("enter")  # on the first field: tries to continue
        await pilot.pause()
        assert step(screen) == "wiz-step-form"
        assert "required" in error(screen, "time_budget")
        assert "required" in error(screen, "metric")
        assert app.focused is screen.query_one("#f-time_budget")


async def test_uv_lock_makes_uv_run_the_default_command(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "proj", extra={"uv.lock": "version = 1\n"})
    app = WizardApp(load_config(proj, overrides={"tag": "uvtest"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await pilot.pause()
        assert screen.values()["train_command"] == "uv run train.py"
        assert screen.values()["tag"] == "uvtest"


async def test_toml_and_flags_prefill(proj: Path) -> None:
    (proj / "autoresearch.toml").write_text('time_budget = "90s"\nmetric = "val_acc:max"\nscope = "optimizer"\n')
    app = WizardApp(load_config(proj, overrides={"max_iterations": "7"}))
    async with app.run_test(size=(100, 40)) as pilot:
        values = wizard(app).values()
        assert values["time_budget"] == "90s"
        assert values["metric"] == "val_acc:max"
        assert values["scope"] == "optimizer"
        assert values["max_iterations"] == "7"
        await pilot.pause()


# -- validation ---------------------------------------------------------------------------

BAD_VALUES = [
    ("time_budget", "0", "greater than zero"),
    ("time_budget", "five minutes", "not a duration"),
    ("metric", "val_bpb", "needs a direction"),
    ("metric", "val_bpb:up", "unknown direction"),
    ("tag", "my tag", "not a valid branch name"),
    ("readonly_script", "train.py", "another file"),
    ("train_script", "nope.py", "does not exist"),
    ("max_iterations", "many", "whole number"),
    ("seed", "x", "whole number"),
    ("train_command", "no-such-program-xyz train.py", "not found on PATH"),
]


async def test_bad_values_show_a_message_and_block_start(proj: Path) -> None:
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await settle(pilot, screen)
        good = screen.values()
        for key, value, message in BAD_VALUES:
            assert not start_disabled(screen) and error(screen, key) == "", key
            await type_into(pilot, key, value)
            await settle(pilot, screen)
            assert message in error(screen, key), (key, value, error(screen, key))
            assert screen.query_one(f"#f-{key}").has_class("-invalid")
            assert start_disabled(screen)
            await pilot.press("enter")
            await settle(pilot, screen)
            assert step(screen) == "wiz-step-form", key  # Enter does not reach the confirmation
            assert app.focused is screen.query_one(f"#f-{key}")
            screen.query_one("#wiz-continue", Button).press()
            await settle(pilot, screen)
            assert step(screen) == "wiz-step-form"
            screen.query_one(f"#f-{key}", Input).value = good[key]  # fixed: the message goes away
            await settle(pilot, screen)
            assert error(screen, key) == "" and not screen.query_one(f"#f-{key}").has_class("-invalid")
        assert app.result is UNSET


async def test_existing_branch_tag_is_refused(proj: Path) -> None:
    git(proj, "branch", "autoresearch/taken")
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await type_into(pilot, "tag", "taken")
        await settle(pilot, screen)
        assert "autoresearch/taken already exists" in error(screen, "tag")
        assert start_disabled(screen)
        await type_into(pilot, "tag", "free1")
        await settle(pilot, screen)
        assert error(screen, "tag") == ""
        assert "autoresearch/free1" in str(screen.query_one("#help-tag", Static).content)
        assert not start_disabled(screen)
        session = proj / ".autoresearch" / "taken"  # the tag has a session: say where to go instead
        session.mkdir(parents=True)
        (session / "config.toml").write_text('tag = "taken"\n')
        await type_into(pilot, "tag", "taken")
        await settle(pilot, screen)
        message = error(screen, "tag")
        assert "run --resume --tag taken" in message and "watch" in message


async def test_fixing_a_value_clears_its_message(proj: Path) -> None:
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await type_into(pilot, "metric", "val_bpb")
        assert "needs a direction" in error(screen, "metric")
        await pilot.press(*":min")
        await pilot.pause()
        assert error(screen, "metric") == ""


async def test_train_and_readonly_cross_check(proj: Path) -> None:
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await type_into(pilot, "train_script", "prepare.py")
        assert "another file" in error(screen, "readonly_script")
        # the default command follows the training script while untouched
        assert screen.values()["train_command"].endswith("prepare.py")
        await type_into(pilot, "train_script", "train.py")
        assert error(screen, "readonly_script") == ""


@pytest.mark.parametrize("problem", ["dirty", "detached", "not a repo", "bare", "index.lock"])
async def test_git_state_problems_disable_start(tmp_path: Path, problem: str) -> None:
    if problem == "bare":  # said on the git line, no traceback
        git(tmp_path, "clone", "-q", "--bare", str(make_project(tmp_path / "src")), str(tmp_path / "b.git"))
        proj, expected = tmp_path / "b.git", "bare repository"
    elif problem == "index.lock":
        proj, expected = make_project(tmp_path / "proj"), "rm "
        (proj / ".git" / "index.lock").write_text("")
    elif problem == "not a repo":
        proj = tmp_path / "plain"
        proj.mkdir()
        (proj / "train.py").write_text("print('val: 1')\n")
        (proj / "prepare.py").write_text("X = 1\n")
        expected = "not a git repository"
    else:
        proj = make_project(tmp_path / "proj")
        if problem == "dirty":
            (proj / "train.py").write_text("print('changed')\n")
            expected = "uncommitted changes"
        else:
            git(proj, "checkout", "-q", "--detach")
            expected = "detached"
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await settle(pilot, screen)
        line = screen.query_one("#wiz-git", Static)
        assert expected in str(line.content) and line.has_class("-error") and line.display
        assert start_disabled(screen)
        await pilot.press("enter")
        await settle(pilot, screen)
        assert step(screen) == "wiz-step-form"
        assert app.result is UNSET
        if problem == "dirty":  # fixed outside the app: the next check clears it
            git(proj, "checkout", "--", "train.py")
            await pilot.press("enter")
            await settle(pilot, screen)
            assert step(screen) == "wiz-step-confirm"
            assert not start_disabled(screen)


# -- confirmation and Start ---------------------------------------------------------------

async def test_full_flow_writes_toml_and_dismisses(proj: Path) -> None:
    app = WizardApp(load_config(proj))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await type_into(pilot, "time_budget", "5m")
        await type_into(pilot, "metric", "val_bpb:min")
        await type_into(pilot, "max_iterations", "20")
        await type_into(pilot, "tag", "exp1")
        await type_into(pilot, "hypothesis", "try a deeper model")
        scope = screen.query_one("#f-scope", Select)
        scope.focus()
        await pilot.pause()
        await pilot.press("enter")  # open the list; "all" is highlighted, "optimizer" is just above
        await pilot.pause()
        await pilot.press("up", "enter")
        await pilot.pause()
        assert scope.value == "optimizer"
        await wait_platform(pilot, screen)
        assert "CPU" in str(screen.query_one("#wiz-platform", Static).content)
        screen.query_one("#f-hypothesis", Input).focus()
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot, screen)
        assert step(screen) == "wiz-step-confirm"
        table = screen.table_text
        assert table.startswith("## AutoResearch Config\n| Parameter | Value |")
        for row in ("| Training script        | train.py", "| Read-only script       | prepare.py",
                    "| Time budget / run      | 5 min", "| Metric                 | val_bpb (min)",
                    "| Max iterations         | 20", "| Modification scope     | optimizer",
                    "| Branch                 | autoresearch/exp1", "| Results file           | results.tsv",
                    "| Platform               | CPU ("):
            assert row in table
        assert str(screen.query_one("#wiz-table", Static).content) == table
        assert app.focused is screen.query_one("#wiz-start")
        assert not (proj / "autoresearch.toml").exists()
        await pilot.press("enter")  # Start
        await pilot.pause()
    result = app.result
    assert isinstance(result, ResearchConfig)
    assert (result.time_budget, result.metric, result.direction) == (300.0, "val_bpb", "min")
    assert (result.max_iterations, result.scope, result.tag) == (20, "optimizer", "exp1")
    assert result.hypothesis == "try a deeper model" and result.train_command is None
    data = tomllib.loads((proj / "autoresearch.toml").read_text())
    assert data["time_budget"] == "5m" and data["metric"] == "val_bpb:min"
    assert data["max_iterations"] == 20 and data["scope"] == "optimizer" and data["tag"] == "exp1"
    assert "train_command" not in data  # the default follows the script (uv run / python)
    again = load_config(proj)
    assert (again.time_budget, again.metric, again.direction, again.max_iterations, again.scope, again.tag,
            again.hypothesis) == (300.0, "val_bpb", "min", 20, "optimizer", "exp1", "try a deeper model")


async def test_escape_goes_back_then_cancels(proj: Path) -> None:
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await pilot.press("enter")
        await settle(pilot, screen)
        assert step(screen) == "wiz-step-confirm"
        await pilot.press("escape")
        await pilot.pause()
        assert step(screen) == "wiz-step-form"
        assert app.focused is screen.query_one("#f-train_script")
        await type_into(pilot, "time_budget", "2m")
        await pilot.press("enter")
        await settle(pilot, screen)
        assert "| Time budget / run      | 2 min" in screen.table_text
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.result is None
        assert not isinstance(app.screen, WizardScreen)
    assert not (proj / "autoresearch.toml").exists()


async def test_custom_command_is_saved(proj: Path) -> None:
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        await type_into(pilot, "train_command", "python3 train.py --fast")
        await pilot.press("enter")
        await settle(pilot, wizard(app))
        await pilot.press("enter")
        await pilot.pause()
    assert isinstance(app.result, ResearchConfig)
    assert app.result.train_command == "python3 train.py --fast"
    assert tomllib.loads((proj / "autoresearch.toml").read_text())["train_command"] == "python3 train.py --fast"


async def test_demo_starts_with_enter_enter_at_80x24(proj: Path) -> None:
    config = load_config(proj, overrides={"time_budget": "30s", "metric": "val_bpb:min", "max_iterations": "5"})
    app = WizardApp(config, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await settle(pilot, wizard(app))
        await pilot.press("enter")
        await pilot.pause()
    assert isinstance(app.result, ResearchConfig)
    assert (app.result.time_budget, app.result.metric, app.result.max_iterations) == (30.0, "val_bpb", 5)
    assert load_config(proj).time_budget == 30.0
    # the demo's repository keeps no untracked autoresearch.toml: it is committed
    status = subprocess.run(["git", "status", "--porcelain"], cwd=proj, capture_output=True, text=True).stdout
    assert status == ""
    tracked = subprocess.run(["git", "ls-files", "autoresearch.toml"], cwd=proj, capture_output=True, text=True)
    assert tracked.stdout.strip() == "autoresearch.toml"


def test_demo_without_torch_says_how_to_add_it(tmp_path: Path) -> None:
    # sys.modules["torch"] = None is Python's own "this module is not available" mark
    code = ("import sys; sys.modules['torch'] = None; from autoresearch_tui.cli import main; "
            f"sys.exit(main(['demo', '--headless', '--dir', {str(tmp_path / 'd')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "autoresearch-tui[demo]" in lines[0] and "whl/cpu" in lines[0], done.stderr
    assert not (tmp_path / "d").exists()


async def test_keyboard_only_path_fits_80x24(proj: Path) -> None:
    """Tab through every field (each scrolled into view), Continue, Start; all inside 80x24."""
    app = WizardApp(load_config(proj))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = wizard(app)
        await settle(pilot, screen)
        form = screen.query_one("#wiz-form")
        assert form.virtual_size.height > form.size.height  # the form scrolls
        seen = []
        for _ in range(40):
            focused = app.focused
            assert focused is not None
            region = focused.region
            assert region.height >= 1 and 0 <= region.y < 24 and region.right <= 80, (focused, region)
            seen.append(focused.id)
            if focused.id == "f-time_budget":
                await pilot.press(*"45s")
            if focused.id == "f-metric":
                await pilot.press(*"val_bpb:min")
            if focused.id == "wiz-continue":
                break
            await pilot.press("tab")
            await pilot.pause()
        assert seen[:3] == ["f-train_script", "f-readonly_script", "f-time_budget"]
        assert "f-hypothesis" in seen and seen[-1] == "wiz-continue"
        await pilot.press("enter")
        await settle(pilot, screen)
        assert step(screen) == "wiz-step-confirm"
        start = screen.query_one("#wiz-start")
        assert app.focused is start and start.region.bottom <= 24 and start.region.height >= 1
        await pilot.press("enter")
        await pilot.pause()
    assert isinstance(app.result, ResearchConfig) and app.result.time_budget == 45.0


async def test_platform_line_shows_cpu(proj: Path) -> None:
    app = WizardApp(load_config(proj))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = wizard(app)
        await wait_platform(pilot, screen)
        assert screen.platform is not None and screen.platform.platform == "CPU"
        text = str(screen.query_one("#wiz-platform", Static).content)
        assert text.startswith("Platform: CPU (")
        assert "compile off" in text
        assert screen.platform_text() == screen.platform.describe()


# -- the pure logic under the wizard --------------------------------------------------------

def test_build_config_and_field_errors(proj: Path) -> None:
    base = load_config(proj)
    values = preflight.field_values(base)
    values.update(time_budget="90s", metric="acc:max", max_iterations="", hypothesis="  ")
    config = preflight.build_config(base, values)
    assert (config.time_budget, config.metric, config.direction, config.max_iterations) == (90, "acc", "max", None)
    assert config.hypothesis is None and config.train_command is None
    assert base.time_budget is None  # the input config is not changed
    assert preflight.field_error("time_budget", "", values, proj).startswith("required")
    assert preflight.field_error("readonly_script", "", values, proj) is None  # no read-only script
    assert preflight.field_error("results_file", "train.py", values, proj)
    checks = {c.name: c for c in preflight.check_project(config)}
    assert all(c.ok for c in checks.values()), checks
    assert set(checks) >= {"git repository", "clean working tree", "branch checked out", "research branch free",
                           "training script", "read-only script", "training command", "disk space"}
    git(proj, "branch", config.branch)
    (proj / "train.py").write_text("x\n")
    bad = {c.name: c for c in preflight.check_project(config)}
    assert not bad["research branch free"].ok and not bad["clean working tree"].ok
    assert preflight.disk_check(proj, minimum=1 << 60).fatal is False


async def test_start_keeps_the_users_comments_in_the_toml(tmp_path: Path) -> None:
    original = '# night runs\nmetric = "val_bpb:min"  # printed by train.py\ntime_budget = "1m"  # the reference\n'
    proj = make_project(tmp_path / "proj")
    (proj / "autoresearch.toml").write_text(original)  # untracked: writing it leaves the tree clean
    app = WizardApp(load_config(proj))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await type_into(pilot, "time_budget", "2m")
        await type_into(pilot, "seed", "5")
        await pilot.press("enter")
        await settle(pilot, screen)
        await pilot.press("enter")
        await settle(pilot, screen)
    assert isinstance(app.result, ResearchConfig)
    assert (proj / "autoresearch.toml").read_text() == original.replace('"1m"', '"2m"') + "seed = 5\n"


async def test_tracked_toml_unchanged_starts_and_changed_asks_for_a_commit(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "proj", extra={"autoresearch.toml": 'time_budget = "1m"\nmetric = "val_bpb:min"\n'})
    config = load_config(proj, overrides={"tag": "t1"})
    config.save()  # the file as the wizard would write it, committed
    git(proj, "commit", "-q", "-am", "config")
    app = WizardApp(load_config(proj))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await settle(pilot, screen)
        await pilot.press("enter")
        await settle(pilot, screen)
        await pilot.press("enter")
        await pilot.pause()
    assert isinstance(app.result, ResearchConfig)
    assert git(proj, "status", "--porcelain") == ""  # unchanged: not rewritten

    app = WizardApp(load_config(proj))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await type_into(pilot, "time_budget", "2m")
        await pilot.press("enter")
        await settle(pilot, screen)
        await pilot.press("enter")
        await settle(pilot, screen)
        assert app.result is UNSET
        message = screen.query_one("#wiz-confirm-error", Static)
        assert message.has_class("-shown") and "commit it" in str(message.content)
        assert start_disabled(screen)
        git(proj, "commit", "-q", "-am", "new budget")
        screen.start_git_check()
        await settle(pilot, screen)
        assert not start_disabled(screen)
        screen.query_one("#wiz-start", Button).press()
        await settle(pilot, screen)
    assert isinstance(app.result, ResearchConfig) and app.result.time_budget == 120


async def test_agent_choices_come_from_the_registry_and_are_checked(proj: Path) -> None:
    app = WizardApp(load_config(proj, overrides={"time_budget": "1m", "metric": "val_bpb:min"}))
    async with app.run_test(size=(100, 40)) as pilot:
        screen = wizard(app)
        await settle(pilot, screen)
        agent = screen.query_one("#f-agent", Select)
        assert agent.value == "builtin"
        names = preflight.agent_names()
        assert names[0] == "builtin"
        if "command" not in names:
            pytest.skip("no command agent in this tree")
        agent.value = "command"  # no agent_cmd configured: the check says what is missing
        await settle(pilot, screen)
        assert "agent_cmd" in error(screen, "agent")
        assert start_disabled(screen)
        agent.value = "builtin"
        await settle(pilot, screen)
        assert error(screen, "agent") == "" and not start_disabled(screen)
