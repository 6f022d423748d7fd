"""Replay production batch by batch, oldest first, under several ways of operating the model.

Each batch and strategy: score with the model in service, evaluate with its calculators, reveal
the labels, then act through the gate. A candidate judged on batch ``t`` learned only rows dated
before it; the winner is rebuilt on every row dated before ``t + 1``. ``Docs/Model/Retraining.md``
reports what the replay shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import read_table
from kobe_mlops.deployment.application import score_frame
from kobe_mlops.modeling import challengers
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.monitoring import calculators, gate, replay_timeline, triggers
from kobe_mlops.monitoring.application_run import measurable
from kobe_mlops.monitoring.calculators import Monitor, MonitoringReference, row_log_loss
from kobe_mlops.tracking import configure, invocation_id, names, reads, tracking_uri, use_project_store

NEVER, REACTIVE, SCHEDULED, CONTINUOUS = "never", "reactive", "scheduled", "continuous"
STRATEGIES = (NEVER, REACTIVE, SCHEDULED, CONTINUOUS)
SEASON_COLUMN, DATE_COLUMN, ID_COLUMN = "season", "game_date", "shot_id"
BOOTSTRAP_DRAWS = 2000  # seasons bootstrap of the pooled gain over the null model
STAGES = ("scoring", "evaluation", "training", "logging")
read_production = read_table  # the name notebook 05 and the benchmark read the production file by


class ReplayError(RuntimeError):
    """The replay cannot start or go on: one sentence saying why and what to do."""


# --- Batches ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    index: int  # 0-based, oldest first; shown 1-based
    label: str  # the season, or the date range of a batch of rows
    rows: pd.DataFrame  # every column, in date order

    @property
    def first_date(self) -> pd.Timestamp:
        return self.rows[DATE_COLUMN].min()

    @property
    def last_date(self) -> pd.Timestamp:
        return self.rows[DATE_COLUMN].max()


def plan_batches(production: pd.DataFrame, batch_rows: int | None = None, source: str = "production") -> list[Batch]:
    """Batches oldest first: one per season, or ``batch_rows`` rows in date order (then ``shot_id``)."""
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive number of rows, got {batch_rows}")
    if production.empty:
        raise ReplayError(f"{source} has no rows: there is nothing to replay.")
    for column in (DATE_COLUMN, ID_COLUMN):
        if column not in production:
            raise ReplayError(f"{source} has no {column} column: the replay orders and tracks shots by it.")
    dates = pd.to_datetime(production[DATE_COLUMN], errors="coerce", format="%Y-%m-%d")
    if dates.isna().any():
        first = production.loc[dates.isna(), DATE_COLUMN].iloc[0]
        raise ReplayError(
            f"{source}: {int(dates.isna().sum())} rows have no {DATE_COLUMN} in YYYY-MM-DD form (first: {first!r})."
        )
    ordered = production.assign(**{DATE_COLUMN: dates}).sort_values([DATE_COLUMN, ID_COLUMN], kind="stable")
    ordered = ordered.reset_index(drop=True)
    if batch_rows is not None:
        parts = [ordered.iloc[start : start + batch_rows] for start in range(0, len(ordered), batch_rows)]
        return [
            Batch(i, f"{rows[DATE_COLUMN].min():%Y-%m-%d} to {rows[DATE_COLUMN].max():%Y-%m-%d}", rows)
            for i, rows in enumerate(part.reset_index(drop=True) for part in parts)
        ]
    if SEASON_COLUMN not in ordered:
        raise ReplayError(f"{source} has no {SEASON_COLUMN} column: batch it by rows (run_all.py --replay-batch N).")
    seasons = ordered[SEASON_COLUMN].astype("string")
    if seasons.isna().any():
        raise ReplayError(f"{source}: {int(seasons.isna().sum())} rows have no {SEASON_COLUMN}; every row needs one.")
    labels = list(dict.fromkeys(seasons))  # in date order: a season's first game places it
    return [Batch(i, label, ordered[seasons == label].reset_index(drop=True)) for i, label in enumerate(labels)]


def batch_plan(batches: Sequence[Batch]) -> pd.DataFrame:
    """One row per batch (numbered from 1): rows, labelled rows, make rate, first and last date."""
    return pd.DataFrame(
        [
            {
                "batch": batch.index + 1,
                "label": batch.label,
                "rows": len(batch.rows),
                "labelled": int(batch.rows[config.TARGET].notna().sum()) if config.TARGET in batch.rows else 0,
                "make_rate": batch.rows[config.TARGET].mean() if config.TARGET in batch.rows else np.nan,
                "first_date": f"{batch.first_date:%Y-%m-%d}",
                "last_date": f"{batch.last_date:%Y-%m-%d}",
            }
            for batch in batches
        ]
    )


# --- Inputs -----------------------------------------------------------------------------------


def probabilities(estimator, rows: pd.DataFrame) -> np.ndarray:
    return ShotMadeModel(estimator).predict(None, rows[config.FEATURES])[config.PROBABILITY_COLUMN].to_numpy()


def reference_rows(frame: pd.DataFrame, estimator) -> pd.DataFrame:
    """Features, outcome and ``estimator``'s probability: the rows of a :class:`MonitoringReference`."""
    probability = probabilities(estimator, frame)
    return frame[[*config.FEATURES, config.TARGET]].assign(**{config.PROBABILITY_COLUMN: probability})


@dataclass
class Deployed:
    """A model in service: what scores, what it learned, and what normal looks like for it."""

    estimator: object  # scikit-learn classifier on the six features
    reference: MonitoringReference
    learned_through: int  # last batch whose labels it learned; -1: none
    description: str
    monitor: Monitor = field(init=False)

    def __post_init__(self):
        self.model = ShotMadeModel(self.estimator)
        self.monitor = Monitor(self.reference)

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        return self.model.predict(None, features)


@dataclass(frozen=True)
class ReplayInputs:
    development: pd.DataFrame  # labelled development rows with their game_date
    development_rate: float  # the make rate known before production: base_train's
    champion: Deployed
    champion_version: str = "none"


def missing_inputs(paths: config.WorkspacePaths) -> list[str]:
    """What the replay needs from a pipeline run and does not find (empty: ready)."""
    files = (paths.raw_file("dev"), paths.base_train, paths.base_test)
    missing = [str(path.relative_to(paths.root)) for path in files if not path.is_file()]
    if (client := reads.store_client()) is None or reads.version_by_alias(client) is None:
        missing.append(f"the registered champion {config.CHAMPION_URI}")
    return missing


def load_inputs(paths: config.WorkspacePaths) -> ReplayInputs:
    """The development rows and the registered champion (loaded once, by version, never modified)."""
    missing = missing_inputs(paths)
    if missing:
        raise ReplayError(
            f"The replay needs a pipeline run first: missing {', '.join(missing)} in {paths.root}. "
            "Run python run_all.py (add --data-source DIR without internet access)."
        )
    use_project_store()  # from notebooks/ too: the project's store, PyCaret's log routed
    client = reads.client()
    version = reads.version_by_alias(client)
    if len(reads.learned_shot_ids(client, version)):
        raise ReplayError(
            f"The champion (version {version.version}) learned labelled production rows: the replay starts "
            "from a model of development data only. Roll back to it first (python run_all.py --rollback)."
        )
    pyfunc = mlflow.pyfunc.load_model(f"models:/{config.REGISTERED_MODEL_NAME}/{version.version}")
    estimator = pyfunc.unwrap_python_model().pipeline
    base_test = pd.read_parquet(paths.base_test)
    reference = MonitoringReference(
        reference_rows(base_test, estimator), f"the champion's {len(base_test)} held-out development rows (base_test)"
    )
    description = (
        f"development champion ({config.REGISTERED_MODEL_NAME} version {version.version}; its random "
        "split saw 2PT shots of every season)"
    )
    champion = Deployed(estimator, reference, -1, description)
    development_rate = float(pd.read_parquet(paths.base_train)[config.TARGET].mean())
    development = challengers.development_rows(read_table(paths.raw_file("dev")))
    return ReplayInputs(development, development_rate, champion, version.version)


# --- Settings and the strategies' decisions ---------------------------------------------------


@dataclass(frozen=True)
class ReplaySettings:
    strategies: tuple[str, ...] = STRATEGIES
    schedule_every: int = config.REPLAY_SCHEDULE_EVERY
    batch_rows: int | None = None  # None: one batch per season
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


def gate_wanted(strategy: str, batch_index: int, fired: list[str], schedule_every: int) -> tuple[bool, str]:
    """Whether ``strategy`` runs the gate after batch ``batch_index`` (0-based), and why."""
    if strategy == NEVER:
        return False, "this strategy never retrains"
    if strategy == CONTINUOUS:
        return True, "the gate runs after every batch"
    if strategy == SCHEDULED:
        if (batch_index + 1) % schedule_every == 0:
            return True, f"calendar: the gate runs every {schedule_every} batches"
        return False, f"calendar: not due (every {schedule_every} batches)"
    calling = triggers.retraining_triggers(fired)  # reactive: what run_all.py --retrain acts on
    return (True, "fired: " + ", ".join(calling)) if calling else (False, "no label-based alert and few new labels")


# --- Records ----------------------------------------------------------------------------------


@dataclass
class BatchRecord:
    """What one strategy saw and did on one batch: one child run."""

    strategy: str
    batch: Batch
    deployed: Deployed
    table: pd.DataFrame  # the calculators' result table
    rows_input: int
    rows_scored: int
    graded_loss: np.ndarray  # per graded row, the model's log loss
    null_loss: np.ndarray  # ... the deployable null's
    fired: dict[str, bool]
    decision: str = "none"  # "promote <candidate>", "keep" or "none"
    reason: str = ""
    gate_figures: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    sampling_sd: float = float("nan")  # sd of the realized log loss from the outcomes' noise alone

    @property
    def promoted(self) -> bool:
        return self.decision.startswith("promote")

    @property
    def fired_names(self) -> list[str]:
        return [name for name, value in self.fired.items() if value]

    def estimate(self) -> tuple[float, float, float]:
        """``(lower, value, upper)`` of the graded rows' estimated log loss (NaN without one)."""
        rows = self.table.loc[self.table["metric"] == calculators.ESTIMATE_GRADED, ["lower", "value", "upper"]]
        return tuple(rows.iloc[0]) if len(rows) else (np.nan,) * 3

    def metrics(self) -> dict[str, float]:
        return measurable(
            {
                **calculators.table_metrics(self.table),
                names.ROWS_INPUT: self.rows_input,
                names.ROWS_SCORED: self.rows_scored,
                names.ROWS_REJECTED: self.rows_input - self.rows_scored,
                names.ROWS_EVALUATED: len(self.graded_loss),
                **{names.trigger_fired_metric(name): float(value) for name, value in self.fired.items()},
                names.RETRAINED: float(self.decision != "none"),
                names.PROMOTED: float(self.promoted),
                **self.gate_figures,
            }
        )

    def params(self) -> dict[str, str]:
        return {
            names.REPLAY_BATCH: self.batch.label,
            names.REPLAY_BATCH_NUMBER: str(self.batch.index + 1),
            names.TRAINED_THROUGH_BATCH: str(self.deployed.learned_through + 1),
            "batch_first_date": f"{self.batch.first_date:%Y-%m-%d}",
            "batch_last_date": f"{self.batch.last_date:%Y-%m-%d}",
        }

    def tags(self) -> dict[str, str]:
        return {
            names.REPLAY_STRATEGY_TAG: self.strategy,
            names.FIRED_TRIGGERS_TAG: ",".join(self.fired_names),
            names.DECISION_TAG: self.decision,
            names.REASON_TAG: self.reason[:5000],
            names.SCORING_MODEL_TAG: self.deployed.description[:5000],
            **calculators.monitoring_tags(self.table, self.deployed.monitor),  # as step 04 tags its run
        }

    def line(self, batch_count: int) -> str:
        """The progress line of this batch and strategy (batches numbered from 1)."""
        realized = "no labelled row"
        if len(self.graded_loss):
            realized = f"log loss {self.graded_loss.mean():.4f} (null {self.null_loss.mean():.4f})"
            lower, estimate, upper = self.estimate()
            if np.isfinite(estimate):
                realized += f", estimate {estimate:.4f} [{lower:.4f}, {upper:.4f}]"
        action = {"none": "no gate", "keep": "champion kept"}.get(
            self.decision, self.decision.replace("promote", "promoted")
        )
        return (
            f"[{self.batch.index + 1:>2}/{batch_count}] {self.batch.label:<10} {self.strategy:<10} "
            f"{self.rows_scored} scored | {realized} | {', '.join(self.fired_names) or 'no alert'} | {action} "
            f"({self.seconds:.1f} s)"
        )


# --- Summary ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategySummary:
    strategy: str
    log_loss: float  # pooled over every graded row
    vs_null: float  # pooled log loss minus the null model's
    vs_null_lower: float  # 95 % seasons bootstrap interval of vs_null
    vs_null_upper: float
    retrains: int  # times the gate ran (challengers trained)
    promotions: int
    estimation_error: float  # row-weighted mean absolute error of the estimate on graded rows
    previous_batch_error: float  # ... of last batch's realized log loss used as the forecast
    estimate_coverage: float  # share of labelled batches whose 95 % interval held the realized value
    estimation_error_drifted: float  # estimate's row-weighted error on batches where drift fired
    estimation_error_stable: float
    # What a perfect estimator would still miss: the outcomes' own noise, row-weighted like the error,
    # with the 95 % range its error would fall in over these batches.
    estimate_noise_floor: float
    estimate_noise_floor_lower: float
    estimate_noise_floor_upper: float

    @property
    def verdict(self) -> str:
        return replay_timeline.null_verdict(self.vs_null, self.vs_null_lower, self.vs_null_upper)


def _weighted_error(errors: list[tuple[int, float]]) -> float:
    rows = sum(n for n, _ in errors)
    return sum(n * abs(e) for n, e in errors) / rows if rows else float("nan")


def noise_floor(batches: list[tuple[int, float]]) -> tuple[float, float, float]:
    """``(expected, lower, upper)`` row-weighted absolute error of a perfect estimator over batches of
    ``(rows, sd of the realized log loss)``: each batch's error is normal with that sd (simulated)."""
    if not batches:
        return (float("nan"),) * 3
    rows, sd = np.array(batches, dtype=float).T
    draws = np.abs(np.random.default_rng(config.SEED).normal(0.0, sd, size=(BOOTSTRAP_DRAWS, len(sd))))
    errors = draws @ rows / rows.sum()
    expected = float(np.sqrt(2 / np.pi) * sd @ rows / rows.sum())
    return expected, *(float(q) for q in np.quantile(errors, [0.025, 0.975]))


def pooled_difference(sums: np.ndarray) -> tuple[float, float, float]:
    """``(difference, lower, upper)`` of two pooled log losses, from per-batch ``[loss sum of A, loss sum
    of B, rows]``: A minus B per row, with a 95 % interval from resampling whole batches."""
    if not len(sums):
        return (float("nan"),) * 3
    total = sums.sum(axis=0)
    draws = np.random.default_rng(config.SEED).integers(0, len(sums), size=(BOOTSTRAP_DRAWS, len(sums)))
    resampled = sums[draws].sum(axis=1)
    gains = (resampled[:, 0] - resampled[:, 1]) / resampled[:, 2]
    return float((total[0] - total[1]) / total[2]), *(float(q) for q in np.quantile(gains, [0.025, 0.975]))


def summarize(strategy: str, records: list[BatchRecord]) -> StrategySummary:
    labelled = [r for r in records if len(r.graded_loss)]
    sums = np.array([[r.graded_loss.sum(), r.null_loss.sum(), len(r.graded_loss)] for r in labelled]).reshape(-1, 3)
    log_loss = sums[:, 0].sum() / sums[:, 2].sum() if labelled else float("nan")
    vs_null, vs_null_lower, vs_null_upper = pooled_difference(sums)
    errors, previous, drifted, stable, covered, floors = [], [], [], [], [], []
    for before, record in zip([None, *labelled], labelled, strict=False):
        rows, realized = len(record.graded_loss), record.graded_loss.mean()
        if before is not None:
            previous.append((rows, before.graded_loss.mean() - realized))
        lower, estimate, upper = record.estimate()
        if not np.isfinite(estimate):
            continue
        errors.append((rows, estimate - realized))
        (drifted if record.fired.get(triggers.FEATURE_DRIFT) else stable).append(errors[-1])
        covered.append(lower <= realized <= upper)
        floors.append((rows, record.sampling_sd))
    return StrategySummary(
        strategy,
        float(log_loss),
        vs_null,
        vs_null_lower,
        vs_null_upper,
        sum(r.decision != "none" for r in records),
        sum(r.promoted for r in records),
        _weighted_error(errors),
        _weighted_error(previous),
        float(np.mean(covered)) if covered else float("nan"),
        _weighted_error(drifted),
        _weighted_error(stable),
        *noise_floor(floors),
    )


@dataclass
class ReplayResult:
    records: list[BatchRecord]
    strategies: dict[str, StrategySummary]
    log_loss_null: float
    seconds: dict[str, float]
    wall_seconds: float
    trainings: int
    run_id: str | None = None

    def table(self) -> pd.DataFrame:
        """One row per strategy: the replay's answer, with the seasons bootstrap interval."""
        return pd.DataFrame([asdict(summary) for summary in self.strategies.values()])

    def reactive_vs_scheduled(self) -> tuple[float, float, float]:
        """Reactive's pooled log loss minus scheduled's (same batches, same rows), with its 95 % interval."""
        pairs = [
            [a.graded_loss.sum(), b.graded_loss.sum(), len(a.graded_loss)]
            for a in self.records
            if a.strategy == REACTIVE and len(a.graded_loss)
            for b in self.records
            if b.strategy == SCHEDULED and b.batch.index == a.batch.index
        ]
        return pooled_difference(np.array(pairs).reshape(-1, 3))

    def metrics(self) -> dict[str, float]:
        figures = {names.REPLAY_POOLED_NULL_LOG_LOSS: self.log_loss_null, "trainings_run": float(self.trainings)}
        gap, lower, upper = self.reactive_vs_scheduled()
        name = names.REPLAY_REACTIVE_VS_SCHEDULED
        figures.update({name: gap, f"{name}_lower": lower, f"{name}_upper": upper})  # NaN (dropped) without both
        for name, summary in self.strategies.items():  # log_loss_reactive, retrains_reactive, ...
            for metric, value in asdict(summary).items():
                if metric != "strategy":
                    figures[names.strategy_metric(metric, name)] = value
        return measurable(figures)

    def lines(self) -> list[str]:
        def count(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        return [
            f"{s.strategy}: pooled log loss {s.log_loss:.4f}, {s.verdict}; {count(s.retrains, 'gate run')}, "
            f"{count(s.promotions, 'promotion')}; the estimate is off by {s.estimation_error:.4f} per row "
            f"(last season's loss as a forecast: {s.previous_batch_error:.4f}), its interval held the "
            f"realized value in {s.estimate_coverage:.0%} of batches"
            for s in self.strategies.values()
        ] + [f"Null model (the make rate known before each batch): {self.log_loss_null:.4f}."]


# --- The loop ---------------------------------------------------------------------------------


class _Replay:
    def __init__(self, batches: Sequence[Batch], inputs: ReplayInputs, settings: ReplaySettings, progress, log):
        self.batches, self.inputs, self.settings, self.progress, self.log = batches, inputs, settings, progress, log
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.deployed = {name: inputs.champion for name in settings.strategies}
        self.labels_at_gate = dict.fromkeys(settings.strategies, 0)  # labels known when each gate last ran
        self.known = pd.DataFrame()  # labelled production rows revealed so far
        self.recipes: dict[tuple[str, int], object] = {}  # (recipe, rows dated before batch) -> fitted
        # Each recipe's out-of-sample record: every batch scored by the fit on the rows dated before it.
        self.track = {name: pd.DataFrame() for name in challengers.RECIPES}
        self.records: list[BatchRecord] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def revealed(self, graded: pd.DataFrame) -> pd.DataFrame:
        """The labelled production rows known once ``graded``'s labels are revealed."""
        labelled = graded[[ID_COLUMN, DATE_COLUMN, *config.FEATURES, config.TARGET]]
        return labelled if self.known.empty else pd.concat([self.known, labelled], ignore_index=True)

    def learnable(self, before: pd.Timestamp, known: pd.DataFrame | None = None) -> pd.DataFrame:
        """Every labelled row dated before ``before``: development rows and ``known`` production labels."""
        known = self.known if known is None else known
        development = self.inputs.development
        development = development[development[DATE_COLUMN] < before].assign(**{challengers.PRODUCTION_COLUMN: False})
        if known.empty:
            return development.reset_index(drop=True)
        production = known[known[DATE_COLUMN] < before].assign(**{challengers.PRODUCTION_COLUMN: True})
        columns = [DATE_COLUMN, *config.FEATURES, config.TARGET, challengers.PRODUCTION_COLUMN]
        return pd.concat([development[columns], production[columns]], ignore_index=True)

    def run(self) -> None:
        for batch in self.batches:
            rate = float(self.known[config.TARGET].mean()) if len(self.known) else self.inputs.development_rate
            scored = [self.score(strategy, batch, rate) for strategy in self.settings.strategies]
            graded = scored[0][1]
            self.extend_track(batch, graded)
            for record, graded_rows in scored:
                self.act(record, graded_rows, batch)
                with self.stage("logging"):
                    if self.log:
                        self.log.child(record)
                self.records.append(record)
                self.progress(record.line(len(self.batches)))
            if len(graded):
                self.known = self.revealed(graded)

    def score(self, strategy: str, batch: Batch, rate: float) -> tuple[BatchRecord, pd.DataFrame]:
        started = time.perf_counter()
        deployed = self.deployed[strategy]
        if deployed.learned_through >= batch.index:  # the loop's own guarantee, checked
            raise ReplayError(f"{strategy}: a model that learned batch {batch.index + 1} cannot score it.")
        with self.stage("scoring"):
            predictions = score_frame(batch.rows, deployed, source=batch.label).predictions
        # Every labelled row is graded: the model learned nothing dated this late (checked above).
        graded = predictions[predictions[config.TARGET].notna()].reset_index(drop=True)
        graded = graded.assign(**{DATE_COLUMN: pd.to_datetime(graded[DATE_COLUMN])})
        with self.stage("evaluation"):
            table = deployed.monitor.evaluate(predictions, graded, rate, batch.label)
        outcome, probability = graded[config.TARGET].to_numpy(), graded[config.PROBABILITY_COLUMN].to_numpy()
        labelled = len(self.known) + len(graded)  # once this batch's labels are revealed
        fresh = triggers.new_labels_trigger(labelled, self.labels_at_gate[strategy])
        record = BatchRecord(
            strategy,
            batch,
            deployed,
            table,
            len(batch.rows),
            len(predictions),
            row_log_loss(outcome, probability),
            row_log_loss(outcome, rate),
            {**triggers.fired_triggers(table), fresh.name: fresh.fired},
        )
        if deployed.monitor.usable and len(graded):
            variance = deployed.monitor.estimated.row_terms(probability)[1].sum()
            record.sampling_sd = float(np.sqrt(variance) / len(graded))
        record.seconds = time.perf_counter() - started
        return record, graded

    def extend_track(self, batch: Batch, graded: pd.DataFrame) -> None:
        """Score batch ``t`` with each recipe fitted before it: the record a promoted recipe starts from."""
        if graded.empty or self.settings.strategies == (NEVER,):
            return
        for name, model in self.recipes_before(batch, self.learnable(batch.first_date)).items():
            scored = reference_rows(graded, model)
            self.track[name] = calculators.newest_chunks(self.track[name], scored.assign(chunk=batch.label))

    def recipes_before(self, batch: Batch, rows: pd.DataFrame) -> dict[str, object]:
        """Each recipe fitted on ``rows``, those dated before ``batch``: none without enough production labels."""
        if not challengers.enough_to_learn(rows[rows[challengers.PRODUCTION_COLUMN]]):
            return {}
        return {name: self.recipe(name, batch.index, rows) for name in challengers.RECIPES}

    def recipe(self, name: str, before_batch: int, rows: pd.DataFrame):
        key = (name, before_batch)
        if key not in self.recipes:  # every strategy shares one fit of a recipe on the same rows
            with self.stage("training"):
                self.recipes[key] = challengers.RECIPES[name](rows, pd.to_datetime(rows[DATE_COLUMN]).max())
        return self.recipes[key]

    def act(self, record: BatchRecord, graded: pd.DataFrame, batch: Batch) -> None:
        started = time.perf_counter()
        deployed = self.deployed[record.strategy]
        wanted, why = gate_wanted(record.strategy, batch.index, record.fired_names, self.settings.schedule_every)
        last = batch.index + 1 == len(self.batches)
        record.reason = f"{why}; last batch: nothing left to score" if wanted and last else why
        if not wanted or last or len(graded) < 2:
            self.deployed[record.strategy] = self.rolled(deployed, graded, batch)
            return
        self.labels_at_gate[record.strategy] = len(self.known) + len(graded)
        candidates = self.candidates(deployed, batch)
        scores = {name: probabilities(model, graded) for name, model in candidates.items()}
        decision = gate.decide(graded[config.TARGET], {gate.CHAMPION: graded[config.PROBABILITY_COLUMN], **scores})
        record.gate_figures, record.reason = decision.figures, f"{why}. {decision.reason}"
        record.decision = f"promote {decision.winner}" if decision.promote else "keep"
        self.deployed[record.strategy] = (
            self.rebuilt(decision.winner, deployed, graded, batch, candidates[decision.winner])
            if decision.promote
            else self.rolled(deployed, graded, batch)
        )
        record.seconds += time.perf_counter() - started

    def candidates(self, deployed: Deployed, batch: Batch) -> dict[str, object]:
        rows = self.learnable(batch.first_date)
        built = self.recipes_before(batch, rows)
        production = rows[rows[challengers.PRODUCTION_COLUMN]]
        return {**built, **challengers.champion_alternatives(deployed.estimator, deployed.reference.own, production)}

    def rolled(self, deployed: Deployed, graded: pd.DataFrame, batch: Batch) -> Deployed:
        return deployed if graded.empty else replace(deployed, reference=deployed.reference.rolled(graded, batch.label))

    def rebuilt(self, winner: str, champion: Deployed, graded, batch: Batch, candidate) -> Deployed:
        """The winning ``candidate`` rebuilt on every row dated before the next batch."""
        next_batch = self.batches[batch.index + 1]
        rows = self.learnable(next_batch.first_date, self.revealed(graded))
        if winner in challengers.RECIPES:
            estimator, track = self.recipe(winner, batch.index + 1, rows), self.track[winner]
            source = (
                f"the {winner} recipe's out-of-sample scores on {len(track)} rows (each batch by the fit before it)"
            )
            reference = MonitoringReference(track[calculators.REFERENCE_COLUMNS], source)
        else:
            window = champion.reference.rolled(graded, batch.label).own
            estimator = challengers.rebuild(winner, rows, champion.estimator, window)
            source = f"the {winner} candidate's out-of-sample scores on batch {batch.index + 1} ({batch.label})"
            reference = MonitoringReference(reference_rows(graded, candidate), source)
        learned = rows[challengers.PRODUCTION_COLUMN]
        description = (
            f"{winner}: {challengers.describe(estimator)} on {int(learned.sum())} production "
            f"and {int((~learned).sum())} development labels dated before {next_batch.first_date:%Y-%m-%d}"
        )
        return Deployed(estimator, reference, batch.index, description)


def run_replay(
    batches: Sequence[Batch],
    inputs: ReplayInputs,
    settings: ReplaySettings,
    progress: Callable[[str], None] = print,
    log: MlflowReplayLog | None = None,
) -> ReplayResult:
    """Replay ``batches`` under every strategy of ``settings``; log with ``log`` (default: nothing)."""
    if not batches:
        raise ReplayError("No batch to replay.")
    started = time.perf_counter()
    replay = _Replay(batches, inputs, settings, progress, log)
    params = {
        names.PROD_DATA: settings.prod_data or "in memory",
        "batching": settings.batching,
        "batches": str(len(batches)),
        "first_batch": batches[0].label,
        "last_batch": batches[-1].label,
        "strategies": ",".join(settings.strategies),
        "schedule_every": str(settings.schedule_every),
        "gate_rule": gate.RULE,
        names.CHAMPION_VERSION: inputs.champion_version,
    }
    with log.parent(params) if log else nullcontext():
        progress(
            f"Replaying {len(batches)} batches ({settings.batching}) under {', '.join(settings.strategies)}; "
            f"every strategy starts from the {inputs.champion.description}."
        )
        replay.run()
        by_strategy = {
            name: summarize(name, [r for r in replay.records if r.strategy == name]) for name in settings.strategies
        }
        graded_null = [r.null_loss for r in replay.records if r.strategy == settings.strategies[0]]
        null = float(np.concatenate(graded_null).mean()) if graded_null else float("nan")
        wall = time.perf_counter() - started
        result = ReplayResult(replay.records, by_strategy, null, dict(replay.seconds), wall, len(replay.recipes))
        if log:
            timing = {f"seconds_{stage}": value for stage, value in result.seconds.items()}
            log.summary({**result.metrics(), **timing, "seconds_total": result.wall_seconds}, result.table())
        for line in result.lines():
            progress(line)
    if log:
        result.run_id = log.run_id
        progress(
            f"Replay logged to experiment {config.REPLAY_EXPERIMENT_NAME}, run "
            f"{config.REPLAY_RUN_NAMES['simulacao_operacao']} {log.run_id} ({result.wall_seconds:.1f} s)."
        )
    return result


# --- Logging ----------------------------------------------------------------------------------


class MlflowReplayLog:
    """One ``SimulacaoOperacao`` parent run in ``kobe-shot-replay``, one nested child per strategy and batch."""

    def __init__(self):
        self.run_id: str | None = None

    @contextmanager
    def parent(self, params: dict[str, str]) -> Iterator[None]:
        self.experiment_id = configure(config.REPLAY_EXPERIMENT_NAME)
        self.client = MlflowClient(tracking_uri())
        tags = {config.INVOCATION_TAG: invocation_id(), "kobe.step": "simulacao_operacao"}
        name = config.REPLAY_RUN_NAMES["simulacao_operacao"]
        with mlflow.start_run(run_name=name, experiment_id=self.experiment_id, tags=tags) as run:
            self.run_id = run.info.run_id
            mlflow.log_params(params)
            yield

    def child(self, record: BatchRecord) -> None:
        """A ``PipelineAplicacao`` run written in three calls (create, one batch, end): a replay logs many."""
        tags = {"mlflow.parentRunId": self.run_id, config.INVOCATION_TAG: invocation_id(), "kobe.step": "aplicacao"}
        run = self.client.create_run(
            self.experiment_id, run_name=config.RUN_NAMES["aplicacao"], tags={**tags, **record.tags()}
        )
        stamp = int(time.time() * 1000)
        self.client.log_batch(
            run.info.run_id,
            metrics=[Metric(key, value, stamp, 0) for key, value in record.metrics().items()],
            params=[Param(key, value) for key, value in record.params().items()],
        )
        self.client.set_terminated(run.info.run_id)

    def summary(self, metrics: dict[str, float], table: pd.DataFrame) -> None:
        mlflow.log_metrics(metrics)
        mlflow.log_table(table, artifact_file=names.REPLAY_SUMMARY_ARTIFACT)


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
