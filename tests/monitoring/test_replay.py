"""The production replay (monitoring/replay.py): batches, strategies, time honesty, logging."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import run_pipeline
from kobe_mlops import config, runner
from kobe_mlops.monitoring import replay, replay_timeline
from kobe_mlops.tracking import reads
from replay_support import SEASONS, inputs, production, replayed

# --- Batches ----------------------------------------------------------------------------------


def test_seasons_are_batched_oldest_first_by_their_first_game():
    frame = production(SEASONS).sample(frac=1, random_state=0)
    batches = replay.plan_batches(frame)
    assert [b.label for b in batches] == [season for season, *_ in SEASONS]
    assert [b.index for b in batches] == list(range(len(SEASONS)))
    assert all(b.rows["game_date"].is_monotonic_increasing for b in batches)
    assert replay.batch_plan(batches)["batch"].tolist() == list(range(1, len(SEASONS) + 1))


def test_batches_of_n_rows_follow_the_date_order():
    batches = replay.plan_batches(production(SEASONS), batch_rows=400)
    assert [len(b.rows) for b in batches][:3] == [400, 400, 400] and sum(len(b.rows) for b in batches) == 1750
    assert batches[0].last_date <= batches[1].first_date


@pytest.mark.parametrize(
    "broken, message",
    [
        (lambda frame: frame.drop(columns="game_date"), "no game_date column"),
        (lambda frame: frame.drop(columns="shot_id"), "no shot_id column"),
        (
            lambda frame: frame.assign(game_date=frame["game_date"].where(frame.index != 3, "01/01/2010")),
            r"1 rows have no game_date in YYYY-MM-DD form \(first: '01/01/2010'\)",
        ),
    ],
    ids=["no-dates", "no-ids", "mixed-date-formats"],
)
def test_a_file_without_usable_dates_or_ids_is_refused_clearly(broken, message):
    with pytest.raises(replay.ReplayError, match=message):
        replay.plan_batches(broken(production(SEASONS)), source="prod.parquet")


# --- The strategies' rules --------------------------------------------------------------------


def test_each_strategy_runs_the_gate_by_its_own_rule():
    assert replay.gate_wanted("never", 2, ["log_loss_degradation"], 3) == (False, "this strategy never retrains")
    assert replay.gate_wanted("continuous", 0, [], 3)[0]
    assert [replay.gate_wanted("scheduled", i, [], 3)[0] for i in range(6)] == [False, False, True] * 2
    # Reactive acts on a measured problem or on new labels: drift alone is for investigation.
    assert not replay.gate_wanted("reactive", 1, ["feature_drift"], 3)[0]
    assert replay.gate_wanted("reactive", 1, ["feature_drift", "make_rate_gap"], 3) == (True, "fired: make_rate_gap")
    assert replay.gate_wanted("reactive", 1, ["new_labels"], 3) == (True, "fired: new_labels")


def test_a_pooled_difference_is_per_row_and_its_interval_resamples_whole_batches():
    # Two batches: A loses 0.1 more per row on a 100-row batch, 0.3 less on a 300-row one.
    sums = np.array([[70.0, 60.0, 100], [180.0, 270.0, 300]])
    difference, lower, upper = replay.pooled_difference(sums)
    assert difference == pytest.approx((250 - 330) / 400)
    assert lower == pytest.approx(-0.3) and upper == pytest.approx(0.1)  # all one batch or all the other
    assert np.isnan(replay.pooled_difference(np.empty((0, 3)))).all()


def test_a_perfect_estimators_error_is_the_noise_of_the_realized_log_loss():
    # Normal errors: E|e| = sd * sqrt(2 / pi); row-weighted over batches; the range holds it.
    expected, lower, upper = replay.noise_floor([(100, 0.02), (300, 0.01)])
    assert expected == pytest.approx(np.sqrt(2 / np.pi) * (100 * 0.02 + 300 * 0.01) / 400)
    assert 0 < lower < expected < upper
    assert replay.noise_floor([(50, 0.0)]) == (0.0, 0.0, 0.0)  # no noise, no error
    assert np.isnan(replay.noise_floor([])).all()


def test_settings_refuse_unknown_strategies_and_a_zero_schedule():
    with pytest.raises(ValueError, match="strategies"):
        replay.ReplaySettings(("never", "sometimes"))
    with pytest.raises(ValueError, match="schedule_every"):
        replay.ReplaySettings(schedule_every=0)


# --- The loop, logged once per session (conftest.logged_replay) --------------------------------


@pytest.fixture(scope="module")
def logged(logged_replay):
    return SimpleNamespace(**vars(logged_replay), client=mlflow.MlflowClient(logged_replay.uri))


def test_no_model_scores_a_batch_whose_labels_it_learned(logged):
    # Logged as each child run's trained_through_batch < batch_number (checked with the runs below).
    assert all(record.deployed.learned_through < record.batch.index for record in logged.outcome.records)


def test_a_challenger_that_learns_production_beats_the_null_model_and_never(logged):
    never, continuous = logged.outcome.strategies["never"], logged.outcome.strategies["continuous"]
    assert never.promotions == 0 and never.retrains == 0
    # Every labelled batch but the last (nothing left to score) runs the gate; the unlabelled one cannot.
    assert continuous.promotions >= 1 and continuous.retrains == len(SEASONS) - 2
    assert continuous.vs_null_upper < 0 < never.vs_null_lower
    assert continuous.log_loss < never.log_loss


def test_strategies_share_one_fit_of_each_recipe_on_the_same_rows(logged):
    labelled_before = [i for i in range(1, len(SEASONS)) if any(s[3] for s in SEASONS[:i])]
    assert logged.outcome.trainings <= 2 * (len(labelled_before) + 1)


def test_unlabelled_batches_are_scored_but_never_graded(logged):
    unlabelled = [r for r in logged.outcome.records if r.batch.label == "2003-04"]
    assert unlabelled and all(len(r.graded_loss) == 0 and r.rows_scored == 250 for r in unlabelled)
    assert all("log_loss" not in r.metrics() for r in unlabelled)
    assert all(r.decision == "none" for r in unlabelled)  # nothing to judge a candidate on


def test_the_null_model_is_the_make_rate_known_before_each_batch(logged):
    first, second = (next(r for r in logged.outcome.records if r.batch.index == i) for i in (0, 1))
    outcomes = [batch.rows[config.TARGET].to_numpy() for batch in logged.batches[:2]]
    for record, outcome, rate in [
        (first, outcomes[0], inputs().development_rate),
        (second, outcomes[1], outcomes[0].mean()),
    ]:
        assert record.null_loss.mean() == pytest.approx(
            -np.mean(np.where(outcome == 1, np.log(rate), np.log(1 - rate)))
        )


def test_every_labelled_batch_carries_an_estimate_with_an_interval(logged):
    for record in logged.outcome.records:
        if len(record.graded_loss) and record.deployed.monitor.usable:
            lower, value, upper = record.estimate()
            assert lower < value < upper
    for strategy in logged.outcome.strategies.values():
        assert 0 <= strategy.estimate_coverage <= 1


def test_progress_lines_number_batches_from_one_and_read_as_english(logged):
    lines = logged.lines
    assert lines[1].startswith(f"[ 1/{len(logged.batches)}] 2001-02    never")
    summary = [line for line in lines if line.startswith("continuous:")][0]
    assert "beats the null model" in summary and "95 % interval" in summary
    assert "1 promotions" not in " ".join(lines) and "(-1" not in " ".join(lines)


def test_a_replay_logs_one_parent_and_a_child_per_strategy_and_batch(logged):
    outcome, client = logged.outcome, logged.client
    parent = reads.latest_replay_run(client)
    assert parent.info.run_id == outcome.run_id and parent.info.run_name == "SimulacaoOperacao"
    children = reads.replay_batch_runs(client, parent.info.run_id)
    assert len(children) == len(replay.STRATEGIES) * len(logged.batches)
    for child in children:
        metrics = child.data.metrics
        assert child.info.run_name == "PipelineAplicacao" and child.info.status == "FINISHED"
        assert int(child.data.params["trained_through_batch"]) < int(child.data.params["batch_number"])
        for name in ["rows_scored", "rows_evaluated", "trigger_feature_drift_fired", "promoted"]:
            assert name in metrics, name
        if metrics["rows_evaluated"]:
            assert {"log_loss", "estimated_log_loss_lower", "estimated_log_loss_upper"} <= set(metrics)
    metrics = parent.data.metrics
    for name, summary in outcome.strategies.items():
        assert metrics[f"log_loss_{name}"] == pytest.approx(summary.log_loss)
        assert metrics[f"vs_null_lower_{name}"] <= metrics[f"vs_null_{name}"] <= metrics[f"vs_null_upper_{name}"]
        assert metrics[f"retrains_{name}"] == summary.retrains and metrics[f"promotions_{name}"] == summary.promotions
    view = replay_timeline.load_replay(client)
    assert view.summary["strategy"].tolist() == [*replay.STRATEGIES, "null"]
    assert sorted(view.timeline["batch_index"].unique()) == list(range(1, len(logged.batches) + 1))
    shown = view.timeline.set_index(["strategy", "batch_index"])["log_loss"]
    for record in outcome.records:  # the page shows what the loop measured
        realized = record.graded_loss.mean() if len(record.graded_loss) else np.nan
        np.testing.assert_allclose(shown[(record.strategy, record.batch.index + 1)], realized)
    assert replay_timeline.load_replay(client, outcome.run_id).run_id == outcome.run_id


def test_a_failed_replay_marks_its_parent_failed_and_is_never_read(mlflow_workspace, monkeypatch):
    def broken(rows, now):
        raise RuntimeError("training exploded")

    monkeypatch.setitem(replay.challengers.RECIPES, "logistic_regression", broken)
    with pytest.raises(RuntimeError, match="training exploded"):
        replayed(SEASONS[:2], strategies=["continuous"], log=replay.MlflowReplayLog())
    client = mlflow.MlflowClient(f"sqlite:///{mlflow_workspace / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(config.REPLAY_EXPERIMENT_NAME)
    parents = client.search_runs([experiment.experiment_id], "attributes.run_name = 'SimulacaoOperacao'")
    assert [run.info.status for run in parents] == ["FAILED"]
    assert replay_timeline.load_replay(client) is None


# --- run_all.py --replay ----------------------------------------------------------------------


def test_replay_without_a_pipeline_run_says_what_to_run(tmp_path, monkeypatch, capsys):
    for name in ["KOBE_INVOCATION_ID", "MPLBACKEND", "PYCARET_CUSTOM_LOGGING_PATH", "KOBE_DATA_SOURCE"]:
        absent = name not in os.environ
        monkeypatch.setenv(name, os.environ.get(name, ""))  # what runner.main sets is undone after the test
        if absent:
            monkeypatch.delenv(name)
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert runner.main(["--workspace", str(tmp_path), "--replay"]) == 1
    error = capsys.readouterr().err
    assert "data/processed/base_train.parquet" in error and "models:/kobe-shot-model@champion" in error
    assert "Traceback" not in error and not (tmp_path / "mlflow.db").exists()


def test_runner_passes_only_parameters_the_notebook_declares():
    cells = json.loads((config.NOTEBOOKS_DIR / "05_operacao.ipynb").read_text())["cells"]
    tagged = [cell for cell in cells if "parameters" in cell["metadata"].get("tags", [])]
    declared: dict = {}
    exec("".join(tagged[0]["source"]), {}, declared)  # plain literals only
    args = runner.build_parser().parse_args(["--replay", "--replay-batch", "300", "--replay-every", "2"])
    parameters = runner.replay_parameters(args, config.workspace_paths().replay_progress_log)
    assert set(parameters) <= set(declared)
    assert parameters["batch_rows"] == 300 and parameters["schedule_every"] == 2
    assert declared["strategies"] == list(replay.STRATEGIES)


@pytest.mark.e2e
def test_run_all_replay_logs_every_batch_out_of_sample(workspace_copy):
    workspace = workspace_copy.workspace
    completed = run_pipeline(workspace, "--replay")
    assert "[20/20] 2015-16" in completed.stdout and "Null model" in completed.stdout
    client = mlflow.MlflowClient(workspace_copy.tracking_uri)
    parent = reads.latest_replay_run(client)
    metrics = parent.data.metrics
    children = reads.replay_batch_runs(client, parent.info.run_id)
    assert len(children) == 20 * len(replay.STRATEGIES)
    assert all(int(c.data.params["trained_through_batch"]) < int(c.data.params["batch_number"]) for c in children)
    # The course data: the best strategy beats the null model, with the whole interval below zero.
    best = min(replay.STRATEGIES, key=lambda s: metrics[f"log_loss_{s}"])
    assert metrics[f"vs_null_upper_{best}"] < 0 and metrics[f"vs_null_{best}"] <= -0.005
    assert metrics["vs_null_lower_never"] > 0  # the development champion does not
    # Reactive runs the gate no more often than the calendar and scores no worse, on the same rows.
    assert metrics["retrains_reactive"] <= metrics["retrains_scheduled"]
    gap = metrics["reactive_minus_scheduled"]
    assert gap <= 0 and metrics["reactive_minus_scheduled_lower"] < gap < metrics["reactive_minus_scheduled_upper"]
    for strategy in replay.STRATEGIES:
        assert metrics[f"estimation_error_{strategy}"] < metrics[f"previous_batch_error_{strategy}"]
        assert metrics[f"estimate_coverage_{strategy}"] >= 0.8
    assert (workspace / "reports" / "notebooks" / "05_operacao.ipynb").is_file()
    logged = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/replay/summary.json")
    summary = pd.DataFrame(logged["data"], columns=logged["columns"])
    assert summary.shape[0] == len(replay.STRATEGIES)
    # The replay's tables in the documents are what this replay logged.
    from kobe_mlops import docs_tables

    text = (docs_tables.DOCS / "Model" / "Retraining.md").read_text()
    tables, _ = docs_tables.rendered(text, docs_tables.Workspace(workspace))
    replay_tables = {"replay_strategies", "replay_null", "replay_reactive_vs_scheduled", "replay_estimate"}
    assert set(tables) == replay_tables | {"replay_noise_floor"}
    assert docs_tables.render(text, tables) == text, "Docs/Model/Retraining.md: refresh it (Docs/README.md)"
