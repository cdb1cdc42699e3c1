"""The built-in proposer on a real autoresearch-shaped train.py, with simulated histories."""

from __future__ import annotations

import asyncio
import difflib
import json
import math
from dataclasses import dataclass
from typing import Callable

import pytest

from autoresearch_tui.agents.base import Attempt, Proposal, ProposalContext, ProposalError
from autoresearch_tui.agents.builtin import BuiltinProposer
from autoresearch_tui.agents.constants import find_constants
from autoresearch_tui.core.categories import category_for_name

SCRIPT = '''"""Pretraining script (autoresearch style)."""
import os

DATA_PATH = "~/.cache/autoresearch/data"
LOG_EVERY = 10
COMPILE = True
SEED = 42

ASPECT_RATIO = 64
HEAD_DIM = 128
WINDOW_PATTERN = "SSSL"
TOTAL_BATCH_SIZE = 2**19
EMBEDDING_LR = 0.6
UNEMBEDDING_LR = 0.004
MATRIX_LR = 0.04
SCALAR_LR = 0.5
WEIGHT_DECAY = 0.2
ADAM_BETAS = (0.8, 0.95)
WARMUP_RATIO = 0.0
WARMDOWN_RATIO = 0.5
FINAL_LR_FRAC = 0.0
DEPTH = 8
DEVICE_BATCH_SIZE = 128  # reduce if OOM
ACTIVATION = "gelu"

model_dim = DEPTH * ASPECT_RATIO


def main():
    lr = MATRIX_LR * 2
    return lr
'''

NEVER = {"SEED", "DATA_PATH", "LOG_EVERY", "COMPILE"}


def values(source: str) -> dict:
    return {c.name: c.value for c in find_constants(source)}


def bowl(source: str) -> float | None:
    """A fake val_bpb: best near MATRIX_LR 0.1, DEPTH 10, EMBEDDING_LR 0.8; crash at big LR."""
    v = values(source)
    if v["MATRIX_LR"] > 0.3:
        return None
    return (1.0 + math.log(v["MATRIX_LR"] / 0.1) ** 2 + 0.01 * (v["DEPTH"] - 10) ** 2
            + abs(v["EMBEDDING_LR"] - 0.8))


def flat(source: str) -> float:
    return 1.0


def ctx_for(source: str, history: list[Attempt], **kw) -> ProposalContext:
    defaults = dict(iteration=len(history), train_path="train.py", train_source=source,
                    readonly_source=None, metric="val_bpb", direction="min", scope="all",
                    history=tuple(history), best=None)
    defaults.update(kw)
    return ProposalContext(**defaults)


def propose(ctx: ProposalContext, proposer: BuiltinProposer | None = None) -> Proposal:
    return asyncio.run((proposer or BuiltinProposer()).propose(ctx))


def baseline(source: str = SCRIPT) -> list[Attempt]:
    return [Attempt(0, "0000000", "keep", 1.0, "baseline", {})]


def changed(old: str, new: str) -> list[str]:
    a, b = values(old), values(new)
    assert set(a) == set(b)
    return [k for k in a if a[k] != b[k]]


@dataclass
class Step:
    base: str
    proposal: Proposal
    status: str


def simulate(n: int, metric: Callable[[str], float | None], source: str = SCRIPT,
             proposer: BuiltinProposer | None = None, json_meta: bool = False,
             **kw) -> tuple[list[Step], str, ProposalError | None]:
    """Run the loop like the engine: keep on improvement, else reset to the best."""
    proposer = proposer or BuiltinProposer()
    best, best_metric = source, metric(source)
    history = [Attempt(0, "0000000", "keep", best_metric, "baseline", {})]
    steps: list[Step] = []
    for it in range(1, n + 1):
        try:
            prop = propose(ctx_for(best, history, iteration=it, **kw), proposer)
        except ProposalError as exc:
            return steps, best, exc
        m = metric(prop.new_source)
        status = "crash" if m is None else "keep" if m < best_metric else "discard"
        steps.append(Step(best, prop, status))
        meta = json.loads(json.dumps(prop.meta)) if json_meta else prop.meta
        history.append(Attempt(it, f"{it:07x}", status, m, prop.description, meta))
        if status == "keep":
            best, best_metric = prop.new_source, m
    return steps, best, None


def test_each_proposal_changes_exactly_one_constant_and_one_line():
    steps, _, _ = simulate(25, bowl)
    assert len(steps) == 25
    for s in steps:
        p = s.proposal
        assert changed(s.base, p.new_source) == [p.meta["constant"]]
        diff = [ln for ln in difflib.ndiff(s.base.splitlines(), p.new_source.splitlines())
                if ln[:1] in "+-"]
        assert len(diff) == 2
        assert values(s.base)[p.meta["constant"]] == pytest.approx(p.meta["old"])


def test_description_and_meta():
    p = propose(ctx_for(SCRIPT, baseline(), vary=("MATRIX_LR",)))
    assert p.description == "MATRIX_LR 0.04 -> 0.08"
    assert p.meta == {"constant": "MATRIX_LR", "old": 0.04, "new": 0.08, "category": "optimizer"}
    p = propose(ctx_for(SCRIPT, baseline(), vary=("ACTIVATION",)))
    assert p.description == 'ACTIVATION "gelu" -> "relu"'
    p = propose(ctx_for(SCRIPT, baseline(), vary=("TOTAL_BATCH_SIZE",)))
    assert p.description == "TOTAL_BATCH_SIZE 2**19 -> 2**20"
    p = propose(ctx_for(SCRIPT, baseline(), vary=("ADAM_BETAS",)))
    assert p.meta["old"] == [0.8, 0.95] and isinstance(p.meta["new"], list)
    assert json.loads(json.dumps(p.meta)) == p.meta


def test_scope_optimizer_only_touches_optimizer_constants():
    steps, _, _ = simulate(40, bowl, scope="optimizer")
    assert steps
    for s in steps:
        name = s.proposal.meta["constant"]
        assert any(k in name for k in ("LR", "BETAS", "DECAY", "WARMUP", "WARMDOWN")), name
        assert s.proposal.meta["category"] == "optimizer"


def test_scope_architecture():
    steps, _, _ = simulate(30, bowl, scope="architecture")
    names = {s.proposal.meta["constant"] for s in steps}
    assert names and all(category_for_name(n) == "architecture" for n in names)
    assert "DEPTH" in names


def test_hold_and_vary_plan():
    steps, _, _ = simulate(40, bowl, hold=("optimizer", "DEPTH"))
    names = {s.proposal.meta["constant"] for s in steps}
    assert names and "DEPTH" not in names
    assert all(category_for_name(n) != "optimizer" for n in names)

    steps, _, exc = simulate(40, bowl, vary=("DEPTH", "activation"))
    names = {s.proposal.meta["constant"] for s in steps}
    assert names == {"DEPTH", "ACTIVATION"}
    assert isinstance(exc, ProposalError)  # both exhausted within 40

    steps, _, _ = simulate(15, bowl, vary=("hyperparameters",))
    assert {s.proposal.meta["constant"] for s in steps} <= {"TOTAL_BATCH_SIZE",
                                                            "DEVICE_BATCH_SIZE"}


def test_seed_paths_and_flags_are_never_changed():
    steps, _, _ = simulate(80, bowl)
    touched = {s.proposal.meta["constant"] for s in steps}
    assert not touched & NEVER
    with pytest.raises(ProposalError, match="no tunable constants"):
        propose(ctx_for(SCRIPT, baseline(), vary=("SEED",)))


def test_after_a_keep_it_continues_in_the_same_direction():
    first = propose(ctx_for(SCRIPT, baseline(), vary=("MATRIX_LR",)))
    assert first.meta["new"] > first.meta["old"]
    hist = baseline() + [Attempt(1, "a", "keep", 0.9, first.description, first.meta)]
    nxt = propose(ctx_for(first.new_source, hist, vary=()))
    assert nxt.meta["constant"] != "MATRIX_LR"  # the first pass: every constant once, then follow-ups
    nxt = propose(ctx_for(first.new_source, hist, vary=("MATRIX_LR",)))
    assert nxt.meta["constant"] == "MATRIX_LR"
    assert nxt.meta["old"] == first.meta["new"] and nxt.meta["new"] > nxt.meta["old"]
    # a kept move downwards keeps going down, by the same step
    hist = baseline() + [Attempt(1, "a", "keep", 0.9, "", {
        "constant": "EMBEDDING_LR", "old": 0.8, "new": 0.6, "category": "optimizer"})]
    nxt = propose(ctx_for(SCRIPT, hist, vary=("EMBEDDING_LR",)))
    assert nxt.meta["constant"] == "EMBEDDING_LR" and nxt.meta["new"] == 0.45


def test_after_a_keep_then_a_failure_it_tries_the_other_side():
    hist = baseline() + [Attempt(1, "a", "keep", 0.9, "", {
        "constant": "MATRIX_LR", "old": 0.02, "new": 0.04, "category": "optimizer"})]
    p = propose(ctx_for(SCRIPT, hist, iteration=2, vary=("MATRIX_LR",)))
    assert p.meta["new"] == 0.08  # the winning step again
    hist.append(Attempt(2, "b", "discard", 1.0, p.description, p.meta))
    p = propose(ctx_for(SCRIPT, hist, iteration=3, vary=("MATRIX_LR",)))
    assert p.meta["new"] < 0.04 and p.meta["new"] != 0.02  # the other side, never the undone value


@pytest.mark.parametrize("metric, further", [(1.003, True), (1.1, False)])
def test_a_near_miss_is_pushed_further_a_clear_miss_turns_back(metric, further):
    hist = baseline() + [Attempt(1, "a", "discard", metric, "", {
        "constant": "MATRIX_LR", "old": 0.04, "new": 0.08, "category": "optimizer"})]
    p = propose(ctx_for(SCRIPT, hist, iteration=2, vary=("MATRIX_LR",)))
    assert p.meta["old"] == 0.04
    if further:  # worse by less than noise: as far again the same way
        assert p.meta["new"] == 0.16
    else:
        assert p.meta["new"] < 0.04


@pytest.mark.parametrize("metric, followed", [(1.003, True), (1.1, False)])
def test_a_near_miss_is_followed_up_at_most_a_doubling_further(metric, followed):
    hist = baseline() + [Attempt(1, "a", "discard", metric, "", {
        "constant": "EMBEDDING_LR", "old": 0.6, "new": 0.15, "category": "optimizer"}),
        Attempt(2, "b", "discard", 1.0, "", {"constant": "DEPTH", "old": 8, "new": 7, "category": "architecture"})]
    p = propose(ctx_for(SCRIPT, hist, iteration=3, vary=("EMBEDDING_LR", "DEPTH")))
    if followed:  # like a keep: next, the same way, capped at a doubling past the near miss
        assert (p.meta["constant"], p.meta["old"], p.meta["new"]) == ("EMBEDDING_LR", 0.6, 0.075)
    else:  # a clear miss: not further that way but the other side
        assert (p.meta["constant"], p.meta["old"], p.meta["new"]) == ("EMBEDDING_LR", 0.6, 1.2)


def test_a_clear_miss_is_a_wall_until_nothing_else_is_left():
    def attempt(it, name, old, new, metric):
        return Attempt(it, "x", "discard", metric, "", {"constant": name, "old": old, "new": new,
                                                         "category": category_for_name(name)})
    hist = baseline() + [attempt(1, "DEPTH", 8, 9, 1.1), attempt(2, "DEPTH", 8, 7, 1.1)] + [
        attempt(3 + i, "EMBEDDING_LR", 0.6, v, 1.0) for i, v in enumerate((1.2, 0.3, 0.9))]
    # DEPTH 10 and 6 lie past clear misses: a rested constant's next value comes first
    p = propose(ctx_for(SCRIPT, hist, iteration=6, vary=("DEPTH", "EMBEDDING_LR")))
    assert p.meta["constant"] == "EMBEDDING_LR"
    # ... but a wall never ends the search
    p = propose(ctx_for(SCRIPT, hist, iteration=6, vary=("DEPTH",)))
    assert p.meta["new"] in (6, 10)


def test_what_buys_compute_is_not_pushed_past_a_near_miss():
    # past a near miss, more batch mostly buys what the time budget cuts off
    hist = baseline() + [Attempt(1, "a", "discard", 1.003, "", {
        "constant": "TOTAL_BATCH_SIZE", "old": 2**19, "new": 2**20, "category": "batch"})]
    p = propose(ctx_for(SCRIPT, hist, iteration=2))
    assert p.meta["constant"] != "TOTAL_BATCH_SIZE"
    p = propose(ctx_for(SCRIPT, hist, iteration=2, vary=("TOTAL_BATCH_SIZE",)))
    assert p.meta["new"] < 2**19  # its own ladder: the other side


def test_a_failure_moves_on_to_another_constant():
    steps, _, _ = simulate(12, flat)
    names = [s.proposal.meta["constant"] for s in steps]
    assert len(set(names)) == 12


@pytest.mark.parametrize("limit", [3, 2])
def test_a_constant_is_rested_after_n_failures(limit):
    proposer = BuiltinProposer(max_failures=limit)
    hist = baseline()
    for it in range(1, limit + 1):
        p = propose(ctx_for(SCRIPT, hist, iteration=it, vary=("MATRIX_LR",)), proposer)
        hist.append(Attempt(it, "x", "discard", 1.0, p.description, p.meta))
    assert propose(ctx_for(SCRIPT, hist, vary=("MATRIX_LR", "DEPTH")), proposer).meta["constant"] == "DEPTH"


def test_spreads_over_constants_and_categories():
    steps, best, _ = simulate(24, bowl)
    names = [s.proposal.meta["constant"] for s in steps]
    assert max(names.count(n) for n in set(names)) <= 8  # not half the night on one constant
    assert len({category_for_name(n) for n in names}) >= 3
    assert bowl(best) < bowl(SCRIPT)


def test_the_seed_changes_the_order():
    firsts = []
    for seed in range(3):
        steps, _, _ = simulate(8, flat, seed=seed)
        firsts.append([s.proposal.description for s in steps])
    assert len({tuple(f) for f in firsts}) == 3
    assert simulate(8, flat, seed=1)[0] == simulate(8, flat, seed=1)[0]


@pytest.mark.parametrize("json_meta", [False, True])
def test_never_repeats_a_tried_value_over_40_iterations(json_meta):
    steps, best, _ = simulate(40, bowl, json_meta=json_meta)
    assert len(steps) == 40
    seen = set()
    for s in steps:
        meta = s.proposal.meta
        key = (meta["constant"], json.dumps(meta["old"]), json.dumps(meta["new"]))
        assert key not in seen, key
        seen.add(key)
    assert any(s.status == "keep" for s in steps)
    assert bowl(best) < bowl(SCRIPT)


def test_values_stay_in_sensible_ranges():
    steps, _, _ = simulate(120, flat)
    assert len(steps) > 60
    for s in steps:
        name, new = s.proposal.meta["constant"], s.proposal.meta["new"]
        kind = {c.name: c.kind for c in find_constants(s.base)}[name]
        if kind in ("int", "pow2"):
            assert isinstance(new, int) and new >= 1
        if kind == "pow2" or name in ("HEAD_DIM", "DEVICE_BATCH_SIZE"):
            assert new & (new - 1) == 0
        if name == "DEPTH":
            assert abs(new - 8) <= 2
        if name == "ADAM_BETAS":
            assert all(0 < b < 1 for b in new)
            assert sum(a != b for a, b in zip(new, s.proposal.meta["old"])) == 1
        if name.endswith(("RATIO", "FRAC")) and kind == "float":
            assert 0 <= new <= 1
        if kind == "float":
            assert len(repr(new)) <= 8  # rounded, no 0.30000000000000004
        if name == "WINDOW_PATTERN":
            assert set(new) <= {"S", "L"} and "L" in new


def test_deterministic_for_the_same_context():
    steps, best, _ = simulate(10, bowl)
    hist = baseline() + [Attempt(i + 1, "x", s.status, 1.0, s.proposal.description,
                                 s.proposal.meta) for i, s in enumerate(steps)]
    ctx = ctx_for(best, hist, iteration=11, seed=7)
    assert propose(ctx) == propose(ctx) == propose(ctx, BuiltinProposer())


def test_exhausted_search_space_raises():
    src = "SEED = 1\nLR = 0.1  # only knob\nDATA_DIR = 'data'\n"
    steps, _, exc = simulate(50, flat, source=src)
    assert isinstance(exc, ProposalError) and "exhausted" in str(exc)
    news = [s.proposal.meta["new"] for s in steps]
    assert len(news) == len(set(news)) == 6
    with pytest.raises(ProposalError):
        propose(ctx_for("x = compute()\nprint(x)\n", baseline()))


def test_a_keep_is_never_undone():
    src = "LR = 0.04\n"
    hist = baseline() + [Attempt(1, "a", "keep", 0.9, "", {
        "constant": "LR", "old": 0.02, "new": 0.04, "category": "optimizer"})]
    steps, _, exc = simulate(30, flat, source=src)
    assert exc is not None
    for it in range(2, 30):
        try:
            p = propose(ctx_for(src, hist, iteration=it))
        except ProposalError:
            break
        assert p.meta["new"] != 0.02
        hist.append(Attempt(it, "b", "discard", 1.0, p.description, p.meta))


@pytest.mark.parametrize("hypothesis,names,up", [
    ("higher learning rates help", ("EMBEDDING_LR", "UNEMBEDDING_LR", "MATRIX_LR", "SCALAR_LR"), True),
    ("a lower matrix learning rate should be more stable", ("MATRIX_LR",), False),
    ("a deeper model would help", ("DEPTH",), True),
    ("try a different activation function", ("ACTIVATION",), None),
    ("smaller batch size gives more steps", ("TOTAL_BATCH_SIZE", "DEVICE_BATCH_SIZE"), False),
])
def test_hypothesis_steers_the_first_proposal(hypothesis, names, up):
    p = propose(ctx_for(SCRIPT, baseline(), hypothesis=hypothesis))
    assert p.meta["constant"] in names
    if up is not None:
        assert (p.meta["new"] > p.meta["old"]) is up


def test_foreign_history_is_ignored():
    hist = baseline() + [Attempt(1, "a", "discard", 1.1, "swap attention for mamba", {}),
                         Attempt(2, "b", "keep", 0.9, "llm edit", {"category": "architecture"})]
    assert propose(ctx_for(SCRIPT, hist)) == propose(ctx_for(SCRIPT, baseline()))


async def test_async_interface():
    proposer = BuiltinProposer()
    assert proposer.name == "builtin"
    p = await proposer.propose(ctx_for(SCRIPT, baseline()))
    assert isinstance(p, Proposal) and p.new_source != SCRIPT


SMALL = '''LEARNING_RATE = 0.003
BATCH_SIZE = 64
HIDDEN = 16
DEPTH = 2
MAX_STEPS = 1500
'''


def lr_always_helps(source: str) -> float:
    """Every step up in LEARNING_RATE is a keep: a proposer that only chased winners would
    spend the whole first pass on it."""
    return 1.0 - 0.05 * math.log2(values(source)["LEARNING_RATE"] / 0.003)


@pytest.mark.parametrize("seed", range(5))
def test_the_first_pass_tries_the_other_constants_before_chasing_a_winner(seed):
    steps, _, _ = simulate(5, lr_always_helps, source=SMALL, seed=seed)
    names = [s.proposal.meta["constant"] for s in steps]
    assert len(set(names)) >= 4, names
    steps, _, _ = simulate(12, lr_always_helps, source=SMALL, seed=seed)
    assert sum(s.proposal.meta["constant"] == "LEARNING_RATE" for s in steps) >= 4  # ... and then it does


def test_a_width_goes_before_a_depth_and_the_depth_stays_in_the_first_pass():
    """A depth change measured once varies most; kept early on a small model by luck, it blocks
    the widths after it. So the width comes first (but for a few seeds), and the depth still
    comes within the first pass."""
    gpt = SMALL.replace("HIDDEN", "N_EMBD").replace("DEPTH", "N_LAYER")
    for source, width, depth in ((SMALL, "HIDDEN", "DEPTH"), (gpt, "N_EMBD", "N_LAYER")):
        width_first = 0
        for seed in range(20):
            steps, _, _ = simulate(5, lambda src: 1.0, source=source, seed=seed)
            names = [s.proposal.meta["constant"] for s in steps]
            assert len(set(names)) == 5, names  # one pass over all five constants
            width_first += names.index(width) < names.index(depth)
        assert width_first >= 16, (source, width_first)
    # ... unless an aspect ratio makes the depth the model's size (autoresearch's DEPTH): then
    # the depth runs ahead of the schedule constants as before
    def rank(source: str, seed: int, name: str) -> int:
        steps, _, _ = simulate(20, lambda src: 1.0, source=source, seed=seed)
        names = [s.proposal.meta["constant"] for s in steps]
        return names.index(name) if name in names else len(names)
    aspect = [rank(SCRIPT, seed, "DEPTH") < rank(SCRIPT, seed, "WARMDOWN_RATIO") for seed in range(10)]
    no_aspect = SCRIPT.replace("ASPECT_RATIO = 64", "MODEL_DIM = 512").replace("DEPTH * ASPECT_RATIO", "MODEL_DIM")
    plain = [rank(no_aspect, seed, "DEPTH") < rank(no_aspect, seed, "WARMDOWN_RATIO") for seed in range(10)]
    assert sum(aspect) >= 8 and sum(aspect) > sum(plain) + 2, (aspect, plain)


def test_a_width_probes_a_factor_of_4_first_a_batch_size_a_doubling():
    def first(name: str, source: str) -> list:
        hist = baseline()
        out = []
        for it in range(1, 4):
            p = propose(ctx_for(source, hist, iteration=it, vary=(name,)))
            out.append(p.meta["new"])
            hist.append(Attempt(it, "x", "discard", 1.1, p.description, p.meta))
        return out
    assert first("HIDDEN", SMALL)[0] == 64
    assert first("BATCH_SIZE", SMALL)[0] == 128
    # a width tied to a head count stays a multiple of it
    tied = "N_EMBD = 48\nN_HEAD = 3\nassert N_EMBD % N_HEAD == 0\n"
    embd = first("N_EMBD", tied)
    assert embd[0] == 192 and all(v % 3 == 0 for v in embd)
    # a per-head dimension is not capacity (autoresearch's HEAD_DIM sets the head count): x2 first
    assert first("HEAD_DIM", SCRIPT)[0] == 256
