"""A real browser on the dashboard: ``streamlit run`` on a free loopback port and headless Chromium.

Streamlit draws its pages with JavaScript over a websocket, so Chromium is driven through the
DevTools protocol (``websockets`` comes with Streamlit). Used by ``test_dashboard_browser.py``
and by ``bench/dashboard_pages.py`` (first-visit times and screenshots).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from kobe_mlops.deployment.serving import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP = PROJECT_ROOT / "Code" / "kobe_mlops" / "dashboard" / "app.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
CHROMIUM_FLAGS += " --disable-component-update --disable-sync --hide-scrollbars"
SERVER_START_SECONDS = 60
BROWSER_START_SECONDS = 30
WINDOW_WIDTH = 1400
PAGE_RENDER_SECONDS = 90  # a first script run on a busy machine reads the store and imports the charts
EXCEPTION_JS = (
    "Array.from(document.querySelectorAll('[data-testid=\"stException\"]')).map(e => e.innerText).join('\\n')"
)


def page_done_js(title: str | None = None) -> str:
    """True once Streamlit has finished the page's script in a new document (the marker set on the old one
    tells them apart): the app says its script is not running and a title (this ``title``) is drawn."""
    same_title = "true" if title is None else f"title.innerText.trim() === {json.dumps(title)}"
    return (
        "(() => { if (window.kobeOldDocument) return false;"
        " const app = document.querySelector('[data-testid=\"stApp\"]');"
        " const title = document.querySelector('[data-testid=\"stMain\"] h1');"
        f" return Boolean(app && title) && {same_title} && app.getAttribute('data-test-script-state') === 'notRunning';"
        " })()"
    )


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@contextmanager
def streamlit_server(env: dict[str, str], log: Path):
    """``streamlit run`` the dashboard on 127.0.0.1 with ``env``; yields its URL, stops it at the end."""
    port = free_port()
    options = ["--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true"]
    command = [sys.executable, "-m", "streamlit", "run", str(APP), *options, "--browser.gatherUsageStats", "false"]
    with log.open("w") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"streamlit exited with code {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        wait_until(healthy, SERVER_START_SECONDS, f"streamlit answering on {url}")
        yield url
    finally:
        stop(process)


class Browser:
    """Headless Chromium driven over the DevTools protocol: navigate, wait, read text, screenshot."""

    def __init__(self, profile: Path, height: int = 1000):
        self.profile, self.message_id = profile, 0
        flags = [*CHROMIUM_FLAGS.split(), f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1"]
        flags += ["--remote-debugging-port=0", f"--window-size={WINDOW_WIDTH},{height}", "about:blank"]
        self.process = subprocess.Popen(
            [CHROMIUM, *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )

    def __enter__(self):
        from websockets.sync.client import connect

        active_port = self.profile / "DevToolsActivePort"  # Chromium writes its chosen port here
        port = wait_until(
            lambda: active_port.is_file() and active_port.read_text().strip(),
            BROWSER_START_SECONDS,
            "Chromium's DevTools endpoint",
        ).split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(target for target in json.load(response) if target["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        return self

    def __exit__(self, *exc):
        self.socket.close()
        stop(self.process)

    def call(self, method: str, **params) -> dict:
        self.message_id += 1
        self.socket.send(json.dumps({"id": self.message_id, "method": method, "params": params}))
        while True:  # skip event notifications until our answer arrives
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.message_id:
                return message.get("result", {})

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def visible_text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def finished(self, done_js: str, where: str, settle: float, started: float) -> float:
        """Seconds from ``started`` until ``done_js`` holds and keeps holding for ``settle`` seconds (a page
        reruns once after its first draw); a page that raised fails with the text of Streamlit's exception box."""
        done_since = None
        while time.monotonic() - started < PAGE_RENDER_SECONDS:
            if self.evaluate(done_js):
                done_since = done_since or time.monotonic()
                if time.monotonic() - done_since >= settle:
                    shown = self.evaluate(EXCEPTION_JS)
                    if shown:
                        raise AssertionError(f"{where} raised:\n{shown[:2000]}")
                    return done_since - started
            else:
                done_since = None
            time.sleep(0.05)
        raise AssertionError(f"{where} did not finish within {PAGE_RENDER_SECONDS} s:\n{self.visible_text()[:2000]}")

    def visit(self, url: str) -> float:
        """Open ``url``; the seconds until Streamlit has finished running the page."""
        self.evaluate("window.kobeOldDocument = true")
        started = time.monotonic()
        self.call("Page.navigate", url=url)
        return self.finished(page_done_js(), url, 0.5, started)

    def open_page(self, title: str) -> float:
        """Click ``title`` in the sidebar, as a user moves between pages (the app stays loaded); the seconds
        until that page's script has finished."""
        clicked = self.evaluate(
            "(() => { const link = Array.from(document.querySelectorAll('[data-testid=\"stSidebarNav\"] a'))"
            f".find(a => a.innerText.trim() === {json.dumps(title)});"
            " if (link) link.click(); return Boolean(link); })()"
        )
        if not clicked:
            raise AssertionError(f"no sidebar link {title!r}:\n{self.visible_text()[:2000]}")
        return self.finished(page_done_js(title), title, 0.3, time.monotonic())

    def screenshot(self, path: Path) -> None:
        """The page as a PNG, cut at the end of its content (open the browser with a tall window:
        Streamlit scrolls inside its main section, so only the window's height is drawn)."""
        height = self.evaluate(
            "Math.max(...Array.from(document.querySelectorAll('[data-testid=\"stMain\"] *'))"
            ".map(e => e.getBoundingClientRect().bottom)) + 40"
        )
        viewport = self.evaluate("window.innerHeight")
        clip = {"x": 0, "y": 0, "width": WINDOW_WIDTH, "height": min(int(height or viewport), viewport), "scale": 1}
        image = self.call("Page.captureScreenshot", format="png", clip=clip)
        path.write_bytes(base64.b64decode(image["data"]))
