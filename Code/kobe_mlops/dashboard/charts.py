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

from kobe_mlops import config
from kobe_mlops.dashboard import verdict
from kobe_mlops.data_acquisition.contract import FEATURE_RULES
from kobe_mlops.monitoring import trends, triggers

BASE_COLOURS = {"development": "#1f77b4", "production": "#d62728"}
TREND_COLOUR = "#1f77b4"
FIRED_COLOUR = "#d62728"
AXIS_LABELS = {
    "lat": "Court latitude (degrees)",
    "lon": "Court longitude (degrees)",
    "minutes_remaining": "Minutes remaining in the period (min)",
    "period": "Period (5 and up: overtime)",
    "playoffs": "Playoff game (0 = no, 1 = yes)",
    "shot_distance": "Shot distance (ft)",
}
assert set(AXIS_LABELS) == set(config.FEATURES)
COURT_SAMPLE = 2500  # points per base on the court map: enough to see the shape, fast to draw


def psi_figure(table: pd.DataFrame) -> plt.Figure:
    """PSI per feature (the logged drift table: ``value``, its no-drift threshold ``upper``, ``alert``)
    on a log axis; red where the PSI is beyond what no-drift files of this size reach."""
    shown = table.dropna(subset=["value"]).sort_values("value")
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(shown) + 1.4))
    positions = np.arange(len(shown))
    values = shown["value"].clip(lower=1e-4)
    axis.barh(positions, values, color=[FIRED_COLOUR if alert else TREND_COLOUR for alert in shown["alert"]])
    axis.scatter(shown["upper"], positions, marker="|", s=400, color="black", zorder=3, label="no-drift threshold")
    for position, psi in zip(positions, shown["value"], strict=True):
        axis.annotate(f"{psi:.3f}", (max(psi, 1e-4), position), xytext=(3, 0), textcoords="offset points", va="center")
    axis.set_yticks(positions, shown["feature"])
    axis.set_xscale("log")
    axis.minorticks_off()  # a log axis's minor ticks were half the figure's drawing time
    axis.set(xlabel="PSI, reference → production (log scale, unitless)", title="Drift per feature")
    axis.legend(loc="lower right")
    figure.tight_layout()
    return figure


def feature_distributions_figure(distributions: pd.DataFrame, features=config.FEATURES) -> plt.Figure:
    """One density histogram per feature, development and production overlaid, from the logged
    rows per value (``names.DRIFT_DISTRIBUTIONS_ARTIFACT``)."""
    import seaborn as sns  # two figures use it: the server does not load it for every page

    columns = 3
    rows = int(np.ceil(len(features) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(13, 3.6 * rows))
    for axis, feature in zip(np.ravel(axes), features, strict=False):
        sns.histplot(
            distributions[distributions["feature"] == feature],
            x="value",
            weights="rows",
            hue="base",
            stat="density",
            common_norm=False,
            discrete=FEATURE_RULES[feature].integer,
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
            title=f"{base.capitalize()} base: {len(shown):,} shots shown",
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
    import seaborn as sns

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


def gate_figure(candidates: dict[str, float], winner: str) -> plt.Figure:
    """Each candidate's log loss on the promotion gate's holdout (lower is better), the winner in green."""
    figure, axis = plt.subplots(figsize=(8, 0.5 * len(candidates) + 1.3))
    labels, values = list(candidates)[::-1], list(candidates.values())[::-1]
    colours = ["#2ca02c" if label == winner else "#7f7f7f" for label in labels]
    axis.barh(labels, values, color=colours)
    for position, value in enumerate(values):
        axis.annotate(f"{value:.4f}", (value, position), xytext=(3, 0), textcoords="offset points", va="center")
    axis.set(
        xlim=(max(0.0, min(values) - 0.02), max(values) + 0.01),
        xlabel="Log loss on the gate's holdout (nats per shot, lower is better)",
        title=f"Candidates at the latest gate (winner: {winner})",
    )
    figure.tight_layout()
    return figure


def rates_figure(rates: dict[str, float]) -> plt.Figure:
    """Make rates and mean probabilities side by side (probability of a make, 0-1)."""
    figure, axis = plt.subplots(figsize=(8, 0.5 * len(rates) + 1.2))
    labels, values = list(rates)[::-1], list(rates.values())[::-1]
    axis.barh(labels, values, color=TREND_COLOUR)
    for position, value in enumerate(values):
        axis.annotate(f"{value:.3f}", (value, position), xytext=(3, 0), textcoords="offset points", va="center")
    axis.set(xlabel="Probability of a make (0-1)", xlim=(0, 1), title="What the model expects against the make rate")
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


# --- Production against its yardsticks (dashboard/verdict.py) --------------------------------

YARDSTICK_COLOURS = {"model": "#1f77b4", "before": "#bbbbbb", "after": "#ff7f0e"}


def yardstick_figure(table: pd.DataFrame, metric: str = "log_loss") -> plt.Figure:
    """Log loss of the model beside its constants, on test and in production (lower is better)."""
    bars = [
        ("test: model", table.loc[metric, "test"], "model"),
        ("test: constant at the training rate", table.loc[metric, "test yardstick"], "before"),
        ("production: model", table.loc[metric, "production"], "model"),
        ("production: " + verdict.BEFORE, table.loc[metric, verdict.BEFORE], "before"),
        ("production: " + verdict.AFTER, table.loc[metric, verdict.AFTER], "after"),
    ]
    bars = [bar for bar in bars if pd.notna(bar[1])]
    figure, axis = plt.subplots(figsize=(9, 0.5 * len(bars) + 1.2))
    labels = [label for label, _, _ in bars][::-1]
    values = [value for _, value, _ in bars][::-1]
    axis.barh(labels, values, color=[YARDSTICK_COLOURS[kind] for _, _, kind in bars][::-1])
    for position, value in enumerate(values):
        axis.annotate(f"{value:.4f}", (value, position), xytext=(3, 0), textcoords="offset points", va="center")
    low = min(values) if values else 0
    axis.set(
        xlabel="Log loss (nats per shot, lower is better)",
        xlim=(max(0.0, low - 0.05), max(values, default=1) + 0.03),
        title="The model beside the constants it has to beat",
    )
    figure.tight_layout()
    return figure


# --- Trigger figures across application runs (monitoring/trends.py) ---------------------------

TREND_AXES = {  # trigger -> (title, y-axis label with its unit)
    triggers.FEATURE_DRIFT: ("Feature drift", "PSI of the feature nearest\nits threshold (unitless)"),
    triggers.LOG_LOSS_DEGRADATION: ("Log-loss degradation", "Production log loss\n(nats per shot)"),
    triggers.MAKE_RATE_GAP: ("Make-rate gap", "Observed make rate\n(probability, 0–1)"),
}
assert set(TREND_AXES) == set(trends.TRIGGER_NAMES)
SINGLE_RUN_SPAN = pd.Timedelta(hours=1)  # x-axis half-width around a lone run


def trigger_trend_figure(frame: pd.DataFrame, trigger: str) -> plt.Figure:
    """One trigger figure per application run (``trends.trend_frame``) with its threshold dashed.

    The threshold is a horizontal line when every run shares it; the log-loss limit depends on each
    run's baseline, so when it varies it is drawn run by run. Runs that fired are marked in red.
    """
    title, ylabel = TREND_AXES[trigger]
    value_column, threshold_column, fired_column = trends.trigger_columns(trigger)
    measured = frame[frame[value_column].notna()]
    figure, axis = plt.subplots(figsize=(5.2, 4.4))  # one of three side by side
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
    # Ticks on the runs themselves (at most four): runs minutes apart get no crowd of minute ticks.
    shown = times.iloc[np.unique(np.linspace(0, len(times) - 1, min(len(times), 4)).round().astype(int))]
    axis.set_xticks(shown)
    # Date and time on every tick: runs minutes apart would otherwise read "30 17:59".
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d\n%H:%M"))
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure


# --- Replay timeline (views/08_Timeline.py) ---------------------------------------------------

REPLAY_COLOURS = {"realized": "#1f77b4", "estimated": "#ff7f0e", "null": "black", "alarm": "#d62728"}
RETRAIN_COLOUR = "#7f7f7f"
PROMOTION_COLOUR = "#2ca02c"


def replay_timeline_figure(timeline: pd.DataFrame) -> plt.Figure:
    """One panel per strategy: realized and estimated log loss per batch, the null model's line,
    label-based trigger alarms (red marks along the bottom; feature-drift alerts counted in the title) and,
    between batches, retrains (grey dotted) and promotions (green) made after a batch
    (``common.numbered_batches`` of ``replay_timeline.timeline_frame``: batches numbered from 1)."""
    strategies = list(dict.fromkeys(timeline["strategy"]))
    figure, axes = plt.subplots(
        len(strategies), 1, figsize=(12, 3.2 * len(strategies)), sharex=True, sharey=True, squeeze=False
    )
    for axis, strategy in zip(axes[:, 0], strategies, strict=True):
        rows = timeline[timeline["strategy"] == strategy].sort_values("batch_number")
        x = rows["batch_number"].to_numpy()
        axis.plot(x, rows["log_loss"], marker="o", color=REPLAY_COLOURS["realized"], label="realized (labels)")
        axis.plot(
            x,
            rows["estimated_log_loss"],
            marker="s",
            linestyle="--",
            color=REPLAY_COLOURS["estimated"],
            label="estimated (no labels, CBPE)",
        )
        axis.fill_between(
            x,
            rows["estimated_log_loss_lower"].astype(float),
            rows["estimated_log_loss_upper"].astype(float),
            color=REPLAY_COLOURS["estimated"],
            alpha=0.15,
            linewidth=0,
            label="estimate's 95 % interval",
        )
        axis.plot(x, rows["log_loss_null"], linestyle=":", color=REPLAY_COLOURS["null"], label="null model")
        fired = rows["fired_triggers"].fillna("").str.split(",")
        drifted = int(fired.map(lambda names_: triggers.FEATURE_DRIFT in names_).sum())
        # Feature drift says where to look and fires on most batches of a shifted population: a mark
        # on every batch would say nothing, so it is counted in the title; label-based alarms are marked.
        title = f"Strategy: {strategy} (feature drift alert on {drifted} of {len(rows)} batches)"
        alarms = rows[fired.map(lambda names_: any(name in triggers.LABEL_TRIGGERS for name in names_)).to_numpy()]
        axis.scatter(
            alarms["batch_number"],
            np.zeros(len(alarms)),  # at the bottom of the panel, whatever the log-loss scale
            marker="^",
            s=40,
            color=REPLAY_COLOURS["alarm"],
            transform=axis.get_xaxis_transform(),
            clip_on=False,
            label="a label-based trigger fired",
            zorder=3,
        )
        for row in rows.itertuples():
            if row.promoted:
                axis.axvline(row.batch_number + 0.5, color=PROMOTION_COLOUR, linewidth=2)
            elif row.retrained:
                axis.axvline(row.batch_number + 0.5, color=RETRAIN_COLOUR, linestyle=":", linewidth=1)
        axis.plot([], [], color=RETRAIN_COLOUR, linestyle=":", label="gate ran, model stayed")
        axis.plot([], [], color=PROMOTION_COLOUR, linewidth=2, label="gate ran, candidate promoted")
        axis.set(ylabel="Log loss (nats per shot)", title=title)
    labels = timeline.drop_duplicates("batch_number").sort_values("batch_number")
    bottom = axes[-1, 0]
    bottom.set_xticks(
        labels["batch_number"], [f"{n}: {b}" for n, b in zip(labels["batch_number"], labels["batch"], strict=True)]
    )
    plt.setp(bottom.get_xticklabels(), rotation=60, ha="right")
    bottom.set_xlabel("Batch, oldest first (scored by the model in service; a line after a batch: the gate ran)")
    # One legend above the panels, where it hides no point: every entry of every panel, once.
    handles = {}
    for axis in axes[:, 0]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    figure.legend(handles.values(), handles.keys(), loc="upper center", ncol=6, fontsize="small")
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / figure.get_figheight()))
    return figure
