"""`serve`: the watch screen in a real headless Chromium, and the token beyond loopback."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import psutil
import pytest

from autoresearch_tui.core.processes import MARK, with_mark
from autoresearch_tui.engine.session import SessionDir

from browser import Chromium, find_chromium
from tui_helpers import finish, pid_alive, spawn_headless

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]  # a server, engines, a browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """A finished session written by the real engine in its own process."""
    popen, session = spawn_headless(tmp_path_factory.mktemp("serve"), "s1", duration=0.1, iterations=1)
    assert popen.wait(90) == 0
    return session


@pytest.fixture
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        message = "chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


class Served:
    def __init__(self, target: Path, host: str = "127.0.0.1") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "autoresearch_tui", "serve", str(target), "--host", host, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.output: list[str] = []
        while True:  # the URL line is printed once the server listens
            line = self.proc.stdout.readline()
            assert line, f"serve exited: {''.join(self.output)}"
            self.output.append(line)
            if line.startswith("open "):
                self.url = line.split()[1]
                break
        self.port = int(re.search(r":(\d+)/", self.url).group(1))
        self.local = f"http://127.0.0.1:{self.port}"

    def children(self) -> list[int]:
        """The watch processes this server started (one per open connection)."""
        alive = []
        for child in psutil.Process(self.proc.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    alive.append(child.pid)
            except psutil.NoSuchProcess:
                pass
        return alive

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if not self.proc.stdout.closed:
            self.output.append(self.proc.stdout.read())
            self.proc.stdout.close()
        return self.proc.wait()


@pytest.fixture
def served():
    servers: list[Served] = []

    def start(target: Path, host: str = "127.0.0.1") -> Served:
        servers.append(Served(target, host))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def wait_until(predicate, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.1)
    return predicate()


async def test_browser_follows_a_loop_read_only_and_outlives_it(served, chromium, tmp_path):
    popen, session = spawn_headless(tmp_path, "live", duration=0.3, iterations=2)
    project = session.parent.parent
    try:
        assert wait_until(lambda: (session / "config.toml").exists(), 60), "the loop did not start"
        server = served(project)  # a project folder: its newest session
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert "token" not in "".join(server.output)

        (tmp_path / "profile").mkdir()
        browser = Chromium(chromium, tmp_path / "profile")
        try:
            page = await browser.page()
            await page.open(server.url)
            await page.wait_text("[watch, read-only]", project.name, "4 Results")
            assert "read-only" in await page.evaluate("document.title")
            assert "read-only view" in await page.evaluate("document.body.innerText")

            # Keys reach the app (help opens), the control keys do nothing.
            await page.press("?")
            await page.wait_text("watch mode: read-only")
            await page.press("Escape")
            await page.wait_text("4 Results")
            await page.press("p", "k", "s", "i")
            await asyncio.sleep(0.5)
            text = await page.terminal_text()
            assert "PAUSING" not in text and "STOPPING" not in text and "Instruction" not in text

            # Each tab (here a second connection) has its own watch process.
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(server.local + "/ws?width=80&height=24") as ws:
                    await ws.receive(timeout=30)
                    assert len(server.children()) == 2
            assert wait_until(lambda: len(server.children()) == 1)
            # Closing the tab ends its watch process and leaves the loop alone.
            await page.send("Page.navigate", url="about:blank")
            assert wait_until(lambda: server.children() == []), "the tab's watch process did not end"
            assert popen.wait(90) == 0, "the loop did not finish on its own"
            control = session / "control.jsonl"
            assert not control.exists() or control.read_text() == "", "the served view sent a command"
            assert SessionDir(session).events()[-1].reason == "max_iterations"

            # The loop has ended; the server is still up and shows the finished session.
            rows = [line.split("\t") for line in (project / "results.tsv").read_text().splitlines()[1:]]
            assert len(rows) == 3
            best = min(rows, key=lambda r: float(r[1]))
            await page.open(server.url)
            text = await page.wait_text("ENDED", rows[-1][4])
            header = " ".join(text.splitlines()[:2])
            assert "[watch, read-only]" in header and project.name in header
            assert f"best val {best[1]}" in header
            for commit, value, _, status, description in rows:  # every row, as the results pane shows it
                assert re.search(rf"{status}\s+{value}\s+{commit}\s+{re.escape(description)}", text), text
            await page.screenshot(ARTIFACTS / "serve-browser.png")
            assert (ARTIFACTS / "serve-browser.png").stat().st_size > 10_000
        finally:
            await browser.close()
        assert server.stop() == 0
        assert "Traceback" not in "".join(server.output)
    finally:
        finish(popen, session=session)


async def test_beyond_loopback_every_route_needs_the_token(session, served):
    server = served(session, host="0.0.0.0")
    token = re.search(r"\?token=(\S+)", server.url).group(1)
    assert len(token) >= 24 and sum(token in line for line in server.output) == 1
    for path in ("/", "/?token=wrong", "/static/js/textual.js", "/static/", "/download/x", "/ws"):
        status, body, _ = get(server.local + path)
        assert status == 403, path
        assert "token" in body and session.name not in body and "proj" not in body
    async with aiohttp.ClientSession() as http:  # the WebSocket that starts a watch process
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.local + "/ws?width=80&height=24")
        assert refused.value.status == 403
    assert server.children() == []

    status, body, headers = get(f"{server.local}/?token={token}")
    assert status == 200 and "read-only view" in body
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert get(server.local + "/static/js/textual.js", {"Cookie": cookie})[0] == 200
    async with aiohttp.ClientSession(headers={"Cookie": cookie}) as http:
        async with http.ws_connect(server.local + "/ws?width=100&height=30") as ws:
            screen = b""
            while b"read-only" not in screen:  # the watch screen, drawn for this connection
                msg = await ws.receive(timeout=30)
                assert msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), msg
                screen += msg.data if msg.type == aiohttp.WSMsgType.BINARY else b""
            watcher = server.children()
            assert len(watcher) == 1
            mark = psutil.Process(watcher[0]).environ().get(MARK, "")  # ended like every other tree
            assert mark.startswith(f"serve:{server.proc.pid}:")
            assert server.stop() == 0  # stopping the server ends the watch processes it started
    assert wait_until(lambda: not pid_alive(watcher[0])), "a watch process outlived the server"
    assert with_mark(mark) == []
    assert "Traceback" not in "".join(server.output), server.output


async def test_loopback_refuses_other_sites(session, served):
    server = served(session)
    assert get(server.local + "/")[0] == 200
    # DNS rebinding: another site's name pointed at 127.0.0.1
    assert get(server.local + "/", {"Host": f"evil.example:{server.port}"})[0] == 403
    async with aiohttp.ClientSession() as http:  # a page of another site opening the WebSocket
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.local + "/ws", origin="http://evil.example")
        assert refused.value.status == 403
    assert server.children() == []


def test_bad_input_is_one_line(tmp_path, session):
    from conftest import cli

    for args, fragment in ((["serve", str(tmp_path / "nowhere")], "not a session folder"),
                           (["serve", str(session), "--port", "70000"], "--port 70000")):
        result = cli(*args, timeout=60)
        assert result.returncode == 2, result.stderr
        assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = cli("serve", str(session), "--port", str(busy.getsockname()[1]), timeout=60)
    assert result.returncode == 2 and "is in use" in result.stderr, result.stderr
