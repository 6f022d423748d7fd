"""Overview: the champion, test vs production metrics beside their baselines, the last runs."""

import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import common
from kobe_mlops.monitoring import health

st.title("Overview")
source = common.current_source()
state = common.require_state(source)

st.subheader("Champion")
if state.champion is None:
    st.warning("No model carries the champion alias yet: the training step has not finished.")
else:
    champion = state.champion
    columns = st.columns([2, 1, 2, 2])
    columns[0].markdown(f"Registered model  \n### {champion.name}")
    columns[1].metric("Version", champion.version)
    columns[2].metric("Alias", ", ".join(champion.aliases))
    columns[3].metric("Model type", champion.model_type)
    # A version is registered at the end of the training run that produced it.
    st.markdown(
        f"**Trained and registered:** {champion.registered_at:%Y-%m-%d %H:%M} UTC · "
        f"**Why this model:** {champion.selection_reason}"
    )
    if state.scored_model and state.scored_model.version != champion.version:
        st.info(
            f"The latest production run scored with version {state.scored_model.version}; "
            f"the champion has moved to version {champion.version} since."
        )

st.subheader("Test vs production, each beside its trivial baseline")
if state.training is None:
    st.info("No training run yet: test metrics appear after the training step.")
else:
    table = health.metrics_side_by_side(state.training.metrics, state.application.metrics if state.application else {})
    st.dataframe(table.style.format("{:.4f}", na_rep="no labels"))
    measured = state.scored_model or state.champion
    st.caption(
        f"Version {measured.version if measured else '?'} of {config.REGISTERED_MODEL_NAME}: test metrics "
        "from its training run, production metrics from the latest application run. Baselines: the "
        "constant training make rate for log loss, Brier and AUC; always predicting “make” for F1, "
        "precision, recall and accuracy. Lower is better for log loss and Brier."
    )
    if state.application is None:
        st.info("No application run yet: production metrics appear after step 04 (`run_all.py --steps 04`).")

st.subheader("Last pipeline runs")
st.dataframe(health.runs_table(state.recent_runs), hide_index=True)
