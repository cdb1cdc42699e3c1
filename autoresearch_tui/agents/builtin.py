"""The built-in offline proposer: one constant changed per iteration, steered by history.

Everything it decides comes from the context (current best script, history, plan, hypothesis),
so a resumed session picks up exactly where it left off. The discipline:

* stay on a constant after a keep, trying nearby values in the winning direction first, then
  the other side; leave it after `max_failures` failures in a row (a different category
  after repeated failures);
* never repeat a (constant, base value, new value) that history already holds, nor undo a keep;
* start with the commonly impactful constants (learning rates, batch, schedule, sizes), and
  with those the hypothesis names, in the direction it names.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from autoresearch_tui.agents.base import Attempt, Proposal, ProposalContext, SearchExhausted
from autoresearch_tui.agents.constants import (
    Constant,
    find_constants,
    format_value,
    replace_constant,
)
from autoresearch_tui.core.categories import SCOPES, category_for_name, in_scope

LADDER = (2.0, 0.5, 1.5, 0.75, 1.25, 0.8)  # coarse first, then finer
POW2_LADDER = (2.0, 0.5, 4.0, 0.25)
COUNT_STEPS = (1, -1, 2, -2)
ZERO_FLOATS = (0.1, 0.05, 0.2, 0.02)
ZERO_INTS = (1, 2, 4, 8)
ACTIVATIONS = ("gelu", "relu", "silu", "relu2", "tanh")
OPTIMIZERS = ("adamw", "adam", "sgd", "lion", "muon")
# Name parts of constants that are IO, logging or budget, not research knobs.
SKIP_PARTS = frozenset({
    "PATH", "DIR", "FILE", "FILENAME", "URL", "LOG", "LOGS", "LOGGING", "WANDB", "SAVE",
    "CHECKPOINT", "CKPT", "OUTPUT", "VERBOSE", "DEBUG", "PRINT", "EVAL", "BUDGET", "TIME",
    "PORT", "HOST", "RANK", "WORKERS", "COMPILE", "PROFILE", "INTERVAL", "EVERY", "FREQ", "NAME",
})
COUNT_PARTS = frozenset({"DEPTH", "LAYER", "LAYERS", "HEADS", "BLOCK", "BLOCKS"})
BETA_PARTS = frozenset({"BETA", "BETAS", "BETA1", "BETA2", "MOMENTUM", "EMA"})
FRACTION_PARTS = frozenset({"RATIO", "FRAC", "FRACTION", "DROPOUT", "PROB", "P"})
STOP_PARTS = frozenset({"N", "NUM", "MAX", "MIN", "SIZE", "TOTAL", "USE", "RATIO", "DEVICE"})
UP_WORDS = frozenset("higher larger bigger more increase increasing raise raising deeper "
                     "wider longer up grow boost double".split())
DOWN_WORDS = frozenset("lower smaller less fewer decrease decreasing reduce reducing shallower "
                       "narrower shorter down shrink halve halving cut".split())
PHRASES = (("learning rate", "LR"), ("deeper", "DEPTH"), ("shallower", "DEPTH"),
           ("layers", "DEPTH"), ("weight decay", "DECAY"), ("momentum", "BETAS"),
           ("warm-up", "WARMUP"), ("heads", "HEAD"), ("wider", "DIM"), ("narrower", "DIM"))


@dataclass(frozen=True)
class Move:
    value: Any
    order: int  # position in the fresh exploration order
    dist: float  # how far it is from the current value
    dir: tuple[int, int] | None  # (element index, +1 up / -1 down); None for str/bool


def _parts(name: str) -> set[str]:
    return {p for p in name.upper().split("_") if p}


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def _canon(v: Any) -> Any:
    """Hashable, JSON-stable form of a value for comparing tried moves."""
    if isinstance(v, (list, tuple)):
        return tuple(_canon(x) for x in v)
    if isinstance(v, float):
        return float(f"{v:.10g}")
    return v if v is None or isinstance(v, (str, int)) else repr(v)


def _jsonable(v: Any) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, (list, tuple)) else v


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _dist(base: float, new: float) -> float:
    if base != 0 and new / base > 0:
        return abs(math.log(new / base))
    return abs(new - base)


# ---- value moves ----------------------------------------------------------------------

def _number_moves(name: str, v: int | float, kind: str) -> list[tuple[Any, float]]:
    """(new value, distance) in exploration order for one number."""
    parts = _parts(name)
    if isinstance(v, int):
        is_count = bool(parts & COUNT_PARTS) or ("HEAD" in parts and "DIM" not in parts)
        if v == 0:
            cands = [x * (10 if parts & {"STEPS", "ITERS"} else 1) for x in ZERO_INTS]
        elif is_count and v > 0:
            cands = [v + d for d in COUNT_STEPS if v + d >= 1]
        elif v > 0 and v & (v - 1) == 0 and (v >= 2 or kind == "pow2"):
            cands = [int(v * f) for f in POW2_LADDER if v * f >= 1]
        else:
            cands = [round(v * f) for f in LADDER]
            cands = [max(1, c) for c in cands] if v >= 1 else cands
        return [(c, _dist(v, c)) for c in cands]
    if v == 0:
        return [(z, z) for z in ZERO_FLOATS]
    if parts & BETA_PARTS and 0 < v < 1:  # move 1 - beta multiplicatively, stay in (0, 1)
        out = []
        for f in LADDER:
            new = float(f"{1 - _sig((1 - v) * f):.10g}")
            if 0 < new < 1:
                out.append((new, _dist(1 - v, 1 - new)))
        return out
    cands = [_sig(v * f) for f in LADDER]
    if parts & FRACTION_PARTS and 0 <= v <= 1:
        cands = [c for c in cands if 0 <= c <= 1]
    return [(c, _dist(v, c)) for c in cands]


def _window_alternatives(p: str) -> list[str]:
    n, k = len(p), p.count("L")
    same = ["S" * (n - j) + "L" * j for j in range(1, n + 1)]
    near = [s for s in same if abs(s.count("L") - k) == 1]
    out = near + ["L", "SL", "SSL", "SSSL"] + same
    return [s for i, s in enumerate(out) if s != p and s not in out[:i]]


def _str_alternatives(value: str) -> list[str]:
    low = value.lower()
    for group in (ACTIVATIONS, OPTIMIZERS):
        if low in group:
            alts = [a for a in group if a != low]
            return [a.upper() for a in alts] if value.isupper() else alts
    if re.fullmatch(r"[SL]+", value):
        return _window_alternatives(value)
    return []


def moves_for(const: Constant) -> list[Move]:
    """Every sensible one-step change of a constant, in fresh exploration order."""
    v = const.value
    if const.kind == "bool":
        return [Move(not v, 0, 1.0, None)]
    if const.kind == "str":
        return [Move(a, i, float(i + 1), None) for i, a in enumerate(_str_alternatives(v))]
    if const.kind == "tuple":
        moves = []
        for i, elem in enumerate(v):
            kind = "float" if isinstance(elem, float) else "int"
            for rank, (new, dist) in enumerate(_number_moves(const.name, elem, kind)):
                if new == elem:
                    continue
                seq = list(v)
                seq[i] = new
                value = tuple(seq) if isinstance(v, tuple) else seq
                moves.append(Move(value, rank * len(v) + i, dist, (i, 1 if new > elem else -1)))
        return sorted(moves, key=lambda m: m.order)
    return [Move(new, rank, dist, (0, 1 if new > v else -1))
            for rank, (new, dist) in enumerate(_number_moves(const.name, v, const.kind))
            if new != v]


def _direction(old: Any, new: Any) -> tuple[int, int] | None:
    if _is_num(old) and _is_num(new) and old != new:
        return (0, 1 if new > old else -1)
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            if _is_num(a) and _is_num(b) and a != b:
                return (i, 1 if b > a else -1)
    return None


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


def _tier(name: str) -> int:
    """How commonly impactful a constant is: lower runs first."""
    parts, upper = _parts(name), name.upper()
    schedule = ("WARMUP", "WARMDOWN", "COOLDOWN", "DECAY", "FINAL", "FRAC", "BETA", "MOMENTUM",
                "SCHEDULE", "CLIP")
    if ("LR" in parts or "LEARNING" in parts) and not any(k in upper for k in schedule):
        return 0
    if "BATCH" in parts or "ACCUM" in upper:
        return 1
    if any(k in upper for k in schedule):
        return 2
    if any(k in upper for k in ("DEPTH", "LAYER", "ASPECT", "DIM", "HEAD", "WIDTH", "EMBD",
                                "HIDDEN", "MLP", "EXPANSION")):
        return 3
    return 4


def _listed(name: str, entries: Sequence[str]) -> bool:
    cat = category_for_name(name)
    return any(e.strip().upper() == name.upper() or e.strip().lower() in (cat, "all")
               for e in entries)


# ---- the proposer ---------------------------------------------------------------------

class BuiltinProposer:
    """Offline, deterministic hill-climbing over the script's literal constants."""

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

    def candidates(self, ctx: ProposalContext) -> list[Constant]:
        """Constants the plan, scope and safety rules allow to change."""
        out = []
        for c in find_constants(ctx.train_source):
            parts = _parts(c.name)
            if "SEED" in c.name.upper() or parts & SKIP_PARTS:
                continue
            if not in_scope(c.name, ctx.scope) or _listed(c.name, ctx.hold):
                continue
            if ctx.vary and not _listed(c.name, ctx.vary):
                continue
            if c.kind == "str" and not _str_alternatives(c.value):
                continue
            out.append(c)
        return out

    def plan(self, ctx: ProposalContext) -> Proposal:
        cands = self.candidates(ctx)
        if not cands:
            raise SearchExhausted(
                f"builtin proposer: no tunable constants in {ctx.train_path} "
                f"(scope={ctx.scope!r}, vary={list(ctx.vary)}, hold={list(ctx.hold)}); "
                "it varies top-level UPPER_CASE literals and never seeds, paths or IO flags")
        hist = [a for a in ctx.history
                if a.iteration > 0 and isinstance(a.meta.get("constant"), str)]
        tried: dict[str, set[tuple[Any, Any]]] = defaultdict(set)
        undone: dict[str, set[Any]] = defaultdict(set)  # values a keep moved away from
        for a in hist:
            name = a.meta["constant"]
            base, new = _canon(a.meta.get("old")), _canon(a.meta.get("new"))
            tried[name].add((base, new))
            if _kept(a):
                undone[name].add(base)

        # Parallel workers: a value another worker is running now is not proposed again.
        running: dict[str, set[Any]] = defaultdict(set)
        for a in ctx.in_flight:
            if isinstance(a.meta.get("constant"), str):
                running[a.meta["constant"]].add(_canon(a.meta.get("new")))

        open_moves: dict[str, list[Move]] = {}
        for c in cands:
            cur = _canon(c.value)
            open_moves[c.name] = [
                m for m in moves_for(c)
                if _canon(m.value) != cur and (cur, _canon(m.value)) not in tried[c.name]
                and _canon(m.value) not in undone[c.name]]
        free = {name: [m for m in moves if _canon(m.value) not in running[name]]
                for name, moves in open_moves.items()}
        if any(free.values()):  # else: only in-flight values are left; better a repeat than a stop
            open_moves = free
        by_name = {c.name: c for c in cands}
        tokens, cats, hyp_dir = _hypothesis(ctx.hypothesis)

        def hyp_score(c: Constant) -> int:
            """How strongly the hypothesis names a constant (0: not at all)."""
            if c.name in tokens:
                return 100
            hits = len((_parts(c.name) - STOP_PARTS) & tokens)
            return 2 * hits or int(category_for_name(c.name) in cats)

        focus, after_keep, kept_dir, fails = self._focus(hist)
        if focus in by_name and open_moves[focus] and fails < self.max_failures:
            chosen = by_name[focus]
        else:
            busy = {name for name, values in running.items() if values}
            chosen = self._switch(cands, open_moves, hist, focus, hyp_score, busy)
            after_keep = False
        moves = open_moves[chosen.name]
        want = hyp_dir if hyp_score(chosen) else None

        def key(m: Move) -> tuple:
            if after_keep:  # nearby values in the winning direction, then the other side
                axis = m.dir is not None and kept_dir is not None and m.dir[0] == kept_dir[0]
                return (0 if m.dir == kept_dir else 1 if axis else 2, m.dist, m.order)
            off = want is not None and m.dir is not None and m.dir[1] != want
            return (1 if off else 0, m.order)

        move = min(moves, key=key)
        return self._proposal(ctx, chosen, move)

    def _focus(self, hist: list[Attempt]) -> tuple[str | None, bool, Any, int]:
        """(constant, kept?, kept direction, failures since) of the trailing run."""
        if not hist:
            return None, False, None, 0
        focus = hist[-1].meta["constant"]
        run: list[Attempt] = []
        for a in reversed(hist):
            if a.meta["constant"] != focus:
                break
            run.insert(0, a)
        keeps = [i for i, a in enumerate(run) if _kept(a)]
        if not keeps:
            return focus, False, None, len(run)
        k = run[keeps[-1]]
        kept_dir = _direction(k.meta.get("old"), k.meta.get("new"))
        return focus, True, kept_dir, len(run) - keeps[-1] - 1

    def _switch(self, cands: list[Constant], open_moves: dict[str, list[Move]],
                hist: list[Attempt], focus: str | None, hyp_score: Any,
                busy: set[str] | frozenset[str] = frozenset()) -> Constant:
        pool = [c for c in cands if open_moves[c.name] and c.name != focus]
        pool = pool or [c for c in cands if open_moves[c.name]]
        if not pool:
            raise SearchExhausted(
                f"builtin proposer: search space exhausted: every move of the {len(cands)} "
                "candidate constant(s) has been tried from their current values; widen the "
                "scope or plan, or add a hypothesis for an LLM proposer")
        streak: list[Attempt] = []
        for a in reversed(hist):
            if _kept(a):
                break
            streak.append(a)
        # After repeated failures, move away from the category that just failed.
        avoid = (category_for_name(focus) if focus and len(streak) >= 2 * self.max_failures
                 else None)
        index = {c.name: i for i, c in enumerate(cands)}

        def visits(c: Constant) -> int:
            cur = _canon(c.value)
            return sum(1 for a in hist
                       if a.meta["constant"] == c.name and _canon(a.meta.get("old")) == cur)

        # Constants no worker is running come first: the workers test different hypotheses.
        return min(pool, key=lambda c: (c.name in busy, category_for_name(c.name) == avoid,
                                        visits(c), -hyp_score(c), _tier(c.name), index[c.name]))

    def _proposal(self, ctx: ProposalContext, const: Constant, move: Move) -> Proposal:
        new_source = replace_constant(ctx.train_source, const.name, move.value)
        old_text = " ".join(const.text.split())
        new_text = " ".join(format_value(const, move.value).split())
        return Proposal(
            new_source=new_source,
            description=f"{const.name} {old_text} -> {new_text}",
            meta={"constant": const.name, "old": _jsonable(const.value),
                  "new": _jsonable(move.value), "category": category_for_name(const.name)},
        )


def _kept(a: Attempt) -> bool:
    return a.status.strip().lower() == "keep"
