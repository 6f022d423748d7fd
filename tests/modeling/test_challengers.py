"""Candidates for the model in service (modeling/challengers.py): recipes, recalibration, the null model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from conftest import synthetic_shots
from kobe_mlops import config
from kobe_mlops.modeling import challengers
from kobe_mlops.modeling.shot_model import ShotMadeModel


def labelled_rows(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Development-like short shots and production-like long ones (22 ft and beyond) with a lower make rate."""
    rng = np.random.default_rng(seed)
    frame = synthetic_shots(rows, seed)
    production = frame["shot_distance"] >= 22
    frame[config.TARGET] = (rng.random(rows) < np.where(production, 0.3, 0.5)).astype(float)
    frame[challengers.PRODUCTION_COLUMN] = production
    frame["game_date"] = pd.Timestamp("2005-01-01") + pd.to_timedelta(rng.integers(0, 3000, rows), unit="D")
    return frame


def test_recency_weights_halve_every_half_life():
    now = pd.Timestamp("2010-01-01")
    dates = pd.Series(pd.to_datetime(["2010-01-01", "2007-01-01", "2004-01-01"]))
    np.testing.assert_allclose(challengers.recency_weights(dates, now), [1, 0.5, 0.25], rtol=0.01)


def test_every_candidate_is_built_and_scores_through_the_shot_model():
    rows = labelled_rows()
    champion = DummyClassifier(strategy="prior").fit(rows[config.FEATURES], rows[config.TARGET])
    window = rows[rows[challengers.PRODUCTION_COLUMN]]
    assert challengers.enough_to_learn(window)
    candidates = {name: recipe(rows, rows["game_date"].max()) for name, recipe in challengers.RECIPES.items()}
    candidates |= challengers.champion_alternatives(champion, window, window)
    assert set(candidates) == {*challengers.RECIPES, challengers.RECALIBRATED, challengers.NULL}
    for name, estimator in candidates.items():
        scored = ShotMadeModel(estimator).predict(None, rows[config.FEATURES])
        assert scored[config.PROBABILITY_COLUMN].between(0, 1).all(), name
    null = ShotMadeModel(candidates[challengers.NULL]).predict(None, rows[config.FEATURES])
    assert null[config.PROBABILITY_COLUMN].iloc[0] == pytest.approx(window[config.TARGET].mean())
    assert challengers.describe(candidates[challengers.RECALIBRATED]).startswith("recalibrated (")


def test_recalibration_fixes_a_champion_that_misses_the_make_rate():
    rows = labelled_rows(2000)
    window = rows[rows[challengers.PRODUCTION_COLUMN]]
    champion = DummyClassifier(strategy="prior").fit(rows[config.FEATURES], rows[config.TARGET])  # ~0.45
    recalibrated = challengers.recalibrated(champion, window)
    probability = ShotMadeModel(recalibrated).predict(None, window[config.FEATURES])[config.PROBABILITY_COLUMN]
    assert probability.mean() == pytest.approx(window[config.TARGET].mean(), abs=0.01)


def test_too_few_production_labels_or_one_outcome_are_not_enough_to_learn_from():
    production = labelled_rows().query(challengers.PRODUCTION_COLUMN)
    assert not challengers.enough_to_learn(production.head(challengers.MIN_PRODUCTION_ROWS - 1))
    assert not challengers.enough_to_learn(production.assign(**{config.TARGET: 1.0}))
    champion = DummyClassifier(strategy="prior").fit(production[config.FEATURES], production[config.TARGET])
    assert set(challengers.champion_alternatives(champion, production.head(10), production)) == {challengers.NULL}
