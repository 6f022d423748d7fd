"""Candidates for the model in service, scikit-learn classifiers on the six features served by
``ShotMadeModel``: challenger recipes (logistic regression on production labels alone, gradient
boosting on every label with recent seasons weighted up), a recalibrated champion, the null model."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import cast_features
from kobe_mlops.modeling.registry import log_and_register, log_lineage
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.tracking import names, start_run

# A row's weight halves every this many years of age: about three seasons, the span over which the
# production make rate keeps its level (Docs/Model/Retraining.md).
RECENCY_HALF_LIFE_YEARS = 3.0
PRODUCTION_COLUMN = "is_production"  # True for labelled production rows, False for development rows
DATE_COLUMN = "game_date"
MIN_PRODUCTION_ROWS = 50  # fewer labelled production rows teach a recipe nothing it can be judged on

RECALIBRATED = "recalibrated"
NULL = "null"


def recency_weights(dates: pd.Series, now: pd.Timestamp):
    age_years = (now - pd.to_datetime(dates)).dt.days.clip(lower=0) / 365.25
    return np.power(0.5, age_years.to_numpy() / RECENCY_HALF_LIFE_YEARS)


def logistic_regression(rows: pd.DataFrame, now: pd.Timestamp):
    """Standardised logistic regression on the labelled production rows only."""
    production = rows[rows[PRODUCTION_COLUMN]]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    return model.fit(production[config.FEATURES], production[config.TARGET].astype(int))


def gradient_boosting(rows: pd.DataFrame, now: pd.Timestamp):
    """Histogram gradient boosting on every labelled row, recent seasons weighted up."""
    model = HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40, random_state=config.SEED
    )
    weights = recency_weights(rows[DATE_COLUMN], now)
    return model.fit(rows[config.FEATURES], rows[config.TARGET].astype(int), sample_weight=weights)


Recipe = Callable[[pd.DataFrame, pd.Timestamp], object]
RECIPES: dict[str, Recipe] = {"logistic_regression": logistic_regression, "gradient_boosting": gradient_boosting}


def recalibrated(estimator, window: pd.DataFrame):
    """``estimator`` with a Platt map fitted on ``window`` (newest labelled rows it never learned)."""
    calibrated = CalibratedClassifierCV(estimator, method="sigmoid", cv="prefit")
    return calibrated.fit(window[config.FEATURES], window[config.TARGET].astype(int))


def null_model(labelled: pd.DataFrame):
    """A constant probability: the make rate of ``labelled``."""
    return DummyClassifier(strategy="prior").fit(labelled[config.FEATURES], labelled[config.TARGET].astype(int))


def enough_to_learn(labelled: pd.DataFrame) -> bool:
    """Enough labelled production rows, makes and misses, to fit or recalibrate a candidate on."""
    return len(labelled) >= MIN_PRODUCTION_ROWS and labelled[config.TARGET].nunique() == 2


def champion_alternatives(champion, window: pd.DataFrame, production: pd.DataFrame) -> dict[str, object]:
    """The candidates beside the trained recipes: the champion recalibrated on ``window`` (rows it
    scored and never learned) when enough, and the null model (the make rate of ``production``)."""
    built = {}
    if champion is not None and enough_to_learn(window):
        built[RECALIBRATED] = recalibrated(champion, window)
    if len(production):
        built[NULL] = null_model(production)
    return built


def rebuild(name: str, rows: pd.DataFrame, champion, recalibration_window: pd.DataFrame):
    """The :func:`champion_alternatives` candidate ``name`` built again once the gate has chosen it."""
    if name == RECALIBRATED:
        return recalibrated(champion, recalibration_window)
    return null_model(rows[rows[PRODUCTION_COLUMN]])


def describe(estimator) -> str:
    """One line naming the estimator (a recalibrated one names what it wraps)."""
    if isinstance(estimator, CalibratedClassifierCV):
        return f"recalibrated ({describe(estimator.estimator)})"
    if isinstance(estimator, DummyClassifier):
        return f"constant probability {estimator.class_prior_[1]:.4f}"
    steps = getattr(estimator, "steps", None)
    return type(steps[-1][1] if steps else estimator).__name__


# --- The challenger of run_all.py --retrain, and registering any candidate ----------------------

VALIDATION_FRACTION = 0.3  # newest share of the production labels a recipe is chosen on


def development_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """Labelled development rows with their date: what a challenger may learn besides production."""
    rows = raw.dropna(subset=[*config.FEATURES, config.TARGET])
    rows = cast_features(rows[[DATE_COLUMN, *config.FEATURES, config.TARGET]].reset_index(drop=True))
    return rows.assign(**{DATE_COLUMN: pd.to_datetime(rows[DATE_COLUMN]), PRODUCTION_COLUMN: False})


def choose_recipe(rows: pd.DataFrame) -> tuple[str, dict[str, float]]:
    """The recipe with the lowest log loss on the newest production labels, each fitted on the rows
    dated before them; and every recipe's validation log loss."""
    production = rows[rows[PRODUCTION_COLUMN]].sort_values(DATE_COLUMN)
    start = production[DATE_COLUMN].iloc[int(len(production) * (1 - VALIDATION_FRACTION))]
    validation, earlier = production[production[DATE_COLUMN] >= start], rows[rows[DATE_COLUMN] < start]
    losses = {}
    for name, recipe in RECIPES.items():
        model = recipe(earlier, start)
        probability = ShotMadeModel(model).predict(None, validation[config.FEATURES])[config.PROBABILITY_COLUMN]
        losses[name] = float(log_loss(validation[config.TARGET].astype(int), probability, labels=[0, 1]))
    return min(losses, key=losses.get), losses


def register_candidate(
    name: str, estimator, learned: pd.DataFrame, reference: pd.DataFrame, alias: str, params: dict | None = None
) -> str:
    """Register ``estimator`` under ``alias`` from a ``Treinamento`` run with its lineage: the rows it
    ``learned`` and its scores on the ``reference`` rows it never learned."""
    shot_ids = learned.loc[learned[PRODUCTION_COLUMN], "shot_id"]
    with start_run("treinamento", **{"kobe.role": "challenger"}) as run:
        mlflow.log_params({"candidate": name, "model": describe(estimator), **(params or {})})
        log_lineage(ShotMadeModel(estimator), learned, shot_ids, reference)
        candidate = SimpleNamespace(pipeline=estimator, label=describe(estimator))
        _, version = log_and_register(
            candidate, learned, alias=alias, version_tags={names.TRAINING_RUN_TAG: run.info.run_id, "candidate": name}
        )
    return version
