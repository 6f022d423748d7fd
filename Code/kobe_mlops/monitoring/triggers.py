"""Retraining triggers: which of the monitoring calculators' alerts the latest application run raised,
and whether enough new labels arrived to be worth a challenger.

``feature_drift`` (no labels): a PSI above its no-drift threshold; ``log_loss_degradation``: the log
loss above the reference's band or worse than the null model; ``make_rate_gap``: the observed make
rate outside the probabilities' band; ``new_labels``: the labelled production rows have doubled
since the gate last ran. :func:`evaluate_triggers` reads a run's logged metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.modeling.challengers import MIN_PRODUCTION_ROWS
from kobe_mlops.monitoring import labels
from kobe_mlops.monitoring.calculators import table_metrics
from kobe_mlops.tracking import names, reads

FEATURE_DRIFT = "feature_drift"
LOG_LOSS_DEGRADATION = "log_loss_degradation"
MAKE_RATE_GAP = "make_rate_gap"
NEW_LABELS = "new_labels"

# What the triggers read from an application run: the calculators' metrics and their alerts.
APPLICATION_METRICS_READ = (
    names.LOG_LOSS,
    "log_loss_upper",
    "log_loss_alert",
    "log_loss_vs_null",
    "log_loss_vs_null_alert",
    names.OBSERVED_MAKE_RATE,
    "observed_make_rate_alert",
)

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
    NEW_LABELS: (
        "Retrain: the labelled production rows have doubled since the gate last ran, enough for a "
        "challenger to learn what the champion could not. Promote it only if it beats the champion on "
        "the newest labelled rows."
    ),
    FEATURE_DRIFT: (
        "Investigate before retraining: production inputs left the training distribution. Confirm "
        "the data source is right, collect labels for the new population and retrain once enough "
        "labelled production rows exist."
    ),
}
NO_ACTION = "No trigger crossed: keep the champion and keep monitoring each application run."
# Alerts that measure a problem with labels; feature drift alone says where to look.
LABEL_TRIGGERS = (LOG_LOSS_DEGRADATION, MAKE_RATE_GAP)
# What calls for retraining: a label-based alert, or enough new labels to learn from.
RETRAINING_TRIGGERS = (*LABEL_TRIGGERS, NEW_LABELS)


def retraining_triggers(fired: list[str]) -> list[str]:
    """The ``fired`` trigger names that call for retraining: one rule for ``run_all.py --retrain``
    and the replay's reactive strategy."""
    return [name for name in fired if name in RETRAINING_TRIGGERS]


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
    def calls_for_retraining(self) -> list[Trigger]:
        calling = retraining_triggers([trigger.name for trigger in self.fired])
        return [trigger for trigger in self.fired if trigger.name in calling]

    @property
    def recommended_action(self) -> str:
        fired = {trigger.name for trigger in self.fired}
        return next((action for name, action in ACTIONS.items() if name in fired), NO_ACTION)


def _alert(metrics: dict[str, float], metric: str) -> bool:
    return metrics.get(f"{metric}_alert", 0.0) == 1.0


def _share_of_threshold(value: float, threshold: float) -> float:
    """``value / threshold``; a zero threshold (a constant feature) is met by 0 and passed by anything more."""
    return value / threshold if threshold > 0 else (math.inf if value > 0 else 0.0)


def feature_drift_trigger(metrics: dict[str, float]) -> Trigger:
    features = [key for key in metrics if key.startswith(names.PSI_PREFIX) and f"{key}_upper" in metrics]
    if not features:
        return Trigger(FEATURE_DRIFT, None, math.nan, False, "No drift threshold: the model's reference is too small.")
    # The feature furthest past (or closest to) its own threshold speaks for the trigger.
    worst = max(features, key=lambda key: _share_of_threshold(metrics[key], metrics[f"{key}_upper"]))
    value, threshold = metrics[worst], metrics[f"{worst}_upper"]
    shifted = sorted(key[len(names.PSI_PREFIX) :] for key in features if _alert(metrics, key))
    feature = worst[len(names.PSI_PREFIX) :]
    if shifted:
        text = (
            f"PSI beyond what no-drift files of this size reach on {', '.join(shifted)} "
            f"({feature}: {value:.3f} > {threshold:.3f})."
        )
    else:
        text = f"Every feature within its no-drift threshold ({feature} is closest: {value:.3f} of {threshold:.3f})."
    return Trigger(FEATURE_DRIFT, value, threshold, bool(shifted), text)


def log_loss_trigger(metrics: dict[str, float]) -> Trigger:
    value = metrics.get(names.LOG_LOSS)
    if value is None:
        return Trigger(LOG_LOSS_DEGRADATION, None, math.nan, False, "Log loss not measured: no graded labelled row.")
    threshold = metrics.get("log_loss_upper", math.nan)
    reasons = []
    if _alert(metrics, names.LOG_LOSS):
        reasons.append(f"above the reference's band (upper {threshold:.4f})")
    if _alert(metrics, "log_loss_vs_null"):
        reasons.append(
            f"worse than the null model known before the file by {metrics['log_loss_vs_null']:.4f} "
            f"(95 % interval from {metrics['log_loss_vs_null_lower']:.4f})"
        )
    verdict = "; ".join(reasons) or "within the reference's band and not worse than the null model"
    return Trigger(LOG_LOSS_DEGRADATION, value, threshold, bool(reasons), f"Log loss {value:.4f}: {verdict}.")


def make_rate_trigger(metrics: dict[str, float]) -> Trigger:
    observed = metrics.get(names.OBSERVED_MAKE_RATE)
    if observed is None or "observed_make_rate_upper" not in metrics:
        return Trigger(MAKE_RATE_GAP, None, math.nan, False, "Make rate not measured: no graded labelled row.")
    lower, upper = metrics["observed_make_rate_lower"], metrics["observed_make_rate_upper"]
    fired = _alert(metrics, names.OBSERVED_MAKE_RATE)
    verb = "outside" if fired else "inside"
    text = f"Observed make rate {observed:.3f}, {verb} the band {lower:.3f} to {upper:.3f} the probabilities put it in."
    return Trigger(MAKE_RATE_GAP, observed, upper, fired, text)


def new_labels_trigger(labelled_rows: int, rows_at_last_gate: int) -> Trigger:
    """Fires once the labelled production rows have doubled since the gate last ran (and grew by
    at least ``MIN_PRODUCTION_ROWS``): a model's loss improves about as much with each doubling of
    its rows, so checking at every doubling spends gate runs where learning can still pay."""
    needed = rows_at_last_gate + max(MIN_PRODUCTION_ROWS, rows_at_last_gate)
    fired = labelled_rows >= needed
    since = f"{rows_at_last_gate} when the gate last ran" if rows_at_last_gate else "none when the gate has not run yet"
    text = f"{labelled_rows} labelled production rows ({since}); {needed} call for a challenger."
    return Trigger(NEW_LABELS, float(labelled_rows), float(needed), fired, text)


def evaluate_triggers(
    metrics: dict[str, float], application_run_id: str | None = None, model_version: str | None = None
) -> TriggerReport:
    """Every trigger for one application run's metrics."""
    triggers = [feature_drift_trigger(metrics), log_loss_trigger(metrics), make_rate_trigger(metrics)]
    return TriggerReport(application_run_id, triggers, model_version)


def fired_triggers(table: pd.DataFrame) -> dict[str, bool]:
    """Each trigger: whether it fired on a calculators' result ``table``, as if the table were logged."""
    return {trigger.name: trigger.fired for trigger in evaluate_triggers(table_metrics(table)).triggers}


def latest_trigger_report(
    client: MlflowClient | None = None, paths: config.WorkspacePaths | None = None, labelled_rows: int | None = None
) -> TriggerReport | None:
    """Triggers of the latest application run, and the label store's new labels since the gate last
    ran (``labelled_rows``: the store's shots, when the caller has read it); None without an application run."""
    client = reads.store_client(client)
    run = reads.latest_application_run(client) if client is not None else None  # no store yet: nothing ran
    if run is None:
        return None
    version = reads.model_version_used(client, run)
    report = evaluate_triggers(run.data.metrics, run.info.run_id, str(version.version) if version else None)
    stored = labels.stored_shots(paths) if labelled_rows is None else labelled_rows
    fresh = new_labels_trigger(stored, reads.labels_at_last_gate(client))
    return TriggerReport(report.application_run_id, [*report.triggers, fresh], report.model_version)
