"""Model health without labels: what an operator can see before the outcomes arrive, as step 04 logged it."""

import numpy as np
import pandas as pd
import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import charts, common
from kobe_mlops.modeling.support import SUPPORT_QUANTILES
from kobe_mlops.monitoring import health
from kobe_mlops.monitoring.calculators import APPLICABLE, ESTIMATE_ALL, QUESTIONABLE
from kobe_mlops.tracking import names

st.title("Model health without labels")
source = common.current_source()
state, run = common.require_application(source)
model = state.scored_model
metrics, tags = run.metrics, run.tags

applicability = tags.get(names.ESTIMATE_APPLICABILITY_TAG)
if applicability is None:
    st.info("The latest application run logged no label-free estimate.")
else:
    show = {APPLICABLE: st.success, QUESTIONABLE: st.warning}.get(applicability, st.error)
    show(f"**Estimate {applicability}.** {tags.get(names.ESTIMATE_REASON_TAG, '')}")

reference, support = common.store_read(source, common.training_artifacts, model.name, model.version)
production = common.production_scores(source, run)
development = common.development(source)
test_probability = None if reference is None else reference[config.PROBABILITY_COLUMN].to_numpy()
if test_probability is not None and production is not None:
    common.show_figure(
        charts.score_distribution_figure,
        {common.held_out_label(model): test_probability, "production": production},
        width="content",
    )
    shift = health.score_shift(test_probability, production)
    st.markdown(
        f"Score PSI (held-out rows → production) {shift.psi:.3f}; Kolmogorov-Smirnov {shift.ks_statistic:.3f}: "
        f"{shift.verdict}."
    )
else:
    rates = {
        "development make rate": None if development is None else development[config.TARGET].mean(),
        "mean probability, rows held out of training": None if test_probability is None else test_probability.mean(),
        "mean probability, production": metrics.get(names.MEAN_PROBABILITY),
    }
    common.show_figure(charts.rates_figure, {label: value for label, value in rates.items() if value is not None})
    st.caption(
        f"The application run logged no scored rows per probability ({names.SCORE_COUNTS_ARTIFACT}), so the score "
        "distribution cannot be drawn; its mean is."
    )

columns = st.columns(3)
estimate = metrics.get(ESTIMATE_ALL)
columns[0].metric("Estimated log loss (every scored row)", "not estimated" if estimate is None else f"{estimate:.4f}")
if estimate is not None:
    lower, upper = (metrics.get(f"{ESTIMATE_ALL}_{side}", float("nan")) for side in ("lower", "upper"))
    columns[0].caption(f"95 % interval {lower:.4f} to {upper:.4f}")
realized, graded = metrics.get(names.LOG_LOSS), metrics.get(names.ESTIMATED_LOG_LOSS)
columns[1].metric("Realized log loss (graded rows)", "no labels" if realized is None else f"{realized:.4f}")
if realized is not None and graded is not None:
    columns[1].caption(f"The estimate on the same rows: {graded:.4f} (off by {graded - realized:+.4f}).")
columns[2].metric("Rows scored / rejected", f"{metrics[names.ROWS_SCORED]:,.0f} / {metrics[names.ROWS_REJECTED]:,.0f}")
st.caption(
    "Confidence-based performance estimation (CBPE, after NannyML): the model's probabilities, recalibrated on "
    f"{tags.get(names.REFERENCE_TAG, 'its reference rows')}, give the expected log loss without any label. It holds "
    "while the rows look like those and the relation between features and outcome stays the same; only labels can "
    "check that."
)

columns = st.columns(2)
test_predicted = np.nan if test_probability is None else float((test_probability >= config.DECISION_THRESHOLD).mean())
predicted = metrics.get(names.PREDICTED_MAKE_RATE)
if predicted is not None:
    columns[0].metric(
        "Predicted make rate in production",
        f"{predicted:.2%}",
        common.metric_delta(predicted - test_predicted, "{:+.1%} vs test"),
        delta_color="off",
    )
if names.MEAN_PROBABILITY in metrics and development is not None:
    gap = metrics[names.MEAN_PROBABILITY] - development[config.TARGET].mean()
    columns[1].metric(
        "Mean probability in production",
        f"{metrics[names.MEAN_PROBABILITY]:.3f}",
        common.metric_delta(gap, "{:+.3f} vs development make rate"),
        delta_color="off",
    )
st.caption(
    f"Model {model.name} version {model.version}, application run `{run.run_id}`. Predicted make rate: the share of "
    f"shots with a probability of at least {config.DECISION_THRESHOLD}. A calibrated model's mean probability matches "
    "the make rate of the shots it scores: a large gap is either a real change in the shots or a model that no "
    "longer fits them, which only labels can settle."
)

if support is not None:
    with st.expander("The training support: where the model learned"):
        bands = pd.DataFrame(
            [(feature, *band) for feature, band in support.items()], columns=["feature", "low", "high"]
        )
        st.dataframe(bands.style.format({"low": "{:.4g}", "high": "{:.4g}"}), hide_index=True)
        low, high = SUPPORT_QUANTILES
        st.caption(
            f"Per feature, the central {high - low:.0%} of the rows version {model.version} was trained on (quantiles "
            f"{low:g} and {high:g}), logged by its training run. A production row with a feature outside its band is "
            "outside the support: the model extrapolates there."
        )
