"""The ``PipelineAplicacao`` step as named functions notebook 04 calls: score, log, then publish.

:func:`run_application_step` is the whole step. It resolves the model alias once (the version
that scores is the version logged), streams the production file through the scoring engine
into staged outputs, stages the labelled rows for the label store, logs the run, and only then
publishes both (outputs moved in, label file made visible): a failure at any point leaves the
previous outputs, label store and logged figures as they were. Every figure is folded batch by
batch by :class:`~kobe_mlops.monitoring.streaming_figures.ApplicationFigures`; the run's
artifacts are its tables and the first :data:`SAMPLE_ROWS` rows of each output, with the full
outputs referenced as the run's dataset inputs, so the artifact store does not grow with the file.

:func:`labelled_metrics` and :func:`application_metrics` compute the same figures from a frame
already in memory (:class:`~kobe_mlops.deployment.application.ApplicationResult`, e.g. one batch
of the replay). Labelled metrics use only rows the scoring model did not learn; a figure that
cannot be measured (no scored row, no label) is not logged.
"""

from __future__ import annotations

import fcntl
import math
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import mlflow.data
import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.data_acquisition.prepare import class_ratio
from kobe_mlops.deployment import outputs as staging
from kobe_mlops.deployment.application import BATCH_ROWS, ApplicationResult, AppliedFile, ProductionFile, Stamp
from kobe_mlops.deployment.engines import apply_with_engine
from kobe_mlops.deployment.outputs import OutputPaths
from kobe_mlops.modeling.metrics import baseline_metrics, evaluate_probabilities
from kobe_mlops.monitoring import estimation, labels
from kobe_mlops.monitoring.scoring_model import (
    ScoringModel,
    load_scoring_model,
    pinned_uri,
    registered_version,
    split_seen_rows,
)
from kobe_mlops.monitoring.streaming_figures import ApplicationFigures
from kobe_mlops.tracking import configure, names, start_run

SAMPLE_ROWS = 10_000  # rows of each output logged as an artifact; the whole outputs stay in the workspace
LABEL_COLUMNS = ["shot_id", "game_date", *config.FEATURES, config.TARGET]

NO_LABELS_REASON = "none: no scored row has a shot_made_flag"
ALL_SEEN_REASON = "none: every labelled row was learned by the scoring model (in-sample rows are never graded)"


def labelled_metrics(labelled: pd.DataFrame, development: pd.DataFrame) -> dict[str, float]:
    """Metrics of labelled rows (the ones to grade); empty when there are none."""
    if labelled.empty:
        return {}
    metrics = evaluate_probabilities(labelled[config.TARGET], labelled[config.PROBABILITY_COLUMN])
    observed_rate = float(labelled[config.TARGET].mean())
    return {
        # Observed make rate and mean probability on the same labelled rows: the calibration check
        # behind the make-rate retraining trigger.
        names.OBSERVED_MAKE_RATE: observed_rate,
        names.LABELLED_MEAN_PROBABILITY: float(labelled[config.PROBABILITY_COLUMN].mean()),
        # The null model: a constant at these rows' own make rate. A model that cannot beat it
        # adds nothing to knowing the rate (log-loss trigger).
        names.PROD_NULL_LOG_LOSS: baseline_metrics(labelled[config.TARGET], observed_rate)["log_loss"],
        names.LOG_LOSS: metrics["log_loss"],
        names.F1_SCORE: metrics["f1"],
        **{names.prod_metric(name): value for name, value in metrics.items()},
        **{
            names.baseline_prod_metric(name): value
            for name, value in baseline_metrics(labelled[config.TARGET], class_ratio(development)).items()
        },
    }


def application_metrics(
    result: ApplicationResult, development: pd.DataFrame, drift: pd.DataFrame, scoring: ScoringModel
) -> tuple[dict[str, float], estimation.Applicability]:
    """Every metric of a ``PipelineAplicacao`` run and the estimate's applicability.

    Row accounting, labelled metrics on the rows the scoring model did not learn, the label-free
    estimate on every scored row (and its error on the graded rows), scores, PSI.
    """
    predictions = result.predictions
    evaluated, seen = split_seen_rows(result.labelled, scoring.learned_shot_ids)
    estimate = estimation.estimate(scoring.estimator, predictions)
    metrics = {
        **result.counts,
        names.ROWS_SEEN_IN_TRAINING: seen,
        names.ROWS_EVALUATED: len(evaluated),
        **labelled_metrics(evaluated, development),
        **estimate.metrics(),
        names.PREDICTED_MAKE_RATE: float(predictions[config.PREDICTION_COLUMN].mean()),
        names.MEAN_PROBABILITY: float(predictions[config.PROBABILITY_COLUMN].mean()),
        **{names.psi_metric(row.feature): row.psi for row in drift.itertuples()},
    }
    if names.PROD_LOG_LOSS in metrics:
        graded = estimation.estimate(scoring.estimator, evaluated).estimated_log_loss
        metrics[names.ESTIMATION_ERROR_LOG_LOSS] = graded - metrics[names.PROD_LOG_LOSS]
    return metrics, estimate.applicability


def application_figures(development: pd.DataFrame, scoring: ScoringModel | None = None) -> ApplicationFigures:
    """The batch observer that folds every figure of the run (hand it to the scoring engine)."""
    if scoring is None:
        return ApplicationFigures(development)
    return ApplicationFigures(development, scoring.learned_shot_ids, scoring.estimator)


def drift_table(applied: AppliedFile) -> pd.DataFrame:
    """Development vs production per feature (``compare_features``' table), from the folded counts."""
    return applied.observer(ApplicationFigures).drift.result()


def feature_distribution(applied: AppliedFile, feature: str, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows per value of ``feature`` in development and production (columns ``base``, the feature,
    ``rows``), from the folded counts: what a histogram needs, weighted by ``rows``."""
    frame = applied.observer(ApplicationFigures).drift.distribution(feature)
    return frame.assign(base=frame["base"].map(labels)) if labels else frame


def _labelled_names(labelled: dict) -> dict[str, float]:
    """The folded labelled figures under the names :func:`labelled_metrics` logs."""
    if not labelled:
        return {}
    metrics = labelled["metrics"]
    return {
        names.OBSERVED_MAKE_RATE: labelled["observed_make_rate"],
        names.LABELLED_MEAN_PROBABILITY: labelled["mean_probability"],
        names.PROD_NULL_LOG_LOSS: labelled["null_log_loss"],
        names.LOG_LOSS: metrics["log_loss"],
        names.F1_SCORE: metrics["f1"],
        **{names.prod_metric(name): value for name, value in metrics.items()},
        **{names.baseline_prod_metric(name): value for name, value in labelled["baseline"].items()},
    }


def streamed_metrics(
    applied: AppliedFile, drift: pd.DataFrame | None = None
) -> tuple[dict[str, float], estimation.Applicability | None]:
    """Every metric of a streamed ``PipelineAplicacao`` run and the estimate's applicability.

    The same metrics as :func:`application_metrics`, from the figures the engine folded
    (``drift``: :func:`drift_table`'s, when the caller already has it).
    """
    observer = applied.observer(ApplicationFigures)
    figures = observer.result() if drift is None else {**observer.result(), "drift": drift}
    labelled = figures["labelled"]
    metrics = {
        **applied.counts,
        names.ROWS_SEEN_IN_TRAINING: figures["rows_seen_in_training"],
        names.ROWS_EVALUATED: labelled.get("rows", 0),
        **_labelled_names(labelled),
        names.PREDICTED_MAKE_RATE: figures["scores"]["predicted_make_rate"],
        names.MEAN_PROBABILITY: figures["scores"]["mean_probability"],
        **{names.psi_metric(row.feature): row.psi for row in figures["drift"].itertuples() if pd.notna(row.psi)},
    }
    applicability = None
    if figures["estimate"] is not None:
        (sums, graded), estimator = figures["estimate"], observer.estimate.estimator
        applicability = estimator.applicability(sums)
        estimate = estimation.Estimate(
            sums.estimated_log_loss, sums.estimated_f1, sums.share_outside_support, applicability, sums.rows
        )
        metrics.update(estimate.metrics())
        if names.PROD_LOG_LOSS in metrics:
            metrics[names.ESTIMATION_ERROR_LOG_LOSS] = graded.estimated_log_loss - metrics[names.PROD_LOG_LOSS]
    return metrics, applicability


def measurable(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics that have a value (a figure on no rows is NaN: it is not logged)."""
    return {name: value for name, value in metrics.items() if value is not None and math.isfinite(value)}


def stage_labels(predictions: Path, writer: labels.LabelStoreWriter) -> None:
    """Stream the labelled rows of a predictions output (a file or a folder of parts) into
    ``writer``, one batch at a time and only the store's columns (bounded memory)."""
    dataset = ds.dataset(predictions, format="parquet")
    if config.TARGET not in dataset.schema.names or "shot_id" not in dataset.schema.names:
        return
    columns = [name for name in LABEL_COLUMNS if name in dataset.schema.names]
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
    """The first :data:`SAMPLE_ROWS` rows of each output as artifacts (``data/<name>``), and each
    whole output, at its published path, as a dataset input of the run (MLflow dataset tracking)."""
    with tempfile.TemporaryDirectory(prefix="kobe-sample-") as folder:
        for path, target in zip(staged, published, strict=True):
            sample = ds.dataset(path, format="parquet").head(SAMPLE_ROWS)
            local = Path(folder) / target.name
            pq.write_table(sample, local)
            mlflow.log_artifact(str(local), artifact_path="data")
            with warnings.catch_warnings():  # a local path matches MLflow's local source twice
                warnings.simplefilter("ignore", UserWarning)
                dataset = mlflow.data.from_pandas(sample.to_pandas(), source=str(target), name=target.stem)
            mlflow.log_input(dataset, context=target.stem)


def log_application_run(
    applied: AppliedFile,
    *,
    prod_path: str,
    model_uri: str,
    version: dict[str, str],
    engine: str,
    scoring_url: str,
    drift: pd.DataFrame | None = None,
    label_writer: labels.LabelStoreWriter | None = None,
    published: OutputPaths | None = None,
) -> dict[str, float]:
    """Log the active ``PipelineAplicacao`` run; return the metrics.

    ``applied`` is the engine's result, with its (staged) outputs and the
    :class:`ApplicationFigures` it folded; ``version`` the registered version that scored
    (:func:`~kobe_mlops.monitoring.scoring_model.registered_version`, resolved before scoring);
    ``label_writer`` the staged label file's writer; ``published`` where the outputs will be.
    """
    mlflow.log_params(
        {"prod_data": prod_path, "model_uri": model_uri, "engine": engine, "scoring_url": scoring_url, **version}
    )
    drift = drift if drift is not None else drift_table(applied)
    metrics, applicability = streamed_metrics(applied, drift)
    if label_writer is not None:
        metrics[names.LABELS_APPENDED] = label_writer.rows_appended
        metrics[names.LABEL_CONFLICTS] = label_writer.conflicts
    metrics = measurable(metrics)
    mlflow.log_metrics(metrics)
    if applicability is not None:
        mlflow.set_tags(
            {names.ESTIMATE_APPLICABILITY_TAG: applicability.verdict, names.ESTIMATE_REASON_TAG: applicability.reason}
        )
    if names.PROD_LOG_LOSS not in metrics:
        reason = ALL_SEEN_REASON if metrics.get(names.ROWS_SEEN_IN_TRAINING) else NO_LABELS_REASON
        mlflow.set_tag(names.LABELLED_METRICS_TAG, reason)
    mlflow.log_table(drift, artifact_file=names.DRIFT_TABLE_ARTIFACT)
    log_outputs(applied.outputs, published or applied.outputs)
    return metrics


class ApplicationStepError(RuntimeError):
    """The step failed; the message says where, and that nothing was published."""


@contextmanager
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


def clean_staging(paths: config.WorkspacePaths) -> list[Path]:
    """Remove staged outputs and labels a killed run left behind; the paths removed."""
    return staging.clean_staging(OutputPaths.of_workspace(paths)) + labels.clean_staging(paths)


def _best_effort_tag(key: str, value: str) -> None:
    try:
        mlflow.set_tag(key, value[:5000])
    except Exception:  # the store itself may be what failed (a full disk)
        pass


def run_application_step(
    prod_path: str,
    model_uri: str = config.CHAMPION_URI,
    engine: str = "pandas",
    spark_master: str = config.DEFAULT_SPARK_MASTER,
    scoring_url: str = "",
    spark_conf: dict[str, str] | None = None,
    paths: config.WorkspacePaths | None = None,
) -> tuple[AppliedFile, pd.DataFrame, dict[str, float]]:
    """Score ``prod_path`` with ``model_uri``, log the ``PipelineAplicacao`` run, then publish its
    outputs and labels; ``(engine result, drift table, logged metrics)``.

    Nothing is published unless the run was logged: on any failure the staged outputs and label
    file are removed, the run (if one started) is FAILED with a ``kobe.failure`` tag, and the error
    says in one line what failed. Staging left by a killed run is removed first.
    """
    paths = paths or config.workspace_paths()
    outputs = OutputPaths.of_workspace(paths)
    configure()
    with step_lock(paths):
        clean_staging(paths)
        version = registered_version(model_uri)  # resolved once: a promotion now changes nothing here
        scoring_uri = pinned_uri(model_uri, version)
        if "://" not in str(prod_path):
            ProductionFile(prod_path)  # an unusable file is refused before a run exists
        development = pd.read_parquet(paths.data_filtered)
        scoring = load_scoring_model(scoring_uri, paths=paths)
        figures = application_figures(development, scoring)
        outputs.prepare()
        staged = outputs.staging()
        writer = None
        stage = "scoring"
        try:
            with start_run("aplicacao", model_uri=model_uri) as run:
                try:
                    run_id = run.info.run_id
                    stamp = Stamp(version.get("model_version", ""), datetime.now(UTC), run_id)
                    applied = apply_with_engine(
                        prod_path,
                        scoring_uri,
                        engine,
                        spark_master,
                        scoring_url,
                        spark_conf=spark_conf,
                        outputs=staged,
                        observers=[figures],
                        stamp=stamp,
                    )
                    drift = drift_table(applied)
                    stage = "writing the label store"
                    writer = labels.LabelStoreWriter(run_id, prod_path, paths)
                    stage_labels(staged.predictions, writer)
                    stage = "logging the MLflow run"
                    logged = log_application_run(
                        applied,
                        prod_path=prod_path,
                        model_uri=model_uri,
                        version=version,
                        engine=engine,
                        scoring_url=scoring_url,
                        drift=drift,
                        label_writer=writer,
                        published=outputs,
                    )
                    stage = "publishing the outputs"
                    staging.publish(staged, outputs)
                    writer.publish()
                except BaseException as exc:
                    _best_effort_tag(names.FAILURE_TAG, f"{stage}: {type(exc).__name__}: {exc}")
                    raise
        except (DataContractError, labels.LabelStoreError, ApplicationStepError, KeyboardInterrupt):
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
    """What the step prints: rows, what was graded and on which rows, the estimate beside it."""
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
    if names.ESTIMATED_LOG_LOSS in metrics:
        lines.append(
            f"Estimated log loss {metrics[names.ESTIMATED_LOG_LOSS]:.4f}, estimated F1 "
            f"{metrics[names.ESTIMATED_F1]:.4f} ({metrics[names.SHARE_OUTSIDE_SUPPORT]:.1%} of rows outside the "
            "training support)."
        )
    else:
        lines.append("No label-free estimate: no row was scored.")
    seen, evaluated = metrics.get(names.ROWS_SEEN_IN_TRAINING, 0), metrics.get(names.ROWS_EVALUATED, 0)
    if names.PROD_LOG_LOSS in metrics:
        lines.append(
            f"Realized log loss {metrics[names.PROD_LOG_LOSS]:.4f} on {evaluated:.0f} labelled rows the model never "
            f"learned ({seen:.0f} rows it was trained on are left out); null model "
            f"{metrics[names.PROD_NULL_LOG_LOSS]:.4f}."
        )
    elif seen:
        lines.append(f"No labelled metric: all {seen:.0f} labelled rows were learned by the scoring model.")
    else:
        lines.append("No labelled metric: no scored row has a shot_made_flag.")
    return "\n".join(lines)
