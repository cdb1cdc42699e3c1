"""The browser view of `autoresearch-tui serve` (serve.png), from a real session.

    python screenshots/serve_screenshot.py SESSION_OR_PROJECT [OUT.png]

Serves the session on a free port, opens it in headless Chromium (the test's DevTools client,
tests/browser.py) and saves the page once the watch screen is drawn.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from browser import Chromium, find_chromium  # noqa: E402


async def shoot(target: Path, out: Path) -> None:
    server = subprocess.Popen([sys.executable, "-m", "autoresearch_tui", "serve", str(target), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    url = next(line.split()[1] for line in server.stdout if line.startswith("open "))
    binary = find_chromium()
    if binary is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "profile").mkdir()
        browser = Chromium(binary, Path(tmp) / "profile", size=(1280, 760))
        try:
            page = await browser.page()
            await page.open(url)
            await page.wait_text("4 Results", "read-only")
            await asyncio.sleep(1.5)  # the toasts of the first screen fade
            await page.screenshot(out)
        finally:
            await browser.close()
            server.send_signal(signal.SIGINT)
            server.wait(15)
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(shoot(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "serve.png"))
