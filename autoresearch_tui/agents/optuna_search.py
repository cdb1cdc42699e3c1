"""`agent = "optuna"`: an Optuna study (TPE by default) over the constants the built-in proposer
would vary, one trial per experiment.

Stateless by design: every proposal rebuilds the study from the context's history (each trial's
parameters are in its proposal's meta, which the session folder keeps), so a resumed session, a
prepared candidate or a parallel worker all see every result told back; a crash is a failed
trial. The search space comes from the defaults (the values of the first trial's script): log
scale for rates and decays, integers for sizes (head counts among the divisors of the width,
widths and context lengths by powers of two), categories for known string sets. Whether a
trial is kept stays the engine's decision.
"""

from __future__ import annotations

import math
import re
from typing import Any

from autoresearch_tui.agents.base import (
    AgentUnavailable,
    Attempt,
    Proposal,
    ProposalContext,
    ProposalError,
    SearchExhausted,
)
from autoresearch_tui.agents.builtin import BuiltinProposer, project_source
from autoresearch_tui.agents.moves import (
    BETA_PARTS,
    COUNT_PARTS,
    FRACTION_PARTS,
    is_width,
    jsonable,
    rules_of,
    seen_strings,
    str_alternatives,
)
from autoresearch_tui.agents.constants import (
    Constant,
    find_constants,
    format_value,
    is_context_length,
    name_parts,
    replace_constant,
)
from autoresearch_tui.core.categories import category_for_name

SAMPLERS = {"tpe": "TPE", "random": "random"}
_DESC_RE = re.compile(r"^(?:TPE|random) trial \d+: (.*)$")


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise AgentUnavailable('agent "optuna" needs Optuna: pip install "autoresearch-tui[optuna]"') from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _pow2_choices(v: int, multiple_of: list[int]) -> list[int]:
    out = [int(v * f) for f in (0.25, 0.5, 1, 2, 4) if float(v * f).is_integer() and v * f >= 1]
    return [c for c in out if all(c % m == 0 for m in multiple_of)] or [v]


def distribution(name: str, v: Any, rules: Any, seen: frozenset[str]) -> Any | None:
    """The Optuna distribution of one value (an element of a tuple gets its own), or None."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    parts = name_parts(name)
    if isinstance(v, bool):
        return CategoricalDistribution([False, True])
    if isinstance(v, str):
        alts = str_alternatives(v, seen)
        return CategoricalDistribution([v, *alts]) if alts else None
    if isinstance(v, int):
        widths = rules.divides.get(name)
        if widths and v > 0:  # a head count: one of the divisors of the width
            w = min(widths)
            return CategoricalDistribution([d for d in range(1, w + 1) if w % d == 0
                                            and v / 4 <= d <= v * 4])
        if v == 0:
            return IntDistribution(0, 8)
        if parts & COUNT_PARTS:
            return IntDistribution(max(1, v // 2), max(v * 2, v + 2))
        if is_width(name) or is_context_length(name) or rules.multiple_of.get(name) or v & (v - 1) == 0:
            return CategoricalDistribution(_pow2_choices(v, rules.multiple_of.get(name, [])))
        return IntDistribution(max(1, v // 4), max(v * 4, v + 4), log=True)
    if isinstance(v, float):
        if parts & BETA_PARTS and 0 < v < 1:
            low = max(0.5, 1 - (1 - v) * 10)
            return FloatDistribution(low, 1 - (1 - v) / 10)
        if parts & FRACTION_PARTS and 0 <= v <= 1:
            return FloatDistribution(0.0, 1.0)
        if v == 0:
            return FloatDistribution(0.0, 0.3)
        if v > 0:
            return FloatDistribution(v / 10, v * 10, log=True)
        return FloatDistribution(v * 10, v / 10)
    return None


def _params(values: dict[str, Any]) -> dict[str, Any]:
    """name -> value, a tuple's elements as NAME[i]."""
    out = {}
    for name, v in values.items():
        if isinstance(v, (list, tuple)):
            out.update({f"{name}[{i}]": x for i, x in enumerate(v)})
        else:
            out[name] = v
    return out


def _round(x: float) -> float:
    return float(f"{x:.3g}")


class OptunaProposer:
    """Multi-constant trials from an Optuna sampler; `sampler="random"` for a random search."""

    touches_tree = False

    def __init__(self, sampler: str = "tpe") -> None:
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}")
        self.sampler = sampler
        self.name = "optuna" if sampler == "tpe" else f"optuna-{sampler}"

    async def propose(self, ctx: ProposalContext) -> Proposal:
        return self.plan(ctx)

    def space(self, ctx: ProposalContext, defaults: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """(param name -> distribution, divisibility rules), over what the built-in proposer may vary."""
        code = project_source(ctx)
        names = {c.name for c in BuiltinProposer().candidates(ctx, code, gates=False)}
        consts = [c for c in find_constants(ctx.train_source) if c.name in names]
        rules = rules_of(consts, code)
        seen = seen_strings(code)
        space = {}
        for c in consts:
            base = defaults.get(c.name, c.value)
            for key, v in _params({c.name: base}).items():
                dist = distribution(c.name, v, rules, seen)
                if dist is not None:
                    space[key] = dist
        return space, rules

    def plan(self, ctx: ProposalContext) -> Proposal:
        optuna = _optuna()
        current = {c.name: c for c in find_constants(ctx.train_source)}
        trials = [a for a in ctx.history if _is_trial(a)]
        defaults = next((a.meta["optuna"]["defaults"] for a in trials if isinstance(a.meta.get("optuna"), dict)
                         and isinstance(a.meta["optuna"].get("defaults"), dict)), None)
        if defaults is None:  # first trial, or metas lost: undo the kept trials' changes
            defaults = {name: jsonable(c.value) for name, c in current.items()}
            for a in reversed(trials):
                if a.status.strip().lower() == "keep":
                    defaults.update({name: old for name, old, _ in _changes(a.description) or ()})
        space, rules = self.space(ctx, defaults)
        if not space:
            raise SearchExhausted(f"optuna: no tunable constants in {ctx.train_path} (scope={ctx.scope!r}, "
                                  f"vary={list(ctx.vary)}, hold={list(ctx.hold)})")
        study = self._study(optuna, ctx, space, defaults, trials)
        # Parallel workers: trials in flight take their numbers (and their seeds) already.
        running = [a for a in ctx.in_flight if isinstance(a.meta.get("optuna"), dict)]
        number = len(trials) + len(running) + 1
        for _ in range(20):
            trial = study.ask(space)
            values = _repair(self._values(trial.params, current), rules)
            changes = [(n, v) for n, v in values.items() if jsonable(current[n].value) != jsonable(v)]
            if changes:
                break
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            raise ProposalError("optuna: the sampler keeps proposing the current script")
        source = ctx.train_source
        parts = []
        for name, v in changes:
            const = current[name]
            parts.append(f"{name} {' '.join(const.text.split())} -> {' '.join(format_value(const, v).split())}")
            source = replace_constant(source, name, v)
        label = "TPE" if self.sampler == "tpe" else "random"
        cats = {category_for_name(n) for n, _ in changes}
        return Proposal(
            new_source=source,
            description=f"{label} trial {number}: " + ", ".join(parts),
            meta={"optuna": {"trial": number, "sampler": self.sampler, "params": trial.params,
                             "values": {**{n: jsonable(c.value) for n, c in current.items() if n in defaults},
                                        **{n: jsonable(v) for n, v in values.items()}},
                             "defaults": defaults},
                  "category": cats.pop() if len(cats) == 1 else "all"},
        )

    def _study(self, optuna: Any, ctx: ProposalContext, space: dict[str, Any], defaults: dict[str, Any],
               trials: list[Attempt]) -> Any:
        # A new seed per trial count: the same history gives the same proposal, the next one another.
        # (the random search's seeds differ from the TPE's, whose first 10 trials are random too)
        seed = (ctx.seed * 1_000_003 + len(trials) + 101 * len(ctx.in_flight)
                + (0 if self.sampler == "tpe" else 7_777)) % 2**32
        sampler = (optuna.samplers.TPESampler(seed=seed) if self.sampler == "tpe"
                   else optuna.samplers.RandomSampler(seed=seed))
        study = optuna.create_study(direction="minimize" if ctx.direction == "min" else "maximize",
                                    sampler=sampler)
        # Each trial's parameters: from its meta, else (meta lost) from its description applied
        # over the best trial's values at the time, replayed in order like the engine did.
        best = dict(defaults)
        told: list[tuple[dict[str, Any], Attempt]] = []
        for a in ctx.history:
            if a.iteration == 0:
                told.append((_params(defaults), a))
                continue
            if not _is_trial(a):
                continue
            info = a.meta.get("optuna") if isinstance(a.meta.get("optuna"), dict) else {}
            values = info.get("values") if isinstance(info.get("values"), dict) else _parse_description(a.description, best)
            if values is None:
                continue
            if a.status.strip().lower() == "keep":
                best = dict(values)
            told.append((info.get("params") if isinstance(info.get("params"), dict) else _params(values), a))
        for params, a in told:
            fitted = {k: v for k, v in params.items() if k in space}
            if set(fitted) != set(space):
                continue  # a trial of another space (the plan changed): not comparable
            ok = a.metric is not None and a.status.strip().lower() != "crash" and math.isfinite(a.metric)
            try:
                study.add_trial(optuna.trial.create_trial(
                    params=fitted, distributions=dict(space), value=a.metric if ok else None,
                    state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL))
            except ValueError:
                continue  # a value outside today's space
        return study

    def _values(self, params: dict[str, Any], current: dict[str, Constant]) -> dict[str, Any]:
        """Constant name -> value to write, tuples reassembled, floats rounded to 3 digits."""
        out: dict[str, Any] = {}
        for key, v in params.items():
            m = re.fullmatch(r"(.+)\[(\d+)\]", key)
            name = m.group(1) if m else key
            if isinstance(v, float):
                v = _round(v)
            if m:
                seq = list(out.get(name, current[name].value))
                seq[int(m.group(2))] = v
                out[name] = tuple(seq) if isinstance(current[name].value, tuple) else seq
            else:
                out[name] = v
        return out


def _is_trial(a: Attempt) -> bool:
    """A trial of this backend: its meta says so, or (a row recreated from results.tsv) its description."""
    return isinstance(a.meta.get("optuna"), dict) or (a.iteration > 0 and bool(_DESC_RE.match(a.description.strip())))


def _repair(values: dict[str, Any], rules: Any) -> dict[str, Any]:
    """A count that no longer divides the sampled width (`assert a % b == 0`) becomes the
    width's divisor nearest to it."""
    for a, b in rules.pairs:
        width, head = values.get(a), values.get(b)
        if isinstance(width, int) and isinstance(head, int) and width > 0 and head > 0 and width % head:
            divs = [d for d in range(1, width + 1) if width % d == 0]
            values[b] = min(divs, key=lambda d: (abs(math.log(d / head)), d))
    return values


def _changes(description: str) -> list[tuple[str, Any, Any]] | None:
    """(name, old, new) of each change in `TPE trial 7: DEPTH 2 -> 4, LEARNING_RATE 0.003 -> 0.0072`."""
    m = _DESC_RE.match(description.strip())
    if not m:
        return None
    out = []
    for part in re.split(r",\s*(?=[A-Za-z_][A-Za-z0-9_]* )", m.group(1)):
        name, _, change = part.partition(" ")
        old, sep, new = change.rpartition(" -> ")
        try:
            out.append((name, jsonable(_literal(old)), jsonable(_literal(new))))
        except (ValueError, SyntaxError):
            return None
    return out


def _parse_description(description: str, best: dict[str, Any]) -> dict[str, Any] | None:
    """Values of a trial whose meta was lost: its changes written over the best values of the time."""
    changes = _changes(description)
    if changes is None:
        return None
    return {**best, **{name: new for name, _, new in changes}}


def _literal(text: str) -> Any:
    import ast

    node = ast.parse(text, mode="eval").body
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return ast.literal_eval(node.left) ** ast.literal_eval(node.right)
    return ast.literal_eval(node)
