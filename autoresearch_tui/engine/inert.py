"""Inert edits: a change whose run is bit-identical to its parent's changed nothing.

Typical cause: the value is set again later (a config file exec'd over the globals, a
`--name=value` flag in the train command). The fingerprint of a run is its metric and the
decimal numbers of its loss lines; timings are left out, they differ on every run.
"""

from __future__ import annotations

import re

from autoresearch_tui.engine.metrics import display_lines

_DECIMAL = re.compile(r"[-+]?\d+\.\d+(?:[eE][-+]?\d+)?")
_TIMING = re.compile(r"\b(dt|ms|sec|secs|seconds|time|tok/s|tok/sec|tokens/s|mfu|elapsed|remaining|eta|it/s)\b",
                     re.I)
_SEGMENT = re.compile(r"[|,;]")


def fingerprint(log_text: str, metric: float | None) -> tuple:
    numbers: list[str] = []
    for line in display_lines(log_text):
        if "loss" not in line.lower():
            continue
        for segment in _SEGMENT.split(line):
            if "loss" in segment.lower() and not _TIMING.search(segment):
                numbers += _DECIMAL.findall(segment)
    return (metric, *numbers)


def message(name: str) -> str:
    return f"edits to `{name}` have no effect: overridden by the train command or a config file?"
