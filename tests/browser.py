"""Headless Chromium driven over the DevTools protocol (aiohttp's WebSocket client, no driver)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp

# The page's xterm.js draws on a canvas; its Terminal object is not global, so find it on the heap
# and read the visible rows from its buffer (xterm's public API).
READ_TERMINAL = """function () {
  for (const o of this) {
    try {
      const b = o && o.buffer && o.buffer.active;
      if (b && typeof b.getLine === "function" && typeof o.rows === "number") {
        const lines = [];
        for (let i = 0; i < o.rows; i++) {
          const line = b.getLine(b.viewportY + i);
          lines.push(line ? line.translateToString(true) : "");
        }
        return lines.join("\\n");
      }
    } catch (e) {}
  }
  return null;
}"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def send(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:  # events in between are not needed
            reply = json.loads((await self.ws.receive(timeout=30)).data)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def open(self, url: str) -> None:
        await self.send("Page.enable")
        await self.send("Page.navigate", url=url)

    async def evaluate(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def terminal_text(self) -> str:
        proto = await self.send("Runtime.evaluate", expression="Object.prototype")
        found = await self.send("Runtime.queryObjects", prototypeObjectId=proto["result"]["objectId"])
        result = await self.send("Runtime.callFunctionOn", objectId=found["objects"]["objectId"],
                                 functionDeclaration=READ_TERMINAL, returnByValue=True)
        await self.send("Runtime.releaseObjectGroup", objectGroup="")
        return result["result"].get("value") or ""

    async def wait_text(self, *needles: str, timeout: float = 40) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.terminal_text()
            if all(n in text for n in needles):
                return text
            await asyncio.sleep(0.3)
        raise AssertionError(f"the page never showed {needles}; it shows:\n{text}")

    async def press(self, *keys: str) -> None:
        """Type keys into the focused terminal as a user would."""
        await self.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
        for key in keys:
            if key == "Escape":
                down = {"key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27}
            else:
                down = {"key": key, "text": key, "windowsVirtualKeyCode": ord(key.upper())}
            await self.send("Input.dispatchKeyEvent", type="keyDown", **down)
            await self.send("Input.dispatchKeyEvent", type="keyUp", **{k: v for k, v in down.items() if k != "text"})

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


class Chromium:
    """One headless browser with its own profile; `page()` connects to its first tab."""

    def __init__(self, binary: str, profile: Path, size: tuple[int, int] = (1280, 800)) -> None:
        self.profile = profile
        self.log = open(profile.parent / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-dev-shm-usage", "--disable-background-networking", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.http: aiohttp.ClientSession | None = None

    async def page(self, timeout: float = 30) -> Page:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start: {Path(self.log.name).read_text()[-2000:]}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self.http = aiohttp.ClientSession()
        while True:
            async with self.http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                pages = [t for t in await resp.json() if t["type"] == "page"]
            if pages or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        return Page(ws)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()
