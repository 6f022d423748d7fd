"""Reactive retraining triggers: which alarms the latest application run crosses right now.

:func:`evaluate_triggers` is a pure function of the metrics the pipeline logs, so it can be
checked with hand-made dictionaries; :func:`latest_trigger_report` reads those metrics from
MLflow (the latest ``PipelineAplicacao`` run and the ``Treinamento`` run of the model version
it used). The dashboard's Retraining page and the retraining step both read this module.

Three triggers, each with its threshold written once below:

* ``feature_drift`` (no labels needed): the largest PSI over the features reaches
  :data:`drift.PSI_MAJOR`.
* ``log_loss_degradation`` (needs labels): production log loss is worse than the test log
  loss by more than :data:`LOG_LOSS_RELATIVE_MARGIN`, or worse than the null model of the
  production rows: a constant probability at their own observed make rate (the model then
  knows less than that make rate alone; a constant at the *development* rate would be a
  yardstick a shifted population beats by simply predicting lower probabilities).
* ``make_rate_gap`` (needs labels): the mean predicted probability on labelled rows is
  further than :data:`MAKE_RATE_GAP_MARGIN` from the observed make rate on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.tracking import MlflowClient

from kobe_mlops.monitoring.drift import PSI_MAJOR
from kobe_mlops.tracking import names, reads

FEATURE_DRIFT = "feature_drift"
LOG_LOSS_DEGRADATION = "log_loss_degradation"
MAKE_RATE_GAP = "make_rate_gap"

FEATURE_DRIFT_THRESHOLD = PSI_MAJOR
# Test log loss on ~4,000 rows has a standard error near 0.003 (under 1 %); a 5 % rise is a
# real loss of quality, not sampling noise.
LOG_LOSS_RELATIVE_MARGIN = 0.05
# With ~5,000 labelled rows the observed make rate has a standard error under 0.01; a gap of
# 5 percentage points means the probabilities no longer describe production.
MAKE_RATE_GAP_MARGIN = 0.05

# What the triggers read from an application run (besides psi_<feature>) and from the training
# run of the version it scored with: the names the logging functions write (tracking.names).
APPLICATION_METRICS_READ = (
    names.PROD_LOG_LOSS,
    names.PROD_NULL_LOG_LOSS,
    names.OBSERVED_MAKE_RATE,
    names.LABELLED_MEAN_PROBABILITY,
)
TRAINING_METRICS_READ = (names.TEST_LOG_LOSS,)

# Most serious first: the first fired trigger in this order decides the recommended action.
ACTIONS = {
    LOG_LOSS_DEGRADATION: (
        "Retrain: the champion now predicts production worse than it did on test, or worse than "
        "the production make rate alone. Train a "
        "challenger on data that includes labelled production shots and promote it only if it "
        "beats the champion on the same production rows."
    ),
    MAKE_RATE_GAP: (
        "Recalibrate or retrain: the probabilities no longer match the observed make rate. Refit "
        "on labelled production shots and check the calibration curve before promoting."
    ),
    FEATURE_DRIFT: (
        "Investigate before retraining: production inputs left the training distribution. Confirm "
        "the data source is right, collect labels for the new population and retrain once enough "
        "labelled production rows exist."
    ),
}
# Which calculator alerts (monitoring/calculators.py) raise which trigger.
ALERT_METRICS = {
    FEATURE_DRIFT: ("psi_",),
    LOG_LOSS_DEGRADATION: ("log_loss", "log_loss_vs_null"),
    MAKE_RATE_GAP: ("make_rate",),
}


# Triggers that measure a problem with labels; feature drift alone says where to look.
LABEL_TRIGGERS = (LOG_LOSS_DEGRADATION, MAKE_RATE_GAP)


def fired_triggers(table) -> dict[str, bool]:
    """Each trigger: whether any of its calculators' rows in the result ``table`` raised an alert."""
    fired = set(table.loc[table["alert"], "metric"])
    return {
        name: any(
            metric.startswith(prefix) if prefix.endswith("_") else metric == prefix
            for metric in fired
            for prefix in prefixes
        )
        for name, prefixes in ALERT_METRICS.items()
    }


NO_ACTION = "No trigger crossed: keep the champion and keep monitoring each application run."


@dataclass(frozen=True)
class Trigger:
    name: str  # e.g. "feature_drift", "log_loss_degradation", "make_rate_gap"
    value: float | None  # the measured figure (None when it cannot be computed, e.g. no labels)
    threshold: float
    fired: bool
    description: str  # one sentence an operator understands, with the figures


@dataclass(frozen=True)
class TriggerReport:
    application_run_id: str | None
    triggers: list[Trigger]
    model_version: str | None = None  # the registered version the application run scored with

    @property
    def fired(self) -> list[Trigger]:
        return [trigger for trigger in self.triggers if trigger.fired]

    @property
    def any_fired(self) -> bool:
        return bool(self.fired)

    @property
    def recommended_action(self) -> str:
        fired = {trigger.name for trigger in self.fired}
        for name, action in ACTIONS.items():
            if name in fired:
                return action
        return NO_ACTION


def feature_drift_trigger(application_metrics: dict[str, float]) -> Trigger:
    psi = {
        key[len(names.PSI_PREFIX) :]: value
        for key, value in application_metrics.items()
        if key.startswith(names.PSI_PREFIX)
    }
    if not psi:
        return Trigger(
            FEATURE_DRIFT,
            None,
            FEATURE_DRIFT_THRESHOLD,
            False,
            "No PSI was logged by the application run, so feature drift cannot be measured.",
        )
    feature = max(psi, key=psi.get)
    value = psi[feature]
    fired = value >= FEATURE_DRIFT_THRESHOLD
    shifted = sorted(name for name, score in psi.items() if score >= FEATURE_DRIFT_THRESHOLD)
    if fired:
        description = (
            f"Largest PSI is {value:.3f} on {feature}, at or above the major-shift threshold "
            f"{FEATURE_DRIFT_THRESHOLD:g}; shifted features: {', '.join(shifted)}."
        )
    else:
        description = (
            f"Largest PSI is {value:.3f} on {feature}, below the major-shift threshold {FEATURE_DRIFT_THRESHOLD:g}."
        )
    return Trigger(FEATURE_DRIFT, value, FEATURE_DRIFT_THRESHOLD, fired, description)


def log_loss_trigger(application_metrics: dict[str, float], training_metrics: dict[str, float]) -> Trigger:
    production = application_metrics.get(names.PROD_LOG_LOSS)
    test = training_metrics.get(names.TEST_LOG_LOSS)
    null = application_metrics.get(names.PROD_NULL_LOG_LOSS)
    limits = {}
    if test is not None:
        limits[f"test log loss {test:.4f} + {LOG_LOSS_RELATIVE_MARGIN:.0%}"] = test * (1 + LOG_LOSS_RELATIVE_MARGIN)
    if null is not None:
        limits[f"a constant at the observed production make rate scores {null:.4f}"] = null
    elif names.PROD_BASELINE_LOG_LOSS in application_metrics:  # runs logged before the null model
        baseline = application_metrics[names.PROD_BASELINE_LOG_LOSS]
        limits[f"production constant-rate baseline {baseline:.4f}"] = baseline
    if production is None or not limits:
        missing = "no labelled production rows" if production is None else "no test or baseline log loss"
        return Trigger(
            LOG_LOSS_DEGRADATION,
            production,
            min(limits.values(), default=float("nan")),
            False,
            f"Log loss degradation cannot be measured: {missing}.",
        )
    # The tighter of the two limits decides: crossing either one is a degradation.
    reason, threshold = min(limits.items(), key=lambda item: item[1])
    fired = production > threshold
    verb = "above" if fired else "within"
    description = f"Production log loss is {production:.4f}, {verb} the limit {threshold:.4f} ({reason})."
    return Trigger(LOG_LOSS_DEGRADATION, production, threshold, fired, description)


def make_rate_trigger(application_metrics: dict[str, float]) -> Trigger:
    observed = application_metrics.get(names.OBSERVED_MAKE_RATE)
    predicted = application_metrics.get(names.LABELLED_MEAN_PROBABILITY)
    if observed is None or predicted is None:
        return Trigger(
            MAKE_RATE_GAP,
            None,
            MAKE_RATE_GAP_MARGIN,
            False,
            "The make-rate gap cannot be measured: no labelled production rows were logged.",
        )
    gap = abs(predicted - observed)
    fired = gap > MAKE_RATE_GAP_MARGIN
    verb = "more than" if fired else "within"
    description = (
        f"Mean predicted probability {predicted:.3f} vs observed make rate {observed:.3f} on "
        f"labelled rows: a gap of {gap:.3f}, {verb} the margin {MAKE_RATE_GAP_MARGIN:g}."
    )
    return Trigger(MAKE_RATE_GAP, gap, MAKE_RATE_GAP_MARGIN, fired, description)


def evaluate_triggers(application_metrics: dict[str, float], training_metrics: dict[str, float]) -> TriggerReport:
    """Every trigger for one application run's metrics and its model's training metrics."""
    return TriggerReport(
        application_run_id=None,
        triggers=[
            feature_drift_trigger(application_metrics),
            log_loss_trigger(application_metrics, training_metrics),
            make_rate_trigger(application_metrics),
        ],
    )


def latest_trigger_report(client: MlflowClient | None = None) -> TriggerReport | None:
    """Triggers of the latest application run; None when no application run exists yet."""
    if client is None:
        if not reads.store_exists():
            return None  # no store yet: nothing ran, and reading must not create one
        client = reads.client()
    application_run = reads.latest_application_run(client)
    if application_run is None:
        return None
    version = reads.model_version_used(client, application_run)
    training_run = reads.training_run_of(client, version) if version else None
    training_metrics = training_run.data.metrics if training_run else {}
    report = evaluate_triggers(application_run.data.metrics, training_metrics)
    return TriggerReport(application_run.info.run_id, report.triggers, str(version.version) if version else None)
