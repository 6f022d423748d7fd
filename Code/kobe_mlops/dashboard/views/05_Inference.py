"""Inference: the probability of a make for one shot, from the served API or the embedded champion."""

import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import common, inference
from kobe_mlops.data_acquisition.contract import FEATURE_RULES
from kobe_mlops.deployment import serving
from kobe_mlops.monitoring import health

st.title("Inference")
source = common.current_source()
url = st.text_input(
    "Scoring API URL",
    value=serving.configured_scoring_url(),
    placeholder="http://127.0.0.1:5001 (empty: the embedded champion)",
    help=f"Preset with the {serving.SCORING_URL_ENV} environment variable; "
    "MLflow's /invocations path is added when missing.",
)
state = common.store_read(source, health.load_pipeline_state)
if not url and (state is None or state.champion is None):
    common.show_empty_state(source, "no champion model is registered and no scoring API URL is set")

champion = state.champion if state else None
support = champion and common.store_read(source, common.training_artifacts, champion.name, champion.version)[1]
if support:
    bands = ", ".join(f"{name} {low:g} to {high:g}" for name, (low, high) in support.items())
    st.markdown(
        f"Version {champion.version} (@{config.CHAMPION_ALIAS}) learned shots with {bands}: outside these "
        "bands its probability is an extrapolation, and the answer says so."
    )
defaults = inference.default_values(common.development(source))
with st.form("shot"):
    st.write("Describe the shot (limits from the data contract):")
    values = {}
    columns = st.columns(3)
    for index, (name, rule) in enumerate(FEATURE_RULES.items()):
        values[name] = columns[index % 3].number_input(
            f"{name} — {rule.meaning}", value=defaults[name], key=f"feature_{name}", **inference.input_limits(rule)
        )
    submitted = st.form_submit_button("Predict")

if submitted:
    problem = inference.validate_shot(values)
    if problem:
        st.error(problem)
        st.stop()
    if url:
        model, origin = serving.RestScoringClient(url), f"served API at {serving.invocations_url(url)}"
    else:
        # The version the alias points at now: a cached "@champion" would go stale when the alias moves.
        model = common.load_model(champion.uri, source.tracking_uri)
        origin = f"embedded {champion.name} version {champion.version} (@{config.CHAMPION_ALIAS})"
    warning = support and inference.outside_support_message(values, support, champion.version)
    try:
        probability = inference.make_probability(values, model)
    except serving.ScoringError as exc:
        st.error(str(exc))
        st.stop()
    label = "make" if probability >= config.DECISION_THRESHOLD else "miss"
    st.metric("Probability of a make", f"{probability:.1%}")
    st.success(f"Predicted **{label}** at threshold {config.DECISION_THRESHOLD} · answered by the {origin}.")
    if warning:
        st.warning(warning)
