"""Timeline: production replayed batch by batch under each retraining strategy (run_all.py --replay)."""

import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import charts, common
from kobe_mlops.monitoring import replay_timeline
from kobe_mlops.tracking import reads

st.title("Timeline")
source = common.current_source()
if not reads.store_exists(source.tracking_uri):
    common.show_empty_state(source, "no pipeline run was found")
view = common.store_read(source, replay_timeline.load_replay)
if view is None:
    st.info(
        f"No replay yet: no finished replay (a {config.REPLAY_RUN_NAMES['simulacao_operacao']} run in the "
        f"experiment {config.REPLAY_EXPERIMENT_NAME}) was found in tracking store `{source.tracking_uri}`. After a "
        "pipeline run, replay production season by season (minutes; add `--fast` for the small grids):"
    )
    st.code(common.pipeline_command(source.workspace, "--replay"), language="bash")
    st.stop()

timeline = common.numbered_batches(view.timeline)
summary = view.summary[view.summary["strategy"] != "null"]
st.markdown(
    "  \n".join(f"**{row.strategy}**: {row.verdict}." for row in summary.itertuples())
    + f"  \nNull model (a constant at the make rate of the labels seen before each batch): "
    f"{view.summary.set_index('strategy').loc['null', 'log_loss']:.4f}."
)
common.show_figure(charts.replay_timeline_figure, timeline)
for pair in common.coinciding_strategies(timeline):
    st.info(
        f"**{pair[0]}** and **{pair[1]}** coincide: they retrained after the same batches and promoted the same "
        "challengers, so their curves are the same line."
    )
st.caption(
    "Realized log loss needs the batch's labels; the estimate (CBPE) is what an operator sees the day the batch is "
    "scored, with its 95 % interval. Red marks: a label-based trigger (log-loss degradation, make-rate gap) fired on "
    "the batch. A vertical line after a batch: the strategy ran the promotion gate there (green: a candidate replaced "
    "the model for the next batches; grey dotted: the model stayed)."
)

params = view.params
st.markdown(
    f"**{params['batches']} batches** ({params['batching']}, {params['first_batch']} to {params['last_batch']}), "
    f"replayed {view.start_time:%Y-%m-%d %H:%M} UTC from champion version {params['champion_version']}. "
    "Strategies: **never** (the development champion throughout), **reactive** (the promotion gate "
    f"runs after a label-based alert or once the labels doubled since it last ran), **scheduled** (the gate runs every "
    f"{params['schedule_every']} batches: a calendar), **continuous** (the gate runs after every batch); only the "
    "gate replaces the model. Each batch is scored before its labels are "
    "revealed: every figure is out of sample."
)
st.markdown(f"**First alert** (strategy {timeline['strategy'].iloc[0]}): {common.first_alert_text(timeline)}.")

with st.expander("Summary per strategy"):
    st.dataframe(
        view.summary.style.format(
            {"log_loss": "{:.4f}", "vs_null": "{:+.4f}", "estimation_error": "{:.4f}"}, na_rep="—"
        ),
        hide_index=True,
        column_config={"verdict": st.column_config.TextColumn("verdict", width="large")},
    )
    st.caption(
        "Log loss: pooled over every labelled replayed row (nats per shot, lower is better). Null model: a constant "
        "probability at the make rate of every label revealed before each batch (the development rate before the "
        "first). Estimation error: mean absolute gap between the label-free estimate and the realized log loss, over "
        "the batches with labels."
    )

with st.expander("Can the estimate be trusted? Applicability per batch"):
    applicability = replay_timeline.applicability_table(view.timeline)
    st.dataframe(applicability.rename(columns={"batch_index": "batch_number"}), hide_index=True)
    st.caption(
        "Applicable: the batch does not drift from the rows the estimate is calibrated on; questionable: it drifts "
        "(the features are named per batch); not applicable: the model's reference was too small to calibrate one "
        "(Code/kobe_mlops/monitoring/calculators.py)."
    )

with st.expander("Every batch and strategy"):
    st.dataframe(
        timeline.drop(columns=["applicability_reason", "run_id"]).style.format(
            {"log_loss": "{:.4f}", "estimated_log_loss": "{:.4f}", "log_loss_null": "{:.4f}"}, na_rep="—"
        ),
        hide_index=True,
    )
    st.caption(
        f"Parent run `{view.run_id}` ({config.REPLAY_RUN_NAMES['simulacao_operacao']}, experiment "
        f"{config.REPLAY_EXPERIMENT_NAME}); one {config.RUN_NAMES['aplicacao']} child run per strategy and batch. "
        "Batches are numbered from 1, oldest first, as the replay prints them; trained_through_batch: the last batch "
        "whose labels the scoring model learned (empty: the development champion)."
    )
