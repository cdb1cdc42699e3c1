"""agent = "optuna": a TPE study over the spirals constants, in a real headless session and a resume."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from autoresearch_tui.agents.base import Attempt, ProposalContext
from autoresearch_tui.agents.constants import find_constants
from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.results import read_results
from autoresearch_tui.engine.session import SessionDir

from conftest import ROOT, cli, git, make_project

pytest.importorskip("optuna")

from autoresearch_tui.agents.optuna_search import OptunaProposer  # noqa: E402

SPIRALS = ROOT / "sample_projects" / "spirals"
TRAIN = (SPIRALS / "train.py").read_text()
PREPARE = (SPIRALS / "prepare.py").read_text()


def ctx(source: str, history: list[Attempt], **kw) -> ProposalContext:
    args = dict(iteration=len(history), train_path="train.py", train_source=source, readonly_source=PREPARE,
                metric="val_acc", direction="max", scope="all", history=tuple(history), best=None)
    return ProposalContext(**{**args, **kw})


def propose(c: ProposalContext, sampler: str = "tpe"):
    return asyncio.run(OptunaProposer(sampler).propose(c))


def values(source: str) -> dict:
    return {c.name: c.value for c in find_constants(source)}


def test_trials_change_several_constants_within_the_inferred_space():
    history = [Attempt(0, "b", "keep", 0.82, "baseline", {})]
    for n in range(1, 13):
        p = propose(ctx(TRAIN, history))
        assert p.description.startswith(f"TPE trial {n}: ")
        v, base = values(p.new_source), values(TRAIN)
        changed = [k for k in v if v[k] != base[k]]
        assert changed and not {"SEED", "WARMUP_EXCLUDE"} & set(changed)
        for name in changed:  # every changed constant is named in the description, old -> new
            assert re.search(rf"\b{name} \S.* -> ", p.description)
        assert v["ACTIVATION"] in ("relu", "tanh", "gelu", "silu")  # never relu2: the script rejects it
        assert 0.0003 <= v["LEARNING_RATE"] <= 0.03 and isinstance(v["DEPTH"], int)
        assert v["HIDDEN"] in (4, 8, 16, 32, 64) and 0 <= v["WARMDOWN_RATIO"] <= 1
        history.append(Attempt(n, f"{n:07d}", "crash" if n == 2 else "discard", None if n == 2 else 0.5,
                               p.description, json.loads(json.dumps(p.meta))))
    # the same history gives the same trial; another seed gives another
    assert propose(ctx(TRAIN, history)) == propose(ctx(TRAIN, history))
    assert propose(ctx(TRAIN, history)).description != propose(ctx(TRAIN, history, seed=1)).description


def test_the_study_is_rebuilt_from_descriptions_when_the_meta_is_lost():
    history = [Attempt(0, "b", "keep", 0.82, "baseline", {})]
    best = TRAIN
    for n in range(1, 5):
        p = propose(ctx(best, history))
        status = "keep" if n in (1, 3) else "discard"
        history.append(Attempt(n, f"{n:07d}", status, 0.8 + n / 100, p.description, json.loads(json.dumps(p.meta))))
        best = p.new_source if status == "keep" else best
    # rows recreated from results.tsv on resume: the description only
    bare = [Attempt(a.iteration, a.commit, a.status, a.metric, a.description, {}) for a in history]
    assert propose(ctx(best, history)).description == propose(ctx(best, bare)).description


def test_scope_and_hold_shape_the_space():
    space, _ = OptunaProposer().space(ctx(TRAIN, [], scope="optimizer"), {})
    assert set(space) == {"LEARNING_RATE", "ADAM_BETAS[0]", "ADAM_BETAS[1]", "WEIGHT_DECAY",
                          "WARMDOWN_RATIO", "FINAL_LR_FRAC"}
    space, _ = OptunaProposer().space(ctx(TRAIN, [], hold=("optimizer", "MAX_STEPS")), {})
    assert set(space) == {"HIDDEN", "DEPTH", "ACTIVATION", "BATCH_SIZE"}


def _spirals(tmp_path: Path) -> Path:
    project = tmp_path / "spirals"
    shutil.copytree(SPIRALS, project, ignore=shutil.ignore_patterns("__pycache__", "results.tsv", ".autoresearch"))
    (project / "train.py").write_text(TRAIN.replace("MAX_STEPS = 1500 ", "MAX_STEPS = 300  "))
    return make_project(project, (project / "train.py").read_text(), PREPARE)


def test_headless_optuna_session_on_spirals_and_its_resume(tmp_path: Path) -> None:
    project = _spirals(tmp_path)
    args = ("--headless", "--yes", "--time-budget", "20s", "--metric", "val_acc:max", "--device", "cpu")
    first = cli("run", str(project), *args, "--agent", "optuna", "--max-iterations", "2", "--tag", "tpe",
                timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    again = cli("run", str(project), "--resume", "--headless", "--max-iterations", "4", timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = read_results(project / "results.tsv").rows
    assert [r.description.split(":")[0] for r in rows] == ["baseline"] + [f"TPE trial {n}" for n in range(1, 5)]
    events = SessionDir(project / ".autoresearch" / "tpe").events()
    made = [e for e in events if isinstance(e, ev.ProposalMade)]
    assert [e.meta["optuna"]["trial"] for e in made] == [1, 2, 3, 4]
    # after the resume the study goes on over the same space (the defaults of trial 1)
    defaults = made[0].meta["optuna"]["defaults"]
    assert all(e.meta["optuna"]["defaults"] == defaults for e in made)
    assert defaults["MAX_STEPS"] == 300 and "SEED" not in made[-1].meta["optuna"]["params"]
    # the branch holds the last kept trial (or the baseline)
    kept = [r for r in rows if r.status == "keep"]
    assert git(project, "rev-parse", "--short=7", "HEAD") == kept[-1].commit[:7]


def test_a_parallel_worker_gets_another_trial():
    history = [Attempt(0, "b", "keep", 0.82, "baseline", {})]
    first = propose(ctx(TRAIN, history))
    running = Attempt(1, "r", "running", None, first.description, first.meta)
    second = propose(ctx(TRAIN, history, in_flight=(running,)))
    assert second.description.startswith("TPE trial 2: ") and second.new_source != first.new_source
