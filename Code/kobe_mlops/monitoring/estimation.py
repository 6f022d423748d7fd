"""Performance estimated before labels arrive: confidence-based performance estimation (CBPE).

NannyML's CBPE ("How it works: performance estimation", nannyml.readthedocs.io) estimates a
classifier's metric on unlabelled rows from its own probabilities: if the probabilities are
calibrated, a row scored 0.3 goes in 30 % of the time, so the *expected* loss and the *expected*
confusion matrix follow from the scores alone. Here, with scikit-learn:

1. **Calibrate** on reference rows the model never learned (``base_test`` for every version:
   no version trains on it): an isotonic map from the model's probability ``p`` to the observed
   make rate ``q`` (:class:`sklearn.isotonic.IsotonicRegression`).
2. **Expected log loss** of a row scored ``p``: ``-(q log p + (1 - q) log(1 - p))``;
   its mean over the rows is ``estimated_log_loss``.
3. **Expected confusion matrix** at the decision threshold: a predicted make counts ``q`` as a
   true positive and ``1 - q`` as a false positive, a predicted miss counts ``q`` as a false
   negative; ``estimated_f1 = 2 TP / (2 TP + FP + FN)`` of the expected counts.

Every quantity is a sum over rows (:class:`ExpectedSums`), so batches are estimated one by one
and merged, and a file of any size streams through it.

CBPE cannot be trusted (NannyML states the same limits) when production moves into regions the
reference never covered (the calibration map is extrapolated there), or under concept shift (the
same features no longer mean the same chance of a make). The first is measurable without labels:
:func:`applicability` reads the share of rows outside the model's training support
(:mod:`kobe_mlops.modeling.support`) and says "not applicable" when it is large. The second is
not: only labels reveal it, which is why the realized metric sits beside the estimate whenever
labels exist.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from kobe_mlops import config
from kobe_mlops.modeling.support import FeatureSupport, outside_support
from kobe_mlops.tracking import names

PROBABILITY_EPSILON = np.finfo(float).eps  # clipped like sklearn's log_loss
# Applicability: the share of scored rows outside the training support.
NOT_APPLICABLE_SHARE = 0.5  # most rows lie where the model never learned: no estimate holds
QUESTIONABLE_SHARE = 0.1  # a noticeable part lies there: read the estimate as a rough guide
MIN_REFERENCE_ROWS = 500  # fewer reference rows give a calibration map too coarse to trust
APPLICABLE = "applicable"
QUESTIONABLE = "questionable"
NOT_APPLICABLE = "not applicable"


@dataclass
class ExpectedSums:
    """Additive sums behind the estimates: add two to merge two batches."""

    rows: int = 0
    expected_log_loss: float = 0.0  # sum of each row's expected log loss
    expected_true_positives: float = 0.0
    expected_false_positives: float = 0.0
    expected_false_negatives: float = 0.0
    rows_outside_support: int = 0

    def __add__(self, other: ExpectedSums) -> ExpectedSums:
        return ExpectedSums(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def estimated_log_loss(self) -> float:
        return self.expected_log_loss / self.rows if self.rows else float("nan")

    @property
    def estimated_f1(self) -> float:
        tp, fp, fn = self.expected_true_positives, self.expected_false_positives, self.expected_false_negatives
        denominator = 2 * tp + fp + fn
        return 2 * tp / denominator if denominator > 0 else 0.0

    @property
    def share_outside_support(self) -> float:
        return self.rows_outside_support / self.rows if self.rows else float("nan")


@dataclass(frozen=True)
class Applicability:
    verdict: str  # APPLICABLE, QUESTIONABLE or NOT_APPLICABLE
    reason: str

    @property
    def trusted(self) -> bool:
        return self.verdict == APPLICABLE


def applicability(share_outside_support: float, reference_rows: int) -> Applicability:
    """Whether a CBPE estimate can be trusted on rows with this share outside the training support."""
    if reference_rows < MIN_REFERENCE_ROWS:
        return Applicability(
            NOT_APPLICABLE,
            f"only {reference_rows} reference rows calibrate the probabilities (minimum {MIN_REFERENCE_ROWS}).",
        )
    if np.isnan(share_outside_support):
        return Applicability(NOT_APPLICABLE, "no rows were scored.")
    share = f"{share_outside_support:.1%} of the rows lie outside the model's training support"
    if share_outside_support >= NOT_APPLICABLE_SHARE:
        return Applicability(
            NOT_APPLICABLE,
            f"{share} (at least {NOT_APPLICABLE_SHARE:.0%}): the calibration is extrapolated where the model "
            "never learned, so the estimate says nothing; wait for labels.",
        )
    if share_outside_support >= QUESTIONABLE_SHARE:
        return Applicability(
            QUESTIONABLE,
            f"{share} (at least {QUESTIONABLE_SHARE:.0%}): read the estimate as a rough guide and confirm it "
            "with labels.",
        )
    return Applicability(
        APPLICABLE,
        f"{share}: the estimate holds if the relation between features and outcome did not change "
        "(concept shift shows only with labels).",
    )


@dataclass
class PerformanceEstimator:
    """A model's calibration map (fitted on reference rows it never learned) and its training support."""

    calibration: IsotonicRegression
    support: FeatureSupport
    reference_rows: int
    threshold: float = config.DECISION_THRESHOLD

    @classmethod
    def fit(
        cls,
        reference_probability,
        reference_outcome,
        support: FeatureSupport,
        threshold: float = config.DECISION_THRESHOLD,
    ) -> PerformanceEstimator:
        """Calibrate on ``reference_probability`` vs ``reference_outcome`` (rows the model never learned)."""
        calibration = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        calibration.fit(np.asarray(reference_probability, dtype=float), np.asarray(reference_outcome, dtype=float))
        return cls(calibration, support, len(np.asarray(reference_probability)), threshold)

    def calibrated(self, probability) -> np.ndarray:
        """The chance of a make the reference rows give a score of ``probability``."""
        return np.clip(self.calibration.predict(np.asarray(probability, dtype=float)), 0.0, 1.0)

    def sums(self, scored: pd.DataFrame) -> ExpectedSums:
        """The expected sums of scored rows (the features and the probability column)."""
        probability = np.clip(
            scored[config.PROBABILITY_COLUMN].to_numpy(dtype=float), PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON
        )
        chance = self.calibrated(probability)
        predicted_make = probability >= self.threshold
        return ExpectedSums(
            rows=len(scored),
            expected_log_loss=float(np.sum(-(chance * np.log(probability) + (1 - chance) * np.log(1 - probability)))),
            expected_true_positives=float(chance[predicted_make].sum()),
            expected_false_positives=float((1 - chance[predicted_make]).sum()),
            expected_false_negatives=float(chance[~predicted_make].sum()),
            rows_outside_support=int(outside_support(scored, self.support).sum()),
        )

    def applicability(self, sums: ExpectedSums) -> Applicability:
        return applicability(sums.share_outside_support, self.reference_rows)


@dataclass(frozen=True)
class Estimate:
    """The estimate for a set of rows and whether to trust it; ``realized_*`` when labels exist."""

    estimated_log_loss: float
    estimated_f1: float
    share_outside_training_support: float
    applicability: Applicability
    rows: int

    def metrics(self) -> dict[str, float]:
        return {
            names.ESTIMATED_LOG_LOSS: self.estimated_log_loss,
            names.ESTIMATED_F1: self.estimated_f1,
            names.SHARE_OUTSIDE_SUPPORT: self.share_outside_training_support,
        }


def estimate(estimator: PerformanceEstimator, scored: pd.DataFrame) -> Estimate:
    """CBPE estimate of the log loss and F1 on ``scored`` rows, with its applicability."""
    sums = estimator.sums(scored)
    return Estimate(
        sums.estimated_log_loss,
        sums.estimated_f1,
        sums.share_outside_support,
        estimator.applicability(sums),
        sums.rows,
    )
