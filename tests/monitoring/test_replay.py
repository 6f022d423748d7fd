"""The production replay (monitoring/replay.py): batches, strategies, honesty rules, logging.

Unit tests run the loop on small synthetic frames with cheap fake models and a fake trainer (the
trainer is a parameter of the loop). The end-to-end tests run ``run_all.py --replay --fast`` on a
copy of the session pipeline's workspace and read what it logged.
"""

from __future__ import annotations

import json
import os
import re

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import run_pipeline
from kobe_mlops import config, runner
from kobe_mlops.data_acquisition.prepare import class_ratio
from kobe_mlops.monitoring import replay, replay_timeline, triggers
from kobe_mlops.monitoring.replay import (
    NEVER,
    REACTIVE,
    SCHEDULED,
    ReplayError,
    ReplaySettings,
    challenger_wanted,
    null_rate,
    plan_batches,
)
from kobe_mlops.monitoring.retraining import row_log_loss
from kobe_mlops.tracking import names, reads
from replay_support import (
    SEASONS,
    TARGET,
    ConstantModel,
    FakeTrainer,
    inputs_with,
    production,
    records,
    replayed,
    synthetic_bases,
)


@pytest.fixture(scope="module")
def bases() -> dict[str, pd.DataFrame]:
    return synthetic_bases()


# --- Batches ----------------------------------------------------------------------------------


def test_seasons_are_batched_oldest_first_by_their_first_game():
    frame = production([("b-late", "2003-01-01", 10, True, True), ("a-early", "2001-01-01", 10, True, True)])
    frame = frame.sample(frac=1, random_state=0)  # file order says nothing
    batches = plan_batches(frame)
    assert [batch.label for batch in batches] == ["a-early", "b-late"]  # date order, not name order
    assert [batch.index for batch in batches] == [0, 1]
    for batch in batches:
        dates = pd.to_datetime(batch.rows["game_date"])
        assert dates.is_monotonic_increasing and set(batch.rows["season"]) == {batch.label}
    assert sum(len(batch.rows) for batch in batches) == len(frame)


def test_batches_of_n_rows_follow_the_date_order():
    frame = production(SEASONS[:2]).sample(frac=1, random_state=1)
    batches = plan_batches(frame, batch_rows=50)
    assert [len(batch.rows) for batch in batches] == [50, 50, 50, 50, 40]
    together = pd.concat([batch.rows for batch in batches])
    assert pd.to_datetime(together["game_date"]).is_monotonic_increasing
    assert batches[0].label == f"{batches[0].first_date} to {batches[0].last_date}"


@pytest.mark.parametrize("rows", [0, -3])
def test_a_batch_needs_at_least_one_row(rows):
    with pytest.raises(ValueError, match="positive"):
        plan_batches(production(SEASONS[:1]), batch_rows=rows)


def test_a_file_without_game_date_is_refused_clearly():
    with pytest.raises(ReplayError, match="prod.parquet has no game_date column"):
        plan_batches(production(SEASONS[:1]).drop(columns="game_date"), source="prod.parquet")


def test_unreadable_dates_missing_seasons_and_empty_seasons_are_named():
    frame = production(SEASONS[:2])
    broken = frame.assign(game_date=frame["game_date"].where(frame.index != 3, "someday"))
    with pytest.raises(ReplayError, match="1 rows have no readable game_date .first: 'someday'"):
        plan_batches(broken)
    with pytest.raises(ReplayError, match="2 rows have no season"):
        plan_batches(frame.assign(season=frame["season"].where(frame.index > 1)))
    with pytest.raises(ReplayError, match="no season column"):
        plan_batches(frame.drop(columns="season"))
    declared = frame.assign(season=pd.Categorical(frame["season"], categories=["2001-02", "2002-03", "1999-00"]))
    with pytest.raises(ReplayError, match="season '1999-00' has no rows"):
        plan_batches(declared)
    assert len(plan_batches(frame.drop(columns="season"), batch_rows=100)) == 3  # by rows: no season needed


# --- The strategies' decisions ----------------------------------------------------------------


def report(fired: bool) -> triggers.TriggerReport:
    trigger = triggers.Trigger(triggers.FEATURE_DRIFT, 1.0 if fired else 0.0, 0.25, fired, "")
    return triggers.TriggerReport(None, [trigger])


@pytest.mark.parametrize("fired", [True, False])
def test_never_never_retrains(fired):
    assert [challenger_wanted(NEVER, t, 10, report(fired), 1)[0] for t in range(10)] == [False] * 10


def test_reactive_retrains_exactly_when_a_trigger_fired_and_a_batch_is_left():
    assert challenger_wanted(REACTIVE, 3, 10, report(True), 4) == (True, "trigger fired: feature_drift")
    assert challenger_wanted(REACTIVE, 3, 10, report(False), 4) == (False, "no trigger fired")
    assert challenger_wanted(REACTIVE, 9, 10, report(True), 4)[0] is False  # the last batch: nothing left to score


def test_scheduled_retrains_every_k_batches_whatever_the_triggers():
    wanted = [t for t in range(10) if challenger_wanted(SCHEDULED, t, 10, report(False), 3)[0]]
    assert wanted == [2, 5, 8]
    assert [t for t in range(10) if challenger_wanted(SCHEDULED, t, 10, report(True), 1)[0]] == list(range(9))
    assert "next after batch 5" in challenger_wanted(SCHEDULED, 3, 10, report(True), 3)[1]


def test_settings_refuse_unknown_strategies_and_a_zero_schedule():
    with pytest.raises(ValueError, match="strategies"):
        ReplaySettings(strategies=("never", "sometimes"))
    with pytest.raises(ValueError, match="schedule_every"):
        ReplaySettings(schedule_every=0)


def test_null_rate_is_the_development_rate_until_labels_are_revealed():
    assert null_rate(pd.DataFrame(), 0.47) == 0.47
    assert null_rate(pd.DataFrame({TARGET: [1, 0, 0, 0]}), 0.47) == 0.25


# --- The loop ---------------------------------------------------------------------------------


def test_no_model_scores_a_batch_whose_labels_it_learned(bases):
    result, trainer, batches = replayed(bases)
    assert len(result.records) == len(batches) * 3
    assert all(record.trained_through_batch < record.batch_index for record in result.records)
    assert all(record.metrics[names.ROWS_SEEN_IN_TRAINING] == 0 for record in result.records)
    # Each training saw base_train plus labels of batches already scored and revealed, never later ones.
    retrained = [r for r in result.records if r.retrained]
    assert trainer.calls and len(trainer.calls) <= len(retrained)
    for call in range(len(trainer.calls)):
        learned = trainer.batches_learned(call)
        assert learned and max(learned) <= max(r.batch_index for r in retrained)
        assert 2 not in learned  # batch 2 carries no label: nothing of it is ever learned
        assert trainer.calls[call][TARGET].notna().all()


def test_each_strategy_acts_by_its_own_rule(bases):
    result, _, batches = replayed(bases, every=2)
    last = len(batches) - 1
    never, reactive, scheduled = (records(result, name) for name in replay.STRATEGIES)
    assert not any(r.retrained for r in never) and all(r.trained_through_batch == -1 for r in never)
    assert [r.retrained for r in reactive] == [r.report.any_fired and r.batch_index < last for r in reactive]
    assert not reactive[2].report.any_fired  # development-like inputs, no labels: nothing to fire on
    assert [r.batch_index for r in scheduled if r.retrained] == [1, 3]
    summary = result.summary.strategies
    assert summary[NEVER].retrains == 0 and summary[SCHEDULED].retrains == 2
    assert summary[REACTIVE].retrains == sum(r.retrained for r in reactive)


def test_a_better_challenger_is_promoted_and_scores_the_next_batches(bases):
    result, _, _ = replayed(bases, champion=0.6)  # 0.6 is far above production's ~0.3
    reactive = records(result, REACTIVE)
    first = next((r for r in reactive if r.promoted), None)  # the first one (36 holdout rows) is within noise
    assert first is not None, [r.reason for r in reactive]
    assert first.decision == "promote" and first.validation["holdout_log_loss_gain"] > 0
    assert "Promote the challenger" in first.reason
    following = reactive[first.batch_index + 1]
    assert 0 <= following.trained_through_batch <= first.batch_index
    assert following.metrics[names.LOG_LOSS] < records(result, NEVER)[first.batch_index + 1].metrics[names.LOG_LOSS]
    assert result.summary.strategies[REACTIVE].promotions >= 1


def test_a_worse_challenger_is_kept_out_by_the_gate(bases):
    result, trainer, _ = replayed(bases, champion=0.3, trainer=FakeTrainer(lambda rows: ConstantModel(0.95)))
    assert trainer.calls
    for record in result.records:
        assert not record.promoted and record.trained_through_batch == -1
        if record.retrained:
            assert record.decision == "keep" and "Keep the champion" in record.reason
    assert all(summary.promotions == 0 for summary in result.summary.strategies.values())


def test_strategies_retraining_after_the_same_batch_share_one_training(bases):
    result, trainer, _ = replayed(bases, every=1)
    retrains = [r for r in result.records if r.retrained]
    assert {r.strategy for r in retrains} == {REACTIVE, SCHEDULED}
    # Reactive and scheduled learn the same rows after the same batch (and after batch 2, which
    # reveals no label, the same rows as after batch 1): each distinct training set is trained once.
    distinct = {pd.util.hash_pandas_object(call, index=False).sum() for call in trainer.calls}
    assert len(trainer.calls) == len(distinct) == 3 < len(retrains)


def test_pooled_log_loss_and_the_null_yardstick_are_computed_over_labelled_rows(bases):
    result, _, batches = replayed(bases, champion=0.6)
    development_rate = class_ratio(bases["train"])
    null_losses, champion_losses, revealed = [], [], []
    for batch in batches:
        labelled = batch.rows[batch.rows[TARGET].notna()]
        rate = np.mean(np.concatenate(revealed)) if revealed else development_rate
        null_losses.append(row_log_loss(labelled[TARGET], np.full(len(labelled), rate)))
        champion_losses.append(row_log_loss(labelled[TARGET], np.full(len(labelled), 0.6)))
        revealed.append(labelled[TARGET].to_numpy())
    summary = result.summary
    assert summary.rows_labelled == sum(len(losses) for losses in null_losses) == 480
    assert summary.log_loss_null == pytest.approx(np.concatenate(null_losses).mean())
    assert summary.strategies[NEVER].log_loss == pytest.approx(np.concatenate(champion_losses).mean())
    assert not summary.strategies[NEVER].beats_null  # a constant 0.6 against a ~0.3 make rate
    assert "does not beat the null model" in summary.verdict(NEVER)
    assert summary.strategies[REACTIVE].beats_null and "beats the null model by" in summary.verdict(REACTIVE)
    first = records(result, NEVER)[0]
    assert first.metrics[names.REPLAY_NULL_LOG_LOSS] == pytest.approx(null_losses[0].mean())


def test_unlabelled_rows_stay_unlabelled_and_are_never_graded(bases):
    result, _, _ = replayed(bases)
    unlabelled = records(result, NEVER)[2]
    assert unlabelled.metrics[names.ROWS_LABELLED] == 0 and names.LOG_LOSS not in unlabelled.metrics
    assert names.ESTIMATED_LOG_LOSS in unlabelled.metrics  # the estimate needs no label
    assert unlabelled.applicability.verdict in {"applicable", "questionable", "not applicable"}


def test_first_alerts_and_the_progress_lines(bases):
    lines = []
    batches = plan_batches(production(SEASONS))
    replay.run_replay(batches, inputs_with(bases, ConstantModel(0.6)), FakeTrainer(), progress=lines.append)
    per_batch = [line for line in lines if line.startswith("[")]
    assert len(per_batch) == len(batches) * 3
    assert per_batch[0].startswith("[ 1/5] 2001-02    never") and per_batch[0].endswith(" s)")
    assert any(line.startswith("reactive: pooled log loss") for line in lines)


# --- Logging ----------------------------------------------------------------------------------


@pytest.fixture
def replay_store(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("KOBE_INVOCATION_ID", "replaytest")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    yield mlflow.MlflowClient(uri)
    mlflow.set_tracking_uri(None)


def test_a_replay_logs_one_parent_and_a_child_per_strategy_and_batch(bases, replay_store):
    result, _, batches = replayed(bases, log=replay.MlflowReplayLog())
    parent = reads.latest_replay_run(replay_store)
    assert parent.info.run_id == result.run_id and parent.info.run_name == "SimulacaoOperacao"
    assert replay_store.get_experiment(parent.info.experiment_id).name == "kobe-shot-replay"
    assert replay_store.get_experiment_by_name(config.EXPERIMENT_NAME) is None  # the pipeline's is untouched
    children = reads.replay_batch_runs(replay_store, parent.info.run_id)
    assert len(children) == 3 * len(batches)
    for child in children:
        params, metrics, tags = child.data.params, child.data.metrics, child.data.tags
        assert child.info.run_name == "PipelineAplicacao" and child.info.status == "FINISHED"
        assert tags["kobe.replay_strategy"] in replay.STRATEGIES
        assert int(params["trained_through_batch"]) < int(params["batch_index"])
        assert params["batch"] == batches[int(params["batch_index"])].label
        for name in ["rows_input", "rows_scored", "rows_rejected", "estimated_log_loss", "retrained"]:
            assert name in metrics, name
        for trigger in triggers.LOG_LOSS_DEGRADATION, triggers.FEATURE_DRIFT:
            assert f"trigger_{trigger}_fired" in metrics
    metrics = parent.data.metrics
    for strategy in replay.STRATEGIES:
        summary = result.summary.strategies[strategy]
        assert metrics[f"log_loss_{strategy}"] == pytest.approx(summary.log_loss)
        assert metrics[f"retrains_{strategy}"] == summary.retrains
        assert metrics[f"promotions_{strategy}"] == summary.promotions
        assert metrics[f"estimation_error_{strategy}"] == pytest.approx(summary.estimation_error)
        assert parent.data.tags[f"null_verdict_{strategy}"] == result.summary.verdict(strategy)
    assert metrics["log_loss_null"] == pytest.approx(result.summary.log_loss_null)
    assert metrics["first_alert_batch"] == 0
    # Read back, the timeline is the loop's own.
    view = replay_timeline.load_replay(replay_store)
    expected = result.timeline().sort_values(["strategy", "batch_index"]).reset_index(drop=True)
    shown = view.timeline.sort_values(["strategy", "batch_index"]).reset_index(drop=True)
    for column in ["batch", "trained_through_batch", "retrained", "promoted", "applicability"]:
        assert shown[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(shown["log_loss"], expected["log_loss"])
    assert view.summary["strategy"].tolist() == [*replay.STRATEGIES, "null"]


def test_a_failed_replay_marks_its_parent_failed_and_is_never_read(bases, replay_store):
    def broken(rows):
        raise RuntimeError("training exploded")

    with pytest.raises(RuntimeError, match="training exploded"):
        replayed(bases, trainer=broken, log=replay.MlflowReplayLog())
    experiment = replay_store.get_experiment_by_name(config.REPLAY_EXPERIMENT_NAME)
    parents = replay_store.search_runs([experiment.experiment_id], "attributes.run_name = 'SimulacaoOperacao'")
    assert [run.info.status for run in parents] == ["FAILED"]
    assert reads.latest_replay_run(replay_store) is None
    assert replay_timeline.load_replay(replay_store) is None


def test_replay_without_a_pipeline_run_says_what_to_run(tmp_path, monkeypatch, capsys):
    # runner.main sets and removes process-wide variables: record them all so they come back after.
    for name in ["KOBE_INVOCATION_ID", "MPLBACKEND", "PYCARET_CUSTOM_LOGGING_PATH", "KOBE_DATA_SOURCE"]:
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert runner.main(["--workspace", str(tmp_path), "--replay"]) == 1
    error = capsys.readouterr().err
    assert "Replay needs a pipeline run first" in error and "data/processed/base_train.parquet" in error
    assert "models:/kobe-shot-model@champion" in error and "Traceback" not in error
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("flag", ["0", "-2", "two"])
def test_replay_batch_must_be_a_positive_number_of_rows(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        runner.main(["--replay", "--replay-batch", flag])
    assert exit_info.value.code == 2
    assert "argument --replay-batch" in capsys.readouterr().err


def test_replay_options_need_replay(capsys):
    with pytest.raises(SystemExit):
        runner.main(["--replay-every", "2"])
    assert "go with --replay" in capsys.readouterr().err


def test_runner_passes_only_parameters_the_notebook_declares():
    cells = json.loads((config.NOTEBOOKS_DIR / "05_operacao.ipynb").read_text())["cells"]
    tagged = [cell for cell in cells if "parameters" in cell["metadata"].get("tags", [])]
    assert len(tagged) == 1
    declared = {}
    exec("".join(tagged[0]["source"]), {}, declared)  # plain literals only
    args = runner.build_parser().parse_args(["--replay", "--fast", "--replay-batch", "300", "--replay-every", "2"])
    parameters = runner.replay_parameters(args, config.workspace_paths().replay_progress_log)
    assert set(parameters) <= set(declared)
    assert parameters["batch_rows"] == 300 and parameters["schedule_every"] == 2 and parameters["fast"] is True
    assert declared["schedule_every"] == config.REPLAY_SCHEDULE_EVERY
    assert declared["strategies"] == list(replay.STRATEGIES)
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert max(len("".join(cell["source"]).splitlines()) for cell in code) <= 15  # thin: the loop lives in Code/


# --- End to end: run_all.py --replay --fast on the session pipeline's workspace ---------------


@pytest.mark.e2e
def test_run_all_replay_fast_logs_every_batch_out_of_sample(workspace_copy, tmp_path):
    workspace = workspace_copy.workspace
    client = mlflow.MlflowClient(workspace_copy.tracking_uri)
    champion_before = reads.registry_aliases(client)
    versions_before = len(client.search_model_versions(f"name='{config.REGISTERED_MODEL_NAME}'"))

    # Bad input first: nothing may be logged.
    no_dates = tmp_path / "no_dates.parquet"
    pd.read_parquet(workspace_copy.paths.raw_file("prod")).drop(columns="game_date").to_parquet(no_dates)
    failed = run_pipeline(workspace, "--replay", "--fast", "--prod-data", str(no_dates), check=False)
    assert failed.returncode == 1 and "has no game_date column" in failed.stderr, failed.stderr
    assert "Traceback" not in failed.stderr
    experiment = client.get_experiment_by_name(config.REPLAY_EXPERIMENT_NAME)
    assert experiment is None or not client.search_runs([experiment.experiment_id])

    result = run_pipeline(workspace, "--replay", "--fast")
    batch_lines = [line for line in result.stdout.splitlines() if re.match(r"\s+\[\s*\d+/20\] .* s\)$", line)]
    assert len(batch_lines) == 20 * 3, result.stdout  # one line per season and strategy, with its time

    parent = reads.latest_replay_run(client)
    assert parent is not None and parent.data.params["batching"] == "season"
    assert parent.data.params["fast"] == "True" and parent.data.params["batches"] == "20"
    children = reads.replay_batch_runs(client, parent.info.run_id)
    assert len(children) == 60
    strategies = {run.data.tags["kobe.replay_strategy"] for run in children}
    assert strategies == set(replay.STRATEGIES)
    for child in children:
        params = child.data.params
        assert int(params["trained_through_batch"]) < int(params["batch_index"])
        assert child.data.metrics["rows_seen_in_training"] == 0
    seasons = [run.data.params["batch"] for run in children if run.data.tags["kobe.replay_strategy"] == "never"]
    assert sorted(seasons) == sorted(set(seasons)) and "1996-97" in seasons and "2015-16" in seasons
    metrics = parent.data.metrics
    for strategy in replay.STRATEGIES:
        for name in ["log_loss", "retrains", "promotions", "estimation_error"]:
            assert f"{name}_{strategy}" in metrics
    assert metrics["retrains_never"] == 0 and "log_loss_null" in metrics and "first_alert_batch" in metrics
    # Never in-sample, and the registry is exactly as the pipeline left it.
    assert reads.registry_aliases(client) == champion_before
    assert len(client.search_model_versions(f"name='{config.REGISTERED_MODEL_NAME}'")) == versions_before
    assert client.get_experiment_by_name(config.EXPERIMENT_NAME).experiment_id != parent.info.experiment_id


# --- The documented full-grid replay ----------------------------------------------------------

RETRAINING_DOC = config.PROJECT_ROOT / "Docs" / "Model" / "Retraining.md"
MONITORING_DOC = config.PROJECT_ROOT / "Docs" / "Model" / "Monitoring.md"
REPLAY_HEADING = "## Replay: twenty seasons, three strategies"
MONITORING_HEADING = "## What the replay teaches about monitoring"


def section(document, heading: str) -> str:
    text = document.read_text()
    assert heading in text, f"{document.name} lost its section {heading!r}"
    body = text.split(heading, 1)[1]
    return body.split("\n## ", 1)[0]


def replay_figures(client, parent) -> dict[str, float]:
    """Every figure the replay sections may cite, by name: the parent's metrics, each strategy's
    gap to the null model, and per batch (``{name}_{batch}_{strategy}``) what its child logged."""
    figures = dict(parent.data.metrics)
    strategies = parent.data.params["strategies"].split(",")
    for strategy in strategies:
        figures[f"vs_null_{strategy}"] = figures[f"log_loss_{strategy}"] - figures["log_loss_null"]
    children = reads.replay_batch_runs(client, parent.info.run_id)
    for child in children:
        strategy, batch = child.data.tags["kobe.replay_strategy"], child.data.params["batch"]
        for name in ["log_loss", "estimated_log_loss", "log_loss_null", "rows_labeled", "rows_input", "retrained"]:
            if name in child.data.metrics:
                figures[f"{name}_{batch}_{strategy}"] = child.data.metrics[name]
        figures[f"trained_through_{batch}_{strategy}"] = float(child.data.params["trained_through_batch"])
    first = strategies[0]
    figures["rows_replayed"] = sum(
        c.data.metrics["rows_input"] for c in children if c.data.tags[names.REPLAY_STRATEGY_TAG] == first
    )
    return figures


@pytest.fixture(scope="module")
def full_replay(pipeline_run, tmp_path_factory):
    """``run_all.py --replay`` with the full grids, as documented, on a copy of the session workspace."""
    import shutil

    copy = tmp_path_factory.mktemp("replayed") / "workspace"
    shutil.copytree(pipeline_run.workspace, copy)
    run_pipeline(copy, "--replay", timeout=1800)
    client = mlflow.MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    return client, reads.latest_replay_run(client)


@pytest.mark.e2e
def test_the_documented_replay_is_what_a_full_grid_replay_logs(full_replay):
    """Docs/Model/Retraining.md's replay section: its checked tables and every number in its prose."""
    from docs_support import prose_problems, table_problems

    client, parent = full_replay
    figures = replay_figures(client, parent)
    text = section(RETRAINING_DOC, REPLAY_HEADING)
    assert "<!-- checked-table:" in text
    problems = table_problems(text, figures) + prose_problems(text, figures)
    assert not problems, "\n".join(problems)
    for strategy in replay.STRATEGIES:
        verdict = parent.data.tags[f"null_verdict_{strategy}"].split(" (")[0]
        assert f"`{strategy}` {verdict}" in " ".join(text.split()), verdict
    assert f"first alert after batch {int(figures['first_alert_batch'])}" in " ".join(text.split())
    # The claims the section makes in words.
    children = reads.replay_batch_runs(client, parent.info.run_id)
    by = {s: [c for c in children if c.data.tags[names.REPLAY_STRATEGY_TAG] == s] for s in replay.STRATEGIES}
    assert all("feature_drift" in c.data.tags["fired_triggers"] for c in children)
    assert all("log_loss_degradation" in c.data.tags["fired_triggers"] for c in by[NEVER])
    kept = [c for c in by[REACTIVE] if c.data.tags["decision"] == "keep"]
    assert len(kept) == 17 and all("under 2 paired standard errors" in c.data.tags["reason"] for c in kept)
    assert figures["retrains_reactive"] - figures["retrains_scheduled"] == 13
    promoted = {s: [c.data.params["batch"] for c in by[s] if c.data.metrics["promoted"]] for s in replay.STRATEGIES}
    assert promoted[REACTIVE] == promoted[SCHEDULED] == ["2001-02", "2010-11"]
    # Monitoring.md's replay section, in words.
    assert all(c.data.tags["estimate_applicability"] == "not applicable" for c in by[NEVER])
    assert {c.data.tags["estimate_applicability"] for c in by[REACTIVE]} == {
        "not applicable",
        "questionable",
        "applicable",
    }
    assert figures["estimation_error_reactive"] < figures["estimation_error_never"]
    estimated = [c.data.metrics["estimated_log_loss"] for c in by[NEVER]]
    realized = [c.data.metrics["log_loss"] for c in by[NEVER]]
    assert max(estimated) - min(estimated) < 0.01 < 0.05 < max(realized) - min(realized)  # flat vs moving


def test_the_replay_sections_are_linked_and_quote_no_unchecked_figure():
    """Monitoring.md's replay section is also checked by tests/test_docs.py against the pipeline run:
    it quotes no replay figure itself and points to the checked table."""
    text = section(MONITORING_DOC, MONITORING_HEADING)
    assert "Retraining.md#replay-twenty-seasons-three-strategies" in text
    assert "run_all.py --replay" in text


if __name__ == "__main__":  # print a workspace's replay figures, to write the documents from
    import sys

    store = mlflow.MlflowClient(f"sqlite:///{sys.argv[1]}/mlflow.db")
    for name, value in sorted(replay_figures(store, reads.latest_replay_run(store)).items()):
        print(f"{name:50s} {value!r}")
