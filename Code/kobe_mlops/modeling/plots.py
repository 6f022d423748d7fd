"""Evaluation figures: ROC curves, calibration curves and confusion matrices."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures go to MLflow and notebooks, never to a window
import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import ConfusionMatrixDisplay, roc_auc_score, roc_curve

from kobe_mlops import config
from kobe_mlops.modeling.metrics import labels_from_probability


def roc_figure(curves: dict[str, tuple]) -> plt.Figure:
    """``curves`` maps a legend label to ``(y_true, probability)``."""
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for label, (y_true, probability) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, probability)
        axis.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y_true, probability):.3f})")
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="No skill (AUC 0.5)")
    axis.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def calibration_figure(curves: dict[str, tuple], bins: int = 10) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for label, (y_true, probability) in curves.items():
        observed, predicted = calibration_curve(y_true, probability, n_bins=bins, strategy="quantile")
        axis.plot(predicted, observed, marker="o", label=label)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Perfect calibration")
    axis.set(
        xlabel="Mean predicted probability of a make",
        ylabel="Observed make rate",
        title=f"Calibration ({bins} quantile bins)",
    )
    axis.legend(loc="upper left")
    figure.tight_layout()
    return figure


def confusion_figure(y_true, probability, title: str) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(4.5, 4))
    ConfusionMatrixDisplay.from_predictions(
        np.asarray(y_true).astype(int),
        labels_from_probability(probability),
        display_labels=["miss (0)", "make (1)"],
        colorbar=False,
        ax=axis,
    )
    axis.set_title(f"{title}\nthreshold {config.DECISION_THRESHOLD}")
    figure.tight_layout()
    return figure
