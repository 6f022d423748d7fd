"""What a ``PipelineAplicacao`` run logs, as named functions notebook 04 calls.

:func:`application_metrics` is pure (a scored result and the development base in, metric name
-> value out), so what the triggers read can be checked without MLflow;
:func:`log_application_run` writes those metrics, the params and the artifacts to the active run.
Every name comes from :mod:`kobe_mlops.tracking.names`, the module the readers import too.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from kobe_mlops import config
from kobe_mlops.data_acquisition.prepare import class_ratio
from kobe_mlops.deployment.application import ApplicationResult
from kobe_mlops.modeling.metrics import baseline_metrics
from kobe_mlops.tracking import names, reads

NO_LABELS_REASON = "none: no scored row has a shot_made_flag"


def labelled_metrics(result: ApplicationResult, development: pd.DataFrame) -> dict[str, float]:
    """Metrics that need labels; empty when no scored row has one."""
    metrics = result.labelled_metrics()
    if not metrics:
        return {}
    labelled = result.labelled
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


def application_metrics(result: ApplicationResult, development: pd.DataFrame, drift: pd.DataFrame) -> dict[str, float]:
    """Every metric of a ``PipelineAplicacao`` run: row accounting, labelled metrics, scores, PSI."""
    predictions = result.predictions
    return {
        **result.counts,
        **labelled_metrics(result, development),
        names.PREDICTED_MAKE_RATE: float(predictions[config.PREDICTION_COLUMN].mean()),
        names.MEAN_PROBABILITY: float(predictions[config.PROBABILITY_COLUMN].mean()),
        **{names.psi_metric(row.feature): row.psi for row in drift.itertuples()},
    }


def log_application_run(
    result: ApplicationResult,
    development: pd.DataFrame,
    drift: pd.DataFrame,
    *,
    prod_path: str,
    model_uri: str,
    engine: str,
    scoring_url: str,
    outputs: tuple[Path, Path],
) -> dict[str, float]:
    """Log the active ``PipelineAplicacao`` run; return the metrics it logged.

    ``outputs`` are the predictions and rejected files the step wrote (logged as artifacts).
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
    metrics = application_metrics(result, development, drift)
    mlflow.log_metrics(metrics)
    if names.PROD_LOG_LOSS not in metrics:
        mlflow.set_tag(names.LABELLED_METRICS_TAG, NO_LABELS_REASON)
    mlflow.log_table(drift, artifact_file=names.DRIFT_TABLE_ARTIFACT)
    for path in outputs:
        mlflow.log_artifact(str(path), artifact_path="data")
    return metrics
