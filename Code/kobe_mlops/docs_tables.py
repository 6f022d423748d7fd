"""The figure tables of ``Docs/``, rendered from what a workspace's runs logged.

A table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; ``TABLES[NAME]`` renders it
from a :class:`Workspace`. A table whose run the workspace lacks (the replay, the gate) stays as it is::

    python -m kobe_mlops.docs_tables --workspace DIR [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cached_property
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from kobe_mlops import config, io
from kobe_mlops.data_acquisition.contract import FEATURE_RULES
from kobe_mlops.modeling.metrics import METRIC_NAMES
from kobe_mlops.modeling.train import CANDIDATES, SEARCH_SPACES
from kobe_mlops.monitoring import replay, triggers
from kobe_mlops.tracking import names, reads

DOCS = config.PROJECT_ROOT / "Docs"
MARKER = re.compile(r"^<!-- table:([\w-]+) -->$", re.M)
NUMBER = re.compile(r"(-?[\d,]+(\.\d+)?( %)?)?")  # or an empty cell
COUNTS = re.compile(r"(^|_)(rows|columns|missing|labels_appended|retrains|promotions)")


class Unavailable(LookupError):
    """The workspace holds no run this table is rendered from."""


def fixed(value: float, decimals: int = 4) -> str:
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.0000"


def short(value: float, decimals: int = 4) -> str:
    """Whole numbers without decimals: 22, 5.10, 33.9993."""
    return str(int(value)) if float(value).is_integer() else fixed(value, decimals)


def trimmed(value: float) -> str:
    """Four decimals at most: 2.5, -118.2693."""
    return fixed(value).rstrip("0").rstrip(".")


def shown(key: str, value: float) -> str:
    """A logged figure as the documents print it, from its name."""
    if key.endswith(("_alert", "_fired")):
        return "yes" if value else "no"
    if COUNTS.search(key) and "log_loss" not in key:
        return f"{value:,.0f}"
    if "share" in key or "coverage" in key:
        return f"{100 * value:.1f} %"
    return fixed(value, 3 if key.startswith(names.PSI_PREFIX) else 4)


def table(header: str, rows: list[list[str]]) -> str:
    """A markdown table (``header`` is "a|b|c"); a column of numbers (after the first) is right-aligned."""
    header = header.split("|")
    right = [i and all(NUMBER.fullmatch(row[i]) for row in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(cells) + " |" for cells in [header, *rows]]
    return "\n".join([lines[0], "|" + "|".join("---:" if r else "---" for r in right) + "|", *lines[1:]])


def grid(header: str, rows, *columns, source: str = "metrics"):
    """Logged figures: a row per name of ``rows`` (space-separated, or a function of the workspace), a
    column per key pattern (space-separated, ``{}`` is the row's name; or a function of it)."""
    patterns = [part for column in columns for part in (column.split() if isinstance(column, str) else [column])]

    def render(w: Workspace) -> str:
        values = getattr(w, source)
        keys = {
            row: [p(row) if callable(p) else p.format(row) for p in patterns]
            for row in (rows(w) if callable(rows) else rows.split())
        }
        return table(header, [[f"`{row}`", *[shown(key, values[key]) for key in k]] for row, k in keys.items()])

    return render


def named(keys: str, header: str = "figure|value", source: str = "metrics"):
    """One logged figure per row, by name (``keys`` space-separated)."""
    return grid(header, keys, "{}", source=source)


class Workspace:
    """The runs, artifacts and files of one workspace, read once."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.client = MlflowClient(f"sqlite:///{self.root / 'mlflow.db'}")
        self.paths = config.workspace_paths(self.root)

    def runs(self, name: str, optional: bool = False) -> list:
        """Finished runs called ``name``, oldest first (the pipeline's own run, then any later one)."""
        experiment = self.client.get_experiment_by_name(config.EXPERIMENT_NAME)
        where = f"attributes.run_name = '{name}' and attributes.status = 'FINISHED'"
        found = experiment and self.client.search_runs([experiment.experiment_id], where, order_by=["start_time ASC"])
        if not found and optional:
            raise Unavailable(f"no finished {name} run")
        if not found:
            raise ValueError(f"{self.root} holds no finished {name} run: run run_all.py --workspace {self.root} first")
        return found

    @cached_property
    def metrics(self) -> dict[str, float]:
        return {k: v for name in config.RUN_NAMES.values() for k, v in self.runs(name)[0].data.metrics.items()}

    @cached_property
    def training(self):
        return self.runs(config.RUN_NAMES["treinamento"])[0]

    @cached_property
    def version(self):
        scored = self.runs(config.RUN_NAMES["aplicacao"])[0].data.params[names.MODEL_VERSION]
        return self.client.get_model_version(config.REGISTERED_MODEL_NAME, scored)

    @cached_property
    def gate(self) -> dict[str, float]:
        return self.runs(config.RETRAINING_RUN_NAMES["validacao_challenger"], optional=True)[-1].data.metrics

    @cached_property
    def replay(self) -> dict[str, float]:
        run = reads.latest_replay_run(self.client)
        if run is None:
            raise Unavailable("no replay run")
        return run.data.metrics

    @cached_property
    def pipeline(self):
        """The fitted pipeline of the version the application step scored with."""
        stored = self.client.get_model_version_download_uri(config.REGISTERED_MODEL_NAME, self.version.version)
        return mlflow.pyfunc.load_model(stored).unwrap_python_model().pipeline

    def frame(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(getattr(self.paths, name))


def cv_folds(w: Workspace) -> str:
    uri = w.training.info.artifact_uri
    logged = {key: pd.DataFrame(**mlflow.artifacts.load_dict(f"{uri}/cv/{key}_cv_folds.json")) for key in CANDIDATES}
    losses = pd.DataFrame({key: folds.set_index("fold")["Log Loss"] for key, folds in logged.items()})
    rows = [[str(fold).lower(), *map(fixed, values)] for fold, values in losses.iterrows()]
    return table("fold|" + "|".join(CANDIDATES.values()), rows)


def tree(w: Workspace, part: str) -> str:
    """The champion tree's ``splits`` in each feature's unit, or its ``leaves`` with their rule and shots."""
    estimator, scaler = w.pipeline.steps[-1][1], dict(w.pipeline.steps)["normalize"].transformer
    nodes, splits, leaves = estimator.tree_, [], []
    features = [w.frame(base)[config.FEATURES] for base in ("base_train", "predictions_prod")]
    landed = [estimator.apply(np.asarray(w.pipeline[:-1].transform(x), dtype=float)) for x in features]

    def walk(node: int, bounds: dict) -> None:
        if nodes.feature[node] < 0:
            make = nodes.value[node][0][1] / nodes.value[node][0].sum()
            rule = ", ".join(f"`{feature}` {side} {trimmed(value)}" for (feature, side), value in bounds.items())
            train, prod = [shown("rows", (leaf == node).sum()) for leaf in landed]
            leaves.append([str(node), rule, train, fixed(make), prod])
            return
        index = nodes.feature[node]
        feature, cut = config.FEATURES[index], nodes.threshold[node] * scaler.scale_[index] + scaler.mean_[index]
        splits.append([str(node), f"`{feature}`", trimmed(cut)])
        walk(nodes.children_left[node], {**bounds, (feature, "≤"): min(cut, bounds.get((feature, "≤"), np.inf))})
        walk(nodes.children_right[node], {**bounds, (feature, ">"): max(cut, bounds.get((feature, ">"), -np.inf))})

    walk(0, {})
    if part == "splits":
        return table("split node|feature|threshold", sorted(splits, key=lambda row: int(row[0])))
    leaves.sort(key=lambda row: row[3], reverse=True)
    return table("leaf node|rule|base_train shots|probability of a make|production shots", leaves)


def training_support(w: Workspace) -> str:
    support, production = json.loads(reads.feature_support_text(w.client, w.version)), w.frame("predictions_prod")
    outside = pd.DataFrame({f: (production[f] < low) | (production[f] > high) for f, (low, high) in support.items()})
    rows = [
        [f"`{f}`", trimmed(low), trimmed(high), shown("share", outside[f].mean())] for f, (low, high) in support.items()
    ]
    rows.sort(key=lambda row: -float(row[3].rstrip(" %")))
    rows.append(["any of the six", "", "", shown("share", outside.any(axis=1).mean())])
    return table("feature|training low|training high|share of production outside", rows)


def trigger_table(w: Workspace) -> str:
    rows = []
    for t in triggers.latest_trigger_report(w.client, w.paths).triggers:
        if t.name == triggers.NEW_LABELS:  # counts of rows
            value, threshold = f"{t.value:,.0f}", f"{t.threshold:,.0f}"
        else:
            places = 3 if t.name == triggers.FEATURE_DRIFT else 4
            value, threshold = fixed(t.value, places), fixed(t.threshold, places)
        rows.append([f"`{t.name}`", value, threshold, shown("_fired", t.fired)])
    return table("trigger|value|threshold|fired", rows)


def recommended_action(w: Workspace) -> str:
    report = triggers.latest_trigger_report(w.client, w.paths)
    fired = [f"`{t.name}`" for t in report.fired]
    fired_text = " and ".join([", ".join(fired[:-1]), fired[-1]] if len(fired) > 1 else fired) or "no trigger"
    return f"> {report.recommended_action}\n\nOn this run, {fired_text} fired."


def feature_summary(w: Workspace) -> str:
    places = {"shot_distance": 2, "minutes_remaining": 2, "period": 2, "playoffs": 3}
    frames = [w.frame("data_filtered"), w.frame("predictions_prod")]
    columns = [(stat, x) for stat in ("mean", "median", "std") for x in frames]  # dev then prod, per statistic
    rows = [
        [f"`{f}`", *[short(getattr(x[f], stat)(), places.get(f, 4)) for stat, x in columns]] for f in config.FEATURES
    ]
    return table("feature|mean dev|mean prod|median dev|median prod|std dev|std prod", rows)


def scores(w: Workspace) -> str:
    test = reads.reference_scores(w.client, w.version)[config.PROBABILITY_COLUMN]
    rows = [["mean probability", test, w.metrics["mean_probability"]]]
    rows.append(["predicted make rate", test >= config.DECISION_THRESHOLD, w.metrics["predicted_make_rate"]])
    return table("figure|test (base_test)|production", [[label, fixed(a.mean()), fixed(b)] for label, a, b in rows])


def importance(w: Workspace) -> str:
    tree_importances = w.pipeline.steps[-1][1].feature_importances_
    ranked = sorted(zip(config.FEATURES, tree_importances, strict=True), key=lambda pair: -pair[1])
    return table("feature|importance in the tree", [[f"`{feature}`", fixed(value)] for feature, value in ranked])


def raw_files(w: Workspace) -> str:
    rows = []
    for base, file in config.DATASET_FILES.items():
        counts = [shown(key, w.metrics[f"{base}_{key}"]) for key in ("rows", "columns")]
        rows.append([f"`{base}`", f"[{file}]({config.CANONICAL_DATA_URL}{file})", *counts])
    return table("dataset|file|rows|columns", rows)


def contract(w: Workspace) -> str:
    rules = [
        [f"`{f}`", "whole number" if r.integer else "number", f"{r.minimum:g}", f"{r.maximum:g}", r.meaning]
        for f, r in FEATURE_RULES.items()
    ]
    return table("feature|type|minimum|maximum|meaning", rules)


def tuned_parameters(w: Workspace) -> str:
    rows = [
        [f"`{key}_{p}`", model, w.training.data.params[f"{key}_{p}"], f"`{values}`"]
        for key, model in CANDIDATES.items()
        for p, values in SEARCH_SPACES[key].items()
    ]
    return table("parameter|model|tuned value|grid searched", rows)


BANDS = "{} {}_lower {}_upper"
STRATEGIES = " ".join(replay.STRATEGIES)
TABLES = {
    # Data_Report/Data_Definition.md
    "raw_files": raw_files,
    "processed_rows": named("rows_filtered columns_filtered rows_train rows_test rows_scored rows_rejected"),
    "contract": contract,
    # Data_Report/Data_Summary_Report.md
    "general_summary": grid(
        "base|rows|columns|rows without `shot_made_flag`|make rate of the labelled rows",
        " ".join(config.DATASET_FILES),
        "{}_rows {}_columns {}_rows_unlabelled {}_make_rate",
    ),
    "shot_types": named("dev_share_2PT prod_share_3PT", header="figure|share of the base's rows"),
    "missing_cells": named(
        "dev_missing_cells dev_missing_shot_made_flag prod_missing_cells prod_missing_shot_made_flag"
    ),
    "split": named(
        "rows_raw rows_dropped_missing rows_filtered columns_filtered rows_train rows_test make_rate_train "
        "make_rate_test"
    ),
    "feature_summary": feature_summary,
    "feature_drift": grid(
        "feature|PSI|no-drift threshold|alert",
        lambda w: sorted(config.FEATURES, key=lambda f: -w.metrics[names.psi_metric(f)]),
        "psi_{} psi_{}_upper psi_{}_alert",
    ),
    "importance": importance,
    # Model/Baseline_Models.md
    "make_rates": named("make_rate_train dev_make_rate make_rate_test prod_make_rate rows_test rows_evaluated"),
    "baseline_metrics": grid(
        "metric|base_test (2PT shots)|production (labelled 3PT shots)",
        " ".join(METRIC_NAMES),
        "{}_baseline_test",
        names.baseline_prod_metric,
    ),
    # Model/Model_Report.md
    "tuned_parameters": tuned_parameters,
    "test_metrics": grid(
        "metric|Logistic regression|Decision tree (champion)|Trivial baseline",
        " ".join(METRIC_NAMES),
        "{}_lr_test {}_dt_test {}_baseline_test",
    ),
    "cv_mean": grid("figure|" + "|".join(CANDIDATES.values()), "cv_log_loss", *[f"{{}}_{key}" for key in CANDIDATES]),
    "cv_folds": cv_folds,
    "selection_reason": lambda w: f"> {w.training.data.tags[names.SELECTION_REASON_TAG]}",
    "splits": lambda w: tree(w, "splits"),
    "leaves": lambda w: tree(w, "leaves"),
    "fit_to_production": grid(
        "metric|test (base_test, 2PT)|production (labelled 3PT shots)|production baseline",
        " ".join(METRIC_NAMES),
        "{}_champion_test",
        names.prod_metric,
        names.baseline_prod_metric,
    ),
    "production_context": named(
        "rows_scored rows_rejected rows_evaluated dev_make_rate prod_make_rate mean_probability_labeled "
        "predicted_make_rate"
    ),
    "null_constants": named(
        "log_loss log_loss_null log_loss_null_prod", header="figure|log loss on the labelled production rows"
    ),
    # Model/Monitoring.md
    "labelled_alerts": grid(
        "figure|value|lower|upper|alert", "log_loss log_loss_vs_null observed_make_rate", BANDS, "{}_alert"
    ),
    "labelled_figures": named(
        "log_loss_null log_loss_null_prod auc_prod f1_score rows_evaluated rows_seen_in_training"
    ),
    "scores": scores,
    "training_support": training_support,
    "estimate": grid("figure|value|lower|upper", "estimated_log_loss estimated_log_loss_all_rows", BANDS),
    "triggers": trigger_table,
    "recommended_action": recommended_action,
    # Model/Retraining.md
    "gate_candidates": grid(
        "candidate|holdout log loss", "champion challenger recalibrated null", names.holdout_metric, source="gate"
    ),
    "gate_gain": named("holdout_gain holdout_gain_se holdout_rows", source="gate"),
    "replay_strategies": grid(
        "strategy|pooled log loss|minus the null's|lower|upper|gate runs|promotions",
        STRATEGIES,
        "log_loss_{} vs_null_{} vs_null_lower_{} vs_null_upper_{} retrains_{} promotions_{}",
        source="replay",
    ),
    "replay_null": named(names.REPLAY_POOLED_NULL_LOG_LOSS, source="replay"),
    "replay_reactive_vs_scheduled": grid(
        "comparison|difference|lower|upper", names.REPLAY_REACTIVE_VS_SCHEDULED, BANDS, source="replay"
    ),
    "replay_estimate": grid(
        "strategy|estimate's error|last season's loss as the estimate|interval held the realized value"
        "|error when drift fired|error when it did not",
        STRATEGIES,
        "estimation_error_{} previous_batch_error_{} estimate_coverage_{} estimation_error_drifted_{} "
        "estimation_error_stable_{}",
        source="replay",
    ),
    "replay_noise_floor": grid(
        "strategy|estimate's error|a perfect estimator's error|lower|upper",
        STRATEGIES,
        "estimation_error_{} estimate_noise_floor_{} estimate_noise_floor_lower_{} estimate_noise_floor_upper_{}",
        source="replay",
    ),
    # Project/Exit_Report.md
    "headline": named(
        "dev_rows prod_rows rows_filtered rows_train rows_test rows_scored rows_rejected rows_evaluated "
        "labels_appended make_rate_train make_rate_test prod_make_rate cv_log_loss_dt cv_log_loss_lr "
        "log_loss_dt_test log_loss_lr_test log_loss_baseline_test f1_dt_test f1_baseline_test log_loss "
        "log_loss_null log_loss_null_prod auc_prod f1_score"
    ),
}


def render(document_text: str, figures: dict[str, str]) -> str:
    """``document_text`` with each table of ``figures`` put between its two markers."""
    for name, body in figures.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)", re.S)
        if len(pattern.findall(document_text)) != 1:
            raise ValueError(f"no single <!-- table:{name} --> ... <!-- /table:{name} --> pair in the document")
        document_text = pattern.sub(lambda match, body=body: f"{match[1]}\n{body}\n\n{match[2]}", document_text)
    return document_text


def rendered(text: str, workspace: Workspace) -> tuple[dict[str, str], dict[str, str]]:
    """The tables of a document the workspace can render, and why each other one was left as it is."""
    tables, skipped = {}, {}
    for name in MARKER.findall(text):
        if name not in TABLES:
            raise ValueError(f"no table named {name} in kobe_mlops.docs_tables.TABLES")
        try:
            tables[name] = TABLES[name](workspace)
        except Unavailable as missing:
            skipped[name] = str(missing)
    return tables, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the figure tables of Docs/ from a workspace's pipeline run.")
    parser.add_argument("--workspace", required=True, type=Path, help="the folder a run_all.py run wrote")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 naming every stale table")
    args = parser.parse_args(argv)
    workspace, stale = Workspace(args.workspace), []
    for path in sorted(DOCS.rglob("*.md")):
        text, document = path.read_text(), path.relative_to(DOCS).as_posix()
        try:
            tables, skipped = rendered(text, workspace)
            stale += [f"{document}: {name}" for name in tables if render(text, {name: tables[name]}) != text]
        except ValueError as problem:  # no pipeline run in the workspace, a marker without its end
            print(f"{document}: {problem}", file=sys.stderr)
            return 1
        print(*[f"{document}: {name} left as it is ({why})\n" for name, why in skipped.items()], sep="", end="")
        if not args.check and render(text, tables) != text:
            with io.atomic_path(path) as temporary:
                temporary.write_text(render(text, tables))
    print(*[f"{'stale' if args.check else 'refreshed'}: {line}\n" for line in stale], sep="", end="")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
