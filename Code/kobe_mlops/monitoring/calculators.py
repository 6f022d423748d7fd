"""Monitoring calculators, NannyML's shape: ``fit`` on a reference, one result table per chunk.

The table's columns are ``chunk, metric, value, lower, upper, alert, rows``. Every threshold comes
from the statistic's own noise at the chunk's size, so a 16-row season and a 500-row one are
judged at the same false-alarm rate (``Docs/Model/Monitoring.md`` explains each figure).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats
from sklearn.linear_model import LogisticRegression

from kobe_mlops import config
from kobe_mlops.tracking import names

RESULT_COLUMNS = ["chunk", "metric", "value", "lower", "upper", "alert", "rows"]
# Chance of a false alarm per chunk for a family of figures (Bonferroni splits drift's six).
FALSE_ALARM_RATE = 0.05
BAND_Z = float(stats.norm.ppf(1 - FALSE_ALARM_RATE / 2))  # two-sided 95 % bands and intervals
# Fewer reference rows set no threshold and calibrate no estimate (a tag says so instead).
MIN_REFERENCE_ROWS = 100
# About three seasons of shots: enough for a calibration map and a drift threshold, recent enough
# to follow the season-to-season make rate.
REFERENCE_WINDOW_ROWS = 1000
PSI_BINS = 10
DISCRETE_MAX_VALUES = 15
PSI_PSEUDO_COUNT = 0.5  # Jeffreys smoothing: an empty bin costs a little, never ln(1e-6)
NULL_DRAWS = 400  # simulated no-drift chunks per feature and size
PROBABILITY_EPSILON = np.finfo(float).eps  # clipped like sklearn's log_loss


def _clipped(probability) -> np.ndarray:
    return np.clip(np.asarray(probability, dtype=float), PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)


def row_log_loss(outcome, probability) -> np.ndarray:
    """Each row's log loss; their mean is the log loss of the rows."""
    y = np.asarray(outcome, dtype=float)
    p = _clipped(probability)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def result_row(chunk: str, metric: str, value, lower=np.nan, upper=np.nan, alert=False, rows: int = 0) -> dict:
    values = (chunk, metric, float(value), float(lower), float(upper), bool(alert), int(rows))
    return dict(zip(RESULT_COLUMNS, values, strict=True))


def result_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


# --- Reference ---------------------------------------------------------------------------------


REFERENCE_COLUMNS = [*config.FEATURES, config.PROBABILITY_COLUMN, config.TARGET]


@dataclass
class MonitoringReference:
    """Rows a model scored and never learned (features, probability, outcome): the ``initial`` rows it
    brings into service until it graded :data:`MIN_REFERENCE_ROWS` of its ``own`` (its newest chunks)."""

    initial: pd.DataFrame
    source: str  # one line: where the initial rows come from
    own: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*REFERENCE_COLUMNS, "chunk"]))

    @property
    def rows(self) -> pd.DataFrame:
        return self.own if len(self.own) >= MIN_REFERENCE_ROWS else self.initial

    @property
    def description(self) -> str:
        if len(self.own) >= MIN_REFERENCE_ROWS:
            return f"the newest {len(self.own)} labelled rows the model scored and never learned"
        return self.source

    @property
    def usable(self) -> bool:
        return len(self.rows) >= MIN_REFERENCE_ROWS and self.rows[config.TARGET].nunique() == 2

    @property
    def problem(self) -> str:
        """Why no threshold or estimate can be set from this reference ('' when usable)."""
        if self.usable:
            return ""
        return (
            f"the reference ({self.description}) has {len(self.rows)} labelled rows: at least "
            f"{MIN_REFERENCE_ROWS}, with makes and misses, set a threshold or calibrate an estimate"
        )

    def rolled(self, graded: pd.DataFrame, chunk: str) -> MonitoringReference:
        """This reference once ``graded`` (rows the model just graded in ``chunk``) joins its window."""
        return MonitoringReference(self.initial, self.source, newest_chunks(self.own, graded.assign(chunk=chunk)))


def newest_chunk_names(sizes: pd.Series) -> pd.Index:
    """Of the chunks ``sizes`` counts (rows per chunk, oldest first), the newest holding at least
    :data:`REFERENCE_WINDOW_ROWS` rows: a chunk is never cut, so a season keeps its playoff games."""
    newest_first = sizes[::-1].cumsum()
    return newest_first.index[: int(np.searchsorted(newest_first.to_numpy(), REFERENCE_WINDOW_ROWS)) + 1]


def newest_chunks(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`newest_chunk_names` of ``older`` followed by ``newer``."""
    columns = [*REFERENCE_COLUMNS, "chunk"]
    window = pd.concat([older[columns], newer[columns]], ignore_index=True) if len(older) else newer[columns]
    sizes = window.groupby("chunk", sort=False).size()  # in the order the chunks first appear
    return window[window["chunk"].isin(newest_chunk_names(sizes))].reset_index(drop=True)


# --- Feature drift -----------------------------------------------------------------------------


@dataclass
class _Bins:
    categories: np.ndarray | None  # discrete feature: the reference's values (others share one bin)
    edges: np.ndarray | None  # continuous feature: reference quantiles, open at both ends

    def counts(self, values: np.ndarray) -> np.ndarray:
        values = values[~np.isnan(values)]
        if self.categories is not None:
            position = np.minimum(np.searchsorted(self.categories, values), len(self.categories) - 1)
            known = self.categories[position] == values
            counts = np.bincount(position[known], minlength=len(self.categories))
            return np.append(counts, (~known).sum()).astype(float)
        # np.histogram's bins ([low, high), open at both ends), by one binary search per value.
        inner = self.edges[1:-1]
        return np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1).astype(float)

    def values(self) -> np.ndarray:
        """A representative value per bin (the "other values" bin of a discrete feature has none)."""
        if self.categories is not None:
            return self.categories
        inner = self.edges[1:-1]
        if len(inner) == 1:
            return np.array([inner[0] - 0.5, inner[0] + 0.5])
        ends = [inner[0] - (inner[1] - inner[0]) / 2, inner[-1] + (inner[-1] - inner[-2]) / 2]
        return np.concatenate([[ends[0]], (inner[:-1] + inner[1:]) / 2, [ends[1]]])


def quantile_edges(values: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Bin edges at the quantiles of ``values``, open at both ends."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def _shares(counts: np.ndarray) -> np.ndarray:
    smoothed = counts + PSI_PSEUDO_COUNT
    return smoothed / smoothed.sum(axis=-1, keepdims=True)


def psi_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray:
    """Population stability index of smoothed bin shares (works row-wise on stacked counts)."""
    reference, current = _shares(reference_counts), _shares(current_counts)
    return np.sum((current - reference) * np.log(current / reference), axis=-1)


class FeatureDrift:
    """PSI per feature against the reference; each threshold is the PSI no-drift chunks of the same size reach."""

    def fit(self, reference: MonitoringReference) -> FeatureDrift:
        self.bins, self.reference_counts = {}, {}
        for feature in config.FEATURES:
            values = reference.rows[feature].to_numpy(dtype=float)
            known = values[~np.isnan(values)]
            distinct = np.unique(known)
            bins = _Bins(distinct, None) if len(distinct) <= DISCRETE_MAX_VALUES else _Bins(None, quantile_edges(known))
            self.bins[feature], self.reference_counts[feature] = bins, bins.counts(values)
        self._thresholds: dict[tuple[str, int], float] = {}
        return self

    def counts(self, frame) -> dict[str, np.ndarray]:
        """Bin counts of a chunk (a DataFrame, or columns as arrays): batches fold by summing them."""
        return {name: self.bins[name].counts(np.asarray(frame[name], dtype=float)) for name in config.FEATURES}

    def threshold(self, feature: str, rows: int) -> float:
        """The (1 - rate / features) quantile of PSI between two no-drift samples of these sizes."""
        key = (feature, rows)
        if key not in self._thresholds:
            counts = self.reference_counts[feature]
            shares = counts / counts.sum()
            rng = np.random.default_rng(config.SEED)
            reference = rng.multinomial(int(counts.sum()), shares, size=NULL_DRAWS)
            current = rng.multinomial(rows, shares, size=NULL_DRAWS)
            quantile = 1 - FALSE_ALARM_RATE / len(config.FEATURES)
            self._thresholds[key] = float(np.quantile(psi_from_counts(reference, current), quantile))
        return self._thresholds[key]

    def from_counts(self, counts: dict[str, np.ndarray], chunk: str) -> list[dict]:
        rows = []
        for feature in config.FEATURES:
            size = int(counts[feature].sum())
            if size == 0:
                continue
            value = float(psi_from_counts(self.reference_counts[feature], counts[feature]))
            upper = self.threshold(feature, size)
            rows.append(result_row(chunk, f"psi_{feature}", value, 0.0, upper, value > upper, size))
        return rows

    def calculate(self, frame: pd.DataFrame, chunk: str) -> list[dict]:
        return self.from_counts(self.counts(frame), chunk)

    def distributions(self, counts: dict[str, np.ndarray]) -> pd.DataFrame:
        """Rows per bin of each feature, the reference's and a chunk's ``counts``, at each bin's
        representative value: what the PSI compares (``feature, base, value, rows``)."""
        frames = []
        for feature in config.FEATURES:
            values = self.bins[feature].values()
            for base, rows in (("reference", self.reference_counts[feature]), ("production", counts[feature])):
                frame = {"feature": feature, "base": base, "value": values, "rows": rows[: len(values)].astype("int64")}
                frames.append(pd.DataFrame(frame))
        return pd.concat(frames, ignore_index=True)


# --- Realized performance (needs labels) ------------------------------------------------------


# Positions in :func:`realized_sums`' array, for every reader of it.
ROWS, LOSS, NULL_LOSS, DIFFERENCE, DIFFERENCE_SQUARED, MAKES, PROBABILITY, VARIANCE = range(8)


def realized_sums(probability, outcome, null_rate: float) -> np.ndarray:
    """Additive sums of graded rows: rows, model loss, null loss, the paired difference and its
    square, outcomes, probabilities and their Bernoulli variance."""
    outcome = np.asarray(outcome, dtype=float)
    probability = np.asarray(probability, dtype=float)
    model = row_log_loss(outcome, probability)
    difference = model - row_log_loss(outcome, null_rate)
    return np.array(
        [
            len(outcome),
            model.sum(),
            (model - difference).sum(),
            difference.sum(),
            (difference**2).sum(),
            outcome.sum(),
            probability.sum(),
            (probability * (1 - probability)).sum(),
        ]
    )


class RealizedPerformance:
    """Log loss on graded rows, beside the reference's noise band and the deployable null."""

    def fit(self, reference: MonitoringReference) -> RealizedPerformance:
        losses = row_log_loss(reference.rows[config.TARGET], reference.rows[config.PROBABILITY_COLUMN])
        self.reference_mean, self.reference_sd = float(losses.mean()), float(losses.std(ddof=1))
        return self

    def band(self, rows: int) -> tuple[float, float]:
        half = BAND_Z * self.reference_sd / np.sqrt(rows)
        return self.reference_mean - half, self.reference_mean + half


def realized_rows(sums: np.ndarray, chunk: str, realized: RealizedPerformance | None) -> list[dict]:
    """Log loss (with the reference band when there is one), the deployable null, the paired
    difference with its 95 % interval (alert: worse than the null), the make rate against the
    band calibrated probabilities put it in (alert: outside)."""
    n = int(sums[ROWS])
    if n == 0:
        return []
    value = sums[LOSS] / n
    lower, upper = realized.band(n) if realized is not None else (np.nan, np.nan)
    rows = [
        result_row(chunk, "log_loss", value, lower, upper, realized is not None and value > upper, n),
        result_row(chunk, names.NULL_LOG_LOSS, sums[NULL_LOSS] / n, rows=n),
    ]
    if n > 1:
        mean = sums[DIFFERENCE] / n
        half = BAND_Z * np.sqrt(max(sums[DIFFERENCE_SQUARED] / n - mean**2, 0.0) / (n - 1))
        rows.append(result_row(chunk, "log_loss_vs_null", mean, mean - half, mean + half, mean - half > 0, n))
    observed, expected = sums[MAKES] / n, sums[PROBABILITY] / n
    half = BAND_Z * np.sqrt(sums[VARIANCE]) / n
    alert = not expected - half <= observed <= expected + half
    rows.append(result_row(chunk, "observed_make_rate", observed, expected - half, expected + half, alert, n))
    return rows


# --- Estimated performance (no labels) ---------------------------------------------------------


def _logit(probability) -> np.ndarray:
    p = _clipped(probability)
    return np.log(p / (1 - p))


@dataclass
class EstimatedPerformance:
    """Expected log loss from the model's own scores: a Platt map fitted on the reference turns a
    score ``p`` into the chance ``q`` of a make, a row's loss is ``-(q log p + (1 - q) log(1 - p))``.
    The 95 % interval adds the map's uncertainty (delta method) to the outcomes' Bernoulli noise."""

    def fit(self, reference: MonitoringReference) -> EstimatedPerformance:
        z = _logit(reference.rows[config.PROBABILITY_COLUMN])
        y = reference.rows[config.TARGET].to_numpy(dtype=int)
        fitted = LogisticRegression(C=1e6).fit(z.reshape(-1, 1), y)
        self.slope, self.intercept = float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
        q = special.expit(self.slope * z + self.intercept)
        design = np.column_stack([z, np.ones_like(z)])
        information = design.T @ (design * (q * (1 - q))[:, None])
        self.covariance = np.linalg.pinv(information)
        return self

    def row_terms(self, probability) -> np.ndarray:
        """Each row's expected loss, Bernoulli variance and gradient term (3 x rows)."""
        p = _clipped(probability)
        z = np.log(p / (1 - p))
        q = special.expit(self.slope * z + self.intercept)
        slope_of_q = q * (1 - q)
        return np.array([-np.log(1 - p) - q * z, slope_of_q * z**2, slope_of_q * z])

    @staticmethod
    def sums_of_terms(terms: np.ndarray) -> np.ndarray:
        """Additive sums of a batch: rows, expected loss, variance, and the expected loss's gradient
        with respect to the map's slope and intercept."""
        expected, curvature, gradient = terms
        return np.array([terms.shape[1], expected.sum(), curvature.sum(), -curvature.sum(), -gradient.sum()])

    def from_sums(self, sums: np.ndarray, chunk: str, metric: str, realized: RealizedPerformance) -> list[dict]:
        """The estimate's row (alert: above the reference's realized band at this size)."""
        n = int(sums[0])
        if n == 0:
            return []
        value = float(sums[1] / n)
        gradient = sums[3:5] / n
        spread = np.sqrt(sums[2] / n**2 + float(gradient @ self.covariance @ gradient))
        alert = value > realized.band(n)[1]
        return [result_row(chunk, metric, value, value - BAND_Z * spread, value + BAND_Z * spread, alert, n)]


# --- The whole evaluation of one chunk ---------------------------------------------------------


ESTIMATE_GRADED = "estimated_log_loss"  # on exactly the rows the realized log loss uses
ESTIMATE_ALL = "estimated_log_loss_all_rows"  # on every scored row of the chunk


@dataclass
class ChunkSums:
    """Everything the calculators need from a chunk, as sums: add two to merge two batches."""

    drift: dict[str, np.ndarray]  # bin counts per feature (empty without a usable reference)
    estimated_all: np.ndarray | None
    estimated_graded: np.ndarray | None
    realized: np.ndarray

    def __add__(self, other: ChunkSums) -> ChunkSums:
        def plus(mine, theirs):
            return None if mine is None else mine + theirs

        return ChunkSums(
            {feature: counts + other.drift[feature] for feature, counts in self.drift.items()},
            plus(self.estimated_all, other.estimated_all),
            plus(self.estimated_graded, other.estimated_graded),
            self.realized + other.realized,
        )


@dataclass
class Monitor:
    """Every calculator fitted on one model's reference."""

    reference: MonitoringReference

    def __post_init__(self):
        self.usable = self.reference.usable
        if self.usable:
            self.drift = FeatureDrift().fit(self.reference)
            self.realized = RealizedPerformance().fit(self.reference)
            self.estimated = EstimatedPerformance().fit(self.reference)

    def sums(self, scored, graded, null_rate: float, graded_rows: np.ndarray | None = None) -> ChunkSums:
        """``scored``: every scored row (features, probability); ``graded``: the labelled rows the model
        never learned (probability, target), a DataFrame or a mapping of arrays; ``null_rate``: the make
        rate known before the chunk; ``graded_rows``: their positions among ``scored``, when known."""
        graded_probability = np.asarray(graded[config.PROBABILITY_COLUMN], dtype=float)
        realized = realized_sums(graded_probability, np.asarray(graded[config.TARGET], dtype=float), null_rate)
        if not self.usable:
            return ChunkSums({}, None, None, realized)
        terms = self.estimated.row_terms(scored[config.PROBABILITY_COLUMN])
        graded_terms = self.estimated.row_terms(graded_probability) if graded_rows is None else terms[:, graded_rows]
        return ChunkSums(
            self.drift.counts(scored),
            self.estimated.sums_of_terms(terms),
            self.estimated.sums_of_terms(graded_terms),
            realized,
        )

    def table(self, sums: ChunkSums, chunk: str) -> pd.DataFrame:
        """The result table of one chunk from its (merged) sums."""
        if not self.usable:
            return result_table(realized_rows(sums.realized, chunk, None))
        rows = self.drift.from_counts(sums.drift, chunk) + realized_rows(sums.realized, chunk, self.realized)
        for metric, estimated in ((ESTIMATE_ALL, sums.estimated_all), (ESTIMATE_GRADED, sums.estimated_graded)):
            rows += self.estimated.from_sums(estimated, chunk, metric, self.realized)
        return result_table(rows)

    def evaluate(self, scored: pd.DataFrame, graded: pd.DataFrame, null_rate: float, chunk: str) -> pd.DataFrame:
        """The result table of one chunk held in memory."""
        return self.table(self.sums(scored, graded, null_rate), chunk)


APPLICABLE, QUESTIONABLE, NOT_APPLICABLE = "applicable", "questionable", "not applicable"


def monitoring_tags(table: pd.DataFrame, monitor: Monitor) -> dict[str, str]:
    """The tags of a monitored run (step 04, a replay batch): the reference, whether the estimate can be
    trusted and why (its calibration rows must be enough and still describe the chunk: no drift alert),
    and why nothing could be set when nothing could."""
    reference = monitor.reference
    drifted = table.loc[table["alert"] & table["metric"].str.startswith("psi_"), "metric"].str[4:].tolist()
    standing, reason = APPLICABLE, f"calibrated on {reference.description}, which the rows do not drift from"
    if not reference.usable:
        standing, reason = NOT_APPLICABLE, reference.problem
    elif drifted:
        standing = QUESTIONABLE
        reason = (
            f"the rows drifted from the estimate's calibration rows ({reference.description}) on "
            f"{', '.join(drifted)}: read the estimate as a rough guide until labels arrive"
        )
    tags = {
        names.REFERENCE_TAG: reference.description,
        names.ESTIMATE_APPLICABILITY_TAG: standing,
        names.ESTIMATE_REASON_TAG: reason[:5000],
    }
    if not monitor.usable:
        tags[names.MONITORING_PROBLEM_TAG] = f"no threshold and no estimate: {reference.problem}"
    return tags


def table_metrics(table: pd.DataFrame) -> dict[str, float]:
    """The table as MLflow metrics: ``<metric>``, ``<metric>_lower``, ``<metric>_upper``, ``<metric>_alert``."""
    figures: dict[str, float] = {}
    for row in table.itertuples(index=False):
        figures[row.metric] = row.value
        if np.isfinite(row.lower):
            figures[f"{row.metric}_lower"] = row.lower
        if np.isfinite(row.upper):
            figures[f"{row.metric}_upper"] = row.upper
            figures[f"{row.metric}_alert"] = float(row.alert)
    return {key: float(value) for key, value in figures.items() if np.isfinite(value)}
