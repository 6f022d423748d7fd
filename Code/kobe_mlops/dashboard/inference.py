"""Score one shot typed into the dashboard: validate it, then ask the served API or the embedded model.

The served API is MLflow's scoring server (``mlflow models serve``): ``POST /invocations`` with
a ``dataframe_split`` body, answered by ``{"predictions": [...]}``. :class:`RestScoringClient`
gives it the same ``predict(frame)`` interface as the embedded pyfunc model, so the page does
not care which one answers.
"""

from __future__ import annotations

import json
import os

import pandas as pd
import requests

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import (
    FEATURE_RULES,
    FeatureRule,
    cast_features,
    violations_message,
)

SCORING_URL_ENV = "KOBE_SCORING_URL"
INVOCATIONS_PATH = "/invocations"
REQUEST_TIMEOUT_SECONDS = 10


class ScoringError(RuntimeError):
    """The scoring API could not be reached or refused the request; the message says which."""


def configured_scoring_url() -> str:
    return os.environ.get(SCORING_URL_ENV, "").strip()


def invocations_url(url: str) -> str:
    """``http://127.0.0.1:5001`` and ``http://127.0.0.1:5001/invocations`` both mean the latter."""
    url = url.strip().rstrip("/")
    return url if url.endswith(INVOCATIONS_PATH) else url + INVOCATIONS_PATH


class RestScoringClient:
    """The served model behind MLflow's REST protocol, with the pyfunc ``predict`` interface."""

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT_SECONDS):
        self.url = invocations_url(url)
        self.timeout = timeout

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        # pandas' own JSON writer turns numpy scalars into plain JSON numbers.
        body = {"dataframe_split": json.loads(frame[config.FEATURES].to_json(orient="split", index=False))}
        try:
            response = requests.post(self.url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ScoringError(f"Could not reach the scoring API at {self.url}: {type(exc).__name__}.") from None
        if response.status_code != 200:
            try:
                detail = response.json().get("message", response.text)
            except ValueError:
                detail = response.text
            raise ScoringError(f"The scoring API at {self.url} answered HTTP {response.status_code}: "
                               f"{str(detail)[:300]}")
        try:
            predictions = pd.DataFrame(response.json()["predictions"])
        except (ValueError, KeyError, TypeError):
            raise ScoringError(f"The scoring API at {self.url} answered without a 'predictions' list.") from None
        if config.PROBABILITY_COLUMN not in predictions or len(predictions) != len(frame):
            raise ScoringError(f"The scoring API at {self.url} did not return {config.PROBABILITY_COLUMN!r} "
                               f"for each of the {len(frame)} rows sent.")
        return predictions


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
    """P(make) for one shot from ``model`` (embedded pyfunc or :class:`RestScoringClient`)."""
    problem = validate_shot(values)
    if problem:
        raise ValueError(problem)
    scored = model.predict(cast_features(shot_frame(values)))
    return float(scored[config.PROBABILITY_COLUMN].iloc[0])


# Widget steps of the decimal features: court coordinates move in thousandths of a degree
# (about 100 m on a map, a few feet on this court), distances in half feet.
DECIMAL_STEPS = {"lat": 0.001, "lon": 0.001, "shot_distance": 0.5}


def input_limits(rule: FeatureRule) -> dict:
    """``number_input`` settings from the data contract: bounds, step and display format."""
    if rule.integer:
        return {"min_value": int(rule.minimum), "max_value": int(rule.maximum), "step": 1}
    step = DECIMAL_STEPS.get(rule.name, 0.01)
    decimals = max(len(f"{step:g}".partition(".")[2]), 1) + 1  # one digit finer than the step
    return {"min_value": float(rule.minimum), "max_value": float(rule.maximum), "step": step,
            "format": f"%.{decimals}f"}


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
