"""Shared fixtures. ``pipeline_run`` executes the real pipeline once per test session.

Every test that needs that run (the fixtures in :data:`E2E_FIXTURES`, directly or through
another fixture) is marked ``e2e`` here, so ``pytest -m "not e2e"`` never starts it. A test that
runs ``run_all.py``, a server, Spark or a browser itself carries the mark in its own file, and
:func:`run_pipeline` refuses to run from a test without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kobe_mlops import config

# Fixtures that run the pipeline (or read its session run): any test using one is end-to-end.
E2E_FIXTURES = frozenset({"pipeline_run", "tracking", "workspace_copy"})

SHARED_DATA = Path(os.environ.get("KOBE_DATA_SOURCE") or config.PROJECT_ROOT.parent / "shared" / "data")


def require_shared_data() -> Path:
    if not (SHARED_DATA / config.DATASET_FILES["dev"]).is_file():
        pytest.skip(f"course data not found in {SHARED_DATA} (set KOBE_DATA_SOURCE to its folder)")
    return SHARED_DATA


@dataclass
class PipelineRun:
    workspace: Path
    tracking_uri: str
    stdout: str

    @property
    def paths(self) -> config.WorkspacePaths:
        return config.workspace_paths(self.workspace)

    def env(self) -> dict[str, str]:
        return workspace_env(self.workspace)


def workspace_env(workspace: Path) -> dict[str, str]:
    """Environment for a subprocess that works in ``workspace`` with its own SQLite store."""
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID"}}
    env["KOBE_WORKSPACE"] = str(workspace)
    return env


def pytest_configure():
    """One OpenMP thread in the test process (not its subprocesses): scikit-learn's OpenMP threads
    wait on a busy small machine's pipeline run, and its results do not depend on the count. Its
    runtime is loaded first: the limit applies to the runtimes loaded when it is set."""
    import sklearn.ensemble  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


_SESSION_EXPERIMENT_ID = os.environ.get("MLFLOW_EXPERIMENT_ID")


@pytest.fixture(autouse=True)
def _mlflow_experiment_restored():
    """``mlflow.set_experiment`` (any in-process logging: the step, the replay, a page, also from a
    module-scoped fixture) exports ``MLFLOW_EXPERIMENT_ID``; a later test's store has no such
    experiment. After each test it is what it was when the session started."""
    yield
    if _SESSION_EXPERIMENT_ID is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = _SESSION_EXPERIMENT_ID


def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


STARTED_EARLY = pytest.StashKey()  # what a test's ``start_early()`` returned, on its item


def starts_early(start):
    """Decorate a test so ``start()`` (no argument; returns ``(folder, Popen)``) is called once the tests
    are chosen: a fresh interpreter's seconds of imports then run on the other core beside the session's
    other tests. The test reads it from ``request.node.stash[STARTED_EARLY]``."""

    def mark(test):
        test.start_early = start
        return test

    return mark


def pytest_collection_finish(session):
    for item in session.items:
        start = getattr(getattr(item, "obj", None), "start_early", None)
        if start is not None:
            item.stash[STARTED_EARLY] = start()


def pytest_sessionfinish(session):
    import shutil

    for item in getattr(session, "items", []):  # a session stopped early leaves no process or folder behind
        if STARTED_EARLY in item.stash:
            folder, process = item.stash[STARTED_EARLY]
            process.kill()
            process.communicate()
            shutil.rmtree(folder, ignore_errors=True)


_current = {"item": None}  # the test being set up or run, for the guard in run_pipeline


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _current["item"] = item


def run_pipeline(
    workspace: Path, *args: str, check: bool = True, timeout: int = 900, tracking_uri: str = ""
) -> subprocess.CompletedProcess:
    """``run_all.py --workspace workspace *args`` with the workspace's own SQLite store, or ``tracking_uri``."""
    item = _current["item"]
    if item is not None and item.get_closest_marker("e2e") is None:
        raise AssertionError(f"{item.nodeid} runs run_all.py: mark it e2e (pytest.mark.e2e) so the quick loop skips it")
    result = subprocess.run(
        [sys.executable, str(config.PROJECT_ROOT / "run_all.py"), "--workspace", str(workspace), *args],
        env=workspace_env(workspace) | ({"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"run_all.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> PipelineRun:
    """A full, default-settings pipeline run on the course data in a temporary workspace."""
    data = require_shared_data()
    workspace = tmp_path_factory.mktemp("workspace")
    result = run_pipeline(workspace, "--data-source", str(data))
    return PipelineRun(workspace, f"sqlite:///{workspace / 'mlflow.db'}", result.stdout)


@pytest.fixture
def tracking(pipeline_run, monkeypatch):
    """Point this process's MLflow client and workspace at the session pipeline run."""
    import mlflow

    monkeypatch.setenv("KOBE_WORKSPACE", str(pipeline_run.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(pipeline_run.tracking_uri)
    yield mlflow.MlflowClient(pipeline_run.tracking_uri)


@pytest.fixture
def workspace_copy(pipeline_run, tmp_path) -> PipelineRun:
    """A private copy of the session pipeline's workspace, for tests that add runs or move aliases. New
    runs in it still write artifacts under the original's ``mlruns`` (an absolute location), in folders
    of their own."""
    import shutil

    copy = tmp_path / "workspace"
    shutil.copytree(pipeline_run.workspace, copy)
    return PipelineRun(copy, f"sqlite:///{copy / 'mlflow.db'}", pipeline_run.stdout)


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An empty SQLite store with MLflow's tables, made once per session: MLflow takes seconds to create
    one, a copy (:func:`copy_empty_store`) takes milliseconds."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def copy_empty_store(template: Path, target: Path) -> str:
    """Copy the empty store ``template`` to ``target``; return its tracking URI."""
    import shutil

    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@contextmanager
def empty_store_workspace(root: Path, template: Path, patch: pytest.MonkeyPatch):
    """Workspace ``root`` with an empty default store ``<root>/mlflow.db`` (a copy of ``template``), for tests
    that log runs. MLflow's process-wide tracking URI is put back afterwards (the autouse fixture puts back
    ``MLFLOW_EXPERIMENT_ID``), so no later test or subprocess inherits this store."""
    import mlflow
    from mlflow.tracking import fluent

    from kobe_mlops.tracking import INVOCATION_ENV

    copy_empty_store(template, root / "mlflow.db")
    patch.setenv("KOBE_WORKSPACE", str(root))
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    patch.setenv(INVOCATION_ENV, "unit-test-invocation")
    patch.setattr(fluent, "_active_experiment_id", None)
    previous_uri = mlflow.get_tracking_uri()
    yield root
    mlflow.set_tracking_uri(previous_uri)


@pytest.fixture(scope="session")
def logged_replay(tmp_path_factory, empty_mlflow_db):
    """One synthetic replay of every strategy over ``replay_support.SEASONS``, logged by the real logging
    code to the default store of a workspace of its own; the replay and Timeline tests read the same one."""
    from types import SimpleNamespace

    from kobe_mlops.monitoring import replay
    from replay_support import replayed

    folder = tmp_path_factory.mktemp("replay")
    with pytest.MonkeyPatch.context() as patch, empty_store_workspace(folder, empty_mlflow_db, patch):
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # set_experiment exports it: put it back after
        outcome, lines, batches = replayed(log=replay.MlflowReplayLog())
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return SimpleNamespace(workspace=folder, uri=uri, outcome=outcome, lines=lines, batches=batches)


@pytest.fixture
def mlflow_workspace(tmp_path, monkeypatch, empty_mlflow_db) -> Path:
    """:func:`empty_store_workspace` in ``tmp_path``, for unit tests that log runs."""
    with empty_store_workspace(tmp_path, empty_mlflow_db, monkeypatch):
        yield tmp_path


def synthetic_shots(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """Shots inside the data contract whose make rate falls with distance: a model that learns
    anything beats a constant. For unit tests that need a small, real training set."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "lat": rng.uniform(33.3, 34.0, rows),
            "lon": rng.uniform(-118.5, -118.0, rows),
            "minutes_remaining": rng.integers(0, 12, rows),
            "period": rng.integers(1, 5, rows),
            "playoffs": rng.integers(0, 2, rows),
            "shot_distance": rng.uniform(0, 30, rows),
        }
    )
    frame[config.TARGET] = (rng.random(rows) < 0.75 - frame["shot_distance"] / 40).astype(int)
    return frame


class StubHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        status, payload = self.server.score(pd.DataFrame(**body["dataframe_split"]))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep pytest output clean
        pass


class ScoringStub(ThreadingHTTPServer):
    """A loopback HTTP server speaking MLflow's /invocations protocol around ``score(frame) -> (status, body)``."""

    def __init__(self, score):
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.score, self.requests = score, []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def distance_model(frame: pd.DataFrame):
    """A transparent stand-in for the served model: closer shots go in more often."""
    probability = (1 - frame["shot_distance"] / 94).round(6)
    return 200, {
        "predictions": [{config.PROBABILITY_COLUMN: p, config.PREDICTION_COLUMN: int(p >= 0.5)} for p in probability]
    }
