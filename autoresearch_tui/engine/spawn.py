"""Start the engine as its own detached process, so closing a screen never ends the night.

The screen then follows the session directory like `watch` does; commands go through the
session's control file. The engine process survives the terminal (its own session, SIGHUP
ignored) and writes its plain event lines to `<session_dir>/<tag>.engine.log`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autoresearch_tui.engine import safefs
from autoresearch_tui.engine.config import ResearchConfig


@dataclass
class EngineProcess:
    pid: int
    session: Path  # where events.jsonl will appear
    output: Path  # the engine's own stdout/stderr
    popen: subprocess.Popen | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None


def spawn_engine(config: ResearchConfig, config_file: Path) -> EngineProcess:
    """Run `autoresearch-tui run PROJECT --headless --yes --config FILE` detached."""
    session = config.session_path()
    output = session.parent / f"{config.tag}.engine.log"
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "autoresearch_tui", "run", str(config.project), "--headless", "--yes",
            "--config", str(config_file)]
    with open(safefs.open_append(output), "ab") as out:
        popen = subprocess.Popen(
            argv, cwd=str(config.project), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return EngineProcess(popen.pid, session, output, popen)
