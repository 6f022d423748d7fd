"""The Spark engine gives the pandas engine's result: same rows, reasons, counts, probabilities and figures.

One Spark session serves most of the module (starting one takes seconds); the model is the
session pipeline's champion. Spark writes its outputs as folders of part files; they are read
back with ``pd.read_parquet`` and compared with the pandas engine's files.
"""

import re
import shutil
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deployment_support import UNUSABLE_FILES, garble_row_group, outputs

from conftest import run_pipeline
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import REASON_COLUMN, DataContractError
from kobe_mlops.deployment.engines import apply_with_engine
from kobe_mlops.monitoring import health
from kobe_mlops.monitoring.application_run import application_figures, streamed_metrics
from kobe_mlops.monitoring.scoring_model import load_scoring_model, pinned_uri, registered_version
from kobe_mlops.tracking import reads

pytest.importorskip("pyspark", reason="Spark engine not installed: .venv/bin/pip install -e '.[scale]'")
from kobe_mlops.deployment import spark_scoring  # noqa: E402  (needs pyspark)

TOLERANCE = 1e-9


def require_java() -> None:
    if not shutil.which("java"):
        pytest.skip("Spark needs Java 17 and `java` is not on the PATH (Debian: openjdk-17-jre-headless)")


@pytest.fixture(scope="module")
def spark():
    require_java()
    with spark_scoring.spark_session("local[2]") as session:
        yield session


def both_engines(spark, path, tmp_path, partitions=None):
    """``(pandas result, spark result)`` of scoring ``path``, each with its outputs and figures."""
    scoring = load_scoring_model(pinned_uri(registered_version(config.CHAMPION_URI)), None)
    pandas_result = apply_with_engine(
        path, config.CHAMPION_URI, outputs=outputs(tmp_path / "pandas"), observers=[application_figures(scoring)]
    )
    spark_result = spark_scoring.score(
        spark, path, config.CHAMPION_URI, outputs(tmp_path / "spark"), [application_figures(scoring)], partitions
    )
    return pandas_result, spark_result


def assert_same_result(pandas_result, spark_result):
    assert spark_result.counts == pandas_result.counts
    assert spark_result.outputs.predictions.is_dir() and pandas_result.outputs.predictions.is_file()
    expected = pd.read_parquet(pandas_result.outputs.predictions)
    actual = pd.read_parquet(spark_result.outputs.predictions)
    pd.testing.assert_series_equal(actual.dtypes, expected.dtypes)  # the same columns, in order, of the same types
    np.testing.assert_allclose(
        actual[config.PROBABILITY_COLUMN], expected[config.PROBABILITY_COLUMN], rtol=0, atol=TOLERANCE
    )
    others = [c for c in expected.columns if c != config.PROBABILITY_COLUMN]
    pd.testing.assert_frame_equal(actual[others], expected[others])
    expected_rejected = pd.read_parquet(pandas_result.outputs.rejected)
    actual_rejected = pd.read_parquet(spark_result.outputs.rejected)
    pd.testing.assert_frame_equal(actual_rejected, expected_rejected, check_dtype=not expected_rejected.empty)
    # approx compares a mapping's keys too: every metric, no more
    assert streamed_metrics(spark_result) == pytest.approx(streamed_metrics(pandas_result), abs=TOLERANCE, nan_ok=True)


@pytest.mark.e2e
def test_course_production_file_matches_the_pandas_engine(spark, tracking, pipeline_run, tmp_path):
    pandas_result, spark_result = both_engines(spark, pipeline_run.paths.raw_file("prod"), tmp_path)
    assert spark_result.counts["rows_scored"] == 6426 and spark_result.engine == "spark"
    assert_same_result(pandas_result, spark_result)
    # A folder of part files reads like a file for the dashboard.
    workspace = config.workspace_paths(tmp_path / "spark" / "ws")
    workspace.processed_dir.mkdir(parents=True)
    for path, target in zip(spark_result.outputs, [workspace.predictions_prod, workspace.rejected_prod], strict=True):
        shutil.copytree(path, target)
    predictions = health.read_optional(workspace.predictions_prod)
    rejected = health.read_optional(workspace.rejected_prod)
    assert len(predictions) == 6426 and rejected.empty


BAD_ROWS = {  # position in the file -> (column, value that breaks the contract)
    3: ("lat", "not a latitude"),
    10: ("minutes_remaining", None),
    25: ("period", 0.0),
    40: ("period", 2.5),
    77: ("playoffs", 3.0),
    90: ("shot_distance", -1.0),
    120: ("shot_made_flag", 2.0),
    150: ("lon", -100.0),
}


REPEATED = (5, 180)  # a shot id the file carries twice, far apart


@pytest.fixture
def file_with_bad_rows(pipeline_run, tmp_path):
    """200 production rows, 10 of them broken (two share a shot id), text in a numeric column, several row groups."""
    frame = pd.read_parquet(pipeline_run.paths.raw_file("prod")).head(200).reset_index(drop=True)
    frame["lat"] = frame["lat"].astype(str)  # a file whose latitudes were written as text
    frame["minutes_remaining"] = frame["minutes_remaining"].astype("float64")
    frame["period"] = frame["period"].astype("float64")
    for position, (column, value) in BAD_ROWS.items():
        frame.loc[position, column] = value
    frame.loc[REPEATED[1], "shot_id"] = frame.loc[REPEATED[0], "shot_id"]  # in another partition
    path = tmp_path / "prod_with_bad_rows.parquet"
    frame.to_parquet(path, index=False, row_group_size=64)
    return path


@pytest.mark.e2e
def test_bad_rows_are_rejected_like_the_pandas_engine(spark, tracking, file_with_bad_rows, tmp_path):
    # Three partitions over four row groups: file order must survive the shuffle.
    pandas_result, spark_result = both_engines(spark, file_with_bad_rows, tmp_path, partitions=3)
    assert (spark_result.counts["rows_input"], spark_result.counts["rows_rejected"]) == (200, 10)
    assert_same_result(pandas_result, spark_result)
    rejected = pd.read_parquet(spark_result.outputs.rejected)
    assert "lat is not a number: not a latitude" in rejected[REASON_COLUMN].iloc[0]
    twice = rejected[rejected[REASON_COLUMN].str.contains("appears 2 times in the file")]
    assert len(twice) == 2 and twice["shot_id"].nunique() == 1
    parts = sorted(p.name for p in spark_result.outputs.predictions.iterdir())
    assert parts == [f"part-{number:05d}.parquet" for number in range(3)]
    dtypes = pd.read_parquet(spark_result.outputs.predictions)[config.FEATURES].dtypes.astype(str).tolist()
    assert dtypes == ["float64", "float64", "int64", "int64", "int64", "float64"]  # lat, lon, ..., shot_distance


@pytest.mark.e2e
def test_a_file_with_no_valid_row_scores_nothing(spark, tracking, pipeline_run, tmp_path):
    frame = pd.read_parquet(pipeline_run.paths.raw_file("prod")).head(20)
    frame["playoffs"] = 7
    path = tmp_path / "all_bad.parquet"
    frame.to_parquet(path, index=False)
    pandas_result, spark_result = both_engines(spark, path, tmp_path)
    assert spark_result.counts["rows_scored"] == 0 and spark_result.counts["rows_rejected"] == 20
    assert_same_result(pandas_result, spark_result)


@pytest.mark.e2e
@pytest.mark.parametrize("case", UNUSABLE_FILES)
def test_unusable_files_raise_the_pandas_engine_s_contract_errors(spark, tmp_path, case):
    path = tmp_path / "bad.parquet"
    write_bad, message = UNUSABLE_FILES[case]
    write_bad(path)
    with pytest.raises(DataContractError, match=re.escape(f"{path}: {message}")):
        spark_scoring.score(spark, path)


@pytest.mark.e2e
def test_a_corrupt_row_group_is_named_and_no_output_replaced(spark, tracking, pipeline_run, tmp_path):
    production = pd.read_parquet(pipeline_run.paths.raw_file("prod"))
    path = tmp_path / "corrupt.parquet"
    production.to_parquet(path, index=False, row_group_size=2000)
    garble_row_group(path, 2, column=4)
    previous = outputs(tmp_path / "previous")
    previous.predictions.parent.mkdir()
    for target in previous:
        target.write_bytes(b"previous output")
    with pytest.raises(DataContractError, match=r"corrupt\.parquet: row group 2 of 4 \(rows 4,000 to 5,999\)"):
        spark_scoring.score(spark, path, config.CHAMPION_URI, previous)
    assert [target.read_bytes() for target in previous] == [b"previous output"] * 2
    assert sorted(p.name for p in previous.predictions.parent.iterdir()) == sorted(p.name for p in previous)


@pytest.mark.e2e
def test_spark_engine_through_run_all_logs_the_pandas_metrics(workspace_copy, pipeline_run):
    command = "--steps 04 --engine spark --spark-master local[2] --spark-conf spark.driver.memory=1g"
    result = run_pipeline(workspace_copy.workspace, *command.split(), "--spark-conf", "spark.sql.shuffle.partitions=4")
    assert "04_aplicacao ... ok" in result.stdout
    client = mlflow.MlflowClient(workspace_copy.tracking_uri)
    runs = reads.finished_application_runs(client)  # oldest first: the session pipeline's run, then this one
    pandas_run, spark_run = runs[0], runs[-1]
    assert (pandas_run.data.params["engine"], spark_run.data.params["engine"]) == ("pandas", "spark")
    skipped = {"labels_appended"}  # the store already holds the session run's labels: appended again, same count
    for name, value in pandas_run.data.metrics.items():
        if name not in skipped:
            assert spark_run.data.metrics[name] == pytest.approx(value, abs=TOLERANCE, nan_ok=True), name
    assert workspace_copy.paths.predictions_prod.is_dir()
    written = pd.read_parquet(workspace_copy.paths.predictions_prod)
    original = pd.read_parquet(pipeline_run.paths.predictions_prod)
    np.testing.assert_allclose(
        written[config.PROBABILITY_COLUMN], original[config.PROBABILITY_COLUMN], rtol=0, atol=TOLERANCE
    )
    artifacts = {item.path for item in client.list_artifacts(spark_run.info.run_id, "data")}
    assert artifacts == {"data/predictions_prod.parquet", "data/rejected_prod.parquet"}


def replicated(source, rows: int, target) -> None:
    """``rows`` rows of ``source`` repeated with unique shot ids (a repeated id is rejected),
    written chunk by chunk (the test never holds them all)."""
    table = pq.read_table(source)
    table = table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")])
    with pq.ParquetWriter(target, table.schema) as writer:
        for start in range(0, rows, 1 << 20):
            positions = np.arange(start, min(start + (1 << 20), rows))
            chunk = table.take(pa.array(positions % table.num_rows))
            chunk = chunk.set_column(chunk.schema.get_field_index("shot_id"), "shot_id", pa.array(positions))
            writer.write_table(chunk)


@pytest.mark.e2e
def test_a_tiny_driver_heap_still_scores_a_file_whose_output_would_not_fit_it(pipeline_run, tmp_path):
    """Nothing proportional to the rows reaches the driver: 6 M rows score in a 480 MB heap.

    The predictions alone take more than the whole heap as Arrow columns; collecting them to
    the driver (the engine's previous design) ran this heap out of memory at 1 M rows.
    """
    require_java()
    big, rows, heap = tmp_path / "prod_6m.parquet", 6_000_000, 480 * 2**20
    replicated(pipeline_run.paths.raw_file("prod"), rows, big)
    target = outputs(tmp_path / "out")
    # A process of its own: a session already open in this one would be reused with its own heap.
    script = (
        "import json, mlflow\n"
        "from kobe_mlops import config\n"
        "from kobe_mlops.deployment import spark_scoring\n"
        f"mlflow.set_tracking_uri({pipeline_run.tracking_uri!r})\n"
        f"result = spark_scoring.score_in_new_session({str(big)!r}, config.CHAMPION_URI, 'local[2]',\n"
        "    {'spark.driver.memory': '480m'}, outputs=("
        f"{str(target.predictions)!r}, {str(target.rejected)!r}))\n"
        "print(json.dumps(result.counts))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=pipeline_run.env(), capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f'"rows_scored": {rows}' in result.stdout
    parts = sorted(target.predictions.iterdir())
    assert sum(pq.ParquetFile(part).metadata.num_rows for part in parts) == rows
    sample = pq.ParquetFile(parts[0]).read_row_group(0)
    assert sample.nbytes / sample.num_rows * rows > heap  # the output, in memory, is bigger than the heap


def test_workers_run_this_interpreter_locally(monkeypatch):
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3")  # a stale value: no pandas there
    assert spark_scoring.worker_python("local[*]") == sys.executable
    # On a cluster the executors' interpreter may live elsewhere: the user's choice wins there.
    assert spark_scoring.worker_python("spark://cluster:7077") == "/usr/bin/python3"
    monkeypatch.delenv("PYSPARK_PYTHON")
    assert spark_scoring.worker_python("spark://cluster:7077") == sys.executable


def test_local_sessions_stay_on_loopback_with_large_arrow_batches():
    local = spark_scoring.session_conf("local[2]")
    assert local["spark.driver.bindAddress"] == "127.0.0.1" and local["spark.ui.enabled"] == "false"
    assert int(local["spark.sql.execution.arrow.maxRecordsPerBatch"]) > 10_000  # Spark's default
    assert "spark.driver.bindAddress" not in spark_scoring.session_conf("spark://cluster:7077")
    assert "-XX:+ExitOnOutOfMemoryError" in local["spark.driver.extraJavaOptions"]


def test_unknown_engine_names_the_choices():
    with pytest.raises(ValueError, match="choose from pandas, spark"):
        apply_with_engine("prod.parquet", config.CHAMPION_URI, engine="dask")
