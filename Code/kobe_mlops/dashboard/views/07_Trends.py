"""Trends: each retraining trigger figure across application runs, to see a threshold coming."""

import numpy as np
import streamlit as st

from kobe_mlops.dashboard import charts, common
from kobe_mlops.monitoring import trends, triggers

st.title("Trends")
source = common.current_source()
common.require_state(source)
frame = common.application_trends(source)
if frame is None:
    common.show_empty_state(source, "no application run (PipelineAplicacao) was found")

first, last = frame["start_time"].iloc[0], frame["start_time"].iloc[-1]
if len(frame) < 2:
    st.info(
        "A trend needs at least two application runs: there is one so far, shown as a single point. "
        "Each production file scored by step 04 adds a run:"
    )
    st.code(f"{common.pipeline_command(source.workspace)} --steps 04 --prod-data FILE.parquet", language="bash")
else:
    st.markdown(f"**{len(frame)} application runs**, from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC.")

st.subheader("Distance to each threshold")
outlook = trends.anticipation(frame)
for column, row in zip(st.columns(len(outlook)), outlook.itertuples(), strict=False):
    label = trends.TRIGGER_LABELS[row.trigger].capitalize()
    if row.runs_measured == 0:
        column.metric(label, "not measured")
        column.caption("Needs labelled production rows.")
        continue
    change = None if np.isnan(row.change) else f"{row.change:+.4f} since the previous run"
    column.metric(label, f"{row.last_value:.4f}", change, delta_color="inverse")  # a rise is bad
    if row.fired:
        column.caption(
            f"Threshold {row.threshold:.4f}: **fired**, {-row.distance_share:.0%} of the threshold beyond it."
        )
    else:
        column.caption(f"Threshold {row.threshold:.4f}: {row.distance_share:.0%} of the threshold left.")
st.dataframe(
    outlook.style.format(
        {
            "last_start_time": "{:%Y-%m-%d %H:%M:%S}",
            "last_value": "{:.4f}",
            "previous_value": "{:.4f}",
            "change": "{:+.4f}",
            "threshold": "{:.4f}",
            "distance_to_threshold": "{:+.4f}",
            "distance_share": "{:+.1%}",
        },
        na_rep="—",
    ),
    hide_index=True,
)
st.caption(
    "Last value: the latest run where the figure was measured (the label-based figures need labelled "
    "rows). Distance: threshold minus last value, negative once crossed; share: that distance over "
    "the threshold. Every trigger fires when its figure rises. No forecast is made."
)

st.subheader("Trigger figures per application run")
for name in trends.TRIGGER_NAMES:
    common.show_figure(charts.trigger_trend_figure(frame, name), width="content")

st.subheader("Application runs")
st.dataframe(trends.runs_table(frame), hide_index=True)
st.caption(
    f"Thresholds live in `Code/kobe_mlops/monitoring/triggers.py`, the figures come from the same functions as the "
    f"Retraining page: largest feature PSI ≥ {triggers.FEATURE_DRIFT_THRESHOLD:g}; production log loss above the "
    f"test log loss of the version scored + {triggers.LOG_LOSS_RELATIVE_MARGIN:.0%} or above the run's null model "
    f"(a constant at its own observed make rate), whichever is lower; mean probability more than "
    f"{triggers.MAKE_RATE_GAP_MARGIN:g} from the observed make rate. Every finished PipelineAplicacao run, "
    f"oldest first; last run `{frame['run_id'].iloc[-1]}`."
)
