"""The built-in offline proposer: one constant changed per iteration, steered by history.

Everything it decides comes from the context (current best script, history, plan, hypothesis,
seed), so a resumed session picks up exactly where it left off. The discipline:

* spread experiments by expected value: every constant has a prior (learning rates and widths
  first, depths with the schedule unless an aspect ratio makes the depth the size), the seed
  perturbs it, a constant not tried yet is worth SWEEP times its prior, each failure on a
  constant halves its value and a keep raises it; so a first pass tries the likely constants
  once each (a winner found early would otherwise be climbed in small steps whose gains are
  within noise, until a lucky measurement blocks the rest), then a winner is followed up (the
  same step again) for as long as it keeps winning;
* read a result within noise of the best (NEAR) as no evidence against its direction: a near
  miss is followed up next, like a keep, once: as far again the same way (at most a doubling
  past it) rather than to the other side; never for what buys compute, which saturates at
  the time budget; a keep that beat the best by no more than noise gets no keep boost;
* never repeat a (constant, base value, new value) that history already holds, nor undo a keep
  or go past the value it left;
* learn from crashes and clear misses: no value further in a direction that crashed, or that
  missed the best by more than noise from the same value (the ladder's finer steps stay); a
  string value the script does not mention is tried once and banned (with the other
  unmentioned ones) after a crash;
* keep the code's constraints (the moves, in moves.py): head counts among divisors of the
  width, widths and context lengths by powers of two, `assert a % b == 0` honoured; skip a
  constant whose gate is off (a final-LR fraction while the warm-down ratio is 0);
* the compute/evaluation contract: evaluation constants are never changed; in a project that
  trains by iteration count, what buys compute is held unless the plan's `vary` names it.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from autoresearch_tui.agents.base import Attempt, Proposal, ProposalContext, SearchExhausted
from autoresearch_tui.agents.constants import (
    Constant,
    compute_names,
    find_constants,
    format_value,
    name_parts,
    replace_constant,
    skip_reason,
    trains_by_iterations,
)
from autoresearch_tui.agents.moves import (
    COUNT_PARTS,
    Move,
    beyond,
    canon,
    direction_of,
    distance,
    element_of,
    further_move,
    is_num,
    jsonable,
    moves_for,
    rules_of,
    seen_strings,
    str_alternatives,
)
from autoresearch_tui.core.categories import SCOPES, category_for_name, in_scope

GATE_PARTS = frozenset({"WARMDOWN", "COOLDOWN", "DECAY"})
STOP_PARTS = frozenset({"N", "NUM", "MAX", "MIN", "SIZE", "TOTAL", "USE", "RATIO", "DEVICE"})
UP_WORDS = frozenset("higher larger bigger more increase increasing raise raising deeper "
                     "wider longer up grow boost double".split())
DOWN_WORDS = frozenset("lower smaller less fewer decrease decreasing reduce reducing shallower "
                       "narrower shorter down shrink halve halving cut".split())
PHRASES = (("learning rate", "LR"), ("deeper", "DEPTH"), ("shallower", "DEPTH"),
           ("layers", "DEPTH"), ("weight decay", "DECAY"), ("momentum", "BETAS"),
           ("warm-up", "WARMUP"), ("heads", "HEAD"), ("wider", "DIM"), ("narrower", "DIM"))
# By _tier. A depth goes after the widths: a depth change moves the optimisation more, so its
# single measurements vary most (spirals, 4 training seeds: DEPTH 2 -> 3 0.942 +- 0.015, HIDDEN
# 16 -> 64 0.958 +- 0.002), and a lucky one kept early on a small model blocks the widths after it.
PRIORS = {"rate": 1.0, "batch": 0.75, "schedule": 0.6, "size": 0.9, "depth": 0.6, "other": 0.45}
KEEP_BOOST = 3.0  # a constant whose last change was kept is worth following up
SWEEP = 4.0  # a constant not tried yet goes before the follow-ups of the others
NEAR = 0.005  # a result within this fraction of the best is within noise: a near miss or a marginal keep
JITTER = 0.35  # the seed moves each prior by a factor in [e^-0.35, e^0.35]
MAX_PROJECT_FILES = 40


def project_source(ctx: ProposalContext) -> str:
    """The editable file, the read-only one and the project's other top-level Python files:
    a config file of assignments has its training loop and its assertions elsewhere."""
    texts = [ctx.train_source, ctx.readonly_source or ""]
    root = Path(ctx.project) if ctx.project else None
    if root is not None and root.is_dir():
        for path in sorted(root.glob("*.py"))[:MAX_PROJECT_FILES]:
            if path.name in (Path(ctx.train_path).name, Path(ctx.readonly_path or "-").name):
                continue
            try:
                if path.stat().st_size < 500_000:
                    texts.append(path.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
    return "\n\n".join(texts)


def _gated_off(c: Constant, consts: Sequence[Constant]) -> bool:
    """A final-LR fraction or minimum LR only matters while a warm-down/decay is on."""
    parts = name_parts(c.name)
    if not (parts & {"FINAL", "MIN"} and parts & {"LR", "FRAC"}
            or parts & {"DECAY"} and parts & {"ITERS", "STEPS"}):
        return False
    gates = [g for g in consts if g.name != c.name and name_parts(g.name) & GATE_PARTS
             and "WEIGHT" not in name_parts(g.name) and not name_parts(g.name) & {"ITERS", "STEPS"}
             and g.kind in ("int", "float", "bool")]
    return bool(gates) and all(not g.value for g in gates)


# ---- hypothesis -----------------------------------------------------------------------

def _hypothesis(text: str | None) -> tuple[set[str], set[str], int | None]:
    """(name tokens, categories, direction) that a free-text hypothesis mentions."""
    if not text:
        return set(), set(), None
    low = text.lower()
    words = re.findall(r"[a-z0-9]+", low)
    tokens = {w.upper() for w in words}
    tokens |= {w[:-1].upper() for w in words if w.endswith("s") and len(w) > 3}
    tokens |= {tok for phrase, tok in PHRASES if phrase in low}
    tokens |= set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text))
    cats = {c for c in SCOPES if c != "all" and (c in low or c.rstrip("s") in low)}
    # The first direction word wins ("smaller batch gives more steps" -> down).
    signs = [1 if w in UP_WORDS else -1 for w in words if w in UP_WORDS or w in DOWN_WORDS]
    return tokens, cats, signs[0] if signs else None


def _tier(name: str, aspect: bool = False) -> str:
    """How commonly impactful a constant is: the key of its prior. With an aspect ratio
    (autoresearch: model_dim = DEPTH * ASPECT_RATIO) the depth sets the width too: a size."""
    parts, upper = name_parts(name), name.upper()
    schedule = ("WARMUP", "WARMDOWN", "COOLDOWN", "DECAY", "FINAL", "FRAC", "BETA", "MOMENTUM",
                "SCHEDULE", "CLIP", "MIN")
    if ("LR" in parts or "LEARNING" in parts) and not any(k in upper for k in schedule):
        return "rate"
    if "BATCH" in parts or "ACCUM" in upper:
        return "batch"
    if any(k in upper for k in schedule):
        return "schedule"
    if parts & COUNT_PARTS and not parts & {"NORM", "SCALE"}:  # not LAYER_NORM_EPS
        return "size" if aspect else "depth"
    if any(k in upper for k in ("ASPECT", "DIM", "HEAD", "WIDTH", "EMBD", "HIDDEN", "MLP",
                                "EXPANSION", "STEPS", "ITERS")):
        return "size"
    return "other"


def _listed(name: str, entries: Sequence[str]) -> bool:
    cat = category_for_name(name)
    return any(e.strip().upper() == name.upper() or e.strip().lower() in (cat, "all")
               for e in entries)


def _named(name: str, entries: Sequence[str]) -> bool:
    return any(e.strip().upper() == name.upper() for e in entries)


def _jitter(seed: int, name: str) -> float:
    """A fixed factor per (seed, constant): the seed changes the order of the search."""
    return math.exp(random.Random(f"{seed}:{name.upper()}").uniform(-JITTER, JITTER))


# ---- the proposer ---------------------------------------------------------------------

@dataclass
class _Record:
    """What history says about one constant."""

    tries: int = 0
    fails: int = 0  # failures since its last keep
    last_kept: bool = False
    kept_dir: tuple[int, int] | None = None
    kept_dist: float = 0.0
    marginal: bool = False  # the last keep beat the best by no more than noise
    near_miss: bool = False  # the last change missed the best by no more than noise


class BuiltinProposer:
    """Offline, deterministic (per seed) search over the script's literal constants."""

    name = "builtin"
    max_failures = 3
    touches_tree = False  # returns a new source and never writes files: the engine may skip a git status

    def __init__(self, max_failures: int | None = None) -> None:
        if max_failures is not None:
            if max_failures < 1:
                raise ValueError("max_failures must be >= 1")
            self.max_failures = max_failures

    async def propose(self, ctx: ProposalContext) -> Proposal:
        return self.plan(ctx)

    def candidates(self, ctx: ProposalContext, code: str | None = None,
                   gates: bool = True) -> list[Constant]:
        """Constants the plan, scope, contract and safety rules allow to change (and, with
        `gates`, whose gate is on: one change at a time cannot open a gate and use it)."""
        consts = find_constants(ctx.train_source)
        code = project_source(ctx) if code is None else code
        held = compute_names(ctx.train_source) if trains_by_iterations(code) else set()
        seen = seen_strings(code)
        out = []
        for c in consts:
            if skip_reason(c.name) or not in_scope(c.name, ctx.scope) or _listed(c.name, ctx.hold):
                continue
            if c.name in held and not _named(c.name, ctx.vary):
                continue
            if ctx.vary and not _listed(c.name, ctx.vary):
                continue
            if c.kind == "str" and not str_alternatives(c.value, seen):
                continue
            if gates and _gated_off(c, consts):
                continue
            out.append(c)
        return out

    def plan(self, ctx: ProposalContext) -> Proposal:
        code = project_source(ctx)
        cands = self.candidates(ctx, code)
        if not cands:
            raise SearchExhausted(
                f"builtin proposer: no tunable constants in {ctx.train_path} "
                f"(scope={ctx.scope!r}, vary={list(ctx.vary)}, hold={list(ctx.hold)}); it varies "
                "top-level literal assignments and never seeds, paths, I/O, evaluation settings or, "
                "in a project that trains by iteration count, what buys compute (name those in vary)")
        consts = find_constants(ctx.train_source)
        rules = rules_of(consts, code)
        compute = compute_names(ctx.train_source)
        seen = seen_strings(code)
        hist = [a for a in ctx.history
                if a.iteration > 0 and isinstance(a.meta.get("constant"), str)]
        tried: dict[str, set[tuple[Any, Any]]] = defaultdict(set)
        tried_values: dict[str, set[Any]] = defaultdict(set)
        undone: dict[str, set[Any]] = defaultdict(set)  # values a keep moved away from
        left: dict[str, list[tuple[Any, tuple[int, int] | None]]] = defaultdict(list)  # ... and which way
        walls: dict[str, list[tuple[Any, Any, tuple[int, int] | None]]] = defaultdict(list)
        crashed: dict[str, list[tuple[Any, tuple[int, int] | None]]] = defaultdict(list)
        records: dict[str, _Record] = defaultdict(_Record)
        near: dict[str, list[tuple[Any, Any, bool]]] = defaultdict(list)  # (base, new, worse) within noise
        best = next((a.metric for a in ctx.history if a.iteration == 0 and a.metric is not None), None)
        sign = 1 if ctx.direction == "max" else -1
        for a in ctx.history:
            gain = None if best is None or a.metric is None else sign * (a.metric - best)
            tol = NEAR * abs(best) if best is not None else 0.0
            if a.iteration > 0 and _kept(a) and a.metric is not None:
                best = a.metric
            if a.iteration <= 0 or not isinstance(a.meta.get("constant"), str):
                continue
            name = a.meta["constant"]
            base, new = canon(a.meta.get("old")), canon(a.meta.get("new"))
            tried[name].add((base, new))
            tried_values[name].add(new)
            rec = records[name]
            rec.tries += 1
            if _kept(a):
                undone[name].add(base)
                left[name].append((base, direction_of(new, base)))
                rec.fails, rec.last_kept, rec.near_miss = 0, True, False
                rec.marginal = gain is not None and gain <= tol
                rec.kept_dir = direction_of(base, new)
                rec.kept_dist = distance(*[element_of(v, rec.kept_dir[0]) for v in (base, new)]) \
                    if rec.kept_dir and is_num(element_of(base, rec.kept_dir[0])) else 0.0
            else:
                # A near miss (worse by no more than noise) is followed up once, further the same
                # way; a tie (often a constant that does not matter) only orders the ladder that
                # way. What buys compute saturates at the time budget: a near miss there is a miss.
                # A clear miss is a wall for that constant's moves from the same value.
                rec.last_kept = False
                close = (gain is not None and -tol <= gain <= 0 and name not in compute
                         and a.status.strip().lower() != "crash")
                if close:
                    near[name].append((base, new, gain < 0))
                elif gain is not None and gain < -tol:
                    walls[name].append((base, new, direction_of(base, new)))
                rec.near_miss = close and gain < 0 and further_move(
                    name, base, rules, new, compute) is not None
                rec.fails += 1
            if a.status.strip().lower() == "crash":
                crashed[name].append((new, direction_of(base, new)))

        # Parallel workers: a value another worker is running now is not proposed again.
        running: dict[str, set[Any]] = defaultdict(set)
        for a in ctx.in_flight:
            if isinstance(a.meta.get("constant"), str):
                running[a.meta["constant"]].add(canon(a.meta.get("new")))

        open_moves: dict[str, list[Move]] = {}
        walled: dict[str, list[Move]] = defaultdict(list)  # only past a clear miss: the last resort
        for c in cands:
            cur = canon(c.value)
            unseen_crashed = c.kind == "str" and any(
                isinstance(v, str) and v.lower() not in seen for v, _ in crashed[c.name])
            moves = []
            further = [further_move(c.name, cur, rules, new, compute)
                       for base, new, miss in near[c.name] if miss and base == cur]
            for m in moves_for(c, rules, seen) + [m for m in further if m is not None]:
                v = canon(m.value)
                if v == cur or (cur, v) in tried[c.name] or v in undone[c.name]:
                    continue
                if c.kind == "str" and m.value.lower() not in seen and (
                        unseen_crashed or v in tried_values[c.name]):
                    continue  # not in the script: tried once at most, none after a crash
                if beyond(m, crashed[c.name]) or beyond(m, left[c.name]):
                    continue  # past a crash or a value a keep moved away from
                if beyond(m, [(new, d) for base, new, d in walls[c.name] if base == cur]):
                    walled[c.name].append(m)
                    continue
                moves.append(m)
            open_moves[c.name] = moves
        if not any(open_moves.values()):
            open_moves = {c.name: walled[c.name] for c in cands}
        free = {name: [m for m in moves if canon(m.value) not in running[name]]
                for name, moves in open_moves.items()}
        if any(free.values()):  # else: only in-flight values are left; better a repeat than a stop
            open_moves = free
        pool = [c for c in cands if open_moves[c.name]]
        if not pool:
            raise SearchExhausted(
                f"builtin proposer: search space exhausted: every move of the {len(cands)} "
                "candidate constant(s) has been tried from their current values; widen the "
                "scope or plan, or add a hypothesis for an LLM proposer")
        tokens, cats, hyp_dir = _hypothesis(ctx.hypothesis)

        def hyp_score(c: Constant) -> int:
            """How strongly the hypothesis names a constant (0: not at all)."""
            if c.name.upper() in tokens:
                return 100
            hits = len((name_parts(c.name) - STOP_PARTS) & tokens)
            return 2 * hits or int(category_for_name(c.name) in cats)

        busy = {name for name, values in running.items() if values}
        index = {c.name: i for i, c in enumerate(cands)}

        aspect = any("ASPECT" in k.name.upper() for k in consts)

        def value(c: Constant) -> float:
            """Expected value of one more experiment on c."""
            rec = records[c.name]
            ev = PRIORS[_tier(c.name, aspect)] * _jitter(ctx.seed, c.name)
            ev *= 0.5 ** rec.fails / (1 + 0.25 * rec.tries)
            if rec.tries == 0:
                ev *= SWEEP
            if rec.last_kept:
                ev *= 1.0 if rec.marginal else KEEP_BOOST
            elif rec.near_miss:
                ev *= KEEP_BOOST  # followed up like a keep, once: a second miss counts
            if rec.fails >= self.max_failures:
                ev *= 0.01  # rested until the others are rested too
            if c.name in busy:
                ev *= 0.01  # the workers test different hypotheses
            return ev * (1 + hyp_score(c))

        chosen = max(pool, key=lambda c: (value(c), -index[c.name]))
        rec = records[chosen.name]
        want = hyp_dir if hyp_score(chosen) else None
        cur = canon(chosen.value)
        near_dist = {}  # direction -> the farthest near miss that way from the current value
        for base, new, _ in near[chosen.name]:
            d = direction_of(base, new)
            if base == cur and d is not None:
                near_dist[d] = max(near_dist.get(d, 0.0), distance(element_of(base, d[0]), element_of(new, d[0])))
        failed_dirs = {direction_of(canon(a.meta.get("old")), canon(a.meta.get("new")))
                       for a in hist if a.meta["constant"] == chosen.name and not _kept(a)
                       and canon(a.meta.get("old")) == cur
                       and (canon(a.meta.get("old")), canon(a.meta.get("new"))) not in
                       {(base, new) for base, new, _ in near[chosen.name]}}

        def key(m: Move) -> tuple:
            if rec.last_kept and rec.kept_dir is not None:  # the same step again, then nearer
                axis = m.dir is not None and m.dir[0] == rec.kept_dir[0]
                return (0 if m.dir == rec.kept_dir else 1 if axis else 2,
                        abs(m.dist - rec.kept_dist), m.order)
            off = want is not None and m.dir is not None and m.dir[1] != want
            past_near = m.dir in near_dist and m.dist > near_dist[m.dir] and m.dir not in failed_dirs
            return (1 if off else 0, not past_near, m.dir in failed_dirs, m.order)

        move = min(open_moves[chosen.name], key=key)
        return self._proposal(ctx, chosen, move)

    def _proposal(self, ctx: ProposalContext, const: Constant, move: Move) -> Proposal:
        new_source = replace_constant(ctx.train_source, const.name, move.value)
        old_text = " ".join(const.text.split())
        new_text = " ".join(format_value(const, move.value).split())
        return Proposal(
            new_source=new_source,
            description=f"{const.name} {old_text} -> {new_text}",
            meta={"constant": const.name, "old": jsonable(const.value),
                  "new": jsonable(move.value), "category": category_for_name(const.name)},
        )


def _kept(a: Attempt) -> bool:
    return a.status.strip().lower() == "keep"
