"""The TDSP documents in Docs/ and Sample_Data/ say what the pipeline measures, and their links work.

Every figure in the documents must be what a fresh ``run_all.py`` produces: the checks compare
the documents with the session's pipeline run (``pipeline_run`` in conftest.py). How a document
is read, which numbers are checked and where each measured figure comes from is
``docs_support.py``; it also prints the figures of a workspace, to write the documents from::

    KOBE_WORKSPACE=/tmp/ws .venv/bin/python tests/test_docs.py /tmp/ws
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from docs_support import (
    DATA_SUMMARY_REPORT,
    DOCS,
    MODEL_REPORT,
    ROOT,
    SAMPLE_DATA,
    artifact_names,
    broken_links,
    checked_names,
    checked_tables,
    first_runs,
    markdown_files,
    measured_figures,
    print_figures,
    prose_problems,
    row_key,
    table_problems,
)
from kobe_mlops import config

# The documents whose figures this file checks. Architecture_Scaling.md and Model/Retraining.md
# have authors and checks of their own; their links are still checked below.
CHECKED_DOCUMENTS = [
    DOCS / "README.md",
    DOCS / "Project" / "Charter.md",
    DOCS / "Project" / "Exit_Report.md",
    DOCS / "Data_Report" / "Data_Definition.md",
    DATA_SUMMARY_REPORT,
    DOCS / "Data_Dictionaries" / "README.md",
    DOCS / "Model" / "Baseline_Models.md",
    MODEL_REPORT,
    DOCS / "Model" / "Monitoring.md",
    SAMPLE_DATA / "README.md",
]


@pytest.fixture(scope="module")
def figures(pipeline_run) -> dict[str, float]:
    return measured_figures(pipeline_run.workspace, pipeline_run.tracking_uri)


# --- The checker itself (no pipeline needed) ------------------------------------------------

SAMPLE_DOCUMENT = """
The loss was 0.6725 and 96.7 % of rows moved; `0.1234` is code.

<!-- checked-table: {row}_dt_test | - | share_{row} -->
| metric | test | note | share |
|---|---:|---|---:|
| `log_loss` | 0.6725 | lower is better | 96.7 % |
"""
SAMPLE_FIGURES = {"log_loss_dt_test": 0.67252, "share_log_loss": 0.96732}


def test_checker_accepts_figures_at_their_printed_precision():
    assert table_problems(SAMPLE_DOCUMENT, SAMPLE_FIGURES) == []
    assert prose_problems(SAMPLE_DOCUMENT, SAMPLE_FIGURES) == []
    assert checked_names(SAMPLE_DOCUMENT) == {"log_loss_dt_test", "share_log_loss"}


def test_checker_reports_a_wrong_cell_a_missing_figure_and_a_wrong_prose_number():
    wrong_cell = SAMPLE_DOCUMENT.replace("| 0.6725 |", "| 0.6735 |")
    assert table_problems(wrong_cell, SAMPLE_FIGURES) == [
        "log_loss / test: document says 0.6735, the run gives 0.6725 (log_loss_dt_test)"
    ]
    assert table_problems(SAMPLE_DOCUMENT, {"log_loss_dt_test": 0.67252}) == [
        "log_loss / share: no measured figure named share_log_loss"
    ]
    assert table_problems(SAMPLE_DOCUMENT.replace("96.7 %", "high"), SAMPLE_FIGURES) == [
        "log_loss / share: 'high' is not a number (figure share_log_loss)"
    ]
    fired = SAMPLE_DOCUMENT.replace("96.7 %", "yes")
    assert table_problems(fired, {**SAMPLE_FIGURES, "share_log_loss": 1.0}) == []
    assert table_problems(fired, {**SAMPLE_FIGURES, "share_log_loss": 0.0}) == [
        "log_loss / share: document says yes, the run gives 0 (share_log_loss)"
    ]
    assert prose_problems("The loss was 0.6799 and 12.5 % of 20,285 rows in 2016.", SAMPLE_FIGURES) == [
        "0.6799 matches no measured figure",
        "20,285 matches no measured count",
        "12.5 matches no measured figure as a percentage",
    ]
    assert prose_problems("Of 20,285 rows, 4057 went to test.", {"rows": 20285, "test": 4057}) == []


def test_prose_ignores_code_comments_link_targets_and_checked_cells():
    text = (
        "```\n0.9999\n```\n`0.8888` <!-- 0.7777 --> [a](x/0.6666.md)\n\n"
        "<!-- checked-table: {row} | - -->\n| a | b 0.3333 | note |\n|---|---|---|\n"
        "| x | 0.5555 | above 0.2222 |\n\nAfter 0.4444.\n"
    )
    assert prose_problems(text, {}) == [
        "0.3333 matches no measured figure",
        "0.2222 matches no measured figure",
        "0.4444 matches no measured figure",
    ]


# --- The documents against the session's pipeline run ---------------------------------------


@pytest.mark.parametrize("document", CHECKED_DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_checked_table_matches_the_pipeline_run(document, figures):
    assert document.is_file(), f"{document.relative_to(ROOT)} is missing"
    problems = table_problems(document.read_text(), figures)
    assert not problems, f"{document.relative_to(ROOT)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("document", CHECKED_DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_figure_in_the_prose_was_measured(document, figures):
    problems = prose_problems(document.read_text(), figures)
    assert not problems, f"{document.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_model_report_metric_table_covers_both_models_and_the_baseline():
    from kobe_mlops.modeling.metrics import METRIC_NAMES

    names = checked_names(MODEL_REPORT.read_text())
    for column in ["lr_test", "dt_test", "baseline_test", "prod", "baseline_prod"]:
        missing = [metric for metric in METRIC_NAMES if f"{metric}_{column}" not in names]
        assert not missing, f"the model report's checked tables lack {column} figures for {missing}"
    assert {"cv_log_loss_lr", "cv_log_loss_dt"} <= names


def test_data_summary_report_checks_sizes_make_rates_and_drift():
    names = checked_names(DATA_SUMMARY_REPORT.read_text())
    required = {
        "dev_rows",
        "prod_rows",
        "dev_rows_unlabelled",
        "prod_rows_unlabelled",
        "dev_make_rate",
        "prod_make_rate",
        "rows_filtered",
        "columns_filtered",
        "rows_train",
        "rows_test",
        "make_rate_train",
        "make_rate_test",
        "adversarial_auc",
    }
    required |= {f"data_psi_{feature}" for feature in config.FEATURES}
    assert required <= names, f"not checked: {sorted(required - names)}"


def test_model_report_states_the_champion_the_run_registered(tracking):
    version = tracking.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    training = tracking.get_run(version.tags["training_run_id"])
    text = MODEL_REPORT.read_text()
    assert version.tags["model_type"] == "Decision tree"
    assert f"max_depth={training.data.params['dt_max_depth']}" in text
    assert f"min_samples_leaf={training.data.params['dt_min_samples_leaf']}" in text
    assert f"C={training.data.params['lr_C']}" in text
    assert training.data.tags["selection_reason"] in text


def test_model_report_grids_are_the_search_spaces_of_the_code():
    from kobe_mlops.modeling.train import SEARCH_SPACES

    for patterns, rows in checked_tables(MODEL_REPORT.read_text()):
        if patterns[0] == "-" and patterns[1] == "param_{row}":
            grids = {row_key(row[0]): row[3].strip("`") for row in rows[1:]}
            break
    else:
        pytest.fail("the model report has no checked table of tuned parameters")
    expected = {
        f"{model}_{name}": str(values)
        for model, space in SEARCH_SPACES.items()
        for name, values in space.items()
        if name != "criterion"
    }
    assert grids == expected


def test_monitoring_quotes_the_recommended_action_of_the_run(tracking):
    from kobe_mlops.monitoring import triggers

    report = triggers.latest_trigger_report(tracking)
    text = (DOCS / "Model" / "Monitoring.md").read_text()
    assert f"> {report.recommended_action}" in text
    names = [f"`{trigger.name}`" for trigger in report.fired]
    fired = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    assert f"On this run, {fired} fired" in " ".join(text.split())


def test_exit_report_names_every_artefact_the_run_created(pipeline_run, tracking):
    """Every file of the workspace, every run artifact and every file of the logged model."""
    workspace = pipeline_run.workspace
    names = {"mlflow.db"}
    label_store = config.workspace_paths(workspace).label_store_dir
    for folder in ["data", "reports", "mlruns/models"]:
        names |= {
            path.name
            for path in (workspace / folder).rglob("*")
            if path.is_file() and not path.name.startswith(".") and label_store not in path.parents
        }
    for run in first_runs(tracking).values():
        names |= artifact_names(tracking, run.info.run_id)
    text = (DOCS / "Project" / "Exit_Report.md").read_text()
    # Label store files are named by time and run id: the report names their pattern.
    assert (
        list(label_store.rglob("*.parquet")) and "`data/labels/appended_on=YYYY-MM-DD/<time>_<run id>.parquet`" in text
    )
    missing = sorted(name for name in names if not re.search(rf"[`/]{re.escape(name)}`", text))
    assert not missing, f"the exit report's artefact inventory does not name {missing}"
    for run_name in config.RUN_NAMES.values():
        assert f"run `{run_name}`" in text


def test_markdown_link_checker_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "a.md").write_text(
        "# Title here\n[ok](a.md#title-here) [web](https://x.org) [gone](b.md) [bad anchor](#nope)\n"
    )
    assert broken_links(tmp_path / "a.md") == ["b.md: no such file", "#nope: no heading with anchor #nope"]


@pytest.mark.parametrize("document", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document):
    assert not broken_links(document), f"{document.relative_to(ROOT)}: " + "; ".join(broken_links(document))


def test_every_docs_folder_has_a_readme():
    folders = [DOCS, SAMPLE_DATA, *[path for path in DOCS.rglob("*") if path.is_dir()]]
    assert [folder for folder in folders if not (folder / "README.md").is_file()] == []


def test_the_tdsp_documents_keep_their_headings():
    expected = {
        DOCS / "Project" / "Charter.md": [
            "Business background",
            "Scope",
            "Personnel",
            "Metrics",
            "Plan",
            "Architecture",
            "Communication",
        ],
        DOCS / "Project" / "Exit_Report.md": [
            "Overview",
            "Business domain",
            "Business problem",
            "Data processing",
            "Modeling, validation",
            "Solution architecture",
            "Benefits",
            "Learnings",
            "Next steps",
        ],
        MODEL_REPORT: [
            "Analytic approach",
            "Baseline",
            "Model description",
            "Results",
            "Model understanding",
            "Fit to production",
            "Conclusion",
        ],
        DOCS / "Model" / "Baseline_Models.md": [
            "Analytic approach",
            "Model description",
            "Results",
            "Model understanding",
            "Conclusion",
        ],
        DOCS / "Data_Report" / "Data_Definition.md": ["Raw data sources", "Processed data", "Feature set"],
        DATA_SUMMARY_REPORT: [
            "Data summary report",
            "General summary of the data",
            "Data quality summary",
            "Target variable",
            "Filtered dataset and the train/test split",
            "Individual variables",
            "Development vs production",
            "Variable ranking",
            "Relationship between explanatory variables and target variable",
        ],
    }
    for path, headings in expected.items():
        titles = [line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")]
        missing = [heading for heading in headings if not any(title.startswith(heading) for title in titles)]
        assert not missing, f"{path.relative_to(ROOT)} lacks the TDSP heading(s) {missing}"


def test_no_document_name_has_a_space():
    assert [path for path in [*DOCS.rglob("*"), *SAMPLE_DATA.rglob("*")] if " " in path.name] == []


def test_committed_data_dictionaries_are_what_the_raw_files_give():
    from conftest import require_shared_data
    from kobe_mlops.data_acquisition.understanding import data_dictionary_csv

    data = require_shared_data()
    for file_name in config.DATASET_FILES.values():
        committed = DOCS / "Data_Dictionaries" / f"{Path(file_name).stem}.csv"
        assert committed.read_text() == data_dictionary_csv(pd.read_parquet(data / file_name)), (
            f"{committed.relative_to(ROOT)} is stale: regenerate it (Docs/Data_Dictionaries/README.md)"
        )


def test_data_dictionary_lists_ranges_categories_and_missing_values():
    from kobe_mlops.data_acquisition.understanding import data_dictionary, value_summary

    frame = pd.DataFrame(
        {
            "shot_made_flag": [1.0, 0.0, None, 1.0],
            "shot_distance": [0, 12, 25, 3],
            "shot_type": ["2PT Field Goal", "3PT Field Goal", "2PT Field Goal", "2PT Field Goal"],
            "game_date": ["2000-10-31", "2001-01-02", "2000-11-01", "2000-10-31"],
        }
    )
    assert value_summary(frame["shot_made_flag"]) == "0, 1; 1 missing"
    assert value_summary(frame["shot_distance"]) == "0 to 25, 4 distinct"
    assert value_summary(frame["shot_type"]) == "2PT Field Goal (3); 3PT Field Goal (1)"
    many_dates = pd.Series([f"2001-01-{day:02d}" for day in range(1, 13)])
    assert value_summary(many_dates) == "2001-01-01 to 2001-01-12, 12 distinct (unique per row)"
    many_words = pd.Series(["b"] * 3 + ["a"] * 3 + [f"w{i}" for i in range(9)])
    assert value_summary(many_words) == "11 distinct; most frequent: a (3); b (3); w0 (1)"
    dictionary = data_dictionary(frame)
    assert list(dictionary.columns) == ["column", "type", "values", "description"]
    assert dictionary.set_index("column").loc["shot_type", "type"] == "string"
    with pytest.raises(ValueError, match="'mystery'"):
        data_dictionary(frame.assign(mystery=1))


if __name__ == "__main__":  # print the figures of a workspace, to write the documents from
    print_figures(sys.argv[1:])
