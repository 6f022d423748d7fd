"""Monitoring logic behind the dashboard, beyond the calculators of ``calculators.py``.

* **What the pipeline left behind**: the latest runs, the champion and the files in
  ``data/processed``, as plain objects (no MLflow entities), ready to cache and display.
* **Drift without labels**: adversarial validation — how well a classifier tells development
  rows from production rows (AUC 0.5: indistinguishable; 1.0: two different populations).
* **Model health without labels**: what an operator sees before outcomes arrive — the shift of
  the score distribution, the predicted make rate beside the training make rate, and the share
  of production rows outside the range the model was trained on.
* **Model health with labels**: metrics beside their baselines and the F1/threshold trade-off.

Nothing here trains or registers a model: the dashboard only reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from scipy import stats
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.modeling.metrics import METRIC_NAMES
from kobe_mlops.modeling.support import SUPPORT_QUANTILES
from kobe_mlops.monitoring.calculators import FALSE_ALARM_RATE, psi_from_counts
from kobe_mlops.tracking import names, reads

RECENT_RUNS = 12
# Adversarial validation: 5-fold out-of-fold probabilities, so every row is judged by a model
# that never saw it. Gradient boosting needs no scaling and captures interactions (lat x lon).
ADVERSARIAL_FOLDS = 5
ADVERSARIAL_NOTICEABLE = 0.60  # a classifier beats chance: the bases differ somewhere
ADVERSARIAL_STRONG = 0.80  # the bases are easy to tell apart: the model meets a new population
# The training "range" is its support: the central 99 % (modeling/support.py).
RANGE_QUANTILES = SUPPORT_QUANTILES
THRESHOLD_GRID = np.round(np.linspace(0.05, 0.95, 91), 2)


# --- What the pipeline left in MLflow ---------------------------------------------------------


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
    training_run_id: str | None

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
        selection_reason=version.tags.get("selection_reason", ""),
        training_run_id=version.tags.get(names.TRAINING_RUN_TAG),
    )


def load_pipeline_state(client: MlflowClient, recent: int = RECENT_RUNS) -> PipelineState:
    runs = reads.recent_runs(client, recent)
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


def metrics_side_by_side(training_metrics: dict[str, float], application_metrics: dict[str, float]) -> pd.DataFrame:
    """Test vs production metrics of the champion, each beside its trivial baseline.

    Missing figures (production without labels) stay NaN rather than disappearing.
    """
    columns = {
        "test": (training_metrics, names.champion_test_metric),
        "test baseline": (training_metrics, names.baseline_test_metric),
        "production": (application_metrics, names.prod_metric),
        "production baseline": (application_metrics, names.baseline_prod_metric),
    }
    table = pd.DataFrame(
        {
            label: [source.get(metric_name(name), np.nan) for name in METRIC_NAMES]
            for label, (source, metric_name) in columns.items()
        },
        index=pd.Index(METRIC_NAMES, name="metric"),
    )
    return table


# --- What the pipeline left in data/processed -------------------------------------------------


@dataclass(frozen=True)
class ProcessedData:
    """The processed files; None for a file the pipeline has not written yet."""

    development: pd.DataFrame | None  # data_filtered: every labelled development shot
    train: pd.DataFrame | None
    test: pd.DataFrame | None
    predictions: pd.DataFrame | None  # scored production rows
    rejected: pd.DataFrame | None  # production rows that broke the data contract


def read_optional(path: Path) -> pd.DataFrame | None:
    """A parquet file or a folder of part files (Spark's outputs), None when absent; an unreadable
    one is a clear DataContractError."""
    if not (path.is_file() or path.is_dir()):
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt input
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataContractError(f"{path}: not a readable parquet file ({detail}); rerun the pipeline.") from None


def load_processed(paths: config.WorkspacePaths | None = None) -> ProcessedData:
    paths = paths or config.workspace_paths()
    return ProcessedData(
        development=read_optional(paths.data_filtered),
        train=read_optional(paths.base_train),
        test=read_optional(paths.base_test),
        predictions=read_optional(paths.predictions_prod),
        rejected=read_optional(paths.rejected_prod),
    )


def labelled_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if config.TARGET not in frame:
        return frame.iloc[0:0]
    return frame[frame[config.TARGET].notna()]


# --- Drift without labels ---------------------------------------------------------------------


def adversarial_validation_auc(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features=config.FEATURES,
    folds: int = ADVERSARIAL_FOLDS,
    seed: int = config.SEED,
) -> float:
    """Cross-validated ROC AUC of a classifier telling ``current`` rows from ``reference`` rows."""
    if len(reference) < folds or len(current) < folds:
        raise ValueError(
            f"adversarial validation needs at least {folds} rows in each base "
            f"(got {len(reference)} and {len(current)})."
        )
    rows = pd.concat([reference[features], current[features]], ignore_index=True)
    is_current = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(current), dtype=int)]
    classifier = HistGradientBoostingClassifier(random_state=seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probability = cross_val_predict(classifier, rows, is_current, cv=splitter, method="predict_proba")[:, 1]
    return float(roc_auc_score(is_current, probability))


def adversarial_verdict(auc: float) -> str:
    if auc >= ADVERSARIAL_STRONG:
        return "easily separable: production is a different population"
    if auc >= ADVERSARIAL_NOTICEABLE:
        return "partly separable: the bases differ somewhere"
    return "indistinguishable: no sign of drift"


def single_feature_separability(reference: pd.DataFrame, current: pd.DataFrame, features=config.FEATURES) -> pd.Series:
    """For each feature alone, the AUC of its raw value as a dev-vs-prod score, folded above 0.5.

    0.5 means the feature alone says nothing about which base a row comes from; 1.0 means it
    gives it away (the Mann-Whitney statistic, so no model is fitted).
    """
    is_current = np.r_[np.zeros(len(reference), dtype=int), np.ones(len(current), dtype=int)]
    scores = {}
    for feature in features:
        values = pd.concat([reference[feature], current[feature]], ignore_index=True).to_numpy(dtype=float)
        auc = roc_auc_score(is_current, values)
        scores[feature] = max(auc, 1 - auc)
    return pd.Series(scores, name="separability_auc")


def ks_verdict(pvalue: float, alpha: float = FALSE_ALARM_RATE) -> str:
    return f"differs (p < {alpha:g})" if pvalue < alpha else f"no evidence (p ≥ {alpha:g})"


# --- Model health without labels --------------------------------------------------------------


def outside_training_range(
    train: pd.DataFrame,
    current: pd.DataFrame,
    features=config.FEATURES,
    quantiles: tuple[float, float] = RANGE_QUANTILES,
) -> tuple[pd.DataFrame, float]:
    """Per feature, the training band and the share of ``current`` rows below or above it.

    Returns the table and the share of rows with at least one feature outside its band.
    """
    rows, any_outside = [], np.zeros(len(current), dtype=bool)
    for feature in features:
        low, high = train[feature].quantile(list(quantiles))
        values = current[feature]
        below, above = values < low, values > high
        any_outside |= (below | above).to_numpy()
        rows.append(
            {
                "feature": feature,
                "training low": low,
                "training high": high,
                "share below": below.mean(),
                "share above": above.mean(),
                "share outside": (below | above).mean(),
            }
        )
    table = pd.DataFrame(rows).set_index("feature")
    return table, float(any_outside.mean()) if len(current) else float("nan")


@dataclass(frozen=True)
class ScoreShift:
    psi: float
    ks_statistic: float
    ks_pvalue: float

    @property
    def verdict(self) -> str:
        return ks_verdict(self.ks_pvalue)


def score_shift(reference_probability, current_probability) -> ScoreShift:
    """How far the production score distribution moved from the reference one (PSI on the
    reference's deciles, and the KS test)."""
    reference = np.asarray(reference_probability, dtype=float)
    current = np.asarray(current_probability, dtype=float)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    psi = psi_from_counts(np.histogram(reference, edges)[0], np.histogram(current, edges)[0])
    ks = stats.ks_2samp(reference, current)
    return ScoreShift(float(psi), float(ks.statistic), float(ks.pvalue))


def make_rate_summary(
    train: pd.DataFrame, test_probability, production_probability, threshold: float = config.DECISION_THRESHOLD
) -> pd.DataFrame:
    """The make rate the model learned beside what it predicts on test and in production.

    A calibrated model's mean probability matches the make rate of the population it scores;
    the share of predicted makes depends on the threshold too, so it is compared test vs prod.
    """
    test_probability = np.asarray(test_probability, dtype=float)
    production_probability = np.asarray(production_probability, dtype=float)
    training_rate = float(train[config.TARGET].mean())
    return pd.DataFrame(
        {
            "test": [training_rate, test_probability.mean(), (test_probability >= threshold).mean()],
            "production": [training_rate, production_probability.mean(), (production_probability >= threshold).mean()],
        },
        index=pd.Index(["training make rate", "mean probability", "predicted make rate"], name="figure"),
    )


# --- Model health with labels -----------------------------------------------------------------


def threshold_sweep(y_true, probability, thresholds=THRESHOLD_GRID) -> pd.DataFrame:
    """F1, precision, recall and the share of predicted makes at each decision threshold, from one
    sort of the probabilities (the confusion counts at every threshold at once)."""
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
