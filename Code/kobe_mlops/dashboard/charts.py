"""The dashboard's own figures (ROC, calibration and confusion come from ``modeling/plots.py``).

Every axis says what it measures and in which unit; development and production always get the
same two colours.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are rendered to images for the browser, never to a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES

BASE_COLOURS = {"development": "#1f77b4", "production": "#d62728"}
AXIS_LABELS = {
    "lat": "Court latitude (degrees)",
    "lon": "Court longitude (degrees)",
    "minutes_remaining": "Minutes remaining in the period (min)",
    "period": "Period (5 and up: overtime)",
    "playoffs": "Playoff game (0 = no, 1 = yes)",
    "shot_distance": "Shot distance (ft)",
}
assert set(AXIS_LABELS) == set(config.FEATURES)
COURT_SAMPLE = 5000  # points per base on the court map: enough to see the shape, fast to draw


def _both_bases(development: pd.DataFrame, production: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.concat({"development": development[columns], "production": production[columns]},
                     names=["base"]).reset_index(level=0)


def feature_distributions_figure(development: pd.DataFrame, production: pd.DataFrame,
                                 features=config.FEATURES) -> plt.Figure:
    """One density histogram per feature, development and production overlaid."""
    both = _both_bases(development, production, list(features))
    columns = 3
    rows = int(np.ceil(len(features) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(13, 3.6 * rows))
    for axis, feature in zip(np.ravel(axes), features):
        discrete = FEATURE_RULES[feature].integer
        sns.histplot(both, x=feature, hue="base", stat="density", common_norm=False, discrete=discrete,
                     element="step", palette=BASE_COLOURS, ax=axis)
        axis.set(xlabel=AXIS_LABELS[feature], ylabel="Density (share per unit)", title=feature)
    for axis in np.ravel(axes)[len(features):]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure


def court_map_figure(development: pd.DataFrame, production: pd.DataFrame, sample: int = COURT_SAMPLE,
                     seed: int = config.SEED) -> plt.Figure:
    """Shot locations of both bases side by side, on the same axes (a random sample of each)."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharex=True, sharey=True)
    for axis, (base, frame) in zip(axes, {"development": development, "production": production}.items()):
        shown = frame.sample(min(sample, len(frame)), random_state=seed)
        axis.scatter(shown["lon"], shown["lat"], s=3, alpha=0.35, color=BASE_COLOURS[base], linewidths=0)
        axis.set(xlabel=AXIS_LABELS["lon"], ylabel=AXIS_LABELS["lat"],
                 title=f"{base.capitalize()} base: {len(shown):,} of {len(frame):,} shots")
    basket = development.loc[development["shot_distance"] == 0, ["lon", "lat"]]
    if len(basket):  # zero-distance shots sit under the basket: a reference point on both maps
        for axis in axes:
            axis.scatter(*basket.median().to_numpy(), marker="X", s=120, color="black", label="basket")
            axis.legend(loc="upper right")
    figure.tight_layout()
    return figure


def score_distribution_figure(scores: dict[str, np.ndarray],
                              threshold: float = config.DECISION_THRESHOLD) -> plt.Figure:
    """Density of the predicted probability of a make, one line per labelled set of scores."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    frame = pd.concat({label: pd.Series(values) for label, values in scores.items()}, names=["scores"])
    frame = frame.rename("probability").reset_index(level=0)
    sns.histplot(frame, x="probability", hue="scores", stat="density", common_norm=False, element="step",
                 binwidth=0.02, ax=axis)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1)
    axis.annotate(f"decision threshold {threshold:g}", (threshold, axis.get_ylim()[1] * 0.95),
                  xytext=(4, 0), textcoords="offset points", fontsize=9)
    sns.move_legend(axis, "upper left", title=None)  # the threshold label sits on the right
    axis.set(xlabel="Predicted probability of a make", ylabel="Density (share per unit of probability)",
             title="Score distribution", xlim=(0, 1))
    figure.tight_layout()
    return figure


def threshold_figure(sweeps: dict[str, pd.DataFrame], threshold: float) -> plt.Figure:
    """F1 against the decision threshold for each set of scores, with the chosen threshold marked."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for label, sweep in sweeps.items():
        axis.plot(sweep["threshold"], sweep["f1"], label=label)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"chosen threshold {threshold:.2f}")
    axis.set(xlabel="Decision threshold on the probability of a make", ylabel="F1 score (make = positive)",
             title="F1 by decision threshold", xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="upper right")
    figure.tight_layout()
    return figure
