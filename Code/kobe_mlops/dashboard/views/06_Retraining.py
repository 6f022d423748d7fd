"""Retraining: which reactive triggers the latest application run and the label store cross, and what to do."""

import pandas as pd
import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import charts, common
from kobe_mlops.monitoring import health, triggers
from kobe_mlops.tracking import reads

st.title("Retraining")
source = common.current_source()
report = common.store_read(source, triggers.latest_trigger_report)
if report is None:
    common.show_empty_state(source, "no application run (PipelineAplicacao) was found")

state = common.store_read(source, health.load_pipeline_state)
if state is not None and state.application is not None:
    common.show_verdict(state)
if report.any_fired:
    st.error(
        f"{len(report.fired)} of {len(report.triggers)} triggers fired. **Recommended action:** "
        f"{report.recommended_action}"
    )
else:
    st.success(f"No trigger fired. **Recommended action:** {report.recommended_action}")

for trigger in report.triggers:
    status = ":red[**fired**]" if trigger.fired else ":gray[not measurable]" if trigger.value is None else ":green[ok]"
    st.markdown(f"**{trigger.name.replace('_', ' ').capitalize()}** — {status}  \n{trigger.description}")


def shown(value: float | None, name: str) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{value:,.0f}" if name == triggers.NEW_LABELS else f"{value:.4f}"  # rows, or a figure


with st.expander("The triggers as a table"):
    rows = [(t.name, shown(t.value, t.name), shown(t.threshold, t.name), t.fired) for t in report.triggers]
    st.dataframe(pd.DataFrame(rows, columns=["trigger", "value", "threshold", "fired"]), hide_index=True)
st.caption(
    "Each threshold comes from its statistic's noise at the file's size, against the scoring model's own reference "
    "(`Code/kobe_mlops/monitoring/calculators.py`; which alert raises which trigger: "
    f"`Code/kobe_mlops/monitoring/triggers.py`). Application run `{report.application_run_id}`."
)

st.subheader("Challenger, promotion and rollback")
aliases = common.store_read(source, reads.registry_aliases)
decisions = common.store_read(source, reads.decision_history)
aliases_shown = [config.CHAMPION_ALIAS, config.CHALLENGER_ALIAS, config.PREVIOUS_ALIAS]
for column, alias in zip(st.columns(3), aliases_shown, strict=True):
    column.metric(f"@{alias}", f"version {aliases[alias]}" if alias in aliases else "none")
if decisions.empty:
    st.markdown(
        "The retraining loop has not run yet. It retrains only when a trigger fired and new labelled "
        "production rows exist, and promotes the challenger only if it beats the champion on the "
        "newest labelled rows:"
    )
else:
    latest = decisions.iloc[0]
    st.markdown(
        f"**Latest decision** ({latest['step']}, {latest['start_time']:%Y-%m-%d %H:%M} UTC): "
        f"**{latest['decision']}**. {latest['reason']}"
    )
    gates = decisions[decisions["step"] == config.RETRAINING_RUN_NAMES["validacao_challenger"]]
    if not gates.empty:
        gate = common.store_read(source, common.run_summary, gates.iloc[0]["run_id"])
        candidates = common.gate_candidates(gate)
        if candidates:
            common.show_figure(charts.gate_figure, candidates, gate.params.get("winner", ""), width="content")
    with st.expander(f"Every decision, newest first ({len(decisions)})"):
        st.dataframe(
            decisions.drop(columns="run_id"),
            hide_index=True,
            column_config={
                "start_time": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm"),
                "reason": st.column_config.TextColumn("reason", width="large"),
            },
        )
flags = ["--retrain", "--steps 04 --retrain", "--force-retrain", "--promote VERSION", "--rollback"]
st.code("\n".join(common.pipeline_command(source.workspace, flag) for flag in flags), language="bash")
st.caption(
    "The loop (reactive: it acts on a measured problem or new labels), its promotion rule and how to run it on a "
    "calendar are described in `Docs/Model/Retraining.md`; "
    f"each decision is an MLflow run ({', '.join(config.RETRAINING_RUN_NAMES.values())})."
)
