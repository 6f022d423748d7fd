"""Monitoring logic behind the dashboard: synthetic frames first, then the session pipeline."""

import numpy as np
import pytest
from mlflow import MlflowClient

from conftest import copy_empty_store
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.monitoring import health
from kobe_mlops.tracking import names, reads


def test_score_shift_is_stable_for_the_same_scores_and_major_for_moved_ones():
    rng = np.random.default_rng(0)
    reference = rng.beta(5, 5, 4000)
    same = health.score_shift(reference, rng.beta(5, 5, 4000))
    assert same.psi < 0.01 and same.ks_statistic < 0.05
    moved = health.score_shift(reference, rng.beta(2, 8, 4000))
    assert moved.verdict.startswith("differs") and moved.ks_pvalue < 1e-6 and moved.ks_statistic > 0.3
    assert moved.psi > 0.25


def test_threshold_sweep_equals_scikit_learns_with_ties_and_finds_the_best_f1():
    from sklearn.metrics import f1_score, precision_score, recall_score

    rng = np.random.default_rng(0)
    probability = np.round(rng.uniform(0.1, 0.9, 3000), 2)  # ties on the grid's thresholds
    outcome = (rng.uniform(size=3000) < probability).astype(int)
    sweep = health.threshold_sweep(outcome, probability)
    for score, column in [(f1_score, "f1"), (precision_score, "precision"), (recall_score, "recall")]:
        expected = [score(outcome, probability >= t, zero_division=0) for t in health.THRESHOLD_GRID]
        assert sweep[column].tolist() == pytest.approx(expected), column
    shares = [(probability >= t).mean() for t in health.THRESHOLD_GRID]
    assert sweep["predicted make rate"].tolist() == pytest.approx(shares)
    small = health.threshold_sweep([0, 0, 1, 1, 1, 0], [0.1, 0.4, 0.35, 0.8, 0.7, 0.75], thresholds=[0.3, 0.5, 0.72])
    assert small.loc[0, "recall"] == 1.0 and small.loc[0, "predicted make rate"] == pytest.approx(5 / 6)
    assert health.best_threshold(small)["threshold"] == 0.3


def test_read_optional_is_none_when_absent_and_clear_when_corrupt(tmp_path):
    assert health.read_optional(tmp_path / "absent.parquet") is None
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(DataContractError, match="broken.parquet: not a readable parquet file"):
        health.read_optional(broken)


def test_an_empty_store_gives_an_empty_state_and_a_missing_sqlite_file_is_not_created(tmp_path, empty_mlflow_db):
    missing = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert not reads.store_exists(missing)
    assert not (tmp_path / "mlflow.db").exists()
    assert reads.store_exists("http://127.0.0.1:5000")
    state = health.load_pipeline_state(MlflowClient(copy_empty_store(empty_mlflow_db, tmp_path / "empty.db")))
    assert not state.has_runs and state.application is None and state.champion is None


def test_pipeline_state_of_the_session_run(tracking, pipeline_run):
    state = health.load_pipeline_state(tracking)
    run_names = {run.name for run in state.recent_runs}
    assert set(config.RUN_NAMES.values()) <= run_names
    assert state.recent_runs[0].start_time >= state.recent_runs[-1].start_time
    assert state.application.name == config.RUN_NAMES["aplicacao"]
    champion = tracking.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    assert state.champion.version == str(champion.version) and config.CHAMPION_ALIAS in state.champion.aliases
    assert state.scored_model.version == state.application.params["model_version"]
    scored = tracking.get_model_version(config.REGISTERED_MODEL_NAME, state.scored_model.version)
    assert state.training.run_id == scored.tags[names.TRAINING_RUN_TAG]
    assert "chosen" in state.champion.selection_reason
    runs = health.runs_table(state.recent_runs)
    assert len(runs) == len(state.recent_runs) and (runs["status"] == "FINISHED").all()
