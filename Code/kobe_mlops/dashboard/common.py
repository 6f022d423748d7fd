"""Shared plumbing of the dashboard pages: where to read, cached reads, the empty state. Every cached read is
keyed by what it reads (workspace or tracking URI) and a *stamp* (the modification times of the files a pipeline
run rewrites): a new run refreshes the pages; two workspaces share nothing."""

from __future__ import annotations

import io
import itertools
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import streamlit as st
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.dashboard import verdict
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.modeling.support import support_from_json
from kobe_mlops.monitoring import health
from kobe_mlops.tracking import names, reads, tracking_uri

PAGES_DIR = Path(__file__).resolve().parent / "views"
STATE_TTL_SECONDS = 60  # a remote tracking server has no file to stamp: its reads refresh this often
FIGURE_DPI = 110  # sharp on a laptop screen; Streamlit's default of 200 doubles the rendering time


def page_files(pages_dir: Path = PAGES_DIR) -> list[Path]:
    """The pages, "NN_Title_words.py": NN orders them, the rest is the title Streamlit shows."""
    return sorted(pages_dir.glob("[0-9][0-9]_*.py"))


@dataclass(frozen=True)
class Source:
    """What the dashboard reads: a workspace, a tracking store, and their current stamp."""

    workspace: str
    tracking_uri: str
    stamp: tuple[int, ...]


def current_source() -> Source:
    paths = config.workspace_paths()
    watched = [paths.mlflow_db, paths.data_filtered, paths.base_train, paths.base_test]
    watched += [paths.predictions_prod, paths.rejected_prod]
    stamp = tuple(path.stat().st_mtime_ns if path.exists() else 0 for path in watched)
    return Source(str(paths.root), tracking_uri(), stamp)


def pipeline_command(workspace: str | Path, flags: str = "") -> str:
    """The command that fills ``workspace`` (with ``flags``), as a user types it from the project root."""
    command = [".venv/bin/python", "run_all.py"]
    if Path(workspace).resolve() != config.PROJECT_ROOT:
        command += ["--workspace", str(workspace)]
    return " ".join([shlex.join(command), flags]).strip()


def show_empty_state(source: Source, missing: str) -> None:
    """Say what is missing and which command produces it, then stop the page."""
    st.info(
        f"Nothing to show yet: {missing}. The dashboard reads workspace `{source.workspace}` and "
        f"tracking store `{source.tracking_uri}`; run the pipeline first (add "
        "`--data-source DIR` without internet access):"
    )
    st.code(pipeline_command(source.workspace), language="bash")
    st.stop()


def stop_on_read_error(what: str, error: Exception) -> None:
    """A store or file that exists but cannot be read: say which and why, without a traceback."""
    st.error(f"Cannot read {what}: {str(error).splitlines()[0][:300]}")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=64)
def _figure_png(name: str, _draw: Callable[..., plt.Figure], *args) -> bytes:
    figure = _draw(*args)  # keyed by ``name`` (the chart function) and the arguments
    image = io.BytesIO()
    # Laid out by the chart (one rendering, not two); the fastest PNG compression (10 % larger files).
    figure.savefig(image, format="png", dpi=FIGURE_DPI, pil_kwargs={"compress_level": 1})
    plt.close(figure)
    return image.getvalue()


def show_figure(draw: Callable[..., plt.Figure], *args, width: str | int = "stretch") -> None:
    """``draw(*args)`` as an image, drawn once per distinct arguments; ``width="content"`` keeps its size."""
    st.image(_figure_png(f"{draw.__module__}.{draw.__qualname__}", draw, *args), width=width)


# --- Cached reads of the tracking store ------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _client(uri: str) -> MlflowClient:
    return MlflowClient(uri)


@st.cache_data(show_spinner="Reading the MLflow store…", ttl=STATE_TTL_SECONDS, max_entries=256)
def _store_read(name: str, _read: Callable, uri: str, stamp: tuple[int, ...], args: tuple):
    if not reads.store_exists(uri):
        return None  # opening a missing SQLite store would create an empty one
    return _read(_client(uri), *args)  # keyed by ``name`` (the reader) and the arguments


def store_read(source: Source, read: Callable, *args):
    """``read(client, *args)`` on the source's store, cached until its stamp changes; None before the store
    exists; an unreachable server or a store from another MLflow version stops the page with its reason."""
    try:
        return _store_read(f"{read.__module__}.{read.__qualname__}", read, source.tracking_uri, source.stamp, args)
    except MlflowException as exc:
        stop_on_read_error(f"the tracking store {source.tracking_uri}", exc)


def require_state(source: Source) -> health.PipelineState:
    state = store_read(source, health.load_pipeline_state)
    if state is None or not state.has_runs:
        show_empty_state(source, "no pipeline run was found")
    return state


def run_summary(client: MlflowClient, run_id: str) -> health.RunSummary:
    """A reader for :func:`store_read`: one run by its id."""
    return health.RunSummary.from_run(client.get_run(run_id))


def _run_table(client: MlflowClient, run_id: str, artifact: str) -> pd.DataFrame | None:
    read = pd.read_parquet if artifact.endswith(".parquet") else partial(pd.read_json, orient="split")
    return reads.run_artifact(client, run_id, artifact, read)


def run_table(source: Source, run: health.RunSummary, artifact: str) -> pd.DataFrame | None:
    """A table ``run`` logged (``mlflow.log_table`` JSON or parquet); None when it did not log it."""
    return store_read(source, _run_table, run.run_id, artifact)


CURVE_ROWS = 200_000  # rows rebuilt from logged counts, at most: a page's memory does not grow with the file


def _at_most(weights: np.ndarray, rows: int = CURVE_ROWS) -> np.ndarray:
    """``weights`` scaled down to about ``rows`` in all (the same shares) when they hold more."""
    total = int(weights.sum())
    return weights if total <= rows else np.rint(weights * (rows / total)).astype("int64")


def graded_scores(source: Source, run: health.RunSummary) -> tuple[np.ndarray, np.ndarray] | None:
    """``(outcome, probability)`` of the rows ``run`` graded, from its logged counts per probability."""
    counts = run_table(source, run, names.GRADED_SCORE_COUNTS_ARTIFACT)
    if counts is None:
        return None
    weights = _at_most(counts[["misses", "makes"]].to_numpy(dtype="int64").ravel())
    outcome = np.repeat(np.tile([0, 1], len(counts)), weights)
    return outcome, np.repeat(np.repeat(counts["probability"].to_numpy(dtype=float), 2), weights)


def production_scores(source: Source, run: health.RunSummary) -> np.ndarray | None:
    """The probability of every row ``run`` scored, from its logged counts per probability."""
    counts = run_table(source, run, names.SCORE_COUNTS_ARTIFACT)
    if counts is None:
        return None
    return np.repeat(counts["probability"].to_numpy(dtype=float), _at_most(counts["rows"].to_numpy(dtype="int64")))


def training_artifacts(client: MlflowClient, name: str, version: str) -> tuple:
    """A reader for :func:`store_read`: what a model version's training logged (None when absent): outcome and
    probability on the rows held out of it, and its ``FeatureSupport`` (the band of rows it learned from)."""
    model_version = client.get_model_version(name, version)
    support = reads.feature_support_text(client, model_version)
    return reads.reference_scores(client, model_version), support_from_json(support) if support else None


def held_out_label(model: health.ModelInfo) -> str:
    return f"rows held out of version {model.version}'s training"


@st.cache_data(show_spinner=False)
def threshold_sweeps(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, pd.DataFrame]:
    """F1, precision and recall at every threshold, per set of ``(outcome, probability)``."""
    return {label: health.threshold_sweep(y_true, probability) for label, (y_true, probability) in curves.items()}


@st.cache_resource(show_spinner="Loading the model…")
def load_model(model_uri: str, uri: str):
    """The pyfunc model; ``uri`` (the tracking store) is part of the key: every store has a version 1."""
    mlflow.set_tracking_uri(uri)
    with reads.no_progress_bars():
        return mlflow.pyfunc.load_model(model_uri)


# --- Files of the workspace ------------------------------------------------------------------


@st.cache_data(show_spinner="Reading the development base…")
def _development(workspace: str, stamp: tuple[int, ...]) -> pd.DataFrame | None:
    return health.read_optional(config.workspace_paths(workspace).data_filtered)


def development(source: Source) -> pd.DataFrame | None:
    """Every labelled development shot (data_filtered), None before the preparation step."""
    try:
        return _development(source.workspace, source.stamp)
    except DataContractError as exc:  # the message names the file
        stop_on_read_error("data/processed", exc)


@st.cache_data(show_spinner="Sampling the scored production rows…")
def _production_sample(workspace: str, stamp: tuple[int, ...], columns: tuple[str, ...], rows: int) -> pd.DataFrame:
    path = config.workspace_paths(workspace).predictions_prod
    if not path.exists():
        return pd.DataFrame(columns=list(columns))
    dataset = ds.dataset(path, format="parquet")
    total = dataset.count_rows()
    # Evenly spaced rows: every season of the file, in memory bounded by ``rows`` whatever its size.
    picked = np.unique(np.linspace(0, total - 1, min(rows, total)).astype("int64")) if total else []
    return dataset.take(pa.array(picked, type=pa.int64()), columns=list(columns)).to_pandas()


def production_sample(source: Source, columns: list[str], rows: int) -> pd.DataFrame:
    """At most ``rows`` scored production rows spread over the file (for pictures, never figures)."""
    try:
        return _production_sample(source.workspace, source.stamp, tuple(columns), rows)
    except (OSError, pa.ArrowException) as exc:
        stop_on_read_error(str(config.workspace_paths(source.workspace).predictions_prod), exc)


# --- What the pages share ---------------------------------------------------------------------


def require_application(source: Source) -> tuple[health.PipelineState, health.RunSummary]:
    """The pipeline state and its latest application run, or the empty state (with the command) when there is none."""
    state = require_state(source)
    if state.application is None or state.scored_model is None:
        show_empty_state(source, "no application run (PipelineAplicacao) with a registered model was found")
    if not state.application.metrics.get(names.ROWS_SCORED):
        st.info(
            "The latest application run scored no row (an empty production file or every row rejected by the "
            "data contract): there is nothing to measure. Score a production file with rows:"
        )
        st.code(pipeline_command(source.workspace, "--steps 04 --prod-data FILE.parquet"), language="bash")
        st.stop()
    return state, state.application


def show_verdict(state: health.PipelineState) -> None:
    """The verdict on the latest application run, in its coloured box."""
    result = verdict.production_verdict(state.application.metrics)
    getattr(st, result.level)(result.text)


def metric_delta(change: float | None, text: str) -> str | None:
    """``st.metric``'s delta: ``text`` with ``change`` formatted in; None (no arrow) when unknown or under 5e-4."""
    return None if change is None or np.isnan(change) or abs(change) < 5e-4 else text.format(change)


def sentence_case(label: str) -> str:
    """``"PSI of …"`` stays ``"PSI of …"`` (``str.capitalize`` would write ``"Psi of …"``)."""
    return label[:1].upper() + label[1:]


def gate_candidates(run: health.RunSummary) -> dict[str, float]:
    """Candidate -> holdout log loss of a promotion-gate run, best first."""
    prefix = names.HOLDOUT_LOG_LOSS_PREFIX
    figures = {key[len(prefix) :]: value for key, value in run.metrics.items() if key.startswith(prefix)}
    return dict(sorted(figures.items(), key=lambda item: item[1]))


# --- The replay (views/08_Timeline.py) --------------------------------------------------------


def numbered_batches(timeline: pd.DataFrame) -> pd.DataFrame:
    """The replay's timeline as pages show it: batches numbered from 1 (``batch_number``) as the replay
    prints them, "trained through" empty for the development champion, counts as integers."""
    shown = timeline.rename(columns={"batch_index": "batch_number"})
    trained = shown["trained_through_batch"].astype("Int64")
    shown["trained_through_batch"] = trained.mask(trained < 1)
    return shown.astype({column: "Int64" for column in shown if column.startswith("rows_")})


def first_alert_text(timeline: pd.DataFrame) -> str:
    """The first batch on which a trigger fired under the first strategy (the model nobody retrains)."""
    first = timeline[timeline["strategy"] == timeline["strategy"].iloc[0]]
    fired = first[first["fired"]].sort_values("batch_number")
    if fired.empty:
        return "no trigger fired on any batch"
    row = fired.iloc[0]
    return f"batch {row['batch_number']} ({row['batch']}): {row['fired_triggers']}"


def coinciding_strategies(timeline: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of strategies whose every batch got the same log loss, retrains and promotions."""
    paths = {
        strategy: rows.sort_values("batch_number")[["log_loss", "retrained", "promoted"]].reset_index(drop=True)
        for strategy, rows in timeline.groupby("strategy", sort=False)
    }
    return [(first, second) for first, second in itertools.combinations(paths, 2) if paths[first].equals(paths[second])]
