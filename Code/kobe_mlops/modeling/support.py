"""A model's training support: per feature, the central band of its training rows (the extremes of
16,000 shots are a few odd ones), logged by each ``Treinamento`` run for monitoring to compare with."""

from __future__ import annotations

import json

import pandas as pd

from kobe_mlops import config

SUPPORT_QUANTILES = (0.005, 0.995)

FeatureSupport = dict[str, tuple[float, float]]  # feature -> (low, high), inclusive


def feature_support(train: pd.DataFrame) -> FeatureSupport:
    """Per feature, the band holding the central share of the training rows."""
    bands = train[config.FEATURES].quantile(list(SUPPORT_QUANTILES))
    return {feature: (float(bands[feature].iloc[0]), float(bands[feature].iloc[1])) for feature in config.FEATURES}


def support_to_json(support: FeatureSupport) -> str:
    return json.dumps({feature: list(band) for feature, band in support.items()}, indent=1)


def support_from_json(text: str) -> FeatureSupport:
    return {feature: (float(low), float(high)) for feature, (low, high) in json.loads(text).items()}
