"""The replay's first screenful, painted before the full-screen app has started.

Starting Textual (imports, stylesheet, first compose) takes a good part of a second; the first
rows of the file take a few milliseconds to read. So `replay` reads the head of the file, draws
those rows as plain text on the terminal's alternate screen, and the app then paints over them
(entering the alternate screen again is a no-op in xterm and tmux, so nothing flashes blank).
Only standard-library and engine imports here: this runs before Textual is imported.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from autoresearch_tui.engine.results import ResultsTable, parse_results

HEAD_BYTES = 32 * 1024
GLYPH = {"keep": "✓ keep", "discard": "○ discard", "crash": "✗ crash"}


def read_head(path: Path) -> ResultsTable:
    """The table in the file's first HEAD_BYTES (the whole file when it is shorter); raises
    ResultsFormatError when that is not a results table."""
    with open(path, "rb") as fh:
        data = fh.read(HEAD_BYTES + 1)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    else:
        if len(data) > HEAD_BYTES:
            data = data[: data.rfind(b"\n", 0, HEAD_BYTES) + 1]
        text = data.decode("utf-8", errors="replace")
    return parse_results(text, source=str(path))


def lines(table: ResultsTable, name: str, width: int, height: int) -> list[str]:
    """Header, column names and as many rows as fit, each cut to the width."""
    out = [f" ■ replay  {name} · reading…", "", f" {'#':>3}  {'status':<10} {table.metric:>12}  {'commit':<8} description"]
    for i, row in enumerate(table.rows[: max(0, height - len(out) - 1)]):
        status = "⊘ killed" if row.status == "discard" and row.metric is None else GLYPH.get(row.status, row.status)
        metric = "—" if row.metric is None else f"{row.metric:.{table.decimals if table.decimals is not None else 6}f}"
        out.append(f" {i:>3}  {status:<10} {metric:>12}  {row.commit[:7]:<8} {row.description}")
    return [line[: width - 1] for line in out]


def paint(table: ResultsTable, name: str) -> bool:
    """Draw the first screenful on the alternate screen of an interactive terminal."""
    if os.name != "posix" or not sys.stdout.isatty() or os.environ.get("TERM", "dumb") == "dumb":
        return False
    width, height = shutil.get_terminal_size()
    text = "\r\n".join(lines(table, name, width, height))
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\r\n")  # file text: never escapes
    sys.stdout.write("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J" + text)
    sys.stdout.flush()
    return True


def leave() -> None:
    """After the app (or if it never started): back to the normal screen. A no-op when the app
    already left the alternate screen."""
    sys.stdout.write("\x1b[?1049l\x1b[?25h")
    sys.stdout.flush()
