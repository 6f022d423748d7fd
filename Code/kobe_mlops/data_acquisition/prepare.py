"""Preparation: the modelling columns, complete rows only, and a stratified train/test split."""

from __future__ import annotations

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import cast_features, require_columns
from kobe_mlops.io import write_parquet_atomic

MODEL_COLUMNS = config.FEATURES + [config.TARGET]


def filter_shots(raw: pd.DataFrame, source: str = "dev data") -> pd.DataFrame:
    """The six features (in the contract's types) and the 0/1 target of the rows holding all of them."""
    require_columns(raw, MODEL_COLUMNS, source)
    filtered = cast_features(raw[MODEL_COLUMNS].dropna().reset_index(drop=True))
    return filtered.astype({config.TARGET: "int64"})


def split_train_test(filtered: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified on the target so both bases keep the same make rate; seeded for repeatability."""
    base_train, base_test = train_test_split(
        filtered, test_size=test_size, stratify=filtered[config.TARGET], random_state=seed
    )
    return base_train.reset_index(drop=True), base_test.reset_index(drop=True)


def class_ratio(frame: pd.DataFrame) -> float:
    """Share of made shots."""
    return float(frame[config.TARGET].mean())


def prepare_and_log(
    raw_dev: pd.DataFrame, test_size: float, seed: int, paths: config.WorkspacePaths
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Filter and split the development base, write and log ``(data_filtered, base_train, base_test)``."""
    data_filtered = filter_shots(raw_dev)
    base_train, base_test = split_train_test(data_filtered, test_size=test_size, seed=seed)
    for frame, target in [
        (data_filtered, paths.data_filtered),
        (base_train, paths.base_train),
        (base_test, paths.base_test),
    ]:
        write_parquet_atomic(frame, target)
        mlflow.log_artifact(str(target), artifact_path="data")
    mlflow.log_params(
        {"test_size": test_size, "seed": seed, "stratify": config.TARGET, "features": ",".join(config.FEATURES)}
    )
    mlflow.log_metrics(
        {
            "rows_raw": len(raw_dev),
            "rows_filtered": len(data_filtered),
            "columns_filtered": data_filtered.shape[1],
            "rows_dropped_missing": len(raw_dev) - len(data_filtered),
            "rows_train": len(base_train),
            "rows_test": len(base_test),
            "make_rate_train": class_ratio(base_train),
            "make_rate_test": class_ratio(base_test),
        }
    )
    return data_filtered, base_train, base_test
