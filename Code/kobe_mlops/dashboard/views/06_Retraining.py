"""Retraining: which reactive triggers the latest application run crosses, and what to do."""

import pandas as pd
import streamlit as st

from kobe_mlops.dashboard import common
from kobe_mlops.deployment import triggers

st.title("Retraining")
source = common.current_source()
report = common.trigger_report(source)
if report is None:
    common.show_empty_state(source, "no application run (PipelineAplicacao) was found")

if report.any_fired:
    st.error(f"{len(report.fired)} of {len(report.triggers)} triggers fired. **Recommended action:** "
             f"{report.recommended_action}")
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
    pd.DataFrame([{"trigger": t.name, "value": t.value, "threshold": t.threshold, "fired": t.fired}
                  for t in report.triggers]),
    hide_index=True,
)
st.caption(
    f"Thresholds (in `Code/kobe_mlops/deployment/triggers.py`): largest feature PSI ≥ "
    f"{triggers.FEATURE_DRIFT_THRESHOLD:g}; production log loss above the test log loss + "
    f"{triggers.LOG_LOSS_RELATIVE_MARGIN:.0%} or above the production constant-rate baseline; "
    f"mean probability more than {triggers.MAKE_RATE_GAP_MARGIN:g} from the observed make rate. "
    f"Application run `{report.application_run_id}`."
)
