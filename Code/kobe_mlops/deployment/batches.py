"""What a scoring engine hands to the figures of a run: scored batches, fed to batch observers.

An observer folds each :class:`ScoredBatch` into a small, picklable state (``update(batch)``), folds
in a copy that saw other batches (``merge(other) -> self``) and reports from its state (``result()``);
it never keeps rows. The figures themselves live in :mod:`kobe_mlops.monitoring`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from kobe_mlops import config


@dataclass
class ScoredBatch:
    """One batch after the data contract and the model: ``predictions`` (the output's columns) and
    ``rejected`` (the file's columns and ``rejection_reason``; empty until the engine reads them back
    from ``rejected_positions`` and ``reasons``)."""

    predictions: pa.Table
    rejected: pa.Table
    rejected_positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype="int64"))
    reasons: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    # Columns the engine already holds as float64 (features, scores): what values() returns.
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
        """A numeric column of the scored rows as float64 (NaN for missing), converted once: read only."""
        if column not in self.float_columns:
            self.float_columns[column] = float_values(self.predictions.column(column))
        return self.float_columns[column]


def float_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An Arrow column as float64 numpy (missing values are NaN), without a copy when it already is."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_floating(column.type) and column.null_count == 0:
        return column.to_numpy(zero_copy_only=False).astype("float64", copy=False)
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


@dataclass
class RowCounts:
    """Every row is scored or rejected; ``rows_labeled``: scored rows with a known outcome."""

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
class Observers:
    """The observers of one run, fed and merged together."""

    members: list = field(default_factory=list)

    def update(self, batch: ScoredBatch) -> None:
        for observer in self.members:
            observer.update(batch)

    def merge(self, other: Observers) -> Observers:
        for mine, theirs in zip(self.members, other.members, strict=True):
            mine.merge(theirs)
        return self

    def result(self) -> list:
        return [observer.result() for observer in self.members]
