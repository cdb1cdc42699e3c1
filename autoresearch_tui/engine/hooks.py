"""User-configured notifier commands (on_new_best, on_finish).

These are the user's own shell commands, so they run through the shell by design; values
reach them only as environment variables, never spliced into the command text.
"""

from __future__ import annotations

import os
from pathlib import Path

from autoresearch_tui.core import processes, sanitize, secrets


def fire(command: str | None, cwd: Path, values: dict[str, str], mark: str) -> None:
    """Start the hook and return at once (keys kept out of its environment); it is ended after
    processes.HOOK_TIMEOUT_S."""
    if command:
        processes.run_hook(command, cwd, secrets.clean_env({**os.environ, **values}), mark)


def new_best_env(row, tag: str) -> dict[str, str]:
    """What an on_new_best command learns about the new best, as environment variables."""
    return {"AUTORESEARCH_COMMIT": row.commit, "AUTORESEARCH_METRIC": f"{row.metric}",
            "AUTORESEARCH_DESCRIPTION": sanitize.line(row.description), "AUTORESEARCH_TAG": tag}
