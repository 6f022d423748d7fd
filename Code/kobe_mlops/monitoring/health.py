"""What the dashboard reads from MLflow and ``data/processed``, as plain objects ready to cache,
and the figures it draws from them: the score distribution's shift, the F1/threshold trade-off."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError, readable_detail
from kobe_mlops.monitoring.calculators import FALSE_ALARM_RATE, psi_from_counts, quantile_edges
from kobe_mlops.tracking import names, reads

RECENT_RUNS = 12
THRESHOLD_GRID = np.round(np.linspace(0.05, 0.95, 91), 2)


@dataclass(frozen=True)
class RunSummary:
    """The parts of an MLflow run the dashboard shows."""

    run_id: str
    name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_run(cls, run: Run) -> RunSummary:
        info = run.info
        return cls(
            run_id=info.run_id,
            name=info.run_name,
            status=info.status,
            start_time=_from_millis(info.start_time),
            end_time=_from_millis(info.end_time) if info.end_time else None,
            metrics=dict(run.data.metrics),
            params=dict(run.data.params),
            tags={key: value for key, value in run.data.tags.items() if not key.startswith("mlflow.")},
        )


@dataclass(frozen=True)
class ModelInfo:
    """A registered model version and where it came from."""

    name: str
    version: str
    aliases: tuple[str, ...]
    model_type: str
    registered_at: datetime
    selection_reason: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class PipelineState:
    """Everything the dashboard needs from the tracking store, read once."""

    recent_runs: list[RunSummary]  # newest first
    application: RunSummary | None  # the latest finished PipelineAplicacao run
    scored_model: ModelInfo | None  # the version that application run scored with
    champion: ModelInfo | None  # the version the champion alias points at now
    training: RunSummary | None  # the training run of scored_model (else of the champion)

    @property
    def has_runs(self) -> bool:
        return bool(self.recent_runs)


def _from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _model_info(version) -> ModelInfo:
    return ModelInfo(
        name=version.name,
        version=str(version.version),
        aliases=tuple(version.aliases),
        model_type=version.tags.get("model_type", "unknown"),
        registered_at=_from_millis(version.creation_timestamp),
        selection_reason=version.tags.get(names.SELECTION_REASON_TAG, ""),
    )


def load_pipeline_state(client: MlflowClient) -> PipelineState:
    runs = reads.recent_runs(client, RECENT_RUNS)
    if not runs:
        return PipelineState([], None, None, None, None)
    application_run = reads.latest_application_run(client)
    scored = reads.model_version_used(client, application_run) if application_run else None
    champion = reads.version_by_alias(client)
    training_run = reads.training_run_of(client, scored or champion) if (scored or champion) else None
    return PipelineState(
        recent_runs=[RunSummary.from_run(run) for run in runs],
        application=RunSummary.from_run(application_run) if application_run else None,
        scored_model=_model_info(scored) if scored else None,
        champion=_model_info(champion) if champion else None,
        training=RunSummary.from_run(training_run) if training_run else None,
    )


def runs_table(runs: list[RunSummary]) -> pd.DataFrame:
    """One line per run, newest first, for the Overview page."""
    return pd.DataFrame(
        [
            {
                "run": run.name,
                "started (UTC)": run.start_time.strftime("%Y-%m-%d %H:%M:%S"),
                "status": run.status,
                "invocation": run.tags.get(config.INVOCATION_TAG, ""),
                "run id": run.run_id,
            }
            for run in runs
        ],
        columns=["run", "started (UTC)", "status", "invocation", "run id"],
    )


def read_optional(path: Path) -> pd.DataFrame | None:
    """A parquet file or a folder of parts (Spark's outputs); None when absent, DataContractError when unreadable."""
    if not (path.is_file() or path.is_dir()):
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt input
        detail = readable_detail(exc)
        raise DataContractError(f"{path}: not a readable parquet file ({detail}); rerun the pipeline.") from None


@dataclass(frozen=True)
class ScoreShift:
    psi: float
    ks_statistic: float
    ks_pvalue: float

    @property
    def verdict(self) -> str:
        alpha = FALSE_ALARM_RATE
        return f"differs (p < {alpha:g})" if self.ks_pvalue < alpha else f"no evidence (p ≥ {alpha:g})"


def score_shift(reference_probability, current_probability) -> ScoreShift:
    """How far the production score distribution moved from the reference one (PSI on the
    reference's deciles, and the KS test)."""
    from scipy import stats  # one page uses it: not loaded with the dashboard

    reference = np.asarray(reference_probability, dtype=float)
    current = np.asarray(current_probability, dtype=float)
    edges = quantile_edges(reference)
    psi = psi_from_counts(np.histogram(reference, edges)[0], np.histogram(current, edges)[0])
    ks = stats.ks_2samp(reference, current)
    return ScoreShift(float(psi), float(ks.statistic), float(ks.pvalue))


def threshold_sweep(y_true, probability, thresholds=THRESHOLD_GRID) -> pd.DataFrame:
    """F1, precision, recall and the share of predicted makes at each threshold, from one sort."""
    y_true = np.asarray(y_true).astype(int)
    probability = np.asarray(probability, dtype=float)
    order = np.sort(probability)
    makes = np.sort(probability[y_true == 1])
    thresholds = np.asarray(thresholds, dtype=float)
    predicted = len(order) - np.searchsorted(order, thresholds, side="left")  # rows with p >= threshold
    true_positive = len(makes) - np.searchsorted(makes, thresholds, side="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = true_positive / len(makes) if len(makes) else np.zeros(len(thresholds))
        f1 = np.where(predicted + len(makes) > 0, 2 * true_positive / (predicted + len(makes)), 0.0)
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "f1": f1,
            "precision": precision,
            "recall": recall,
            "predicted make rate": predicted / len(order) if len(order) else np.nan,
        }
    )


def best_threshold(sweep: pd.DataFrame) -> pd.Series:
    """The row of ``sweep`` with the highest F1 (the lowest threshold among ties)."""
    return sweep.loc[sweep["f1"].idxmax()]
