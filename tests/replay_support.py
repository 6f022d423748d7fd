"""Synthetic development and production shots for the replay's tests (and the Timeline page's).

Development shots are short and go in 45 % of the time. Production shots are long (30 ft) and
their outcome follows the playoffs flag (65 % in playoff games, 5 % otherwise), so a challenger
that learns production labels beats both the development champion and the null model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier

from conftest import synthetic_shots
from kobe_mlops import config
from kobe_mlops.monitoring import replay
from kobe_mlops.monitoring.calculators import MonitoringReference

TARGET = config.TARGET


def shots(rows: int, seed: int, production: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = synthetic_shots(rows, seed).drop(columns=TARGET)
    frame["shot_distance"] = np.full(rows, 30.0) if production else rng.integers(0, 21, rows).astype(float)
    chance = np.where(frame["playoffs"] == 1, 0.65, 0.05) if production else 0.45
    frame[TARGET] = (rng.random(rows) < chance).astype(float)
    return frame


def production(seasons: list[tuple[str, str, int, bool]]) -> pd.DataFrame:
    """``(season, first date, rows, labelled?)`` per season; five shots a day from the first date."""
    frames, next_id = [], 1000
    for index, (season, first, rows, labelled) in enumerate(seasons):
        frame = shots(rows, 100 + index, production=True)
        if not labelled:
            frame[TARGET] = np.nan
        frame["season"] = season
        frame["game_date"] = [f"{pd.Timestamp(first) + pd.Timedelta(days=day // 5):%Y-%m-%d}" for day in range(rows)]
        frame["shot_id"] = np.arange(next_id, next_id + rows)
        next_id += rows
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# Six seasons, the third (2003-04) without labels.
SEASONS = [
    (f"{year}-{(year + 1) % 100:02d}", f"{year}-11-01", 250 if year == 2003 else 300, year != 2003)
    for year in range(2001, 2007)
]


def inputs() -> replay.ReplayInputs:
    """Development rows dated across the seasons and a constant development champion."""
    development = shots(2000, 1, production=False)
    development["game_date"] = pd.Timestamp("2001-10-01") + pd.to_timedelta(np.arange(2000) % 1800, unit="D")
    champion = DummyClassifier(strategy="prior").fit(development[config.FEATURES], development[TARGET])
    reference = MonitoringReference(
        replay.reference_rows(shots(500, 2, production=False), champion), "500 held-out development rows"
    )
    deployed = replay.Deployed(champion, reference, -1, "development champion (constant)")
    return replay.ReplayInputs(development, float(development[TARGET].mean()), deployed, "1")


def replayed(seasons=SEASONS, strategies=replay.STRATEGIES, log=None, **settings):
    batches = replay.plan_batches(production(seasons))
    lines: list[str] = []
    result = replay.run_replay(
        batches, inputs(), replay.ReplaySettings(tuple(strategies), **settings), progress=lines.append, log=log
    )
    return result, lines, batches
