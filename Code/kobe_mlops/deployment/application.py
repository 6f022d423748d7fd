"""Apply the champion to a production file: validate, score, account for every row, in batches.

``rows_input == rows_scored + rows_rejected`` always holds: a row that breaks the data contract goes
to the rejected output with its reason. :func:`apply_to_file` streams a parquet file in record
batches; :func:`score_frame` does the same for a few rows in memory.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import (
    REASON_COLUMN,
    DataContractError,
    broken_matrix_rows,
    feature_dtypes,
    id_rejections,
    readable_detail,
    require_columns,
    require_parquet_path,
    split_valid_rows,
)
from kobe_mlops.deployment.batches import Observers, RowCounts, ScoredBatch, float_values
from kobe_mlops.deployment.outputs import OutputPaths, staged_outputs
from kobe_mlops.modeling.shot_model import ShotMadeModel
from kobe_mlops.tracking import names

# Rows per record batch: one model call, and the unit of memory (~100 bytes a row, about seven
# batches in flight). On 10 M rows 65,536 was as fast as 262,144 and peaked 0.3 GiB lower.
BATCH_ROWS = 1 << 16
SCORED_AT_TYPE = pa.timestamp("us", tz="UTC")
PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")  # pandas' unnamed index, stored as a column
_QUEUE_DEPTH = 2  # batches read ahead and batches waiting to be written
MAX_WORKERS = 4  # batches scored at once (threads), each with its copy of the observers
ID_PASS_ROWS = 1 << 20  # rows per batch of the pass over the shot ids (one column: 8 MB)
SPAN_ROWS = 1 << 20  # rows of row groups one parquet reader covers (see ProductionFile.batches)


# --- In memory: a frame of a few rows ------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """The model version and time every scored row carries; the run id goes in the parquet metadata."""

    model_version: str = ""
    scored_at: datetime | None = None
    run_id: str = ""


NO_STAMP = Stamp()


@dataclass
class AppliedFile:
    """What every engine returns: counts, the observers after the last batch, where the outputs went
    (:func:`score_frame`: the outputs themselves)."""

    source: str
    counts: dict[str, int]
    observers: list = field(default_factory=list)
    outputs: OutputPaths | None = None
    engine: str = "pandas"
    predictions: pd.DataFrame | None = None
    rejected: pd.DataFrame | None = None

    def observer(self, kind: type):
        """The one observer of class ``kind``."""
        found = [observer for observer in self.observers if isinstance(observer, kind)]
        if len(found) != 1:
            raise LookupError(f"{len(found)} observers of type {kind.__name__}; expected one")
        return found[0]


def score_frame(frame: pd.DataFrame, model, source: str = "input", stamp: Stamp = NO_STAMP) -> AppliedFile:
    """Validate ``frame`` against the data contract and score its valid rows with ``model`` (pyfunc
    ``predict``); the result carries both outputs as DataFrames."""
    valid, rejected = split_valid_rows(frame, source)
    keep = [c for c in config.ID_COLUMNS if c in valid] + config.FEATURES
    predictions = valid[keep].copy()
    probability, prediction = _predict(model, valid[config.FEATURES])
    predictions[config.PROBABILITY_COLUMN] = probability
    predictions[config.PREDICTION_COLUMN] = prediction
    if config.TARGET in valid:
        predictions[config.TARGET] = valid[config.TARGET]
    predictions[names.MODEL_VERSION_COLUMN] = pd.Series(stamp.model_version or None, predictions.index, dtype=object)
    predictions[names.SCORED_AT_COLUMN] = pd.Series(stamp.scored_at, predictions.index, dtype="datetime64[us, UTC]")
    labelled = int(predictions[config.TARGET].notna().sum()) if config.TARGET in predictions else 0
    counts = RowCounts(len(predictions), len(rejected), labelled).result()
    predictions, rejected = predictions.reset_index(drop=True), rejected.reset_index(drop=True)
    return AppliedFile(source, counts, predictions=predictions, rejected=rejected)


# --- The model -----------------------------------------------------------------------------------


def embedded_model(model):
    """The pyfunc's own :class:`ShotMadeModel` when every input column is ``Any``: MLflow's check then
    walks each value (twenty times the model's cost) and the model runs the same contract itself."""
    from mlflow.exceptions import MlflowException
    from mlflow.types.schema import AnyType

    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names() or not all(isinstance(s.type, AnyType) for s in schema.inputs):
        return model
    try:
        python_model = model.unwrap_python_model()
    except MlflowException:  # not a Python model
        return model
    return _Unchecked(python_model) if isinstance(python_model, ShotMadeModel) else model


@dataclass
class _Unchecked:
    python_model: ShotMadeModel

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        return self.python_model.predict(None, features)

    def score_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` for rows the engine's contract check (the model's own) cleared: no second check."""
        probability = np.asarray(self.python_model.predict_probability(None, matrix), dtype="float64")
        return probability, (probability >= self.python_model.threshold).astype("int64")


def _predict(model, features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(probability float64, predicted label int64)`` of each row; no call for no rows."""
    if features.empty:
        return np.empty(0, dtype="float64"), np.empty(0, dtype="int64")
    scored = model.predict(features)
    probability, prediction = scored[config.PROBABILITY_COLUMN], scored[config.PREDICTION_COLUMN]
    return np.asarray(probability, dtype="float64"), np.asarray(prediction, dtype="int64")


# --- One batch: the contract, then the model ----------------------------------------------------


_NO_ROWS = pa.table({})  # a batch's rejected rows before they are read back


@dataclass(frozen=True)
class BatchLayout:
    """What every batch of one file shares (picklable, for Spark). ``nullable_integers``: integer
    columns with a gap somewhere, read as float64 in every batch as pandas reads the whole file."""

    source: str
    ids: tuple[str, ...]  # the file's id columns, in config.ID_COLUMNS order
    id_types: tuple[pa.DataType, ...]
    has_target: bool
    nullable_integers: frozenset[str] = frozenset()
    stamp: Stamp = NO_STAMP
    # The whole file's repeated shot ids and their counts (a repeat may span batches); None: each batch alone.
    repeated_ids: dict | None = field(default=None, compare=False, repr=False)
    # game_date strings found valid in an earlier batch: a file repeats its few thousand dates.
    valid_dates: set = field(default_factory=set, compare=False, repr=False)

    @property
    def read_columns(self) -> list[str]:
        """The columns a batch must carry: ids, features, target."""
        return [*self.ids, *config.FEATURES, *([config.TARGET] if self.has_target else [])]

    @property
    def predictions_schema(self) -> pa.Schema:
        types = {"int64": pa.int64(), "float64": pa.float64()}
        fields = [pa.field(name, kind) for name, kind in zip(self.ids, self.id_types, strict=True)]
        fields += [pa.field(name, types[dtype]) for name, dtype in feature_dtypes().items()]
        fields += [pa.field(config.PROBABILITY_COLUMN, pa.float64()), pa.field(config.PREDICTION_COLUMN, pa.int64())]
        if self.has_target:
            fields.append(pa.field(config.TARGET, pa.float64()))
        fields += [pa.field(names.MODEL_VERSION_COLUMN, pa.string()), pa.field(names.SCORED_AT_COLUMN, SCORED_AT_TYPE)]
        metadata = {names.RUN_ID_METADATA: self.stamp.run_id} if self.stamp.run_id else None
        return pa.schema(fields, metadata=metadata)

    def predictions_writer(self, path: str | Path) -> pq.ParquetWriter:
        """Dictionary-encodes all but the unique shot ids (those would cost a fifth of the writing)."""
        schema = self.predictions_schema
        return pq.ParquetWriter(path, schema, use_dictionary=[name for name in schema.names if name != "shot_id"])

    @classmethod
    def of_schema(
        cls, schema: pa.Schema, source: str, nullable_integers: Iterable[str] = (), stamp: Stamp = NO_STAMP
    ) -> BatchLayout:
        ids = tuple(name for name in config.ID_COLUMNS if name in schema.names)
        id_types = tuple(schema.field(name).type for name in ids)
        return cls(source, ids, id_types, config.TARGET in schema.names, frozenset(nullable_integers), stamp)


def _feature_matrix(columns: dict, rows: int) -> np.ndarray:
    """The features as a float64 matrix, column-major: the contract's check reads each column in order."""
    matrix = np.empty((rows, len(config.FEATURES)), dtype="float64", order="F")
    for i, name in enumerate(config.FEATURES):
        column = columns[name]
        if column.null_count:
            matrix[:, i] = float_values(column)
        else:  # numpy converts integers while it copies: one pass, no intermediate array
            matrix[:, i] = column.to_numpy()
    return matrix


def to_pandas(table: pa.Table, layout: BatchLayout) -> pd.DataFrame:
    """A batch as pandas reads it from the whole file (integer columns with gaps as float64)."""
    for name in layout.nullable_integers & set(table.column_names):
        if pa.types.is_integer(table.schema.field(name).type):
            table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(pa.float64()))
    return table.to_pandas()


def _joined(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Several checks' ``(positions, reasons)`` as one: a row's reasons joined in order."""
    found: dict[int, str] = {}
    for positions, reasons in parts:
        for row, reason in zip(positions.tolist(), reasons, strict=True):
            found[row] = f"{found[row]}; {reason}" if row in found else reason
    positions = np.array(sorted(found), dtype="int64")
    return positions, np.array([found[row] for row in positions.tolist()], dtype=object)


def score_batch(batch: pa.RecordBatch | pa.Table, model, layout: BatchLayout) -> ScoredBatch:
    """The data contract, then the model, on one batch (both engines'); rejected rows come back as
    positions and the reasons ``split_valid_rows`` would give."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    id_rejected = id_rejections_of(table.select(list(layout.ids)), layout.valid_dates, layout.repeated_ids)
    checked = [name for name in layout.read_columns if name not in layout.ids]  # the ids: above
    columns = {name: table.column(name) for name in checked}
    if all(pa.types.is_integer(c.type) or pa.types.is_floating(c.type) for c in columns.values()):
        matrix = _feature_matrix(columns, len(table))
        target = float_values(columns[config.TARGET]) if layout.has_target else None
        broken = broken_matrix_rows(matrix)
        if target is not None:
            broken |= ~np.isnan(target) & (target != 0) & (target != 1)
        positions = np.flatnonzero(broken)
        reasons = np.empty(0, dtype=object)
        if len(positions):  # the contract's own words for the few broken rows
            subset = to_pandas(table.select(checked).take(pa.array(positions)), layout)
            valid, rejected = split_valid_rows(subset, layout.source)
            if len(valid):  # the matrix check and the detailed one disagree: a contract bug
                raise AssertionError(f"{layout.source}: rows {positions[valid.index]} pass the detailed check only")
            reasons = rejected[REASON_COLUMN].to_numpy()
    else:  # text, booleans or other types in a feature: the contract's detailed check, whole batch
        valid, rejected = split_valid_rows(to_pandas(table.select(checked), layout), layout.source)
        positions = rejected.index.to_numpy(dtype="int64")
        reasons = rejected[REASON_COLUMN].to_numpy()
        matrix = np.full((len(table), len(config.FEATURES)), np.nan)
        matrix[valid.index] = valid[config.FEATURES].to_numpy(dtype="float64")
        target = np.full(len(table), np.nan) if layout.has_target else None
        if target is not None:
            target[valid.index] = valid[config.TARGET].to_numpy(dtype="float64")
    if len(id_rejected[0]):
        positions, reasons = _joined((positions, reasons), id_rejected)
    keep = np.ones(len(table), dtype=bool)
    keep[positions] = False
    kept = matrix[keep] if len(positions) else matrix
    target = target[keep] if target is not None and len(positions) else target
    typed = {name: kept[:, i].astype(dtype, copy=False) for i, (name, dtype) in enumerate(feature_dtypes().items())}
    if isinstance(model, _Unchecked) and len(kept):  # C order: the model's own matrix, same sums
        probability, prediction = model.score_matrix(np.ascontiguousarray(kept))
    else:
        probability, prediction = _predict(model, pd.DataFrame(typed))
    ids = [table.column(name) for name in layout.ids]
    arrays = [column.filter(pa.array(keep)) for column in ids] if len(positions) else ids
    arrays += [pa.array(values) for values in typed.values()]
    arrays += [pa.array(probability), pa.array(prediction)]
    if target is not None:
        arrays.append(pa.array(target, from_pandas=True))
    stamp = (layout.stamp.model_version or None, layout.stamp.scored_at)  # cast to the schema's types below
    arrays += [pa.repeat(pa.scalar(value), len(probability)) for value in stamp]
    schema = layout.predictions_schema
    arrays = [a.cast(kind) if a.type != kind else a for a, kind in zip(arrays, schema.types, strict=True)]
    predictions = pa.Table.from_arrays(arrays, schema=schema)
    # The figures read the features as float64: the matrix holds them.
    floats = {config.PROBABILITY_COLUMN: probability, **{name: kept[:, i] for i, name in enumerate(config.FEATURES)}}
    return ScoredBatch(predictions, _NO_ROWS, positions.astype("int64"), reasons, floats)


# --- The ids -------------------------------------------------------------------------------------


def id_rejections_of(table: pa.Table, valid_dates: set, repeats: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """``(positions, reasons)`` of the rows whose ids break the contract's ``ID_RULES`` (``repeats``: the
    whole file's repeated shot ids). Each distinct ``game_date`` is checked once, and not at all if in
    ``valid_dates`` (to which the text dates found valid are added)."""
    parts = []
    if "shot_id" in table.column_names:
        column = table.column("shot_id")
        ids = column.to_numpy() if pa.types.is_integer(column.type) and not column.null_count else None
        if ids is None or repeats or not np.all(ids[1:] > ids[:-1]):
            reasons = id_rejections(pd.DataFrame({"shot_id": column.to_pandas()}), repeats)
            parts.append((reasons.index.to_numpy(dtype="int64"), reasons.to_numpy(dtype=object)))
    if "game_date" in table.column_names:
        column = table.column("game_date").combine_chunks()
        if not (pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)) or column.null_count:
            distinct = pc.unique(column)
            cached = pa.types.is_string(column.type)
            if cached and valid_dates:
                distinct = distinct.filter(pc.invert(pc.is_in(distinct, pa.array(list(valid_dates), pa.string()))))
            reasons = id_rejections(pd.DataFrame({"game_date": distinct.to_pandas()}))
            bad = reasons.reindex(range(len(distinct) + 1)).to_numpy()  # the last: a date known valid
            if cached:
                valid_dates.update(distinct.filter(pa.array(pd.isna(bad[:-1]))).to_pylist())
            if len(reasons):
                which = pc.index_in(column, value_set=distinct, skip_nulls=False)
                which = pc.fill_null(which, len(distinct)).to_numpy()
                rows = np.flatnonzero(pd.notna(bad[which]))
                parts.append((rows, bad[which[rows]]))
    return _joined(*parts)


# --- One file, streamed -----------------------------------------------------------------------


def pandas_index_columns(schema: pa.Schema) -> set[str]:
    """Columns pandas reads back as the index (they never reach the outputs)."""
    named = (schema.pandas_metadata or {}).get("index_columns", [])
    return {name for name in named if isinstance(name, str)} | {n for n in schema.names if PANDAS_INDEX.match(n)}


class ProductionFile:
    """A production parquet file opened for streaming; opening runs ``read_table``'s checks and messages."""

    def __init__(self, path: str | Path, batch_rows: int = BATCH_ROWS, stamp: Stamp = NO_STAMP):
        self.path = Path(path)
        self.source = str(path)
        self.batch_rows = batch_rows
        require_parquet_path(self.path)
        try:
            self.parquet = pq.ParquetFile(self.path)
            schema = self.parquet.schema_arrow
        except Exception as exc:  # pyarrow raises several types for corrupt input
            raise DataContractError(f"{path}: not a readable parquet file ({readable_detail(exc)}).") from None
        if self.parquet.metadata.num_rows == 0:
            raise DataContractError(f"{path}: has no rows.")
        index = pandas_index_columns(schema)
        self.columns = [name for name in schema.names if name not in index]
        require_columns(pd.DataFrame(columns=self.columns), config.FEATURES, self.source)
        self.layout = BatchLayout.of_schema(schema, self.source, self._integers_with_gaps(schema), stamp)
        self.rejected_schema = pa.schema([*map(schema.field, self.columns), pa.field(REASON_COLUMN, pa.string())])
        self.rows = self.parquet.metadata.num_rows

    def _integers_with_gaps(self, schema: pa.Schema) -> set[str]:
        metadata = self.parquet.metadata
        return {
            name
            for i, name in enumerate(metadata.schema.names)
            if name in schema.names and pa.types.is_integer(schema.field(name).type)
            for group in range(metadata.num_row_groups)
            if getattr(metadata.row_group(group).column(i).statistics, "null_count", None)
        }

    def check_row_groups(self) -> None:
        """Read each column chunk in turn: the first unreadable one raises an error naming its rows."""
        first = 0
        for group in range(self.parquet.num_row_groups):
            rows = self.parquet.metadata.row_group(group).num_rows
            for column in self.columns:
                try:
                    self.parquet.read_row_group(group, columns=[column], use_pandas_metadata=False)
                except Exception as exc:
                    raise DataContractError(
                        f"{self.source}: row group {group} of {self.parquet.num_row_groups} (rows {first:,} to "
                        f"{first + rows - 1:,}) is not readable ({readable_detail(exc)}); no output was written."
                    ) from None
            first += rows

    def repeated_ids(self) -> dict | None:
        """The shot ids (whole numbers, as the contract reads them) the file carries more than once, and
        how often; None without shot ids. Increasing integer ids, the usual case, take no memory."""
        if "shot_id" not in self.layout.ids:
            return None
        if self.ids_increase():
            return {}
        ids = pa.Table.from_batches(list(self.batches(["shot_id"]))).column(0)  # 8 bytes a row
        number = pd.to_numeric(ids.to_pandas(), errors="coerce")
        counts = number[number == np.floor(number)].value_counts()
        return counts[counts > 1].to_dict()

    def ids_increase(self) -> bool:
        """Whether the shot ids are integers increasing through the file (none repeats): constant memory."""
        if not pa.types.is_integer(self.parquet.schema_arrow.field("shot_id").type):
            return False
        last = -np.inf
        for batch in self.batches(["shot_id"], ID_PASS_ROWS):
            if batch.column(0).null_count:
                return False
            ids = batch.column(0).to_numpy()
            if ids[0] <= last or not np.all(ids[1:] > ids[:-1]):
                return False
            last = ids[-1]
        return True

    def batches(self, columns: list[str] | None = None, batch_rows: int | None = None) -> Iterator[pa.RecordBatch]:
        """Batches of ``batch_rows`` rows in file order, whatever the row groups. A fresh reader takes
        over every :data:`SPAN_ROWS` rows: pyarrow's reader holds what it read until it is dropped."""
        size = batch_rows or self.batch_rows
        columns = columns or self.layout.read_columns
        pieces: list[pa.RecordBatch] = []
        held = 0  # rows read and not yet handed out
        for span in self._spans(max(size, SPAN_ROWS)):
            # One thread: the scoring threads use the cores, and decoding in parallel costs more CPU.
            reader = self.parquet.iter_batches(
                batch_size=size, row_groups=span, columns=columns, use_threads=False, use_pandas_metadata=False
            )
            try:
                for batch in reader:
                    pieces.append(batch)
                    held += batch.num_rows
                    while held >= size:
                        batch, pieces = _first_rows(pieces, size)
                        held -= size
                        yield batch
            except Exception:
                self.check_row_groups()  # names an unreadable row group, if that is what failed
                raise
        if held:
            yield _first_rows(pieces, held)[0]

    def _spans(self, rows: int) -> Iterator[list[int]]:
        """Consecutive row groups holding at least ``rows`` rows each (the last: what is left)."""
        metadata = self.parquet.metadata
        span, held = [], 0
        for group in range(metadata.num_row_groups):
            span.append(group)
            held += metadata.row_group(group).num_rows
            if held >= rows:
                yield span
                span, held = [], 0
        if span:
            yield span


def _first_rows(pieces: list[pa.RecordBatch], rows: int) -> tuple[pa.RecordBatch, list[pa.RecordBatch]]:
    """The first ``rows`` rows of consecutive batches as one batch, and the rest."""
    if pieces[0].num_rows == rows:
        return pieces[0], pieces[1:]
    table = pa.Table.from_batches(pieces)
    head = table.slice(0, rows).combine_chunks().to_batches()
    return head[0], table.slice(rows).to_batches()


class _WholeRows:
    """Every column of the batches with a rejected row: a second, forward-only reader in step with the first."""

    def __init__(self, production: ProductionFile):
        self.production = ProductionFile(production.path, production.batch_rows)
        self.number, self.reader = -1, self.production.batches(self.production.columns)

    def take(self, number: int, positions: np.ndarray, rows: int) -> pa.Table:
        while self.number < number:
            batch = next(self.reader)
            self.number += 1
        if batch.num_rows != rows:
            raise AssertionError(f"{self.production.source}: batch {number} does not line up")
        return pa.Table.from_batches([batch]).take(pa.array(positions))


class _Background:
    """Runs ``work(item)`` for each put item on one thread, in order, at most :data:`_QUEUE_DEPTH`
    behind; an error resurfaces in the caller at the next ``put`` or at ``close``."""

    def __init__(self, work):
        self.work, self.pending = work, deque()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kobe-write")

    def put(self, item) -> None:
        self.pending.append(self.pool.submit(self.work, item))
        while len(self.pending) > _QUEUE_DEPTH or (self.pending and self.pending[0].done()):
            self.pending.popleft().result()

    def close(self) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _read_ahead(batches: Iterator) -> Iterator:
    """The same items, each read on a thread while the previous one is used (pyarrow decodes without the GIL)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kobe-read") as reader:
        upcoming = reader.submit(next, batches, None)
        while (item := upcoming.result()) is not None:
            upcoming = reader.submit(next, batches, None)
            yield item


def _write(writers: list[pq.ParquetWriter], tables: tuple[pa.Table, ...]) -> None:
    for parquet_writer, table in zip(writers, tables, strict=True):
        if table.num_rows:
            parquet_writer.write_table(table)


class _Scorer:
    """Scores batches on a pool of threads (numpy, pyarrow and scikit-learn release the GIL), each
    thread folding into its own copy of the observers, merged into the caller's at the end."""

    def __init__(self, model, layout: BatchLayout, observers: Observers, workers: int):
        self.model, self.layout, self.workers = model, layout, workers
        self.template, self.copies, self.thread = pickle.dumps(observers), [], threading.local()
        self.pool = ThreadPoolExecutor(workers, "kobe-score", initializer=self._start_thread)

    def _start_thread(self) -> None:
        self.thread.observers = pickle.loads(self.template)
        self.copies.append(self.thread.observers)

    def _score(self, batch: pa.RecordBatch) -> ScoredBatch:
        checked = score_batch(batch, self.model, self.layout)
        self.thread.observers.update(checked)  # its scored rows; the rejected ones are folded once read back
        return checked

    def submit(self, batch: pa.RecordBatch) -> Future:
        return self.pool.submit(self._score, batch)

    def close(self, observers: Observers) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        for copy in self.copies:
            observers.merge(copy)


def apply_to_file(
    path: str | Path,
    model,
    outputs: OutputPaths | Sequence[Path] | None = None,
    observers: Sequence = (),
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
    stamp: Stamp = NO_STAMP,
    sink: Callable[[pa.Table], None] | None = None,
) -> AppliedFile:
    """Stream the production parquet at ``path`` through the contract and ``model`` (pyfunc ``predict``).

    ``outputs``: the predictions and rejected files (both even when empty), in file order, moved into
    place only when the whole file was scored (None: count only); ``observers`` see every batch.
    ``workers`` batches are scored at once (default: one per core, at most :data:`MAX_WORKERS`); each
    scored row is stamped with ``stamp``; ``sink`` gets each batch's predictions in order on a thread.
    """
    production = ProductionFile(path, batch_rows, stamp)
    counts = RowCounts()
    fed = Observers([counts, *observers])
    layout = replace(production.layout, repeated_ids=production.repeated_ids())  # a repeat may span batches
    scorer = _Scorer(model, layout, fed, workers or min(MAX_WORKERS, os.cpu_count() or 1))
    whole_rows = None
    targets = OutputPaths(*map(Path, outputs)) if outputs is not None else None
    with staged_outputs(targets) as staged:
        writers = []
        if staged is not None:
            writers = [
                production.layout.predictions_writer(staged.predictions),
                pq.ParquetWriter(staged.rejected, production.rejected_schema),
            ]
        writer = _Background(lambda tables: _write(writers, tables))
        sunk = _Background(sink) if sink is not None else None  # a thread of its own, beside the writer

        def finish(number: int, rows: int, future: Future) -> None:
            nonlocal whole_rows
            checked = future.result()
            rejected = production.rejected_schema.empty_table()
            if len(checked.rejected_positions):
                whole_rows = whole_rows or _WholeRows(production)
                taken = whole_rows.take(number, checked.rejected_positions, rows)  # the file's columns
                rejected = taken.append_column(REASON_COLUMN, pa.array(list(checked.reasons), pa.string()))
                rejected = rejected.cast(production.rejected_schema)
                fed.update(ScoredBatch(production.layout.predictions_schema.empty_table(), rejected))
            if writers:
                writer.put((checked.predictions, rejected))
            if sunk is not None and checked.predictions.num_rows:
                sunk.put(checked.predictions)

        pending: deque = deque()
        try:
            for number, batch in enumerate(_read_ahead(production.batches())):
                pending.append((number, batch.num_rows, scorer.submit(batch)))
                while len(pending) > scorer.workers:
                    finish(*pending.popleft())
            while pending:
                finish(*pending.popleft())
        finally:
            # Every thread stops before an error leaves (a sink still writing would leave its file behind).
            with contextlib.ExitStack() as closing:
                for parquet_writer in writers:
                    closing.callback(parquet_writer.close)
                if sunk is not None:
                    closing.callback(sunk.close)
                closing.callback(writer.close)
                closing.callback(scorer.close, fed)
        totals = counts.result()
        if totals["rows_input"] != production.rows:  # the file changed while it was read
            raise DataContractError(f"{path}: {production.rows} rows in its metadata but {totals['rows_input']} read.")
    return AppliedFile(production.source, totals, list(observers), targets)
