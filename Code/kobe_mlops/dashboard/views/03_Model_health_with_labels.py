"""Model health with labels: the champion's metrics, curves and threshold trade-off, test vs production."""

import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import charts, common
from kobe_mlops.modeling import plots
from kobe_mlops.modeling.metrics import evaluate_probabilities
from kobe_mlops.monitoring import health

st.title("Model health with labels")
source = common.current_source()
state = common.require_state(source)
data = common.processed(source)
if state.application is None or state.scored_model is None:
    common.show_empty_state(source, "no application run (PipelineAplicacao) with a registered model was found")
if data.test is None or data.predictions is None:
    common.show_empty_state(source, "data/processed has no base_test or no scored production base")

model = state.scored_model
labelled = health.labelled_rows(data.predictions)
st.caption(
    f"Model {model.name} version {model.version} ({model.model_type}), the version the latest "
    f"production run scored with. Production: {len(labelled):,} labelled of {len(data.predictions):,} "
    "scored rows."
)
if labelled.empty or labelled[config.TARGET].nunique() < 2:
    st.info(
        "The scored production rows carry no outcome labels of both classes yet, so production log loss, "
        "F1 and curves cannot be computed. The page *Model health without labels* works without them."
    )
    st.stop()

curves = common.labelled_scores(source, model.uri)

threshold = st.slider(
    "Decision threshold on the probability of a make",
    0.05,
    0.95,
    float(config.DECISION_THRESHOLD),
    0.01,
    help=f"The model's own threshold is {config.DECISION_THRESHOLD}; moving it here changes only what this page shows.",
)

metrics = {
    label: evaluate_probabilities(y_true, probability, threshold) for label, (y_true, probability) in curves.items()
}
st.subheader("Metrics at this threshold")
columns = st.columns(4)
for column, name in zip(columns, ["log_loss", "f1", "precision", "recall"], strict=False):
    test_value, prod_value = (metrics[label][name] for label in curves)
    column.metric(
        f"{name.replace('_', ' ')} (production)",
        f"{prod_value:.3f}",
        f"{prod_value - test_value:+.3f} vs test",
        delta_color="inverse" if name == "log_loss" else "normal",
    )  # lower log loss is better
st.dataframe({label: values for label, values in metrics.items()})

st.subheader("Threshold explorer")
sweeps = common.threshold_sweeps(source, model.uri)
common.show_figure(charts.threshold_figure(sweeps, threshold), width="content")
best = {label: health.best_threshold(sweep) for label, sweep in sweeps.items()}
st.markdown(
    "  \n".join(
        f"Best F1 on {label}: **{row['f1']:.3f}** at threshold {row['threshold']:.2f}" for label, row in best.items()
    )
)

st.subheader("ROC and calibration")
left, right = st.columns(2)
with left:
    common.show_figure(plots.roc_figure(curves))
with right:
    common.show_figure(plots.calibration_figure(curves))

st.subheader("Confusion matrices")
for column, (label, (y_true, probability)) in zip(st.columns(2), curves.items(), strict=False):
    with column:
        common.show_figure(plots.confusion_figure(y_true, probability, label, threshold))
