"""The command backend with real scripted agent programs on a real git repository."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from autoresearch_tui.agents.base import AgentFailed, AgentUnavailable, ProposalContext
from autoresearch_tui.agents.command import CommandProposer
from autoresearch_tui.agents.registry import check_backend, make_proposer
from autoresearch_tui.engine.config import ResearchConfig

TRAIN = "DEPTH = 8\nMATRIX_LR = 0.04\n\nprint('val_bpb: 1.0')\n"
PREPARE = "TIME_BUDGET = 300\n"
GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t"]

PRELUDE = '''import json, os, pathlib, subprocess, sys, time
args = sys.argv[1:]
if "--file" in args:
    prompt = pathlib.Path(args[args.index("--file") + 1]).read_text()
    how = "file"
elif "--text" in args:
    prompt = args[args.index("--text") + 1]
    how = "argv"
else:
    prompt = sys.stdin.read()
    how = "stdin"
print(f"agent got the prompt by {how}: {len(prompt)} chars, rules={'DESCRIPTION:' in prompt}", flush=True)
train = pathlib.Path("train.py")
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    (root / "prepare.py").write_text(PREPARE)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", *GIT_ID, "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", *GIT_ID, "commit", "-qm", "init"], cwd=root, check=True)
    return root


def agent(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{PRELUDE}{body}")
    path.chmod(0o755)
    return path


def context(repo: Path, log: Path, **kw) -> ProposalContext:
    base = dict(iteration=3, train_path="train.py", train_source=TRAIN, readonly_source=None,
                metric="val_bpb", direction="min", scope="all", history=(), best=None,
                project=str(repo), readonly_path="prepare.py", agent_log=str(log))
    base.update(kw)
    return ProposalContext(**base)


GOOD = '''train.write_text(train.read_text().replace("MATRIX_LR = 0.04", "MATRIX_LR = 0.05"))
print("thinking about it...")
print("DESCRIPTION: raise LR")
'''


@pytest.mark.parametrize("suffix,how", [("", "stdin"), (" --file {prompt_file}", "file"),
                                        (" --text {prompt}", "argv")])
async def test_well_behaved_agent(repo, tmp_path, suffix, how):
    prog = agent(tmp_path, "good.py", GOOD)
    log = tmp_path / "agents" / "0003.log"  # the folder does not exist yet
    proposal = await CommandProposer(f"{prog}{suffix}", timeout=20).propose(context(repo, log))
    assert proposal.new_source == TRAIN.replace("0.04", "0.05")
    assert proposal.description == "raise LR"
    assert proposal.meta["exit_code"] == 0 and proposal.meta["agent_moved_head"] is False
    assert proposal.meta["description_source"] == "agent" and proposal.meta["duration_s"] >= 0
    text = log.read_text()
    assert f"agent got the prompt by {how}" in text and "rules=True" in text
    assert "thinking about it..." in text and "=== exit 0 ===" in text
    assert not list(repo.glob("*prompt*"))  # the prompt file lives outside the project


async def test_agent_that_also_edits_the_readonly_file(repo, tmp_path):
    prog = agent(tmp_path, "greedy.py", 'pathlib.Path("prepare.py").write_text("TIME_BUDGET = 9999\\n")\n' + GOOD)
    log = tmp_path / "agent.log"
    proposal = await CommandProposer(str(prog), timeout=20).propose(context(repo, log))
    assert proposal.new_source == TRAIN.replace("0.04", "0.05")
    assert proposal.meta["other_files_changed"] == ["prepare.py"]
    assert "also changed prepare.py" in log.read_text()


async def test_agent_that_commits_its_change(repo, tmp_path):
    body = ('train.write_text(train.read_text().replace("DEPTH = 8", "DEPTH = 10"))\n'
            'subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@a", "commit", "-qam", '
            '"exp: deeper model (depth 10)"], check=True)\n')
    prog = agent(tmp_path, "committer.py", body)
    proposal = await CommandProposer(str(prog), timeout=20).propose(context(repo, tmp_path / "a.log"))
    assert proposal.description == "exp: deeper model (depth 10)"
    assert proposal.meta["agent_moved_head"] is True and proposal.meta["description_source"] == "commit"
    assert "DEPTH = 10" in proposal.new_source
    assert "other_files_changed" not in proposal.meta


async def test_description_from_the_diff_when_the_agent_gives_none(repo, tmp_path):
    prog = agent(tmp_path, "quiet.py", 'train.write_text(train.read_text().replace("0.04", "0.06"))\n')
    proposal = await CommandProposer(str(prog), timeout=20).propose(context(repo, tmp_path / "a.log"))
    assert proposal.description == "MATRIX_LR 0.04 -> 0.06"
    assert proposal.meta["description_source"] == "diff"


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_hanging_agent_is_killed_with_its_children(repo, tmp_path):
    pids = tmp_path / "pids.json"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    body = f'''import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # make the SIGKILL escalation necessary
child = subprocess.Popen([sys.executable, "-c", {stubborn!r}])
pathlib.Path({str(pids)!r}).write_text(json.dumps([os.getpid(), child.pid]))
print("working very hard", flush=True)
time.sleep(120)
'''
    prog = agent(tmp_path, "hang.py", body)
    log = tmp_path / "agent.log"
    started = time.monotonic()
    with pytest.raises(AgentFailed, match=r"agent timed out after 2 s"):
        await CommandProposer(str(prog), timeout=2, kill_grace=0.5).propose(context(repo, log))
    assert time.monotonic() - started < 8
    for pid in json.loads(pids.read_text()):
        for _ in range(50):
            if _dead(pid):
                break
            await asyncio.sleep(0.05)
        assert _dead(pid), f"process {pid} survived"
    assert "working very hard" in log.read_text() and "killed" in log.read_text()


async def test_child_holding_the_pipe_does_not_block_the_result(repo, tmp_path):
    body = ('child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])\n'
            f'pathlib.Path({str(tmp_path / "child")!r}).write_text(str(child.pid))\n' + GOOD)
    prog = agent(tmp_path, "leaver.py", body)
    started = time.monotonic()
    proposal = await CommandProposer(str(prog), timeout=30).propose(context(repo, tmp_path / "a.log"))
    assert proposal.description == "raise LR" and time.monotonic() - started < 10
    pid = int((tmp_path / "child").read_text())
    for _ in range(50):
        if _dead(pid):
            break
        await asyncio.sleep(0.05)
    assert _dead(pid)


async def test_cancelling_kills_the_agent(repo, tmp_path):
    pids = tmp_path / "pid"
    prog = agent(tmp_path, "slow.py", f'pathlib.Path({str(pids)!r}).write_text(str(os.getpid()))\ntime.sleep(60)\n')
    task = asyncio.ensure_future(CommandProposer(str(prog), timeout=60, kill_grace=0.5)
                                 .propose(context(repo, tmp_path / "a.log")))
    for _ in range(100):
        if pids.exists() and pids.read_text():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _dead(int(pids.read_text()))


async def test_agent_that_writes_nothing(repo, tmp_path):
    prog = agent(tmp_path, "lazy.py", 'print("Should I continue?")\n')
    with pytest.raises(AgentFailed, match="finished without changing train.py.*Should I continue"):
        await CommandProposer(str(prog), timeout=20).propose(context(repo, tmp_path / "a.log"))
    failing = agent(tmp_path, "failing.py", 'print("error: quota exceeded")\nsys.exit(3)\n')
    with pytest.raises(AgentFailed, match="exited with code 3 and changed nothing: error: quota exceeded"):
        await CommandProposer(str(failing), timeout=20).propose(context(repo, tmp_path / "a.log"))


async def test_missing_cli_is_one_clear_line(repo, tmp_path, monkeypatch):
    with pytest.raises(AgentUnavailable) as err:
        await CommandProposer("no-such-agent-xyz --go").propose(context(repo, tmp_path / "a.log"))
    assert str(err.value) == "no-such-agent-xyz: command not found on PATH; install it or pick another --agent"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    cfg = ResearchConfig(agent="claude", project=repo)
    message = check_backend(cfg)
    assert message and message.startswith("claude: command not found on PATH; install Claude Code")
    assert "\n" not in message
    with pytest.raises(AgentUnavailable, match="^claude: command not found"):
        await make_proposer(cfg).propose(context(repo, tmp_path / "a.log"))


async def test_no_shell_metacharacters_are_literal_argv(repo, tmp_path):
    body = (f'pathlib.Path({str(tmp_path / "argv.json")!r}).write_text(json.dumps(args))\n' + GOOD)
    prog = agent(tmp_path, "argv.py", body)
    template = f"{prog} ; touch pwned '$(touch pwned2)' `touch pwned3` {{train_path}}"
    await CommandProposer(template, timeout=20).propose(context(repo, tmp_path / "a.log"))
    assert json.loads((tmp_path / "argv.json").read_text()) == [
        ";", "touch", "pwned", "$(touch pwned2)", "`touch", "pwned3`", "train.py"]
    assert not list(repo.glob("pwned*")) and not list(tmp_path.glob("pwned*"))


def test_presets_build_the_documented_commands(repo):
    def cfg(**kw):
        return ResearchConfig(project=repo, **kw)
    assert make_proposer(cfg(agent="claude")).argv == [
        "claude", "-p", "--permission-mode", "acceptEdits", "--output-format", "json"]
    assert make_proposer(cfg(agent="codex", agent_model="o3")).argv == [
        "codex", "exec", "--model", "o3", "--sandbox", "workspace-write", "--json", "-"]
    assert "bash" in make_proposer(cfg(agent="opencode")).env["OPENCODE_PERMISSION"]
    assert "{prompt_file}" in make_proposer(cfg(agent="aider")).argv
    assert make_proposer(cfg(agent="claude", agent_cmd="my-claude -p")).argv == ["my-claude", "-p"]
    assert make_proposer(cfg(agent="gemini", agent_timeout="15m")).timeout == 900
    with pytest.raises(AgentUnavailable, match="needs agent_cmd"):
        make_proposer(cfg(agent="command"))
    with pytest.raises(AgentUnavailable, match="unknown agent 'gpt'"):
        make_proposer(cfg(agent="gpt"))
    assert check_backend(cfg(agent="builtin")) is None
    assert check_backend(cfg(agent="command", agent_cmd=f"{sys.executable} -c pass")) is None
