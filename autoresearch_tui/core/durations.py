"""Parse and format durations such as `90s`, `5m`, `1h`, `1h30m` or a bare `300` (seconds)."""

from __future__ import annotations

import re

_UNIT = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(h|hr|m|min|mins|s|sec|secs)")


def parse_duration(value: object) -> float:
    """Seconds as a positive float; ValueError with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if re.fullmatch(r"[+]?\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds, matched = 0, 0.0, False
            text = text.replace(" ", "")
            for part in _PART.finditer(text):
                if part.start() != pos:
                    break
                seconds += float(part.group(1)) * _UNIT[part.group(2)]
                pos, matched = part.end(), True
            if not matched or pos != len(text):
                raise ValueError(f"{value!r} is not a duration")
    if not seconds > 0 or seconds != seconds:
        raise ValueError(f"{value!r} must be greater than zero")
    return seconds


def format_duration(seconds: float | None) -> str:
    """Short human form: `30 s`, `5 min`, `1 min 30 s`, `1 h 30 min`."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:g} s"
    whole = int(round(seconds))
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(whole, 3600)
    return f"{hours} h" + (f" {rest // 60} min" if rest >= 60 else "")


def format_clock(seconds: float) -> str:
    """HH:MM as in the spec's progress report."""
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def exact_duration(seconds: float) -> str:
    """A short form that parse_duration reads back exactly: 90s, 5m, 2h, 1h30m, 125s."""
    if seconds >= 60 and seconds == int(seconds) and int(seconds) % 60 == 0:
        hours, minutes = divmod(int(seconds) // 60, 60)
        return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return f"{seconds:g}s"
