"""The dashboard's own figures (ROC and calibration come from ``modeling/plots.py``): every axis says what
it measures and in which unit; development and production always get the same two colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are rendered to images for the browser, never to a window
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from kobe_mlops import config
from kobe_mlops.dashboard import verdict
from kobe_mlops.monitoring import trends, triggers

BLUE, RED, ORANGE, GREEN, GREY = "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#7f7f7f"
BASE_COLOURS = {"development": BLUE, "reference": BLUE, "production": RED}
AXIS_LABELS = {
    "lat": "Court latitude (degrees)",
    "lon": "Court longitude (degrees)",
    "minutes_remaining": "Minutes remaining in the period (min)",
    "period": "Period (5 and up: overtime)",
    "playoffs": "Playoff game (0 = no, 1 = yes)",
    "shot_distance": "Shot distance (ft)",
}
assert set(AXIS_LABELS) == set(config.FEATURES)
DENSITY = {"stat": "density", "common_norm": False, "element": "step"}  # each set of scores its own density
COURT_SAMPLE = 2500  # points per base on the court map: enough to see the shape, fast to draw


def fixed_margins(figure: plt.Figure, left=0.8, right=0.2, bottom=0.7, top=0.45, wspace=0.3, hspace=0.45):
    """Margins in inches, whatever the figure's size: for figures of many panels, where a layout engine
    measuring every label costs more than drawing them (about half a second for six panels)."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
        wspace=wspace, hspace=hspace,
    )  # fmt: skip
    return figure


def bars(labels: list[str], values: list[float], colours: list[str], digits: int, width=8, per_bar=0.5, margin=1.2):
    """Horizontal bars, the first label on top, each bar with its value written at its end."""
    figure, axis = plt.subplots(figsize=(width, per_bar * len(labels) + margin), layout="tight")
    axis.barh(labels[::-1], values[::-1], color=colours[::-1])
    for position, value in enumerate(values[::-1]):
        axis.annotate(f"{value:.{digits}f}", (value, position), xytext=(3, 0), textcoords="offset points", va="center")
    return figure, axis


def psi_figure(table: pd.DataFrame) -> plt.Figure:
    """PSI per feature (the logged drift table: ``value``, its no-drift threshold ``upper``, ``alert``) on a
    log axis; red where the PSI is beyond what no-drift files of this size reach."""
    shown = table.dropna(subset=["value"]).sort_values("value", ascending=False)
    colours = [RED if alert else BLUE for alert in shown["alert"]]
    values = list(shown["value"].clip(lower=1e-4))
    figure, axis = bars(list(shown["feature"]), values, colours, 3, per_bar=0.45, margin=1.4)
    axis.scatter(
        shown["upper"], shown["feature"], marker="|", s=400, color="black", zorder=3, label="no-drift threshold"
    )
    axis.set_xscale("log")
    axis.minorticks_off()  # a log axis's minor ticks were half the figure's drawing time
    axis.set(xlabel="PSI, reference → production (log scale, unitless)", title="Drift per feature")
    axis.legend(loc="lower right")
    return figure


def feature_distributions_figure(distributions: pd.DataFrame) -> plt.Figure:
    """Per feature, each base's share of rows in the drift bins the PSI compares (step 04's
    ``names.DRIFT_DISTRIBUTIONS_ARTIFACT``: one point per bin, at its representative value)."""
    features = config.FEATURES
    rows = int(np.ceil(len(features) / 3))
    figure, axes = plt.subplots(rows, 3, figsize=(13, 3.6 * rows))
    for axis, feature in zip(np.ravel(axes), features, strict=False):
        if feature == "lon":  # long tick labels: fewer of them
            axis.xaxis.set_major_locator(MaxNLocator(5))
        for base, counts in distributions[distributions["feature"] == feature].groupby("base", sort=False):
            shares = counts["rows"] / max(int(counts["rows"].sum()), 1)
            axis.plot(counts["value"], shares, drawstyle="steps-mid", marker="o", color=BASE_COLOURS[base], label=base)
        axis.set(xlabel=AXIS_LABELS[feature], ylabel="Share of rows per bin", title=feature)
        axis.legend(fontsize="small")
    for axis in np.ravel(axes)[len(features) :]:
        axis.set_visible(False)
    return fixed_margins(figure, hspace=0.38)


def court_map_figure(development: pd.DataFrame, production: pd.DataFrame) -> plt.Figure:
    """Shot locations of both bases side by side, on the same axes (a random sample of each)."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharex=True, sharey=True)
    for axis, (base, frame) in zip(axes, {"development": development, "production": production}.items(), strict=True):
        shown = frame.sample(min(COURT_SAMPLE, len(frame)), random_state=config.SEED)
        axis.scatter(shown["lon"], shown["lat"], s=3, alpha=0.35, color=BASE_COLOURS[base], linewidths=0)
        title = f"{base.capitalize()} base: {len(shown):,} shots shown"
        axis.set(xlabel=AXIS_LABELS["lon"], ylabel=AXIS_LABELS["lat"], title=title)
    basket = development.loc[development["shot_distance"] == 0, ["lon", "lat"]]
    if len(basket):  # zero-distance shots sit under the basket: a reference point on both maps
        for axis in axes:
            axis.scatter(*basket.median().to_numpy(), marker="X", s=120, color="black", label="basket")
            axis.legend(loc="upper right")
    return fixed_margins(figure, wspace=0.08)


def score_distribution_figure(scores: dict[str, np.ndarray]) -> plt.Figure:
    """Density of the predicted probability of a make, one line per labelled set of scores."""
    import seaborn as sns

    threshold = config.DECISION_THRESHOLD
    figure, axis = plt.subplots(figsize=(7, 4.2), layout="tight")
    frame = pd.concat({label: pd.Series(values) for label, values in scores.items()}, names=["scores"])
    frame = frame.rename("probability").reset_index(level=0)
    sns.histplot(frame, x="probability", hue="scores", binwidth=0.02, ax=axis, **DENSITY)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1)
    top = axis.get_ylim()[1] * 0.95
    axis.annotate(
        f"decision threshold {threshold:g}", (threshold, top), xytext=(4, 0), textcoords="offset points", fontsize=9
    )
    sns.move_legend(axis, "upper left", title=None)  # the threshold label sits on the right
    axis.set(xlabel="Predicted probability of a make", ylabel="Density (share per unit of probability)", xlim=(0, 1))
    axis.set_title("Score distribution")
    return figure


def gate_figure(candidates: dict[str, float], winner: str) -> plt.Figure:
    """Each candidate's log loss on the promotion gate's holdout (lower is better), the winner in green."""
    values = list(candidates.values())
    colours = [GREEN if label == winner else GREY for label in candidates]
    figure, axis = bars(list(candidates), values, colours, 4, margin=1.3)
    axis.set(
        xlim=(max(0.0, min(values) - 0.02), max(values) + 0.01),
        xlabel="Log loss on the gate's holdout (nats per shot, lower is better)",
        title=f"Candidates at the latest gate (winner: {winner})",
    )
    return figure


def rates_figure(rates: dict[str, float]) -> plt.Figure:
    """Make rates and mean probabilities side by side (probability of a make, 0-1)."""
    figure, axis = bars(list(rates), list(rates.values()), [BLUE] * len(rates), 3)
    axis.set(xlabel="Probability of a make (0-1)", xlim=(0, 1), title="What the model expects against the make rate")
    return figure


def threshold_figure(sweeps: dict[str, pd.DataFrame], threshold: float) -> plt.Figure:
    """F1 against the decision threshold for each set of scores, with the chosen threshold marked."""
    figure, axis = plt.subplots(figsize=(7, 4.2), layout="tight")
    for label, sweep in sweeps.items():
        axis.plot(sweep["threshold"], sweep["f1"], label=label)
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"chosen threshold {threshold:.2f}")
    axis.set(xlabel="Decision threshold on the probability of a make", ylabel="F1 score (make = positive)")
    axis.set(title="F1 by decision threshold", xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="upper right")
    return figure


def yardstick_figure(table: pd.DataFrame) -> plt.Figure:
    """Log loss of the model beside its constants (``verdict.yardstick_table``), on test and in production."""
    columns = {
        "test: model": ("test", BLUE),
        "test: constant at the training rate": ("test yardstick", "#bbbbbb"),
        "production: model": ("production", BLUE),
        f"production: {verdict.BEFORE}": (verdict.BEFORE, "#bbbbbb"),
        f"production: {verdict.AFTER}": (verdict.AFTER, ORANGE),
    }
    shown = {label: kind for label, kind in columns.items() if pd.notna(table.loc["log_loss", kind[0]])}
    values = [table.loc["log_loss", column] for column, _ in shown.values()]
    figure, axis = bars(list(shown), values, [colour for _, colour in shown.values()], 4, width=9)
    axis.set(
        xlabel="Log loss (nats per shot, lower is better)",
        xlim=(max(0.0, min(values, default=0) - 0.05), max(values, default=1) + 0.03),
        title="The model beside the constants it has to beat",
    )
    return figure


TREND_AXES = {  # trigger -> (title, y-axis label with its unit)
    triggers.FEATURE_DRIFT: ("Feature drift", "PSI of the feature nearest\nits threshold (unitless)"),
    triggers.LOG_LOSS_DEGRADATION: ("Log-loss degradation", "Production log loss\n(nats per shot)"),
    triggers.MAKE_RATE_GAP: ("Make-rate gap", "Observed make rate\n(probability, 0–1)"),
}
assert set(TREND_AXES) == set(trends.TRIGGER_NAMES)


def trigger_trend_figure(frame: pd.DataFrame, trigger: str) -> plt.Figure:
    """One trigger figure per application run (``trends.trend_frame``), fired runs in red, its threshold
    dashed: one line when every run shares it, else each run's own (the log-loss limit follows its baseline)."""
    title, ylabel = TREND_AXES[trigger]
    value_column, threshold_column, fired_column = trends.trigger_columns(trigger)
    measured = frame[frame[value_column].notna()]
    figure, axis = plt.subplots(figsize=(5.2, 4.4), layout="tight")  # one of three side by side
    axis.set(xlabel="Application run start time (UTC)", ylabel=ylabel, title=f"{title} per application run")
    if measured.empty:
        message = "Not measured in any run: no labelled production rows"
        axis.text(0.5, 0.5, message, ha="center", va="center", transform=axis.transAxes)
        return figure
    times = measured["start_time"].dt.tz_convert("UTC").dt.tz_localize(None)  # matplotlib dates are naive
    values, thresholds = measured[value_column], measured[threshold_column]
    axis.plot(times, values, marker="o", color=BLUE, label=trends.TRIGGER_LABELS[trigger])
    fired = measured[fired_column].to_numpy(dtype=bool)
    if fired.any():
        axis.scatter(times[fired], values[fired], s=70, color=RED, zorder=3, label="fired")
    dashed = {"color": "black", "linestyle": "--", "linewidth": 1}
    if thresholds.nunique() == 1:
        axis.axhline(thresholds.iloc[0], **dashed, label=f"threshold {thresholds.iloc[0]:.3g}")
    else:  # centred steps: around each run the line sits at that run's own threshold
        axis.plot(
            times, thresholds, **dashed, drawstyle="steps-mid", marker="_", markersize=14, label="threshold of each run"
        )
    if times.nunique() == 1:  # matplotlib would spread a single date over years
        axis.set_xlim(times.iloc[0] - pd.Timedelta(hours=1), times.iloc[0] + pd.Timedelta(hours=1))
    # Ticks on the runs themselves (at most four), with date and time: runs minutes apart stay readable.
    axis.set_xticks(times.iloc[np.unique(np.linspace(0, len(times) - 1, min(len(times), 4)).round().astype(int))])
    axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d\n%H:%M"))
    axis.legend(loc="best", fontsize="small")
    return figure


ALARM_LABEL = "a label-based trigger fired"
ALARM_MARKS = {"marker": "^", "s": 40, "color": RED, "clip_on": False, "zorder": 3}
# After a batch where the gate ran: green when it promoted its candidate, grey dotted when the model stayed.
GATE_LINES = {True: {"color": GREEN, "linewidth": 2}, False: {"color": GREY, "linestyle": ":", "linewidth": 1}}


def replay_timeline_figure(timeline: pd.DataFrame) -> plt.Figure:
    """One panel per strategy (``common.numbered_batches`` of the replay's timeline): realized and estimated
    log loss per batch beside the null model, label-based alarms along the bottom (feature-drift alerts
    counted in the title), and after a batch the gate's runs (grey dotted) and promotions (green)."""
    strategies = list(dict.fromkeys(timeline["strategy"]))
    figure, axes = plt.subplots(
        len(strategies), 1, figsize=(12, 3.2 * len(strategies)), sharex=True, sharey=True, squeeze=False
    )
    for axis, strategy in zip(axes[:, 0], strategies, strict=True):
        rows = timeline[timeline["strategy"] == strategy].sort_values("batch_number")
        x = rows["batch_number"].to_numpy()
        axis.plot(x, rows["log_loss"], marker="o", color=BLUE, label="realized (labels)")
        axis.plot(
            x, rows["estimated_log_loss"], marker="s", linestyle="--", color=ORANGE, label="estimated (no labels, CBPE)"
        )
        band = [rows[f"estimated_log_loss_{side}"].astype(float) for side in ("lower", "upper")]
        axis.fill_between(x, *band, color=ORANGE, alpha=0.15, linewidth=0, label="estimate's 95 % interval")
        axis.plot(x, rows["log_loss_null"], linestyle=":", color="black", label="null model")
        fired = rows["fired_triggers"].fillna("").str.split(",")
        # Feature drift fires on most batches of a shifted population: counted in the title, not marked.
        drifted = int(fired.map(lambda fired_names: triggers.FEATURE_DRIFT in fired_names).sum())
        alarms = rows[fired.map(lambda fired_names: bool(set(fired_names) & set(triggers.LABEL_TRIGGERS))).to_numpy()]
        bottom = axis.get_xaxis_transform()  # y in panel units: 0 is the bottom, whatever the log-loss scale
        axis.scatter(alarms["batch_number"], np.zeros(len(alarms)), transform=bottom, label=ALARM_LABEL, **ALARM_MARKS)
        for row in rows[rows["promoted"] | rows["retrained"]].itertuples():
            axis.axvline(row.batch_number + 0.5, **GATE_LINES[row.promoted])
        axis.plot([], [], color=GREY, linestyle=":", label="gate ran, model stayed")
        axis.plot([], [], color=GREEN, linewidth=2, label="gate ran, candidate promoted")
        title = f"Strategy: {strategy} (feature drift alert on {drifted} of {len(rows)} batches)"
        axis.set(ylabel="Log loss (nats per shot)", title=title)
    labels = timeline.drop_duplicates("batch_number").sort_values("batch_number")
    bottom = axes[-1, 0]
    bottom.set_xticks(labels["batch_number"], labels["batch_number"].astype(str) + ": " + labels["batch"])
    plt.setp(bottom.get_xticklabels(), rotation=60, ha="right")
    bottom.set_xlabel("Batch, oldest first (scored by the model in service; a line after a batch: the gate ran)")
    # One legend above the panels, where it hides no point (every panel draws the same entries).
    figure.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper center", ncol=6, fontsize="small")
    return fixed_margins(figure, bottom=1.5, top=0.75, hspace=0.3)
