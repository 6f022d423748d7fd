"""Log the chosen pipeline as an MLflow model, register it and point an alias at it."""

from __future__ import annotations

import re

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.modeling.train import Candidate

# What a fresh environment needs to load the model; versions come from requirements.txt.
MODEL_REQUIREMENTS = ["mlflow", "pycaret", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"]


def pinned_requirements(names: list[str] = MODEL_REQUIREMENTS) -> list[str]:
    pins = {}
    for line in (config.PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(0)
    return [pins.get(name, name) for name in names]


def log_and_register(
    candidate: Candidate,
    base_train: pd.DataFrame,
    alias: str = config.CHAMPION_ALIAS,
    model_name: str = config.REGISTERED_MODEL_NAME,
    version_tags: dict[str, str] | None = None,
):
    """Log the candidate in the active run, register a new version and set ``alias`` on it."""
    # The fast, unwrapped scoring path is kept only if it matches the pipeline on every training row.
    model = ShotMadeModel(candidate.pipeline, check_features=base_train[config.FEATURES])
    input_example = base_train[config.FEATURES].head(5)
    signature = infer_signature(input_example, model.predict(None, input_example))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=signature,
        input_example=input_example,
        registered_model_name=model_name,
        pip_requirements=pinned_requirements(),
    )
    client = MlflowClient()
    version = str(info.registered_model_version)
    client.set_registered_model_alias(model_name, alias, version)
    for key, value in {
        "model_type": candidate.label,
        "scoring_path": model.scoring_path,
        **(version_tags or {}),
    }.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    return info, version
