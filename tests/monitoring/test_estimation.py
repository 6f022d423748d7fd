"""CBPE: the label-free estimate lands within sampling error when its assumptions hold, and says
"not applicable" when production leaves the training support."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, log_loss

from kobe_mlops import config
from kobe_mlops.modeling.support import feature_support
from kobe_mlops.monitoring import estimation
from kobe_mlops.monitoring.estimation import ExpectedSums, PerformanceEstimator, applicability

RNG = np.random.default_rng(7)


def synthetic_shots(rows: int, rng: np.random.Generator, distance_range=(0.0, 22.0)) -> pd.DataFrame:
    """Shots whose true make chance falls with distance; the "model" knows that chance exactly."""
    frame = pd.DataFrame(
        {
            "lat": rng.uniform(33.9, 34.05, rows),
            "lon": rng.uniform(-118.4, -118.1, rows),
            "minutes_remaining": rng.integers(0, 12, rows),
            "period": rng.integers(1, 5, rows),
            "playoffs": rng.integers(0, 2, rows),
            "shot_distance": rng.uniform(*distance_range, rows),
        }
    )
    chance = 1 / (1 + np.exp(-(1.2 - 0.12 * frame["shot_distance"])))
    frame[config.PROBABILITY_COLUMN] = chance
    frame[config.TARGET] = (rng.uniform(size=rows) < chance).astype(int)
    return frame


@pytest.fixture(scope="module")
def fitted() -> tuple[PerformanceEstimator, pd.DataFrame]:
    train = synthetic_shots(8000, RNG)
    reference = synthetic_shots(4000, RNG)
    estimator = PerformanceEstimator.fit(
        reference[config.PROBABILITY_COLUMN], reference[config.TARGET], feature_support(train)
    )
    return estimator, train


def bootstrap_se(y: np.ndarray, predicted: np.ndarray, rng: np.random.Generator, draws: int = 300) -> float:
    scores = []
    for _ in range(draws):
        pick = rng.integers(0, len(y), len(y))
        scores.append(f1_score(y[pick], predicted[pick]))
    return float(np.std(scores))


def test_estimate_lands_within_sampling_error_of_the_realized_metrics(fitted):
    estimator, _ = fitted
    production = synthetic_shots(5000, np.random.default_rng(11), distance_range=(5.0, 20.0))  # shifted, inside
    result = estimation.estimate(estimator, production)
    y, p = production[config.TARGET].to_numpy(), production[config.PROBABILITY_COLUMN].to_numpy()
    realized_log_loss = log_loss(y, p)
    row_losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    log_loss_se = row_losses.std(ddof=1) / np.sqrt(len(y))
    assert abs(result.estimated_log_loss - realized_log_loss) < 3 * log_loss_se
    predicted = (p >= config.DECISION_THRESHOLD).astype(int)
    realized_f1 = f1_score(y, predicted)
    assert abs(result.estimated_f1 - realized_f1) < 3 * bootstrap_se(y, predicted, np.random.default_rng(3))
    assert result.share_outside_training_support < estimation.QUESTIONABLE_SHARE
    assert result.applicability.verdict == estimation.APPLICABLE


def test_a_miscalibrated_model_is_corrected_by_the_reference_calibration(fitted):
    """Scores pushed towards 0.5 understate the loss the model really has; calibration recovers it."""
    _, train = fitted
    reference = synthetic_shots(4000, np.random.default_rng(5))
    production = synthetic_shots(5000, np.random.default_rng(6))
    for frame in (reference, production):
        frame[config.PROBABILITY_COLUMN] = 0.5 + 0.5 * (frame[config.PROBABILITY_COLUMN] - 0.5)
    estimator = PerformanceEstimator.fit(
        reference[config.PROBABILITY_COLUMN], reference[config.TARGET], feature_support(train)
    )
    y, p = production[config.TARGET].to_numpy(), production[config.PROBABILITY_COLUMN].to_numpy()
    row_losses = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    naive = float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))  # trusting the raw scores
    estimated = estimation.estimate(estimator, production).estimated_log_loss
    assert abs(estimated - row_losses.mean()) < 3 * row_losses.std(ddof=1) / np.sqrt(len(y))
    assert abs(naive - row_losses.mean()) > abs(estimated - row_losses.mean())


def test_sums_of_batches_equal_the_sums_of_the_whole(fitted):
    estimator, _ = fitted
    production = synthetic_shots(1000, np.random.default_rng(12))
    whole = estimator.sums(production)
    merged = sum((estimator.sums(part) for part in np.array_split(production, 7)), ExpectedSums())
    assert merged.rows == whole.rows and merged.rows_outside_support == whole.rows_outside_support
    assert merged.estimated_log_loss == pytest.approx(whole.estimated_log_loss, abs=1e-12)
    assert merged.estimated_f1 == pytest.approx(whole.estimated_f1, abs=1e-12)


def test_rows_beyond_every_training_distance_make_the_estimate_not_applicable(fitted):
    estimator, _ = fitted
    three_pointers = synthetic_shots(2000, np.random.default_rng(13), distance_range=(23.0, 30.0))
    result = estimation.estimate(estimator, three_pointers)
    assert result.share_outside_training_support == 1.0
    assert result.applicability.verdict == estimation.NOT_APPLICABLE
    assert "outside the model's training support" in result.applicability.reason


@pytest.mark.parametrize(
    "share, reference_rows, verdict",
    [
        (0.0, 4000, estimation.APPLICABLE),
        (0.09, 4000, estimation.APPLICABLE),
        (0.1, 4000, estimation.QUESTIONABLE),
        (0.49, 4000, estimation.QUESTIONABLE),
        (0.5, 4000, estimation.NOT_APPLICABLE),
        (0.0, 100, estimation.NOT_APPLICABLE),
        (float("nan"), 4000, estimation.NOT_APPLICABLE),
    ],
)
def test_applicability_thresholds(share, reference_rows, verdict):
    assert applicability(share, reference_rows).verdict == verdict


def test_no_rows_give_nan_figures_not_errors():
    empty = ExpectedSums()
    assert np.isnan(empty.estimated_log_loss) and np.isnan(empty.share_outside_support)
    assert empty.estimated_f1 == 0.0
