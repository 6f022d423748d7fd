"""Never in-sample: labelled rows the scoring model learned are counted and left out of its metrics."""

import numpy as np
import pandas as pd

from kobe_mlops import config
from kobe_mlops.modeling.support import feature_support
from kobe_mlops.monitoring.estimation import PerformanceEstimator
from kobe_mlops.monitoring.scoring_model import ScoringModel, split_seen_rows


def labelled(shot_ids) -> pd.DataFrame:
    return pd.DataFrame({"shot_id": shot_ids, config.TARGET: [1.0] * len(shot_ids)})


def test_rows_the_model_learned_are_counted_and_left_out():
    evaluated, seen = split_seen_rows(labelled([1, 2, 3, 4, 5]), np.array([2, 4, 99], dtype="int64"))
    assert seen == 2
    assert evaluated["shot_id"].tolist() == [1, 3, 5]


def test_a_model_of_development_data_only_evaluates_every_labelled_row():
    rows = labelled([7, 8])
    evaluated, seen = split_seen_rows(rows, np.array([], dtype="int64"))
    assert seen == 0 and evaluated.equals(rows)


def test_every_row_seen_leaves_nothing_to_evaluate():
    evaluated, seen = split_seen_rows(labelled([1, 2]), np.array([1, 2], dtype="int64"))
    assert seen == 2 and evaluated.empty


def test_seen_mask_matches_split_seen_rows():
    train = pd.DataFrame({name: np.linspace(0, 1, 50) for name in config.FEATURES})
    estimator = PerformanceEstimator.fit(np.linspace(0.1, 0.9, 600), np.tile([0, 1], 300), feature_support(train))
    model = ScoringModel("3", np.array([3, 10], dtype="int64"), estimator)
    assert model.seen_mask([1, 3, 10, 11]).tolist() == [False, True, True, False]
