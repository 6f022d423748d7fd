"""Trends: each retraining trigger figure across application runs, to see a threshold coming."""

import numpy as np
import streamlit as st

from kobe_mlops.dashboard import charts, common
from kobe_mlops.monitoring import trends, triggers

st.title("Trends")
source = common.current_source()
common.require_state(source)
frame = common.store_read(source, trends.application_trends)
if frame is None:
    common.show_empty_state(source, "no application run (PipelineAplicacao) was found")

first, last = frame["start_time"].iloc[0], frame["start_time"].iloc[-1]
if len(frame) < 2:
    st.info(
        "A trend needs at least two application runs: there is one so far, shown as a single point. "
        "Each production file scored by step 04 adds a run:"
    )
    st.code(common.pipeline_command(source.workspace, "--steps 04 --prod-data FILE.parquet"), language="bash")
else:
    st.markdown(f"**{len(frame)} application runs**, from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC.")

for column, name in zip(st.columns(len(trends.TRIGGER_NAMES)), trends.TRIGGER_NAMES, strict=True):
    with column:
        common.show_figure(charts.trigger_trend_figure, frame, name)

st.subheader("Distance to each threshold")
outlook = trends.anticipation(frame)
for column, row in zip(st.columns(len(outlook)), outlook.itertuples(), strict=False):
    label = common.sentence_case(trends.TRIGGER_LABELS[row.trigger])
    if row.runs_measured == 0:
        column.metric(label, "not measured")
        column.caption("Needs labelled production rows.")
        continue
    # No arrow when there is no previous run or nothing changed; the make rate may leave its band on
    # either side, so its change is not coloured as good or bad.
    change = None if np.isnan(row.change) or row.change == 0 else f"{row.change:+.4f} since the previous run"
    colour = "off" if row.trigger == triggers.MAKE_RATE_GAP else "inverse"  # a rise of PSI or log loss is bad
    column.metric(label, f"{row.last_value:.4f}", change, delta_color=colour)
    if np.isnan(row.threshold):
        column.caption("No threshold in that run: its reference rows were too few to set one.")
    elif row.fired:
        column.caption(f"Threshold {row.threshold:.4f}: **fired**.")
    else:
        column.caption(f"Threshold {row.threshold:.4f}: {row.distance_share:.0%} of the threshold left.")
with st.expander("Distance to each threshold, as a table"):
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
    "the threshold. Every trigger fires when its figure rises. Predictive retraining reads this page: a figure "
    "climbing toward its threshold says an alarm is coming before it fires (the reactive triggers act once it has)."
)


with st.expander("Application runs, oldest first"):
    st.dataframe(trends.runs_table(frame), hide_index=True)
st.caption(
    "The figures and thresholds are the ones the Retraining page reads (`Code/kobe_mlops/monitoring/triggers.py`): "
    "each threshold comes from its statistic's noise at the run's file size, so it moves from run to run. Every "
    f"finished PipelineAplicacao run, oldest first; last run `{frame['run_id'].iloc[-1]}`."
)
