"""Reactive retraining triggers: hand-made metrics first, then the real pipeline's store."""

import pytest

from kobe_mlops import config
from kobe_mlops.monitoring import triggers
from kobe_mlops.monitoring.drift import PSI_MAJOR
from kobe_mlops.monitoring.triggers import (
    FEATURE_DRIFT,
    LOG_LOSS_DEGRADATION,
    MAKE_RATE_GAP,
    TriggerReport,
    evaluate_triggers,
    latest_trigger_report,
)

TRAINING = {"log_loss_champion_test": 0.670, "f1_champion_test": 0.46}


def healthy_application(**overrides) -> dict[str, float]:
    metrics = {
        "psi_lat": 0.02,
        "psi_lon": 0.03,
        "psi_shot_distance": 0.05,
        "log_loss_prod": 0.675,
        "log_loss_baseline_prod": 0.690,
        "observed_make_rate": 0.45,
        "mean_probability_labeled": 0.47,
    }
    metrics.update(overrides)
    return metrics


def by_name(report: TriggerReport) -> dict[str, triggers.Trigger]:
    return {trigger.name: trigger for trigger in report.triggers}


def test_healthy_metrics_fire_nothing():
    report = evaluate_triggers(healthy_application(), TRAINING)
    assert [t.name for t in report.triggers] == [FEATURE_DRIFT, LOG_LOSS_DEGRADATION, MAKE_RATE_GAP]
    assert not report.any_fired and report.fired == []
    assert report.recommended_action == triggers.NO_ACTION


def test_feature_drift_uses_the_largest_psi_and_names_the_feature():
    drift = by_name(evaluate_triggers(healthy_application(psi_shot_distance=3.2, psi_lat=0.4), TRAINING))[FEATURE_DRIFT]
    assert drift.fired and drift.value == 3.2 and drift.threshold == PSI_MAJOR
    assert "shot_distance" in drift.description and "lat, shot_distance" in drift.description


def test_feature_drift_threshold_is_inclusive_like_the_psi_verdict():
    at_threshold = by_name(evaluate_triggers(healthy_application(psi_lat=PSI_MAJOR), TRAINING))[FEATURE_DRIFT]
    just_below = by_name(evaluate_triggers(healthy_application(psi_lat=PSI_MAJOR - 1e-9), TRAINING))[FEATURE_DRIFT]
    assert at_threshold.fired and not just_below.fired


def test_log_loss_worse_than_test_by_the_margin_fires():
    limit = 0.670 * (1 + triggers.LOG_LOSS_RELATIVE_MARGIN)  # 0.7035, above the 0.80 baseline below
    metrics = healthy_application(log_loss_baseline_prod=0.80)
    inside = by_name(evaluate_triggers({**metrics, "log_loss_prod": limit - 0.001}, TRAINING))
    outside = by_name(evaluate_triggers({**metrics, "log_loss_prod": limit + 0.001}, TRAINING))
    assert not inside[LOG_LOSS_DEGRADATION].fired
    assert outside[LOG_LOSS_DEGRADATION].fired
    assert outside[LOG_LOSS_DEGRADATION].threshold == pytest.approx(limit)
    assert "test log loss 0.6700" in outside[LOG_LOSS_DEGRADATION].description


def test_log_loss_worse_than_the_production_null_model_fires_even_within_the_test_margin():
    # 0.690 is within 5 % of the 0.670 test log loss and beats the development-rate constant
    # (0.700), but a constant at the production rows' own make rate does better (0.685).
    metrics = healthy_application(log_loss_prod=0.690, log_loss_baseline_prod=0.700, log_loss_null_prod=0.685)
    report = evaluate_triggers(metrics, TRAINING)
    trigger = by_name(report)[LOG_LOSS_DEGRADATION]
    assert trigger.fired and trigger.threshold == 0.685
    assert "a constant at the observed production make rate scores 0.6850" in trigger.description
    assert report.recommended_action == triggers.ACTIONS[LOG_LOSS_DEGRADATION]
    better = by_name(evaluate_triggers({**metrics, "log_loss_prod": 0.680}, TRAINING))[LOG_LOSS_DEGRADATION]
    assert not better.fired


def test_runs_logged_before_the_null_model_fall_back_to_the_production_baseline():
    report = evaluate_triggers(healthy_application(log_loss_prod=0.690, log_loss_baseline_prod=0.685), TRAINING)
    trigger = by_name(report)[LOG_LOSS_DEGRADATION]
    assert trigger.fired and trigger.threshold == 0.685 and "baseline" in trigger.description


def test_make_rate_gap_compares_mean_probability_with_the_observed_rate():
    report = evaluate_triggers(healthy_application(observed_make_rate=0.33, mean_probability_labeled=0.40), TRAINING)
    gap = by_name(report)[MAKE_RATE_GAP]
    assert gap.fired and gap.value == pytest.approx(0.07)
    assert "0.400" in gap.description and "0.330" in gap.description
    assert report.recommended_action == triggers.ACTIONS[MAKE_RATE_GAP]


def test_without_labels_the_label_triggers_report_none_and_do_not_fire():
    unlabelled = {"psi_lat": 0.9, "psi_shot_distance": 0.1}
    report = evaluate_triggers(unlabelled, TRAINING)
    named = by_name(report)
    assert named[LOG_LOSS_DEGRADATION].value is None and not named[LOG_LOSS_DEGRADATION].fired
    assert named[MAKE_RATE_GAP].value is None and not named[MAKE_RATE_GAP].fired
    assert "no labelled" in named[MAKE_RATE_GAP].description
    assert report.fired == [named[FEATURE_DRIFT]]
    assert report.recommended_action == triggers.ACTIONS[FEATURE_DRIFT]


def test_nothing_logged_fires_nothing_and_says_why():
    report = evaluate_triggers({}, {})
    assert not report.any_fired
    assert all(trigger.value is None for trigger in report.triggers)
    assert "No PSI" in by_name(report)[FEATURE_DRIFT].description


def test_the_most_serious_fired_trigger_decides_the_action():
    everything = healthy_application(psi_lat=2.0, log_loss_prod=0.9, mean_probability_labeled=0.7)
    report = evaluate_triggers(everything, TRAINING)
    assert len(report.fired) == 3
    assert report.recommended_action == triggers.ACTIONS[LOG_LOSS_DEGRADATION]


def test_latest_report_is_none_before_any_application_run(tmp_path):
    from mlflow import MlflowClient

    assert latest_trigger_report(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")) is None


def test_latest_report_reads_the_session_pipeline(tracking):
    report = latest_trigger_report(tracking)
    application = tracking.get_run(report.application_run_id)
    assert application.info.run_name == config.RUN_NAMES["aplicacao"]
    named = by_name(report)
    # 2PT development vs 3PT production: shot distance moves far beyond the major threshold.
    assert named[FEATURE_DRIFT].fired and "shot_distance" in named[FEATURE_DRIFT].description
    assert named[FEATURE_DRIFT].value == pytest.approx(
        max(value for key, value in application.data.metrics.items() if key.startswith("psi_"))
    )
    assert named[LOG_LOSS_DEGRADATION].value == pytest.approx(application.data.metrics["log_loss_prod"])
    assert named[MAKE_RATE_GAP].value == pytest.approx(
        abs(application.data.metrics["mean_probability_labeled"] - application.data.metrics["observed_make_rate"])
    )
    # The comparison uses the training run of the version the application run scored with.
    version = tracking.get_model_version(config.REGISTERED_MODEL_NAME, application.data.params["model_version"])
    test_log_loss = tracking.get_run(version.tags["training_run_id"]).data.metrics["log_loss_champion_test"]
    limit = min(test_log_loss * (1 + triggers.LOG_LOSS_RELATIVE_MARGIN), application.data.metrics["log_loss_null_prod"])
    assert named[LOG_LOSS_DEGRADATION].threshold == pytest.approx(limit)
    # On 3PT shots the champion knows less than the production make rate alone.
    assert named[LOG_LOSS_DEGRADATION].fired


def test_readme_states_the_thresholds_the_code_uses():
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    assert f"largest feature PSI ≥ {triggers.FEATURE_DRIFT_THRESHOLD:g}" in readme
    assert f"more than {triggers.LOG_LOSS_RELATIVE_MARGIN * 100:g} % above the test log loss" in readme
    assert f"more than {triggers.MAKE_RATE_GAP_MARGIN:g} from the observed make rate" in readme


def test_latest_report_without_a_store_reads_nothing_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert latest_trigger_report() is None
    assert list(tmp_path.iterdir()) == []
