"""One real browser: ``streamlit run`` on a free loopback port, headless Chromium, rendered text.

Streamlit draws its pages with JavaScript over a websocket, so the test drives Chromium through
the DevTools protocol (``websockets`` comes with Streamlit) and polls the page's visible text
until the expected words appear or a deadline passes. Both processes are stopped at the end.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import workspace_env
from kobe_mlops import config

APP = config.PROJECT_ROOT / "Code" / "kobe_mlops" / "dashboard" / "app.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 60
BROWSER_START_SECONDS = 30
PAGE_RENDER_SECONDS = 90  # the first script run of a page reads the store and the parquet files

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no headless browser: the Debian package 'chromium' is not installed (.ci/run installs it)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, seconds: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


@contextmanager
def streamlit_server(workspace: Path, log: Path):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, env=workspace_env(workspace), stdout=output, stderr=subprocess.STDOUT)
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
    """Headless Chromium driven over the DevTools protocol: navigate, read the visible text."""

    def __init__(self, profile: Path):
        self.profile = profile
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.message_id = 0

    def __enter__(self):
        from websockets.sync.client import connect

        active_port = self.profile / "DevToolsActivePort"  # Chromium writes its chosen port here
        wait_until(
            lambda: active_port.is_file() and active_port.read_text().strip(),
            BROWSER_START_SECONDS,
            "Chromium's DevTools endpoint",
        )
        port = active_port.read_text().split()[0]
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
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == self.message_id:
                return message.get("result", {})

    def visible_text(self) -> str:
        result = self.call(
            "Runtime.evaluate", expression="document.body ? document.body.innerText : ''", returnByValue=True
        )
        return result["result"].get("value", "")

    def text_of(self, url: str, expected: list[str]) -> str:
        """Open ``url`` and wait until every expected string is on screen; return the text."""
        self.call("Page.navigate", url=url)

        def rendered() -> str:
            text = self.visible_text()
            return text if all(item in text for item in expected) else ""

        try:
            return wait_until(rendered, PAGE_RENDER_SECONDS, f"{url} showing {expected}", interval=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the page showed:\n{self.visible_text()[:2000]}") from None


def test_dashboard_renders_in_a_real_browser(pipeline_run, tmp_path):
    import mlflow

    client = mlflow.MlflowClient(pipeline_run.tracking_uri)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    with (
        streamlit_server(pipeline_run.workspace, tmp_path / "streamlit.log") as url,
        Browser(tmp_path / "chromium-profile") as browser,
    ):
        # Tables are drawn on a canvas, outside the page text: headings and metrics are checked.
        overview = browser.text_of(url, ["Last pipeline runs", config.REGISTERED_MODEL_NAME])
        retraining = browser.text_of(f"{url}/Retraining", ["Recommended action", "Feature drift"])
        # The session pipeline made no replay: the page says so and gives the command.
        timeline = browser.text_of(f"{url}/Timeline", ["No replay yet: no finished replay", "--replay"])
    for page in [
        "Overview",
        "Data drift",
        "Model health with labels",
        "Model health without labels",
        "Inference",
        "Retraining",
        "Timeline",
    ]:
        assert page in overview  # the navigation lists every page
    assert champion.tags["selection_reason"] in overview
    assert "Traceback" not in overview + retraining + timeline
    assert "shot_distance" in retraining
