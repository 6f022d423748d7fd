"""The label store: labelled production rows accumulate, run after run, under ``data/labels/``.

Each application run stages one parquet file (partition ``appended_on=YYYY-MM-DD``) and makes it
visible only when it publishes; nothing is rewritten. The first label appended for a shot is kept,
a later different one is counted as a conflict. Every error names its file (:class:`LabelStoreError`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import readable_detail
from kobe_mlops.io import staging_path

PARTITION = "appended_on"
RUN_COLUMN = "source_run_id"
FILE_COLUMN = "source_file"
APPENDED_AT_COLUMN = "appended_at"
SCORED_COLUMNS = ["shot_id", "game_date", *config.FEATURES, config.TARGET]  # what a run's rows bring
STORE_COLUMNS = [*SCORED_COLUMNS, RUN_COLUMN, FILE_COLUMN, APPENDED_AT_COLUMN]
SCHEMA = pa.schema(
    [
        ("shot_id", pa.int64()),
        ("game_date", pa.string()),
        *[(name, pa.float64()) for name in config.FEATURES],
        (config.TARGET, pa.int64()),
        (RUN_COLUMN, pa.string()),
        (FILE_COLUMN, pa.string()),
        (APPENDED_AT_COLUMN, pa.timestamp("ns", tz="UTC")),
    ]
)
# Dictionary encoding pays for repeated values; unique shot ids only cost the try.
DICTIONARY_COLUMNS = [name for name in SCHEMA.names if name != "shot_id"]
# The run's constant texts reach the writer as one-value dictionaries (no hashing of every row); the
# file stores them as plain strings, which readers get (the Arrow schema is not stored: SCHEMA is).
_CONSTANT_TEXTS = [RUN_COLUMN, FILE_COLUMN]
_WRITE_SCHEMA = pa.schema(
    [pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in _CONSTANT_TEXTS else f for f in SCHEMA]
)
NO_GAME_DATE = "the label store orders labels by game date"


class LabelStoreError(RuntimeError):
    """A store file cannot be read, or rows cannot be stored: the message names the file."""


@dataclass(frozen=True)
class StoredLabels:
    """The store as its readers see it: one row per shot, its first label."""

    rows: pd.DataFrame  # shot_id, game_date, features, shot_made_flag, source run and file
    files: int  # parquet files read
    rows_read: int  # before deduplication
    conflicts: int  # shot_ids appended with more than one different label (the first one is kept)


def _labelled_rows(scored: pa.Table, run_id: str, source: str, appended_at: pd.Timestamp) -> pa.Table:
    """The rows of a scored batch that carry a label, as the store's writer takes them."""
    if config.TARGET not in scored.column_names or "shot_id" not in scored.column_names:
        return SCHEMA.empty_table()
    labelled = scored.select([name for name in SCORED_COLUMNS if name in scored.column_names])
    if labelled.column(config.TARGET).null_count:
        labelled = labelled.filter(pc.is_valid(labelled.column(config.TARGET)))
    if not labelled.num_rows:
        return SCHEMA.empty_table()
    if "game_date" not in labelled.column_names or labelled.column("game_date").null_count:
        raise LabelStoreError(
            f"{source}: labelled rows without a game_date; {NO_GAME_DATE}, so none of this file's labels were stored."
        )
    columns = [labelled.column(name).cast(SCHEMA.field(name).type) for name in SCORED_COLUMNS]
    first = pa.array(np.zeros(labelled.num_rows, dtype="int32"))
    columns += [pa.DictionaryArray.from_arrays(first, pa.array([text], pa.string())) for text in (run_id, source)]
    columns.append(pa.repeat(pa.scalar(appended_at, SCHEMA.field(APPENDED_AT_COLUMN).type), labelled.num_rows))
    return pa.Table.from_arrays(columns, schema=_WRITE_SCHEMA)


def read_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One store file in the store's schema; an unreadable one, or one with rows without a
    ``game_date``, is refused naming the file."""
    try:
        table = ds.dataset(path, format="parquet", schema=SCHEMA).to_table(columns=columns)
    except (pa.ArrowException, OSError) as exc:
        detail = readable_detail(exc)
        problem = f"label store file cannot be read ({detail})"
    else:
        if "game_date" not in table.column_names or not table.column("game_date").null_count:
            return table
        problem = f"label store file has rows without a game_date; {NO_GAME_DATE}"
    raise LabelStoreError(
        f"{path}: {problem}. Nothing in the store was changed; move the file away (or restore it) and run again."
    )


@dataclass(frozen=True)
class FirstLabels:
    """The first label the store holds for each shot, as sorted arrays: 9 bytes a shot, so a
    writer counts conflicts without holding the store."""

    shot_ids: np.ndarray  # int64, sorted, unique
    outcomes: np.ndarray  # int8, the label of each

    @classmethod
    def of_store(cls, paths: config.WorkspacePaths | None = None) -> FirstLabels:
        tables = [read_file(path, ["shot_id", config.TARGET]) for path in store_files(paths)]
        if not tables:
            return cls(np.empty(0, "int64"), np.empty(0, "int8"))
        table = pa.concat_tables(tables)  # in the store's order
        ids, first = np.unique(table.column("shot_id").to_numpy(), return_index=True)  # first in appended order
        return cls(ids, table.column(config.TARGET).to_numpy()[first].astype("int8"))

    def conflicts(self, shot_ids: np.ndarray, outcomes: np.ndarray) -> int:
        """Rows whose shot the store already holds with the other label."""
        if not len(self.shot_ids) or not len(shot_ids):
            return 0
        at = np.minimum(np.searchsorted(self.shot_ids, shot_ids), len(self.shot_ids) - 1)
        return int(((self.shot_ids[at] == shot_ids) & (self.outcomes[at] != outcomes)).sum())


class LabelStoreWriter:
    """Stage the labelled rows of one application run, batch by batch, in one hidden file.

    As a context manager: on success the staged file is complete and :meth:`publish` makes it part
    of the store (once the run is logged); on an exception, or :meth:`abort`, it is removed. A run
    that saw no label writes no file; :attr:`conflicts` counts rows contradicting a known label.
    """

    def __init__(self, run_id: str, source: str, paths: config.WorkspacePaths | None = None):
        self.run_id, self.source = run_id, str(source)
        self.appended_at = pd.Timestamp.now(tz="UTC")
        store = (paths or config.workspace_paths()).label_store_dir
        partition = store / f"{PARTITION}={self.appended_at:%Y-%m-%d}"
        self.target = partition / f"{self.appended_at:%H%M%S%f}_{run_id}.parquet"
        self.known = FirstLabels.of_store(paths)
        self.rows_appended = 0
        self.conflicts = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._failure: LabelStoreError | None = None

    def update(self, scored: pd.DataFrame | pa.RecordBatch | pa.Table) -> None:
        if isinstance(scored, pd.DataFrame):
            scored = pa.Table.from_pandas(scored, preserve_index=False)
        rows = _labelled_rows(pa.table(scored), self.run_id, self.source, self.appended_at)
        if not rows.num_rows:
            return
        if self._failure is not None:  # a later batch must not start a second staged file
            raise self._failure
        self.conflicts += self.known.conflicts(rows.column("shot_id").to_numpy(), rows.column(config.TARGET).to_numpy())
        try:
            if self._writer is None:
                self.target.parent.mkdir(parents=True, exist_ok=True)
                self._tmp = staging_path(self.target)
                self._writer = pq.ParquetWriter(
                    self._tmp, _WRITE_SCHEMA, use_dictionary=DICTIONARY_COLUMNS, store_schema=False
                )
            self._writer.write_table(rows)
        except OSError as exc:
            self._failure = LabelStoreError(f"{self._tmp or self.target}: labels cannot be written ({exc}).")
            self.abort()  # a half-written file goes now, even if the caller never aborts
            raise self._failure from exc
        self.rows_appended += rows.num_rows

    def close(self) -> None:
        """Finish the staged file (still invisible to readers)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError as exc:
                raise LabelStoreError(f"{self._tmp}: labels cannot be written ({exc}).") from exc
        if self._failure is not None:  # never a complete-looking file after a lost batch
            raise self._failure

    def publish(self) -> Path | None:
        """Move the staged file into the store; the path, or None when no labelled row came."""
        self.close()
        if self._tmp is None:
            return None
        os.replace(self._tmp, self.target)
        self._tmp = None
        return self.target

    def abort(self) -> None:
        with contextlib.suppress(LabelStoreError):  # the file goes anyway
            self.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> LabelStoreWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def clean_staging(paths: config.WorkspacePaths | None = None) -> list[Path]:
    """Remove the staged files a killed run left in the store; the paths removed."""
    removed = sorted((paths or config.workspace_paths()).label_store_dir.glob(f"{PARTITION}=*/.*.tmp"))
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def store_files(paths: config.WorkspacePaths | None = None) -> list[Path]:
    """The store's parquet files in the store's order (a run's staged file is not one of them yet):
    a file's path is its append time, then its run (``appended_on=DATE/HHMMSSffffff_<run>.parquet``)."""
    return sorted((paths or config.workspace_paths()).label_store_dir.glob(f"{PARTITION}=*/*.parquet"))


def stored_shots(paths: config.WorkspacePaths | None = None) -> int:
    """Shots the store holds a label for."""
    return len(FirstLabels.of_store(paths).shot_ids)


def read_labels(paths: config.WorkspacePaths | None = None) -> StoredLabels:
    """Every labelled production row in the store, one per ``shot_id`` and ordered by game date:
    the first label appended is kept, a later different one is a conflict."""
    files = store_files(paths)
    if not files:
        return StoredLabels(pd.DataFrame(columns=STORE_COLUMNS), 0, 0, 0)
    rows = pa.concat_tables([read_file(path) for path in files]).to_pandas()  # in the store's order
    labels_per_shot = rows.groupby("shot_id")[config.TARGET].nunique()
    first = rows.drop_duplicates("shot_id", keep="first").sort_values(["game_date", "shot_id"], kind="stable")
    return StoredLabels(first.reset_index(drop=True), len(files), len(rows), int((labels_per_shot > 1).sum()))


def append_summary(scored_labels: int, source: str) -> str:
    """The sentence a run prints about what it added to the store."""
    if scored_labels == 0:
        return f"{source}: no scored row has a shot_made_flag; nothing was added to the label store."
    return f"{source}: {scored_labels} labelled rows appended to the label store."
