"""Preparation: the modelling columns, complete rows only, and a stratified train/test split."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import cast_features, require_columns

MODEL_COLUMNS = config.FEATURES + [config.TARGET]


def filter_shots(raw: pd.DataFrame, source: str = "dev data") -> pd.DataFrame:
    """Keep the six features and the target; drop rows with any of them missing.

    Features get the data contract's types (the same ones scoring uses) and the target becomes
    an integer 0/1 column; the index is reset so the result is a clean table.
    """
    require_columns(raw, MODEL_COLUMNS, source)
    filtered = cast_features(raw[MODEL_COLUMNS].dropna().reset_index(drop=True))
    return filtered.astype({config.TARGET: "int64"})


def split_train_test(
    filtered: pd.DataFrame, test_size: float = config.TEST_SIZE, seed: int = config.SEED
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified on the target so both bases keep the same make rate; seeded for repeatability."""
    base_train, base_test = train_test_split(
        filtered, test_size=test_size, stratify=filtered[config.TARGET], random_state=seed
    )
    return base_train.reset_index(drop=True), base_test.reset_index(drop=True)


def class_ratio(frame: pd.DataFrame) -> float:
    """Share of made shots."""
    return float(frame[config.TARGET].mean())
