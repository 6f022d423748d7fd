"""Monitoring logic behind the dashboard: synthetic frames first, then the session pipeline."""

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.monitoring import health
from kobe_mlops.tracking import reads


def shots(rows: int, seed: int, distance_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "lat": rng.normal(33.98, 0.06, rows),
            "lon": rng.normal(-118.26, 0.09, rows),
            "minutes_remaining": rng.integers(0, 12, rows),
            "period": rng.integers(1, 5, rows),
            "playoffs": rng.integers(0, 2, rows),
            "shot_distance": rng.uniform(0, 20, rows) + distance_shift,
            config.TARGET: rng.integers(0, 2, rows).astype(float),
        }
    )


def test_adversarial_auc_is_near_chance_for_one_population_and_near_one_for_two():
    same = health.adversarial_validation_auc(shots(600, seed=1), shots(600, seed=2))
    shifted = health.adversarial_validation_auc(shots(600, seed=1), shots(600, seed=2, distance_shift=25))
    assert 0.35 < same < 0.65
    assert shifted > 0.99
    assert health.adversarial_verdict(same).startswith("indistinguishable")
    assert health.adversarial_verdict(shifted).startswith("easily separable")
    assert health.adversarial_verdict(0.7).startswith("partly separable")


def test_adversarial_auc_refuses_bases_smaller_than_the_folds():
    with pytest.raises(ValueError, match="at least 5 rows"):
        health.adversarial_validation_auc(shots(3, seed=1), shots(100, seed=2))


def test_single_feature_separability_points_at_the_moved_feature():
    separability = health.single_feature_separability(shots(500, seed=1), shots(500, seed=2, distance_shift=25))
    assert separability["shot_distance"] == pytest.approx(1.0)
    assert separability.drop("shot_distance").max() < 0.6
    assert (separability >= 0.5).all()  # folded: a feature lower in prod separates as well as a higher one


def test_outside_training_range_counts_rows_beyond_the_central_band():
    train = pd.DataFrame({name: np.arange(1000, dtype=float) for name in config.FEATURES})
    current = pd.DataFrame({name: [500.0] * 8 for name in config.FEATURES})
    current.loc[0, "shot_distance"] = 2000.0  # above
    current.loc[1, "lat"] = -1.0  # below
    current.loc[1, "lon"] = -1.0  # same row: counted once in the overall share
    table, share_any = health.outside_training_range(train, current)
    assert table.loc["shot_distance", "share above"] == pytest.approx(1 / 8)
    assert table.loc["lat", "share below"] == pytest.approx(1 / 8)
    assert table.loc["period", "share outside"] == 0
    assert table.loc["lat", "training low"] == pytest.approx(np.quantile(np.arange(1000), 0.005))
    assert share_any == pytest.approx(2 / 8)


def test_score_shift_is_stable_for_the_same_scores_and_major_for_moved_ones():
    rng = np.random.default_rng(0)
    reference = rng.beta(5, 5, 4000)
    same = health.score_shift(reference, rng.beta(5, 5, 4000))
    assert same.psi < 0.01 and same.ks_statistic < 0.05
    moved = health.score_shift(reference, rng.beta(2, 8, 4000))
    assert moved.verdict.startswith("differs") and moved.ks_pvalue < 1e-6 and moved.ks_statistic > 0.3
    assert moved.psi > 0.25


def test_make_rate_summary_compares_learned_and_predicted_rates():
    train = pd.DataFrame({config.TARGET: [1.0, 0.0, 0.0, 1.0]})
    summary = health.make_rate_summary(train, [0.2, 0.6, 0.7, 0.5], [0.1, 0.2, 0.3, 0.6])
    assert summary.loc["training make rate", "production"] == 0.5
    assert summary.loc["mean probability", "test"] == pytest.approx(0.5)
    assert summary.loc["mean probability", "production"] == pytest.approx(0.3)
    assert summary.loc["predicted make rate", "test"] == 0.75
    assert summary.loc["predicted make rate", "production"] == 0.25


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


def test_metrics_side_by_side_keeps_missing_production_figures_as_nan():
    table = health.metrics_side_by_side({"log_loss_champion_test": 0.67, "log_loss_baseline_test": 0.69}, {})
    assert table.loc["log_loss", "test"] == 0.67 and table.loc["log_loss", "test baseline"] == 0.69
    assert table["production"].isna().all()
    assert list(table.columns) == ["test", "test baseline", "production", "production baseline"]


def test_read_optional_is_none_when_absent_and_clear_when_corrupt(tmp_path):
    assert health.read_optional(tmp_path / "absent.parquet") is None
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(DataContractError, match="broken.parquet: not a readable parquet file"):
        health.read_optional(broken)


def test_an_empty_store_gives_an_empty_state_and_a_missing_sqlite_file_is_not_created(tmp_path):
    missing = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert not reads.store_exists(missing)
    assert not (tmp_path / "mlflow.db").exists()
    assert reads.store_exists("http://127.0.0.1:5000")
    state = health.load_pipeline_state(MlflowClient(missing))
    assert not state.has_runs and state.application is None and state.champion is None
    processed = health.load_processed(config.workspace_paths(tmp_path))
    assert processed.development is None and processed.predictions is None


def test_pipeline_state_of_the_session_run(tracking, pipeline_run):
    state = health.load_pipeline_state(tracking)
    names = {run.name for run in state.recent_runs}
    assert set(config.RUN_NAMES.values()) <= names
    assert state.recent_runs[0].start_time >= state.recent_runs[-1].start_time
    assert state.application.name == config.RUN_NAMES["aplicacao"]
    champion = tracking.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    assert state.champion.version == str(champion.version) and config.CHAMPION_ALIAS in state.champion.aliases
    assert state.scored_model.version == state.application.params["model_version"]
    assert state.training.run_id == state.scored_model.training_run_id
    assert "chosen" in state.champion.selection_reason
    table = health.metrics_side_by_side(state.training.metrics, state.application.metrics)
    assert table.loc["log_loss", "production"] == pytest.approx(state.application.metrics["log_loss"])
    assert table.notna().all().all()
    runs = health.runs_table(state.recent_runs)
    assert len(runs) == len(state.recent_runs) and (runs["status"] == "FINISHED").all()


def test_the_course_bases_are_separable_and_mostly_outside_the_training_range(pipeline_run):
    data = health.load_processed(pipeline_run.paths)
    assert len(data.predictions) == 6426 and data.rejected is not None
    # 2PT development vs 3PT production: shot distance alone gives the base away.
    assert health.adversarial_validation_auc(data.development, data.predictions) > 0.95
    _, share_any = health.outside_training_range(data.train, data.predictions)
    assert share_any > 0.9
    assert len(health.labelled_rows(data.predictions)) == 6426 - 1014
