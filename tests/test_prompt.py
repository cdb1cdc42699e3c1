"""The agent prompt: rules, feedback, notes, a bounded history, and user templates."""

from __future__ import annotations

import random

from autoresearch_tui.agents.base import Attempt, ProposalContext
from autoresearch_tui.agents.history import digest, failure_streak, guidance
from autoresearch_tui.agents.prompt import build_prompt, load_template, read_notes

TRAIN = "DEPTH = 8\nMATRIX_LR = 0.04\n\ndef f():\n    return {'a': 1}  # braces and $dollars stay as they are\n"
READONLY = "TIME_BUDGET = 300\n"


def ctx(**kw) -> ProposalContext:
    base = dict(iteration=1, train_path="train.py", train_source=TRAIN, readonly_source=READONLY,
                metric="val_bpb", direction="min", scope="all", history=(), best=None,
                readonly_path="prepare.py", time_budget_s=300.0, platform="mps")
    base.update(kw)
    return ProposalContext(**base)


def night(n: int) -> tuple[Attempt, ...]:
    rng = random.Random(1)
    out = [Attempt(0, "c0", "keep", 1.0, "baseline")]
    best = 1.0
    ideas = ["raise MATRIX_LR", "DEPTH 8 -> 10", "swap GELU for ReLU squared", "halve the batch",
             "add dropout 0.1", "longer warmup", "a very long description " + "x" * 400]
    for i in range(1, n + 1):
        metric = best + rng.uniform(-0.002, 0.01)
        status = "keep" if metric < best else rng.choice(["discard", "discard", "crash"])
        if status == "keep":
            best = metric
        out.append(Attempt(i, f"c{i}", status, None if status == "crash" else metric,
                           f"{rng.choice(ideas)} #{i}", {"category": "optimizer"} if i % 7 == 0 else {}))
    return tuple(out)


def test_prompt_holds_the_rules_for_a_cli_agent():
    text = build_prompt(ctx(scope="optimizer", vary=("MATRIX_LR",), hold=("DEPTH",),
                            hypothesis="a higher LR helps"))
    assert "`prepare.py`" in text and "Never modify" in text and "Never install packages" in text
    assert "Only change the optimizer" in text
    assert "Vary only: MATRIX_LR." in text and "Hold fixed (never change): DEPTH." in text
    assert "a higher LR helps" in text
    assert "never stop to ask whether to continue" in text and "Never ask the human" in text
    assert "DESCRIPTION: <" in text and "in place" in text
    assert "do not use torch.compile" in text  # mps platform notes
    assert "5 min" in text and "lower is better" in text
    assert TRAIN in text and READONLY in text
    assert "deletion that keeps performance" in text
    assert "$" not in text.replace("$dollars", "")  # every placeholder filled


def test_http_prompt_asks_for_edit_blocks():
    text = build_prompt(ctx(readonly_source=None), mode="http")
    assert "<<<<<<< SEARCH" in text and ">>>>>>> REPLACE" in text and "DESCRIPTION:" in text
    assert READONLY not in text  # only on the first iteration


def test_feedback_and_notes_are_included():
    text = build_prompt(ctx(feedback="the new train.py does not compile: invalid syntax at line 3",
                            notes="Focus on the attention pattern tonight."))
    assert "Your previous answer was rejected" in text and "invalid syntax at line 3" in text
    assert "Focus on the attention pattern tonight." in text


def test_history_stays_bounded_over_a_long_night():
    history = night(1000)
    best = min((a for a in history if a.status == "keep"), key=lambda a: a.metric)
    text = build_prompt(ctx(history=history, best=best, iteration=1001,
                            notes="n" * 50_000, feedback="f" * 50_000))
    without_sources = text.replace(TRAIN, "").replace(READONLY, "")
    assert len(without_sources.encode()) < 20_000
    small = build_prompt(ctx(history=night(100), best=best, iteration=101))
    assert abs(len(text) - len(small)) < 9_000  # grows with notes/feedback caps, not with the night
    hist = digest(history, best, "val_bpb", "min")
    assert "earlier kept changes not shown" in hist and "What did not work" in hist
    assert "Last 15 results" in hist and "Baseline: 1.000000" in hist


def test_guidance_follows_the_hypothesis_discipline():
    base = [Attempt(0, "c0", "keep", 1.0, "baseline")]
    assert "first experiment" in guidance(base)
    kept = base + [Attempt(1, "c1", "keep", 0.9, "raise MATRIX_LR")]
    assert "nearby variation" in guidance(kept)
    fails = kept + [Attempt(i, f"c{i}", "discard", 1.0, "DEPTH change") for i in range(2, 8)]
    assert failure_streak(fails) == 6
    assert "Change direction" in guidance(fails) and "architecture" in guidance(fails)


def test_a_user_template_overrides_the_default(tmp_path):
    (tmp_path / "my_prompt.md").write_text("Improve $train_path for $metric. {braces} stay.\n$train_block\n")
    template = load_template("my_prompt.md", tmp_path)
    text = build_prompt(ctx(), template=template)
    assert text.startswith("Improve train.py for val_bpb. {braces} stay.")
    assert "## Output" in text and "DESCRIPTION:" in text  # the output contract is always added
    assert "Rules" not in text


def test_notes_file_is_read(tmp_path):
    assert read_notes(tmp_path) == ""
    (tmp_path / "program.md").write_text("try muon")
    assert read_notes(tmp_path) == "try muon"
