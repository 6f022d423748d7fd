"""The ``PipelineAplicacao`` step as named functions notebook 04 calls: score, log, then publish.

:func:`run_application_step` resolves the model alias once, streams the file through the engine
into staging (every figure folded by :class:`~kobe_mlops.monitoring.streaming_figures.ApplicationFigures`),
logs the run, and only then publishes outputs and labels: a failure leaves the previous state.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import tempfile
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import mlflow.data
import mlflow.pyfunc
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.deployment import outputs as staging
from kobe_mlops.deployment.application import BATCH_ROWS, AppliedFile, ProductionFile, Stamp
from kobe_mlops.deployment.engines import apply_with_engine
from kobe_mlops.deployment.outputs import OutputPaths
from kobe_mlops.monitoring import labels
from kobe_mlops.monitoring.calculators import ESTIMATE_ALL, ESTIMATE_GRADED, monitoring_tags, table_metrics
from kobe_mlops.monitoring.scoring_model import ScoringModel, load_scoring_model, pinned_uri, registered_version
from kobe_mlops.monitoring.streaming_figures import ApplicationFigures
from kobe_mlops.tracking import configure, names, start_run

CHUNK = "production file"  # the file is one chunk of the monitoring calculators
SAMPLE_ROWS = 10_000  # rows of each output logged as an artifact; the whole outputs stay in the workspace

NO_LABELS_REASON = "none: no scored row has a shot_made_flag"
ALL_SEEN_REASON = "none: every labelled row was learned by the scoring model (in-sample rows are never graded)"


def application_figures(scoring: ScoringModel) -> ApplicationFigures:
    """The batch observer that folds every figure of the run (hand it to the scoring engine)."""
    return ApplicationFigures(scoring.monitor, scoring.null_rate, scoring.learned_shot_ids)


def drift_table(table: pd.DataFrame) -> pd.DataFrame:
    """The drift rows of the calculators' table, one per feature (PSI, its no-drift threshold, alert)."""
    drift = table[table["metric"].str.startswith(names.PSI_PREFIX)]
    return drift.assign(feature=drift["metric"].str[len(names.PSI_PREFIX) :]).reset_index(drop=True)


def drift_figure(drift: pd.DataFrame):
    """PSI per feature beside a no-drift file's threshold (a sentence when no threshold was set)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3))
    if drift.empty:
        axis.axis("off")
        axis.text(0.5, 0.5, "No drift figure: the model's reference is too small (see the run's tags).", ha="center")
        return figure
    drift.plot.barh(x="feature", y=["value", "upper"], color=["tab:blue", "lightgrey"], ax=axis)
    axis.set(title="PSI against the model's reference and a no-drift file's threshold", xlabel="PSI", ylabel="")
    axis.legend(["this file", "threshold"])
    return figure


def streamed_metrics(applied: AppliedFile) -> dict[str, float]:
    """Every metric of a ``PipelineAplicacao`` run, from the figures the engine folded."""
    observer = applied.observer(ApplicationFigures)
    figures = observer.result(CHUNK)
    labelled = figures["labelled"]
    metrics = {
        **applied.counts,
        names.ROWS_SEEN_IN_TRAINING: figures["rows_seen_in_training"],
        names.ROWS_EVALUATED: labelled.get("rows", 0),
        names.PREDICTED_MAKE_RATE: figures["scores"]["predicted_make_rate"],
        names.MEAN_PROBABILITY: figures["scores"]["mean_probability"],
        names.NULL_RATE: observer.monitor.null_rate,
        **table_metrics(figures["table"]),
    }
    if labelled:
        metrics.update({names.prod_metric(name): value for name, value in labelled["metrics"].items()})
        metrics.update({names.baseline_prod_metric(name): value for name, value in labelled["baseline"].items()})
        # After the fact only: a constant at this file's own make rate, which nobody knew beforehand.
        metrics[names.PROD_NULL_LOG_LOSS] = labelled["null_log_loss"]
        metrics[names.LABELLED_MEAN_PROBABILITY] = labelled["mean_probability"]
    return metrics


def measurable(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that have a value (a figure on no rows is NaN: not logged)."""
    return {name: value for name, value in metrics.items() if value is not None and math.isfinite(value)}


def stage_labels(predictions: Path, writer: labels.LabelStoreWriter) -> None:
    """Stream the labelled rows of a predictions output (a file or a folder of parts) into ``writer``."""
    dataset = ds.dataset(predictions, format="parquet")
    if config.TARGET not in dataset.schema.names or "shot_id" not in dataset.schema.names:
        return
    columns = [name for name in labels.SCORED_COLUMNS if name in dataset.schema.names]
    with writer:
        for batch in dataset.to_batches(
            columns=columns,
            filter=pc.field(config.TARGET).is_valid(),
            batch_size=BATCH_ROWS,
            batch_readahead=1,
            fragment_readahead=1,
        ):
            writer.update(batch)


def log_outputs(staged: OutputPaths, published: OutputPaths) -> None:
    """The first :data:`SAMPLE_ROWS` rows of each output as artifacts (``data/<name>``), each whole
    output (its published path) as a dataset input of the run."""
    with tempfile.TemporaryDirectory(prefix="kobe-sample-") as folder:
        for path, target in zip(staged, published, strict=True):
            # One batch read at a time (head's default reads ahead 16 batches of 4 files).
            sample = ds.dataset(path, format="parquet").head(SAMPLE_ROWS, batch_readahead=1, fragment_readahead=1)
            local = Path(folder) / target.name
            pq.write_table(sample, local)
            mlflow.log_artifact(str(local), artifact_path="data")
            with warnings.catch_warnings():  # a local path matches MLflow's local source twice
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(sample.to_pandas(), source=str(target), name=target.stem)
            mlflow.log_input(dataset, context=target.stem)


def log_application_run(
    applied: AppliedFile,
    table: pd.DataFrame,
    *,
    prod_path: str,
    model_uri: str,
    version: dict[str, str],
    engine: str,
    scoring_url: str,
    label_writer: labels.LabelStoreWriter,
    published: OutputPaths,
) -> dict[str, float]:
    """Log the active ``PipelineAplicacao`` run; the metrics. ``applied``: the engine's result (staged
    outputs, folded figures); ``table``: its calculators' table; ``version``: the version that scored."""
    mlflow.log_params(
        {
            names.PROD_DATA: prod_path,
            "model_uri": model_uri,
            names.ENGINE: engine,
            "scoring_url": scoring_url,
            **version,
        }
    )
    metrics = streamed_metrics(applied)
    metrics[names.LABELS_APPENDED] = label_writer.rows_appended
    metrics[names.LABEL_CONFLICTS] = label_writer.conflicts
    metrics = measurable(metrics)
    mlflow.log_metrics(metrics)
    figures = applied.observer(ApplicationFigures)
    mlflow.set_tags(monitoring_tags(table, figures.monitor.monitor))
    if names.LOG_LOSS not in metrics:
        reason = ALL_SEEN_REASON if metrics.get(names.ROWS_SEEN_IN_TRAINING) else NO_LABELS_REASON
        mlflow.set_tag(names.LABELLED_METRICS_TAG, reason)
    mlflow.log_table(table, artifact_file=names.MONITORING_TABLE_ARTIFACT)
    mlflow.log_table(drift_table(table), artifact_file=names.DRIFT_TABLE_ARTIFACT)
    for artifact, page_table in figures.page_tables().items():
        mlflow.log_table(page_table, artifact_file=artifact)
    log_outputs(applied.outputs, published)
    return metrics


class ApplicationStepError(RuntimeError):
    """The step failed; the message says where, and that nothing was published."""


@contextlib.contextmanager
def step_lock(paths: config.WorkspacePaths) -> Iterator[None]:
    """One application step at a time per workspace (so cleaning staging never hits a live run's files)."""
    paths.processed_dir.mkdir(parents=True, exist_ok=True)
    lock = paths.processed_dir / ".aplicacao.lock"
    with open(lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ApplicationStepError(
                f"{lock}: another application step is running in this workspace; nothing was changed."
            ) from None
        yield  # released when the file closes, and by the kernel if the process dies


def run_application_step(
    prod_path: str,
    model_uri: str = config.CHAMPION_URI,
    engine: str = "pandas",
    spark_master: str = config.DEFAULT_SPARK_MASTER,
    scoring_url: str = "",
    spark_conf: dict[str, str] | None = None,
    *,
    paths: config.WorkspacePaths,
) -> tuple[AppliedFile, pd.DataFrame, dict[str, float]]:
    """Score ``prod_path``, log the ``PipelineAplicacao`` run, then publish outputs and labels;
    ``(engine result, drift table, logged metrics)``. On any failure nothing is published, the run is
    FAILED with a ``kobe.failure`` tag and the error says in one line what failed."""
    outputs = OutputPaths.of_workspace(paths)
    configure()
    with step_lock(paths):
        staging.clean_staging(outputs)  # what a killed run left behind
        labels.clean_staging(paths)
        version = registered_version(model_uri)  # resolved once: a promotion now changes nothing here
        scoring_uri = pinned_uri(version)
        if "://" not in str(prod_path):
            ProductionFile(prod_path)  # an unusable file is refused before a run exists
        # Loaded once for the pandas engine: the reference and the engine score with it.
        model = mlflow.pyfunc.load_model(scoring_uri) if engine == "pandas" and not scoring_url else None
        scoring = load_scoring_model(scoring_uri, prod_path, paths=paths, model=model)
        outputs.prepare()
        staged = outputs.staging()
        writer = None
        stage = "scoring"
        try:
            with start_run("aplicacao", model_uri=model_uri) as run:
                try:
                    run_id = run.info.run_id
                    writer = labels.LabelStoreWriter(run_id, prod_path, paths)
                    # The pandas engine hands each scored batch to the label writer as it writes it.
                    sink = writer.update if engine == "pandas" else None
                    applied = apply_with_engine(
                        prod_path,
                        scoring_uri,
                        engine,
                        spark_master,
                        scoring_url,
                        spark_conf=spark_conf,
                        outputs=staged,
                        observers=[application_figures(scoring)],
                        stamp=Stamp(version.get(names.MODEL_VERSION, ""), datetime.now(UTC), run_id),
                        sink=sink,
                        model=model,
                    )
                    table = applied.observer(ApplicationFigures).result(CHUNK)["table"]
                    drift = drift_table(table)
                    stage = "writing the label store"
                    if sink is None:
                        stage_labels(staged.predictions, writer)
                    writer.close()
                    stage = "logging the MLflow run"
                    logged = log_application_run(
                        applied,
                        table,
                        prod_path=prod_path,
                        model_uri=model_uri,
                        version=version,
                        engine=engine,
                        scoring_url=scoring_url,
                        label_writer=writer,
                        published=outputs,
                    )
                    stage = "publishing the outputs"
                    staging.publish(staged, outputs)
                    writer.publish()
                except BaseException as exc:
                    with contextlib.suppress(Exception):  # the store itself may be what failed (a full disk)
                        mlflow.set_tag(names.FAILURE_TAG, f"{stage}: {type(exc).__name__}: {exc}"[:5000])
                    raise
        except (DataContractError, labels.LabelStoreError, ApplicationStepError):
            raise
        except Exception as exc:
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise ApplicationStepError(
                f"{prod_path}: failed while {stage} ({type(exc).__name__}: {detail}); the previous outputs, "
                "label store and logged figures are unchanged."
            ) from exc
        finally:
            staging.discard(staged)  # what was published is no longer there
            if writer is not None:
                writer.abort()
    applied.outputs = outputs
    return applied, drift, logged


def application_summary(metrics: dict[str, float], source: str) -> str:
    """What the step prints: rows, what was graded on which rows, the estimate beside it."""
    lines = [
        f"{source}: {metrics[names.ROWS_INPUT]:.0f} rows in, {metrics[names.ROWS_SCORED]:.0f} scored, "
        f"{metrics[names.ROWS_REJECTED]:.0f} rejected, {metrics[names.ROWS_LABELLED]:.0f} labelled.",
        labels.append_summary(int(metrics.get(names.LABELS_APPENDED, 0)), source),
    ]
    if metrics.get(names.LABEL_CONFLICTS):
        lines.append(
            f"{metrics[names.LABEL_CONFLICTS]:.0f} labelled rows contradict the label the store already holds for "
            "their shot; the known label is kept."
        )
    for name, rows in ((ESTIMATE_ALL, "every scored row"), (ESTIMATE_GRADED, "the graded rows")):
        if name in metrics:
            lines.append(
                f"Estimated log loss {metrics[name]:.4f} on {rows} (95 % interval "
                f"{metrics[name + '_lower']:.4f} to {metrics[name + '_upper']:.4f})."
            )
    if ESTIMATE_ALL not in metrics:
        lines.append("No label-free estimate: no row was scored, or the model's reference is too small.")
    seen, evaluated = metrics.get(names.ROWS_SEEN_IN_TRAINING, 0), metrics.get(names.ROWS_EVALUATED, 0)
    if names.LOG_LOSS in metrics:
        lines.append(
            f"Realized log loss {metrics[names.LOG_LOSS]:.4f} on {evaluated:.0f} labelled rows the model never "
            f"learned ({seen:.0f} rows it was trained on are left out); the null model known before this file "
            f"(a constant {metrics[names.NULL_RATE]:.4f}) scores {metrics[names.NULL_LOG_LOSS]:.4f}."
        )
    elif seen:
        lines.append(f"No labelled metric: all {seen:.0f} labelled rows were learned by the scoring model.")
    else:
        lines.append("No labelled metric: no scored row has a shot_made_flag.")
    return "\n".join(lines)
