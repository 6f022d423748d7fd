"""The champion rule on hand-made candidates, and one real (tiny, fast-grid) PyCaret training."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from conftest import synthetic_shots
from kobe_mlops import config
from kobe_mlops.modeling import train
from kobe_mlops.modeling.train import (
    FAST_SEARCH_SPACES,
    LOG_LOSS_METRIC,
    SELECTION_TOLERANCE,
    Candidate,
    choose_champion,
)


def cv_table(folds: int, mean: float) -> pd.DataFrame:
    """PyCaret's table: one row per fold, then Mean and Std."""
    index = [*range(folds), "Mean", "Std"]
    return pd.DataFrame({LOG_LOSS_METRIC: [mean] * folds + [mean, 0.0]}, index=index)


def candidate(key: str, cv_log_loss: float, folds: int = 5) -> Candidate:
    return Candidate(key, pipeline=None, best_params={}, cv_log_loss=cv_log_loss, cv_table=cv_table(folds, cv_log_loss))


LOWEST = "chosen: lowest mean {}-fold CV log loss on base_train ({})."
TIE = "CV log loss 0.6705 is within 0.001 of Decision tree's 0.6700, and ties go to the simpler model."


@pytest.mark.parametrize(
    "lr, dt, folds, chosen, reason",
    [
        (0.68, 0.67, 5, "dt", "Decision tree " + LOWEST.format(5, "0.6700 vs Logistic regression 0.6800")),
        (0.66, 0.67, 3, "lr", "Logistic regression " + LOWEST.format(3, "0.6600 vs Decision tree 0.6700")),
        (0.6705, 0.67, 5, "lr", "Logistic regression chosen: " + TIE),  # gaps of half and 1.5 times the tolerance
        (0.6715, 0.67, 5, "dt", "Decision tree " + LOWEST.format(5, "0.6700 vs Logistic regression 0.6715")),
    ],
    ids=["lower-wins", "lower-regression-wins", "tie-goes-to-the-regression", "gap-just-over-the-tolerance"],
)
def test_the_lowest_cross_validated_log_loss_wins_and_a_tie_goes_to_the_regression(lr, dt, folds, chosen, reason):
    champion, said = choose_champion({"lr": candidate("lr", lr, folds), "dt": candidate("dt", dt, folds)})
    assert champion.key == chosen and said == reason


def test_a_single_candidate_is_chosen_and_said_to_be_alone():
    champion, reason = choose_champion({"dt": candidate("dt", 0.7)})
    assert champion.key == "dt" and reason == "Decision tree is the only candidate."


def test_the_documented_rule_names_the_tolerance_and_the_preferred_model():
    assert str(SELECTION_TOLERANCE) in train.SELECTION_RULE
    assert train.CANDIDATES[train.PREFERRED_ON_TIE] == "Logistic regression"
    assert set(FAST_SEARCH_SPACES) == set(train.SEARCH_SPACES) == set(train.CANDIDATES)


# --- One real training on a few hundred synthetic shots ----------------------------------------


@pytest.mark.e2e  # PyCaret's set-up and two grid searches take over ten seconds even on 300 rows
def test_a_tiny_fast_grid_training_gives_whole_pipelines_and_a_champion():
    base_train, base_test = synthetic_shots(300, 0), synthetic_shots(100, 1)
    experiment = train.build_experiment(base_train, base_test, seed=config.SEED, folds=train.FAST_CV_FOLDS)
    candidates = {key: train.train_candidate(experiment, key, fast=True) for key in train.CANDIDATES}
    for key, trained in candidates.items():
        assert trained.key == key
        assert trained.pipeline.steps[-1][0] == "trained_model"  # preprocessing + the tuned estimator
        assert set(trained.best_params) == set(FAST_SEARCH_SPACES[key])
        assert all(trained.best_params[name] in grid for name, grid in FAST_SEARCH_SPACES[key].items())
        assert trained.cv_log_loss == trained.cv_table.loc["Mean", LOG_LOSS_METRIC]
        assert len(trained.cv_table) == train.FAST_CV_FOLDS + 2  # the folds, Mean and Std
        probability = trained.predict_probability(base_test)
        assert probability.shape == (len(base_test),) and ((probability > 0) & (probability < 1)).all()
        # The whole pipeline takes raw features: standardisation is inside it.
        assert np.array_equal(probability, trained.pipeline.predict_proba(base_test[config.FEATURES])[:, 1])
        constant = log_loss(base_test[config.TARGET], [base_train[config.TARGET].mean()] * len(base_test))
        assert log_loss(base_test[config.TARGET], probability) < constant
    champion, reason = choose_champion(candidates)
    assert champion is min(candidates.values(), key=lambda c: c.cv_log_loss) or "ties go" in reason
