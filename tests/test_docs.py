"""The TDSP documents in Docs/ and Sample_Data/: their tables are what the session's pipeline run
renders (``kobe_mlops.docs_tables``), their links resolve, and they keep the TDSP's headings."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import require_shared_data
from kobe_mlops import config, docs_tables
from kobe_mlops.data_acquisition.understanding import data_dictionary, data_dictionary_csv, value_summary

ROOT = config.PROJECT_ROOT
DOCS = docs_tables.DOCS
SAMPLE_DATA = ROOT / "Sample_Data"
MARKDOWN = sorted([*DOCS.rglob("*.md"), *SAMPLE_DATA.rglob("*.md")])
# Retraining.md's tables come from --retrain and --replay: tests/monitoring renders them from its runs.
WITH_TABLES = [path for path in sorted(DOCS.rglob("*.md")) if docs_tables.MARKER.search(path.read_text())]
SESSION_DOCUMENTS = [path.relative_to(DOCS).as_posix() for path in WITH_TABLES if path.name != "Retraining.md"]


@pytest.fixture(scope="module")
def session_workspace(pipeline_run) -> docs_tables.Workspace:
    return docs_tables.Workspace(pipeline_run.workspace)


@pytest.mark.parametrize("document", SESSION_DOCUMENTS)
def test_every_table_is_what_the_session_run_renders(document, session_workspace):
    text = (DOCS / document).read_text()
    tables, skipped = docs_tables.rendered(text, session_workspace)
    assert not skipped
    assert docs_tables.render(text, tables) == text, (
        f"Docs/{document} is stale: .venv/bin/python -m kobe_mlops.docs_tables --workspace DIR (Docs/README.md)"
    )


def test_every_table_marker_has_a_renderer_and_every_renderer_a_marker():
    used = {name for path in WITH_TABLES for name in docs_tables.MARKER.findall(path.read_text())}
    assert used == set(docs_tables.TABLES)
    assert len(SESSION_DOCUMENTS) == len(WITH_TABLES) - 1 >= 6


def test_exit_report_names_every_artefact_the_run_created(pipeline_run, session_workspace):
    """Every file of the workspace, every run artifact and every file of the logged model."""
    workspace, client = pipeline_run.workspace, session_workspace.client
    label_store = pipeline_run.paths.label_store_dir
    names = {"mlflow.db"} | {
        path.name
        for folder in ["data", "reports", "mlruns/models"]
        for path in (workspace / folder).rglob("*")
        if path.is_file() and not path.name.startswith(".") and label_store not in path.parents
    }

    def artifacts(run_id: str, folder: str | None = None) -> set[str]:
        items = client.list_artifacts(run_id, folder)
        return set().union(*[artifacts(run_id, i.path) if i.is_dir else {Path(i.path).name} for i in items])

    for run_name in config.RUN_NAMES.values():
        names |= artifacts(session_workspace.runs(run_name)[0].info.run_id)
    text = (DOCS / "Project" / "Exit_Report.md").read_text()
    assert list(label_store.rglob("*.parquet"))  # named by time and run id: the report names their pattern
    assert "`data/labels/appended_on=YYYY-MM-DD/<time>_<run id>.parquet`" in text
    assert sorted(name for name in names if not re.search(rf"[`/]{re.escape(name)}`", text)) == []
    assert all(f"run `{run_name}`" in text for run_name in config.RUN_NAMES.values())


# --- Links, folders and headings ------------------------------------------------------------


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file."""
    titles = re.findall(r"^#{1,6}\s+(.*)$", re.sub(r"```.*?```", "", path.read_text(), flags=re.S), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", re.sub(r"[`*]", "", t.strip()).lower()).replace(" ", "-") for t in titles}


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in re.findall(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)", re.sub(r"```.*?```", "", path.read_text(), flags=re.S)):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not a file of this repository
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    return broken


def test_markdown_link_checker_finds_missing_files_and_anchors(tmp_path):
    (tmp_path / "a.md").write_text(
        "# Title here\n[ok](a.md#title-here) [web](https://x.org) [gone](b.md) [bad](#nope)\n"
    )
    assert broken_links(tmp_path / "a.md") == ["b.md: no such file", "#nope: no heading with anchor #nope"]


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document):
    assert not broken_links(document), f"{document.relative_to(ROOT)}: " + "; ".join(broken_links(document))


def test_every_docs_folder_has_a_readme_and_no_name_has_a_space():
    folders = [DOCS, SAMPLE_DATA, *[path for path in DOCS.rglob("*") if path.is_dir()]]
    assert [folder for folder in folders if not (folder / "README.md").is_file()] == []
    assert [path for path in [*DOCS.rglob("*"), *SAMPLE_DATA.rglob("*")] if " " in path.name] == []


TDSP_HEADINGS = {
    "Project/Charter.md": "Business background|Scope|Personnel|Metrics|Plan|Architecture|Communication",
    "Project/Exit_Report.md": "Overview|Business domain|Business problem|Data processing|Modeling, validation|"
    "Solution architecture|Benefits|Learnings|Next steps",
    "Model/Model_Report.md": "Analytic approach|Baseline|Model description|Results|Model understanding|"
    "Fit to production|Conclusion",
    "Model/Baseline_Models.md": "Analytic approach|Model description|Results|Model understanding|Conclusion",
    "Data_Report/Data_Definition.md": "Raw data sources|Processed data|Feature set",
    "Data_Report/Data_Summary_Report.md": "Data summary report|General summary of the data|Data quality summary|"
    "Target variable|Filtered dataset and the train/test split|Individual variables|Development vs production|"
    "Variable ranking|Relationship between explanatory variables and target variable",
}


@pytest.mark.parametrize("document", TDSP_HEADINGS)
def test_the_tdsp_documents_keep_their_headings(document):
    titles = [line.lstrip("#").strip() for line in (DOCS / document).read_text().splitlines() if line.startswith("#")]
    missing = [h for h in TDSP_HEADINGS[document].split("|") if not any(t.startswith(h) for t in titles)]
    assert not missing, f"Docs/{document} lacks the TDSP heading(s) {missing}"


# --- Data dictionaries ----------------------------------------------------------------------


def test_committed_data_dictionaries_are_what_the_raw_files_give():
    data = require_shared_data()
    for file_name in config.DATASET_FILES.values():
        committed = DOCS / "Data_Dictionaries" / f"{Path(file_name).stem}.csv"
        assert committed.read_text() == data_dictionary_csv(pd.read_parquet(data / file_name)), (
            f"{committed.relative_to(ROOT)} is stale: regenerate it (Docs/Data_Dictionaries/README.md)"
        )


def test_data_dictionary_lists_ranges_categories_and_missing_values():
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
