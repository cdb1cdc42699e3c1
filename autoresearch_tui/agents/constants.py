"""Find and edit the top-level hyperparameter constants of a training script.

`find_constants` lists assignments such as `MATRIX_LR = 0.04`, `TOTAL_BATCH_SIZE = 2**19` or,
nanoGPT-style, `learning_rate = 6e-4` with exact source offsets; `replace_constant` rewrites
only the value's text, in the style of the old one, and leaves every other byte alone.

The compute/evaluation contract lives here too, as plain functions of source text that the
proposers, the engine and the summary share: `skip_reason` (never a research knob),
`evaluation_names`, `compute_names`, `trains_by_iterations` and `divisibility`.
"""

from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

KINDS = ("int", "float", "pow2", "tuple", "str", "bool")
MAX_STR_LEN = 64
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SIMPLE_STR_RE = re.compile(r"""^[rRuU]?(?:"[^"\\\n]*"|'[^'\\\n]*')$""")
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Constant:
    name: str
    value: Any  # int | float | bool | str | tuple | list
    kind: str  # one of KINDS
    text: str  # the value's original source text
    start: int  # character offsets of `text` in the source
    end: int
    line: int  # 1-based line of the assignment
    comment: str | None = None  # trailing comment on the value's last line, without '#'


class _Lines:
    """Maps ast (line, utf-8 byte column) positions to character offsets."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.starts = [0] + [m.end() for m in _NEWLINE_RE.finditer(source)]

    def offset(self, lineno: int, col: int) -> int:
        start = self.starts[lineno - 1]
        end = self.starts[lineno] if lineno < len(self.starts) else len(self.source)
        line = self.source[start:end]
        return start + len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return (self.offset(node.lineno, node.col_offset),
                self.offset(node.end_lineno, node.end_col_offset))


def _number(node: ast.AST) -> int | float | None:
    """An int/float literal, optionally with a unary sign (bools and complex excluded)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    return None


def _classify(node: ast.AST, text: str) -> tuple[str, Any] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return "bool", node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        ok = len(node.value) <= MAX_STR_LEN and _SIMPLE_STR_RE.match(text)
        return ("str", node.value) if ok else None
    num = _number(node)
    if num is not None:
        if isinstance(num, float) and not math.isfinite(num):
            return None
        return ("float" if isinstance(num, float) else "int"), num
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exp = _number(node.left), _number(node.right)
        if type(base) is int and type(exp) is int and 0 <= exp <= 128 and base > 0:
            return ("pow2" if base == 2 else "int"), base**exp
        return None
    if isinstance(node, (ast.Tuple, ast.List)) and node.elts:
        values = [_number(e) for e in node.elts]
        if any(v is None for v in values):
            return None
        return "tuple", tuple(values) if isinstance(node, ast.Tuple) else list(values)
    return None


def _comments(source: str, lines: _Lines) -> dict[int, tuple[int, str]]:
    """line -> (char offset, text) of each comment token."""
    found: dict[int, tuple[int, str]] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                found[row] = (lines.starts[row - 1] + col, tok.string[1:].strip())
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def _rebound(tree: ast.Module) -> set[str]:
    """Module names bound anywhere but a top-level statement: loop state such as `step = 0`
    followed by `step += 1` in the training loop, or a `global` written by a function."""
    found: set[str] = set()

    def visit(node: ast.AST, names: set[str] | None) -> None:
        # names: the globals a function declares (None at module level: every store counts)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            declared = {n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names}
            names = declared or set()
            if not declared:
                return
        elif isinstance(node, (ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            if names is None or node.id in names:
                found.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, names)

    for stmt in tree.body:
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            visit(stmt, None)
    return found


def find_constants(source: str) -> list[Constant]:
    """Top-level `name = literal` assignments, in source order (last assignment wins).

    A name also bound elsewhere (a loop, an `if`, a function's `global`) is state, not a knob."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = _Lines(source)
    rebound = _rebound(tree)
    latest: dict[str, Constant | None] = {}
    for stmt in tree.body:
        target: ast.AST | None = None
        value: ast.AST | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            latest[stmt.target.id] = None  # value no longer a plain literal
            continue
        elif isinstance(stmt, ast.Assign):
            for tgt in stmt.targets:
                if isinstance(tgt, ast.Name):
                    latest[tgt.id] = None
            continue
        if not isinstance(target, ast.Name) or value is None:
            for node in ast.walk(target) if target is not None else ():
                if isinstance(node, ast.Name):
                    latest[node.id] = None  # e.g. `A, B = 1, 2` rebinds A and B
            continue
        name = target.id
        start, end = lines.span(value)
        text = source[start:end]
        found = _classify(value, text) if _NAME_RE.match(name) else None
        if found is None:
            latest[name] = None
            continue
        kind, val = found
        latest.pop(name, None)  # keep source order of the effective assignment
        latest[name] = Constant(name, val, kind, text, start, end, stmt.lineno)
    consts = [c for c in latest.values() if c is not None and c.name not in rebound]
    if not consts:
        return []
    comments = _comments(source, lines)
    result = []
    for c in consts:
        end_line = c.line + c.text.count("\n") + c.text.count("\r") - c.text.count("\r\n")
        comment = comments.get(end_line)
        text = comment[1] if comment and comment[0] >= c.end else None
        result.append(Constant(c.name, c.value, c.kind, c.text, c.start, c.end, c.line, text))
    return sorted(result, key=lambda c: c.start)


def replace_constant(source: str, name: str, new_value: Any) -> str:
    """The source with only `name`'s value text changed (KeyError if it is not a constant)."""
    for const in find_constants(source):
        if const.name == name:
            text = format_value(const, new_value)
            return source[: const.start] + text + source[const.end :]
    raise KeyError(f"no literal top-level constant named {name!r} in the script")


def format_value(const: Constant, new_value: Any) -> str:
    """Source text for `new_value` in the style of `const.text`."""
    return _format_like(const.text, const.value, new_value, const.kind)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def _format_like(old_text: str, old_value: Any, new: Any, kind: str) -> str:
    if _same(old_value, new):
        return old_text
    if isinstance(new, bool):
        return repr(new)
    if isinstance(new, str):
        return _format_str(old_text, new)
    if isinstance(new, (tuple, list)):
        return _format_seq(old_text, old_value, new)
    if isinstance(new, int):
        if kind == "pow2" and new > 0 and new & (new - 1) == 0:
            m = re.match(r"\s*\(?\s*2(\s*)\*\*(\s*)", old_text)
            sp1, sp2 = (m.group(1), m.group(2)) if m else ("", "")
            return f"2{sp1}**{sp2}{new.bit_length() - 1}"
        return _format_int(old_text, new)
    if isinstance(new, float):
        return _format_float(old_text, new)
    raise TypeError(f"cannot write a {type(new).__name__} value as a constant")


def _format_int(old_text: str, new: int) -> str:
    body = old_text.strip().lstrip("+-").strip()
    if body[:2].lower() == "0x":
        return ("-" if new < 0 else "") + hex(abs(new))
    if "_" in body and "**" not in body:
        return f"{new:_}"
    return str(new)


def _format_float(old_text: str, new: float) -> str:
    if not math.isfinite(new):
        raise ValueError(f"cannot write {new!r} as a literal")
    new = float(f"{new:.12g}")  # drop float noise such as 0.30000000000000004
    sign = "-" if new < 0 else ""
    mag = abs(new)
    body = old_text.strip().lstrip("+-").strip()
    if "e" in body.lower():
        e_char = "E" if "E" in body else "e"
        old_mant, old_exp = re.split("[eE]", body, maxsplit=1)
        mant, exp = f"{mag:.11e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        if "." in old_mant and "." not in mant:
            mant += ".0"
        exp_i = int(exp)
        digits = str(abs(exp_i))
        width = len(old_exp.lstrip("+-"))
        if old_exp.lstrip("+-").startswith("0") and width > len(digits):
            digits = digits.zfill(width)
        exp_sign = "-" if exp_i < 0 else ("+" if old_exp.startswith("+") else "")
        return f"{sign}{mant}{e_char}{exp_sign}{digits}"
    text = format(Decimal(repr(mag)), "f")
    if "." not in text:
        text += ".0"
    if body.startswith(".") and text.startswith("0."):
        text = text[1:]
    elif body.endswith(".") and text.endswith(".0"):
        text = text[:-1]
    return sign + text


def _format_str(old_text: str, new: str) -> str:
    quote_at = min(i for i in (old_text.find('"'), old_text.find("'")) if i >= 0)
    prefix, quote = old_text[:quote_at], old_text[quote_at]
    if quote not in new and "\\" not in new and new.isprintable():
        return f"{prefix}{quote}{new}{quote}"
    return repr(new)


def _format_seq(old_text: str, old_value: Any, new: tuple | list) -> str:
    old_seq = old_value if isinstance(old_value, (tuple, list)) else ()
    try:
        node = ast.parse(old_text, mode="eval").body
    except SyntaxError:
        node = None
    elts = node.elts if isinstance(node, (ast.Tuple, ast.List)) else []
    if len(elts) == len(new) == len(old_seq):
        lines = _Lines(old_text)
        out = old_text
        for elt, old_v, new_v in reversed(list(zip(elts, old_seq, new))):
            start, end = lines.span(elt)
            kind = "float" if isinstance(old_v, float) else "int"
            out = out[:start] + _format_like(old_text[start:end], old_v, new_v, kind) + out[end:]
        return out
    first = "0"
    if elts:
        start, end = _Lines(old_text).span(elts[0])
        first = old_text[start:end]
    parts = [_format_like(first, None, v, "float") for v in new]
    opener = old_text[0] if old_text[:1] in "([" else ""
    closer = {"(": ")", "[": "]"}.get(opener, "")
    joined = ", ".join(parts) + ("," if len(parts) == 1 and opener != "[" else "")
    return f"{opener}{joined}{closer}"


# ---- the compute / evaluation contract --------------------------------------------------

def name_parts(name: str) -> set[str]:
    """`n_embd` -> {"N", "EMBD"}; `MATRIX_LR` -> {"MATRIX", "LR"}."""
    return {p for p in name.upper().split("_") if p}


# Name parts of constants that are paths, I/O, logging, seeds, device, dtype, compile or
# checkpoint flags: never research knobs.
SKIP_PARTS = frozenset({
    "PATH", "DIR", "FILE", "FILENAME", "URL", "LOG", "LOGS", "LOGGING", "WANDB", "SAVE", "OUT",
    "CHECKPOINT", "CKPT", "RESUME", "INIT", "OUTPUT", "VERBOSE", "DEBUG", "PRINT", "PORT", "HOST",
    "RANK", "WORKERS", "COMPILE", "PROFILE", "NAME", "PROJECT", "RUN", "SEED", "DEVICE", "DTYPE",
    "BACKEND", "DDP", "AMP", "EXCLUDE", "BUDGET", "TIME", "THREADS", "SLEEP", "WAIT", "TIMEOUT",
})
# What the metric is measured on and how: changing it changes the measurement, not the model.
EVAL_PARTS = frozenset({"EVAL", "EVALUATION", "VAL", "VALID", "VALIDATION", "TEST", "SPLIT",
                        "METRIC", "INTERVAL", "EVERY", "FREQ", "DATASET", "DATA"})
STEP_PARTS = frozenset({"ITERS", "ITER", "ITERATIONS", "STEPS", "EPOCHS", "EPOCH"})
CONTEXT_PARTS = frozenset({"SEQ", "CONTEXT", "CTX"})
_SKIP_WORDS = ("CHECKPOINT", "SEED", "WANDB")  # also inside a part: always_save_checkpoint


def skip_reason(name: str) -> str | None:
    """Why a constant is never proposed ("evaluation", "io/runtime"), or None for a knob."""
    parts, upper = name_parts(name), name.upper()
    if parts & EVAL_PARTS:
        return "evaluation"
    if "BATCH" in parts:  # DEVICE_BATCH_SIZE is a knob, DEVICE is not
        parts = parts - {"DEVICE"}
    if parts & SKIP_PARTS or any(w in upper for w in _SKIP_WORDS):
        return "io/runtime"
    return None


def is_context_length(name: str) -> bool:
    parts = name_parts(name)
    return bool(parts & CONTEXT_PARTS) or name.upper() in ("BLOCK_SIZE", "MAX_LEN", "MAX_SEQ_LEN")


def _buys_compute(name: str) -> bool:
    parts, upper = name_parts(name), name.upper()
    return bool(parts & STEP_PARTS or "BATCH" in parts or "ACCUM" in upper
                or is_context_length(name) or "TOKENS" in parts)


def evaluation_names(source: str) -> set[str]:
    """Constants that define the measurement (evaluation iterations, interval, data, split)."""
    return {c.name for c in find_constants(source) if skip_reason(c.name) == "evaluation"}


def compute_names(source: str) -> set[str]:
    """Constants that buy compute: step/iteration/epoch counts and the schedule lengths tied
    to them (`warmup_iters`, `lr_decay_iters`), batch size, gradient accumulation, context
    length. An iteration-count project holds them unless the plan names them in `vary`."""
    return {c.name for c in find_constants(source)
            if skip_reason(c.name) is None and c.kind != "str" and _buys_compute(c.name)}


def _identifiers(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def trains_by_iterations(source: str) -> bool:
    """True when the script stops on a step/iteration/epoch count and never on the time budget
    (`AUTORESEARCH_TIME_BUDGET`, a `*budget*` name or a clock in a stopping comparison)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    if "AUTORESEARCH_TIME_BUDGET" in source:
        return False
    by_count = False
    for node in ast.walk(tree):
        names: set[str] = set()
        if isinstance(node, ast.Compare):
            names = _identifiers(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            names = _identifiers(node)
        elif isinstance(node, ast.While):
            names = _identifiers(node.test)
        if any("budget" in n.lower() or n in ("time", "perf_counter", "monotonic") for n in names):
            return False
        by_count = by_count or any(name_parts(n) & STEP_PARTS for n in names)
    return by_count


def divisibility(source: str) -> set[tuple[str, str]]:
    """(a, b) for every `assert a % b == 0` (names or attributes such as config.n_embd):
    a change of either must keep a divisible by b."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    pairs = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.Assert) else None
        if not isinstance(test, ast.Compare) or len(test.ops) != 1:
            continue
        sides = [test.left, test.comparators[0]]
        zero = [s for s in sides if isinstance(s, ast.Constant) and s.value == 0]
        mod = [s for s in sides if isinstance(s, ast.BinOp) and isinstance(s.op, ast.Mod)]
        if zero and mod and isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
            a, b = (_leaf(mod[0].left), _leaf(mod[0].right))
            if a and b:
                pairs.add((a, b))
    return pairs


def _leaf(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None
