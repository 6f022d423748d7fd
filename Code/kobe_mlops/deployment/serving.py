"""Serve the champion with MLflow's scoring server, and score through it.

:class:`ModelServer` starts and stops ``mlflow models serve``; :class:`RestScoringClient` speaks
MLflow's REST protocol behind the embedded pyfunc's ``predict(frame)``. The command by hand::

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db .venv/bin/mlflow models serve \\
        -m models:/kobe-shot-model@champion --env-manager local --host 127.0.0.1 --port 5001
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import requests

from kobe_mlops import config
from kobe_mlops.tracking_stack import free_port

SCORING_URL_ENV = "KOBE_SCORING_URL"
INVOCATIONS_PATH = "/invocations"
REQUEST_TIMEOUT_SECONDS = 30
# Rows per request: amortises HTTP and JSON, stays well inside the timeout and the server's memory.
BATCH_ROWS = 5000
DEFAULT_HOST = "127.0.0.1"
STARTUP_TIMEOUT_SECONDS = 120


class ScoringError(RuntimeError):
    """The scoring API could not be reached or refused the request; the message says which."""


def configured_scoring_url() -> str:
    return os.environ.get(SCORING_URL_ENV, "").strip()


def invocations_url(url: str) -> str:
    """``http://127.0.0.1:5001`` and ``http://127.0.0.1:5001/invocations`` both mean the latter."""
    url = url.strip().rstrip("/")
    return url if url.endswith(INVOCATIONS_PATH) else url + INVOCATIONS_PATH


def dataframe_split_body(frame: pd.DataFrame) -> dict:
    # pandas' own JSON writer turns numpy scalars into plain JSON numbers (full float precision).
    return {
        "dataframe_split": json.loads(frame[config.FEATURES].to_json(orient="split", index=False, double_precision=15))
    }


class RestScoringClient:
    """The served model behind MLflow's REST protocol, with the pyfunc ``predict`` interface."""

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT_SECONDS, batch_rows: int = BATCH_ROWS):
        self.url = invocations_url(url)
        self.timeout = timeout
        self.batch_rows = batch_rows
        self.session = requests.Session()  # keeps the connection open across batches

    def _post(self, frame: pd.DataFrame) -> pd.DataFrame:
        try:
            response = self.session.post(self.url, json=dataframe_split_body(frame), timeout=self.timeout)
        except requests.RequestException as exc:
            raise ScoringError(
                f"Could not reach the scoring API at {self.url}: {type(exc).__name__}. "
                "Is `mlflow models serve` running there?"
            ) from None
        if response.status_code != 200:
            try:
                detail = response.json().get("message", response.text)
            except ValueError:
                detail = response.text
            raise ScoringError(
                f"The scoring API at {self.url} answered HTTP {response.status_code}: {str(detail)[:300]}"
            )
        try:
            predictions = pd.DataFrame(response.json()["predictions"])
        except (ValueError, KeyError, TypeError):
            raise ScoringError(f"The scoring API at {self.url} answered without a 'predictions' list.") from None
        if config.PROBABILITY_COLUMN not in predictions or len(predictions) != len(frame):
            raise ScoringError(
                f"The scoring API at {self.url} did not return {config.PROBABILITY_COLUMN!r} "
                f"for each of the {len(frame)} rows sent."
            )
        return predictions

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        starts = range(0, len(frame), self.batch_rows)
        scored = pd.concat([self._post(frame.iloc[start : start + self.batch_rows]) for start in starts])
        scored.index = frame.index
        return scored


@dataclass(eq=False)
class ModelServer:
    """``mlflow models serve`` for one model URI on a loopback port (a free one by default); a context manager."""

    model_uri: str = config.CHAMPION_URI
    host: str = DEFAULT_HOST
    port: int | None = None
    tracking_uri: str | None = None
    workers: int = 1
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    log_path: Path | None = field(default=None, init=False)

    def __post_init__(self):
        self.port = self.port or free_port(self.host)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
        serve = [mlflow_cli, "models", "serve", "-m", self.model_uri, "--env-manager", "local", "--host", self.host]
        return [*serve, "--port", str(self.port), "--workers", str(self.workers)]

    def start(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> ModelServer:
        from kobe_mlops.tracking import tracking_uri

        env = dict(os.environ, MLFLOW_TRACKING_URI=self.tracking_uri or tracking_uri())
        # With --env-manager local MLflow starts uvicorn by name (exit code 127 if not found): the venv goes first.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        log = tempfile.NamedTemporaryFile(prefix="kobe-serve-", suffix=".log", delete=False)
        self.log_path = Path(log.name)
        self.process = subprocess.Popen(
            self.command(), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )  # own group: stop() ends the workers too
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                hint = " (uvicorn not found: is the venv's bin/ on PATH?)" if code == 127 else ""
                raise ScoringError(
                    f"mlflow models serve exited with code {code}{hint} before answering "
                    f"/ping. Its last output:\n{self.log_path.read_text()[-1500:]}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return self
            time.sleep(0.5)
        self.stop()
        raise ScoringError(
            f"mlflow models serve did not answer {self.url}/ping within {timeout:.0f} s (log: {self.log_path})."
        )

    def stop(self, timeout: float = 15) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        finally:
            self.process = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
