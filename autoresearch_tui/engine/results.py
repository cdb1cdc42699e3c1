"""results.tsv: Karpathy's five tab-separated columns, written durably, read forgivingly."""

from __future__ import annotations

import csv
import gc
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch_tui.core import safefs, sanitize

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
    # A tab or newline in a description would break the row structure; an escape, the terminal.
    return sanitize.line(text)


def format_row(row: ResultRow) -> str:
    measured = row.metric is not None and math.isfinite(row.metric)
    metric = row.metric if measured else 0.0
    memory = row.memory_gb if row.memory_gb is not None else 0.0
    description = _clean(row.description)
    if not measured and row.status == "discard" and not _KILLED.search(description):
        # 0.000000 is the convention's "no metric"; for a maximised metric it could be a real 0,
        # so the row says why it has none, and the reader reads it back without a metric.
        description = f"{description} (killed)"
    return f"{row.commit[:7]}\t{metric:.6f}\t{memory:.1f}\t{row.status}\t{description}\n"


def ensure_header(path: Path, metric: str) -> None:
    if not path.exists() or path.stat().st_size == 0:
        _append(path, header(metric))


def append_row(path: Path, row: ResultRow) -> None:
    """Append one row with a single write and fsync, so a kill never leaves half a row."""
    _append(path, format_row(row))


def _append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    safefs.append(path, text.encode("utf-8"), fresh_line=True)


# ---------------------------------------------------------------------------
# Reader: keys on header names, never crashes on a messy file, says what it skipped.

STANDARD_COLUMNS = ("commit", "val_bpb", "memory_gb", "status", "description")
_EXPECTED = "commit<TAB>val_bpb<TAB>memory_gb<TAB>status<TAB>description"

# Other tools write other words. Anything unknown (e.g. "run") is read as discard: it is a run
# whose change was not kept, so it must not count as a keep or as a crash.
_STATUS_WORDS: dict[str, str] = {}
for _norm, _words in (
    ("keep", ("keep", "kept", "best", "baseline", "improved", "improvement", "accept", "accepted")),
    ("discard", ("discard", "discarded", "revert", "reverted", "worse", "reject", "rejected")),
    ("crash", ("crash", "crashed", "fail", "failed", "failure", "error", "oom", "timeout",
               "timed out", "killed")),
):
    _STATUS_WORDS.update(dict.fromkeys(_words, _norm))

_MISSING = frozenset(("", "-", "—", "–", "nan", "n/a", "na", "none", "null", "?"))
_DESC_NAMES = ("description", "desc", "notes", "note", "change", "idea", "message", "comment")
_MEM_GB = ("memory_gb", "mem_gb", "vram_gb", "peak_memory_gb", "peak_vram_gb")
_MEM_MB = ("peak_vram_mb", "memory_mb", "mem_mb", "vram_mb", "peak_memory_mb")
_MAX_WORDS = ("acc", "accuracy", "f1", "auc", "score", "precision", "recall", "reward", "map",
              "bleu", "rouge", "iou", "dice", "r2", "return", "success", "win", "mfu",
              "throughput", "top1", "top5", "exact", "em", "pass", "correct")
_MIN_WORDS = ("bpb", "bpc", "loss", "rmse", "mse", "mae", "mape", "perplexity", "ppl", "error",
              "err", "wer", "cer", "nll", "latency", "time", "seconds", "cost", "distance")


_KILLED = re.compile(r"\bkill(ed)?\b|\btimed? ?out\b|\btime limit\b", re.I)


class ResultsFormatError(ValueError):
    """The file is not a results table at all; the message is one line for the user."""


@dataclass
class ResultsTable:
    rows: list[ResultRow]
    metric: str  # the column used as the metric
    direction: str  # "min" or "max"
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    columns: list[str] = field(default_factory=list)
    decimals: int | None = None  # the metric's precision as written (178.84: 2); None: not fixed-point
    sections: list["Section"] = field(default_factory=list)  # later blocks in another shape


@dataclass
class Section:
    """Rows further down the file in another shape (another header without the metric column, or a
    comma-separated block introduced by a `Columns:` line): shown as they are, as a table of their own."""

    first_line: int
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


def guess_direction(name: str) -> str:
    """"max" for accuracy-like names, "min" for loss-like ones and for anything unknown."""
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    for vocab, answer in ((_MIN_WORDS, "min"), (_MAX_WORDS, "max")):
        for word in words:
            # Short keys only as whole words ("acc" must not match "accum").
            if word in vocab or any(len(k) > 3 and k in word for k in vocab):
                return answer
    return "min"


def _direction(direction: str | None, metric: str) -> str:
    if direction is None:
        return guess_direction(metric)
    low = direction.strip().lower()
    if low.startswith(("min", "low")):
        return "min"
    if low.startswith(("max", "high")):
        return "max"
    raise ValueError(f"direction must be 'min' or 'max', not {direction!r}")


def _num(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_header(fields: list[str]) -> bool:
    names = [f.strip().lower() for f in fields]
    return "status" in names and any(n == "commit" or n.startswith("commit") for n in names)


def _splitter(sep: str, n: int):
    """Field splitter for a separator: tab, comma (CSV quoting) or " " (any whitespace)."""
    if sep == "\t":
        return lambda line: line.split("\t")
    if sep == ",":
        return lambda line: next(csv.reader([line]))
    return lambda line: line.split(None, n - 1)  # the description keeps its spaces


@dataclass
class _Layout:
    n: int
    commit: int
    metric: int
    memory: int
    mem_scale: float
    status: int
    desc: int
    extra: list[tuple[int, str]]


def _numeric(samples: list[list[str]], i: int) -> bool | None:
    values = [s[i].strip() for s in samples if i < len(s)]
    values = [v for v in values if v.lower() not in _MISSING]
    if not values:
        return None  # unknown: nothing but dashes or no rows yet
    ok = sum(_num(v) is not None for v in values)
    return ok >= 0.8 * len(values)


def _layout(columns: list[str], metric: str | None, samples: list[list[str]], source: str) -> _Layout:
    names = [c.strip().lower() for c in columns]
    commit = next((i for i, c in enumerate(names) if c == "commit"),
                  next(i for i, c in enumerate(names) if c.startswith("commit")))
    status = names.index("status")
    memory, scale = -1, 1.0
    for i, c in enumerate(names):
        if c in _MEM_GB or c in _MEM_MB:
            memory, scale = i, (1.0 if c in _MEM_GB else 1 / 1024)
            break
    desc = next((i for i, c in enumerate(names) if c in _DESC_NAMES), -1)
    roles = {commit, status, memory, desc}
    free = [i for i in range(len(names)) if i not in roles]
    if metric:
        exact = [i for i, c in enumerate(columns) if c.strip() == metric]
        loose = [i for i, c in enumerate(names) if c == metric.strip().lower()]
        if not (exact or loose):
            raise ResultsFormatError(
                f"{source}: no column `{metric}`; the columns are {', '.join(columns)}")
        metric_i = (exact or loose)[0]
    else:
        kinds = {i: _numeric(samples, i) for i in free}
        metric_i = next((i for i in free if kinds[i]),
                        next((i for i in free if kinds[i] is None), free[0] if free else -1))
        if desc < 0:  # the last text column
            desc = next((i for i in reversed(free) if i != metric_i and kinds[i] is False), -1)
    taken = {commit, status, memory, desc, metric_i}
    extra = [(i, columns[i].strip()) for i in range(len(columns)) if i not in taken]
    return _Layout(len(columns), commit, metric_i, memory, scale, status, desc, extra)


def _find_header(lines: list[str]) -> tuple[int, str] | None:
    """Index and separator of the first header line (tab, comma or whitespace separated)."""
    for idx, line in enumerate(lines):
        if "commit" not in line.lower():
            continue
        for sep in ("\t", ",", " "):
            if sep in line and _is_header(_splitter(sep, 99)(line)):
                return idx, sep
    return None


def _headerless(line: str) -> str | None:
    """Separator if the line reads as a standard five-column data row."""
    for sep in ("\t", " "):
        fields = _splitter(sep, 5)(line)
        if len(fields) == 5 and (fields[3].strip().lower() in _STATUS_WORDS):
            return sep
    return None


def _fit(fields: list[str], n: int, desc: int) -> list[str] | None:
    """Fields cut to n columns when the surplus is a tab in the description or empty cells."""
    if len(fields) == n:
        return fields
    if len(fields) > n and desc == n - 1:
        return fields[: n - 1] + [" ".join(f.strip() for f in fields[n - 1:])]
    if len(fields) > n and not "".join(fields[n:]).strip():
        return fields[:n]
    return None


def _truncated_status(raw: str) -> bool:
    low = raw.lower()
    return low not in _STATUS_WORDS and any(w.startswith(low) for w in _STATUS_WORDS)


def _reject(line: str, got: int, n: int) -> str:
    stripped = line.lstrip()
    if stripped.startswith("#"):
        return "comment or markdown heading"
    if stripped.startswith("|"):
        return "markdown table row"
    if stripped.startswith("```"):
        return "markdown code fence"
    if "\x00" in line or "\ufffd" in line:
        return "unreadable (binary) data"
    return f"too few columns ({got} of {n})" if got < n else f"too many columns ({got} of {n})"


def parse_results(text: str, metric: str | None = None, direction: str | None = None,
                  source: str = "results.tsv") -> ResultsTable:
    """Read results.tsv text. Never fails on a bad line; raises ResultsFormatError only when
    there is no table at all."""
    # Building 100k rows triggers many useless cycle collections: pause the collector.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _inert(_parse(text, metric, direction, source), text)
    finally:
        if enabled:
            gc.enable()


def _inert(table: ResultsTable, text: str) -> ResultsTable:
    """A foreign file's escapes and control bytes never reach a screen or a summary."""
    if sanitize.suspect(text):
        for row in table.rows:
            row.commit, row.description = sanitize.line(row.commit), sanitize.line(row.description)
            row.raw_status = sanitize.line(row.raw_status)
            row.extra = {sanitize.line(k): sanitize.line(v) for k, v in row.extra.items()}
    return table


def _parse(text: str, metric: str | None, direction: str | None, source: str) -> ResultsTable:
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    if "\n" not in text and "\r" in text:  # old Mac line endings
        text = text.replace("\r", "\n")
    lines = text.split("\n")
    unterminated = not text.endswith("\n")
    if not unterminated:
        lines.pop()  # the empty piece after the final newline
    skipped: list[tuple[int, str]] = []
    if not text or text.isspace():
        name = metric or STANDARD_COLUMNS[1]
        return ResultsTable([], name, _direction(direction, name), skipped, [])

    first = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), 0)
    found = _find_header(lines[: first + 1])
    if found is None and (sep := _headerless(lines[first])) is not None:
        columns = list(STANDARD_COLUMNS)
        if metric:
            columns[1] = metric
        start = first
        skipped.append((0, "no header line; assumed " + ", ".join(columns)))
        skipped.extend((i + 1, "comment") for i in range(first) if lines[i].strip())
    else:
        found = found or _find_header(lines)
        if found is None:
            binary = text.count("\ufffd") + text.count("\x00") > len(text) // 20
            what = "binary data, not a text table" if binary else "no header with a commit and a status column"
            raise ResultsFormatError(f"{source}: {what}; expected `{_EXPECTED}`")
        hdr, sep = found
        columns = [c.strip() for c in _splitter(sep, 99)(lines[hdr])]
        start = hdr + 1
        skipped.extend((i + 1, "before the header") for i in range(hdr) if lines[i].strip())

    split = _splitter(sep, len(columns))
    samples = [f for f in (split(ln) for ln in lines[start:start + 200])
               if len(f) >= len(columns) and not _is_header(f)]
    lay = _layout(columns, metric, samples, source)
    name = columns[lay.metric].strip() if lay.metric >= 0 else (metric or "")
    decimals = _decimals([f[lay.metric] for f in samples if lay.metric >= 0])
    sections: list[Section] = []
    section: Section | None = None  # the block being collected, if any
    rows: list[ResultRow] = []
    blocked = ""  # set when a later header lacks the metric column
    last = len(lines) - 1 if unterminated else -1  # the one line that may be cut short
    # The loop runs once per row: everything it uses is a local (no attribute or global lookups).
    words_get = _STATUS_WORDS.get
    isfinite = math.isfinite
    add = rows.append
    row_type = ResultRow
    memory_seen: dict[str, float | None] = {}
    tab = sep == "\t"
    minimise = _direction(direction, name) == "min"
    n, c_i, m_i, mem_i, scale, s_i, d_i, extra = (lay.n, lay.commit, lay.metric, lay.memory, lay.mem_scale,
                                                  lay.status, lay.desc, lay.extra)
    for idx in range(start, len(lines)):
        line = lines[idx]
        fields = line.split("\t") if tab else split(line)
        is_header = False
        if len(fields) != n or blocked or idx == last:  # rare: everything odd is handled here
            lineno = idx + 1
            if not line or line.isspace():
                skipped.append((lineno, "blank line"))
                section = None
                continue
            if section is not None and not _is_header(fields):
                cells = _section_cells(line, section)
                if cells is not None:
                    section.rows.append(cells)
                    continue
                section = None
            found_columns = _COLUMNS.match(line)
            if found_columns is not None:
                section = Section(lineno, [c.strip() for c in next(csv.reader([found_columns.group(1)]))])
                sections.append(section)
                continue
            partial = idx == last
            is_header = _is_header(fields)
            if not is_header:
                fitted = _fit(fields, n, d_i)
                reason = blocked or ("" if fitted else _reject(line, len(fields), n))
                if not reason and partial and s_i == n - 1 and _truncated_status(fitted[-1].strip()):
                    reason = "status cut short"
                if reason:
                    if partial:
                        reason = f"truncated last line (no newline at the end; {reason})"
                    skipped.append((lineno, reason))
                    continue
                fields = fitted
        if not is_header:
            raw = fields[s_i].strip()
            status = words_get(raw) or words_get(raw.lower())
            is_header = status is None and _is_header(fields)
        if is_header:
            lineno = idx + 1
            cols = [f.strip() for f in fields]
            if cols == columns:
                skipped.append((lineno, "repeated header"))
                continue
            columns, split = cols, _splitter(sep, len(cols))
            try:
                lay, blocked = _layout(cols, name or None, [], source), ""
                skipped.append((lineno, "header with other columns; rows below are read by it"))
            except ResultsFormatError:
                blocked = f"after a header without the `{name}` column (line {lineno})"
                skipped.append((lineno, "header without the metric column"))
                section = Section(lineno, cols)
                sections.append(section)
            n, c_i, m_i, mem_i, scale, s_i, d_i, extra = (lay.n, lay.commit, lay.metric, lay.memory,
                                                          lay.mem_scale, lay.status, lay.desc, lay.extra)
            memory_seen.clear()  # the memory column may now be in other units
            continue
        value: float | None
        if m_i >= 0:
            try:
                value = float(fields[m_i])  # float() ignores surrounding whitespace
                if not isfinite(value):
                    value = None
            except ValueError:
                value = None
        else:
            value = None
        if status is None:
            if not raw:
                skipped.append((idx + 1, "no status"))
                continue
            mtext = fields[m_i].strip() if m_i >= 0 else ""
            if value is None and mtext.lower() not in _MISSING:
                skipped.append((idx + 1, "not a results row"))
                continue
            status = "discard"  # e.g. "run": a run whose change was not kept
        if value == 0.0 and status != "keep" and (status == "crash" or minimise or _KILLED.search(line)):
            # 0.000000 is how a crash or a killed run is written (the reference convention), not a
            # result; a maximised metric (accuracy) can really be 0 on a discard, unless killed.
            value = None
        memory = None
        if mem_i >= 0:
            mtext = fields[mem_i]
            memory = memory_seen.get(mtext, memory_seen)  # few distinct values ("44.0"): parse once
            if memory is memory_seen:
                try:
                    memory = float(mtext) * scale
                    if not isfinite(memory):
                        memory = None
                except ValueError:
                    memory = None
                if len(memory_seen) < 4096:
                    memory_seen[mtext] = memory
        add(row_type(
            fields[c_i].strip(), value, memory, status,
            fields[d_i].strip() if d_i >= 0 else "",
            raw if raw != status else "", idx + 1,
            {col: fields[i].strip() for i, col in extra} if extra else {},
        ))
    _section_notes(sections, skipped)
    return ResultsTable(rows, name, _direction(direction, name), skipped, columns, decimals, sections)


def _decimals(texts: list[str]) -> int | None:
    """Digits after the point as the file writes its metric (the most any sample has)."""
    most = None
    for text in texts:
        text = text.strip()
        if not _num(text):  # not a number, or the 0.000000 of a crash (the convention, not the file's style)
            continue
        if "e" in text.lower():
            return None
        digits = len(text.partition(".")[2])
        most = digits if most is None else max(most, digits)
    return most


_COLUMNS = re.compile(r"^\s*columns?\s*:\s*(.+)$", re.I)


def _section_notes(sections: list[Section], skipped: list[tuple[int, str]]) -> None:
    """Lines shown in a section are not "skipped": drop their notes, say where they went."""
    if not sections:
        return
    shown: set[int] = set()
    for sec in sections:
        shown.update(range(sec.first_line, sec.first_line + len(sec.rows) + 1))
    skipped[:] = [(n, why) for n, why in skipped if n not in shown]
    for sec in sections:
        skipped.append((sec.first_line, f"{len(sec.rows)} row(s) in another shape ({', '.join(sec.columns)}): "
                                        "shown as a section of their own"))
    skipped.sort()


def _section_cells(line: str, section: Section) -> list[str] | None:
    """The line's cells if it reads as a row of the section (its column count, give or take a
    description with separators in it); None ends the section."""
    n = len(section.columns)
    for sep in ("\t", ","):
        cells = _splitter(sep, n)(line)
        if len(cells) == n:
            return [c.strip() for c in cells]
        if len(cells) > n > 1:
            return [c.strip() for c in cells[: n - 1]] + [sep.join(cells[n - 1:]).strip()]
    return None


def read_results(path: Path | str, metric: str | None = None,
                 direction: str | None = None) -> ResultsTable:
    """Read a results.tsv file; see parse_results."""
    data = Path(path).read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # PowerShell writes UTF-16
        text = data.decode("utf-16", errors="replace")
    else:
        text = data.decode("utf-8", errors="replace")
    return parse_results(text, metric, direction, source=str(path))
