"""The Timeline page (views/08_Timeline.py) through AppTest: a logged replay, and a store without one.

The synthetic replay the replay tests read (conftest.logged_replay) is logged with the real logging
code, so the page reads exactly what a replay writes.
"""

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import fluent
from test_dashboard import run_page  # it also unsets MPLBACKEND, which importing streamlit sets

from conftest import copy_empty_store
from kobe_mlops import config
from kobe_mlops.dashboard import common
from kobe_mlops.monitoring import replay
from kobe_mlops.monitoring.calculators import APPLICABLE, NOT_APPLICABLE, QUESTIONABLE


def point_at(patch: pytest.MonkeyPatch, folder: Path) -> None:
    """This process's workspace and MLflow store on ``folder`` (``patch`` puts everything back)."""
    patch.setenv("KOBE_WORKSPACE", str(folder))
    patch.setenv("KOBE_INVOCATION_ID", "timelinetest")
    patch.delenv("MLFLOW_TRACKING_URI", raising=False)
    patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # the replay's logging sets it
    patch.setattr(fluent, "_active_experiment_id", None)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    point_at(monkeypatch, tmp_path)
    yield tmp_path
    mlflow.set_tracking_uri(None)


@pytest.fixture
def replay_workspace(logged_replay, monkeypatch):
    point_at(monkeypatch, logged_replay.workspace)
    yield logged_replay
    mlflow.set_tracking_uri(None)


def test_timeline_shows_the_summary_the_chart_and_the_verdicts(replay_workspace):
    result, batches = replay_workspace.outcome, replay_workspace.batches
    app = run_page("08_Timeline.py")
    assert common.page_files()[-1].name == "08_Timeline.py"
    summary = app.dataframe[0].value
    assert summary["strategy"].tolist() == [*replay.STRATEGIES, "null"]
    for strategy in replay.STRATEGIES:
        row = summary[summary["strategy"] == strategy].iloc[0]
        assert row["log_loss"] == pytest.approx(result.strategies[strategy].log_loss)
        assert row["retrains"] == result.strategies[strategy].retrains
    # Each strategy's verdict in words, once (the summary table holds the same column).
    markdown = " ".join(element.value for element in app.markdown)
    for row in summary[summary["strategy"] != "null"].itertuples():
        assert f"**{row.strategy}**: {row.verdict}." in markdown
    assert len(app.get("image")) == 1
    applicability = app.dataframe[1].value
    assert applicability.columns.tolist() == ["batch_number", "batch", *replay.STRATEGIES]
    assert applicability["batch_number"].tolist() == list(range(1, len(batches) + 1))
    assert set(applicability[list(replay.STRATEGIES)].to_numpy().ravel()) <= {APPLICABLE, QUESTIONABLE, NOT_APPLICABLE}
    every = app.dataframe[2].value
    assert len(every) == len(replay.STRATEGIES) * len(batches)
    assert (every["trained_through_batch"].fillna(0) < every["batch_number"]).all()
    assert str(every["rows_input"].dtype) == "Int64"  # counts read as integers
    # Numbered from 1, as the replay prints "[ 1/20]".
    assert "**First alert** (strategy never): batch 1 (2001-02)" in markdown
    assert result.run_id in " ".join(element.value for element in app.caption)


def test_timeline_before_any_replay_gives_the_replay_command(workspace, empty_mlflow_db):
    client = mlflow.MlflowClient(copy_empty_store(empty_mlflow_db, workspace / "mlflow.db"))
    client.create_experiment(config.EXPERIMENT_NAME)  # a store with a pipeline's experiment, no replay
    app = run_page("08_Timeline.py")
    assert "No replay yet: no finished replay" in app.info[0].value
    assert [block.value for block in app.code] == [f".venv/bin/python run_all.py --workspace {workspace} --replay"]
    assert not app.error


def timeline(strategies: dict[str, list[float]]) -> pd.DataFrame:
    """A hand-made timeline_frame, batches numbered from 1, with these log losses per strategy."""
    rows = [
        {
            "strategy": strategy,
            "batch_index": number,
            "batch": f"season {number}",
            "trained_through_batch": number - 1,
            "rows_input": 10.0,
            "log_loss": loss,
            "fired": number == 2,
            "fired_triggers": "feature_drift" if number == 2 else "",
            "retrained": strategy != "never",
            "promoted": False,
        }
        for strategy, losses in strategies.items()
        for number, loss in enumerate(losses, start=1)
    ]
    return common.numbered_batches(pd.DataFrame(rows))


def test_batches_are_numbered_from_one_and_counts_are_integers():
    shown = timeline({"never": [0.6, 0.7]})
    assert shown["batch_number"].tolist() == [1, 2]
    assert shown["trained_through_batch"].isna().tolist() == [True, False]  # 0: the development champion
    assert shown.loc[1, "trained_through_batch"] == 1 and str(shown["rows_input"].dtype) == "Int64"
    assert common.first_alert_text(shown) == "batch 2 (season 2): feature_drift"


def test_strategies_with_the_same_path_are_said_to_coincide():
    frame = timeline({"never": [0.6, 0.7], "reactive": [0.6, 0.65], "scheduled": [0.6, 0.65]})
    assert common.coinciding_strategies(frame) == [("reactive", "scheduled")]
    assert common.coinciding_strategies(timeline({"reactive": [0.6, 0.65], "scheduled": [0.6, 0.66]})) == []
