"""Model health without labels: what an operator can see before the outcomes arrive."""

import streamlit as st

from kobe_mlops import config
from kobe_mlops.dashboard import charts, common
from kobe_mlops.monitoring import drift, estimation, health
from kobe_mlops.tracking import names

st.title("Model health without labels")
source = common.current_source()
state = common.require_state(source)
data = common.processed(source)
if state.scored_model is None:
    common.show_empty_state(source, "no application run (PipelineAplicacao) with a registered model was found")
if data.train is None or data.test is None or data.predictions is None:
    common.show_empty_state(source, "data/processed has no base_train, base_test or scored production base")

model = state.scored_model
st.subheader("Estimated performance (before labels arrive)")
run_metrics, run_tags = state.application.metrics, state.application.tags
if names.ESTIMATED_LOG_LOSS not in run_metrics:
    st.info("The latest application run logged no estimate (it predates the estimator): rerun step 04.")
else:
    verdict = run_tags.get(names.ESTIMATE_APPLICABILITY_TAG, "unknown")
    show = {estimation.APPLICABLE: st.success, estimation.QUESTIONABLE: st.warning}.get(verdict, st.error)
    show(f"**Estimate {verdict}.** {run_tags.get(names.ESTIMATE_REASON_TAG, '')}")
    columns = st.columns(4)
    columns[0].metric("Estimated log loss", f"{run_metrics[names.ESTIMATED_LOG_LOSS]:.4f}")
    columns[1].metric("Estimated F1", f"{run_metrics[names.ESTIMATED_F1]:.4f}")
    realized = run_metrics.get(names.PROD_LOG_LOSS)
    error = run_metrics.get(names.ESTIMATION_ERROR_LOG_LOSS)
    columns[2].metric(
        "Realized log loss (labelled rows)",
        "no labels" if realized is None else f"{realized:.4f}",
        None if error is None else f"estimate off by {error:+.4f}",
        delta_color="off",
    )
    columns[3].metric("Rows outside the training support", f"{run_metrics[names.SHARE_OUTSIDE_SUPPORT]:.1%}")
    seen, evaluated = run_metrics.get(names.ROWS_SEEN_IN_TRAINING), run_metrics.get(names.ROWS_EVALUATED)
    st.caption(
        "Confidence-based performance estimation (CBPE, after NannyML): the model's probabilities, calibrated "
        "on base_test (rows no version trains on), give the expected log loss and the expected confusion "
        "matrix without any label. It holds only where the model learned (the training support) and while "
        "the relation between features and outcome stays the same; only labels can check that. "
        + (
            f"Realized figures use {evaluated:,.0f} labelled rows the model never learned; {seen:,.0f} rows "
            "it was trained on are left out."
            if seen is not None and evaluated is not None
            else ""
        )
    )

test_probability = common.base_test_probability(source, model.uri)
production_probability = data.predictions[config.PROBABILITY_COLUMN].to_numpy()
shift = health.score_shift(test_probability, production_probability)
range_table, share_outside = health.outside_training_range(data.train, data.predictions)
rates = health.make_rate_summary(data.train, test_probability, production_probability)

columns = st.columns(4)
columns[0].metric("Score PSI (test → production)", f"{shift.psi:.3f}", shift.verdict, delta_color="off")
mean_probability = rates.loc["mean probability", "production"]
training_rate = rates.loc["training make rate", "production"]
predicted_rate = rates.loc["predicted make rate"]
columns[1].metric(
    "Mean probability in production",
    f"{mean_probability:.3f}",
    f"{mean_probability - training_rate:+.3f} vs training make rate",
    delta_color="off",
)
columns[2].metric(
    "Predicted make rate in production",
    f"{predicted_rate['production']:.2%}",
    f"{predicted_rate['production'] - predicted_rate['test']:+.1%} vs test",
    delta_color="off",
)
columns[3].metric("Rows outside the training range", f"{share_outside:.1%}")
st.caption(
    f"Model {model.name} version {model.version}; {len(data.predictions):,} scored production rows, "
    f"{len(data.rejected) if data.rejected is not None else 0:,} rejected by the data contract."
)

st.subheader("Score distribution shift")
common.show_figure(
    charts.score_distribution_figure({"test (base_test)": test_probability, "production": production_probability}),
    width="content",
)
st.markdown(
    f"PSI {shift.psi:.3f} ({shift.verdict}; stable below {drift.PSI_MODERATE:g}, major from "
    f"{drift.PSI_MAJOR:g}) · Kolmogorov-Smirnov statistic {shift.ks_statistic:.3f}, "
    f"p-value {shift.ks_pvalue:.2g}"
)

st.subheader("Predicted make rate vs the training rate")
st.dataframe(rates.style.format("{:.3f}"))
st.caption(
    f"Predicted make rate: the share of shots with a probability of at least {config.DECISION_THRESHOLD}. "
    "A calibrated model's mean probability matches the make rate of the shots it scores: a large gap "
    "between production and the training make rate is either a real change in the shots or a "
    "model that no longer fits them, which only labels can settle."
)

st.subheader("Share of rows outside the training range")
st.dataframe(
    range_table.style.format(
        {
            "training low": "{:.4g}",
            "training high": "{:.4g}",
            "share below": "{:.1%}",
            "share above": "{:.1%}",
            "share outside": "{:.1%}",
        }
    )
)
low, high = health.RANGE_QUANTILES
st.caption(
    f"Training range: the central {high - low:.0%} of base_train (quantiles {low:g} and {high:g}) of each "
    f"feature. {share_outside:.1%} of production rows have at least one feature outside it: the model "
    "extrapolates for those shots."
)
