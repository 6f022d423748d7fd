"""Synthetic production, fake models and a fake trainer for the replay's tests.

Production shots of batch ``t`` stand at 30 + t ft (the training rows a fake trainer receives
tell which batches it learned) and their outcome follows the playoffs flag, so a model that
learns it beats the null model. Used by tests/monitoring/test_replay.py and the Timeline page's
tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kobe_mlops import config
from kobe_mlops.data_acquisition.prepare import class_ratio
from kobe_mlops.monitoring import replay
from kobe_mlops.monitoring.replay import ReplaySettings, plan_batches

PROB, PRED, TARGET = config.PROBABILITY_COLUMN, config.PREDICTION_COLUMN, config.TARGET
PRODUCTION_DISTANCE = 30.0  # production shots of batch t stand at 30 + t ft: the rows tell their batch


def shots(rows: int, seed: int, make_rate: float | None, distance=None) -> pd.DataFrame:
    """Development-like shots at ``make_rate``; with ``make_rate=None``, long shots whose outcome
    the playoffs flag tells (a make rate of 0.65 in playoff games, 0.05 otherwise)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "lat": rng.uniform(33.9, 34.05, rows),
            "lon": rng.uniform(-118.4, -118.1, rows),
            "minutes_remaining": rng.integers(0, 12, rows),
            "period": rng.integers(1, 5, rows),
            "playoffs": rng.integers(0, 2, rows),
            "shot_distance": rng.integers(0, 21, rows).astype(float) if distance is None else float(distance),
        }
    )
    chance = np.where(frame["playoffs"] == 1, 0.65, 0.05) if make_rate is None else make_rate
    frame[TARGET] = (rng.random(rows) < chance).astype("int64")
    return frame


def production(seasons: list[tuple[str, str, int, bool, bool]]) -> pd.DataFrame:
    """``(season, first date, rows, labelled?, long shots?)`` per season. Long shots of batch ``t``
    stand at 30 + t ft and their outcome follows the playoffs flag; the others look like development."""
    frames, next_id = [], 1000
    for index, (season, first, rows, labelled, long_shots) in enumerate(seasons):
        if long_shots:
            frame = shots(rows, 100 + index, None, PRODUCTION_DISTANCE + index)
        else:
            frame = shots(rows, 100 + index, 0.45)
        frame[TARGET] = frame[TARGET].astype(float) if labelled else np.nan
        frame["season"] = season
        frame["game_date"] = [f"{pd.Timestamp(first) + pd.Timedelta(days=day // 5):%Y-%m-%d}" for day in range(rows)]
        frame["shot_id"] = np.arange(next_id, next_id + rows)
        next_id += rows
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


class ConstantModel:
    """The same probability for every shot."""

    def __init__(self, probability: float):
        self.probability = probability

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        probability = np.full(len(features), self.probability)
        return pd.DataFrame({PROB: probability, PRED: (probability >= 0.5).astype("int64")}, index=features.index)


class RateModel:
    """The make rates it learned: of short shots, and of long shots in and out of the playoffs."""

    def __init__(self, rows: pd.DataFrame):
        long = rows["shot_distance"] >= PRODUCTION_DISTANCE
        self.short = class_ratio(rows[~long])
        self.long = {
            flag: class_ratio(rows[long & (rows["playoffs"] == flag)]) if long.any() else self.short for flag in (0, 1)
        }

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        long = np.where(features["playoffs"] == 1, self.long[1], self.long[0])
        probability = np.clip(np.where(features["shot_distance"] >= PRODUCTION_DISTANCE, long, self.short), 0.01, 0.99)
        return pd.DataFrame({PROB: probability, PRED: (probability >= 0.5).astype("int64")}, index=features.index)


class FakeTrainer:
    """Records what each training saw; ``model`` builds the challenger from the training rows."""

    def __init__(self, model=RateModel):
        self.model = model
        self.calls: list[pd.DataFrame] = []

    def __call__(self, rows: pd.DataFrame):
        self.calls.append(rows.copy())
        return self.model(rows), "fake"

    def batches_learned(self, call: int) -> set[int]:
        distance = self.calls[call]["shot_distance"]
        return {int(d - PRODUCTION_DISTANCE) for d in distance[distance >= PRODUCTION_DISTANCE]}


def synthetic_bases() -> dict[str, pd.DataFrame]:
    """base_train and base_test (development-like shots, make rate 0.45) and the development base."""
    base_train = shots(1500, 1, 0.45)
    base_test = shots(600, 2, 0.45)
    return {"train": base_train, "test": base_test, "development": pd.concat([base_train, base_test])}


def inputs_with(bases, champion_model) -> replay.ReplayInputs:
    scoring = replay.calibrated_model(champion_model, bases["train"], bases["test"], [])
    champion = replay.Deployed(
        champion_model, scoring, replay.base_test_log_loss(champion_model, bases["test"]), -1, "fake champion"
    )
    return replay.ReplayInputs(bases["train"], bases["test"], bases["development"], champion, "1")


# Batch 2 looks like development and carries no label: no trigger can fire on it.
SEASONS = [
    ("2001-02", "2001-11-01", 120, True, True),
    ("2002-03", "2002-11-01", 120, True, True),
    ("2003-04", "2003-11-01", 120, False, False),
    ("2004-05", "2004-11-01", 120, True, True),
    ("2005-06", "2005-11-01", 120, True, True),
]


def replayed(bases, champion=0.6, trainer=None, every=2, strategies=replay.STRATEGIES, log=None):
    trainer = trainer or FakeTrainer()
    batches = plan_batches(production(SEASONS))
    settings = ReplaySettings(strategies=tuple(strategies), schedule_every=every)
    result = replay.run_replay(
        batches, inputs_with(bases, ConstantModel(champion)), trainer, settings, progress=lambda line: None, log=log
    )
    return result, trainer, batches


def records(result, strategy: str) -> list[replay.BatchRecord]:
    return [record for record in result.records if record.strategy == strategy]
