"""The label store: labelled production rows accumulate, batch after batch, in one place.

In production the outcome of a shot arrives after it was scored, file after file. Every
application run appends the labelled rows it scored (``shot_id``, ``game_date``, the features,
``shot_made_flag``, the run and file they came from) to an append-only parquet dataset under
``data/labels/``, partitioned by the UTC day it was appended (``appended_on=YYYY-MM-DD``):

* one new file per run, written to a temporary name and renamed into place, so a reader sees a
  whole file or none and a failed run adds nothing; nothing already in the store is rewritten;
* :func:`read_labels` reads every file (pyarrow dataset), keeps one row per ``shot_id`` (the
  latest appended label wins) and counts the ids whose label changed (conflicts);
* the retraining loop learns from the whole store (:mod:`kobe_mlops.monitoring.retraining`).

:class:`LabelStoreWriter` takes scored batches one by one (a file of any size streams through
it); :func:`append_labels` is the one-call form for a frame in memory.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from kobe_mlops import config

PARTITION = "appended_on"
RUN_COLUMN = "source_run_id"
FILE_COLUMN = "source_file"
APPENDED_AT_COLUMN = "appended_at"
STORE_COLUMNS = ["shot_id", "game_date", *config.FEATURES, config.TARGET, RUN_COLUMN, FILE_COLUMN, APPENDED_AT_COLUMN]
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


class LabelStoreError(RuntimeError):
    """A store file cannot be read, or rows cannot be stored: the message names the file."""


@dataclass(frozen=True)
class StoredLabels:
    """The store as the retraining loop reads it: one row per shot, the latest label."""

    rows: pd.DataFrame  # shot_id, game_date, features, shot_made_flag, source run and file
    files: int  # parquet files read
    rows_read: int  # before deduplication
    conflicts: int  # shot_ids appended with more than one different label

    @property
    def duplicates(self) -> int:
        return self.rows_read - len(self.rows)


def _labelled_rows(scored: pd.DataFrame, run_id: str, source: str, appended_at: pd.Timestamp) -> pd.DataFrame:
    """The rows of a scored batch that carry a label, in the store's columns and types."""
    if config.TARGET not in scored or "shot_id" not in scored:
        return pd.DataFrame(columns=STORE_COLUMNS)
    labelled = scored[scored[config.TARGET].notna()]
    rows = pd.DataFrame(
        {
            "shot_id": labelled["shot_id"].astype("int64"),
            "game_date": labelled["game_date"].astype(str) if "game_date" in labelled else None,
            **{name: labelled[name].astype("float64") for name in config.FEATURES},
            config.TARGET: labelled[config.TARGET].astype("int64"),
            RUN_COLUMN: run_id,
            FILE_COLUMN: source,
            APPENDED_AT_COLUMN: appended_at,
        }
    )
    return rows[STORE_COLUMNS]


class LabelStoreWriter:
    """Append the labelled rows of one application run, batch by batch; one file, moved in on :meth:`close`.

    Use as a context manager: on an exception the temporary file is removed and the store is
    unchanged. Batches without labels add nothing; a run that saw no label writes no file.
    """

    def __init__(self, run_id: str, source: str, paths: config.WorkspacePaths | None = None):
        self.run_id, self.source = run_id, str(source)
        self.appended_at = pd.Timestamp(datetime.now(UTC))
        store = (paths or config.workspace_paths()).label_store_dir
        partition = store / f"{PARTITION}={self.appended_at:%Y-%m-%d}"
        self.target = partition / f"{self.appended_at:%H%M%S%f}_{run_id}.parquet"
        self.rows_appended = 0
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None

    def update(self, scored: pd.DataFrame) -> None:
        rows = _labelled_rows(scored, self.run_id, self.source, self.appended_at)
        if rows.empty:
            return
        if self._writer is None:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
            os.close(fd)
            self._tmp = Path(name)
            self._writer = pq.ParquetWriter(self._tmp, SCHEMA)
        self._writer.write_table(pa.Table.from_pandas(rows, schema=SCHEMA, preserve_index=False))
        self.rows_appended += len(rows)

    def close(self) -> Path | None:
        """Move the file into the store; the path, or None when no labelled row came."""
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        os.replace(self._tmp, self.target)
        self._tmp = None
        return self.target

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
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


def append_labels(
    scored: pd.DataFrame, run_id: str | None = None, source: str = "", paths: config.WorkspacePaths | None = None
) -> tuple[int, Path | None]:
    """Append the labelled rows of ``scored``; ``(rows appended, file written or None)``."""
    with LabelStoreWriter(run_id or uuid.uuid4().hex, source, paths) as writer:
        writer.update(scored)
    return writer.rows_appended, writer.target if writer.rows_appended else None


def store_files(paths: config.WorkspacePaths | None = None) -> list[Path]:
    """The store's parquet files (temporary files of a run in progress are not part of it)."""
    store = (paths or config.workspace_paths()).label_store_dir
    return sorted(store.glob(f"{PARTITION}=*/*.parquet")) if store.is_dir() else []


def read_labels(paths: config.WorkspacePaths | None = None) -> StoredLabels:
    """Every labelled production row in the store, one per ``shot_id``, the latest appended label winning."""
    files = store_files(paths)
    if not files:
        return StoredLabels(pd.DataFrame(columns=STORE_COLUMNS), 0, 0, 0)
    tables = []
    for path in files:  # one at a time, so an unreadable file is named
        try:
            tables.append(ds.dataset(path, format="parquet", schema=SCHEMA).to_table())
        except (pa.ArrowException, OSError) as exc:
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise LabelStoreError(
                f"{path}: label store file cannot be read ({detail}). Nothing in the store was changed; "
                "move the file away (or restore it) and run again."
            ) from None
    rows = pa.concat_tables(tables).to_pandas()
    ordered = rows.sort_values([APPENDED_AT_COLUMN, RUN_COLUMN], kind="stable")
    labels_per_shot = ordered.groupby("shot_id")[config.TARGET].nunique()
    latest = ordered.drop_duplicates("shot_id", keep="last").sort_values(["game_date", "shot_id"], kind="stable")
    return StoredLabels(latest.reset_index(drop=True), len(files), len(rows), int((labels_per_shot > 1).sum()))


def append_summary(scored_labels: int, source: str) -> str:
    """The sentence a run prints about what it added to the store."""
    if scored_labels == 0:
        return f"{source}: no scored row has a shot_made_flag; nothing was added to the label store."
    return f"{source}: {scored_labels} labelled rows appended to the label store."
