"""The figures of a ``PipelineAplicacao`` run, folded batch by batch by batch observers.

Each class has ``update`` per scored batch, ``merge`` of copies and ``result``
(:mod:`kobe_mlops.deployment.batches`): the pandas engine feeds one, Spark merges one per partition.
State is sums and counts; AUC counts each distinct probability per label (:class:`ValueCounts`).
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

MAX_DISTINCT = 1 << 20  # distinct values kept exactly per counter
GRID_CELLS = 1 << 20  # cells of the fallback sketch over the variable's range
MAX_DECIMALS = 4  # rounded values (up to 4 decimals: the course's coordinates) are counted by integer key
MAX_DECIMAL_KEYS = 1 << 20  # ... when their keys span at most this many integers in a batch
COUNTED_DECIMALS = 4  # probabilities counted for the dashboard's tables: bounded whatever the file's size


# --- Counts per distinct value -------------------------------------------------------------------


@dataclass
class ValueCounts:
    """Rows per distinct value of one variable, in ``columns`` classes (2: by 0/1 label); past
    :data:`MAX_DISTINCT` values, a grid of :data:`GRID_CELLS` cells over ``[low, high]``."""

    low: float
    high: float
    columns: int = 1
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray | None = None  # (distinct values or cells, columns) int64
    exact: bool = True
    decimals: int = 0  # the decimals the last batch needed (tried first on the next; -1: hashed)

    def __post_init__(self) -> None:
        if self.counts is None:
            self.counts = np.zeros((0, self.columns), dtype="int64")

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    def add(self, values: np.ndarray, classes: np.ndarray | None = None) -> None:
        """Count ``values`` (``classes``: each value's column, 0 or 1, when counting by label)."""
        values = np.asarray(values, dtype="float64")
        classes = np.zeros(len(values), dtype="int64") if classes is None else np.asarray(classes, dtype="int64")
        if not len(values):
            return
        if not self.exact:
            flat = np.bincount(self._cells(values) * self.columns + classes, minlength=GRID_CELLS * self.columns)
            self.counts += flat.reshape(GRID_CELLS, self.columns)
            return
        decimal = self._decimal_keys(values)
        if decimal is not None:  # rounded values: count integer keys, no hashing
            keys, scale = decimal
            low, span = int(keys.min()), int(keys.max() - keys.min()) + 1
            flat = np.bincount((keys - low) * self.columns + classes, minlength=span * self.columns)
            counts = flat.reshape(span, self.columns)
            seen = np.flatnonzero(counts.sum(axis=1))
            self._combine((low + seen) / scale, counts[seen])
            return
        codes, uniques = pd.factorize(values)
        counts = np.bincount(codes * self.columns + classes, minlength=len(uniques) * self.columns)
        self._combine(uniques, counts.reshape(-1, self.columns))

    def _decimal_keys(self, values: np.ndarray) -> tuple[np.ndarray, float] | None:
        """``(keys, scale)`` with ``keys / scale == values`` exactly, for values with few decimals
        spanning few keys; None otherwise (then values are hashed)."""
        if self.decimals < 0:  # the last batch was hashed: so are the next (same counts either way)
            return None
        for decimals in dict.fromkeys([self.decimals, *range(MAX_DECIMALS + 1)]):
            scale = 10.0**decimals
            keys = np.rint(values * scale)
            if keys.max() - keys.min() <= MAX_DECIMAL_KEYS and np.array_equal(keys / scale, values):
                self.decimals = decimals
                return keys.astype("int64"), scale
        self.decimals = -1
        return None

    def _combine(self, values: np.ndarray, counts: np.ndarray) -> None:
        if len(self.values):
            codes, uniques = pd.factorize(np.concatenate([self.values, values]))
            stacked = np.concatenate([self.counts, counts])
            counts = np.column_stack(
                [np.bincount(codes, weights=stacked[:, j], minlength=len(uniques)) for j in range(self.columns)]
            ).astype("int64")
            values = uniques
        self.values, self.counts = np.asarray(values, dtype="float64"), counts
        if len(self.values) > MAX_DISTINCT:
            self._to_grid()

    def _cells(self, values: np.ndarray) -> np.ndarray:
        scaled = np.floor((values - self.low) / (self.high - self.low) * GRID_CELLS)
        return np.clip(scaled, 0, GRID_CELLS - 1).astype("int64")

    def _to_grid(self) -> None:
        grid = np.zeros((GRID_CELLS, self.columns), dtype="int64")
        np.add.at(grid, self._cells(self.values), self.counts)
        centres = self.low + (np.arange(GRID_CELLS) + 0.5) * (self.high - self.low) / GRID_CELLS
        self.values, self.counts, self.exact = centres, grid, False

    def merge(self, other: ValueCounts) -> ValueCounts:
        if self.exact and other.exact:
            if len(other.values):
                self._combine(other.values, other.counts)
            return self
        if self.exact:
            self._to_grid()
        if other.exact:
            np.add.at(self.counts, self._cells(other.values), other.counts)  # what its grid would hold
        else:
            self.counts += other.counts
        return self

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """``(distinct values ascending, their counts)`` (cell centres of non-empty cells on the grid)."""
        seen = self.counts.sum(axis=1) > 0
        values, counts = self.values[seen], self.counts[seen]
        order = np.argsort(values, kind="stable")
        return values[order], counts[order]


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
    from sums over the labelled rows and a :class:`ValueCounts` of the probability by label for AUC."""

    development_rate: float
    threshold: float = config.DECISION_THRESHOLD
    rows: int = 0
    positives: int = 0
    true_positives: int = 0
    false_positives: int = 0
    probability_sum: float = 0.0
    log_loss_sum: float = 0.0
    brier_sum: float = 0.0
    probabilities: ValueCounts = field(default_factory=lambda: ValueCounts(0.0, 1.0, columns=2))

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
    rounded to :data:`COUNTED_DECIMALS` (at most 10,001 values: the dashboard's score histogram)."""

    rows: int = 0
    probability_sum: float = 0.0
    predicted_makes: int = 0
    probabilities: ValueCounts = field(default_factory=lambda: ValueCounts(0.0, 1.0))

    def update(self, batch: ScoredBatch) -> None:
        if batch.rows_scored:
            probability = batch.values(config.PROBABILITY_COLUMN)
            self.rows += batch.rows_scored
            self.probability_sum += float(probability.sum())
            self.predicted_makes += int(batch.values(config.PREDICTION_COLUMN).sum())
            self.probabilities.add(np.round(probability, COUNTED_DECIMALS))

    def merge(self, other: ScoreSummary) -> ScoreSummary:
        self.probabilities.merge(other.probabilities)
        return _add(self, other, ["rows", "probability_sum", "predicted_makes"])

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
    Each batch's learned and graded rows are found once, and each graded row's log loss is computed
    once (by the calculators, whose sums the labelled metrics take)."""

    def __init__(self, monitor: Monitor, null_rate: float, learned_shot_ids=()):
        self.learned = LearnedShots(np.asarray(learned_shot_ids, dtype="int64"))
        self.monitor = MonitorFigures(monitor, self.learned, null_rate)
        self.scores = ScoreSummary()
        self.labelled = LabelledMetrics(null_rate)
        self.learned_rows = 0  # labelled rows whose shot the scoring model learned: never graded

    def _members(self) -> list:
        return [self.monitor, self.scores, self.labelled]

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
        for mine, theirs in zip(self._members(), other._members(), strict=True):
            mine.merge(theirs)
        self.learned_rows += other.learned_rows
        return self

    def page_tables(self) -> dict[str, pd.DataFrame]:
        """The tables the dashboard draws (artifact name: table), each bounded whatever the file's size:
        scored and graded rows per rounded probability, and rows per drift bin beside the reference's."""
        values, counts = self.scores.probabilities.sorted()
        tables = {names.SCORE_COUNTS_ARTIFACT: pd.DataFrame({"probability": values, "rows": counts[:, 0]})}
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
