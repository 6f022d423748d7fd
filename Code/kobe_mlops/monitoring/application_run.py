"""What a ``PipelineAplicacao`` run logs, as named functions notebook 04 calls.

The step streams the production file through the scoring engine; every figure it logs is
folded batch by batch by :class:`~kobe_mlops.monitoring.streaming_figures.ApplicationFigures`
(a batch observer, built by :func:`application_figures`), so no part of this module holds the
scored rows. :func:`streamed_metrics` turns the folded figures into metric name -> value (pure:
what the triggers read can be checked without MLflow); :func:`log_application_run` writes those
metrics, the params and the artifacts to the active run and appends the labelled rows to the
label store, reading the written predictions back batch by batch. Every name comes from
:mod:`kobe_mlops.tracking.names`, the module the readers import too.

:func:`labelled_metrics` and :func:`application_metrics` compute the same figures from a frame
already in memory (:class:`~kobe_mlops.deployment.application.ApplicationResult`, e.g. one batch
of the replay).

Honesty rules: labelled metrics use only rows the scoring model did not learn
(``rows_seen_in_training`` are counted, not graded); the label-free estimate is logged on every
run with its applicability, and beside the realized value when labels exist.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.dataset as ds

from kobe_mlops import config
from kobe_mlops.data_acquisition.prepare import class_ratio
from kobe_mlops.deployment.application import ApplicationResult, AppliedFile
from kobe_mlops.modeling.metrics import baseline_metrics, evaluate_probabilities
from kobe_mlops.monitoring import estimation, labels
from kobe_mlops.monitoring.scoring_model import ScoringModel, split_seen_rows
from kobe_mlops.monitoring.streaming_figures import ApplicationFigures
from kobe_mlops.tracking import names, reads

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


def append_labels_from_output(
    predictions: Path, run_id: str, source: str, paths: config.WorkspacePaths | None = None
) -> int:
    """Append the labelled rows of a predictions output (a file or a folder of parts) to the label
    store, one record batch at a time; the rows appended."""
    with labels.LabelStoreWriter(run_id, source, paths) as writer:
        for batch in ds.dataset(predictions, format="parquet").to_batches():
            writer.update(batch.to_pandas())
    return writer.rows_appended


def log_application_run(
    applied: AppliedFile,
    *,
    prod_path: str,
    model_uri: str,
    engine: str,
    scoring_url: str,
    drift: pd.DataFrame | None = None,
    paths: config.WorkspacePaths | None = None,
) -> dict[str, float]:
    """Log the active ``PipelineAplicacao`` run and append its labels to the store; return the metrics.

    ``applied`` is the engine's result, with its outputs (logged as artifacts: a file, or the
    folder of part files Spark writes) and the :class:`ApplicationFigures` it folded.
    """
    mlflow.log_params(
        {
            "prod_data": prod_path,
            "model_uri": model_uri,
            "engine": engine,
            "scoring_url": scoring_url,
            **reads.resolve_model_uri(model_uri),
        }
    )
    drift = drift if drift is not None else drift_table(applied)
    metrics, applicability = streamed_metrics(applied, drift)
    run_id = mlflow.active_run().info.run_id
    metrics[names.LABELS_APPENDED] = append_labels_from_output(applied.outputs.predictions, run_id, prod_path, paths)
    mlflow.log_metrics(metrics)
    if applicability is not None:
        mlflow.set_tags(
            {names.ESTIMATE_APPLICABILITY_TAG: applicability.verdict, names.ESTIMATE_REASON_TAG: applicability.reason}
        )
    if names.PROD_LOG_LOSS not in metrics:
        reason = ALL_SEEN_REASON if metrics[names.ROWS_SEEN_IN_TRAINING] else NO_LABELS_REASON
        mlflow.set_tag(names.LABELLED_METRICS_TAG, reason)
    mlflow.log_table(drift, artifact_file=names.DRIFT_TABLE_ARTIFACT)
    for path in applied.outputs:
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=f"data/{path.name}")
        else:
            mlflow.log_artifact(str(path), artifact_path="data")
    return metrics


def application_summary(metrics: dict[str, float], source: str) -> str:
    """What the step prints: rows, what was graded and on which rows, the estimate beside it."""
    lines = [
        f"{source}: {metrics[names.ROWS_INPUT]:.0f} rows in, {metrics[names.ROWS_SCORED]:.0f} scored, "
        f"{metrics[names.ROWS_REJECTED]:.0f} rejected, {metrics[names.ROWS_LABELLED]:.0f} labelled.",
        labels.append_summary(int(metrics[names.LABELS_APPENDED]), source),
        f"Estimated log loss {metrics[names.ESTIMATED_LOG_LOSS]:.4f}, estimated F1 {metrics[names.ESTIMATED_F1]:.4f} "
        f"({metrics[names.SHARE_OUTSIDE_SUPPORT]:.1%} of rows outside the training support).",
    ]
    seen, evaluated = metrics[names.ROWS_SEEN_IN_TRAINING], metrics[names.ROWS_EVALUATED]
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
