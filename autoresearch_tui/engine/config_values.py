"""How each config value is read from TOML or a flag: every reader returns the value or raises
ValueError saying what is wrong and what to write. The schema in `config.py` names one per key."""

from __future__ import annotations

import math
import re
import shlex
from typing import Any, Callable

from autoresearch_tui.engine.durations import parse_duration

DIRECTIONS = ("min", "max")
MAX_TAG = 64  # a branch and a folder name: long enough for any tag, short of every path limit
MAX_SECONDS = 30 * 86400.0  # a duration beyond a month is a typo (and inf/1e308 overflow the limit)


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    if "\x00" in value:
        raise ValueError("must not contain a NUL byte")
    return value


def optional_text(value: Any) -> str | None:
    return text(value).strip() or None


def boolean(value: Any) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def duration(value: Any) -> float:
    fix = "write e.g. 90s, 5m, 1h or 300 (seconds)"
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; {fix}") from None
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(f"{value!r} is too long: at most 30 days; {fix}")
    return seconds


def whole(minimum: int = 0, none_word: str | None = None, maximum: int | None = None) -> Callable[[Any], int | None]:
    hint = f" (or {none_word})" if none_word else ""

    def parse(value: Any) -> int | None:
        if none_word and (value is None or str(value).strip().lower() in ("", none_word, "none")):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"must be a whole number, got {value!r}" + hint)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {value!r}" + hint) from None
        if number < minimum:
            raise ValueError(f"must be at least {minimum}, got {number}" if minimum else
                             f"must not be negative, got {number}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum}, got {number}")
        return number
    return parse


def number(minimum: float = 0.0, maximum: float = math.inf, above: bool = False) -> Callable[[Any], float]:
    """A finite number in [minimum, maximum] (above: strictly greater than minimum)."""
    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"must be a number, got {value!r}")
        try:
            result = float(value)
        except (ValueError, OverflowError):
            raise ValueError(f"must be a number, got {value!r}") from None
        low_ok = result > minimum if above else result >= minimum
        if not math.isfinite(result) or not low_ok or result > maximum:
            low = f"greater than {minimum:g}" if above else f"at least {minimum:g}"
            high = f" and at most {maximum:g}" if math.isfinite(maximum) else ""
            raise ValueError(f"must be a finite number {low}{high}, got {value!r}")
        return result
    return parse


def choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if str(value) not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return str(value)
    return parse


def names(value: Any) -> list[str]:
    """A list of strings, or one comma-separated string (the command line's form)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"must be a list of names, e.g. [\"a\", \"b\"] or a,b; got {value!r}")
    return [i.strip() for i in items if i.strip()]


def gpu_ids(value: Any) -> list[str] | None:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in items):
        raise ValueError(f"must be a list of GPU ids such as 0,1,2,3, got {value!r}")
    ids = [str(i).strip() for i in items if str(i).strip()]
    bad = [i for i in ids if not (i.isdigit() or re.fullmatch(r"(GPU|MIG)-[0-9A-Za-z/-]+", i))]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a GPU id; give indices such as 0,1,2,3 (or GPU-/MIG- UUIDs)")
    return ids or None


def metric_and_direction(value: Any) -> tuple[str, str]:
    return parse_metric(value)


def branch_tag(value: Any) -> str:
    return check_tag(text(value))


def regex(value: Any) -> str | None:
    from autoresearch_tui.engine.metrics import metric_regex

    value = optional_text(value)
    if value is None:
        return None
    try:
        groups = metric_regex("metric", value).groups
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression ({exc}); e.g. '^val_bpb:\\s*(<number>)'") from None
    if groups < 1:
        raise ValueError(f"{value!r} has no group for the number; put (<number>) where the value is printed")
    return value


def command_line(value: Any) -> str | list[str]:
    if isinstance(value, list) and value and all(isinstance(i, str) for i in value):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a string or a list of strings, got {value!r}")
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"cannot split {value!r} into arguments ({exc}); balance its quotes") from None
    if not argv:
        raise ValueError("is empty; give the command that runs the training script")
    return value


def agent_name(value: Any) -> str:
    from autoresearch_tui.agents.registry import AGENTS

    return choice(tuple(AGENTS))(value)


def prices(value: Any) -> dict[str, float]:
    """{input = 3.0, output = 15.0} in TOML, input=3,output=15 on the command line."""
    if isinstance(value, str):
        try:
            value = dict(part.split("=", 1) for part in value.replace(" ", "").split(",") if part)
        except ValueError:
            value = None
    if not isinstance(value, dict) or not set(value) <= {"input", "output"} or not value:
        raise ValueError("must be a table like {input = 3.0, output = 15.0} ($ per 1M tokens), "
                         "or input=3,output=15 on the command line")
    return {k: number()(v) for k, v in value.items()}


def files(value: Any) -> list[str]:
    return [text(f) for f in names(value)]


def parse_metric(spec: str) -> tuple[str, str]:
    """`val_bpb:min` -> ("val_bpb", "min")."""
    name, sep, direction = str(spec).strip().partition(":")
    name, direction = name.strip(), direction.strip().lower()
    if not sep or not name:
        raise ValueError(f"{spec!r} needs a direction: write NAME:min or NAME:max, e.g. val_bpb:min")
    if direction in ("minimize", "minimise", "lower"):
        direction = "min"
    if direction in ("maximize", "maximise", "higher"):
        direction = "max"
    if direction not in DIRECTIONS:
        raise ValueError(f"{spec!r} has an unknown direction {direction!r}: use min or max")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", name):
        raise ValueError(f"{name!r} is not a metric name (letters, digits, _ . -)")
    return name, direction


_TAG_BAD = re.compile(r"(^[-./])|(\.\.)|([\x00-\x20\x7f~^:?*\[\\])|(@\{)|(\.lock$)|([./]$)|(^@$)")


def check_tag(tag: str) -> str:
    if not tag or _TAG_BAD.search(tag):
        raise ValueError(
            f"{tag!r} is not a valid branch name part: use letters, digits, '-' or '_' (e.g. nov24)"
        )
    if len(tag) > MAX_TAG:
        raise ValueError(f"the tag is {len(tag)} characters long; use at most {MAX_TAG} (e.g. nov24)")
    return tag
