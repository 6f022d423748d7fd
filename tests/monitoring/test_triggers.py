"""Retraining triggers (monitoring/triggers.py): each raised by its calculators' alerts, read from a
run, or by the label store's growth since the gate last ran."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kobe_mlops.monitoring import triggers
from kobe_mlops.monitoring.triggers import (
    FEATURE_DRIFT,
    LOG_LOSS_DEGRADATION,
    MAKE_RATE_GAP,
    NEW_LABELS,
    evaluate_triggers,
)


def healthy(**overrides) -> dict[str, float]:
    """The metrics of a labelled application run that raised no alert."""
    metrics = {
        "psi_lat": 0.02, "psi_lat_upper": 0.05, "psi_lat_alert": 0.0,
        "psi_shot_distance": 0.03, "psi_shot_distance_upper": 0.04, "psi_shot_distance_alert": 0.0,
        "log_loss": 0.64, "log_loss_upper": 0.66, "log_loss_alert": 0.0,
        "log_loss_vs_null": -0.01, "log_loss_vs_null_lower": -0.02, "log_loss_vs_null_alert": 0.0,
        "observed_make_rate": 0.35, "observed_make_rate_lower": 0.32, "observed_make_rate_upper": 0.38,
        "observed_make_rate_alert": 0.0,
    }  # fmt: skip
    return {**metrics, **overrides}


def by_name(metrics) -> dict[str, triggers.Trigger]:
    return {trigger.name: trigger for trigger in evaluate_triggers(metrics).triggers}


def test_a_healthy_run_fires_nothing_and_recommends_to_keep_monitoring():
    report = evaluate_triggers(healthy())
    assert [t.name for t in report.triggers] == [FEATURE_DRIFT, LOG_LOSS_DEGRADATION, MAKE_RATE_GAP]
    assert not report.any_fired and report.recommended_action == triggers.NO_ACTION
    drift = by_name(healthy())[FEATURE_DRIFT]
    assert drift.value == 0.03 and drift.threshold == 0.04  # the feature nearest its own threshold


@pytest.mark.parametrize(
    "overrides, name, text",
    [
        (dict(psi_lat=0.3, psi_lat_alert=1.0), FEATURE_DRIFT, "on lat (lat: 0.300 > 0.050)"),
        (dict(log_loss=0.70, log_loss_alert=1.0), LOG_LOSS_DEGRADATION, "above the reference's band"),
        (
            dict(log_loss_vs_null=0.02, log_loss_vs_null_lower=0.01, log_loss_vs_null_alert=1.0),
            LOG_LOSS_DEGRADATION,
            "worse than the null model",
        ),
        (dict(observed_make_rate=0.29, observed_make_rate_alert=1.0), MAKE_RATE_GAP, "outside the band 0.320 to 0.380"),
    ],
    ids=["drift", "log-loss-band", "log-loss-vs-null", "make-rate"],
)
def test_each_trigger_fires_on_its_alerts_and_says_why(overrides, name, text):
    report = evaluate_triggers(healthy(**overrides))
    assert [t.name for t in report.fired] == [name] and text in report.fired[0].description
    assert report.recommended_action == triggers.ACTIONS[name]


def test_without_labels_only_drift_is_measured_and_without_a_reference_nothing_fires():
    unlabelled = {key: value for key, value in healthy().items() if key.startswith("psi_")}
    report = by_name(unlabelled)
    assert report[LOG_LOSS_DEGRADATION].value is None and not report[LOG_LOSS_DEGRADATION].fired
    assert report[MAKE_RATE_GAP].value is None
    nothing = evaluate_triggers({"log_loss": 0.7})  # no threshold could be set: no alert either
    assert not nothing.any_fired and "No drift threshold" in nothing.triggers[0].description


def test_fired_triggers_reads_a_result_table_as_its_logged_metrics():
    table = pd.DataFrame(
        {
            "metric": ["psi_lat", "log_loss", "log_loss_vs_null", "observed_make_rate"],
            "value": [0.3, 0.64, 0.02, 0.35],
            "lower": [np.nan, np.nan, 0.01, 0.32],
            "upper": [0.05, 0.66, 0.03, 0.38],
            "alert": [True, False, True, False],
        }
    )
    assert triggers.fired_triggers(table) == {FEATURE_DRIFT: True, LOG_LOSS_DEGRADATION: True, MAKE_RATE_GAP: False}


@pytest.mark.parametrize(
    "labelled, at_last_gate, needed, fired",
    [(49, 0, 50, False), (50, 0, 50, True), (400, 320, 640, False), (640, 320, 640, True), (5412, 5412, 10824, False)],
    ids=["too-few-first", "first-fifty", "not-doubled", "doubled", "just-gated"],
)
def test_new_labels_fire_once_the_labels_doubled_since_the_gate_last_ran(labelled, at_last_gate, needed, fired):
    trigger = triggers.new_labels_trigger(labelled, at_last_gate)
    assert (trigger.name, trigger.value, trigger.threshold, trigger.fired) == (NEW_LABELS, labelled, needed, fired)
    assert f"{labelled} labelled production rows" in trigger.description and str(needed) in trigger.description
    # New labels call for retraining as a label-based alert does; drift alone does not.
    assert triggers.retraining_triggers([FEATURE_DRIFT, NEW_LABELS]) == [NEW_LABELS]
