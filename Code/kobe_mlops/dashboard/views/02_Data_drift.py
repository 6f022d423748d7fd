"""Data drift (no labels needed): production inputs against the model's reference, as step 04 measured them."""

import streamlit as st

from kobe_mlops.dashboard import charts, common
from kobe_mlops.tracking import names

st.title("Data drift")
source = common.current_source()
state, run = common.require_application(source)
table = common.run_table(source, run, names.DRIFT_TABLE_ARTIFACT)
if table is None or table.empty:
    st.info(
        f"The latest application run logged no drift figure ({names.DRIFT_TABLE_ARTIFACT} is empty or absent): "
        f"{run.tags.get(names.MONITORING_PROBLEM_TAG, 'its reference set no threshold')}."
    )
else:
    shifted = table.loc[table["alert"], "feature"].tolist()
    reference = run.tags.get(names.REFERENCE_TAG, "the model's reference rows")
    if shifted:
        st.error(
            f"**Verdict:** drift in {', '.join(shifted)}: beyond what files of this size drawn from {reference} reach."
        )
    else:
        st.success(f"**Verdict:** no feature drifts from {reference} beyond its no-drift threshold.")
    common.show_figure(charts.psi_figure, table, width="content")
    st.caption(
        f"{run.metrics[names.ROWS_SCORED]:,.0f} scored production rows against {reference}, measured by "
        f"application run `{run.run_id}`. A feature's threshold is the PSI that files of the same size drawn "
        "from the reference itself exceed only 5 % of the time (split between the six features), so a small "
        "file is not judged by a large one's noise."
    )

    with st.expander("Drift per feature, as logged"):
        st.dataframe(
            table[["feature", "value", "upper", "alert", "rows"]]
            .rename(columns={"value": "psi", "upper": "no-drift threshold", "alert": "drift"})
            .style.format({"psi": "{:.4f}", "no-drift threshold": "{:.4f}"}),
            hide_index=True,
        )
        st.caption(f"The table step 04 logged ({names.DRIFT_TABLE_ARTIFACT}).")

st.subheader("Distributions")
distributions = common.run_table(source, run, names.DRIFT_DISTRIBUTIONS_ARTIFACT)
if distributions is None:
    st.info(
        f"The application run logged no rows per drift bin ({names.DRIFT_DISTRIBUTIONS_ARTIFACT}): its model's "
        "reference is too small to set drift bins."
    )
else:
    common.show_figure(charts.feature_distributions_figure, distributions)

st.subheader("Court map of shot locations")
development = common.development(source)
production = common.production_sample(source, ["lon", "lat"], charts.COURT_SAMPLE)
if development is None or production.empty:
    st.info("No development base or no scored production row to draw.")
else:
    common.show_figure(charts.court_map_figure, development, production)
    st.caption("Each map shows a sample of its base (rows spread over the whole file), for the shape only.")
