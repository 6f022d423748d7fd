"""Names of the MLflow metrics, params and tags one module writes and another reads: the loggers of
``Treinamento`` and ``PipelineAplicacao`` write them, the retraining loop and dashboard read them.
"""

from __future__ import annotations

# --- Treinamento ------------------------------------------------------------------------------
# How many production rows the model learned, and their shot_id (monitoring never grades on them).
PRODUCTION_ROWS_LEARNED = "production_rows_learned"
PRODUCTION_SHOT_IDS_ARTIFACT = "training/production_shot_ids.parquet"
# Model version tag written at registration: the Treinamento run that produced the version.
TRAINING_RUN_TAG = "training_run_id"
# The model's training support (modeling/support.py), read by the label-free estimate.
FEATURE_SUPPORT_ARTIFACT = "training/feature_support.json"
# Probability and outcome on the labelled rows the model never learned: its label-free estimate's calibration.
REFERENCE_SCORES_ARTIFACT = "training/reference_scores.parquet"


def champion_test_metric(name: str) -> str:
    """``f1`` -> ``f1_champion_test``: the registered model's metric on base_test."""
    return f"{name}_champion_test"


def baseline_test_metric(name: str) -> str:
    return f"{name}_baseline_test"


# --- PipelineAplicacao ------------------------------------------------------------------------
# Params: what was scored, with which registered version and engine.
PROD_DATA = "prod_data"
ENGINE = "engine"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
ROWS_INPUT = "rows_input"
ROWS_SCORED = "rows_scored"
ROWS_REJECTED = "rows_rejected"
ROWS_LABELLED = "rows_labeled"
COUNT_METRICS = [ROWS_INPUT, ROWS_SCORED, ROWS_REJECTED, ROWS_LABELLED]

PROD_NULL_LOG_LOSS = "log_loss_null_prod"  # after the fact: a constant at the file's own make rate
NULL_RATE = "null_rate"  # the deployable null model's constant: the make rate known before the file
NULL_LOG_LOSS = "log_loss_null"  # the log loss of that constant on the graded rows (known before the file)
MONITORING_TABLE_ARTIFACT = "monitoring/result_table.json"  # the calculators' table (chunk, metric, value, ...)
OBSERVED_MAKE_RATE = "observed_make_rate"
LABELLED_MEAN_PROBABILITY = "mean_probability_labeled"
PREDICTED_MAKE_RATE = "predicted_make_rate"
MEAN_PROBABILITY = "mean_probability"
# Label-free estimate (monitoring/calculators.py) and whether it can be trusted.
ESTIMATED_LOG_LOSS = "estimated_log_loss"
ESTIMATE_APPLICABILITY_TAG = "estimate_applicability"
ESTIMATE_REASON_TAG = "estimate_applicability_reason"
# Never in-sample: labelled rows the scoring model learned are counted, not graded.
ROWS_SEEN_IN_TRAINING = "rows_seen_in_training"
ROWS_EVALUATED = "rows_evaluated"
# Label store (monitoring/labels.py)
LABELS_APPENDED = "labels_appended"
LABELLED_PRODUCTION_ROWS = "labelled_production_rows"  # rows in the store when retraining is checked
LABEL_CONFLICTS = "label_conflicts"  # labelled rows whose shot the store holds with the other label
# Set on a PipelineAplicacao run that failed: what it was doing and the error (nothing was published).
FAILURE_TAG = "kobe.failure_reason"  # also put by tracking.recovery on the runs a dead process left
LOG_LOSS = "log_loss"  # the course's names for the production log loss and F1
F1_SCORE = "f1_score"
PSI_PREFIX = "psi_"
DRIFT_TABLE_ARTIFACT = "drift/feature_comparison.json"
# Step 04's tables for the dashboard: rows per drift bin (feature, base, value, rows), graded and scored
# rows per probability rounded to 4 decimals (probability, misses, makes; probability, rows).
DRIFT_DISTRIBUTIONS_ARTIFACT = "drift/feature_distributions.json"
GRADED_SCORE_COUNTS_ARTIFACT = "labelled/score_counts.json"
SCORE_COUNTS_ARTIFACT = "scores/score_counts.json"
# Tag set when no scored row has a label (no labelled metric is logged then).
LABELLED_METRICS_TAG = "labelled_metrics"


def prod_metric(name: str) -> str:
    """``auc`` -> ``auc_prod``: the scoring model's metric on labelled production rows (the log loss
    and F1 keep the names the course gives them: ``log_loss``, ``f1_score``)."""
    return {"log_loss": LOG_LOSS, "f1": F1_SCORE}.get(name, f"{name}_prod")


def baseline_prod_metric(name: str) -> str:
    """``auc`` -> ``auc_baseline_prod``: the deployable null's metric on the graded rows (its log loss
    is the calculators' ``log_loss_null``: one name for one figure)."""
    return NULL_LOG_LOSS if name == "log_loss" else f"{name}_baseline_prod"


def psi_metric(feature: str) -> str:
    return f"{PSI_PREFIX}{feature}"


# --- Decisions: VerificacaoRetreino, ValidacaoChallenger, Promocao, Rollback and replay children --
DECISION_TAG = "decision"  # what was decided (retrain/skip, promote/keep, rollback, ...)
REASON_TAG = "reason"  # why, in one or a few sentences
CHAMPION_VERSION = "champion_version"  # param: the @champion version the decision was about
# Tags of an alias move: the @champion version before and after it.
CHAMPION_BEFORE_TAG, CHAMPION_AFTER_TAG = "champion_version_before", "champion_version_after"
SELECTION_REASON_TAG = "selection_reason"  # Treinamento run and model version: why this model was chosen
HOLDOUT_LOG_LOSS_PREFIX = "holdout_log_loss_"  # a gate's figure per candidate (ValidacaoChallenger, replay)

# --- SimulacaoOperacao: the season-by-season replay (monitoring/replay.py) --------------------
# Each child run is a PipelineAplicacao of one strategy on one batch; the parent sums them up.
REPLAY_STRATEGY_TAG = "kobe.replay_strategy"
REPLAY_BATCH = "batch"  # param: the season (or the date range of a batch of rows)
REPLAY_BATCH_NUMBER = "batch_number"  # param: 1-based, oldest batch first, as pages and progress lines show it
REPLAY_SUMMARY_ARTIFACT = "replay/summary.json"
SCORING_MODEL_TAG = "scoring_model"  # one line describing the model in service
REFERENCE_TAG = "monitoring_reference"  # where the calculators' reference rows come from
MONITORING_PROBLEM_TAG = "monitoring_problem"  # why no threshold or estimate could be set
# param: index of the last batch whose labels the scoring model learned (-1: the development champion)
TRAINED_THROUGH_BATCH = "trained_through_batch"
RETRAINED = "retrained"  # 1 when the strategy trained a challenger after the batch
PROMOTED = "promoted"  # 1 when that challenger passed the promotion gate
REPLAY_POOLED_NULL_LOG_LOSS = "log_loss_null_pooled"  # parent run: the null model over every replayed batch
REPLAY_REACTIVE_VS_SCHEDULED = "reactive_minus_scheduled"  # parent run: paired, with _lower and _upper
FIRED_TRIGGERS_TAG = "fired_triggers"


def holdout_metric(candidate: str) -> str:
    """``challenger`` -> ``holdout_log_loss_challenger``: a gate candidate's log loss on the holdout."""
    return f"{HOLDOUT_LOG_LOSS_PREFIX}{candidate}"


def strategy_metric(name: str, strategy: str) -> str:
    """``log_loss``, ``reactive`` -> ``log_loss_reactive``: a parent-run figure of one strategy."""
    return f"{name}_{strategy}"


def trigger_metric(trigger: str) -> str:
    """``feature_drift`` -> ``trigger_feature_drift``: the trigger's value, as VerificacaoRetreino logs it."""
    return f"trigger_{trigger}"


def trigger_fired_metric(trigger: str) -> str:
    return f"trigger_{trigger}_fired"


# --- Columns and metadata of the application step's outputs -----------------------------------
MODEL_VERSION_COLUMN = "model_version"  # the registered version that scored the row
SCORED_AT_COLUMN = "scored_at"  # when the run scored it (UTC, one value per run)
RUN_ID_METADATA = "kobe.run_id"  # predictions' parquet metadata: the PipelineAplicacao run they belong to
