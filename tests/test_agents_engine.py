"""Real agents driving the real loop: a scripted coding-agent CLI, an HTTP model, the review gate."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.config import load_config
from autoresearch_tui.engine.control import ReviewAnswer
from autoresearch_tui.engine.loop import Engine
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.engine.session import SessionDir

from conftest import FAKE_TRAIN, ROOT, Scripted, cli, git, make_project

pytestmark = pytest.mark.slow  # starts engines or real training runs

# A coding-agent CLI stand-in: reads the prompt on stdin, edits train.py in place, says what it did.
AGENT = r'''#!{python}
import os, pathlib, re, sys
prompt = sys.stdin.read()
assert "DESCRIPTION:" in prompt and "prepare.py" in prompt
state = pathlib.Path(os.environ["AGENT_STATE"])
step = int(state.read_text()) if state.exists() else 0
state.write_text(str(step + 1))
train = pathlib.Path("train.py")
src = train.read_text()
if step == 0:
    src = src.replace("HIDDEN = 16 ", "HIDDEN = 64 "); desc = "widen the MLP: HIDDEN 16 -> 64"
elif step == 1:
    src = re.sub(r"^LEARNING_RATE = .*$", "LEARNING_RATE = 1e-7", src, flags=re.M); desc = "tiny learning rate"
elif step == 2:
    src = src.replace("import math", "import math\nraise RuntimeError('agent broke the script')"); desc = "break it"
elif step == 3:
    pathlib.Path("prepare.py").write_text("# vandalised\n")
    src = src + "\n# a comment that changes nothing\n"; desc = "comment only (and a forbidden edit)"
else:
    src = src.replace('ACTIVATION = "relu"', 'ACTIVATION = "tanh"'); desc = "tanh activation"
train.write_text(src)
print("thinking... done")
print("DESCRIPTION: " + desc)
'''


def _spirals(tmp_path: Path) -> Path:
    project = tmp_path / "spirals"
    shutil.copytree(ROOT / "sample_projects" / "spirals", project,
                    ignore=shutil.ignore_patterns("__pycache__", "results.tsv", ".autoresearch"))
    return make_project(project, (project / "train.py").read_text(), (project / "prepare.py").read_text())


def test_headless_command_agent_on_spirals(tmp_path: Path) -> None:
    project = _spirals(tmp_path)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT.replace("{python}", sys.executable))
    agent.chmod(0o755)
    result = cli("run", str(project), "--headless", "--yes", "--time-budget", "20s", "--metric", "val_acc:max",
                 "--max-iterations", "5", "--agent", "command", "--agent-cmd", str(agent), "--device", "cpu",
                 "--tag", "agent", env={"AGENT_STATE": str(tmp_path / "state")}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_results(project / "results.tsv").rows
    assert [r.description.split(" (")[0] for r in rows[1:]] == [
        "widen the MLP: HIDDEN 16 -> 64", "tiny learning rate", "break it",
        "comment only", "tanh activation"]
    assert rows[2].status == "discard" and rows[3].status == "crash" and rows[4].status == "discard"
    best = rows[0].metric
    for row in rows[1:]:
        if row.status != "crash":
            assert (row.status == "keep") == (row.metric > best), row
            best = max(best, row.metric) if row.status == "keep" else best
    assert (project / "prepare.py").read_text() == (ROOT / "sample_projects/spirals/prepare.py").read_text()
    events = SessionDir(project / ".autoresearch" / "agent").events()
    assert any(isinstance(e, ev.GuardrailTripped) and "prepare.py" in e.reverted for e in events)
    assert (project / ".autoresearch" / "agent" / "agents" / "0001.log").read_text().count("thinking") == 1
    summary = (project / "autoresearch-summary.md").read_text()
    assert "widen the MLP" in summary and "tiny learning rate" in summary


def test_missing_agent_cli_is_one_line(project: Path) -> None:
    result = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
                 "--agent", "command", "--agent-cmd", "no-such-agent-cli --go")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no-such-agent-cli" in result.stderr


def test_http_agent_keys_never_reach_disk(tmp_path: Path) -> None:
    from test_agent_http import GOOD, Server

    server = Server("openai")
    good = GOOD.replace("MATRIX_LR = 0.04", "LR = 0.1").replace("MATRIX_LR = 0.05", "LR = 0.2")
    again = GOOD.replace("MATRIX_LR = 0.04", "LR = 0.2").replace("MATRIX_LR = 0.05", "LR = 0.3")
    # A malformed answer is sent back with the error and answered properly the second time.
    server.script = [(200, {}, good), (200, {}, "no edit blocks here"), (200, {}, again)]
    canary = "sk-canary-" + os.urandom(8).hex()
    # The training run must not even see the key (a train.py written by an agent could print it).
    leak = 'print("key in run:", os.environ.get("CANARY_KEY", "absent"))\nprint("---")'
    project = make_project(tmp_path / "p", train=FAKE_TRAIN.replace('print("---")', leak))
    try:
        result = cli("run", str(project), "--headless", "--yes", "--time-budget", "1s", "--metric", "val_bpb:min",
                     "--max-iterations", "2", "--agent", "openai", "--agent-base-url", server.url,
                     "--agent-key-env", "CANARY_KEY", "--agent-model", "test-model", "--device", "cpu",
                     "--pipeline", "off",
                     env={"CANARY_KEY": canary}, timeout=120)
    finally:
        server.httpd.shutdown()
    assert result.returncode == 0, result.stderr
    assert canary not in result.stdout + result.stderr
    assert any({k.lower(): v for k, v in r[2].items()}.get("authorization", "").endswith(canary)
               for r in server.posts())  # header names are case-insensitive
    for path in [*project.rglob("*"), *(project / ".git").rglob("*")]:
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path
    run_logs = list((project / ".autoresearch" / load_config(project).tag / "runs").glob("*.log"))
    assert run_logs and all("key in run: absent" in p.read_text() for p in run_logs)
    rows = read_results(project / "results.tsv").rows
    assert rows[1].description.startswith("raise")
    made = [e for e in SessionDir(project / ".autoresearch" / load_config(project).tag).events()
            if isinstance(e, ev.ProposalMade)]
    assert made[0].meta["tokens_in"] == 1000 and made[0].meta["tokens_out"] == 100
    assert made[1].meta["retries"] == 1
    assert "Agent spend: 3,000 tokens in, 300 tokens out" in (project / "autoresearch-summary.md").read_text()


def _engine(project: Path, **values):
    config = load_config(project, None, {"time_budget": "2s", "metric": "val_bpb:min", "tag": "t1", **values})
    return config, Scripted


def test_review_gate_approve_edit_reject(project: Path) -> None:
    config, Scripted = _engine(project, review=True, max_iterations=2)
    seen: list[ev.Event] = []
    engine = Engine(config, Scripted([("LR", 0.2), ("LR", 0.3), ("LR", 0.05)]), listeners=[seen.append])
    answers = iter([("review_reject", None), ("review_approve", None), ("review_edit", "LR = 0.4")])

    def on_event(event):
        if isinstance(event, ev.ReviewRequested):
            cmd, edit = next(answers)
            source = (project / "train.py").read_text().replace("LR = 0.05", edit) if edit else None
            SessionDir(config.session_path()).send(ReviewAnswer(cmd.removeprefix("review_"), event.iteration, source))

    engine.listeners.append(on_event)
    engine.prepare()
    end = asyncio.run(engine.run())
    rows = read_results(project / "results.tsv").rows
    assert [r.description for r in rows] == ["baseline", "LR -> 0.3", "LR -> 0.05 (edited by reviewer)"]
    assert "LR = 0.4" in (project / "train.py").read_text()
    decisions = [e.decision for e in seen if isinstance(e, ev.ReviewDecided)]
    assert decisions == ["reject", "approve", "edit"]
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/autoresearch/t1").split()
    assert refs == ["refs/autoresearch/t1/1", "refs/autoresearch/t1/keep/0", "refs/autoresearch/t1/keep/1",
                    "refs/autoresearch/t1/keep/2"]
    assert end.reason == "max_iterations"


def test_cost_cap_stops_cleanly(project: Path) -> None:
    from autoresearch_tui.agents.base import Proposal

    config, Scripted = _engine(project, max_cost=0.05)

    def paid(value):
        def step(ctx):
            src = ctx.train_source.replace("LR = 0.1", f"LR = {value}").replace("LR = 0.2", f"LR = {value}")
            return Proposal(src, f"LR -> {value}", {"cost_usd": 0.03, "tokens_in": 10, "tokens_out": 5})
        return step

    engine = Engine(config, Scripted([paid(0.2), paid(0.3), paid(0.35), paid(0.38)]))
    engine.prepare()
    end = asyncio.run(engine.run())
    assert end.reason == "cost_cap" and end.iterations == 2
    assert len(read_results(project / "results.tsv").rows) == 3
