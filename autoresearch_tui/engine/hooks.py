"""User-configured notifier commands (on_new_best, on_finish).

These are the user's own shell commands, so they run through the shell by design; values
reach them only as environment variables, never spliced into the command text.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from autoresearch_tui.engine import sanitize, secrets


def fire(command: str | None, cwd: Path, values: dict[str, str]) -> None:
    if not command:
        return
    try:
        subprocess.Popen(
            command, shell=True, cwd=str(cwd), env=secrets.clean_env({**os.environ, **values}),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        pass  # a broken notifier must never stop the research loop


def new_best_env(row, tag: str) -> dict[str, str]:
    """What an on_new_best command learns about the new best, as environment variables."""
    return {"AUTORESEARCH_COMMIT": row.commit, "AUTORESEARCH_METRIC": f"{row.metric}",
            "AUTORESEARCH_DESCRIPTION": sanitize.line(row.description), "AUTORESEARCH_TAG": tag}
