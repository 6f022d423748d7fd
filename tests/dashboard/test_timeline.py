"""The Timeline page (views/08_Timeline.py) through AppTest: a logged replay, no replay yet, no store.

The replay is a synthetic one (tests/replay_support.py: fake champion, fake trainer) logged to a
temporary store with the real logging code, so the page reads exactly what a replay writes.
"""

import os

import mlflow
import pytest
from streamlit.testing.v1 import AppTest

from kobe_mlops import config
from kobe_mlops.dashboard import common
from kobe_mlops.monitoring import replay, replay_timeline
from replay_support import replayed, synthetic_bases

os.environ.pop("MPLBACKEND", None)  # importing streamlit sets it; pipeline kernels must not inherit it

PAGE = common.PAGES_DIR / "08_Timeline.py"
PAGE_TIMEOUT = 120


def run_page() -> AppTest:
    app = AppTest.from_file(str(PAGE), default_timeout=PAGE_TIMEOUT).run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def texts(app: AppTest, kind: str) -> list[str]:
    return [element.value for element in app.get(kind)]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("KOBE_INVOCATION_ID", "timelinetest")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield tmp_path
    mlflow.set_tracking_uri(None)


@pytest.fixture
def logged_replay(workspace):
    result, _, batches = replayed(synthetic_bases(), log=replay.MlflowReplayLog())
    return result, batches


def test_the_page_is_discovered_after_the_others():
    assert common.page_files()[-1].name == "08_Timeline.py"


def test_timeline_shows_the_summary_the_chart_and_the_verdicts(logged_replay):
    result, batches = logged_replay
    app = run_page()
    assert [title.value for title in app.title] == ["Timeline"]
    summary = app.dataframe[0].value
    assert summary["strategy"].tolist() == [*replay.STRATEGIES, "null"]
    for strategy in replay.STRATEGIES:
        row = summary[summary["strategy"] == strategy].iloc[0]
        assert row["log_loss"] == pytest.approx(result.summary.strategies[strategy].log_loss)
        assert row["retrains"] == result.summary.strategies[strategy].retrains
    # A strategy that does not beat the null model is said to, in words.
    warnings, successes = " ".join(texts(app, "warning")), " ".join(texts(app, "success"))
    assert "**never** does not beat the null model" in warnings
    assert "**reactive** beats the null model by" in successes
    assert len(app.get("image")) == 1
    applicability = app.dataframe[1].value
    assert len(applicability) == len(batches) and list(applicability.columns[-3:]) == list(replay.STRATEGIES)
    every = app.dataframe[2].value
    assert len(every) == 3 * len(batches) and (every["trained_through_batch"] < every["batch_index"]).all()
    markdown = " ".join(texts(app, "markdown"))
    assert "**First alert:** batch 0 (2001-02)" in markdown
    assert result.run_id in " ".join(texts(app, "caption"))


def test_timeline_before_any_replay_gives_the_replay_command(workspace):
    client = mlflow.MlflowClient(f"sqlite:///{workspace / 'mlflow.db'}")
    client.create_experiment(config.EXPERIMENT_NAME)  # a store with a pipeline's experiment, no replay
    app = run_page()
    assert "No replay yet: no finished replay" in app.info[0].value
    assert [block.value for block in app.code] == [f".venv/bin/python run_all.py --workspace {workspace} --replay"]
    assert not app.error


def test_timeline_in_an_empty_workspace_asks_for_the_pipeline_and_creates_nothing(workspace):
    app = run_page()
    assert "Nothing to show yet" in app.info[0].value
    assert [block.value for block in app.code] == [f".venv/bin/python run_all.py --workspace {workspace}"]
    assert list(workspace.iterdir()) == []


def test_applicability_table_has_one_row_per_batch_and_a_column_per_strategy(logged_replay, workspace):
    view = replay_timeline.load_replay(mlflow.MlflowClient(f"sqlite:///{workspace / 'mlflow.db'}"))
    table = replay_timeline.applicability_table(view.timeline)
    assert table.columns.tolist() == ["batch_index", "batch", *replay.STRATEGIES]
    assert set(table[list(replay.STRATEGIES)].to_numpy().ravel()) <= {"applicable", "questionable", "not applicable"}
