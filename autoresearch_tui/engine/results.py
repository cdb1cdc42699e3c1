"""results.tsv: Karpathy's five tab-separated columns, written durably, read forgivingly."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("keep", "discard", "crash")


@dataclass
class ResultRow:
    commit: str
    metric: float | None  # None for a crash (written as 0.000000)
    memory_gb: float | None
    status: str  # normalised: keep | discard | crash
    description: str
    raw_status: str = ""  # as written in the file, when it differed (e.g. "KEEP", "run")
    line: int = 0  # 1-based line number in the file it was read from
    extra: dict[str, str] = field(default_factory=dict)  # columns beyond the five


def header(metric: str) -> str:
    return f"commit\t{metric}\tmemory_gb\tstatus\tdescription\n"


def _clean(text: str) -> str:
    # A tab or newline in a description would break the row structure.
    return " ".join(text.replace("\t", " ").split())


def format_row(row: ResultRow) -> str:
    metric = row.metric if row.metric is not None and math.isfinite(row.metric) else 0.0
    memory = row.memory_gb if row.memory_gb is not None else 0.0
    return f"{row.commit[:7]}\t{metric:.6f}\t{memory:.1f}\t{row.status}\t{_clean(row.description)}\n"


def ensure_header(path: Path, metric: str) -> None:
    if not path.exists() or path.stat().st_size == 0:
        _append(path, header(metric))


def append_row(path: Path, row: ResultRow) -> None:
    """Append one row with a single write and fsync, so a kill never leaves half a row."""
    _append(path, format_row(row))


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        # A previous crash mid-write could leave a line without its newline: start fresh.
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
