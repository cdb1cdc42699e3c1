"""Every CLI preset with the real program (installed from its registry) and a scripted model server.

Each test runs the preset's exact command line (agents/command.py) non-interactively: a login,
trust, update or permission prompt would wait for a human, so a CLI that hangs fails the test
(the edit must land long before the timeout).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import psutil
import pytest

from autoresearch_tui.agents.base import AgentFailed, ProposalContext
from autoresearch_tui.agents.command import PRESET_ENV, CommandProposer, preset_command
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.engine.session import SessionDir

from conftest import ROOT, cli, git, make_project
from model_server import DEFAULT_EDIT, Edit, ModelServer, Script
from real_clis import PRESET_NAMES, cli_env, install

pytestmark = pytest.mark.real_cli
TIMEOUT = 180.0  # far above a scripted run (a few seconds): reaching it means the CLI waited on something
HANG_TIMEOUT = 20.0
SPIRALS = ROOT / "sample_projects" / "spirals"
# How each preset answers a model that asks to run `touch` in the project and outside it.
SHELL = {"claude": "denied", "codex": "sandboxed", "gemini": "denied", "opencode": "denied",
         "aider": "denied", "qwen": "denied"}


@pytest.fixture(scope="session")
def server():
    install()
    srv = ModelServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def homes(tmp_path_factory):
    """One home folder per CLI for the whole run: its first-run set-up happens once."""
    return tmp_path_factory.mktemp("homes")


def spirals(where: Path) -> Path:
    shutil.copytree(SPIRALS, where, ignore=shutil.ignore_patterns("__pycache__", "results.tsv", ".autoresearch"))
    return make_project(where, (where / "train.py").read_text(), (where / "prepare.py").read_text())


def proposer(name: str, server: ModelServer, homes: Path, timeout: float = TIMEOUT) -> CommandProposer:
    env = {**PRESET_ENV.get(name, {}), **cli_env(name, server, homes / name)}
    return CommandProposer(preset_command(name), name=name, timeout=timeout, kill_grace=3, env=env)


def context(project: Path, iteration: int = 1) -> ProposalContext:
    return ProposalContext(
        iteration=iteration, train_path="train.py", train_source=(project / "train.py").read_text(),
        readonly_source=(project / "prepare.py").read_text(), metric="val_acc", direction="max",
        scope="all", history=(), best=None, project=str(project), readonly_path="prepare.py",
        agent_log=str(project.parent / "agent.log"))


@pytest.mark.parametrize("name", PRESET_NAMES)
async def test_preset_edits_train_py(name, server, homes, tmp_path):
    project = spirals(tmp_path / "project")
    server.script = Script(root=str(project))
    before = len(server.requests)
    proposal = await proposer(name, server, homes).propose(context(project))
    assert "\nLEARNING_RATE = 0.01 " in proposal.new_source, (tmp_path / "agent.log").read_text()[-3000:]
    assert proposal.description == DEFAULT_EDIT.description
    assert proposal.meta["description_source"] == "agent" and proposal.meta["exit_code"] == 0
    assert proposal.meta["duration_s"] < TIMEOUT / 3
    assert "other_files_changed" not in proposal.meta
    assert proposal.meta["tokens_in"] > 0 and proposal.meta["tokens_out"] > 0
    if name == "claude":  # the only one that prices an unknown endpoint's tokens
        assert proposal.meta["cost_usd"] > 0
    bodies = [str(r["body"]) for r in server.requests[before:]]
    assert any("This is iteration 1" in b for b in bodies)  # it got our prompt
    assert git(project, "status", "--porcelain") == "M train.py"


@pytest.mark.parametrize("name", PRESET_NAMES)
async def test_preset_shell_request(name, server, homes, tmp_path):
    project = spirals(tmp_path / "project")
    outside = ROOT / ".cache" / "real-cli-markers" / uuid.uuid4().hex  # outside /tmp: codex may write there
    outside.parent.mkdir(parents=True, exist_ok=True)
    server.script = Script(kind="shell", root=str(project),
                           shell_command=f"touch shell-was-here.txt; touch {outside}")
    proposal = await proposer(name, server, homes).propose(context(project))
    assert not outside.exists(), f"{name} ran the model's shell command outside the project"
    assert "\nLEARNING_RATE = 0.01 " in proposal.new_source  # it went on after the refusal
    inside = (project / "shell-was-here.txt").exists()
    if SHELL[name] == "denied":
        assert not inside and "other_files_changed" not in proposal.meta
    else:  # sandboxed: the project is writable, the guardrails see (and the engine reverts) it
        assert inside and proposal.meta["other_files_changed"] == ["shell-was-here.txt"]


@pytest.mark.parametrize("name", PRESET_NAMES)
async def test_preset_timeout_ends_every_process(name, server, homes, tmp_path):
    project = spirals(tmp_path / "project")
    server.script = Script(kind="hang", root=str(project))
    disconnects = server.disconnects
    task = asyncio.ensure_future(proposer(name, server, homes, timeout=HANG_TIMEOUT).propose(context(project)))
    while not server.hanging and not task.done():
        await asyncio.sleep(0.1)
    assert not task.done(), "the CLI ended before it asked the model"
    spawned = psutil.Process().children(recursive=True)
    assert spawned
    with pytest.raises(AgentFailed, match="timed out"):
        await task
    _, alive = psutil.wait_procs(spawned, timeout=5)  # SIGKILLed ones need a moment to be gone
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [p.cmdline() for p in alive]
    assert server.wait_for(lambda: server.disconnects > disconnects, 10)


# iteration -> (script kind, edit): a keep, a discard, and an edit of prepare.py that must not survive.
SESSION = {1: ("edit", Edit("HIDDEN", "64", "widen the MLP to 64")),
           2: ("edit", Edit("LEARNING_RATE", "1e-7", "tiny learning rate")),
           3: ("prepare", Edit("ACTIVATION", '"tanh"', "tanh activation"))}


@pytest.mark.slow
@pytest.mark.timeout(900)  # four spirals runs and three CLI runs; minutes on a busy machine
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_headless_session(name, server, homes, tmp_path):
    project = spirals(tmp_path / "spirals")
    server.script = Script(root=str(project), edits={i: e for i, (_, e) in SESSION.items()},
                           kinds={i: k for i, (k, _) in SESSION.items()})
    env = cli_env(name, server, homes / name)
    result = cli("run", str(project), "--headless", "--yes", "--time-budget", "20s", "--metric", "val_acc:max",
                 "--max-iterations", "3", "--agent", name, "--device", "cpu", "--tag", name,
                 env=env, timeout=840)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = read_results(project / "results.tsv").rows
    assert [r.description.split(" (")[0] for r in rows[1:]] == [e.description for _, e in SESSION.values()]
    assert rows[1].status == "keep" and rows[2].status == "discard"
    assert (rows[3].status == "keep") == (rows[3].metric > rows[1].metric)
    assert (project / "prepare.py").read_text() == (SPIRALS / "prepare.py").read_text()
    events = SessionDir(project / ".autoresearch" / name).events()
    assert any(isinstance(e, ev.GuardrailTripped) and "prepare.py" in e.reverted for e in events)
    summary = (project / "autoresearch-summary.md").read_text()
    assert "widen the MLP to 64" in summary and "tiny learning rate" in summary
    assert "Agent spend:" in summary and "Agent spend: 0 tokens" not in summary
