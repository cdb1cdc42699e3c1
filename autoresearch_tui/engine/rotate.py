"""One session's rows stay its own: `results.tsv` always holds the rows of one session.

A new session moves the previous file into the folder of the session that wrote it (as the
reference workflow starts each tag with a fresh file); resuming a session brings its own file
back. `.autoresearch/.results-owner` names the session whose rows `results.tsv` holds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from autoresearch_tui.engine import safefs

OWNER = ".results-owner"
NAME = "results.tsv"


def _owner(sessions: Path) -> str | None:
    try:
        name = (sessions / OWNER).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name if name and "/" not in name and name not in (".", "..") else None


def _set_owner(sessions: Path, tag: str) -> None:
    sessions.mkdir(parents=True, exist_ok=True)
    safefs.write_atomic(sessions / OWNER, (tag + "\n").encode("utf-8"))


def _park(results: Path, sessions: Path, owner: str | None) -> None:
    """Move `results` into its owner's session folder (or a dated folder for a file of unknown origin)."""
    folder = sessions / owner if owner and (sessions / owner).is_dir() else \
        sessions / f"previous-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / NAME
    if dest.exists():
        dest = folder / f"results-{time.strftime('%Y%m%d-%H%M%S')}.tsv"
    os.replace(results, dest)


def claim(results: Path, sessions: Path, tag: str, resume: bool) -> None:
    """Make `results` this session's file."""
    owner = _owner(sessions)
    if resume and owner in (None, tag):
        _set_owner(sessions, tag)
        return
    if results.exists() and results.stat().st_size > 0:
        _park(results, sessions, owner)
    own = sessions / tag / NAME
    if resume and own.exists():
        os.replace(own, results)  # this session's rows come back to where they are appended
    _set_owner(sessions, tag)
