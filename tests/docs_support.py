"""How tests/test_docs.py reads the documents, checks their figures and links, and measures the run.

Every figure in the documents must be what a fresh ``run_all.py`` produces. :func:`measured_figures`
collects, by name, every figure one pipeline run gives:

* the metrics and parameters its four MLflow runs logged, and the tables it logged as artifacts
  (cross-validation folds, the dev-vs-prod feature comparison);
* the figures the dashboard computes from the same run, with the project's own functions
  (``monitoring/health.py``, ``monitoring/triggers.py``, ``modeling/metrics.py``).

Two ways a number in a document is checked against them:

* **Checked tables** (:func:`table_problems`). A table right after
  ``<!-- checked-table: P1 | P2 | ... -->`` has one pattern per column after the first (``-``
  for a text column). ``{row}`` in a pattern is the first cell of the row without its
  backticks, so ``{row}_dt_test`` on the row `` `log_loss` `` names the figure
  ``log_loss_dt_test``. Each cell must equal that figure at the printed precision (a cell
  ending in ``%`` is the figure times 100).
* **Prose** (:func:`prose_problems`). Any other number written with three or more decimals, with
  a decimal and a ``%``, or a count of four digits or more (``20,285``; a plain year such as
  2016 is not a count) must equal some measured figure at its printed precision
  (:data:`NOT_MEASURED_HERE` lists the two deliberate exceptions). Code spans, code blocks,
  comments and link targets are not prose.

:func:`broken_links` checks relative links and their heading anchors. The figures of a workspace
print outside pytest, to write the documents from::

    KOBE_WORKSPACE=/tmp/ws .venv/bin/python tests/docs_support.py /tmp/ws

(``tests/test_docs.py /tmp/ws`` does the same.)
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from kobe_mlops import config

ROOT = config.PROJECT_ROOT
DOCS = ROOT / "Docs"
SAMPLE_DATA = ROOT / "Sample_Data"
MODEL_REPORT = DOCS / "Model" / "Model_Report.md"
DATA_SUMMARY_REPORT = DOCS / "Data_Report" / "Data_Summary_Report.md"
# Numbers the documents state although no pipeline run measures them, and why.
NOT_MEASURED_HERE = {
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


def development_vs_production(development: pd.DataFrame, production: pd.DataFrame) -> dict[str, float]:
    """The Data Summary Report's comparison of the two bases per feature: summary statistics, the
    KS statistic, and PSI of production against the development rows with its no-drift threshold."""
    from scipy import stats

    from kobe_mlops.monitoring.calculators import FeatureDrift, MonitoringReference

    drift = FeatureDrift().fit(MonitoringReference(development, "development rows"))
    rows = {r["metric"][4:]: r for r in drift.calculate(production, "production")}
    figures = {}
    for feature in config.FEATURES:
        for base, frame in (("dev", development), ("prod", production)):
            values = frame[feature].dropna()
            figures[f"drift_mean_{base}_{feature}"] = float(values.mean())
            figures[f"drift_median_{base}_{feature}"] = float(values.median())
            figures[f"drift_std_{base}_{feature}"] = float(values.std())
        ks = stats.ks_2samp(development[feature].dropna(), production[feature].dropna())
        figures[f"drift_ks_statistic_{feature}"] = float(ks.statistic)
        figures[f"data_psi_{feature}"] = rows[feature]["value"]
        figures[f"data_psi_threshold_{feature}"] = rows[feature]["upper"]
    return figures


def measured_figures(workspace: Path, tracking_uri: str) -> dict[str, float]:
    """Every figure the documents may cite, by name, from one pipeline run in ``workspace``."""
    import mlflow
    from mlflow import MlflowClient

    from kobe_mlops.modeling import challengers, train
    from kobe_mlops.modeling.metrics import baseline_metrics
    from kobe_mlops.monitoring import calculators, gate, health, triggers
    from kobe_mlops.tracking import reads

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
        for column in ("value", "upper", "rows"):
            figures[f"drift_{column}_{row['feature']}"] = float(row[column])
    # The Model Report's production column names the course's figures by their metric.
    figures["log_loss_prod"], figures["f1_prod"] = figures["log_loss"], figures["f1_score"]
    replay = reads.latest_replay_run(client)
    if replay is not None:  # a replay of this workspace (run_all.py --replay): its per-strategy figures
        for name, value in replay.data.metrics.items():
            assert name not in figures, f"replay metric {name} is also logged by the pipeline"
            figures[name] = value

    # What the dashboard computes from the same run.
    data = health.load_processed(config.workspace_paths(workspace))
    figures.update(development_vs_production(data.development, data.predictions))
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
    # Thresholds and limits the documents quote, from the code that applies them.
    from kobe_mlops.data_acquisition.contract import FEATURE_RULES

    for feature, rule in FEATURE_RULES.items():
        figures[f"contract_min_{feature}"], figures[f"contract_max_{feature}"] = rule.minimum, rule.maximum
    figures.update(
        {
            "selection_tolerance": train.SELECTION_TOLERANCE,
            "false_alarm_rate": calculators.FALSE_ALARM_RATE,
            "min_reference_rows": calculators.MIN_REFERENCE_ROWS,
            "reference_window_rows": calculators.REFERENCE_WINDOW_ROWS,
            "gain_standard_errors": gate.GAIN_STANDARD_ERRORS,
            "recency_half_life_years": challengers.RECENCY_HALF_LIFE_YEARS,
            "adversarial_noticeable": health.ADVERSARIAL_NOTICEABLE,
            "adversarial_strong": health.ADVERSARIAL_STRONG,
            "range_quantile_low": health.RANGE_QUANTILES[0],
            "range_quantile_high": health.RANGE_QUANTILES[1],
            "test_size": config.TEST_SIZE,
            "decision_threshold": config.DECISION_THRESHOLD,
        }
    )
    return figures


def artifact_names(client, run_id: str, folder: str | None = None) -> set[str]:
    names = set()
    for item in client.list_artifacts(run_id, folder):
        names |= artifact_names(client, run_id, item.path) if item.is_dir else {Path(item.path).name}
    return names


# --- Links ------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def section(path: Path, heading: str) -> str:
    """The text of the section of ``path`` under ``## heading``, up to the next ``## ``."""
    text = path.read_text()
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 3)
    return text[start : end if end != -1 else len(text)]


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


def print_figures(argv: list[str]) -> None:
    """Print every figure of the workspace ``argv[0]``, to write the documents from."""
    workspace = Path(argv[0]).resolve()
    for name, value in sorted(measured_figures(workspace, f"sqlite:///{workspace / 'mlflow.db'}").items()):
        print(f"{name:45s} {value!r}")


if __name__ == "__main__":
    print_figures(sys.argv[1:])
