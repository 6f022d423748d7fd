"""Data drift (no labels needed): development vs production inputs, feature by feature and jointly."""

import streamlit as st

from kobe_mlops.dashboard import charts, common
from kobe_mlops.monitoring import drift, health

st.title("Data drift")
source = common.current_source()
data = common.processed(source)
if data.development is None or data.predictions is None:
    common.show_empty_state(source, "data/processed has no development base or no scored production base")

table, auc = common.drift(source)
major = table.loc[table["psi"] >= drift.PSI_MAJOR, "feature"].tolist()
separability = f"Adversarial validation AUC {auc:.3f}: {health.adversarial_verdict(auc)}."
if major:
    st.error(f"**Verdict:** major shift in {', '.join(major)}. {separability}")
else:
    st.success(f"**Verdict:** no feature shows a major shift. {separability}")

columns = st.columns(3)
columns[0].metric("Adversarial validation AUC", f"{auc:.3f}")
columns[1].metric("Features with a major PSI shift", f"{len(major)} of {len(table)}")
columns[2].metric("Rows compared (dev / prod)", f"{len(data.development):,} / {len(data.predictions):,}")

st.subheader("Drift per feature")
shown = table[
    [
        "feature",
        "mean_dev",
        "mean_prod",
        "psi",
        "verdict",
        "ks_statistic",
        "ks_pvalue",
        "ks_verdict",
        "separability_auc",
    ]
]
st.dataframe(
    shown.style.format(
        {
            "mean_dev": "{:.3f}",
            "mean_prod": "{:.3f}",
            "psi": "{:.3f}",
            "ks_statistic": "{:.3f}",
            "ks_pvalue": "{:.2g}",
            "separability_auc": "{:.3f}",
        }
    ),
    hide_index=True,
)
st.caption(
    f"PSI on development deciles: below {drift.PSI_MODERATE:g} stable, from {drift.PSI_MODERATE:g} "
    f"moderate, from {drift.PSI_MAJOR:g} major shift. Kolmogorov-Smirnov two-sample test (scipy) at "
    f"α = {drift.KS_ALPHA:g}. Adversarial validation: a gradient-boosting classifier tries to tell "
    f"production rows from development rows ({health.ADVERSARIAL_FOLDS}-fold cross-validated ROC AUC; "
    f"0.5 = indistinguishable, from {health.ADVERSARIAL_NOTICEABLE:g} partly, from "
    f"{health.ADVERSARIAL_STRONG:g} easily separable). Separability AUC: the same question for each "
    "feature alone."
)

st.subheader("Distributions")
common.show_figure(charts.feature_distributions_figure(data.development, data.predictions))

st.subheader("Court map of shot locations")
common.show_figure(charts.court_map_figure(data.development, data.predictions))
