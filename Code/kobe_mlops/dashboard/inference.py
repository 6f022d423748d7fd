"""Score one shot typed into the dashboard: validate it, then ask the served API or the embedded model (the
page does not care which: ``serving.RestScoringClient`` has the embedded pyfunc's ``predict(frame)``)."""

from __future__ import annotations

import pandas as pd

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES, FeatureRule, cast_features, violations_message
from kobe_mlops.modeling.support import FeatureSupport


def shot_frame(values: dict[str, float]) -> pd.DataFrame:
    """One row with the six features in the model's order (values as typed, not yet checked)."""
    missing = [name for name in config.FEATURES if name not in values]
    if missing:
        raise ValueError(f"missing feature value(s): {', '.join(missing)}")
    return pd.DataFrame([{name: values[name] for name in config.FEATURES}])


def validate_shot(values: dict[str, float]) -> str | None:
    """The data contract's message for these values, or None when the shot can be scored."""
    return violations_message(shot_frame(values))


def make_probability(values: dict[str, float], model) -> float:
    """P(make) for one shot that :func:`validate_shot` passed, from ``model`` (embedded pyfunc or REST client)."""
    scored = model.predict(cast_features(shot_frame(values)))
    return float(scored[config.PROBABILITY_COLUMN].iloc[0])


def outside_support_message(values: dict[str, float], support: FeatureSupport, version: str) -> str | None:
    """Which features of the shot lie outside the band the model learned from, or None."""
    outside = [
        f"{name}={values[name]:g} (trained on {low:g} to {high:g})"
        for name, (low, high) in support.items()
        if not low <= values[name] <= high
    ]
    if not outside:
        return None
    return (
        f"Outside the training support of version {version}: {', '.join(outside)}. The model never learned shots "
        "like this one; its probability is an extrapolation."
    )


# Widget step and display format (one digit finer) of the decimal features: court coordinates move in
# thousandths of a degree (about 100 m on a map, a few feet on this court), distances in half feet.
DECIMAL_INPUTS = {"lat": (0.001, "%.4f"), "lon": (0.001, "%.4f"), "shot_distance": (0.5, "%.2f")}


def input_limits(rule: FeatureRule) -> dict:
    """``number_input`` settings from the data contract: bounds, step and display format."""
    if rule.integer:
        return {"min_value": int(rule.minimum), "max_value": int(rule.maximum), "step": 1}
    step, display = DECIMAL_INPUTS.get(rule.name, (0.01, "%.3f"))
    return {"min_value": float(rule.minimum), "max_value": float(rule.maximum), "step": step, "format": display}


def default_values(development: pd.DataFrame | None) -> dict[str, float]:
    """Form defaults: the development medians (a typical shot), else the middle of each valid range."""
    values = {}
    for name, rule in FEATURE_RULES.items():
        if development is not None and name in development and development[name].notna().any():
            value = float(development[name].median())
        else:
            value = (rule.minimum + rule.maximum) / 2
        value = min(max(value, rule.minimum), rule.maximum)
        values[name] = round(value) if rule.integer else float(round(value, 4))
    return values
