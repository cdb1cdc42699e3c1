"""Turn a model's answer into a new training script.

Two answer shapes are accepted: aider-style SEARCH/REPLACE blocks, or the whole file in one
fenced code block; plus a `DESCRIPTION: ...` line. Errors are written to be sent back to the
model, so they say which block failed and what to do about it.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from autoresearch_tui.agents.constants import find_constants

_SEARCH = re.compile(r"^\s*<{5,9}\s*SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*REPLACE\b.*$")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+.-]*)\s*$")
_DESC = re.compile(r"^[\s>*_#`-]*DESCRIPTION[*_`]*\s*:\s*(.*?)\s*$", re.IGNORECASE)
MAX_DESCRIPTION = 200


class EditError(ValueError):
    """The answer could not be turned into a new script; the message is for the model."""


@dataclass(frozen=True)
class EditBlock:
    index: int  # 1-based, as the error messages count
    search: str
    replace: str


def parse_description(text: str) -> str | None:
    """The last `DESCRIPTION: ...` line, cleaned to one short line; None when absent."""
    found = None
    for line in text.splitlines():
        m = _DESC.match(line)
        if m and m.group(1).strip(" *_`\"'"):
            found = m.group(1)
    if found is None:
        return None
    one = " ".join(found.strip(" *_`\"'").split())
    return one[:MAX_DESCRIPTION]


def parse_edit_blocks(text: str) -> list[EditBlock]:
    """All SEARCH/REPLACE blocks in order; EditError for a block that is not closed."""
    lines = text.splitlines()
    blocks: list[EditBlock] = []
    i = 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        n = len(blocks) + 1
        j = i + 1
        while j < len(lines) and not _DIVIDER.match(lines[j]):
            if _SEARCH.match(lines[j]) or _REPLACE.match(lines[j]):
                raise EditError(f"edit block {n} has no ======= line between SEARCH and REPLACE")
            j += 1
        if j >= len(lines):
            raise EditError(f"edit block {n} has no ======= line after <<<<<<< SEARCH")
        k = j + 1
        while k < len(lines) and not _REPLACE.match(lines[k]):
            if _SEARCH.match(lines[k]):
                raise EditError(f"edit block {n} is not closed with >>>>>>> REPLACE")
            k += 1
        if k >= len(lines):
            raise EditError(f"edit block {n} is not closed with >>>>>>> REPLACE")
        search = "\n".join(lines[i + 1:j])
        replace = "\n".join(lines[j + 1:k])
        blocks.append(EditBlock(n, search + "\n" if search else "", replace + "\n" if replace else ""))
        i = k + 1
    return blocks


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _fuzzy_apply(source: str, block: EditBlock) -> str:
    """Match the SEARCH lines ignoring indentation and trailing spaces; re-indent REPLACE."""
    src = _lines(source)
    search = _lines(block.search)
    while search and not search[0].strip():
        search.pop(0)
    while search and not search[-1].strip():
        search.pop()
    if not search:
        raise EditError(f"edit block {block.index} has an empty SEARCH section; copy the lines to change")
    want = [s.strip() for s in search]
    hits = [i for i in range(len(src) - len(want) + 1)
            if all(src[i + k].strip() == want[k] for k in range(len(want)))]
    if not hits:
        first = search[0].strip()[:60]
        raise EditError(f"edit block {block.index}: the SEARCH lines (starting {first!r}) are not in "
                        "the current script; copy them exactly from it")
    if len(hits) > 1:
        raise EditError(f"edit block {block.index}: the SEARCH lines match {len(hits)} places; "
                        "include more surrounding lines so they match only one")
    start = hits[0]
    have, had = _indent(src[start]), _indent(search[0])
    out = []
    for line in _lines(block.replace):
        if line.strip() and line.startswith(had):
            line = have + line[len(had):]
        out.append(line)
    if out and not out[-1].endswith("\n") and start + len(want) < len(src):
        out[-1] += "\n"
    return "".join(src[:start] + out + src[start + len(want):])


def _line_starts(source: str, search: str) -> list[int]:
    """Offsets where `search` occurs starting at a line start (so DEPTH never hits MAX_DEPTH)."""
    hits, pos = [], source.find(search)
    while pos != -1:
        if pos == 0 or source[pos - 1] == "\n":
            hits.append(pos)
        pos = source.find(search, pos + 1)
    return hits


def apply_edit_blocks(source: str, blocks: list[EditBlock]) -> str:
    """Apply the blocks in order: exact match first, then a whitespace-tolerant one."""
    added = not source.endswith("\n")
    if added:
        source += "\n"  # every SEARCH ends with a newline; so must the last line
    for block in blocks:
        if not block.search.strip():
            if source.strip():
                raise EditError(f"edit block {block.index} has an empty SEARCH section; copy the lines to change")
            source = block.replace
            continue
        hits = _line_starts(source, block.search)
        if len(hits) == 1:
            at = hits[0]
            source = source[:at] + block.replace + source[at + len(block.search):]
        elif len(hits) > 1:
            raise EditError(f"edit block {block.index}: the SEARCH lines match {len(hits)} places; "
                            "include more surrounding lines so they match only one")
        else:
            source = _fuzzy_apply(source, block)
    if added and source.endswith("\n"):
        source = source[:-1]
    return source


def extract_fenced(text: str) -> str | None:
    """The longest fenced code block's body, or None."""
    lines = text.splitlines(keepends=True)
    best: str | None = None
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i].rstrip("\r\n"))
        if not m:
            i += 1
            continue
        marker = m.group(2)
        j = i + 1
        while j < len(lines) and lines[j].strip() != marker:
            j += 1
        if j >= len(lines):
            break
        body = "".join(lines[i + 1:j])
        if best is None or len(body) > len(best):
            best = body
        i = j + 1
    return best


def apply_answer(source: str, answer: str, filename: str = "train.py") -> tuple[str, str, str]:
    """(new source, description or '', kind) where kind is "blocks" or "whole"; EditError otherwise."""
    description = parse_description(answer) or ""
    blocks = parse_edit_blocks(answer)
    if blocks:
        new, kind = apply_edit_blocks(source, blocks), "blocks"
    else:
        body = extract_fenced(answer)
        if body is None:
            raise EditError("the answer has no SEARCH/REPLACE blocks and no fenced code block; "
                            f"send the change to {filename} in one of those two forms")
        old_n, new_n = len(source.splitlines()), len(body.splitlines())
        if old_n >= 40 and new_n < old_n // 2:
            raise EditError(f"the fenced code block has {new_n} lines but {filename} has {old_n}: "
                            "it looks like a fragment; send SEARCH/REPLACE blocks or the whole file")
        new, kind = body, "whole"
    if new == source:
        raise EditError(f"the answer leaves {filename} unchanged; make one real change")
    if filename.endswith(".py"):
        try:
            compile(new, filename, "exec")
        except SyntaxError as exc:
            raise EditError(f"the new {filename} does not compile: {exc.msg} at line {exc.lineno}") from None
    return new, description, kind


def describe_diff(old: str, new: str, train_path: str) -> str:
    """A one-line description when the agent gave none: the constant changed, else the first line."""
    before = {c.name: c.text for c in find_constants(old)}
    after = {c.name: c.text for c in find_constants(new)}
    changed = [n for n in after if n in before and before[n] != after[n]]
    diff = [ln for ln in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
            if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    added = sum(1 for ln in diff if ln.startswith("+"))
    removed = len(diff) - added
    if len(changed) == 1 and added <= 1 and removed <= 1:
        name = changed[0]
        return f"{name} {before[name]} -> {after[name]}"
    first = next((ln[1:].strip() for ln in diff if ln.startswith("+") and ln[1:].strip()), "")
    if not first:
        first = "remove " + next((ln[1:].strip() for ln in diff if ln[1:].strip()), "blank lines")
    return f"edit {train_path}: {first[:60]} (+{added} -{removed} lines)"
