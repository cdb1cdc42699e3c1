"""Turn an unexpected exception into one line and a crash report file, not a traceback."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path


def report(exc: BaseException) -> Path | None:
    base = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "autoresearch-tui"
    from autoresearch_tui.engine.secrets import scrub

    text = scrub("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for folder in (base, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            path.write_text(scrub(f"argv: {sys.argv}\npython: {sys.version}\n\n") + text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def one_line(exc: BaseException) -> str:
    path = report(exc)
    where = f"; details in {path}" if path else ""
    from autoresearch_tui.engine.sanitize import line

    return f"autoresearch-tui: internal error: {type(exc).__name__}: {line(str(exc))}{where}"
