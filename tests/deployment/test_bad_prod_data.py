"""`run_all.py --steps 04 --prod-data FILE` on files nobody cleaned, generated here; all but one
call the step's function in this process, as notebook 04 does (no kernel start)."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from deployment_support import garble_row_group, shots, write

from conftest import run_pipeline
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import REASON_COLUMN, DataContractError
from kobe_mlops.monitoring.application_run import run_application_step
from kobe_mlops.tracking import reads


@pytest.fixture
def step(workspace_copy, monkeypatch):
    """Run the application step in this process on the copied workspace (what notebook 04 calls)."""
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace_copy.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(workspace_copy.tracking_uri)
    return lambda path: run_application_step(str(path), paths=workspace_copy.paths)


def finished_runs(workspace_copy) -> list:
    """Every finished PipelineAplicacao run, oldest first."""
    return reads.finished_application_runs(mlflow.MlflowClient(workspace_copy.tracking_uri))


@pytest.mark.parametrize("through_the_command", [True, False], ids=["not-parquet-by-command", "corrupt-row-group"])
def test_unusable_file_stops_with_one_message_and_leaves_outputs_alone(
    through_the_command, workspace_copy, step, tmp_path
):
    """A file refused on opening (the command a user runs: one short message), and one that fails
    while it is scored: neither replaces an output or logs a finished run. Every message is in
    test_streaming.py's unusable-file test."""
    bad_file = tmp_path / "incoming.parquet"
    outputs = [workspace_copy.paths.predictions_prod, workspace_copy.paths.rejected_prod]
    before = [path.stat().st_mtime_ns for path in outputs]
    runs_before = len(finished_runs(workspace_copy))
    if through_the_command:
        bad_file.write_text("lat,lon\n33.9,-118.3\n")
        result = run_pipeline(workspace_copy.workspace, "--steps", "04", "--prod-data", str(bad_file), check=False)
        assert result.returncode == 1
        problem = "not a readable parquet file"
        assert f"Step 04_aplicacao failed: DataContractError: {bad_file}: {problem}" in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 3
    else:
        write(shots(12), bad_file, row_group_size=4)
        garble_row_group(bad_file, 1)
        with pytest.raises(DataContractError) as error:
            step(bad_file)
        assert str(error.value).startswith(f"{bad_file}: row group 1 of 3 (rows 4 to 7) is not readable")
    assert [path.stat().st_mtime_ns for path in outputs] == before  # no partial outputs
    assert len(finished_runs(workspace_copy)) == runs_before  # no finished run logged for it


def test_bad_rows_are_rejected_with_reasons_and_the_rest_scored(workspace_copy, step, tmp_path):
    frame = shots(10).assign(shot_made_flag=1.0).astype({"minutes_remaining": str})  # ids 1000 to 1009
    frame.loc[0, "lat"] = np.nan  # missing feature
    frame.loc[1, "minutes_remaining"] = "five"  # text in a numeric field
    frame.loc[2, "period"] = 0  # out of range
    frame.loc[3, "playoffs"] = 3
    frame.loc[4, "shot_distance"] = 120
    frame.loc[5, "lon"] = -100.0  # outside the court box
    frame.loc[6, "shot_made_flag"] = np.nan  # unlabelled: still scored
    frame["comment"] = "an extra column"
    incoming = tmp_path / "dirty.parquet"
    frame[list(reversed(frame.columns))].to_parquet(incoming)  # reordered columns too

    step(incoming)

    rejected = pd.read_parquet(workspace_copy.paths.rejected_prod)
    assert sorted(rejected["shot_id"]) == list(range(1000, 1006))
    reasons = dict(zip(rejected["shot_id"] - 1000, rejected[REASON_COLUMN], strict=True))  # by row
    assert reasons[0] == "lat is missing"
    assert reasons[1] == "minutes_remaining is not a number: five"
    assert reasons[2].startswith("period=0 outside") and reasons[3].startswith("playoffs=3 outside")
    assert reasons[4].startswith("shot_distance=120 outside") and reasons[5].startswith("lon=-100 outside")
    predictions = pd.read_parquet(workspace_copy.paths.predictions_prod)
    assert sorted(predictions["shot_id"]) == list(range(1006, 1010))
    assert predictions[config.PROBABILITY_COLUMN].between(0, 1).all()
    run = finished_runs(workspace_copy)[-1]
    counts = {name: run.data.metrics[name] for name in ("rows_input", "rows_scored", "rows_rejected", "rows_labeled")}
    assert counts == {"rows_input": 10, "rows_scored": 4, "rows_rejected": 6, "rows_labeled": 3}
    assert run.data.params["prod_data"] == str(incoming)


def test_a_file_without_labels_is_scored_and_says_so(workspace_copy, step, tmp_path):
    incoming = tmp_path / "unlabelled.parquet"
    write(shots(5).drop(columns=config.TARGET), incoming)
    step(incoming)
    run = finished_runs(workspace_copy)[-1]
    assert run.data.metrics["rows_scored"] == 5 and run.data.metrics["rows_labeled"] == 0
    assert "log_loss" not in run.data.metrics
    assert run.data.tags["labelled_metrics"].startswith("none")
    assert len(pd.read_parquet(workspace_copy.paths.predictions_prod)) == 5
