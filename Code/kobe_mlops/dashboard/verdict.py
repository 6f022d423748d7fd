"""The production figures beside their two yardsticks, and the one-line verdict every page shows.

The yardsticks are two constants: the make rate known *before* the file (the deployable null) and
production's *own* make rate (after the fact: beating it means knowing more than the make rate alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kobe_mlops.modeling.metrics import METRIC_NAMES
from kobe_mlops.tracking import names

CHANCE_AUC = 0.5
BEFORE = "constant known before production"
AFTER = "constant at production's own make rate (after the fact)"


@dataclass(frozen=True)
class Verdict:
    level: str  # the Streamlit box: "success", "warning", "error" or "info"
    text: str


def production_verdict(metrics: Mapping[str, float]) -> Verdict:
    """One line on an application run's graded rows: does the model beat both constants?"""
    model = metrics.get(names.LOG_LOSS)
    if model is None:
        return Verdict(
            "info",
            "No verdict yet: the latest application run graded no labelled production row the model did not learn.",
        )
    before = metrics.get(names.NULL_LOG_LOSS, np.nan)
    after = metrics.get(names.PROD_NULL_LOG_LOSS, np.nan)
    rows = metrics.get(names.ROWS_EVALUATED)
    on_rows = f" on {rows:,.0f} graded production rows" if rows is not None else ""
    known = f"the constant known before production ({before:.4f})"
    own = f"a constant at production's own make rate ({after:.4f})"
    opening = f"The model does not fit production{on_rows}: log loss {model:.4f}"
    if model < after:
        level, text = "success", f"The model fits production{on_rows}: log loss {model:.4f} beats {known} and {own}."
    elif model < before:
        level = "error"
        text = f"{opening} beats {known} but not {own}, so it knows less about these shots than their make rate alone."
    else:
        level, text = "error", f"{opening} is worse than {known} and than {own}."
    auc = metrics.get(names.prod_metric("auc"))
    if auc is not None and auc < CHANCE_AUC:  # a NaN compares False
        level = "error"
        text += f" Its AUC {auc:.4f} is below chance (0.5): it ranks makes below misses."
    return Verdict(level, text)


def yardstick_table(training_metrics: Mapping[str, float], application_metrics: Mapping[str, float]) -> pd.DataFrame:
    """Every metric on test and on the graded production rows beside its yardsticks (NaN: not logged)."""
    after_the_fact = {"log_loss": application_metrics.get(names.PROD_NULL_LOG_LOSS, np.nan)}
    if names.PROD_NULL_LOG_LOSS in application_metrics:
        after_the_fact["auc"] = CHANCE_AUC  # any constant ranks nothing
    columns = {
        "test": [training_metrics.get(names.champion_test_metric(name), np.nan) for name in METRIC_NAMES],
        "test yardstick": [training_metrics.get(names.baseline_test_metric(name), np.nan) for name in METRIC_NAMES],
        "production": [application_metrics.get(names.prod_metric(name), np.nan) for name in METRIC_NAMES],
        BEFORE: [application_metrics.get(names.baseline_prod_metric(name), np.nan) for name in METRIC_NAMES],
        AFTER: [after_the_fact.get(name, np.nan) for name in METRIC_NAMES],
    }
    return pd.DataFrame(columns, index=pd.Index(METRIC_NAMES, name="metric"))


YARDSTICK_NOTE = (
    "Yardsticks: for log loss, Brier and AUC a constant probability (on test the training make rate; in "
    "production the make rate known before the file, the development rate for the first model, and "
    "production's own make rate, known only once its labels arrive: an after-the-fact diagnostic); for F1, "
    "precision, recall and accuracy always predicting “make”. Lower is better for log loss and Brier."
)
