"""Read the metric and the summary block from a run's log; recognise crashes and OOMs."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf(?:inity)?"
TAIL_BYTES = 1 << 20  # the summary block is at the end; never read a flooded log whole
_SUMMARY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*):\s+(\S.*?)\s*$")

OOM_PATTERNS = (
    "CUDA out of memory",
    "torch.OutOfMemoryError",
    "torch.cuda.OutOfMemoryError",
    "OutOfMemoryError",
    "MPS backend out of memory",
    "out of memory",  # HIP, XLA and generic allocators
    "DefaultCPUAllocator: can't allocate memory",
    "std::bad_alloc",
    "MemoryError",
)


def metric_regex(metric: str, pattern: str | None = None) -> re.Pattern[str]:
    """Default: `^<metric>:\\s*(<number>)`; a user pattern must have one group (the number)."""
    if pattern:
        return re.compile(pattern.replace("<number>", f"({NUMBER})").replace("<metric>", re.escape(metric)), re.M | re.I)
    return re.compile(rf"^{re.escape(metric)}:\s*({NUMBER})\s*$", re.M | re.I)


def read_tail(path: Path, size: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            end = fh.tell()
            fh.seek(max(0, end - size))
            data = fh.read()
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", errors="replace")


def display_lines(text: str) -> list[str]:
    """Lines as a terminal would show them: `\\r` ends a line too."""
    return [line for line in re.split(r"\r\n|\r|\n", text)]


def extract_metric(text: str, metric: str, pattern: str | None = None) -> float | None:
    """The last match wins; None when the metric was never printed."""
    lines = "\n".join(display_lines(text))
    matches = metric_regex(metric, pattern).findall(lines)
    if not matches:
        return None
    value = matches[-1]
    value = value[0] if isinstance(value, tuple) else value
    try:
        return float(value)
    except ValueError:
        return None


def parse_summary(text: str) -> dict[str, float | str]:
    """Keys of the final `---` block (val_bpb, peak_vram_mb, num_steps, ...)."""
    lines = display_lines(text)
    start = 0
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip() == "---":
            start = i + 1
            break
    out: dict[str, float | str] = {}
    for line in lines[start:]:
        match = _SUMMARY_LINE.match(line)
        if not match:
            continue
        key, raw = match.groups()
        try:
            out[key] = float(raw.replace(",", ""))
        except ValueError:
            out[key] = raw
    return out


def is_oom(text: str, exit_code: int | None) -> bool:
    if any(p.lower() in text.lower() for p in OOM_PATTERNS):
        return True
    # The Linux OOM killer leaves no message, only SIGKILL.
    return exit_code in (-9, 137) and "Killed" in text[-200:]


def last_line(text: str) -> str:
    """The last non-empty line the run printed, clipped (what a person would look at first)."""
    for line in reversed(display_lines(text)):
        if line.strip():
            return _clip(line.strip())
    return "no output"


def crash_reason(text: str, exit_code: int | None, timed_out: bool, killed: bool, limit_s: float) -> str:
    if killed:
        return "killed by the user"
    if timed_out:
        return f"timeout: still running after {limit_s:g} s (the hard limit)"
    last = [line.strip() for line in display_lines(text) if line.strip()][-3:]
    for line in reversed(last):
        if "Error" in line or "error" in line or line == "FAIL":
            return _clip(line)
    if exit_code not in (0, None):
        return _clip(f"exit code {exit_code}: " + (last[-1] if last else "no output"))
    if exit_code is None:
        return _clip(last[-1] if last else "could not start the training command")
    return ""


def bad_metric_reason(value: float | None, metric: str) -> str | None:
    if value is None:
        return f"{metric} was never printed"
    if math.isnan(value):
        return f"{metric} is NaN"
    if math.isinf(value):
        return f"{metric} is infinite"
    return None


def _clip(text: str, size: int = 160) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


@dataclass
class RunReading:
    """What one finished run's log says."""

    metric: float | None
    summary: dict[str, float | str]
    peak_mb: float | None
    oom: bool
    crash: str | None


def read_run(log: Path, metric: str, pattern: str | None, exit_code: int | None, timed_out: bool,
             killed: bool, limit_s: float, peak_rss_mb: float) -> RunReading:
    text = read_tail(log)
    value = extract_metric(text, metric, pattern)
    summary = parse_summary(text)
    vram = summary.get("peak_vram_mb")
    # peak_vram_mb is meaningless off CUDA (printed as 0.0): fall back to the sampled RSS.
    peak = vram if isinstance(vram, float) and vram > 0 else (peak_rss_mb or None)
    oom = is_oom(text, exit_code)
    crash = crash_reason(text, exit_code, timed_out, killed, limit_s) or None
    if crash is None:
        crash = bad_metric_reason(value, metric or "metric")
        if crash:
            crash += ": " + last_line(text)
    if oom and crash:
        crash = "out of memory: " + crash
    return RunReading(value, summary, peak, oom, crash)


DIVERGED = re.compile(r"\bnan\b|\binf|infinite|^FAIL\b|: FAIL$", re.I)


def crash_signature(reason: str) -> str:
    """A crash reason without the numbers, addresses and paths that differ between runs."""
    text = re.sub(r"0x[0-9a-f]+|\d+(\.\d+)?", "N", reason.lower())
    return re.sub(r"(/[^\s:'\"]+)+", "PATH", text)[:120]
