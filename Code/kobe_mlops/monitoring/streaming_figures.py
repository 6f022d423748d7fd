"""The figures of a ``PipelineAplicacao`` run, folded batch by batch: batch observers for monitoring.

Each class here follows the protocol of :mod:`kobe_mlops.deployment.batches` (``update`` per
scored batch, ``merge`` of copies, ``result``), so the pandas engine feeds it in one process and
Spark folds one copy per partition and merges them on the driver. State is plain numbers and
numpy arrays: nothing grows with the number of rows, only with the number of *distinct* values
of a variable, which is bounded (below).

**Exact or approximate.**

* Sums (row counts, log loss, Brier score, confusion matrix at the threshold, make rates, mean
  probability, the CBPE estimate's sums) are exact; their only difference from the whole-frame
  figures is the order of floating-point additions (relative differences around 1e-15; the
  tests hold them to 1e-9).
* **PSI** needs bin counts only, and **KS**, **AUC** and the **median** need the whole sample's
  order: all four come from :class:`ValueCounts`, the count of rows per distinct value (for
  AUC, per distinct probability and label). That *is* the sample, up to order, so the figures
  equal the whole-frame ones (KS's p-value reconstructs the sample where scipy's exact method
  needs it, at most 10,000 rows, and uses scipy's own asymptotic formula above that).
  It is bounded by the number of distinct values: the course features are rounded (latitude and
  longitude to 4 decimals inside the contract's court box: at most 9,001 and 5,501 values;
  the whole-number features a dozen each) and a tree's or a logistic regression's probabilities
  take one value per distinct feature row. Past :data:`MAX_DISTINCT` distinct values (8 MiB per
  column of counts) a counter switches, for good, to :data:`GRID_CELLS` equal cells over the
  variable's contract range (a documented sketch): KS is then off by at most the largest
  share of rows in one cell (``ks_max_error`` in the drift table), AUC by at most half the
  share of positive-negative pairs that share a cell (``auc_max_error``), and PSI, the median
  and the mean by at most a cell's width in where a value falls. ``exact`` says which held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from scipy import stats

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES
from kobe_mlops.deployment.batches import FilteredObserver, ScoredBatch
from kobe_mlops.monitoring.drift import DISCRETE_MAX_VALUES, PSI_BINS, psi_verdict
from kobe_mlops.monitoring.estimation import ExpectedSums

MAX_DISTINCT = 1 << 20  # distinct values kept exactly per counter
GRID_CELLS = 1 << 20  # cells of the fallback sketch over the variable's range
MAX_DECIMALS = 4  # rounded values (up to 4 decimals: the course's coordinates) are counted by integer key
MAX_DECIMAL_KEYS = 1 << 20  # ... when their keys span at most this many integers in a batch
KS_EXACT_MAX_ROWS = 10_000  # scipy's ks_2samp computes an exact p-value up to this sample size
_PSI_EPSILON = 1e-6  # as in monitoring.drift
_LOG_EPSILON = np.finfo(float).eps  # sklearn's log_loss clips probabilities to [eps, 1 - eps]


# --- Counts per distinct value -------------------------------------------------------------------


@dataclass
class ValueCounts:
    """Rows per distinct value of one variable, in ``columns`` classes (1: plain counts; 2: by 0/1 label).

    Exact while at most :data:`MAX_DISTINCT` distinct values were seen; then a fixed grid of
    :data:`GRID_CELLS` cells over ``[low, high]`` (values are cell centres from then on).
    """

    low: float
    high: float
    columns: int = 1
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    counts: np.ndarray | None = None  # (distinct values or cells, columns) int64
    exact: bool = True
    decimals: int = 0  # the decimals the last batch needed (tried first on the next)

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
            self.counts += self._grid_counts(values, classes)
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
        """``(keys, scale)`` with ``keys / scale == values`` exactly, for values with at most
        :data:`MAX_DECIMALS` decimals spanning few keys; None otherwise (then values are hashed)."""
        for decimals in dict.fromkeys([self.decimals, *range(MAX_DECIMALS + 1)]):
            scale = 10.0**decimals
            keys = np.rint(values * scale)
            if keys.max() - keys.min() <= MAX_DECIMAL_KEYS and np.array_equal(keys / scale, values):
                self.decimals = decimals
                return keys.astype("int64"), scale
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

    def _grid_counts(self, values: np.ndarray, classes: np.ndarray) -> np.ndarray:
        flat = np.bincount(self._cells(values) * self.columns + classes, minlength=GRID_CELLS * self.columns)
        return flat.reshape(GRID_CELLS, self.columns)

    def _to_grid(self) -> None:
        grid = np.zeros((GRID_CELLS, self.columns), dtype="int64")
        np.add.at(grid, self._cells(self.values), self.counts)
        self.values, self.counts, self.exact = self._centres(), grid, False

    def _centres(self) -> np.ndarray:
        return self.low + (np.arange(GRID_CELLS) + 0.5) * (self.high - self.low) / GRID_CELLS

    def merge(self, other: ValueCounts) -> ValueCounts:
        if self.exact and other.exact:
            if len(other.values):
                self._combine(other.values, other.counts)
            return self
        if self.exact:
            self._to_grid()
        if other.exact:
            other = ValueCounts(self.low, self.high, self.columns, other.values.copy(), other.counts.copy())
            other._to_grid()
        self.counts += other.counts
        return self

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """``(distinct values ascending, their counts)`` (cell centres of non-empty cells on the grid)."""
        seen = self.counts.sum(axis=1) > 0
        values, counts = self.values[seen], self.counts[seen]
        order = np.argsort(values, kind="stable")
        return values[order], counts[order]

    def largest_share(self) -> float:
        """The largest share of rows in one distinct value (or cell): the grid's KS error bound."""
        totals = self.counts.sum(axis=1)
        return float(totals.max() / totals.sum()) if totals.sum() else 0.0


# --- Statistics from counts ---------------------------------------------------------------------


def ks_from_counts(reference: np.ndarray, values: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """``scipy.stats.ks_2samp(reference, sample)`` (two-sided, method 'auto') for the sample that
    has ``counts[i]`` rows of ``values[i]`` (ascending)."""
    ref_values, ref_counts = np.unique(reference, return_counts=True)
    n1, n2 = int(ref_counts.sum()), int(counts.sum())
    if max(n1, n2) <= KS_EXACT_MAX_ROWS:  # scipy's exact p-value: hand it the sample itself
        result = stats.ks_2samp(reference, np.repeat(values, counts))
        return float(result.statistic), float(result.pvalue)
    grid = np.union1d(ref_values, values)
    cdf1 = np.cumsum(_counts_on(grid, ref_values, ref_counts)) / n1
    cdf2 = np.cumsum(_counts_on(grid, values, counts)) / n2
    differences = cdf1 - cdf2
    smallest, largest = np.clip(-differences.min(), 0, 1), differences.max()
    statistic = smallest if smallest > largest else largest
    m, n = sorted([float(n1), float(n2)], reverse=True)
    pvalue = stats.distributions.kstwo.sf(statistic, np.round(m * n / (m + n)))
    return float(statistic), float(np.clip(pvalue, 0, 1))


def _counts_on(grid: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``counts`` placed on ``grid`` (every value is on it), zero elsewhere."""
    placed = np.zeros(len(grid), dtype="int64")
    placed[np.searchsorted(grid, values)] = counts
    return placed


def psi_from_counts(reference: np.ndarray, values: np.ndarray, counts: np.ndarray, bins: int = PSI_BINS) -> float:
    """:func:`kobe_mlops.monitoring.drift.population_stability_index` of the counted sample."""
    distinct = np.unique(reference)
    if len(distinct) <= DISCRETE_MAX_VALUES:
        categories = np.union1d(distinct, values)
        ref_counts = np.array([(reference == value).sum() for value in categories], dtype=float)
        cur_counts = _counts_on(categories, values, counts).astype(float)
    else:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref_counts = np.histogram(reference, edges)[0].astype(float)
        cur_counts = np.histogram(values, edges, weights=counts.astype(float))[0]
    ref_share = np.clip(ref_counts / ref_counts.sum(), _PSI_EPSILON, None)
    cur_share = np.clip(cur_counts / cur_counts.sum(), _PSI_EPSILON, None)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def _weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """pandas' median of the sample (the mean of the two middle rows when their number is even)."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    low = values[np.searchsorted(ends, (total - 1) // 2, side="right")]
    high = values[np.searchsorted(ends, total // 2, side="right")]
    return float((low + high) / 2) if low != high else float(low)


# --- Observers ---------------------------------------------------------------------------------


class FeatureDrift:
    """Development vs production per feature, as :func:`kobe_mlops.monitoring.drift.compare_features`.

    Keeps the development sample (the reference, small) and a :class:`ValueCounts` of the scored
    rows per feature. ``result()`` is the same table, plus ``exact`` and ``ks_max_error``.
    """

    def __init__(self, development: pd.DataFrame, features: list[str] = config.FEATURES):
        self.features = list(features)
        self.reference = {name: development[name].dropna().to_numpy(dtype="float64") for name in self.features}
        self.counts = {
            name: ValueCounts(FEATURE_RULES[name].minimum, FEATURE_RULES[name].maximum) for name in self.features
        }

    def update(self, batch: ScoredBatch) -> None:
        if not batch.rows_scored:
            return
        for name in self.features:
            values = batch.values(name)
            self.counts[name].add(values[~np.isnan(values)])

    def merge(self, other: FeatureDrift) -> FeatureDrift:
        for name in self.features:
            self.counts[name].merge(other.counts[name])
        return self

    def result(self) -> pd.DataFrame:
        rows = []
        for name in self.features:
            reference = pd.Series(self.reference[name])
            counter = self.counts[name]
            values, counts = counter.sorted()
            counts = counts[:, 0]
            total = int(counts.sum())
            if total:
                mean = float(np.sum(values * counts) / total)
                std = math.sqrt(np.sum(counts * (values - mean) ** 2) / (total - 1)) if total > 1 else float("nan")
                ks, pvalue = ks_from_counts(self.reference[name], values, counts)
                psi = psi_from_counts(self.reference[name], values, counts)
                median = _weighted_median(values, counts)
            else:
                mean = std = ks = pvalue = psi = median = float("nan")
            rows.append(
                {
                    "feature": name,
                    "mean_dev": reference.mean(),
                    "mean_prod": mean,
                    "std_dev": reference.std(),
                    "std_prod": std,
                    "median_dev": reference.median(),
                    "median_prod": median,
                    "psi": psi,
                    "ks_statistic": ks,
                    "ks_pvalue": pvalue,
                    "verdict": psi_verdict(psi) if total else "no scored rows",
                    "exact": counter.exact,
                    "ks_max_error": 0.0 if counter.exact else counter.largest_share(),
                }
            )
        return pd.DataFrame(rows)

    def distribution(self, name: str) -> pd.DataFrame:
        """Rows per value of a feature in development and production (``base``, ``name``, ``rows``): for plots."""
        dev_values, dev_counts = np.unique(self.reference[name], return_counts=True)
        values, counts = self.counts[name].sorted()
        return pd.concat(
            [
                pd.DataFrame({"base": "development", name: dev_values, "rows": dev_counts}),
                pd.DataFrame({"base": "production", name: values, "rows": counts[:, 0]}),
            ],
            ignore_index=True,
        )


class LabelledMetrics:
    """The labelled production metrics of :func:`kobe_mlops.monitoring.application_run.labelled_metrics`.

    Sums over the labelled scored rows (log loss, Brier, confusion matrix at the threshold,
    positives, probability) and a :class:`ValueCounts` of the probability by label for AUC.
    """

    def __init__(self, development_rate: float, threshold: float = config.DECISION_THRESHOLD):
        self.development_rate = development_rate
        self.threshold = threshold
        self.rows = 0
        self.positives = 0
        self.probability_sum = 0.0
        self.log_loss_sum = 0.0
        self.brier_sum = 0.0
        self.true_positives = 0
        self.false_positives = 0
        self.probabilities = ValueCounts(0.0, 1.0, columns=2)

    def update(self, batch: ScoredBatch) -> None:
        if not batch.rows_scored or not batch.has(config.TARGET):
            return
        truth = batch.values(config.TARGET)
        labelled = ~np.isnan(truth)
        if not labelled.any():
            return
        truth = truth[labelled].astype("int64")
        probability = batch.values(config.PROBABILITY_COLUMN)[labelled]
        clipped = np.clip(probability, _LOG_EPSILON, 1 - _LOG_EPSILON)
        made = truth == 1
        predicted = probability >= self.threshold
        self.rows += len(truth)
        self.positives += int(made.sum())
        self.probability_sum += float(probability.sum())
        self.log_loss_sum -= float(np.log(np.where(made, clipped, 1 - clipped)).sum())
        self.brier_sum += float(np.sum((probability - truth) ** 2))
        self.true_positives += int((predicted & made).sum())
        self.false_positives += int((predicted & ~made).sum())
        self.probabilities.add(probability, truth)

    def merge(self, other: LabelledMetrics) -> LabelledMetrics:
        for name in ["rows", "positives", "probability_sum", "log_loss_sum", "brier_sum"]:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.true_positives += other.true_positives
        self.false_positives += other.false_positives
        self.probabilities.merge(other.probabilities)
        return self

    def auc(self) -> tuple[float, float]:
        """``(AUC, largest possible error)``: the Mann-Whitney statistic over the probability counts."""
        _, counts = self.probabilities.sorted()
        negatives, positives = counts[:, 0], counts[:, 1]
        pairs = int(negatives.sum()) * int(positives.sum())
        if not pairs:
            return float("nan"), 0.0
        below = np.concatenate([[0], np.cumsum(negatives)[:-1]])
        # Integer arithmetic: twice the number of (positive above negative) pairs, ties counting one.
        twice = 2 * int(np.dot(positives, below)) + int(np.dot(positives, negatives))
        tied = int(np.dot(positives, negatives))
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
        fn = positives - tp
        both_classes = positives > 0 and negatives > 0
        auc, auc_error = self.auc()
        metrics = {
            "log_loss": self.log_loss_sum / n,
            "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
            "auc": auc if both_classes else float("nan"),
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
    clipped = min(max(rate, _LOG_EPSILON), 1 - _LOG_EPSILON)
    return {
        "log_loss": -(positives * math.log(clipped) + negatives * math.log(1 - clipped)) / n,
        "f1": 2 * positives / (2 * positives + negatives) if positives else 0.0,
        "auc": 0.5 if positives and negatives else float("nan"),
        "precision": positives / n,
        "recall": 1.0,
        "brier": (positives * (1 - rate) ** 2 + negatives * rate**2) / n,
        "accuracy": positives / n,
    }


@dataclass
class ScoreSummary:
    """Mean probability and predicted make rate over every scored row."""

    rows: int = 0
    probability_sum: float = 0.0
    predicted_makes: int = 0

    def update(self, batch: ScoredBatch) -> None:
        if batch.rows_scored:
            self.rows += batch.rows_scored
            self.probability_sum += float(batch.values(config.PROBABILITY_COLUMN).sum())
            self.predicted_makes += int(batch.values(config.PREDICTION_COLUMN).sum())

    def merge(self, other: ScoreSummary) -> ScoreSummary:
        self.rows += other.rows
        self.probability_sum += other.probability_sum
        self.predicted_makes += other.predicted_makes
        return self

    def result(self) -> dict[str, float]:
        nan = float("nan")
        return {
            "mean_probability": self.probability_sum / self.rows if self.rows else nan,
            "predicted_make_rate": self.predicted_makes / self.rows if self.rows else nan,
        }


# --- Rows the scoring model learned ---------------------------------------------------------------


@dataclass
class _Learned:
    """Whether each scored row's ``shot_id`` is among the (sorted) ids the scoring model learned."""

    learned_shot_ids: np.ndarray

    def learned(self, batch: ScoredBatch) -> np.ndarray:
        if not len(self.learned_shot_ids) or not batch.has("shot_id"):
            return np.zeros(batch.rows_scored, dtype=bool)
        ids = batch.values("shot_id").astype("int64")
        where = np.minimum(np.searchsorted(self.learned_shot_ids, ids), len(self.learned_shot_ids) - 1)
        return self.learned_shot_ids[where] == ids

    @staticmethod
    def labelled(batch: ScoredBatch) -> np.ndarray:
        if not batch.has(config.TARGET):
            return np.zeros(batch.rows_scored, dtype=bool)
        return ~np.isnan(batch.values(config.TARGET))


class NotLearned(_Learned):
    """Keep the scored rows whose shot the scoring model did not learn (a :class:`FilteredObserver` ``keep``)."""

    def __call__(self, batch: ScoredBatch) -> np.ndarray:
        return ~self.learned(batch)


class GradedRows(_Learned):
    """Keep the labelled scored rows the scoring model did not learn: the rows its metrics are graded on."""

    def __call__(self, batch: ScoredBatch) -> np.ndarray:
        return self.labelled(batch) & ~self.learned(batch)


class LearnedLabelledRows(_Learned):
    """Counts the labelled scored rows whose shot the scoring model learned (never graded)."""

    def __init__(self, learned_shot_ids: np.ndarray):
        super().__init__(np.sort(np.asarray(learned_shot_ids, dtype="int64")))
        self.rows = 0

    def update(self, batch: ScoredBatch) -> None:
        if batch.rows_scored:
            self.rows += int((self.labelled(batch) & self.learned(batch)).sum())

    def merge(self, other: LearnedLabelledRows) -> LearnedLabelledRows:
        self.rows += other.rows
        return self

    def result(self) -> int:
        return self.rows


class EstimateSums:
    """The CBPE estimate's sums (:class:`kobe_mlops.monitoring.estimation.ExpectedSums`) over every scored
    row, and over the rows ``graded`` keeps (the labelled rows the model did not learn), from one
    conversion of each batch."""

    def __init__(self, estimator, graded):
        self.estimator = estimator
        self.graded = graded
        self.all_rows = ExpectedSums()
        self.graded_rows = ExpectedSums()

    def update(self, batch: ScoredBatch) -> None:
        if not batch.rows_scored:
            return
        frame = batch.predictions.select([*config.FEATURES, config.PROBABILITY_COLUMN]).to_pandas()
        every = self.estimator.sums(frame)
        self.all_rows = self.all_rows + every
        keep = self.graded(batch)
        if keep.all():
            self.graded_rows = self.graded_rows + every
        elif keep.any():  # usually most rows are graded: subtract the others' sums (fewer rows)
            others = self.estimator.sums(frame[~keep])
            graded = ExpectedSums(*(getattr(every, f.name) - getattr(others, f.name) for f in fields(ExpectedSums)))
            self.graded_rows = self.graded_rows + graded

    def merge(self, other: EstimateSums) -> EstimateSums:
        self.all_rows = self.all_rows + other.all_rows
        self.graded_rows = self.graded_rows + other.graded_rows
        return self

    def result(self) -> tuple[ExpectedSums, ExpectedSums]:
        """``(sums over every scored row, sums over the graded rows)``."""
        return self.all_rows, self.graded_rows


# --- All the figures of an application run -------------------------------------------------------


class ApplicationFigures:
    """Every figure a ``PipelineAplicacao`` run logs, as one observer (its members fed together).

    ``learned_shot_ids`` and ``estimator`` come from the scoring model
    (:class:`kobe_mlops.monitoring.scoring_model.ScoringModel`); without them, every labelled
    row is graded and no estimate is made.
    """

    def __init__(self, development: pd.DataFrame, learned_shot_ids=(), estimator=None):
        learned = np.sort(np.asarray(learned_shot_ids, dtype="int64"))
        self.drift = FeatureDrift(development)
        self.scores = ScoreSummary()
        self.labelled = FilteredObserver(LabelledMetrics(float(development[config.TARGET].mean())), NotLearned(learned))
        self.learned_rows = LearnedLabelledRows(learned)
        self.estimate = EstimateSums(estimator, GradedRows(learned)) if estimator is not None else None

    def _members(self) -> list:
        members = [self.drift, self.scores, self.labelled, self.learned_rows]
        return members + ([self.estimate] if self.estimate is not None else [])

    def update(self, batch: ScoredBatch) -> None:
        for member in self._members():
            member.update(batch)

    def merge(self, other: ApplicationFigures) -> ApplicationFigures:
        for mine, theirs in zip(self._members(), other._members(), strict=True):
            mine.merge(theirs)
        return self

    def result(self) -> dict:
        return {
            "drift": self.drift.result(),
            "scores": self.scores.result(),
            "labelled": self.labelled.result(),
            "rows_seen_in_training": self.learned_rows.result(),
            "estimate": self.estimate.result() if self.estimate is not None else None,
        }
