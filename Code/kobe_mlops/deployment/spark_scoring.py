"""Batch scoring on Spark: the pandas engine's batch function, outputs and figures, spread over executors.

Each partition runs :func:`~kobe_mlops.deployment.application.score_batch` (``mapInArrow``), writes
a part file and returns only its rejected positions and observers' state: nothing proportional to
the rows reaches the driver, so on a cluster the outputs must be on shared storage.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import REASON_COLUMN, DataContractError, readable_detail, require_columns
from kobe_mlops.deployment.application import (
    NO_STAMP,
    PANDAS_INDEX,
    AppliedFile,
    BatchLayout,
    ProductionFile,
    Stamp,
    embedded_model,
    pandas_index_columns,
    score_batch,
)
from kobe_mlops.deployment.batches import Observers, RowCounts, ScoredBatch
from kobe_mlops.deployment.outputs import OutputPaths, remove, staged_outputs
from kobe_mlops.io import staging_path

try:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema
except ModuleNotFoundError as missing:  # Spark is an optional extra, not in the default install
    raise ModuleNotFoundError(
        "The Spark engine needs the 'scale' extra: .venv/bin/pip install -e '.[scale]'"
    ) from missing

# Rows per Arrow batch to the Python workers (Spark's default: 10,000): each is one model call,
# whose fixed cost dominates at 10,000 rows (bench/engines.py --arrow-batch-rows).
ARROW_BATCH_ROWS = 500_000
# Local mode runs every task in the driver's JVM; it holds batches in flight, never the outputs.
LOCAL_DRIVER_MEMORY = "2g"
# Below this size a file with fewer row groups than cores is not spread by a shuffle: it costs more than it brings.
SPREAD_MIN_ROWS = 4 * ARROW_BATCH_ROWS

_ROW = "__kobe_row"  # the row's position in the input (Spark's partition order), to join and sort
_STATE = "__kobe_state"  # a partition's pickled observers
_PARTITION = "__kobe_partition"
_PART_NAME = "part-{:05d}.parquet"
_OUT_SCHEMA = f"`{_ROW}` long, `{REASON_COLUMN}` string, `{_PARTITION}` long, `{_STATE}` binary"


def worker_python(master: str) -> str:
    """Locally always this interpreter (a stale ``PYSPARK_PYTHON`` has no pandas); on a cluster the user's."""
    if not master.startswith("local") and os.environ.get("PYSPARK_PYTHON"):
        return os.environ["PYSPARK_PYTHON"]
    return sys.executable


def session_conf(master: str) -> dict[str, str]:
    """The Spark settings this engine relies on; callers may override any of them."""
    conf = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Fail loudly instead of silently falling back to row-by-row pickling.
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
    }
    if master.startswith("local"):
        conf |= {
            "spark.driver.memory": LOCAL_DRIVER_MEMORY,
            # A JVM out of heap would leave the job waiting forever on a dead result thread:
            # exit instead, so the step fails with an error.
            "spark.driver.extraJavaOptions": "-XX:+ExitOnOutOfMemoryError",
            # Servers bind to loopback: no driver port and no web UI on the network.
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
        }
    return conf


@contextmanager
def spark_session(
    master: str = config.DEFAULT_SPARK_MASTER, conf: dict[str, str] | None = None
) -> Iterator[SparkSession]:
    """A session on ``master`` (``local[*]``: every core here), stopped on exit (its JVM holds gigabytes)."""
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise RuntimeError("Spark needs Java 17: install a JDK (Debian: openjdk-17-jre-headless) or set JAVA_HOME.")
    os.environ["PYSPARK_PYTHON"] = worker_python(master)  # read when the SparkContext starts its workers
    settings = {**session_conf(master), **(conf or {})}
    spark = SparkSession.builder.master(master).appName("kobe-mlops-aplicacao").config(map=settings).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        with contextlib.suppress(Exception):  # the JVM may be gone already (it exits when out of memory)
            spark.stop()


class SparkDriverError(RuntimeError):
    """Spark's driver JVM died while scoring (in practice: out of memory)."""


def read_production(spark: SparkSession, path: str, local: ProductionFile | None = None) -> DataFrame:
    """The production parquet (a file or a folder of part files) with each row's position; refused with
    the pandas engine's messages."""
    try:
        frame = spark.read.parquet(path)
    except Exception as exc:  # Spark wraps corrupt or non-parquet input in several error types
        raise DataContractError(f"{path}: not a readable parquet file ({readable_detail(exc)}).") from None
    index_columns = {c for c in frame.columns if PANDAS_INDEX.match(c)}
    if local is not None:
        index_columns |= pandas_index_columns(local.parquet.schema_arrow)
    frame = frame.drop(*index_columns)
    if not frame.head(1):
        raise DataContractError(f"{path}: has no rows.")
    require_columns(pd.DataFrame(columns=frame.columns), config.FEATURES, path)
    return frame.withColumn(_ROW, F.monotonically_increasing_id())


@dataclass(frozen=True)
class _Task:
    """What every partition needs (pickled to the executors with the function)."""

    layout: BatchLayout
    model_archive: str  # MLflow's SparkModelCache name for the registered model
    predictions_dir: str  # where the part files go; empty: count and fold only
    observers: bytes  # pickled Observers: each partition starts from a fresh copy


def _repeated_ids(frame: DataFrame, local: ProductionFile | None) -> dict | None:
    """:meth:`ProductionFile.repeated_ids` by an aggregate the driver collects (skipped when a local
    file's ids increase)."""
    if "shot_id" not in frame.columns:
        return None
    if local is not None and local.ids_increase():
        return {}
    number = frame.select(F.col("shot_id").cast("double").alias("id"))
    whole = number.where(F.col("id").isNotNull() & ~F.isnan("id") & (F.col("id") == F.floor("id")))
    return {row["id"]: row["count"] for row in whole.groupBy("id").count().where("count > 1").collect()}


def _out_batch(rows=None, reasons=(), partition: int | None = None, observers: Observers | None = None):
    """One batch of the scoring pass's output: rejected rows' positions and reasons, or a partition's state."""
    if observers is not None:
        rows, reasons = pa.nulls(1, pa.int64()), [None]
    state = pickle.dumps(observers) if observers is not None else None
    return pa.RecordBatch.from_arrays(
        [
            rows,
            pa.array(list(reasons), pa.string()),
            pa.array([partition] * len(rows), pa.int64()),
            pa.array([state] * len(rows), pa.binary()),
        ],
        names=[_ROW, REASON_COLUMN, _PARTITION, _STATE],
    )


def _score_partition(task: _Task, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition: contract, model, part file, observers; yields rejected positions, then the state."""
    from mlflow.pyfunc.spark_model_cache import SparkModelCache
    from pyspark import TaskContext

    partition = TaskContext.get().partitionId()
    model = embedded_model(SparkModelCache.get_or_load(task.model_archive)[0])  # loaded once per Python worker
    observers: Observers = pickle.loads(task.observers)
    target = Path(task.predictions_dir) / _PART_NAME.format(partition) if task.predictions_dir else None
    staged = staging_path(target) if target else None  # a failed attempt's: removed by _tidy or discarded
    writer = None
    seen = 0  # rows of the partition before this batch
    try:
        for batch in batches:
            checked = score_batch(batch, model, task.layout)
            if staged is not None and checked.predictions.num_rows:
                writer = writer or task.layout.predictions_writer(staged)
                writer.write_table(checked.predictions)
            observers.update(checked)  # its scored rows, as the pandas engine folds them
            if len(checked.rejected_positions):
                if _ROW in batch.schema.names:  # carried through a shuffle
                    rows = batch.column(_ROW).take(pa.array(checked.rejected_positions))
                else:  # the scan's own partition: monotonically_increasing_id is (partition << 33) + row number
                    rows = pa.array((partition << 33) + seen + checked.rejected_positions)
                yield _out_batch(rows, checked.reasons)
            seen += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        os.replace(staged, target)  # a retried task overwrites its part: no duplicate rows
    yield _out_batch(partition=partition, observers=observers)


def _fold_rejected(task: _Task, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition of the rejected rows, folded into a fresh copy of the observers."""
    from pyspark import TaskContext

    observers: Observers = pickle.loads(task.observers)
    no_predictions = task.layout.predictions_schema.empty_table()
    for batch in batches:
        observers.update(ScoredBatch(no_predictions, pa.Table.from_batches([batch])))
    yield _out_batch(partition=TaskContext.get().partitionId(), observers=observers)


def _merge_states(template: Observers, *passes: list) -> Observers:
    """Each pass's partition states merged on the driver in partition order (float sums repeat)."""
    merged = pickle.loads(pickle.dumps(template))
    for states in passes:
        for row in sorted(states, key=lambda row: row[_PARTITION]):
            merged.merge(pickle.loads(row[_STATE]))
    return merged


def _write_empty(schema: pa.Schema, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(schema.empty_table(), folder / _PART_NAME.format(0))


def _tidy(folder: Path) -> None:
    """Leave only part files: Spark's markers and a failed attempt's hidden files go."""
    for path in folder.iterdir():
        if path.name.startswith((".", "_")):
            remove(path)


def score(
    spark: SparkSession,
    path: str | os.PathLike,
    model_uri: str = config.CHAMPION_URI,
    outputs: OutputPaths | Sequence[Path] | None = None,
    observers: Sequence = (),
    partitions: int | None = None,
    stamp: Stamp = NO_STAMP,
) -> AppliedFile:
    """Validate and score the production parquet at ``path`` with the model at ``model_uri`` on ``spark``.

    ``outputs`` (folders of part files), ``observers``: as in :func:`.application.apply_to_file`.
    ``partitions`` spreads the rows over that many partitions first (a range shuffle keeping file
    order); by default only a local file of :data:`SPREAD_MIN_ROWS` rows or more with fewer row groups
    than Spark has cores is spread.
    """
    import mlflow
    from mlflow.pyfunc.spark_model_cache import SparkModelCache

    source = str(path)
    # A local file is opened as the pandas engine opens it (its checks, its messages); Spark alone
    # reads a folder of part files or a remote path.
    local = None if "://" in source or Path(source).is_dir() else ProductionFile(source)
    original = read_production(spark, source, local)
    schema = to_arrow_schema(original.drop(_ROW).schema)
    gaps = local.layout.nullable_integers if local is not None else ()
    layout = BatchLayout.of_schema(schema, source, gaps, stamp)
    layout = replace(layout, repeated_ids=_repeated_ids(original, local))  # a repeat may sit in another partition
    wanted = partitions or spark.sparkContext.defaultParallelism
    # Only the needed columns cross to Python; the row position only when a shuffle moves rows.
    narrow = original.select(*layout.read_columns)
    spread = local is not None and local.parquet.num_row_groups < wanted and local.rows >= SPREAD_MIN_ROWS
    if partitions or spread:
        narrow = original.select(_ROW, *layout.read_columns)
        narrow = narrow.repartitionByRange(wanted, _ROW).sortWithinPartitions(_ROW)

    template = Observers([RowCounts(), *observers])
    targets = OutputPaths(*map(Path, outputs)) if outputs is not None else None
    with (
        tempfile.TemporaryDirectory(prefix="kobe-spark-model-") as model_dir,
        # Through a small staging folder: the scoring runs once and the driver collects only the states.
        tempfile.TemporaryDirectory(prefix="kobe-spark-meta-", ignore_cleanup_errors=True) as meta,
        staged_outputs(targets) as staged,
    ):
        local_model = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=model_dir)
        archive = SparkModelCache.add_local_model(spark, local_model)
        predictions_dir = staged.predictions if staged is not None else None
        if predictions_dir is not None:
            predictions_dir.mkdir()
        task = _Task(layout, archive, str(predictions_dir or ""), pickle.dumps(template))
        checked = narrow.mapInArrow(partial(_score_partition, task), _OUT_SCHEMA)
        try:
            checked.write.parquet(f"{meta}/checked")
        except Exception:
            if local is not None:
                local.check_row_groups()  # names an unreadable row group, if that is what failed
            raise
        checked = spark.read.parquet(f"{meta}/checked")
        states = checked.filter(F.col(_STATE).isNotNull()).select(_PARTITION, _STATE).collect()
        reasons = checked.filter(F.col(_ROW).isNotNull()).select(_ROW, REASON_COLUMN)
        rejected_states = []
        if reasons.count():
            # Spark broadcasts the reasons when they are few (the usual case): the file is not shuffled.
            rejected = original.join(reasons, on=_ROW).orderBy(_ROW).select(*schema.names, REASON_COLUMN)
            if staged is not None:
                rejected.write.parquet(str(staged.rejected))
                _tidy(staged.rejected)
                rejected = spark.read.parquet(str(staged.rejected))
            folded = rejected.mapInArrow(partial(_fold_rejected, task), _OUT_SCHEMA)
            rejected_states = folded.select(_PARTITION, _STATE).collect()
        elif staged is not None:
            _write_empty(pa.schema([*schema, pa.field(REASON_COLUMN, pa.string())]), staged.rejected)
        merged = _merge_states(template, states, rejected_states)
        if predictions_dir is not None:
            _tidy(predictions_dir)
            if not any(predictions_dir.iterdir()):
                _write_empty(layout.predictions_schema, predictions_dir)
    counts = merged.members[0].result()
    return AppliedFile(source, counts, merged.members[1:], targets, "spark")


def score_in_new_session(
    path: str | os.PathLike,
    model_uri: str = config.CHAMPION_URI,
    master: str = config.DEFAULT_SPARK_MASTER,
    conf: dict[str, str] | None = None,
    outputs: OutputPaths | Sequence[Path] | None = None,
    observers: Sequence = (),
    stamp: Stamp = NO_STAMP,
) -> AppliedFile:
    """:func:`score` in a session of its own on ``master``; a driver JVM that died says so."""
    with spark_session(master, conf) as spark:
        memory = spark.sparkContext.getConf().get("spark.driver.memory", "default")
        try:
            return score(spark, path, model_uri, outputs, observers, stamp=stamp)
        except DataContractError:
            raise
        except Exception as exc:
            try:
                spark.sparkContext.statusTracker().getActiveJobsIds()  # a call into the JVM: is it alive?
            except Exception:
                pass
            else:
                raise
            raise SparkDriverError(
                f"{path}: Spark's driver JVM stopped while scoring ({type(exc).__name__}), most likely out of "
                f"memory (spark.driver.memory={memory}). The driver holds no output rows; give it more memory "
                "(--spark-conf spark.driver.memory=...) or fewer rows per Arrow batch "
                "(spark.sql.execution.arrow.maxRecordsPerBatch)."
            ) from None
