"""The figures of a ``PipelineAplicacao`` run, folded batch by batch by batch observers.

Each class has ``update`` per scored batch, ``merge`` of copies and ``result``
(:mod:`kobe_mlops.deployment.batches`): the pandas engine feeds one, Spark merges one per partition.
State is sums and counts; AUC counts each distinct probability per label (:class:`ProbabilityCounts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kobe_mlops import config
from kobe_mlops.deployment.batches import ScoredBatch
from kobe_mlops.monitoring import calculators
from kobe_mlops.monitoring.calculators import ChunkSums, Monitor, realized_sums, result_table, row_log_loss
from kobe_mlops.tracking import names

MAX_DISTINCT = 1 << 20  # distinct probabilities kept exactly for the AUC
GRID_CELLS = 1 << 20  # past that, equal cells over [0, 1]
COUNTED_DECIMALS = 4  # probabilities counted for the dashboard's tables: bounded whatever the file's size
SCORE_BINS = 10**COUNTED_DECIMALS + 1


# --- Rows per probability ------------------------------------------------------------------------


@dataclass
class ProbabilityCounts:
    """Rows per distinct probability and label (misses, makes): the AUC's exact sample. Past
    :data:`MAX_DISTINCT` values, for good, a grid of :data:`GRID_CELLS` equal cells over [0, 1]."""

    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype="int64"))
    exact: bool = True

    def add(self, probability: np.ndarray, outcome: np.ndarray) -> None:
        made = np.asarray(outcome, dtype="int64")
        if not self.exact:
            self.counts += np.bincount(_cells(probability) * 2 + made, minlength=2 * GRID_CELLS).reshape(-1, 2)
            return
        codes, uniques = pd.factorize(np.asarray(probability, dtype="float64"))
        self._combine(uniques, np.bincount(codes * 2 + made, minlength=2 * len(uniques)).reshape(-1, 2))

    def _combine(self, values: np.ndarray, counts: np.ndarray) -> None:
        if len(self.values):
            codes, values = pd.factorize(np.concatenate([self.values, values]))
            stacked = np.concatenate([self.counts, counts])
            summed = [np.bincount(codes, weights=stacked[:, j], minlength=len(values)) for j in (0, 1)]
            counts = np.column_stack(summed).astype("int64")
        self.values, self.counts = values, counts
        if len(self.values) > MAX_DISTINCT:
            self._to_grid()

    def _to_grid(self) -> None:
        grid = np.zeros((GRID_CELLS, 2), dtype="int64")
        np.add.at(grid, _cells(self.values), self.counts)
        self.values, self.counts, self.exact = (np.arange(GRID_CELLS) + 0.5) / GRID_CELLS, grid, False

    def merge(self, other: ProbabilityCounts) -> ProbabilityCounts:
        if self.exact and other.exact:
            if len(other.values):
                self._combine(other.values, other.counts)
            return self
        if self.exact:
            self._to_grid()
        if other.exact:
            np.add.at(self.counts, _cells(other.values), other.counts)  # what its grid would hold
        else:
            self.counts += other.counts
        return self

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """``(distinct values ascending, their counts)`` (cell centres of non-empty cells on the grid)."""
        seen = self.counts.sum(axis=1) > 0
        values, counts = self.values[seen], self.counts[seen]
        order = np.argsort(values, kind="stable")
        return values[order], counts[order]


def _cells(probability: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(np.asarray(probability) * GRID_CELLS), 0, GRID_CELLS - 1).astype("int64")


class MonitorFigures:
    """The calculators' :class:`~kobe_mlops.monitoring.calculators.ChunkSums`: drift and the estimate
    over every scored row, realized figures over the labelled rows whose shot is not ``learned``."""

    def __init__(self, monitor: Monitor, learned: LearnedShots, null_rate: float):
        self.monitor, self.learned, self.null_rate = monitor, learned, null_rate
        self.sums: ChunkSums | None = None

    def update(self, batch: ScoredBatch, rows: np.ndarray | None = None) -> ChunkSums | None:
        """Fold a batch (``rows``: its graded rows, when the caller has them); the batch's sums."""
        if not batch.rows_scored:
            return None
        scored = {name: batch.values(name) for name in [*config.FEATURES, config.PROBABILITY_COLUMN]}
        rows = _labelled(batch) & ~self.learned(batch) if rows is None else rows
        target = batch.values(config.TARGET) if batch.has(config.TARGET) else np.full(batch.rows_scored, np.nan)
        graded = {config.PROBABILITY_COLUMN: scored[config.PROBABILITY_COLUMN][rows], config.TARGET: target[rows]}
        sums = self.monitor.sums(scored, graded, self.null_rate, rows)
        self._fold(sums)
        return sums

    def _fold(self, sums: ChunkSums | None) -> None:
        if sums is not None:
            self.sums = sums if self.sums is None else self.sums + sums

    def merge(self, other: MonitorFigures) -> MonitorFigures:
        self._fold(other.sums)
        return self

    def result(self, chunk: str = "production file") -> pd.DataFrame:
        if self.sums is None:
            return result_table([])
        return self.monitor.table(self.sums, chunk)


def _add(mine, theirs, fields: list[str]):
    for name in fields:
        setattr(mine, name, getattr(mine, name) + getattr(theirs, name))
    return mine


_SUMS = ["rows", "positives", "true_positives", "false_positives", "probability_sum", "log_loss_sum", "brier_sum"]


@dataclass
class LabelledMetrics:
    """The labelled production metrics (those of :func:`~kobe_mlops.modeling.metrics.evaluate_probabilities`)
    from sums over the labelled rows and a :class:`ProbabilityCounts` for AUC."""

    development_rate: float
    threshold: float = config.DECISION_THRESHOLD
    rows: int = 0
    positives: int = 0
    true_positives: int = 0
    false_positives: int = 0
    probability_sum: float = 0.0
    log_loss_sum: float = 0.0
    brier_sum: float = 0.0
    probabilities: ProbabilityCounts = field(default_factory=ProbabilityCounts)

    def update(self, batch: ScoredBatch, rows: np.ndarray | None = None, realized: np.ndarray | None = None) -> None:
        """Fold a batch's labelled ``rows`` (all by default); ``realized``: their
        :func:`~kobe_mlops.monitoring.calculators.realized_sums` when the caller has them, whose
        count, makes, probability and log-loss sums are these figures' (each row's loss computed once)."""
        rows = _labelled(batch) if rows is None else rows
        if not rows.any():
            return
        truth, probability = batch.values(config.TARGET)[rows], batch.values(config.PROBABILITY_COLUMN)[rows]
        if realized is None:
            realized = realized_sums(probability, truth, self.development_rate)
        shared = [calculators.ROWS, calculators.LOSS, calculators.MAKES, calculators.PROBABILITY]
        count, log_loss_sum, makes, probability_sum = realized[shared]
        made = truth == 1
        predicted = probability >= self.threshold
        self.rows += int(count)
        self.positives += int(makes)
        self.probability_sum += float(probability_sum)
        self.log_loss_sum += float(log_loss_sum)
        self.brier_sum += float(np.sum((probability - truth) ** 2))
        self.true_positives += int((predicted & made).sum())
        self.false_positives += int((predicted & ~made).sum())
        self.probabilities.add(probability, truth)

    def merge(self, other: LabelledMetrics) -> LabelledMetrics:
        self.probabilities.merge(other.probabilities)
        return _add(self, other, _SUMS)

    def auc(self) -> tuple[float, float]:
        """``(AUC, largest possible error)``: the Mann-Whitney statistic over the probability counts."""
        _, counts = self.probabilities.sorted()
        negatives, positives = counts[:, 0], counts[:, 1]
        pairs = int(negatives.sum()) * int(positives.sum())
        if not pairs:
            return float("nan"), 0.0
        below = np.concatenate([[0], np.cumsum(negatives)[:-1]])
        # Integer arithmetic: twice the number of (positive above negative) pairs, ties counting one.
        tied = int(np.dot(positives, negatives))
        twice = 2 * int(np.dot(positives, below)) + tied
        return twice / (2 * pairs), (0.0 if self.probabilities.exact else tied / (2 * pairs))

    def result(self) -> dict[str, float]:
        """``metrics`` (``log_loss``, ``f1``, ...), ``baseline`` (the same for a constant at the development
        rate), ``null_log_loss`` (a constant at these rows' own rate), ``observed_make_rate``,
        ``mean_probability``, ``rows`` and ``auc_max_error``; empty without labelled rows."""
        if not self.rows:
            return {}
        n, positives = self.rows, self.positives
        negatives = n - positives
        tp, fp = self.true_positives, self.false_positives
        auc, auc_error = self.auc()  # NaN without both classes
        metrics = {
            "log_loss": self.log_loss_sum / n,
            "f1": 2 * tp / (tp + fp + positives) if tp else 0.0,  # false negatives: positives - tp
            "auc": auc,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / positives if positives else 0.0,
            "brier": self.brier_sum / n,
            "accuracy": (tp + negatives - fp) / n,
        }
        observed = positives / n
        return {
            "metrics": metrics,
            "baseline": _constant_metrics(positives, negatives, self.development_rate),
            "null_log_loss": _constant_metrics(positives, negatives, observed)["log_loss"],
            "observed_make_rate": observed,
            "mean_probability": self.probability_sum / n,
            "rows": n,
            "auc_max_error": auc_error,
        }


def _constant_metrics(positives: int, negatives: int, rate: float) -> dict[str, float]:
    """:func:`kobe_mlops.modeling.metrics.baseline_metrics` from the class counts."""
    n = positives + negatives
    return {
        "log_loss": float(positives * row_log_loss(1, rate) + negatives * row_log_loss(0, rate)) / n,
        "f1": 2 * positives / (2 * positives + negatives) if positives else 0.0,
        "auc": 0.5 if positives and negatives else float("nan"),
        "precision": positives / n,
        "recall": 1.0 if positives else 0.0,  # as scikit-learn's zero_division=0 gives it
        "brier": (positives * (1 - rate) ** 2 + negatives * rate**2) / n,
        "accuracy": positives / n,
    }


@dataclass
class ScoreSummary:
    """Mean probability and predicted make rate over every scored row, and its rows per probability
    rounded to :data:`COUNTED_DECIMALS` (:data:`SCORE_BINS` values: the dashboard's score histogram)."""

    rows: int = 0
    probability_sum: float = 0.0
    predicted_makes: int = 0
    rounded: np.ndarray = field(default_factory=lambda: np.zeros(SCORE_BINS, dtype="int64"))

    def update(self, batch: ScoredBatch) -> None:
        if batch.rows_scored:
            probability = batch.values(config.PROBABILITY_COLUMN)
            self.rows += batch.rows_scored
            self.probability_sum += float(probability.sum())
            self.predicted_makes += int(batch.values(config.PREDICTION_COLUMN).sum())
            keys = np.rint(probability * 10**COUNTED_DECIMALS).astype("int64")
            self.rounded += np.bincount(keys, minlength=SCORE_BINS)

    def merge(self, other: ScoreSummary) -> ScoreSummary:
        return _add(self, other, ["rows", "rounded", "probability_sum", "predicted_makes"])

    def result(self) -> dict[str, float]:
        nan = float("nan")
        return {
            "mean_probability": self.probability_sum / self.rows if self.rows else nan,
            "predicted_make_rate": self.predicted_makes / self.rows if self.rows else nan,
        }


def _labelled(batch: ScoredBatch) -> np.ndarray:
    if not batch.has(config.TARGET):
        return np.zeros(batch.rows_scored, dtype=bool)
    return ~np.isnan(batch.values(config.TARGET))


@dataclass
class LearnedShots:
    """Which scored rows' shots the scoring model learned: never graded."""

    shot_ids: np.ndarray

    def __call__(self, batch: ScoredBatch) -> np.ndarray:
        if not len(self.shot_ids) or not batch.has("shot_id"):
            return np.zeros(batch.rows_scored, dtype=bool)
        return np.isin(batch.values("shot_id").astype("int64"), self.shot_ids)


# --- All the figures of an application run -------------------------------------------------------


class ApplicationFigures:
    """Every figure a ``PipelineAplicacao`` run logs, as one observer: ``monitor`` the scoring model's
    calculators, ``null_rate`` the make rate known before the file, ``learned_shot_ids`` rows never graded.
    Each graded row's log loss is computed once, by the calculators, whose sums the labelled metrics take."""

    def __init__(self, monitor: Monitor, null_rate: float, learned_shot_ids=()):
        self.learned = LearnedShots(np.asarray(learned_shot_ids, dtype="int64"))
        self.monitor = MonitorFigures(monitor, self.learned, null_rate)
        self.scores = ScoreSummary()
        self.labelled = LabelledMetrics(null_rate)
        self.learned_rows = 0  # labelled rows whose shot the scoring model learned: never graded

    def update(self, batch: ScoredBatch) -> None:
        self.scores.update(batch)
        if not batch.rows_scored:
            return
        labelled = _labelled(batch)
        learned = labelled & self.learned(batch)
        graded = labelled & ~learned
        self.learned_rows += int(learned.sum())
        self.labelled.update(batch, graded, self.monitor.update(batch, graded).realized)

    def merge(self, other: ApplicationFigures) -> ApplicationFigures:
        for member in ("monitor", "scores", "labelled"):
            getattr(self, member).merge(getattr(other, member))
        self.learned_rows += other.learned_rows
        return self

    def page_tables(self) -> dict[str, pd.DataFrame]:
        """The tables the dashboard draws (artifact name: table), each bounded whatever the file's size:
        scored and graded rows per rounded probability, and rows per drift bin beside the reference's."""
        seen = np.flatnonzero(self.scores.rounded)
        scores = pd.DataFrame({"probability": seen / 10**COUNTED_DECIMALS, "rows": self.scores.rounded[seen]})
        tables = {names.SCORE_COUNTS_ARTIFACT: scores}
        values, counts = self.labelled.probabilities.sorted()
        if len(values):
            graded = pd.DataFrame({"probability": values.round(COUNTED_DECIMALS), "misses": counts[:, 0]})
            graded["makes"] = counts[:, 1]
            tables[names.GRADED_SCORE_COUNTS_ARTIFACT] = graded.groupby("probability", as_index=False).sum()
        monitor, sums = self.monitor.monitor, self.monitor.sums
        if monitor.usable and sums is not None and sums.drift:
            tables[names.DRIFT_DISTRIBUTIONS_ARTIFACT] = monitor.drift.distributions(sums.drift)
        return tables

    def result(self, chunk: str = "production") -> dict:
        return {
            "table": self.monitor.result(chunk),
            "scores": self.scores.result(),
            "labelled": self.labelled.result(),
            "rows_seen_in_training": self.learned_rows,
        }
