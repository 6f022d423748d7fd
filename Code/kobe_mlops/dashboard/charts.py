"""The dashboard's own figures (ROC, calibration and confusion come from ``modeling/plots.py``).

Every axis says what it measures and in which unit; development and production always get the
same two colours.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are rendered to images for the browser, never to a window
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES
from kobe_mlops.monitoring import trends, triggers

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
    return pd.concat(
        {"development": development[columns], "production": production[columns]}, names=["base"]
    ).reset_index(level=0)


def feature_distributions_figure(
    development: pd.DataFrame, production: pd.DataFrame, features=config.FEATURES
) -> plt.Figure:
    """One density histogram per feature, development and production overlaid."""
    both = _both_bases(development, production, list(features))
    columns = 3
    rows = int(np.ceil(len(features) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(13, 3.6 * rows))
    for axis, feature in zip(np.ravel(axes), features, strict=False):
        discrete = FEATURE_RULES[feature].integer
        sns.histplot(
            both,
            x=feature,
            hue="base",
            stat="density",
            common_norm=False,
            discrete=discrete,
            element="step",
            palette=BASE_COLOURS,
            ax=axis,
        )
        axis.set(xlabel=AXIS_LABELS[feature], ylabel="Density (share per unit)", title=feature)
    for axis in np.ravel(axes)[len(features) :]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure


def court_map_figure(
    development: pd.DataFrame, production: pd.DataFrame, sample: int = COURT_SAMPLE, seed: int = config.SEED
) -> plt.Figure:
    """Shot locations of both bases side by side, on the same axes (a random sample of each)."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharex=True, sharey=True)
    for axis, (base, frame) in zip(axes, {"development": development, "production": production}.items(), strict=False):
        shown = frame.sample(min(sample, len(frame)), random_state=seed)
        axis.scatter(shown["lon"], shown["lat"], s=3, alpha=0.35, color=BASE_COLOURS[base], linewidths=0)
        axis.set(
            xlabel=AXIS_LABELS["lon"],
            ylabel=AXIS_LABELS["lat"],
            title=f"{base.capitalize()} base: {len(shown):,} of {len(frame):,} shots",
        )
    basket = development.loc[development["shot_distance"] == 0, ["lon", "lat"]]
    if len(basket):  # zero-distance shots sit under the basket: a reference point on both maps
        for axis in axes:
            axis.scatter(*basket.median().to_numpy(), marker="X", s=120, color="black", label="basket")
            axis.legend(loc="upper right")
    figure.tight_layout()
    return figure


def score_distribution_figure(
    scores: dict[str, np.ndarray], threshold: float = config.DECISION_THRESHOLD
) -> plt.Figure:
    """Density of the predicted probability of a make, one line per labelled set of scores."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    frame = pd.concat({label: pd.Series(values) for label, values in scores.items()}, names=["scores"])
    frame = frame.rename("probability").reset_index(level=0)
    sns.histplot(
        frame, x="probability", hue="scores", stat="density", common_norm=False, element="step", binwidth=0.02, ax=axis
    )
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1)
    axis.annotate(
        f"decision threshold {threshold:g}",
        (threshold, axis.get_ylim()[1] * 0.95),
        xytext=(4, 0),
        textcoords="offset points",
        fontsize=9,
    )
    sns.move_legend(axis, "upper left", title=None)  # the threshold label sits on the right
    axis.set(
        xlabel="Predicted probability of a make",
        ylabel="Density (share per unit of probability)",
        title="Score distribution",
        xlim=(0, 1),
    )
    figure.tight_layout()
    return figure


def threshold_figure(sweeps: dict[str, pd.DataFrame], threshold: float) -> plt.Figure:
    """F1 against the decision threshold for each set of scores, with the chosen threshold marked."""
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for label, sweep in sweeps.items():
        axis.plot(sweep["threshold"], sweep["f1"], label=label)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"chosen threshold {threshold:.2f}")
    axis.set(
        xlabel="Decision threshold on the probability of a make",
        ylabel="F1 score (make = positive)",
        title="F1 by decision threshold",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    axis.legend(loc="upper right")
    figure.tight_layout()
    return figure


# --- Trigger figures across application runs (monitoring/trends.py) ---------------------------

TREND_AXES = {  # trigger -> (title, y-axis label with its unit)
    triggers.FEATURE_DRIFT: ("Feature drift", "Largest feature PSI (unitless)"),
    triggers.LOG_LOSS_DEGRADATION: ("Log-loss degradation", "Production log loss (nats per shot)"),
    triggers.MAKE_RATE_GAP: ("Make-rate gap", "|Mean probability − observed make rate|\n(probability, 0–1)"),
}
assert set(TREND_AXES) == set(trends.TRIGGER_NAMES)
TREND_COLOUR = "#1f77b4"
FIRED_COLOUR = "#d62728"
SINGLE_RUN_SPAN = pd.Timedelta(hours=1)  # x-axis half-width around a lone run


def trigger_trend_figure(frame: pd.DataFrame, trigger: str) -> plt.Figure:
    """One trigger figure per application run (``trends.trend_frame``) with its threshold dashed.

    The threshold is a horizontal line when every run shares it; the log-loss limit depends on each
    run's baseline, so when it varies it is drawn run by run. Runs that fired are marked in red.
    """
    title, ylabel = TREND_AXES[trigger]
    value_column, threshold_column, fired_column = trends.trigger_columns(trigger)
    measured = frame[frame[value_column].notna()]
    figure, axis = plt.subplots(figsize=(7, 3.8))
    axis.set(xlabel="Application run start time (UTC)", ylabel=ylabel, title=f"{title} per application run")
    if measured.empty:
        axis.text(
            0.5,
            0.5,
            "Not measured in any run: no labelled production rows",
            ha="center",
            va="center",
            transform=axis.transAxes,
        )
        figure.tight_layout()
        return figure
    times = measured["start_time"].dt.tz_convert("UTC").dt.tz_localize(None)  # matplotlib dates are naive
    values = measured[value_column]
    axis.plot(times, values, marker="o", color=TREND_COLOUR, label=trends.TRIGGER_LABELS[trigger])
    fired = measured[fired_column].to_numpy(dtype=bool)
    if fired.any():
        axis.scatter(times[fired], values[fired], s=70, color=FIRED_COLOUR, zorder=3, label="fired")
    thresholds = measured[threshold_column]
    if thresholds.nunique() == 1:
        axis.axhline(
            thresholds.iloc[0], color="black", linestyle="--", linewidth=1, label=f"threshold {thresholds.iloc[0]:.3g}"
        )
    else:
        # Centred steps: around each run the line sits at that run's own threshold.
        axis.plot(
            times,
            thresholds,
            color="black",
            linestyle="--",
            linewidth=1,
            drawstyle="steps-mid",
            marker="_",
            markersize=14,
            label="threshold of each run",
        )
    if times.nunique() == 1:  # matplotlib would spread a single date over years
        axis.set_xlim(times.iloc[0] - SINGLE_RUN_SPAN, times.iloc[0] + SINGLE_RUN_SPAN)
    locator = mdates.AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axis.legend(loc="best")
    figure.tight_layout()
    return figure


# --- Replay timeline (views/08_Timeline.py) ---------------------------------------------------

REPLAY_COLOURS = {"realized": "#1f77b4", "estimated": "#ff7f0e", "null": "black", "alarm": "#d62728"}
RETRAIN_COLOUR = "#7f7f7f"
PROMOTION_COLOUR = "#2ca02c"


def replay_timeline_figure(timeline: pd.DataFrame) -> plt.Figure:
    """One panel per strategy: realized and estimated log loss per batch, the null model's line,
    trigger alarms (red marks along the bottom) and, between batches, retrains (grey dotted) and
    promotions (green) made after a batch (``replay_timeline.timeline_frame``)."""
    strategies = list(dict.fromkeys(timeline["strategy"]))
    figure, axes = plt.subplots(
        len(strategies), 1, figsize=(12, 3.2 * len(strategies)), sharex=True, sharey=True, squeeze=False
    )
    for axis, strategy in zip(axes[:, 0], strategies, strict=True):
        rows = timeline[timeline["strategy"] == strategy].sort_values("batch_index")
        x = rows["batch_index"].to_numpy()
        axis.plot(x, rows["log_loss"], marker="o", color=REPLAY_COLOURS["realized"], label="realized (labels)")
        axis.plot(
            x,
            rows["estimated_log_loss"],
            marker="s",
            linestyle="--",
            color=REPLAY_COLOURS["estimated"],
            label="estimated (no labels, CBPE)",
        )
        axis.plot(x, rows["log_loss_null"], linestyle=":", color=REPLAY_COLOURS["null"], label="null model")
        alarms = rows[rows["fired"]]
        axis.scatter(
            alarms["batch_index"],
            np.zeros(len(alarms)),  # at the bottom of the panel, whatever the log-loss scale
            marker="^",
            s=40,
            color=REPLAY_COLOURS["alarm"],
            transform=axis.get_xaxis_transform(),
            clip_on=False,
            label="a trigger fired",
            zorder=3,
        )
        for row in rows.itertuples():
            if row.promoted:
                axis.axvline(row.batch_index + 0.5, color=PROMOTION_COLOUR, linewidth=2)
            elif row.retrained:
                axis.axvline(row.batch_index + 0.5, color=RETRAIN_COLOUR, linestyle=":", linewidth=1)
        axis.plot([], [], color=RETRAIN_COLOUR, linestyle=":", label="challenger kept out")
        axis.plot([], [], color=PROMOTION_COLOUR, linewidth=2, label="challenger promoted")
        axis.set(ylabel="Log loss (nats per shot)", title=f"Strategy: {strategy}")
    labels = timeline.drop_duplicates("batch_index").sort_values("batch_index")
    bottom = axes[-1, 0]
    bottom.set_xticks(labels["batch_index"], labels["batch"], rotation=60, ha="right")
    bottom.set_xlabel("Batch, oldest first (scored by the model in service; a line after a batch: its retraining)")
    # One legend above the panels, where it hides no point.
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncol=6, fontsize="small")
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / figure.get_figheight()))
    return figure
