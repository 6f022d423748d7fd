"""Log the chosen pipeline as an MLflow model, register it and point an alias at it.

A training never takes @champion from a version that holds it (mlops-stacks' convention): the
first model becomes @champion, every later one @challenger, and only the gate
(``run_all.py --retrain``) or ``run_all.py --promote VERSION`` moves @champion.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.modeling.support import feature_support, support_to_json
from kobe_mlops.modeling.train import Candidate
from kobe_mlops.tracking import names, reads

# What a fresh environment needs to load the model; versions come from requirements.txt.
MODEL_REQUIREMENTS = ["mlflow", "pycaret", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"]


def pinned_requirements(packages: list[str] = MODEL_REQUIREMENTS) -> list[str]:
    lines = (config.PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    matches = (re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip()) for line in lines)
    pins = {match.group(1).lower(): match.group(0) for match in matches if match}
    return [pins.get(name, name) for name in packages]


def input_schema() -> Schema:
    """The six features by name, all required, each typed ``Any``: MLflow's ``double`` refuses int64
    and ``long`` every float, and users hold either; :meth:`ShotMadeModel.predict` judges the values
    instead. The cost: ~1.2 µs a value, and the scoring server refuses CSV bodies (not JSON or parquet)."""
    return Schema([ColSpec(AnyType(), name) for name in config.FEATURES])


def input_contract() -> dict[str, str]:
    """What each input column must hold, from the data contract: ``{column: "number in [a, b]: meaning"}``."""
    return {name: f"{rule.describe()}: {rule.meaning}" for name, rule in FEATURE_RULES.items()}


def input_description() -> str:
    """The model version's description: the input columns and their valid values, as Markdown."""
    rows = "\n".join(f"| `{name}` | {rule.describe()} | {rule.meaning} |" for name, rule in FEATURE_RULES.items())
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


def alias_for_new_version(requested: str = "", client: MlflowClient | None = None) -> str:
    """``requested``, else @champion while the model has none, else @challenger; @champion is refused
    while another version holds it."""
    held = reads.version_by_alias(client or reads.client())
    if requested == config.CHAMPION_ALIAS and held is not None:
        raise ChampionHeldError(
            f"{held.name}@{config.CHAMPION_ALIAS} is version {held.version}: a new training registers "
            f"@{config.CHALLENGER_ALIAS} (leave register_alias empty); @{config.CHAMPION_ALIAS} moves only "
            "through the gate (run_all.py --retrain) or run_all.py --promote VERSION."
        )
    return requested or (config.CHAMPION_ALIAS if held is None else config.CHALLENGER_ALIAS)


def log_and_register(
    candidate: Candidate,
    base_train: pd.DataFrame,
    alias: str = "",
    version_tags: dict[str, str] | None = None,
):
    """Log the candidate in the active run, register a new version and set ``alias`` on it
    (:func:`alias_for_new_version`)."""
    client = MlflowClient()
    alias = alias_for_new_version(alias, client)
    # The fast, unwrapped scoring path is kept only if it matches the pipeline on every training row.
    model = ShotMadeModel(candidate.pipeline, check_features=base_train[config.FEATURES])
    input_example = base_train[config.FEATURES].head(5)
    outputs = infer_signature(model_output=model.predict(None, input_example)).outputs
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=model,
        signature=ModelSignature(inputs=input_schema(), outputs=outputs),
        input_example=input_example,
        registered_model_name=config.REGISTERED_MODEL_NAME,
        pip_requirements=pinned_requirements(),
        metadata={"input_contract": input_contract()},
    )
    version = str(info.registered_model_version)
    client.update_model_version(config.REGISTERED_MODEL_NAME, version, description=input_description())
    client.set_registered_model_alias(config.REGISTERED_MODEL_NAME, alias, version)
    for key, value in {
        "model_type": candidate.label,
        "scoring_path": model.scoring_path,
        **(version_tags or {}),
    }.items():
        client.set_model_version_tag(config.REGISTERED_MODEL_NAME, version, key, str(value))
    return info, version


def log_lineage(model, learned: pd.DataFrame, shot_ids, reference: pd.DataFrame) -> None:
    """What monitoring reads of a version, logged to the active run: the ``shot_id`` of the production
    rows it learned (never graded on), its training support, and its scores on held-out rows."""
    shot_ids = np.asarray(shot_ids, dtype="int64")
    mlflow.log_metric(names.PRODUCTION_ROWS_LEARNED, len(shot_ids))
    log_parquet(pd.DataFrame({"shot_id": shot_ids}), names.PRODUCTION_SHOT_IDS_ARTIFACT)
    mlflow.log_text(support_to_json(feature_support(learned)), names.FEATURE_SUPPORT_ARTIFACT)
    log_reference_scores(model, reference)


def log_reference_scores(model, reference: pd.DataFrame) -> None:
    """The ids (when given), features, probability and outcome of each ``reference`` row the model
    never learned: the version's monitoring reference."""
    ids = [column for column in config.ID_COLUMNS if column in reference]
    scores = reference[[*ids, *config.FEATURES]].assign(
        **{
            config.PROBABILITY_COLUMN: model.predict_probability(reference),
            config.TARGET: reference[config.TARGET].to_numpy(dtype="int64"),
        }
    )
    log_parquet(scores, names.REFERENCE_SCORES_ARTIFACT)


def log_parquet(frame: pd.DataFrame, artifact: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(artifact).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=str(Path(artifact).parent))
