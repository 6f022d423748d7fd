"""Train and tune the two candidate models with PyCaret, and choose the champion.

PyCaret imputes, standardises and grid-searches on ``base_train`` (``base_test`` is never used to
tune or choose); each candidate is the *whole* fitted pipeline, preprocessing included.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import pandas as pd
from sklearn.metrics import log_loss

from kobe_mlops import config

CANDIDATES = {"lr": "Logistic regression", "dt": "Decision tree"}

# Grid searches optimise cross-validated log loss. The tree grid keeps leaves large enough to
# hold a meaningful make rate: deep trees with tiny leaves give 0/1 "probabilities".
SEARCH_SPACES = {
    "lr": {"C": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]},
    "dt": {
        "max_depth": [3, 4, 5, 6, 8],
        "min_samples_leaf": [25, 50, 100, 200, 400],
        "criterion": ["gini", "entropy"],
    },
}
FAST_SEARCH_SPACES = {
    "lr": {"C": [0.1, 1.0]},
    "dt": {"max_depth": [4, 6], "min_samples_leaf": [50, 200], "criterion": ["entropy"]},
}
FAST_CV_FOLDS = 3

# Selection: lowest mean cross-validated log loss on base_train. Within this margin the
# logistic regression wins: it is smoother and easier to explain than the tree.
SELECTION_TOLERANCE = 0.001
PREFERRED_ON_TIE = "lr"
SELECTION_RULE = (
    "lowest mean cross-validated log loss on base_train; a gap under "
    f"{SELECTION_TOLERANCE} goes to the logistic regression (simpler, smoother probabilities); "
    "base_test is kept for the final, unbiased estimate only"
)

LOG_LOSS_METRIC = "Log Loss"


@dataclass
class Candidate:
    key: str
    pipeline: object  # fitted PyCaret Pipeline: preprocessing steps + the tuned estimator
    best_params: dict
    cv_log_loss: float
    cv_table: pd.DataFrame = field(repr=False)

    @property
    def label(self) -> str:
        return CANDIDATES[self.key]

    def predict_probability(self, features: pd.DataFrame):
        return self.pipeline.predict_proba(features[config.FEATURES])[:, 1]


def classification_experiment_class():
    """PyCaret's ``ClassificationExperiment``, its log in reports/ (not ./logs.log) and matplotlib's fonts
    reset: yellowbrick's Arial list floods "findfont" lines where Arial is not installed."""
    import matplotlib

    config.route_pycaret_log()
    from pycaret.classification import ClassificationExperiment

    for key in ("font.family", "font.sans-serif"):
        matplotlib.rcParams[key] = matplotlib.rcParamsDefault[key]
    return ClassificationExperiment


def build_experiment(base_train: pd.DataFrame, base_test: pd.DataFrame, seed: int, folds: int):
    """A PyCaret classification experiment on base_train, with log loss as a tuning metric."""
    experiment = classification_experiment_class()()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        experiment.setup(
            data=base_train[config.FEATURES + [config.TARGET]],
            test_data=base_test[config.FEATURES + [config.TARGET]],
            target=config.TARGET,
            index=False,  # train and test both carry a fresh RangeIndex
            session_id=seed,
            normalize=True,
            fold_strategy="stratifiedkfold",
            fold=folds,
            fold_shuffle=True,
            memory=False,
            html=False,
            verbose=False,
            system_log=False,
            log_experiment=False,  # broken on MLflow >= 2.18; runs are logged by the notebooks
        )
    experiment.add_metric("logloss", LOG_LOSS_METRIC, log_loss, greater_is_better=False, target="pred_proba")
    return experiment


def train_candidate(experiment, key: str, fast: bool = False) -> Candidate:
    """Grid-search one candidate on cross-validated log loss; return its whole pipeline."""
    search_space = (FAST_SEARCH_SPACES if fast else SEARCH_SPACES)[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = experiment.create_model(key, verbose=False)
        tuned = experiment.tune_model(
            base,
            optimize=LOG_LOSS_METRIC,
            custom_grid=search_space,
            search_library="scikit-learn",
            search_algorithm="grid",
            choose_better=False,
            verbose=False,
        )
    cv_table = experiment.pull()
    pipeline = copy.deepcopy(experiment.pipeline)
    pipeline.steps.append(("trained_model", tuned))
    best_params = {name: tuned.get_params()[name] for name in search_space}
    return Candidate(key, pipeline, best_params, float(cv_table.loc["Mean", LOG_LOSS_METRIC]), cv_table)


def choose_champion(candidates: dict[str, Candidate]) -> tuple[Candidate, str]:
    """Apply :data:`SELECTION_RULE`; return the winner and a sentence saying why."""
    ranked = sorted(candidates.values(), key=lambda candidate: candidate.cv_log_loss)
    if len(ranked) == 1:
        return ranked[0], f"{ranked[0].label} is the only candidate."
    best, runner_up = ranked[:2]
    gap = runner_up.cv_log_loss - best.cv_log_loss
    if gap < SELECTION_TOLERANCE and PREFERRED_ON_TIE in candidates and best.key != PREFERRED_ON_TIE:
        preferred = candidates[PREFERRED_ON_TIE]
        return preferred, (
            f"{preferred.label} chosen: CV log loss {preferred.cv_log_loss:.4f} is within "
            f"{SELECTION_TOLERANCE} of {best.label}'s {best.cv_log_loss:.4f}, and ties go to "
            f"the simpler model."
        )
    folds = len(best.cv_table.index) - 2  # the table has one row per fold, plus Mean and Std
    return best, (
        f"{best.label} chosen: lowest mean {folds}-fold CV log loss on "
        f"base_train ({best.cv_log_loss:.4f} vs {runner_up.label} {runner_up.cv_log_loss:.4f})."
    )
