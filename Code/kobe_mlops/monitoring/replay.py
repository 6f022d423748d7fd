"""Replay production batch by batch, oldest first, under three retraining strategies.

The production base spans twenty seasons. The replay plays them in order, as production would
have lived them, and asks what each way of retraining would have cost or gained:

* ``never``: the development champion (``models:/kobe-shot-model@champion``, loaded once) scores
  every batch;
* ``reactive``: after each batch the retraining triggers (:func:`triggers.evaluate_triggers`) read
  the batch's figures; when one fired, a challenger is trained and promoted only through the
  promotion gate (:func:`retraining.validate` and :func:`retraining.promotion_decision`);
* ``scheduled``: a challenger after every ``schedule_every`` batches, through the same gate.

For each batch ``t`` and each strategy: score batch ``t`` with the strategy's current model (the
data contract, rejected rows, the CBPE estimate with its applicability: the same
:func:`application_metrics` as a ``PipelineAplicacao`` run), **then** reveal batch ``t``'s labels
(rows without one stay unlabelled), **then** let the strategy act before batch ``t + 1``. A
challenger learns ``base_train`` plus the older part of every label revealed so far; the newest
part (:data:`retraining.HOLDOUT_FRACTION`, split by date as the retraining loop does) is the
holdout of the gate. So a model never scores a batch whose labels it learned
(``trained_through_batch < batch_index`` on every batch, checked, and the scoring model's learned
rows are never graded): each batch's metrics are out of sample. Each model's estimator is
calibrated on ``base_test`` (no model trains on it) with the support of its own training rows.

**The yardstick.** A constant probability equal to the make rate of every label revealed before
the batch (the development rate before the first) is the null model: a strategy whose pooled
log loss does not beat it has learned nothing beyond the make rate, and is reported as such.

**Independent lineages, one training per distinct training set.** The strategies share the data
and the seed, never their models. Two strategies that retrain after the same batch learn exactly
the same rows with the same seed, so the second gets the first one's challenger instead of
training an identical one again (training is deterministic); each strategy still validates it
against its own champion and decides alone.

**Tracking.** Everything goes to the experiment ``kobe-shot-replay``, never to the pipeline's
experiment or the registered model: one ``SimulacaoOperacao`` parent run and, under it, one
``PipelineAplicacao`` child per strategy and batch (:class:`MlflowReplayLog`). Bad input (no
``game_date``, a season without rows, missing pipeline outputs) stops the replay before anything
is logged; a failure halfway marks the parent run FAILED.

The trainer is a parameter (:data:`Trainer`): :func:`pycaret_trainer` trains in this process
with notebook 03's functions; tests inject a cheap one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import read_table
from kobe_mlops.data_acquisition.prepare import class_ratio
from kobe_mlops.deployment.application import ApplicationResult, score_frame
from kobe_mlops.modeling.metrics import evaluate_probabilities
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.modeling.support import feature_support
from kobe_mlops.monitoring import estimation, triggers
from kobe_mlops.monitoring.application_run import application_metrics
from kobe_mlops.monitoring.drift import compare_features
from kobe_mlops.monitoring.retraining import (
    HOLDOUT_FRACTION,
    PROMOTION_RULE,
    RetrainingError,
    labelled_production_rows,
    promotion_decision,
    row_log_loss,
    rows_fingerprint,
    time_ordered_split,
    validate,
)
from kobe_mlops.monitoring.scoring_model import ScoringModel, load_scoring_model
from kobe_mlops.tracking import configure, invocation_id, names, reads, tracking_uri

NEVER, REACTIVE, SCHEDULED = "never", "reactive", "scheduled"
STRATEGIES = (NEVER, REACTIVE, SCHEDULED)
# Every third batch: on season batches, a challenger every three seasons. The reactive strategy
# retrains after nearly every batch on this data (3PT inputs always drift from the 2PT
# development base), so a calendar that acts less often is the informative comparison.
DEFAULT_SCHEDULE_EVERY = config.REPLAY_SCHEDULE_EVERY
LABEL_TRIGGERS = (triggers.LOG_LOSS_DEGRADATION, triggers.MAKE_RATE_GAP)
SEASON_COLUMN = "season"
DATE_COLUMN = "game_date"
ID_COLUMN = "shot_id"
BATCH_COLUMN = "replay_batch_index"  # on revealed labels: the batch they came with
STAGES = ("scoring", "estimation", "training", "validation", "logging")
DEVELOPMENT_CHAMPION = -1  # trained_through_batch of a model that learned no production label
MIN_HOLDOUT_ROWS = 2  # the gate's paired standard error needs two rows


class ReplayError(RuntimeError):
    """The replay cannot start or go on: one sentence saying why and what to do."""


# --- Batches ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    index: int  # 0-based, oldest first
    label: str  # the season, or the date range of a batch of rows
    rows: pd.DataFrame  # the production rows, every column, in date order

    @property
    def first_date(self) -> str:
        return f"{pd.to_datetime(self.rows[DATE_COLUMN]).min():%Y-%m-%d}"

    @property
    def last_date(self) -> str:
        return f"{pd.to_datetime(self.rows[DATE_COLUMN]).max():%Y-%m-%d}"


def read_production(path: str | Path) -> pd.DataFrame:
    """The production file (unreadable, empty or missing files fail with one clear message)."""
    return read_table(path)


def plan_batches(production: pd.DataFrame, batch_rows: int | None = None, source: str = "production") -> list[Batch]:
    """Split production into batches, oldest first: one per season, or ``batch_rows`` rows in date order.

    Seasons are ordered by their first game. Rows are ordered by ``game_date`` then ``shot_id``
    (a file without ``shot_id`` gets its row positions as ids, so learned rows stay traceable).
    """
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive number of rows, got {batch_rows}")
    if production.empty:
        raise ReplayError(f"{source} has no rows: there is nothing to replay.")
    if DATE_COLUMN not in production:
        raise ReplayError(
            f"{source} has no {DATE_COLUMN} column: the replay orders production by date "
            "(batches, and the time split of the revealed labels), so it needs one."
        )
    dates = pd.to_datetime(production[DATE_COLUMN], errors="coerce")
    if dates.isna().any():
        first = production.loc[dates.isna(), DATE_COLUMN].iloc[0]
        count = int(dates.isna().sum())
        raise ReplayError(f"{source}: {count} rows have no readable {DATE_COLUMN} (first: {first!r}).")
    frame = production if ID_COLUMN in production else production.assign(**{ID_COLUMN: np.arange(len(production))})
    order = np.lexsort((frame[ID_COLUMN].to_numpy(), dates.to_numpy()))
    ordered = frame.iloc[order].reset_index(drop=True)
    if batch_rows is not None:
        batches = []
        for index, start in enumerate(range(0, len(ordered), batch_rows)):
            rows = ordered.iloc[start : start + batch_rows].reset_index(drop=True)
            first, last = pd.to_datetime(rows[DATE_COLUMN]).agg(["min", "max"])
            batches.append(Batch(index, f"{first:%Y-%m-%d} to {last:%Y-%m-%d}", rows))
        return batches
    return _season_batches(ordered, source)


def _season_batches(ordered: pd.DataFrame, source: str) -> list[Batch]:
    if SEASON_COLUMN not in ordered:
        raise ReplayError(
            f"{source} has no {SEASON_COLUMN} column to batch by: "
            "batch it by rows instead (run_all.py --replay-batch N)."
        )
    seasons = ordered[SEASON_COLUMN]
    if seasons.isna().any():
        raise ReplayError(f"{source}: {int(seasons.isna().sum())} rows have no {SEASON_COLUMN}; every row needs one.")
    if isinstance(seasons.dtype, pd.CategoricalDtype):  # a category may be declared without rows
        empty = sorted(set(seasons.cat.categories) - set(seasons.unique()))
        if empty:
            raise ReplayError(
                f"{source}: season {empty[0]!r} has no rows ({len(empty)} empty season(s)); "
                "drop it from the file's categories or batch by rows (--replay-batch N)."
            )
        seasons = seasons.astype(str)
    labels = list(dict.fromkeys(seasons.astype(str)))  # rows are in date order: first game decides
    return [
        Batch(index, label, ordered[seasons.astype(str).to_numpy() == label].reset_index(drop=True))
        for index, label in enumerate(labels)
    ]


def batch_plan(batches: Sequence[Batch]) -> pd.DataFrame:
    """One row per batch: label, rows, labelled rows, make rate, first and last date."""
    rows = []
    for batch in batches:
        target = batch.rows[config.TARGET] if config.TARGET in batch.rows else pd.Series(dtype=float)
        rows.append(
            {
                "batch_index": batch.index,
                "batch": batch.label,
                "rows": len(batch.rows),
                "labelled": int(target.notna().sum()),
                "make_rate": float(target.mean()) if target.notna().any() else float("nan"),
                "first_date": batch.first_date,
                "last_date": batch.last_date,
            }
        )
    return pd.DataFrame(rows)


# --- Models -----------------------------------------------------------------------------------


class InMemoryModel:
    """A trained pipeline scored in this process, with a loaded pyfunc's ``predict(frame)``."""

    def __init__(self, shot_model: ShotMadeModel):
        self.shot_model = shot_model

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        return self.shot_model.predict(None, features)


# Training rows (features and target: base_train plus revealed labels) -> (model, one-line description).
# The model answers ``predict(features)`` with the probability and prediction columns.
Trainer = Callable[[pd.DataFrame], tuple[object, str]]


def pycaret_trainer(base_test: pd.DataFrame, seed: int = config.SEED, fast: bool = False) -> Trainer:
    """Train like notebook 03, in this process: the same experiment, grids and selection rule."""
    from kobe_mlops.modeling.train import (
        CANDIDATES,
        FAST_CV_FOLDS,
        build_experiment,
        choose_champion,
        train_candidate,
    )

    folds = FAST_CV_FOLDS if fast else config.CV_FOLDS

    def train(rows: pd.DataFrame) -> tuple[object, str]:
        rows = rows.reset_index(drop=True)
        experiment = build_experiment(rows, base_test.reset_index(drop=True), seed=seed, folds=folds)
        candidates = {key: train_candidate(experiment, key, fast=fast) for key in CANDIDATES}
        chosen, reason = choose_champion(candidates)
        return InMemoryModel(ShotMadeModel(chosen.pipeline, check_features=rows[config.FEATURES])), reason

    return train


@dataclass(frozen=True)
class Deployed:
    """A model a strategy can put in service, with what monitoring must know about it."""

    model: object  # predict(features) -> probability and prediction columns
    scoring: ScoringModel  # the production rows it learned and its estimator
    test_log_loss: float  # on base_test: the triggers' test-based limit
    trained_through_batch: int  # last batch whose labels it learned; -1 for the development champion
    description: str


def calibrated_model(model, train_rows: pd.DataFrame, reference: pd.DataFrame, learned_shot_ids) -> ScoringModel:
    """The estimator of ``model``, as a ``Treinamento`` run sets it up: calibrated on ``reference``
    (labelled rows it never learned: base_test, plus a challenger's production holdout, as notebook
    03's ``reference_data``), with the support of its own training rows."""
    probability = model.predict(reference[config.FEATURES])[config.PROBABILITY_COLUMN].to_numpy()
    estimator = estimation.PerformanceEstimator.fit(
        probability, reference[config.TARGET], feature_support(train_rows[config.FEATURES])
    )
    return ScoringModel(None, np.sort(np.asarray(learned_shot_ids, dtype="int64")), estimator)


def base_test_log_loss(model, base_test: pd.DataFrame) -> float:
    probability = model.predict(base_test[config.FEATURES])[config.PROBABILITY_COLUMN]
    return evaluate_probabilities(base_test[config.TARGET], probability)["log_loss"]


# --- Inputs and settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayInputs:
    base_train: pd.DataFrame
    base_test: pd.DataFrame
    development: pd.DataFrame  # data_filtered: the drift reference of every application run
    champion: Deployed  # the development champion, where every strategy starts
    champion_version: str = "none"


def missing_inputs(paths: config.WorkspacePaths | None = None) -> list[str]:
    """What the replay needs from a pipeline run and does not find (empty: ready)."""
    paths = paths or config.workspace_paths()
    missing = [
        f"{path.relative_to(paths.root)}"
        for path in (paths.base_train, paths.base_test, paths.data_filtered)
        if not path.is_file()
    ]
    if not reads.store_exists() or reads.version_by_alias(reads.client()) is None:
        missing.append(f"the registered champion {config.CHAMPION_URI}")
    return missing


def load_inputs(paths: config.WorkspacePaths | None = None) -> ReplayInputs:
    """The development pipeline's outputs and its champion, loaded once."""
    paths = paths or config.workspace_paths()
    missing = missing_inputs(paths)
    if missing:
        raise ReplayError(
            f"The replay needs a pipeline run first: missing {', '.join(missing)} in {paths.root}. "
            "Run python run_all.py (add --data-source DIR without internet access)."
        )
    mlflow.set_tracking_uri(tracking_uri())
    client = reads.client()
    version = reads.version_by_alias(client)
    model = mlflow.pyfunc.load_model(config.CHAMPION_URI)
    scoring = load_scoring_model(config.CHAMPION_URI, model, paths, client)
    if len(scoring.learned_shot_ids):
        raise ReplayError(
            f"The champion (version {version.version}) learned {len(scoring.learned_shot_ids)} labelled production "
            "rows: the replay starts from a model of development data only. Roll back to it first "
            "(python run_all.py --rollback)."
        )
    base_test = pd.read_parquet(paths.base_test)
    champion = Deployed(
        model,
        scoring,
        base_test_log_loss(model, base_test),
        DEVELOPMENT_CHAMPION,
        f"development champion ({config.REGISTERED_MODEL_NAME} version {version.version})",
    )
    return ReplayInputs(
        pd.read_parquet(paths.base_train),
        base_test,
        pd.read_parquet(paths.data_filtered),
        champion,
        str(version.version),
    )


@dataclass(frozen=True)
class ReplaySettings:
    strategies: tuple[str, ...] = STRATEGIES
    schedule_every: int = DEFAULT_SCHEDULE_EVERY
    batch_rows: int | None = None  # None: one batch per season
    holdout_fraction: float = HOLDOUT_FRACTION
    seed: int = config.SEED
    fast: bool = False
    prod_data: str = ""

    def __post_init__(self):
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies or len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies must be distinct names among {', '.join(STRATEGIES)}, got {self.strategies}")
        if self.schedule_every < 1:
            raise ValueError(f"schedule_every must be at least 1, got {self.schedule_every}")

    @property
    def batching(self) -> str:
        return "season" if self.batch_rows is None else f"{self.batch_rows} rows"


# --- The strategies' decisions (pure) ---------------------------------------------------------


def challenger_wanted(
    strategy: str, batch_index: int, batch_count: int, report: triggers.TriggerReport, schedule_every: int
) -> tuple[bool, str]:
    """Whether ``strategy`` trains a challenger after batch ``batch_index``, and why."""
    if batch_index >= batch_count - 1:
        return False, "last batch: no batch left to score"
    if strategy == NEVER:
        return False, "this strategy never retrains"
    if strategy == REACTIVE:
        if report.any_fired:
            return True, "trigger fired: " + ", ".join(trigger.name for trigger in report.fired)
        return False, "no trigger fired"
    if strategy == SCHEDULED:
        if (batch_index + 1) % schedule_every == 0:
            return True, f"scheduled: a challenger every {schedule_every} batch(es)"
        due = (batch_index // schedule_every + 1) * schedule_every - 1
        return False, f"not scheduled (every {schedule_every} batches; next after batch {due})"
    raise ValueError(f"unknown strategy {strategy!r}")


def null_rate(revealed: pd.DataFrame, development_rate: float) -> float:
    """The null model's constant: the make rate of every label revealed so far, else the development rate."""
    return class_ratio(revealed) if len(revealed) else development_rate


def first_batch(batch_indices: Sequence[int]) -> int:
    return min(batch_indices) if len(batch_indices) else -1


# --- One batch --------------------------------------------------------------------------------


@dataclass
class BatchRecord:
    """What one strategy saw and did on one batch: one child run."""

    strategy: str
    batch_index: int
    batch: str
    first_date: str
    last_date: str
    trained_through_batch: int
    model: str  # description of the scoring model
    metrics: dict[str, float]
    applicability: estimation.Applicability
    report: triggers.TriggerReport
    retrained: bool = False
    promoted: bool = False
    decision: str = "none"  # "promote", "keep" or "none" (no challenger)
    reason: str = ""
    validation: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def all_metrics(self) -> dict[str, float]:
        figures = {
            **self.metrics,
            **{names.trigger_fired_metric(t.name): float(t.fired) for t in self.report.triggers},
            **{names.trigger_metric(t.name): t.value for t in self.report.triggers if t.value is not None},
            **{names.trigger_threshold_metric(t.name): t.threshold for t in self.report.triggers},
            names.RETRAINED: float(self.retrained),
            names.PROMOTED: float(self.promoted),
            **{f"{names.VALIDATION_PREFIX}{key}": value for key, value in self.validation.items()},
        }
        return {key: float(value) for key, value in figures.items() if value is not None and math.isfinite(value)}

    def params(self) -> dict[str, str]:
        return {
            names.REPLAY_BATCH: self.batch,
            names.REPLAY_BATCH_INDEX: str(self.batch_index),
            names.TRAINED_THROUGH_BATCH: str(self.trained_through_batch),
            "batch_first_date": self.first_date,
            "batch_last_date": self.last_date,
        }

    def tags(self) -> dict[str, str]:
        return {
            names.REPLAY_STRATEGY_TAG: self.strategy,
            names.ESTIMATE_APPLICABILITY_TAG: self.applicability.verdict,
            names.ESTIMATE_REASON_TAG: self.applicability.reason,
            names.FIRED_TRIGGERS_TAG: ",".join(t.name for t in self.report.fired),
            names.REPLAY_DECISION_TAG: self.decision,
            names.REPLAY_REASON_TAG: self.reason[:5000],
            "scoring_model": self.model[:5000],
        }

    def line(self, batch_count: int) -> str:
        """The progress line of this batch and strategy."""
        m = self.metrics
        realized = (
            f"log loss {m[names.LOG_LOSS]:.4f} (null {m[names.REPLAY_NULL_LOG_LOSS]:.4f})"
            if names.LOG_LOSS in m
            else "no labelled row"
        )
        estimate = m.get(names.ESTIMATED_LOG_LOSS, float("nan"))
        fired = ",".join(t.name for t in self.report.fired) or "none"
        action = {"promote": "challenger promoted", "keep": "challenger kept out"}.get(self.decision, "no retraining")
        return (
            f"[{self.batch_index + 1:>2}/{batch_count}] {self.batch:<10} {self.strategy:<9} "
            f"{m.get(names.ROWS_SCORED, 0):.0f} scored, {m.get(names.ROWS_REJECTED, 0):.0f} rejected | {realized}, "
            f"estimate {estimate:.4f} ({self.applicability.verdict}) | fired: {fired} | {action} "
            f"({self.seconds:.1f} s)"
        )


def batch_metrics(
    result: ApplicationResult,
    development: pd.DataFrame,
    drift: pd.DataFrame,
    deployed: Deployed,
    rate_before: float,
) -> tuple[dict[str, float], estimation.Applicability]:
    """The ``PipelineAplicacao`` figures of one scored batch, plus the replay's null yardstick."""
    metrics, applicability = application_metrics(result, development, drift, deployed.scoring)
    if metrics.get(names.ROWS_SEEN_IN_TRAINING, 0):
        raise ReplayError(
            f"{result.source}: the scoring model learned {metrics[names.ROWS_SEEN_IN_TRAINING]:.0f} of these "
            "labelled rows; a replayed batch must be out of sample."
        )
    labelled = result.labelled
    if len(labelled):
        metrics[names.REPLAY_NULL_LOG_LOSS] = float(
            row_log_loss(labelled[config.TARGET], np.full(len(labelled), rate_before)).mean()
        )
    return metrics, applicability


def drift_table(development: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """Development vs the batch's scored rows (no row scored: no PSI to log)."""
    if scored.empty:
        return pd.DataFrame(columns=["feature", "psi"])
    return compare_features(development, scored)


# --- Timing and logging -----------------------------------------------------------------------


class StageTimer:
    """Seconds spent per stage of the replay (:data:`STAGES`)."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


class NullReplayLog:
    """Logs nothing (unit tests, benchmarks of the loop alone)."""

    run_id: str | None = None

    @contextmanager
    def parent(self, params: dict[str, str]) -> Iterator[None]:
        yield

    def child(self, record: BatchRecord) -> None:
        pass

    def summary(self, metrics: dict[str, float], tags: dict[str, str], table: pd.DataFrame) -> None:
        pass


class MlflowReplayLog:
    """One ``SimulacaoOperacao`` parent run in ``kobe-shot-replay``, one nested child per strategy and batch.

    The parent is opened once the inputs are checked; an exception inside marks it FAILED.
    Children are written in one request each (``log_batch``) and finished at once.
    """

    def __init__(self, experiment_name: str = config.REPLAY_EXPERIMENT_NAME):
        self.experiment_name = experiment_name
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.client: MlflowClient | None = None

    @contextmanager
    def parent(self, params: dict[str, str]) -> Iterator[None]:
        self.experiment_id = configure(self.experiment_name)
        self.client = MlflowClient(tracking_uri())
        tags = {config.INVOCATION_TAG: invocation_id(), "kobe.step": "simulacao_operacao"}
        name = config.REPLAY_RUN_NAMES["simulacao_operacao"]
        with mlflow.start_run(run_name=name, experiment_id=self.experiment_id, tags=tags) as run:
            self.run_id = run.info.run_id
            mlflow.log_params(params)
            yield

    def child(self, record: BatchRecord) -> None:
        tags = {
            "mlflow.parentRunId": self.run_id,
            config.INVOCATION_TAG: invocation_id(),
            "kobe.step": "aplicacao",
            **record.tags(),
        }
        run = self.client.create_run(self.experiment_id, run_name=config.RUN_NAMES["aplicacao"], tags=tags)
        stamp = int(time.time() * 1000)
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(key, value, stamp, 0) for key, value in record.all_metrics().items()],
            params=[Param(key, value) for key, value in record.params().items()],
        )
        self.client.set_terminated(run.info.run_id)

    def summary(self, metrics: dict[str, float], tags: dict[str, str], table: pd.DataFrame) -> None:
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        mlflow.log_table(table, artifact_file="replay/summary.json")


# --- The loop ---------------------------------------------------------------------------------


@dataclass
class Lineage:
    """One strategy's model in service and its running totals."""

    strategy: str
    deployed: Deployed
    retrains: int = 0
    promotions: int = 0
    loss_sum: float = 0.0  # pooled out-of-sample log loss: sum over labelled rows
    rows: int = 0
    estimation_errors: list[float] = field(default_factory=list)  # |estimate - realized| per labelled batch
    alerts: list[int] = field(default_factory=list)  # batches where any trigger fired
    label_alerts: list[int] = field(default_factory=list)  # ... a trigger that needs labels


@dataclass(frozen=True)
class StrategySummary:
    strategy: str
    log_loss: float  # pooled over every labelled replayed row
    retrains: int
    promotions: int
    estimation_error: float  # mean absolute error of the estimated log loss, over labelled batches
    beats_null: bool


@dataclass(frozen=True)
class ReplaySummary:
    strategies: dict[str, StrategySummary]
    log_loss_null: float
    rows_labelled: int
    first_alert_batch: int
    first_label_alert_batch: int
    batches: int

    def verdict(self, strategy: str) -> str:
        summary = self.strategies[strategy]
        gap = self.log_loss_null - summary.log_loss
        if summary.beats_null:
            return f"beats the null model by {gap:.4f}"
        return f"does not beat the null model (worse by {-gap:.4f})"

    def metrics(self) -> dict[str, float]:
        figures = {
            names.REPLAY_NULL_LOG_LOSS: self.log_loss_null,
            "rows_labelled_replayed": float(self.rows_labelled),
            names.FIRST_ALERT_BATCH: float(self.first_alert_batch),
            names.FIRST_LABEL_ALERT_BATCH: float(self.first_label_alert_batch),
            "batches": float(self.batches),
        }
        for name, summary in self.strategies.items():
            figures[names.strategy_metric(names.LOG_LOSS, name)] = summary.log_loss
            figures[names.strategy_metric("retrains", name)] = float(summary.retrains)
            figures[names.strategy_metric("promotions", name)] = float(summary.promotions)
            figures[names.strategy_metric("estimation_error", name)] = summary.estimation_error
            figures[names.strategy_metric("beats_null", name)] = float(summary.beats_null)
        return {key: value for key, value in figures.items() if math.isfinite(value)}

    def tags(self) -> dict[str, str]:
        return {names.strategy_metric("null_verdict", name): self.verdict(name) for name in self.strategies}

    def table(self) -> pd.DataFrame:
        """One row per strategy and one for the null model: the replay's answer."""
        rows = [
            {
                "strategy": s.strategy,
                "log_loss": s.log_loss,
                "vs_null": s.log_loss - self.log_loss_null,
                "retrains": s.retrains,
                "promotions": s.promotions,
                "estimation_error": s.estimation_error,
                "verdict": self.verdict(s.strategy),
            }
            for s in self.strategies.values()
        ]
        rows.append({"strategy": "null", "log_loss": self.log_loss_null, "vs_null": 0.0, "verdict": "yardstick"})
        return pd.DataFrame(rows)

    def lines(self) -> list[str]:
        lines = [
            f"{name}: pooled log loss {s.log_loss:.4f} on {self.rows_labelled} labelled rows, "
            f"{self.verdict(name)} ({self.log_loss_null:.4f}); {s.retrains} retrains, {s.promotions} promotions, "
            f"estimate off by {s.estimation_error:.4f} on average"
            for name, s in self.strategies.items()
        ]
        lines.append(
            f"First alert after batch {self.first_alert_batch}; first label-based alert after batch "
            f"{self.first_label_alert_batch} (-1: none)."
        )
        return lines


@dataclass
class ReplayResult:
    records: list[BatchRecord]
    summary: ReplaySummary
    seconds: dict[str, float]  # per stage
    wall_seconds: float
    run_id: str | None = None
    trainings: int = 0  # challengers actually trained (strategies retraining on the same rows share one)

    def timeline(self) -> pd.DataFrame:
        """One row per strategy and batch."""
        return pd.DataFrame(
            [
                {
                    "strategy": r.strategy,
                    "batch_index": r.batch_index,
                    "batch": r.batch,
                    "trained_through_batch": r.trained_through_batch,
                    "rows_scored": r.metrics.get(names.ROWS_SCORED),
                    "log_loss": r.metrics.get(names.LOG_LOSS, float("nan")),
                    "estimated_log_loss": r.metrics.get(names.ESTIMATED_LOG_LOSS, float("nan")),
                    "log_loss_null": r.metrics.get(names.REPLAY_NULL_LOG_LOSS, float("nan")),
                    "applicability": r.applicability.verdict,
                    "fired": ",".join(t.name for t in r.report.fired),
                    "retrained": r.retrained,
                    "promoted": r.promoted,
                }
                for r in self.records
            ]
        )


class _Replay:
    """State of one replay: lineages, revealed labels, trained challengers, timers."""

    def __init__(self, batches, inputs: ReplayInputs, trainer: Trainer, settings: ReplaySettings, progress, log):
        self.batches, self.inputs, self.trainer, self.settings = batches, inputs, trainer, settings
        self.progress, self.log = progress, log
        self.timer = StageTimer()
        self.lineages = {name: Lineage(name, inputs.champion) for name in settings.strategies}
        self.development_rate = class_ratio(inputs.base_train)
        self.revealed = pd.DataFrame()
        self.null_loss_sum, self.null_rows = 0.0, 0
        self.challengers: dict[str, Deployed] = {}  # by fingerprint of the production rows learned
        self.records: list[BatchRecord] = []

    def run(self) -> None:
        for batch in self.batches:
            rate = null_rate(self.revealed, self.development_rate)
            records, result = self.score(batch, rate)
            self.reveal(batch, result)
            for record in records:
                self.act(self.lineages[record.strategy], batch, record)
                with self.timer.stage("logging"):
                    self.log.child(record)
                self.records.append(record)
                self.progress(record.line(len(self.batches)))

    def score(self, batch: Batch, rate: float) -> tuple[list[BatchRecord], ApplicationResult]:
        records, drift, result = [], None, None
        for lineage in self.lineages.values():
            started = time.perf_counter()
            deployed = lineage.deployed
            if deployed.trained_through_batch >= batch.index:  # the loop's own guarantee, checked
                raise ReplayError(f"{lineage.strategy}: a model that learned batch {batch.index} cannot score it.")
            with self.timer.stage("scoring"):
                result = score_frame(batch.rows, deployed.model, source=batch.label)
            with self.timer.stage("estimation"):
                drift = drift_table(self.inputs.development, result.predictions) if drift is None else drift
                metrics, applicability = batch_metrics(result, self.inputs.development, drift, deployed, rate)
                report = triggers.evaluate_triggers(metrics, {names.TEST_LOG_LOSS: deployed.test_log_loss})
            self.account(lineage, batch, result, metrics, report)
            record = BatchRecord(
                lineage.strategy,
                batch.index,
                batch.label,
                batch.first_date,
                batch.last_date,
                deployed.trained_through_batch,
                deployed.description,
                metrics,
                applicability,
                report,
            )
            record.seconds = time.perf_counter() - started
            records.append(record)
        labelled = result.labelled
        if len(labelled):
            self.null_loss_sum += float(row_log_loss(labelled[config.TARGET], np.full(len(labelled), rate)).sum())
            self.null_rows += len(labelled)
        return records, result

    def account(self, lineage: Lineage, batch: Batch, result, metrics: dict, report) -> None:
        labelled = result.labelled
        if len(labelled):
            losses = row_log_loss(labelled[config.TARGET], labelled[config.PROBABILITY_COLUMN])
            lineage.loss_sum += float(losses.sum())
            lineage.rows += len(labelled)
        if names.ESTIMATION_ERROR_LOG_LOSS in metrics:
            lineage.estimation_errors.append(abs(metrics[names.ESTIMATION_ERROR_LOG_LOSS]))
        if report.any_fired:
            lineage.alerts.append(batch.index)
        if any(t.fired for t in report.triggers if t.name in LABEL_TRIGGERS):
            lineage.label_alerts.append(batch.index)

    def reveal(self, batch: Batch, result: ApplicationResult) -> None:
        """Batch ``t``'s labels become known: the rows it scored that carry a label."""
        if not len(result.labelled):
            return
        newly = labelled_production_rows(result.predictions).assign(**{BATCH_COLUMN: batch.index})
        self.revealed = newly if self.revealed.empty else pd.concat([self.revealed, newly], ignore_index=True)

    def act(self, lineage: Lineage, batch: Batch, record: BatchRecord) -> None:
        started = time.perf_counter()
        wanted, why = challenger_wanted(
            lineage.strategy, batch.index, len(self.batches), record.report, self.settings.schedule_every
        )
        record.reason = why
        if not wanted:
            return
        try:
            older, holdout = time_ordered_split(self.revealed, self.settings.holdout_fraction)
        except RetrainingError as exc:
            record.reason = f"{why}; no challenger: {exc}"
            return
        champion = lineage.deployed
        # The champion's learned rows are older than any later holdout; dropped anyway, to stay paired and fair.
        holdout = holdout[~champion.scoring.seen_mask(holdout[ID_COLUMN])]
        if len(holdout) < MIN_HOLDOUT_ROWS:
            record.reason = f"{why}; no challenger: {len(holdout)} holdout row(s), the gate needs {MIN_HOLDOUT_ROWS}"
            return
        challenger = self.challenger(older, holdout)
        with self.timer.stage("validation"):
            rates = {"holdout": class_ratio(older), "test": self.development_rate}
            figures = validate(champion.model, challenger.model, holdout, self.inputs.base_test, rates)
            promote, gate = promotion_decision(figures)
        lineage.retrains += 1
        record.retrained, record.validation = True, figures
        record.decision = "promote" if promote else "keep"
        record.reason = f"{why}. {gate}"
        if promote:
            record.promoted = True
            lineage.promotions += 1
            lineage.deployed = challenger
        record.seconds += time.perf_counter() - started

    def challenger(self, older: pd.DataFrame, holdout: pd.DataFrame) -> Deployed:
        """Trained on base_train plus ``older``; the same rows give the same (cached) challenger.

        Its estimator's reference is base_test plus ``holdout`` (the newest labels, never learned).
        """
        key = rows_fingerprint(older[[ID_COLUMN, *config.FEATURES, config.TARGET]])
        if key in self.challengers:
            return self.challengers[key]
        base_train = self.inputs.base_train
        extra = older[config.FEATURES + [config.TARGET]].astype(base_train.dtypes.to_dict())
        rows = pd.concat([base_train, extra], ignore_index=True)
        with self.timer.stage("training"):
            model, description = self.trainer(rows)
        through = int(older[BATCH_COLUMN].max())
        with self.timer.stage("estimation"):
            columns = config.FEATURES + [config.TARGET]
            reference = pd.concat([self.inputs.base_test[columns], holdout[columns]], ignore_index=True)
            scoring = calibrated_model(model, rows, reference, older[ID_COLUMN])
            loss = base_test_log_loss(model, self.inputs.base_test)
        deployed = Deployed(
            model,
            scoring,
            loss,
            through,
            f"challenger trained on base_train and {len(older)} production labels through batch {through} "
            f"({older['game_date'].max():%Y-%m-%d}): {description}",
        )
        self.challengers[key] = deployed
        return deployed

    def summary(self) -> ReplaySummary:
        strategies = {}
        for name, lineage in self.lineages.items():
            pooled = lineage.loss_sum / lineage.rows if lineage.rows else float("nan")
            null = self.null_loss_sum / self.null_rows if self.null_rows else float("nan")
            errors = lineage.estimation_errors
            strategies[name] = StrategySummary(
                name,
                pooled,
                lineage.retrains,
                lineage.promotions,
                float(np.mean(errors)) if errors else float("nan"),
                bool(pooled < null),
            )
        return ReplaySummary(
            strategies,
            self.null_loss_sum / self.null_rows if self.null_rows else float("nan"),
            self.null_rows,
            first_batch([i for lineage in self.lineages.values() for i in lineage.alerts]),
            first_batch([i for lineage in self.lineages.values() for i in lineage.label_alerts]),
            len(self.batches),
        )


def run_replay(
    batches: Sequence[Batch],
    inputs: ReplayInputs,
    trainer: Trainer,
    settings: ReplaySettings | None = None,
    progress: Callable[[str], None] = print,
    log: MlflowReplayLog | NullReplayLog | None = None,
) -> ReplayResult:
    """Replay ``batches`` under every strategy of ``settings``; log with ``log`` (default: nothing)."""
    settings = settings or ReplaySettings()
    log = log or NullReplayLog()
    if not batches:
        raise ReplayError("No batch to replay.")
    started = time.perf_counter()
    replay = _Replay(batches, inputs, trainer, settings, progress, log)
    params = {
        "prod_data": settings.prod_data or "in memory",
        "batching": settings.batching,
        "batches": str(len(batches)),
        "first_batch": batches[0].label,
        "last_batch": batches[-1].label,
        "strategies": ",".join(settings.strategies),
        "schedule_every": str(settings.schedule_every),
        "holdout_fraction": str(settings.holdout_fraction),
        "promotion_rule": PROMOTION_RULE,
        "seed": str(settings.seed),
        "fast": str(settings.fast),
        "champion_version": inputs.champion_version,
    }
    with log.parent(params):
        progress(
            f"Replaying {len(batches)} batches ({settings.batching}) under {', '.join(settings.strategies)}; "
            f"champion {inputs.champion.description}."
        )
        replay.run()
        summary = replay.summary()
        wall = time.perf_counter() - started
        seconds = dict(replay.timer.seconds)
        timing = {f"seconds_{stage}": value for stage, value in seconds.items()}
        timing["trainings_run"] = float(len(replay.challengers))
        log.summary({**summary.metrics(), **timing, "seconds_total": wall}, summary.tags(), summary.table())
        for line in summary.lines():
            progress(line)
    if log.run_id:
        progress(
            f"Replay logged to experiment {config.REPLAY_EXPERIMENT_NAME}, run "
            f"{config.REPLAY_RUN_NAMES['simulacao_operacao']} {log.run_id} ({wall:.1f} s)."
        )
    return ReplayResult(replay.records, summary, seconds, wall, log.run_id, len(replay.challengers))


def progress_writer(log_path: str | Path | None = None) -> Callable[[str], None]:
    """Print each line and, with ``log_path``, append it there too (run_all.py prints that file as it grows)."""
    path = Path(log_path) if log_path else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)

    def say(line: str) -> None:
        print(line, flush=True)
        if path is not None:
            with path.open("a") as output:
                output.write(line + "\n")

    return say
