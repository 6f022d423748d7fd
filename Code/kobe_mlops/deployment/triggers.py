"""Reactive retraining triggers: which alarms the latest application run crosses right now.

:func:`evaluate_triggers` is a pure function of the metrics the pipeline logs, so it can be
checked with hand-made dictionaries; :func:`latest_trigger_report` reads those metrics from
MLflow (the latest ``PipelineAplicacao`` run and the ``Treinamento`` run of the model version
it used). The dashboard's Retraining page and the retraining step both read this module.

Three triggers, each with its threshold written once below:

* ``feature_drift`` (no labels needed): the largest PSI over the features reaches
  :data:`monitoring.PSI_MAJOR`.
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
from pathlib import Path

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.deployment.monitoring import PSI_MAJOR
from kobe_mlops.tracking import tracking_uri

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

# Metric names logged by notebooks 03 (training) and 04 (application).
TEST_LOG_LOSS_METRIC = "log_loss_champion_test"
PROD_LOG_LOSS_METRIC = "log_loss_prod"
PROD_BASELINE_LOG_LOSS_METRIC = "log_loss_baseline_prod"  # constant at the development make rate
PROD_NULL_LOG_LOSS_METRIC = "log_loss_null_prod"  # constant at the production rows' own make rate
OBSERVED_MAKE_RATE_METRIC = "observed_make_rate"
LABELLED_MEAN_PROBABILITY_METRIC = "mean_probability_labeled"
PSI_PREFIX = "psi_"
# Finished application runs: what the triggers (and their trends) are computed from.
APPLICATION_RUNS_FILTER = (f"attributes.run_name = '{config.RUN_NAMES['aplicacao']}' "
                           "and attributes.status = 'FINISHED'")

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
    psi = {key[len(PSI_PREFIX):]: value for key, value in application_metrics.items() if key.startswith(PSI_PREFIX)}
    if not psi:
        return Trigger(FEATURE_DRIFT, None, FEATURE_DRIFT_THRESHOLD, False,
                       "No PSI was logged by the application run, so feature drift cannot be measured.")
    feature = max(psi, key=psi.get)
    value = psi[feature]
    fired = value >= FEATURE_DRIFT_THRESHOLD
    shifted = sorted(name for name, score in psi.items() if score >= FEATURE_DRIFT_THRESHOLD)
    if fired:
        description = (f"Largest PSI is {value:.3f} on {feature}, at or above the major-shift threshold "
                       f"{FEATURE_DRIFT_THRESHOLD:g}; shifted features: {', '.join(shifted)}.")
    else:
        description = (f"Largest PSI is {value:.3f} on {feature}, below the major-shift threshold "
                       f"{FEATURE_DRIFT_THRESHOLD:g}.")
    return Trigger(FEATURE_DRIFT, value, FEATURE_DRIFT_THRESHOLD, fired, description)


def log_loss_trigger(application_metrics: dict[str, float], training_metrics: dict[str, float]) -> Trigger:
    production = application_metrics.get(PROD_LOG_LOSS_METRIC)
    test = training_metrics.get(TEST_LOG_LOSS_METRIC)
    null = application_metrics.get(PROD_NULL_LOG_LOSS_METRIC)
    limits = {}
    if test is not None:
        limits[f"test log loss {test:.4f} + {LOG_LOSS_RELATIVE_MARGIN:.0%}"] = test * (1 + LOG_LOSS_RELATIVE_MARGIN)
    if null is not None:
        limits[f"a constant at the observed production make rate scores {null:.4f}"] = null
    elif PROD_BASELINE_LOG_LOSS_METRIC in application_metrics:  # runs logged before the null model
        baseline = application_metrics[PROD_BASELINE_LOG_LOSS_METRIC]
        limits[f"production constant-rate baseline {baseline:.4f}"] = baseline
    if production is None or not limits:
        missing = "no labelled production rows" if production is None else "no test or baseline log loss"
        return Trigger(LOG_LOSS_DEGRADATION, production, min(limits.values(), default=float("nan")), False,
                       f"Log loss degradation cannot be measured: {missing}.")
    # The tighter of the two limits decides: crossing either one is a degradation.
    reason, threshold = min(limits.items(), key=lambda item: item[1])
    fired = production > threshold
    verb = "above" if fired else "within"
    description = (f"Production log loss is {production:.4f}, {verb} the limit {threshold:.4f} "
                   f"({reason}).")
    return Trigger(LOG_LOSS_DEGRADATION, production, threshold, fired, description)


def make_rate_trigger(application_metrics: dict[str, float]) -> Trigger:
    observed = application_metrics.get(OBSERVED_MAKE_RATE_METRIC)
    predicted = application_metrics.get(LABELLED_MEAN_PROBABILITY_METRIC)
    if observed is None or predicted is None:
        return Trigger(MAKE_RATE_GAP, None, MAKE_RATE_GAP_MARGIN, False,
                       "The make-rate gap cannot be measured: no labelled production rows were logged.")
    gap = abs(predicted - observed)
    fired = gap > MAKE_RATE_GAP_MARGIN
    verb = "more than" if fired else "within"
    description = (f"Mean predicted probability {predicted:.3f} vs observed make rate {observed:.3f} on "
                   f"labelled rows: a gap of {gap:.3f}, {verb} the margin {MAKE_RATE_GAP_MARGIN:g}.")
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


def tracking_store_exists(uri: str) -> bool:
    """False for a local SQLite store whose file is absent (opening it would create it)."""
    if not uri.startswith("sqlite:///"):
        return True
    return Path(uri[len("sqlite:///"):]).is_file()


def latest_application_run(client: MlflowClient) -> Run | None:
    """The newest finished ``PipelineAplicacao`` run, or None."""
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=APPLICATION_RUNS_FILTER,
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def model_version_used(client: MlflowClient, application_run: Run) -> ModelVersion | None:
    """The registered version the application run scored with.

    The application run logs ``model_name``/``model_version`` when it used an alias; a run
    without them falls back to the version the champion alias points at now.
    """
    params = application_run.data.params
    try:
        if params.get("model_name") and params.get("model_version"):
            return client.get_model_version(params["model_name"], params["model_version"])
        return client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    except MlflowException:  # version deleted, or nothing registered yet
        return None


def training_run_of(client: MlflowClient, version: ModelVersion) -> Run | None:
    """The ``Treinamento`` run that produced ``version`` (its ``training_run_id`` tag)."""
    run_id = version.tags.get("training_run_id")
    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except MlflowException:  # run deleted since
        return None


def latest_trigger_report(client: MlflowClient | None = None) -> TriggerReport | None:
    """Triggers of the latest application run; None when no application run exists yet."""
    if client is None:
        if not tracking_store_exists(tracking_uri()):
            return None  # no store yet: nothing ran, and reading must not create one
        client = MlflowClient(tracking_uri())
    application_run = latest_application_run(client)
    if application_run is None:
        return None
    version = model_version_used(client, application_run)
    training_run = training_run_of(client, version) if version else None
    training_metrics = training_run.data.metrics if training_run else {}
    report = evaluate_triggers(application_run.data.metrics, training_metrics)
    return TriggerReport(application_run.info.run_id, report.triggers, str(version.version) if version else None)
