"""Commands from other processes (the live screen, `control`, `instruct`) via control.jsonl."""

from __future__ import annotations

import asyncio
from typing import Any

from autoresearch_tui.engine import events as ev
from autoresearch_tui.engine.session import ControlInbox, SessionDir

POLL_S = 0.5


async def watch_control(session: SessionDir, engine: Any) -> None:
    inbox = ControlInbox(session.control_path)
    while True:
        for cmd in inbox.read():
            name = cmd.get("cmd")
            if name == "stop":
                # Stop means "after the current run", however often it is sent; killing is kill_run.
                if not engine.stop_requests:
                    engine.request_stop()
            elif name == "kill_run":
                engine.kill_run(cmd.get("worker"))
            elif name == "pause":
                engine.pause()
            elif name == "resume":
                engine.resume()
            elif name in ("review_approve", "review_edit", "review_reject"):
                engine.answer_review(cmd)
            elif name == "instruct" and cmd.get("text"):
                engine.instruct(str(cmd["text"]))
                engine.emit(ev.Notice(message=f"instruction noted: {cmd['text']}"))
        await asyncio.sleep(POLL_S)


