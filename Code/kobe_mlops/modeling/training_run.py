"""What a ``Treinamento`` run (notebook 03) reads, evaluates, logs and registers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from kobe_mlops import config
from kobe_mlops.data_acquisition.prepare import class_ratio
from kobe_mlops.modeling import plots
from kobe_mlops.modeling.metrics import baseline_metrics, evaluate_probabilities, prefixed
from kobe_mlops.modeling.registry import log_and_register, log_lineage
from kobe_mlops.modeling.train import SELECTION_RULE, Candidate
from kobe_mlops.tracking import names

BASELINE_LABEL = "Trivial baseline"


@dataclass(frozen=True)
class TrainingBases:
    train: pd.DataFrame  # base_train, plus the extra labelled rows when there are any
    test: pd.DataFrame  # base_test: never changes, the same yardstick for every version
    # The held-out rows monitoring starts from: the reference_data rows (a challenger's production
    # holdout, never learned) when given, else base_test.
    reference: pd.DataFrame
    rows_extra_train: int = 0
    extra_train_data: str = ""  # the parquet the extra rows came from ("" = none)
    # shot_id of every production row among the training rows (empty for a development model)
    production_shot_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype="int64"))


def load_training_bases(
    extra_train_data: str | os.PathLike = "",
    reference_data: str | os.PathLike = "",
    paths: config.WorkspacePaths | None = None,
) -> TrainingBases:
    """base_train and base_test; notebook 03's ``extra_train_data`` rows join base_train, its
    ``reference_data`` rows (never learned) are the monitoring reference."""
    paths = paths or config.workspace_paths()
    base_train = pd.read_parquet(config.input_file(paths.base_train, f"base_train of workspace {paths.root} (step 02)"))
    base_test = pd.read_parquet(config.input_file(paths.base_test, f"base_test of workspace {paths.root} (step 02)"))
    columns = config.FEATURES + [config.TARGET]
    reference = base_test[columns]
    if reference_data:
        given = pd.read_parquet(config.input_file(reference_data, "notebook parameter reference_data"))
        reference = reference if given.empty else given[columns].reset_index(drop=True)
    if not extra_train_data:
        return TrainingBases(base_train, base_test, reference)
    extra_train_data = config.input_file(extra_train_data, "notebook parameter extra_train_data")
    extra = pd.read_parquet(extra_train_data)
    shot_ids = extra["shot_id"].to_numpy(dtype="int64") if "shot_id" in extra else np.array([], dtype="int64")
    rows = extra[columns].astype(base_train.dtypes.to_dict())
    train = pd.concat([base_train, rows], ignore_index=True)
    return TrainingBases(train, base_test, reference, len(rows), str(extra_train_data), shot_ids)


@dataclass(frozen=True)
class TestEvaluation:
    probability: dict[str, np.ndarray]  # candidate key -> P(make) on base_test
    metrics: dict[str, dict[str, float]]  # candidate key -> metrics on base_test
    baseline: dict[str, float]  # the trivial baselines on base_test

    def table(self, candidates: dict[str, Candidate]) -> pd.DataFrame:
        """Candidates and the trivial baseline side by side, one column each."""
        columns = {candidates[key].label: metrics for key, metrics in self.metrics.items()}
        return pd.DataFrame({**columns, BASELINE_LABEL: self.baseline})


def evaluate_on_test(candidates: dict[str, Candidate], bases: TrainingBases) -> TestEvaluation:
    """Each candidate's metrics on base_test, from its probability through the whole pipeline."""
    y_test = bases.test[config.TARGET]
    probability = {key: candidate.predict_probability(bases.test) for key, candidate in candidates.items()}
    metrics = {key: evaluate_probabilities(y_test, probability[key]) for key in candidates}
    return TestEvaluation(probability, metrics, baseline_metrics(y_test, class_ratio(bases.train)))


def evaluation_figures(
    candidates: dict[str, Candidate], bases: TrainingBases, evaluation: TestEvaluation
) -> dict[str, Figure]:
    """ROC and calibration of every candidate, and each one's confusion matrix, on base_test."""
    y_test = bases.test[config.TARGET]
    curves = {c.label: (y_test, evaluation.probability[key]) for key, c in candidates.items()}
    return {
        "roc_test.png": plots.roc_figure(curves),
        "calibration_test.png": plots.calibration_figure(curves),
        **{
            f"confusion_{key}_test.png": plots.confusion_figure(
                y_test, evaluation.probability[key], f"{c.label} on base_test"
            )
            for key, c in candidates.items()
        },
    }


def log_training_run(
    run: mlflow.ActiveRun,
    candidates: dict[str, Candidate],
    bases: TrainingBases,
    evaluation: TestEvaluation,
    champion: Candidate,
    reason: str,
    figures: dict[str, Figure],
    *,
    seed: int,
    fast: bool,
    folds: int,
    register_alias: str,
) -> str:
    """Log the active ``Treinamento`` run and register ``champion`` under ``register_alias``; the new version."""
    mlflow.log_params(
        {
            "seed": seed,
            "fast": fast,
            "cv_folds": folds,
            "selection_rule": SELECTION_RULE,
            "rows_train": len(bases.train),
            "rows_test": len(bases.test),
            "rows_extra_train": bases.rows_extra_train,
            "extra_train_data": bases.extra_train_data or "none",
        }
    )
    for key, candidate in candidates.items():
        mlflow.log_params({f"{key}_{name}": value for name, value in candidate.best_params.items()})
        mlflow.log_metric(f"cv_log_loss_{key}", candidate.cv_log_loss)
        mlflow.log_metrics(prefixed(evaluation.metrics[key], key, "test"))
        mlflow.log_table(candidate.cv_table.reset_index(names="fold"), artifact_file=f"cv/{key}_cv_folds.json")
    mlflow.log_metrics({names.baseline_test_metric(name): value for name, value in evaluation.baseline.items()})
    mlflow.log_metrics({names.champion_test_metric(name): v for name, v in evaluation.metrics[champion.key].items()})
    log_lineage(champion, bases.train, bases.production_shot_ids, bases.reference)
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
    mlflow.set_tags({"champion_model": champion.label, names.SELECTION_REASON_TAG: reason})
    _, version = log_and_register(
        champion,
        bases.train,
        alias=register_alias,
        version_tags={
            "cv_log_loss": f"{champion.cv_log_loss:.6f}",
            "test_log_loss": f"{evaluation.metrics[champion.key]['log_loss']:.6f}",
            names.SELECTION_REASON_TAG: reason,
            names.TRAINING_RUN_TAG: run.info.run_id,
        },
    )
    return version
