"""Shared plumbing of the dashboard pages: where to read, cached reads, the empty state.

Every cached function takes the workspace and tracking URI it reads plus a *stamp* (the
modification times of the files a pipeline run rewrites), so a new run refreshes the pages and
two workspaces (two test sessions, two users' copies) never share a cache entry.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import streamlit as st
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.monitoring import health, trends, triggers
from kobe_mlops.monitoring.drift import compare_features
from kobe_mlops.tracking import reads, tracking_uri

PAGES_DIR = Path(__file__).resolve().parent / "views"
# Pages are "NN_Title_words.py": NN orders them, the rest is the title Streamlit shows.
PAGE_PATTERN = "[0-9][0-9]_*.py"
# A remote tracking server has no file to stamp: its reads are refreshed after this many seconds.
STATE_TTL_SECONDS = 60


def page_files(pages_dir: Path = PAGES_DIR) -> list[Path]:
    return sorted(pages_dir.glob(PAGE_PATTERN))


@dataclass(frozen=True)
class Source:
    """What the dashboard reads: a workspace, a tracking store, and their current stamp."""

    workspace: str
    tracking_uri: str
    stamp: tuple[int, ...]


def current_source() -> Source:
    paths = config.workspace_paths()
    watched = [
        paths.mlflow_db,
        paths.data_filtered,
        paths.base_train,
        paths.base_test,
        paths.predictions_prod,
        paths.rejected_prod,
    ]
    stamp = tuple(path.stat().st_mtime_ns if path.exists() else 0 for path in watched)
    return Source(str(paths.root), tracking_uri(), stamp)


def pipeline_command(workspace: str | Path) -> str:
    """The command that fills ``workspace``, as a user would type it from the project root."""
    command = [".venv/bin/python", "run_all.py"]
    if Path(workspace).resolve() != config.PROJECT_ROOT:
        command += ["--workspace", str(workspace)]
    return shlex.join(command)


def show_empty_state(source: Source, missing: str) -> None:
    """Say what is missing and which command produces it, then stop the page."""
    st.info(
        f"Nothing to show yet: {missing}. The dashboard reads workspace `{source.workspace}` and "
        f"tracking store `{source.tracking_uri}`; run the pipeline first (add "
        "`--data-source DIR` without internet access):"
    )
    st.code(pipeline_command(source.workspace), language="bash")
    st.stop()


def show_figure(figure: plt.Figure, width: str | int = "stretch") -> None:
    """Show a matplotlib figure; ``width="content"`` keeps its own size instead of filling the column."""
    st.pyplot(figure, width=width)
    plt.close(figure)  # Streamlit keeps its own image; free matplotlib's copy


# --- Cached reads -----------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _client(uri: str) -> MlflowClient:
    return MlflowClient(uri)


@st.cache_data(show_spinner="Reading the MLflow store…", ttl=STATE_TTL_SECONDS)
def _pipeline_state(uri: str, stamp: tuple[int, ...]) -> health.PipelineState | None:
    if not reads.store_exists(uri):
        return None  # opening a missing SQLite store would create an empty one
    return health.load_pipeline_state(_client(uri))


def stop_on_read_error(what: str, error: Exception) -> None:
    """A store or file that exists but cannot be read: say which and why, without a traceback."""
    st.error(f"Cannot read {what}: {str(error).splitlines()[0][:300]}")
    st.stop()


def pipeline_state(source: Source) -> health.PipelineState | None:
    try:
        return _pipeline_state(source.tracking_uri, source.stamp)
    except MlflowException as exc:  # unreachable tracking server, store from another MLflow version
        stop_on_read_error(f"the tracking store {source.tracking_uri}", exc)


def require_state(source: Source) -> health.PipelineState:
    state = pipeline_state(source)
    if state is None or not state.has_runs:
        show_empty_state(source, "no pipeline run was found")
    return state


@st.cache_data(show_spinner="Reading the trigger metrics…", ttl=STATE_TTL_SECONDS)
def _trigger_report(uri: str, stamp: tuple[int, ...]) -> triggers.TriggerReport | None:
    if not reads.store_exists(uri):
        return None
    return triggers.latest_trigger_report(_client(uri))


def trigger_report(source: Source) -> triggers.TriggerReport | None:
    try:
        return _trigger_report(source.tracking_uri, source.stamp)
    except MlflowException as exc:
        stop_on_read_error(f"the tracking store {source.tracking_uri}", exc)


@st.cache_data(show_spinner="Reading data/processed…")
def _processed(workspace: str, stamp: tuple[int, ...]) -> health.ProcessedData:
    return health.load_processed(config.workspace_paths(workspace))


def processed(source: Source) -> health.ProcessedData:
    try:
        return _processed(source.workspace, source.stamp)
    except DataContractError as exc:  # the message names the file
        stop_on_read_error("data/processed", exc)


@st.cache_resource(show_spinner="Loading the model…")
def load_model(model_uri: str, uri: str):
    """The pyfunc model; ``uri`` (the tracking store) is part of the key: every store has a version 1."""
    mlflow.set_tracking_uri(uri)
    return mlflow.pyfunc.load_model(model_uri)


@st.cache_data(show_spinner="Scoring base_test with the model…")
def _base_test_probability(model_uri: str, uri: str, workspace: str, stamp: tuple[int, ...]) -> np.ndarray:
    test = health.load_processed(config.workspace_paths(workspace)).test
    scored = load_model(model_uri, uri).predict(test[config.FEATURES])
    return scored[config.PROBABILITY_COLUMN].to_numpy()


def base_test_probability(source: Source, model_uri: str) -> np.ndarray:
    """The probability of a make on base_test from ``model_uri`` (the version production was scored with)."""
    return _base_test_probability(model_uri, source.tracking_uri, source.workspace, source.stamp)


@st.cache_data(show_spinner="Comparing development and production features…")
def _drift(workspace: str, stamp: tuple[int, ...]) -> tuple[pd.DataFrame, float]:
    data = health.load_processed(config.workspace_paths(workspace))
    table = compare_features(data.development, data.predictions)
    table["ks_verdict"] = table["ks_pvalue"].map(health.ks_verdict)
    separability = health.single_feature_separability(data.development, data.predictions)
    table["separability_auc"] = table["feature"].map(separability)
    auc = health.adversarial_validation_auc(data.development, data.predictions)
    return table, auc


def drift(source: Source) -> tuple[pd.DataFrame, float]:
    """Per-feature comparison (PSI, KS, single-feature AUC) and the adversarial-validation AUC."""
    return _drift(source.workspace, source.stamp)


TEST_LABEL = "test (base_test)"
PRODUCTION_LABEL = "production (labelled rows)"


def labelled_scores(source: Source, model_uri: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(outcome, probability)`` on base_test and on the labelled production rows."""
    data = processed(source)
    labelled = health.labelled_rows(data.predictions)
    return {
        TEST_LABEL: (data.test[config.TARGET].to_numpy(), base_test_probability(source, model_uri)),
        PRODUCTION_LABEL: (labelled[config.TARGET].to_numpy(), labelled[config.PROBABILITY_COLUMN].to_numpy()),
    }


@st.cache_data(show_spinner="Sweeping decision thresholds…")
def _threshold_sweeps(model_uri: str, uri: str, workspace: str, stamp: tuple[int, ...]) -> dict[str, pd.DataFrame]:
    scores = labelled_scores(Source(workspace, uri, stamp), model_uri)
    return {label: health.threshold_sweep(y_true, probability) for label, (y_true, probability) in scores.items()}


def threshold_sweeps(source: Source, model_uri: str) -> dict[str, pd.DataFrame]:
    """F1, precision and recall at every threshold of the grid (independent of the page's slider)."""
    return _threshold_sweeps(model_uri, source.tracking_uri, source.workspace, source.stamp)


@st.cache_data(show_spinner="Reading every application run…", ttl=STATE_TTL_SECONDS)
def _application_trends(uri: str, stamp: tuple[int, ...]) -> pd.DataFrame | None:
    if not reads.store_exists(uri):
        return None
    return trends.application_trends(_client(uri))


def application_trends(source: Source) -> pd.DataFrame | None:
    """The trigger figures of every finished application run, oldest first; None before the first."""
    try:
        return _application_trends(source.tracking_uri, source.stamp)
    except MlflowException as exc:
        stop_on_read_error(f"the tracking store {source.tracking_uri}", exc)


@st.cache_data(show_spinner="Reading the retraining decisions…", ttl=STATE_TTL_SECONDS)
def _retraining_history(uri: str, stamp: tuple[int, ...]) -> tuple[dict[str, str], pd.DataFrame] | None:
    if not reads.store_exists(uri):
        return None
    client = _client(uri)
    return reads.registry_aliases(client), reads.decision_history(client)


def retraining_history(source: Source) -> tuple[dict[str, str], pd.DataFrame] | None:
    """The registry's aliases and the retraining loop's decisions, newest first."""
    try:
        return _retraining_history(source.tracking_uri, source.stamp)
    except MlflowException as exc:
        stop_on_read_error(f"the tracking store {source.tracking_uri}", exc)


# --- The replay (views/08_Timeline.py) --------------------------------------------------------


@st.cache_data(show_spinner="Reading the replay…", ttl=STATE_TTL_SECONDS)
def _replay(uri: str, stamp: tuple[int, ...]):
    from kobe_mlops.monitoring import replay_timeline

    if not reads.store_exists(uri):
        return None
    return replay_timeline.load_replay(_client(uri))


def replay(source: Source):
    """The newest finished replay (``replay_timeline.ReplayView``), or None; the store's absence is
    told apart by :func:`reads.store_exists`."""
    try:
        return _replay(source.tracking_uri, source.stamp)
    except MlflowException as exc:
        stop_on_read_error(f"the tracking store {source.tracking_uri}", exc)


def replay_command(workspace: str | Path, fast: bool = False) -> str:
    """The command that replays production in ``workspace`` after a pipeline run."""
    return pipeline_command(workspace) + " --replay" + (" --fast" if fast else "")
