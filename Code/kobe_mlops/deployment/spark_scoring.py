"""Batch scoring on Spark: the pandas engine's contract, model and outputs, spread over executors.

The pandas engine (:mod:`kobe_mlops.deployment.application`) reads a whole production file
into one process. This engine reads it with Spark, which splits it into partitions that
executors process in parallel, on one machine (``local[*]``) or on a cluster (any master URL):

1. **validate** each partition with the data contract's own ``split_valid_rows``
   (``mapInPandas``): every row gets its rejection reason, or none, and the contract's types;
2. **score** the valid rows with ``mlflow.pyfunc.spark_udf``: the registered model is loaded
   in each Python worker and fed Arrow batches of ``ARROW_BATCH_ROWS`` rows;
3. **collect** predictions and rejected rows to the driver through Arrow, in file order, as
   the same :class:`ApplicationResult` the pandas engine returns, so the application step
   writes the same files and logs the same metrics whichever engine ran.

Step 3 is the trade-off: the driver must hold the outputs (ids, features and scores, a
fraction of the raw input's columns). For files beyond that, use :func:`score` and write its
Spark DataFrames from the executors (``scoring.predictions.write.parquet(...)``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import (
    REASON_COLUMN,
    DataContractError,
    feature_dtypes,
    require_columns,
    split_valid_rows,
)
from kobe_mlops.deployment.application import ApplicationResult

try:
    from pyspark import StorageLevel
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ModuleNotFoundError as missing:  # Spark is an optional extra, not in the default install
    raise ModuleNotFoundError(
        "The Spark engine needs the 'scale' extra: .venv/bin/pip install -e '.[scale]'"
    ) from missing

DEFAULT_MASTER = config.DEFAULT_SPARK_MASTER
APP_NAME = "kobe-mlops-aplicacao"
# Rows per Arrow batch between the JVM and the Python workers (Spark's default is 10,000).
# Each batch costs one model call, whose fixed overhead (contract check, PyCaret pipeline)
# dominates at 10,000 rows; bench/engines.py measures the effect (--arrow-batch-rows).
ARROW_BATCH_ROWS = 500_000
# Local mode runs every task inside the driver's JVM, which also caches the checked rows and
# receives every output batch: give it half the machine's memory (at least 4 GiB).
LOCAL_DRIVER_MEMORY_SHARE = 0.5
LOCAL_DRIVER_MEMORY_MIN_GIB = 4


def local_driver_memory() -> str:
    """``spark.driver.memory`` for local mode, from this machine's physical memory."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return f"{LOCAL_DRIVER_MEMORY_MIN_GIB}g"
    return f"{max(LOCAL_DRIVER_MEMORY_MIN_GIB, int(physical * LOCAL_DRIVER_MEMORY_SHARE / 2**30))}g"


_ROW = "__kobe_row"  # the row's position in the input file, to return outputs in file order
_TYPED_PREFIX = "__kobe_typed_"  # a feature as the contract cast it (valid rows only)
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")  # pandas' unnamed index, stored as a column


def _typed(name: str) -> str:
    return _TYPED_PREFIX + name


def is_local_master(master: str) -> bool:
    return master.startswith("local")


def worker_python(master: str) -> str:
    """The interpreter Spark's Python workers run: they must import pandas, mlflow and this package.

    Locally that is always this interpreter (a stale ``PYSPARK_PYTHON`` would fail with
    ``No module named 'pandas'``). On a cluster the executors' path may differ, so a
    ``PYSPARK_PYTHON`` set by the user wins there.
    """
    if not is_local_master(master) and os.environ.get("PYSPARK_PYTHON"):
        return os.environ["PYSPARK_PYTHON"]
    return sys.executable


def session_conf(master: str) -> dict[str, str]:
    """The Spark settings this engine relies on; callers may override any of them."""
    conf = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Fail loudly instead of silently falling back to row-by-row pickling.
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
        # The outputs come back to the driver as Arrow batches; the default 1g cap stops at a few
        # million rows.
        "spark.driver.maxResultSize": "0",
    }
    if is_local_master(master):
        conf.update(
            {
                "spark.driver.memory": local_driver_memory(),
                # A JVM out of heap would leave the job waiting forever on a dead result thread:
                # exit instead, so the step fails with an error.
                "spark.driver.extraJavaOptions": "-XX:+ExitOnOutOfMemoryError",
                # Servers bind to loopback: no driver port and no web UI on the network.
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.driver.host": "127.0.0.1",
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
            }
        )
    return conf


def build_session(master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session on ``master`` (``local[*]``: every core of this machine)."""
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise RuntimeError("Spark needs Java 17: install a JDK (Debian: openjdk-17-jre-headless) or set JAVA_HOME.")
    # Read when the SparkContext starts: the workers it launches run this interpreter.
    os.environ["PYSPARK_PYTHON"] = worker_python(master)
    builder = SparkSession.builder.master(master).appName(APP_NAME)
    for key, value in {**session_conf(master), **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def spark_session(master: str = DEFAULT_MASTER, conf: dict[str, str] | None = None) -> Iterator[SparkSession]:
    """A session that is stopped on exit, also on failure (its JVM holds gigabytes)."""
    spark = build_session(master, conf)
    try:
        yield spark
    finally:
        try:
            spark.stop()
        except Exception:  # the JVM is already gone (it exits when out of memory): nothing to stop
            pass


class SparkDriverError(RuntimeError):
    """Spark's driver JVM died while scoring (in practice: out of memory)."""


def _driver_alive(spark: SparkSession) -> bool:
    try:
        spark.sparkContext._jvm.java.lang.System.currentTimeMillis()
    except Exception:
        return False
    return True


def _pandas_index_columns(path: str) -> list[str]:
    """Columns that pandas reads back as the index (and so never reach the pandas engine's outputs)."""
    import pyarrow.parquet as pq

    if "://" in path or not Path(path).is_file():
        return []
    metadata = pq.read_schema(path).pandas_metadata or {}
    return [name for name in metadata.get("index_columns", []) if isinstance(name, str)]


def read_production(spark: SparkSession, path: str | os.PathLike) -> DataFrame:
    """The production parquet (a file or a folder of part files) with each row's position.

    Fails with the same :class:`DataContractError` messages as the pandas engine's ``read_table``.
    """
    path = str(path)
    local = "://" not in path
    if local and not Path(path).exists():
        raise DataContractError(f"{path}: file not found.")
    if local and Path(path).is_file() and Path(path).stat().st_size == 0:
        raise DataContractError(f"{path}: file is empty (0 bytes).")
    try:
        frame = spark.read.parquet(path)
    except Exception as exc:  # Spark wraps corrupt or non-parquet input in several error types
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataContractError(f"{path}: not a readable parquet file ({detail}).") from None
    index_columns = [c for c in frame.columns if _PANDAS_INDEX.match(c)] + _pandas_index_columns(path)
    frame = frame.drop(*index_columns)
    require_columns(pd.DataFrame(columns=frame.columns), config.FEATURES, path)
    if not frame.head(1):
        raise DataContractError(f"{path}: has no rows.")
    return frame.withColumn(_ROW, F.monotonically_increasing_id())


def _spark_type(dtype: str) -> T.DataType:
    return T.LongType() if dtype == "int64" else T.DoubleType()


def _contract_columns(frame: DataFrame) -> list[str]:
    """The columns the contract checks: the features, and the target when the file has it."""
    return config.FEATURES + ([config.TARGET] if config.TARGET in frame.columns else [])


def validate(frame: DataFrame, source: str = "input", keep: list[str] | None = None) -> DataFrame:
    """For every row of ``frame``: the ``keep`` columns, its ``rejection_reason`` (null when
    the row is valid) and, for valid rows, the features and target as the contract cast them.

    The check is the contract's own :func:`split_valid_rows`, run on each Arrow batch of
    each partition: no rule is written twice. Only the checked and kept columns travel to
    the Python workers and back.
    """
    keep = list(keep or [])
    checked = _contract_columns(frame)
    typed = {**feature_dtypes(), **({config.TARGET: "float64"} if config.TARGET in checked else {})}
    schema = T.StructType(
        [frame.schema[name] for name in keep]
        + [T.StructField(REASON_COLUMN, T.StringType())]
        + [T.StructField(_typed(name), _spark_type(dtype)) for name, dtype in typed.items()]
    )

    def check(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            valid, rejected = split_valid_rows(batch[checked], source)
            out = batch[keep].copy()
            out[REASON_COLUMN] = rejected[REASON_COLUMN].reindex(batch.index)
            for name, dtype in typed.items():
                # Nullable types: a rejected row has no contract-typed value.
                out[_typed(name)] = valid[name].reindex(batch.index).astype("Int64" if dtype == "int64" else "float64")
            yield out

    return frame.select(*dict.fromkeys(keep + checked)).mapInPandas(check, schema)


@dataclass
class SparkScoring:
    """The lazy Spark outputs of one file: nothing runs until they are written or collected."""

    source: str
    checked: DataFrame  # persisted: both outputs read it, so the contract check runs once
    predictions: DataFrame  # the pandas engine's prediction columns, plus the row position
    rejected: DataFrame  # the file's own columns and rejection_reason, plus the row position

    def to_result(self) -> ApplicationResult:
        """Collect both outputs to the driver, in file order, as the pandas engine's result."""
        try:
            predictions = _in_file_order(self.predictions.toPandas())
            rejected = _in_file_order(self.rejected.toPandas())
            expected = self.checked.filter(F.col(REASON_COLUMN).isNotNull()).count()
        finally:
            self.checked.unpersist()
        if len(rejected) != expected:  # the file's rows are read twice: it must not change between
            raise DataContractError(
                f"{self.source}: {expected} rows were rejected but {len(rejected)} "
                "could be read back; did the file change while it was scored?"
            )
        return ApplicationResult(self.source, predictions, rejected)


def _in_file_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(_ROW, kind="stable").drop(columns=_ROW).reset_index(drop=True)


def _row_groups(path: str) -> int:
    """Row groups of a local parquet file (Spark's unit of parallel reading); large when unknown."""
    import pyarrow.parquet as pq

    if "://" in path or not Path(path).is_file():
        return sys.maxsize
    return pq.ParquetFile(path).num_row_groups


def score(
    spark: SparkSession, path: str | os.PathLike, model_uri: str = config.CHAMPION_URI, partitions: int | None = None
) -> SparkScoring:
    """Validate and score the production parquet at ``path`` with the model at ``model_uri``.

    Spark reads a parquet file in parallel by row groups. ``partitions`` spreads the checked
    columns over that many partitions first (a shuffle of a few numeric columns); by default
    that happens only when the file has fewer row groups than Spark has cores.
    """
    import mlflow.pyfunc

    source = str(path)
    original = read_production(spark, path)
    ids = [c for c in config.ID_COLUMNS if c in original.columns]
    narrow = original.select(_ROW, *ids, *_contract_columns(original))
    wanted = partitions or spark.sparkContext.defaultParallelism
    if partitions or _row_groups(source) < wanted:
        # Hash on the row position: deterministic, so a retried task sees the same rows.
        narrow = narrow.repartition(wanted, _ROW)
    checked = validate(narrow, source, keep=[_ROW, *ids]).persist(StorageLevel.MEMORY_AND_DISK)

    columns = [F.col(_ROW), *map(F.col, ids), *(F.col(_typed(n)).alias(n) for n in config.FEATURES)]
    if config.TARGET in original.columns:
        columns.append(F.col(_typed(config.TARGET)).alias(config.TARGET))
    valid = checked.filter(F.col(REASON_COLUMN).isNull()).select(*columns)
    result_type = f"{config.PROBABILITY_COLUMN} double, {config.PREDICTION_COLUMN} long"
    model = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result_type, env_manager="local")
    scores = model(F.struct(*config.FEATURES))
    predictions = valid.select(
        _ROW,
        *ids,
        *config.FEATURES,
        scores[config.PROBABILITY_COLUMN].alias(config.PROBABILITY_COLUMN),
        scores[config.PREDICTION_COLUMN].alias(config.PREDICTION_COLUMN),
        *([config.TARGET] if config.TARGET in original.columns else []),
    )
    # Rejected rows keep every column of the file: join their reasons back on the row position.
    # Spark broadcasts the reasons when they are few (the usual case), so the file is not shuffled.
    reasons = checked.filter(F.col(REASON_COLUMN).isNotNull()).select(_ROW, REASON_COLUMN)
    rejected = original.join(reasons, on=_ROW, how="inner")
    rejected = rejected.select(_ROW, *[c for c in original.columns if c != _ROW], REASON_COLUMN)
    return SparkScoring(source, checked, predictions, rejected)


def apply_to_file(
    path: str | os.PathLike,
    model_uri: str = config.CHAMPION_URI,
    master: str = DEFAULT_MASTER,
    conf: dict[str, str] | None = None,
) -> ApplicationResult:
    """The Spark twin of :func:`kobe_mlops.deployment.application.apply_to_file`."""
    with spark_session(master, conf) as spark:
        memory = spark.sparkContext.getConf().get("spark.driver.memory", "default")
        try:
            return score(spark, path, model_uri).to_result()
        except DataContractError:
            raise
        except Exception as exc:
            if _driver_alive(spark):
                raise
            raise SparkDriverError(
                f"{path}: Spark's driver JVM stopped while scoring ({type(exc).__name__}), most likely out of "
                f"memory (spark.driver.memory={memory}): the outputs are collected to the driver. Give it "
                "more memory, or use spark_scoring.score() and write its DataFrames from the executors."
            ) from None
