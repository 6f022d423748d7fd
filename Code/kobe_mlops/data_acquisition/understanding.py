"""Describe a raw dataset in the figures the acquisition run logs to MLflow."""

from __future__ import annotations

import pandas as pd

from kobe_mlops import config


def describe_dataset(frame: pd.DataFrame, label: str) -> dict[str, float]:
    """Shape, missing values, class balance and shot-type mix, as flat MLflow metrics."""
    target = frame[config.TARGET]
    labelled = target.dropna()
    metrics: dict[str, float] = {
        f"{label}_rows": len(frame),
        f"{label}_columns": frame.shape[1],
        f"{label}_missing_cells": int(frame.isna().sum().sum()),
        f"{label}_rows_unlabelled": int(target.isna().sum()),
        f"{label}_make_rate": float(labelled.mean()) if len(labelled) else float("nan"),
    }
    for column, missing in frame.isna().sum().items():
        if missing:
            metrics[f"{label}_missing_{column}"] = int(missing)
    if "shot_type" in frame:
        for shot_type, share in frame["shot_type"].value_counts(normalize=True).items():
            metrics[f"{label}_share_{shot_type.split()[0]}"] = float(share)
    return metrics
