"""Retraining: which reactive triggers the latest application run crosses, and what to do."""

import pandas as pd
import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import common
from kobe_mlops.monitoring import triggers

st.title("Retraining")
source = common.current_source()
report = common.trigger_report(source)
if report is None:
    common.show_empty_state(source, "no application run (PipelineAplicacao) was found")

if report.any_fired:
    st.error(
        f"{len(report.fired)} of {len(report.triggers)} triggers fired. **Recommended action:** "
        f"{report.recommended_action}"
    )
else:
    st.success(f"No trigger fired. **Recommended action:** {report.recommended_action}")

for trigger in report.triggers:
    if trigger.fired:
        status = ":red[**fired**]"
    elif trigger.value is None:
        status = ":gray[not measurable]"
    else:
        status = ":green[ok]"
    st.markdown(f"**{trigger.name.replace('_', ' ').capitalize()}** — {status}  \n{trigger.description}")

st.dataframe(
    pd.DataFrame(
        [{"trigger": t.name, "value": t.value, "threshold": t.threshold, "fired": t.fired} for t in report.triggers]
    ),
    hide_index=True,
)
st.caption(
    f"Thresholds (in `Code/kobe_mlops/monitoring/triggers.py`): largest feature PSI ≥ "
    f"{triggers.FEATURE_DRIFT_THRESHOLD:g}; production log loss above the test log loss + "
    f"{triggers.LOG_LOSS_RELATIVE_MARGIN:.0%} or above a constant at the observed production make rate; "
    f"mean probability more than {triggers.MAKE_RATE_GAP_MARGIN:g} from the observed make rate. "
    f"Application run `{report.application_run_id}`."
)

st.subheader("Challenger, promotion and rollback")
aliases, decisions = common.retraining_history(source)
for column, alias in zip(
    st.columns(3), [config.CHAMPION_ALIAS, config.CHALLENGER_ALIAS, config.PREVIOUS_ALIAS], strict=False
):
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
    st.dataframe(
        decisions.drop(columns="run_id"),
        hide_index=True,
        column_config={
            "start_time": st.column_config.DatetimeColumn("started (UTC)"),
            "reason": st.column_config.TextColumn("reason", width="large"),
        },
    )
st.code(
    "\n".join(
        f"{common.pipeline_command(source.workspace)} {flags}"
        for flags in ["--retrain", "--steps 04 --retrain", "--force-retrain", "--rollback"]
    ),
    language="bash",
)
st.caption(
    "The loop, its promotion rule and a scheduled check are described in `Docs/Model/Retraining.md`; "
    "each decision is an MLflow run (VerificacaoRetreino, ValidacaoChallenger, Rollback)."
)
