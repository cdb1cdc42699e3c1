"""What values a constant may take next: the move ladders of the built-in proposer (and the
ranges of the optuna backend), from the constant's name, kind and the code's constraints.

Numbers step along a ladder (coarse first: x2, x0.5, then finer), counts by one or two, widths
(x4 first) and context lengths by powers of two, head counts among divisors of the width,
`assert a % b == 0` honoured; strings among a known set (activations, optimizers, attention
windows) or what the script itself mentions.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from autoresearch_tui.agents.constants import Constant, divisibility, is_context_length, name_parts


LADDER = (2.0, 0.5, 1.5, 0.75, 1.25, 0.8)  # coarse first, then finer
POW2_LADDER = (2.0, 0.5, 4.0, 0.25)
# A model width probes a factor of 4 first: one decisive step onto the plateau rather than two
# doublings, whose second gain is often within noise and lost behind a lucky best. Batch
# sizes, context lengths and per-head dimensions keep doubling first (memory: a x4 batch is a
# likely OOM; autoresearch's HEAD_DIM sets the head count, not the width).
WIDTH_LADDER = (4.0, 0.25, 2.0, 0.5)
COUNT_STEPS = (1, -1, 2, -2)
ZERO_FLOATS = (0.1, 0.05, 0.2, 0.02)
ZERO_FRACTIONS = (0.2, 0.5, 0.1)
ZERO_INTS = (1, 2, 4, 8)
ACTIVATIONS = ("gelu", "relu", "silu", "tanh", "relu2")
OPTIMIZERS = ("adamw", "adam", "sgd", "lion", "muon")
COUNT_PARTS = frozenset({"DEPTH", "LAYER", "LAYERS", "BLOCKS"})
WIDTH_PARTS = frozenset({"EMBD", "HIDDEN", "WIDTH", "DIM", "DMODEL", "CHANNELS"})
BETA_PARTS = frozenset({"BETA", "BETAS", "BETA1", "BETA2", "MOMENTUM", "EMA"})
FRACTION_PARTS = frozenset({"RATIO", "FRAC", "FRACTION", "DROPOUT", "PROB", "P"})
@dataclass(frozen=True)
class Move:
    value: Any
    order: int  # position in the fresh exploration order
    dist: float  # how far it is from the current value (log scale where it can)
    dir: tuple[int, int] | None  # (element index, +1 up / -1 down); None for str/bool


def _sig(x: float, digits: int = 3) -> float:
    return float(f"{x:.{digits}g}")


def canon(v: Any) -> Any:
    """Hashable, JSON-stable form of a value for comparing tried moves."""
    if isinstance(v, (list, tuple)):
        return tuple(canon(x) for x in v)
    if isinstance(v, float):
        return float(f"{v:.10g}")
    return v if v is None or isinstance(v, (str, int)) else repr(v)


def jsonable(v: Any) -> Any:
    return [jsonable(x) for x in v] if isinstance(v, (list, tuple)) else v


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def distance(base: float, new: float) -> float:
    if base != 0 and new / base > 0:
        return abs(math.log(new / base))
    return abs(new - base)


def _is_head_count(name: str) -> bool:
    parts = name_parts(name)
    return bool(parts & {"HEAD", "HEADS"}) and not parts & WIDTH_PARTS


def is_width(name: str) -> bool:
    return bool(name_parts(name) & WIDTH_PARTS) and not _is_head_count(name)


def _is_model_width(name: str) -> bool:
    """A width that is the model's capacity: not a per-head dimension (HEAD_DIM)."""
    return is_width(name) and not name_parts(name) & {"HEAD", "HEADS"}


# ---- value moves ----------------------------------------------------------------------

@dataclass(frozen=True)
class Rules:
    """What the code needs of integer sizes: name -> divisors it must keep, name -> the value
    it must divide."""

    multiple_of: dict[str, list[int]]
    divides: dict[str, list[int]]
    pairs: tuple[tuple[str, str], ...] = ()  # (a, b): a % b == 0

    @staticmethod
    def none() -> "Rules":
        return Rules({}, {})


def _divisors_near(target: int, width: int) -> list[int]:
    divs = [d for d in range(1, width + 1) if width % d == 0 and d != target
            and target / 4 <= d <= target * 4]
    return sorted(divs, key=lambda d: (abs(math.log(d / target)), -d))[:4]


def _number_moves(name: str, v: int | float, kind: str,
                  rules: Rules = Rules({}, {})) -> list[tuple[Any, float]]:
    """(new value, distance) in exploration order for one number."""
    parts = name_parts(name)
    if isinstance(v, int):
        if v > 0 and rules.divides.get(name):  # a head count: among the divisors of the width
            cands = _divisors_near(v, min(rules.divides[name]))
        elif v == 0:
            cands = [x * (10 if parts & {"STEPS", "ITERS"} else 1) for x in ZERO_INTS]
        elif parts & COUNT_PARTS and v > 0:
            cands = [v + d for d in COUNT_STEPS if v + d >= 1]
        elif v > 0 and (is_width(name) or is_context_length(name) or rules.multiple_of.get(name)
                        or (v & (v - 1) == 0 and (v >= 2 or kind == "pow2"))):
            ladder = WIDTH_LADDER if _is_model_width(name) else POW2_LADDER
            cands = [int(v * f) for f in ladder if v * f >= 1 and float(v * f).is_integer()]
        else:
            cands = [round(v * f) for f in LADDER]
            cands = [max(1, c) for c in cands] if v >= 1 else cands
        for m in rules.multiple_of.get(name, ()):
            cands = [c for c in cands if c % m == 0]
        return [(c, distance(v, c)) for c in cands]
    if v == 0:
        zeros = ZERO_FRACTIONS if parts & FRACTION_PARTS else ZERO_FLOATS
        return [(z, z) for z in zeros]
    if parts & BETA_PARTS and 0 < v < 1:  # move 1 - beta multiplicatively, stay in (0, 1)
        out = []
        for f in LADDER:
            new = float(f"{1 - _sig((1 - v) * f):.10g}")
            if 0 < new < 1:
                out.append((new, distance(1 - v, 1 - new)))
        return out
    cands = [_sig(v * f) for f in LADDER]
    if parts & FRACTION_PARTS and 0 <= v <= 1:
        cands = [c for c in cands if 0 <= c <= 1]
    return [(c, distance(v, c)) for c in cands]


def _window_alternatives(p: str) -> list[str]:
    n, k = len(p), p.count("L")
    same = ["S" * (n - j) + "L" * j for j in range(1, n + 1)]
    near = [s for s in same if abs(s.count("L") - k) == 1]
    out = near + ["L", "SL", "SSL", "SSSL"] + same
    return [s for i, s in enumerate(out) if s != p and s not in out[:i]]


def str_alternatives(value: str, seen: frozenset[str] = frozenset()) -> list[str]:
    """Other values of a known string set; when the script names some of them (a dict of
    activations, a comment listing the choices), only those."""
    low = value.lower()
    for group in (ACTIVATIONS, OPTIMIZERS):
        if low in group:
            alts = [a for a in group if a != low]
            named = [a for a in alts if a in seen]
            alts = named or alts
            return [a.upper() for a in alts] if value.isupper() else alts
    if re.fullmatch(r"[SL]+", value):
        return _window_alternatives(value)
    return []


def moves_for(const: Constant, rules: Rules | None = None,
              seen: frozenset[str] = frozenset()) -> list[Move]:
    """Every sensible one-step change of a constant, in fresh exploration order."""
    rules = rules or Rules.none()
    v = const.value
    if const.kind == "bool":
        return [Move(not v, 0, 1.0, None)]
    if const.kind == "str":
        return [Move(a, i, float(i + 1), None) for i, a in enumerate(str_alternatives(v, seen))]
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
            for rank, (new, dist) in enumerate(_number_moves(const.name, v, const.kind, rules))
            if new != v]


def direction_of(old: Any, new: Any) -> tuple[int, int] | None:
    if is_num(old) and is_num(new) and old != new:
        return (0, 1 if new > old else -1)
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            if is_num(a) and is_num(b) and a != b:
                return (i, 1 if b > a else -1)
    return None


def element_of(value: Any, index: int) -> Any:
    return value[index] if isinstance(value, (list, tuple)) else value


# ---- what the code says ---------------------------------------------------------------

def rules_of(consts: Sequence[Constant], code: str) -> Rules:
    by_upper = {c.name.upper(): c for c in consts}
    multiple_of: dict[str, list[int]] = defaultdict(list)
    divides: dict[str, list[int]] = defaultdict(list)
    pairs = {(a.upper(), b.upper()) for a, b in divisibility(code)}
    widths = [c for c in consts if is_width(c.name) and c.kind in ("int", "pow2")]
    for c in consts:  # no assertion: a head count still divides the model width
        if _is_head_count(c.name) and c.kind == "int" and len(widths) == 1:
            pairs.add((widths[0].name.upper(), c.name.upper()))
    kept = []
    for a, b in sorted(pairs):
        ca, cb = by_upper.get(a), by_upper.get(b)
        if ca and cb and type(ca.value) is int and type(cb.value) is int and cb.value > 0:
            multiple_of[ca.name].append(cb.value)
            divides[cb.name].append(ca.value)
            kept.append((ca.name, cb.name))
    return Rules(dict(multiple_of), dict(divides), tuple(kept))


def seen_strings(code: str) -> frozenset[str]:
    """String values the script names (literals, quoted words in comments), lower-cased."""
    return frozenset(s.lower() for s in re.findall(r"""["']([A-Za-z0-9_.-]{1,32})["']""", code))


def further_move(name: str, cur: Any, rules: Rules, new: Any, compute: set[str]) -> Move | None:
    """The same step again past a near miss `new` of constant `name` (from its value `cur`),
    at most a doubling past it; None where the ladder should stay: sizes tied to another
    constant, and what buys compute (past a near miss it mostly buys what the budget cuts off)."""
    d = direction_of(cur, new)
    if d is None or name in compute:
        return None
    i = d[0]
    a, b = element_of(cur, i), element_of(new, i)
    parts = name_parts(name)
    if isinstance(a, int) and (rules.divides.get(name) or rules.multiple_of.get(name)):
        return None
    if isinstance(a, int):
        c = b + (b - a) if a <= 0 or parts & COUNT_PARTS else round(b * min(max(b / a, 0.5), 2.0))
        c = c if c != b else b + (b - a)
    elif parts & BETA_PARTS and 0 < a < 1 and 0 < b < 1:
        c = float(f"{1 - _sig((1 - b) * min(max((1 - b) / (1 - a), 0.5), 2.0)):.10g}")
        if not 0 < c < 1:
            return None
    else:
        c = 2 * b if a == 0 or b / a <= 0 else _sig(b * min(max(b / a, 0.5), 2.0))
        if parts & FRACTION_PARTS and 0 <= a <= 1 and not 0 <= c <= 1:
            return None
    if c == b or (isinstance(a, int) and c < 1 <= a):
        return None
    value: Any = c
    if isinstance(cur, (list, tuple)):
        seq = list(cur)
        seq[i] = c
        value = tuple(seq) if isinstance(cur, tuple) else seq
    return Move(value, 99, distance(a, c), d)


def beyond(m: Move, marks: list[tuple[Any, tuple[int, int] | None]]) -> bool:
    """A value at or past one of `marks` (a crash, a clear miss, or a value a keep moved away
    from), in its direction."""
    for value, direction in marks:
        if direction is None or m.dir is None or m.dir[0] != direction[0]:
            continue
        i, sign = direction
        new, bad = element_of(m.value, i), element_of(value, i)
        if is_num(new) and is_num(bad) and sign * (new - bad) >= 0:
            return True
    return False
