"""The model's requirements come from requirements.txt; registering logs the pyfunc, aliases and tags it."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from conftest import synthetic_shots
from kobe_mlops import config, tracking
from kobe_mlops.modeling import registry
from kobe_mlops.modeling.train import Candidate


def test_pinned_requirements_take_each_version_from_requirements_txt_and_leave_others_unpinned(tmp_path, monkeypatch):
    lines = (config.PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    pinned = registry.pinned_requirements()
    assert [requirement.split("==")[0] for requirement in pinned] == registry.MODEL_REQUIREMENTS
    assert all(requirement in lines for requirement in pinned), pinned
    (tmp_path / "requirements.txt").write_text(
        "# comment==1.0\n\nScikit-Learn==1.4.2\n  mlflow==3.17.2  # the tracking server\nnumpy>=1.26\n"
    )
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    assert registry.pinned_requirements(["scikit-learn", "mlflow", "numpy", "comment"]) == [
        "Scikit-Learn==1.4.2",
        "mlflow==3.17.2",
        "numpy",  # not an exact pin: left to pip
        "comment",  # a commented line is not a pin
    ]


# --- Registering on a temporary store ----------------------------------------------------------


def fitted_candidate(base_train: pd.DataFrame) -> Candidate:
    """A plain scikit-learn pipeline standing in for PyCaret's (the pyfunc takes either)."""
    pipeline = Pipeline([("normalize", StandardScaler()), ("trained_model", LogisticRegression())])
    pipeline.fit(base_train[config.FEATURES], base_train[config.TARGET])
    return Candidate("lr", pipeline, {"C": 1.0}, 0.6, pd.DataFrame())


@pytest.fixture
def store(mlflow_workspace):
    """A client of the fresh SQLite store of a temporary workspace (conftest's ``mlflow_workspace``)."""
    return mlflow.MlflowClient(f"sqlite:///{mlflow_workspace / 'mlflow.db'}")


def test_log_and_register_sets_the_alias_tags_and_serves_the_pipelines_probabilities(store, tmp_path):
    base_train = synthetic_shots(200, 0)
    candidate = fitted_candidate(base_train)
    with tracking.start_run("treinamento") as run:
        info, version = registry.log_and_register(candidate, base_train, version_tags={"training_run_id": "abc"})
    assert version == "1" and str(info.registered_model_version) == "1"
    champion = store.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    assert str(champion.version) == "1" and champion.run_id == run.info.run_id
    expected_tags = {"model_type": "Logistic regression", "scoring_path": "pycaret", "training_run_id": "abc"}
    assert expected_tags.items() <= champion.tags.items()

    model = mlflow.pyfunc.load_model(config.CHAMPION_URI)
    new_rows = synthetic_shots(20, 1)[config.FEATURES]
    scored = model.predict(new_rows)
    expected = candidate.pipeline.predict_proba(new_rows)[:, 1]
    np.testing.assert_allclose(scored[config.PROBABILITY_COLUMN], expected, rtol=0, atol=1e-12)
    assert list(model.metadata.get_input_schema().input_names()) == config.FEATURES

    requirements = mlflow.pyfunc.get_model_dependencies(config.CHAMPION_URI)
    listed = Path(requirements).read_text().splitlines()
    assert set(registry.pinned_requirements()) <= set(listed)
    assert (tmp_path / "mlruns").is_dir()  # artifacts stay in the workspace


def aliases_of(store) -> dict[str, str]:
    aliases = store.get_registered_model(config.REGISTERED_MODEL_NAME).aliases
    return {alias: str(number) for alias, number in aliases.items()}


def test_the_first_training_becomes_champion_every_later_one_challenger_and_none_takes_champion(store):
    base_train = synthetic_shots(200, 0)
    with tracking.start_run("treinamento"):
        registry.log_and_register(fitted_candidate(base_train), base_train)
    with tracking.start_run("treinamento"):
        with pytest.raises(registry.ChampionHeldError, match="version 1.*--promote VERSION"):
            registry.log_and_register(fitted_candidate(base_train), base_train, alias=config.CHAMPION_ALIAS)
    assert aliases_of(store) == {config.CHAMPION_ALIAS: "1"}
    assert len(store.search_model_versions(f"name='{config.REGISTERED_MODEL_NAME}'")) == 1  # nothing registered
    for alias in [config.CHALLENGER_ALIAS, ""]:  # a registration moves only its own alias
        with tracking.start_run("treinamento"):
            registry.log_and_register(fitted_candidate(base_train), base_train, alias=alias)
        if alias:
            assert aliases_of(store) == {config.CHAMPION_ALIAS: "1", config.CHALLENGER_ALIAS: "2"}
    assert aliases_of(store) == {config.CHAMPION_ALIAS: "1", config.CHALLENGER_ALIAS: "3"}
    assert registry.alias_for_new_version("", store) == config.CHALLENGER_ALIAS
