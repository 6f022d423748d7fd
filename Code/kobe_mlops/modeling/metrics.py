"""Probability-based evaluation beside the trivial baselines; labels are a threshold on the probability."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from kobe_mlops import config

METRIC_NAMES = ["log_loss", "f1", "auc", "precision", "recall", "brier", "accuracy"]


def labels_from_probability(probability, threshold: float = config.DECISION_THRESHOLD) -> np.ndarray:
    return (np.asarray(probability) >= threshold).astype(int)


def evaluate_probabilities(y_true, probability, threshold: float = config.DECISION_THRESHOLD) -> dict[str, float]:
    """Log loss, F1, AUC, precision, recall, Brier score and accuracy for P(make)."""
    return _scores(y_true, probability, labels_from_probability(probability, threshold))


def baseline_metrics(y_true, base_rate: float) -> dict[str, float]:
    """What a model with no information scores: the constant base rate for the probability metrics,
    always "make" for the label metrics."""
    return _scores(y_true, np.full(len(y_true), base_rate), np.ones(len(y_true), dtype=int))


def _scores(y_true, probability, predicted) -> dict[str, float]:
    y_true = np.asarray(y_true).astype(int)
    probability = np.asarray(probability, dtype=float)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "log_loss": float(log_loss(y_true, probability, labels=[0, 1])),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "auc": float(roc_auc_score(y_true, probability)) if both_classes else float("nan"),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y_true, probability)),
        "accuracy": float(accuracy_score(y_true, predicted)),
    }


def prefixed(metrics: dict[str, float], model_key: str, split: str) -> dict[str, float]:
    """MLflow names such as ``log_loss_lr_test`` and ``f1_dt_test``."""
    return {f"{name}_{model_key}_{split}": value for name, value in metrics.items()}
