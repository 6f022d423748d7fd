from pathlib import Path

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import FEATURE_RULES


def test_workspace_defaults_to_project_root(monkeypatch):
    monkeypatch.delenv("KOBE_WORKSPACE", raising=False)
    assert config.workspace_paths().root == config.PROJECT_ROOT


def test_workspace_env_moves_every_generated_path(monkeypatch, tmp_path):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    paths = config.workspace_paths()
    for path in [
        paths.raw_dir,
        paths.base_train,
        paths.predictions_prod,
        paths.mlflow_db,
        paths.executed_notebooks_dir,
    ]:
        assert Path(path).is_relative_to(tmp_path)


def test_every_dataset_has_a_digest_and_features_match_the_contract():
    assert set(config.DATASET_FILES.values()) == set(config.DATASET_SHA256)
    assert all(len(digest) == 64 for digest in config.DATASET_SHA256.values())
    assert list(FEATURE_RULES) == config.FEATURES
    assert config.TARGET not in config.FEATURES


def test_champion_is_addressed_by_alias():
    assert config.CHAMPION_URI == "models:/kobe-shot-model@champion"


def test_course_run_names():
    assert config.RUN_NAMES["preparacao"] == "PreparacaoDados"
    assert config.RUN_NAMES["treinamento"] == "Treinamento"
    assert config.RUN_NAMES["aplicacao"] == "PipelineAplicacao"
