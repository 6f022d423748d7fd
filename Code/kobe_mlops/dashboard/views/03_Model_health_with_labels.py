"""Model health with labels: the figures step 04 graded on rows the model never learned, beside test."""

import numpy as np
import pandas as pd
import streamlit as st
from sklearn.metrics import confusion_matrix

from kobe_mlops import config
from kobe_mlops.dashboard import charts, common, verdict
from kobe_mlops.modeling import plots
from kobe_mlops.modeling.metrics import evaluate_probabilities
from kobe_mlops.monitoring import health
from kobe_mlops.tracking import names

st.title("Model health with labels")
source = common.current_source()
state, run = common.require_application(source)
model = state.scored_model
metrics = run.metrics

common.show_verdict(state)
if names.LOG_LOSS not in metrics:
    st.info(
        f"{run.tags.get(names.LABELLED_METRICS_TAG, 'No labelled metric was logged')}. The page *Model health "
        "without labels* works without them."
    )
    st.stop()
table = verdict.yardstick_table(state.training.metrics if state.training else {}, metrics)
common.show_figure(charts.yardstick_figure, table, width="content")
st.caption(
    f"Model {model.name} version {model.version} ({model.model_type}), the version the latest production run scored "
    f"with. Production: {metrics.get(names.ROWS_EVALUATED, 0):,.0f} labelled rows graded by step 04 (rows the model "
    f"never learned); {metrics.get(names.ROWS_SEEN_IN_TRAINING, 0):,.0f} labelled rows it was trained on are left out."
)

st.subheader(f"Metrics at the model's threshold {config.DECISION_THRESHOLD}")
for column, name in zip(st.columns(5), ["log_loss", "auc", "f1", "precision", "recall"], strict=True):
    production, test = table.loc[name, "production"], table.loc[name, "test"]
    column.metric(
        f"{name.replace('_', ' ')} (production)",
        f"{production:.3f}",
        common.metric_delta(production - test, "{:+.3f} vs test"),
        delta_color="inverse" if name == "log_loss" else "normal",  # lower log loss is better
    )
with st.expander("Every metric beside its yardsticks"):
    st.dataframe(table.style.format("{:.4f}", na_rep="—"))
    st.caption(verdict.YARDSTICK_NOTE)

reference, _ = common.store_read(source, common.training_artifacts, model.name, model.version)
graded = common.graded_scores(source, run)
curves = {}
if reference is not None:
    held_out = reference[config.TARGET].to_numpy(), reference[config.PROBABILITY_COLUMN].to_numpy()
    curves[common.held_out_label(model)] = held_out
if graded is not None:
    curves["production (graded rows)"] = graded
else:
    st.info(
        f"The application run logged no graded rows per probability ({names.GRADED_SCORE_COUNTS_ARTIFACT}): "
        "the threshold explorer, ROC, calibration and confusion matrix below show the rows held out of training only."
    )
if not curves:
    st.stop()

st.subheader("Threshold explorer")
threshold = st.slider(
    "Decision threshold on the probability of a make",
    0.05,
    0.95,
    float(config.DECISION_THRESHOLD),
    0.01,
    help=f"The model's own threshold is {config.DECISION_THRESHOLD}; moving it here changes only what this page shows.",
)
sweeps = common.threshold_sweeps(curves)
common.show_figure(charts.threshold_figure, sweeps, threshold, width="content")
at_threshold = {
    label: evaluate_probabilities(y_true, probability, threshold) for label, (y_true, probability) in curves.items()
}
best = {label: health.best_threshold(sweep) for label, sweep in sweeps.items()}
st.markdown(
    "  \n".join(
        f"Best F1 on {label}: **{row['f1']:.3f}** at threshold {row['threshold']:.2f}" for label, row in best.items()
    )
)
with st.expander(f"Metrics at threshold {threshold:.2f}"):
    st.dataframe(at_threshold)

st.subheader("ROC and calibration")
left, right = st.columns(2)
with left:
    common.show_figure(plots.roc_figure, curves)
with right:
    common.show_figure(plots.calibration_figure, curves)

st.subheader(f"Confusion matrices at threshold {threshold:.2f}")
for column, (label, (y_true, probability)) in zip(st.columns(2), curves.items(), strict=False):
    counts = confusion_matrix(np.asarray(y_true).astype(int), np.asarray(probability) >= threshold, labels=[0, 1])
    column.markdown(f"**{label}**")
    column.table(pd.DataFrame(counts, ["true miss (0)", "true make (1)"], ["predicted miss (0)", "predicted make (1)"]))
