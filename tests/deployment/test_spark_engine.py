"""The Spark engine gives the pandas engine's result: same rows, reasons, counts and probabilities.

One Spark session serves the whole module (starting one takes seconds); the model is the
session pipeline's champion.
"""

import re
import shutil
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import run_pipeline
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import REASON_COLUMN, DataContractError
from kobe_mlops.deployment.application import apply_to_file
from kobe_mlops.deployment.engines import apply_with_engine

pytest.importorskip("pyspark", reason="Spark engine not installed: .venv/bin/pip install -e '.[scale]'")
from kobe_mlops.deployment import spark_scoring  # noqa: E402  (needs pyspark)

PROBABILITY_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def spark():
    if not shutil.which("java"):
        pytest.skip("Spark needs Java 17 and `java` is not on the PATH (Debian: openjdk-17-jre-headless)")
    with spark_scoring.spark_session("local[2]") as session:
        yield session


def both_engines(spark, path, partitions=None):
    pandas_result = apply_to_file(path, mlflow.pyfunc.load_model(config.CHAMPION_URI))
    spark_result = spark_scoring.score(spark, path, config.CHAMPION_URI, partitions=partitions).to_result()
    return pandas_result, spark_result


def assert_same_result(pandas_result, spark_result):
    assert spark_result.counts == pandas_result.counts
    expected, actual = pandas_result.predictions, spark_result.predictions
    assert list(actual.columns) == list(expected.columns)
    assert actual.dtypes.to_dict() == expected.dtypes.to_dict()
    np.testing.assert_allclose(
        actual[config.PROBABILITY_COLUMN], expected[config.PROBABILITY_COLUMN], rtol=0, atol=PROBABILITY_TOLERANCE
    )
    others = [c for c in expected.columns if c != config.PROBABILITY_COLUMN]
    pd.testing.assert_frame_equal(actual[others], expected[others])
    pd.testing.assert_frame_equal(spark_result.rejected, pandas_result.rejected)


def test_course_production_file_matches_the_pandas_engine(spark, tracking, pipeline_run):
    pandas_result, spark_result = both_engines(spark, pipeline_run.paths.raw_file("prod"))
    assert spark_result.counts["rows_scored"] == 6426
    assert_same_result(pandas_result, spark_result)
    assert spark_result.labelled_metrics() == pytest.approx(pandas_result.labelled_metrics(), abs=1e-9)


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


@pytest.fixture
def file_with_bad_rows(pipeline_run, tmp_path):
    """200 production rows, 8 of them broken, text in a numeric column, several row groups."""
    frame = pd.read_parquet(pipeline_run.paths.raw_file("prod")).head(200).reset_index(drop=True)
    frame["lat"] = frame["lat"].astype(str)  # a file whose latitudes were written as text
    frame["minutes_remaining"] = frame["minutes_remaining"].astype("float64")
    frame["period"] = frame["period"].astype("float64")
    for position, (column, value) in BAD_ROWS.items():
        frame.loc[position, column] = value
    path = tmp_path / "prod_with_bad_rows.parquet"
    frame.to_parquet(path, index=False, row_group_size=64)
    return path


def test_bad_rows_are_rejected_like_the_pandas_engine(spark, tracking, file_with_bad_rows):
    # Three partitions over four row groups: file order must survive the shuffle.
    pandas_result, spark_result = both_engines(spark, file_with_bad_rows, partitions=3)
    assert spark_result.counts == {
        "rows_input": 200,
        "rows_scored": 192,
        "rows_rejected": 8,
        "rows_labeled": pandas_result.counts["rows_labeled"],
    }
    assert_same_result(pandas_result, spark_result)
    assert "lat is not a number: not a latitude" in spark_result.rejected[REASON_COLUMN].iloc[0]
    assert spark_result.predictions[config.FEATURES].dtypes.to_dict() == {
        "lat": "float64",
        "lon": "float64",
        "minutes_remaining": "int64",
        "period": "int64",
        "playoffs": "int64",
        "shot_distance": "float64",
    }


def test_a_file_with_no_valid_row_scores_nothing(spark, tracking, pipeline_run, tmp_path):
    frame = pd.read_parquet(pipeline_run.paths.raw_file("prod")).head(20)
    frame["playoffs"] = 7
    path = tmp_path / "all_bad.parquet"
    frame.to_parquet(path, index=False)
    pandas_result, spark_result = both_engines(spark, path)
    assert spark_result.counts["rows_scored"] == 0 and spark_result.counts["rows_rejected"] == 20
    assert_same_result(pandas_result, spark_result)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "file not found"),
        ("empty", "file is empty"),
        ("not_parquet", "not a readable parquet file"),
        ("no_rows", "has no rows"),
        ("no_lat", "missing required column(s) 'lat'"),
    ],
)
def test_unusable_files_raise_the_contract_errors(spark, pipeline_run, tmp_path, case, message):
    path = tmp_path / f"{case}.parquet"
    production = pd.read_parquet(pipeline_run.paths.raw_file("prod"))
    if case == "empty":
        path.write_bytes(b"")
    elif case == "not_parquet":
        path.write_text("shot_id,lat\n1,33.9\n")
    elif case == "no_rows":
        production.head(0).to_parquet(path)
    elif case == "no_lat":
        production.drop(columns="lat").head(5).to_parquet(path)
    with pytest.raises(DataContractError, match=re.escape(message)):
        spark_scoring.score(spark, path)
    # The same wording as the pandas engine's read_table and require_columns.
    with pytest.raises(DataContractError, match=re.escape(message)):
        apply_to_file(path, model=None)


def test_spark_engine_through_run_all_logs_the_pandas_metrics(workspace_copy, pipeline_run):
    result = run_pipeline(workspace_copy.workspace, "--steps", "04", "--engine", "spark", "--spark-master", "local[2]")
    assert "04_aplicacao ... ok" in result.stdout
    client = mlflow.MlflowClient(workspace_copy.tracking_uri)
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    runs = client.search_runs(
        [experiment.experiment_id], "attributes.run_name = 'PipelineAplicacao'", order_by=["attributes.start_time ASC"]
    )
    pandas_run, spark_run = runs[0], runs[-1]
    assert (pandas_run.data.params["engine"], spark_run.data.params["engine"]) == ("pandas", "spark")
    for name in ["rows_input", "rows_scored", "rows_rejected", "rows_labeled"]:
        assert spark_run.data.metrics[name] == pandas_run.data.metrics[name]
    for name in ["log_loss", "f1_score", "mean_probability", "psi_shot_distance"]:
        assert spark_run.data.metrics[name] == pytest.approx(pandas_run.data.metrics[name], abs=1e-9)
    written = pd.read_parquet(workspace_copy.paths.predictions_prod)
    original = pd.read_parquet(pipeline_run.paths.predictions_prod)
    np.testing.assert_allclose(
        written[config.PROBABILITY_COLUMN], original[config.PROBABILITY_COLUMN], rtol=0, atol=PROBABILITY_TOLERANCE
    )


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
    assert int(local["spark.driver.memory"].rstrip("g")) >= spark_scoring.LOCAL_DRIVER_MEMORY_MIN_GIB
    assert "-XX:+ExitOnOutOfMemoryError" in local["spark.driver.extraJavaOptions"]


def test_a_driver_out_of_memory_fails_with_a_message_instead_of_hanging(pipeline_run, tmp_path):
    """Outputs are collected to the driver: too small a heap must end the step, not stall it."""
    if not shutil.which("java"):
        pytest.skip("Spark needs Java 17 and `java` is not on the PATH")
    production = pd.read_parquet(pipeline_run.paths.raw_file("prod"))
    big = tmp_path / "prod_1m.parquet"
    production.iloc[np.arange(1_000_000) % len(production)].to_parquet(big, index=False)
    # A process of its own: a session already open in this one would be reused with its own heap.
    script = (
        "import mlflow, sys\n"
        "from kobe_mlops import config\n"
        "from kobe_mlops.deployment import spark_scoring\n"
        f"mlflow.set_tracking_uri({pipeline_run.tracking_uri!r})\n"
        "try:\n"
        f"    spark_scoring.apply_to_file({str(big)!r}, config.CHAMPION_URI, 'local[2]',\n"
        "                                {'spark.driver.memory': '480m'})\n"
        "except spark_scoring.SparkDriverError as error:\n"
        "    print(error)\n"
        "    sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=pipeline_run.env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "driver JVM stopped while scoring" in result.stdout and "spark.driver.memory=480m" in result.stdout


def test_unknown_engine_names_the_choices():
    with pytest.raises(ValueError, match="choose from pandas, spark"):
        apply_with_engine("prod.parquet", config.CHAMPION_URI, engine="dask")
