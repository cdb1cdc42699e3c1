"""Text that reaches a file or a terminal: control sequences out, known keys out.

Agents, training scripts and foreign files supply descriptions, notices and rows; an ESC byte in
them would retitle the terminal or break the layout wherever they are shown later, so they are
made inert before they are written and again when they are read back.
"""

from __future__ import annotations

import re
from typing import Any

from autoresearch_tui.core import secrets

# CSI, OSC (ended by BEL or ST), DCS/SOS/PM/APC strings, two-byte ESC sequences, and their C1 forms.
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)
# C0 except tab and newline, DEL, C1, and the bidirectional overrides that reorder what is shown.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def suspect(text: str) -> bool:
    return _CONTROLS.search(text) is not None


def block(text: str, keys: list[str] | None = None) -> str:
    """Keep tabs and newlines (a lone carriage return becomes a newline); drop every other control.
    `keys`: secrets.values() when the caller has them already."""
    if _CONTROLS.search(text):
        text = _SEQUENCES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
        text = _CONTROLS.sub("", text)
    return secrets.scrub(text, keys)


def line(text: str) -> str:
    """One line: whitespace runs (tabs, newlines) become one space, controls are dropped."""
    return " ".join(block(text).split())


def deep(value: Any, keys: list[str] | None = None) -> Any:
    """`block` applied to every string in a JSON-like value (dict keys included)."""
    if keys is None:
        keys = secrets.values()  # once per value, not per string: an event has dozens
    if isinstance(value, str):
        return block(value, keys)
    if isinstance(value, dict):
        return {deep(k, keys): deep(v, keys) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [deep(v, keys) for v in value]
    return value


def proposal(p: Any) -> Any:
    """An agent's proposal with its description and meta made inert (the source is code: as is)."""
    return type(p)(p.new_source, line(p.description), deep(p.meta))
