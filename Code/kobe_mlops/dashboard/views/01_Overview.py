"""Overview: the verdict on production, the model beside its yardsticks, the champion, the last runs."""

import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import charts, common, verdict
from kobe_mlops.monitoring import health

st.title("Overview")
source = common.current_source()
state = common.require_state(source)

if state.application is None:
    st.info("No application run yet: production metrics appear after step 04 (`run_all.py --steps 04`).")
else:
    common.show_verdict(state)
if state.training is not None:
    table = verdict.yardstick_table(state.training.metrics, state.application.metrics if state.application else {})
    common.show_figure(charts.yardstick_figure, table, width="content")
    measured = state.scored_model or state.champion
    with st.expander("Every metric beside its yardsticks"):
        st.dataframe(table.style.format("{:.4f}", na_rep="—"))
        st.caption(
            f"Version {measured.version if measured else '?'} of {config.REGISTERED_MODEL_NAME}: test metrics from "
            "its training run, production metrics from the latest application run (labelled rows the model did not "
            f"learn). {verdict.YARDSTICK_NOTE}"
        )

st.subheader("Champion")
if state.champion is None:
    st.warning("No model carries the champion alias yet: the training step has not finished.")
else:
    champion = state.champion
    columns = st.columns([3, 1, 2, 3])
    columns[0].markdown(f"Registered model  \n### {champion.name}")
    columns[1].metric("Version", champion.version)
    columns[2].metric("Alias", ", ".join(champion.aliases))
    columns[3].markdown(f"Model type  \n### {champion.model_type}")  # a metric would cut a long name
    # A version is registered at the end of the training run that produced it.
    why = f" · **Why this model:** {champion.selection_reason}" if champion.selection_reason else ""
    st.markdown(f"**Trained and registered:** {champion.registered_at:%Y-%m-%d %H:%M} UTC{why}")
    if state.scored_model and state.scored_model.version != champion.version:
        st.info(
            f"The latest production run scored with version {state.scored_model.version}; "
            f"the champion has moved to version {champion.version} since."
        )

with st.expander("Last pipeline runs"):
    st.dataframe(health.runs_table(state.recent_runs), hide_index=True)
