"""The TDSP documents in Docs/ and Sample_Data/ say what the pipeline measures, and their links work.

Every figure in the documents must be what a fresh ``run_all.py`` produces. The checks reuse the
session's pipeline run (``pipeline_run`` in conftest.py) and compare the documents with:

* the metrics and parameters its four MLflow runs logged, and the tables it logged as artifacts
  (cross-validation folds, the dev-vs-prod feature comparison);
* the figures the dashboard computes from the same run, with the project's own functions
  (``deployment/health.py``, ``deployment/triggers.py``, ``modeling/metrics.py``).

Two ways a number in a document is checked:

* **Checked tables.** A table right after ``<!-- checked-table: P1 | P2 | ... -->`` has one
  pattern per column after the first (``-`` for a text column). ``{row}`` in a pattern is the
  first cell of the row without its backticks, so ``{row}_dt_test`` on the row `` `log_loss` ``
  names the figure ``log_loss_dt_test``. Each cell must equal that figure at the printed
  precision (a cell ending in ``%`` is the figure times 100).
* **Prose.** Any other number written with three or more decimals, with a decimal and a ``%``,
  or a count of four digits or more (``20,285``; a plain year such as 2016 is not a count) must
  equal some measured figure at its printed precision (:data:`NOT_MEASURED_HERE` lists the two
  deliberate exceptions). Code spans, code blocks, comments and link targets are not prose.

:func:`measured_figures` also runs outside pytest, to print the figures while writing::

    KOBE_WORKSPACE=/tmp/ws .venv/bin/python tests/test_docs.py /tmp/ws
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kobe_mlops import config

ROOT = config.PROJECT_ROOT
DOCS = ROOT / "Docs"
SAMPLE_DATA = ROOT / "Sample_Data"
MODEL_REPORT = DOCS / "Model" / "Model_Report.md"
DATA_SUMMARY_REPORT = DOCS / "Data_Report" / "Data_Summary_Report.md"
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
# Numbers the documents state although no pipeline run measures them, and why.
NOT_MEASURED_HERE = {
    "0.671": "the issue's stretch target for the test log loss",
    "0.672": "the best test log loss of experiments outside the pipeline (polynomial and spline "
    "features, deeper trees, gradient boosting), reported as approximate",
}
TRAINING_CANDIDATES = ("lr", "dt")


# --- Reading the documents ------------------------------------------------------------------

MARKER = re.compile(r"<!--\s*checked-table:(.*?)-->")
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
PROSE_DECIMAL = re.compile(r"(?<![\w.\-])(-?\d+\.\d{3,})(?!\w|\.\d)")
PROSE_PERCENT = re.compile(r"(?<![\w.])(\d+\.\d+)\s?%")
# Counts: a thousands separator or four digits or more; a plain four-digit year is not a count.
PROSE_COUNT = re.compile(r"(?<![\w.,\-])(\d{1,3}(?:,\d{3})+|\d{4,})(?!\w|[.,]\d)")
YEARS = range(1900, 2100)


def table_rows(lines: list[str], start: int) -> list[list[str]]:
    """The cells of the markdown table starting at or after ``lines[start]`` (header first, no rule)."""
    while start < len(lines) and not lines[start].strip():
        start += 1
    rows = []
    for line in lines[start:]:
        if not line.lstrip().startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
            rows.append(cells)
    return rows


def checked_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """``(patterns, rows)`` of every table announced by a checked-table marker."""
    lines = text.splitlines()
    tables = []
    for index, line in enumerate(lines):
        match = MARKER.search(line)
        if match:
            patterns = [pattern.strip() for pattern in match.group(1).split("|")]
            tables.append((patterns, table_rows(lines, index + 1)))
    return tables


def row_key(cell: str) -> str:
    return cell.replace("`", "").replace("*", "").strip()


def cell_number(cell: str) -> tuple[str, bool] | None:
    """``(number text, is_percent)`` of a table cell, or None when it holds no single number.

    "yes" and "no" stand for 1 and 0 (a trigger fired or not).
    """
    text = cell.replace("**", "").replace("`", "").replace(",", "").replace("\u2212", "-").strip()
    if text.lower() in {"yes", "no"}:
        return ("1" if text.lower() == "yes" else "0"), False
    percent = text.endswith("%")
    text = text.rstrip("%").strip()
    return (text, percent) if NUMBER.match(text) else None


def printed(value: float, text: str, percent: bool = False) -> str:
    """``value`` (times 100 for a percentage) written with as many decimals as ``text`` has."""
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    shown = f"{value * 100 if percent else value:.{decimals}f}"
    return shown.lstrip("-") if float(shown) == 0 else shown  # no "-0.0000"


def table_problems(text: str, figures: dict[str, float]) -> list[str]:
    """Every checked cell that does not match its figure, as readable lines."""
    problems = []
    for patterns, rows in checked_tables(text):
        if not rows:
            problems.append(f"marker {' | '.join(patterns)} is not followed by a table")
            continue
        header, body = rows[0], rows[1:]
        if len(header) != len(patterns) + 1:
            problems.append(f"table '{' | '.join(header)}' has {len(header)} columns for {len(patterns)} patterns")
            continue
        for row in body:
            key = row_key(row[0])
            for pattern, cell, column in zip(patterns, row[1:], header[1:], strict=False):
                if pattern == "-":
                    continue
                name = pattern.format(row=key)
                number = cell_number(cell)
                if name not in figures:
                    problems.append(f"{key} / {column}: no measured figure named {name}")
                elif number is None:
                    problems.append(f"{key} / {column}: '{cell}' is not a number (figure {name})")
                elif printed(figures[name], *number) != number[0]:
                    problems.append(
                        f"{key} / {column}: document says {cell}, the run gives "
                        f"{printed(figures[name], *number)}{'%' if number[1] else ''} ({name})"
                    )
    return problems


def checked_names(text: str) -> set[str]:
    names = set()
    for patterns, rows in checked_tables(text):
        for row in rows[1:]:
            names |= {pattern.format(row=row_key(row[0])) for pattern in patterns if pattern != "-"}
    return names


def prose(text: str) -> str:
    """What a reader reads as text: no code, comments or link targets.

    In a checked table, the header and the text columns (pattern ``-``) are text too; the
    checked cells are left to :func:`table_problems`.
    """
    kept, patterns, header_seen = [], None, False
    for line in re.sub(r"```.*?```", " ", text, flags=re.S).splitlines():
        marker = MARKER.search(line)
        if marker:
            patterns, header_seen = [p.strip() for p in marker.group(1).split("|")], False
            continue
        if patterns is not None and line.lstrip().startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not header_seen:
                header_seen = True
                kept.append(line)
            elif not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
                kept.append(
                    " | ".join(
                        [
                            cells[0],
                            *[cell for cell, pattern in zip(cells[1:], patterns, strict=False) if pattern == "-"],
                        ]
                    )
                )
            continue
        if patterns is not None and not line.strip() and not header_seen:
            continue  # blank lines between the marker and its table
        patterns = None
        kept.append(line)
    text = re.sub(r"<!--.*?-->", " ", "\n".join(kept), flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def prose_problems(text: str, figures: dict[str, float]) -> list[str]:
    """Numbers in prose that match no measured figure at their printed precision."""
    values = list(figures.values())
    problems = []
    body = prose(text)
    for match in PROSE_DECIMAL.finditer(body):
        token = match.group(1)
        if token in NOT_MEASURED_HERE or token.lstrip("-") in NOT_MEASURED_HERE:
            continue
        if not any(printed(value, token) == token for value in values):
            problems.append(f"{token} matches no measured figure")
    for match in PROSE_COUNT.finditer(body):
        token = match.group(1)
        count = int(token.replace(",", ""))
        if "," not in token and count in YEARS:
            continue
        if not any(value == count for value in values):
            problems.append(f"{token} matches no measured count")
    for match in PROSE_PERCENT.finditer(body):
        token = match.group(1)
        if not any(printed(value, token, percent=True) == token for value in values):
            problems.append(f"{token} matches no measured figure as a percentage")
    return problems


# --- What the pipeline measured -------------------------------------------------------------


def first_runs(client) -> dict:
    """The first finished run of each pipeline step: the session's own run, not a later one."""
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    return {run.info.run_name: run for run in runs if run.info.status == "FINISHED"}


def logged_table(client, run_id: str, artifact: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        table = json.loads(Path(client.download_artifacts(run_id, artifact, folder)).read_text())
    return pd.DataFrame(table["data"], columns=table["columns"])


def tree_figures(pipeline, train: pd.DataFrame, production: pd.DataFrame) -> dict[str, float]:
    """A decision tree champion's splits in feature units and, per leaf, its shots and probability.

    ``split_<node>`` is the threshold of a split node, back in the feature's own unit (PyCaret
    standardises the features before the tree); ``leaf_<node>_train`` and ``leaf_<node>_prod``
    count the base_train and production shots that land in the leaf.
    """
    steps = dict(pipeline.steps)
    tree = pipeline.steps[-1][1]
    scaler = steps["normalize"].transformer
    preprocess = pipeline[:-1]
    figures = {}
    leaves = {
        split: pd.Series(tree.apply(np.asarray(preprocess.transform(frame[config.FEATURES]), dtype=float)))
        for split, frame in [("train", train), ("prod", production)]
    }
    for node in range(tree.tree_.node_count):
        feature = tree.tree_.feature[node]
        if feature >= 0:
            figures[f"split_{node}"] = tree.tree_.threshold[node] * scaler.scale_[feature] + scaler.mean_[feature]
        else:
            counts = tree.tree_.value[node][0]
            figures[f"leaf_{node}_probability"] = counts[1] / counts.sum()
            for split, leaf in leaves.items():
                figures[f"leaf_{node}_{split}"] = float((leaf == node).sum())
    return figures


def measured_figures(workspace: Path, tracking_uri: str) -> dict[str, float]:
    """Every figure the documents may cite, by name, from one pipeline run in ``workspace``."""
    import mlflow
    from mlflow import MlflowClient

    from kobe_mlops.modeling import train
    from kobe_mlops.modeling.metrics import baseline_metrics
    from kobe_mlops.monitoring import drift as monitoring
    from kobe_mlops.monitoring import health, triggers

    client = MlflowClient(tracking_uri)
    runs = first_runs(client)
    figures: dict[str, float] = {}
    for run_name in config.RUN_NAMES.values():
        for name, value in runs[run_name].data.metrics.items():
            assert name not in figures, f"metric {name} is logged by two runs: name it by run"
            figures[name] = value
    training = runs[config.RUN_NAMES["treinamento"]]
    for name, value in training.data.params.items():
        try:
            figures[f"param_{name}"] = float(value)
        except ValueError:
            pass  # text parameters (criterion, selection rule) are not figures
    for key in TRAINING_CANDIDATES:
        folds = logged_table(client, training.info.run_id, f"cv/{key}_cv_folds.json")
        for fold, log_loss in zip(folds["fold"], folds[train.LOG_LOSS_METRIC], strict=False):
            figures[f"cv_{key}_{str(fold).lower()}"] = float(log_loss)
    application = runs[config.RUN_NAMES["aplicacao"]]
    drift = logged_table(client, application.info.run_id, "drift/feature_comparison.json")
    for row in drift.to_dict("records"):
        for column, value in row.items():
            if isinstance(value, int | float) and column != "feature":
                figures[f"drift_{column}_{row['feature']}"] = float(value)

    # What the dashboard computes from the same run.
    data = health.load_processed(config.workspace_paths(workspace))
    figures["adversarial_auc"] = health.adversarial_validation_auc(data.development, data.predictions)
    for feature, auc in health.single_feature_separability(data.development, data.predictions).items():
        figures[f"separability_{feature}"] = auc
    ranges, share_outside = health.outside_training_range(data.train, data.predictions)
    figures["outside_any"] = share_outside
    for feature, row in ranges.iterrows():
        figures[f"outside_{feature}"] = row["share outside"]
        figures[f"training_low_{feature}"] = row["training low"]
        figures[f"training_high_{feature}"] = row["training high"]
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        version = application.data.params["model_version"]
        model = mlflow.pyfunc.load_model(f"models:/{config.REGISTERED_MODEL_NAME}/{version}")
        test_probability = model.predict(data.test[config.FEATURES])[config.PROBABILITY_COLUMN].to_numpy()
        pipeline = model.unwrap_python_model().pipeline
    finally:
        mlflow.set_tracking_uri(previous_uri)
    estimator = pipeline.steps[-1][1]
    if hasattr(estimator, "tree_"):
        figures.update(tree_figures(pipeline, data.train, data.predictions))
    production_probability = data.predictions[config.PROBABILITY_COLUMN].to_numpy()
    for split, probability in [("test", test_probability), ("prod", production_probability)]:
        figures[f"probability_min_{split}"] = float(probability.min())
        figures[f"probability_max_{split}"] = float(probability.max())
        figures[f"distinct_probabilities_{split}"] = float(len(np.unique(probability)))
    if hasattr(estimator, "feature_importances_"):
        for feature, importance in zip(config.FEATURES, estimator.feature_importances_, strict=False):
            figures[f"importance_{feature}"] = float(importance)
    shift = health.score_shift(test_probability, production_probability)
    figures["score_psi"], figures["score_ks_statistic"] = shift.psi, shift.ks_statistic
    rates = health.make_rate_summary(data.train, test_probability, production_probability)
    figures["mean_probability_test"] = rates.loc["mean probability", "test"]
    figures["predicted_make_rate_test"] = rates.loc["predicted make rate", "test"]
    labelled = health.labelled_rows(data.predictions)
    observed = labelled[config.TARGET]
    # A constant equal to production's own make rate: known only once the labels arrive.
    for name, value in baseline_metrics(observed, float(observed.mean())).items():
        figures[f"{name}_constant_at_prod_rate"] = value
    for split, (truth, probability) in {
        "test": (data.test[config.TARGET], test_probability),
        "prod": (observed, labelled[config.PROBABILITY_COLUMN]),
    }.items():
        best = health.best_threshold(health.threshold_sweep(truth, probability))
        figures[f"best_threshold_{split}"] = best["threshold"]
        figures[f"best_f1_{split}"] = best["f1"]
    report = triggers.latest_trigger_report(client)
    for trigger in report.triggers:
        if trigger.value is not None:
            figures[f"trigger_{trigger.name}"] = trigger.value
        figures[f"trigger_{trigger.name}_threshold"] = trigger.threshold
        figures[f"trigger_{trigger.name}_fired"] = float(trigger.fired)
    figures["log_loss_limit_from_test"] = figures["log_loss_champion_test"] * (1 + triggers.LOG_LOSS_RELATIVE_MARGIN)
    # Thresholds and limits the documents quote, from the code that applies them.
    from kobe_mlops.data_acquisition.contract import FEATURE_RULES

    for feature, rule in FEATURE_RULES.items():
        figures[f"contract_min_{feature}"], figures[f"contract_max_{feature}"] = rule.minimum, rule.maximum
    figures.update(
        {
            "selection_tolerance": train.SELECTION_TOLERANCE,
            "psi_moderate": monitoring.PSI_MODERATE,
            "psi_major": monitoring.PSI_MAJOR,
            "ks_alpha": monitoring.KS_ALPHA,
            "adversarial_noticeable": health.ADVERSARIAL_NOTICEABLE,
            "adversarial_strong": health.ADVERSARIAL_STRONG,
            "log_loss_relative_margin": triggers.LOG_LOSS_RELATIVE_MARGIN,
            "make_rate_gap_margin": triggers.MAKE_RATE_GAP_MARGIN,
            "range_quantile_low": health.RANGE_QUANTILES[0],
            "range_quantile_high": health.RANGE_QUANTILES[1],
            "test_size": config.TEST_SIZE,
            "decision_threshold": config.DECISION_THRESHOLD,
        }
    )
    return figures


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
    required |= {f"psi_{feature}" for feature in config.FEATURES}
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


def artifact_names(client, run_id: str, folder: str | None = None) -> set[str]:
    names = set()
    for item in client.list_artifacts(run_id, folder):
        names |= artifact_names(client, run_id, item.path) if item.is_dir else {Path(item.path).name}
    return names


def test_exit_report_names_every_artefact_the_run_created(pipeline_run, tracking):
    """Every file of the workspace, every run artifact and every file of the logged model."""
    workspace = pipeline_run.workspace
    names = {"mlflow.db"}
    for folder in ["data", "reports", "mlruns/models"]:
        names |= {
            path.name for path in (workspace / folder).rglob("*") if path.is_file() and not path.name.startswith(".")
        }
    for run in first_runs(tracking).values():
        names |= artifact_names(tracking, run.info.run_id)
    text = (DOCS / "Project" / "Exit_Report.md").read_text()
    missing = sorted(name for name in names if not re.search(rf"[`/]{re.escape(name)}`", text))
    assert not missing, f"the exit report's artefact inventory does not name {missing}"
    for run_name in config.RUN_NAMES.values():
        assert f"run `{run_name}`" in text


# --- Links, folders and the data dictionaries -----------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def markdown_files() -> list[Path]:
    return sorted([*DOCS.rglob("*.md"), *SAMPLE_DATA.rglob("*.md")])


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    anchors = set()
    for line in text.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            title = re.sub(r"[`*]", "", match.group(1).strip()).lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in LINK.findall(re.sub(r"```.*?```", "", path.read_text(), flags=re.S)):
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
    workspace = Path(sys.argv[1]).resolve()
    for name, value in sorted(measured_figures(workspace, f"sqlite:///{workspace / 'mlflow.db'}").items()):
        print(f"{name:45s} {value!r}")
