"""Log the chosen pipeline as an MLflow model, register it and point an alias at it.

A training never takes @champion from a version that holds it (mlops-stacks' convention): the
first model becomes @champion, every later one @challenger, and only the gate
(``run_all.py --retrain``) or ``run_all.py --promote VERSION`` moves @champion.
"""

from __future__ import annotations

import re

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.modeling.train import Candidate
from kobe_mlops.tracking import reads

# What a fresh environment needs to load the model; versions come from requirements.txt.
MODEL_REQUIREMENTS = ["mlflow", "pycaret", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"]


def pinned_requirements(names: list[str] = MODEL_REQUIREMENTS) -> list[str]:
    pins = {}
    for line in (config.PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(0)
    return [pins.get(name, name) for name in names]


def input_schema() -> Schema:
    """The model's input schema: the six features by name, all required, each typed ``Any``.

    Why not numeric types: MLflow (3.17, ``mlflow.models.utils._enforce_mlflow_datatype``) only
    converts a column without loss. A ``double`` column takes float16/32/64 and (u)int8/16/32 but
    refuses int64 (unless every value is 0 or 1); a ``long`` column takes int8 to int64 and
    uint8 to uint32 but refuses every float. The course files store four features as int64 and
    two as float64, and a pandas user may hold any of them as either, so any numeric type here
    refuses some of them before the model is called (``Can not safely convert int64 to float64``).
    ``Any`` makes MLflow check only that the columns are there (a missing one is still refused,
    served as HTTP 400; extra ones are dropped) and hand the values over unchanged. The data
    contract inside :meth:`ShotMadeModel.predict` then decides, as everywhere else, what is a
    valid number, naming the rows and columns that are not. What each column must hold is
    written beside the schema: :func:`input_contract` in the model's metadata and the version's
    description.

    The cost, measured: MLflow passes ``Any`` columns on one value at a time, about 1.2 µs a
    value: a million rows take 7.4 s through ``load_model(...).predict`` against 0.33 s with
    typed columns (one row: 2.3 ms either way). And MLflow's scoring server answers a CSV body
    with 400 when a column's type is not a plain DataType (it reads CSV with the schema's pandas
    dtypes); JSON (``dataframe_split``, ``dataframe_records``) is parsed as before, ints and
    floats alike, and a parquet body now takes the raw file's dtypes.
    """
    return Schema([ColSpec(AnyType(), name) for name in config.FEATURES])


def input_contract() -> dict[str, str]:
    """What each input column must hold, from the data contract: ``{column: "number in [a, b]: meaning"}``."""
    return {name: f"{rule.describe()}: {rule.meaning}" for name, rule in FEATURE_RULES.items()}


def input_description() -> str:
    """The model version's description: the input columns and their valid values, as Markdown."""
    rows = "\n".join(f"| `{name}` | {text.replace(': ', ' | ', 1)} |" for name, text in input_contract().items())
    return (
        "Input: a table with these six columns, as any numeric type (int or float, any order; "
        "other columns are ignored). The schema shows them as `Any` because the data contract, "
        "not MLflow, checks them: a row outside it is refused with its row and column named.\n\n"
        "| column | valid values | meaning |\n|---|---|---|\n" + rows + "\n\n"
        f"Output: `{config.PROBABILITY_COLUMN}` (probability of a make) and "
        f"`{config.PREDICTION_COLUMN}` (0/1 at {config.DECISION_THRESHOLD:g})."
    )


class ChampionHeldError(RuntimeError):
    """A training asked for @champion while another version holds it."""


def alias_for_new_version(
    requested: str = "", client: MlflowClient | None = None, model_name: str = config.REGISTERED_MODEL_NAME
) -> str:
    """``requested``, else @champion while the model has none, else @challenger."""
    if requested:
        return requested
    held = reads.version_by_alias(client or reads.client(), config.CHAMPION_ALIAS, model_name)
    return config.CHAMPION_ALIAS if held is None else config.CHALLENGER_ALIAS


def refuse_champion_move(alias: str, client: MlflowClient, model_name: str = config.REGISTERED_MODEL_NAME) -> None:
    held = reads.version_by_alias(client, config.CHAMPION_ALIAS, model_name) if alias == config.CHAMPION_ALIAS else None
    if held is not None:
        raise ChampionHeldError(
            f"{model_name}@{config.CHAMPION_ALIAS} is version {held.version}: a new training registers "
            f"@{config.CHALLENGER_ALIAS} (leave register_alias empty); @{config.CHAMPION_ALIAS} moves only "
            "through the gate (run_all.py --retrain) or run_all.py --promote VERSION."
        )


def log_and_register(
    candidate: Candidate,
    base_train: pd.DataFrame,
    alias: str = "",
    model_name: str = config.REGISTERED_MODEL_NAME,
    version_tags: dict[str, str] | None = None,
):
    """Log the candidate in the active run, register a new version and set ``alias`` on it
    (empty: :func:`alias_for_new_version`). Refuses to take @champion from another version."""
    client = MlflowClient()
    alias = alias_for_new_version(alias, client, model_name)
    refuse_champion_move(alias, client, model_name)
    # The fast, unwrapped scoring path is kept only if it matches the pipeline on every training row.
    model = ShotMadeModel(candidate.pipeline, check_features=base_train[config.FEATURES])
    input_example = base_train[config.FEATURES].head(5)
    outputs = infer_signature(model_output=model.predict(None, input_example)).outputs
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=ModelSignature(inputs=input_schema(), outputs=outputs),
        input_example=input_example,
        registered_model_name=model_name,
        pip_requirements=pinned_requirements(),
        metadata={"input_contract": input_contract()},
    )
    version = str(info.registered_model_version)
    client.update_model_version(model_name, version, description=input_description())
    client.set_registered_model_alias(model_name, alias, version)
    for key, value in {
        "model_type": candidate.label,
        "scoring_path": model.scoring_path,
        **(version_tags or {}),
    }.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    return info, version
