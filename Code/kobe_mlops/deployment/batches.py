"""What a scoring engine hands to the figures of a run: scored batches, and the observer protocol.

A production file of any size streams through the application step one batch at a time. Every
engine (pandas in one process, the served model, Spark's executors) feeds each batch it scored,
and each batch of rows it rejected, to a list of **batch observers**: objects that fold what
they need into a small state and never keep the rows. Row counts, labelled metrics, drift
statistics and the like are observers; the engine neither knows nor imports them (they live in
:mod:`kobe_mlops.monitoring`, a layer above).

The protocol has three methods:

``update(batch)``
    Fold one :class:`ScoredBatch` into the state. A batch may hold scored rows only, rejected rows
    only, or both, and may be empty; batches arrive in file order on the pandas engine and in any
    order on Spark.
``merge(other)``
    Fold the state of ``other`` (an observer of the same class and settings that saw other
    batches) into this one and return ``self``. Spark runs one copy per partition and merges the
    copies on the driver, so ``update`` over all batches and ``merge`` of per-part copies must give
    the same ``result()`` (exactly, or within a tolerance the observer documents).
``result()``
    The figures, from the state alone.

Rules that keep an observer usable on every engine:

* **Plain, picklable state** (numbers, numpy arrays, small frames, dataclasses): Spark pickles
  each observer to its executors and each partition's copy back to the driver. No open files,
  sockets, locks, models or lambdas.
* **Bounded memory**: the state must not grow with the number of rows (counts per distinct value
  of a discrete variable are fine, with a cap and a documented fallback).
* **A sink** (an observer that writes rows somewhere, e.g. a label store) writes each batch in
  ``update`` to a place every executor can reach and keeps only what it wrote (file names,
  row counts) as state; ``merge`` concatenates those.
* **A filter** in front of an observer: :class:`FilteredObserver` with a picklable ``keep``
  (a class with ``__call__(batch) -> boolean mask over batch.predictions``).

The engines return the observers after the last batch (on Spark: the merged copies, not the
objects passed in), in :attr:`AppliedFile.observers
<kobe_mlops.deployment.application.AppliedFile.observers>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from kobe_mlops import config


@dataclass
class ScoredBatch:
    """One batch of a production file, after the data contract and the model.

    ``predictions`` has the columns of the predictions output (the ids the file has, the six
    features in the contract's types, probability, predicted label, and the target when the file
    has one); ``rejected`` the file's own columns plus ``rejection_reason`` (a batch without
    rejected rows may carry an empty table without columns). Both are Arrow tables (cheap to
    write and to slice); :meth:`values` gives a numeric column as numpy, converted once.
    """

    predictions: pa.Table
    rejected: pa.Table
    source: str = "input"
    # Straight from the contract check, before the rejected rows' other columns are read back:
    # their positions in the batch and their reasons (the engines fill ``rejected`` from these).
    rejected_positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))
    reasons: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    # Columns already held as float64 (the engine's feature matrix, the scores): what values() returns.
    float_columns: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def rows_scored(self) -> int:
        return self.predictions.num_rows

    @property
    def rows_rejected(self) -> int:
        return self.rejected.num_rows

    def has(self, column: str) -> bool:
        return column in self.predictions.column_names

    def values(self, column: str) -> np.ndarray:
        """A numeric column of the scored rows as float64 (missing values are NaN), converted once:
        every observer reads the same array (never write to it)."""
        if column not in self.float_columns:
            self.float_columns[column] = _float_values(self.predictions.column(column))
        return self.float_columns[column]

    def select(self, keep: np.ndarray) -> ScoredBatch:
        """The same batch with only the scored rows where ``keep`` is true (rejected rows kept)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.all():
            return self
        return ScoredBatch(self.predictions.filter(pa.array(keep)), self.rejected, self.source)


def _float_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_floating(column.type) and column.null_count == 0:
        return column.to_numpy(zero_copy_only=False).astype("float64", copy=False)
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


@dataclass
class RowCounts:
    """Every row is scored or rejected: ``rows_input == rows_scored + rows_rejected``.

    ``rows_labeled`` counts scored rows with a known outcome. The engines always keep one.
    """

    rows_scored: int = 0
    rows_rejected: int = 0
    rows_labeled: int = 0

    def update(self, batch: ScoredBatch) -> None:
        self.rows_scored += batch.rows_scored
        self.rows_rejected += batch.rows_rejected
        if batch.has(config.TARGET) and batch.rows_scored:
            self.rows_labeled += batch.rows_scored - batch.predictions.column(config.TARGET).null_count

    def merge(self, other: RowCounts) -> RowCounts:
        self.rows_scored += other.rows_scored
        self.rows_rejected += other.rows_rejected
        self.rows_labeled += other.rows_labeled
        return self

    def result(self) -> dict[str, int]:
        return {
            "rows_input": self.rows_scored + self.rows_rejected,
            "rows_scored": self.rows_scored,
            "rows_rejected": self.rows_rejected,
            "rows_labeled": self.rows_labeled,
        }


@dataclass
class FilteredObserver:
    """``inner`` sees only the scored rows ``keep(batch)`` selects (the rejected rows unchanged).

    ``keep`` must be picklable: an instance of a class with ``__call__(batch) -> mask``, not a
    lambda. Example: labelled metrics on the rows the scoring model did not learn.
    """

    inner: Any
    keep: Any

    def update(self, batch: ScoredBatch) -> None:
        self.inner.update(batch.select(self.keep(batch)) if batch.rows_scored else batch)

    def merge(self, other: FilteredObserver) -> FilteredObserver:
        self.inner.merge(other.inner)
        return self

    def result(self) -> Any:
        return self.inner.result()


@dataclass
class Observers:
    """The observers of one run, fed and merged together (Spark pickles one copy per partition)."""

    members: list = field(default_factory=list)

    def update(self, batch: ScoredBatch) -> None:
        for observer in self.members:
            observer.update(batch)

    def merge(self, other: Observers) -> Observers:
        if len(other.members) != len(self.members):
            raise ValueError("Only copies of the same observers can be merged.")
        for mine, theirs in zip(self.members, other.members, strict=True):
            mine.merge(theirs)
        return self

    def result(self) -> list:
        return [observer.result() for observer in self.members]
