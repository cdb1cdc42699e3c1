"""`serve`: the read-only watch screen in a browser, through textual-serve; safe by default.

Each browser connection starts its own `autoresearch-tui watch SESSION` process, so a tab is a
watcher like any other: closing it never touches the loop, and the server outlives the loop.
Those processes carry the server's `AUTORESEARCH_PROC` mark and end with it.
On 127.0.0.1 whoever can reach the port (an SSH forward) may look; on any other address every
request needs the token the command prints once, as a URL (the page then keeps it in a cookie).
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import os
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path
from string import Template

from aiohttp import web
from textual_serve.server import Server

from autoresearch_tui.core import processes

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PAGE = Template((Path(__file__).parent / "serve_page.html").read_text(encoding="utf-8"))
REFUSED = ("this server needs its access token: open the URL that `autoresearch-tui serve` printed "
           "when it started (it ends in ?token=...)\n")


def needs_token(host: str) -> bool:
    return host not in LOOPBACK


class WatchServer(Server):
    """textual-serve's server with our page and a guard in front of every route."""

    def __init__(self, session: Path, host: str, port: int, token: str | None, mark: str) -> None:
        command = shlex.join([sys.executable, "-m", "autoresearch_tui", "watch", str(session)])
        super().__init__(command, host=host, port=port, title=f"{session.name} · autoresearch-tui (read-only)")
        self.session = session
        self.token = token
        self.mark = mark

    @property
    def cookie(self) -> str:
        return f"autoresearch_token_{self.port}"  # cookies ignore ports: one per server on a host

    def url(self) -> str:
        host = socket.getfqdn() if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def initialize_logging(self) -> None:
        # textual-serve logs every request; warnings (an app that failed to start) are enough here.
        logging.basicConfig(level=logging.WARNING, format="serve: %(message)s")

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard())
        return app

    def _guard(self):
        @web.middleware
        async def guard(request: web.Request, handler):
            if self.token is None:
                # Loopback only: a page from another site that rebinds its name to 127.0.0.1
                # still carries its own name in Host.
                if request.url.host not in LOOPBACK:
                    raise web.HTTPForbidden(text="only http://127.0.0.1 or http://localhost are served\n")
            else:
                given = request.query.get("token") or request.cookies.get(self.cookie, "")
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    raise web.HTTPForbidden(text=REFUSED)
            # Browsers let any site open a WebSocket to any address: only this page's own may.
            origin = request.headers.get("Origin")
            if request.path == "/ws" and origin and origin.split("://", 1)[-1] != request.host:
                raise web.HTTPForbidden(text="cross-site connection refused\n")
            response = await handler(request)
            if self.token and "token" in request.query and not response.prepared:
                response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict")
            return response

        return guard

    async def handle_index(self, request: web.Request) -> web.Response:  # type: ignore[override]
        scheme = "wss" if request.secure else "ws"
        page = PAGE.substitute(
            title=html.escape(self.title),
            name=html.escape(self.session.name),
            static=html.escape(str(request.app.router["static"].url_for(filename="/")).rstrip("/") + "/"),
            ws_url=html.escape(f"{scheme}://{request.host}/ws"),
            font_size=max(8, min(32, _int(request.query.get("fontsize"), 16))),
        )
        return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def on_startup(self, app: web.Application) -> None:
        pass  # textual-serve prints its banner here, before the port is bound; `run` prints ours

    async def run(self) -> None:
        """Listen, print the URL once, serve until SIGINT or SIGTERM."""
        runner = web.AppRunner(await self._make_app(), handle_signals=False, access_log=None, shutdown_timeout=3)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = runner.addresses[0][1]  # the one picked for --port 0
            print(f"serving the read-only watch of {self.session}", flush=True)
            if self.token:
                print("anyone with this URL can watch (it holds the access token):", flush=True)
            print(f"open {self.url()}  (Ctrl-C stops the server; the loop is not affected)", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await _end_watchers(self.mark)  # a tab whose browser went away would hold the shutdown otherwise
            await runner.cleanup()


async def _end_watchers(mark: str, grace: float = 3.0) -> None:
    """The watch processes of open tabs, found by their mark: they only read, so ending them loses
    nothing. asyncio reaps them (it started them); this only signals and waits."""
    processes.signal_tree(None, signal.SIGTERM, mark)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while processes.with_mark(mark) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    processes.end_tree(None, mark)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def serve(session: Path, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM."""
    token = secrets.token_urlsafe(24) if needs_token(host) else None
    inherited = os.environ.get(processes.MARK)  # under it, so whoever started this server still reaches them
    mark = f"{inherited}:{processes.unique_mark('serve')}" if inherited else processes.unique_mark("serve")
    server = WatchServer(session.resolve(), host, port, token, mark)
    server.initialize_logging()
    with processes.marking(mark):  # textual-serve starts each tab's process with this environment
        asyncio.run(server.run())
