"""The data contract: what a scoreable shot looks like, written down once.

Training preparation, batch scoring, the served model and the dashboard's inference form all
check rows against :data:`FEATURE_RULES`; nothing else in the project hard-codes a valid range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kobe_mlops import config

REASON_COLUMN = "rejection_reason"
MAX_ROWS_IN_MESSAGE = 5


class DataContractError(ValueError):
    """A whole file (or request) breaks the contract: unreadable, empty, missing columns."""


@dataclass(frozen=True)
class FeatureRule:
    name: str
    minimum: float
    maximum: float
    integer: bool
    meaning: str

    def describe(self) -> str:
        kind = "whole number" if self.integer else "number"
        return f"{kind} in [{self.minimum:g}, {self.maximum:g}]"


FEATURE_RULES: dict[str, FeatureRule] = {
    rule.name: rule
    for rule in [
        # The course data's half-court box (lat/lon are the shot location, not GPS positions
        # around Los Angeles); a small margin beyond the dev and prod extremes.
        FeatureRule("lat", 33.20, 34.10, False, "court latitude of the shot location"),
        FeatureRule("lon", -118.55, -118.00, False, "court longitude of the shot location"),
        FeatureRule("minutes_remaining", 0, 11, True, "minutes left on the period clock"),
        # Four quarters and up to six overtimes (the NBA record).
        FeatureRule("period", 1, 10, True, "period of the game (5 and up are overtimes)"),
        FeatureRule("playoffs", 0, 1, True, "1 for a playoff game, else 0"),
        # A full court is 94 ft long.
        FeatureRule("shot_distance", 0, 94, False, "distance to the basket in feet"),
    ]
}
assert list(FEATURE_RULES) == config.FEATURES


def require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataContractError(
            f"{source}: missing required column(s) {', '.join(map(repr, missing))}; "
            f"the model needs {', '.join(config.FEATURES)}."
        )


def _row_reasons(frame: pd.DataFrame, include_target: bool) -> pd.Series:
    """One reason string per row ('' for a valid row), each problem named with its value."""
    reasons = pd.Series("", index=frame.index, dtype=object)

    def add(mask: pd.Series, text: pd.Series | str) -> None:
        if mask.any():
            addition = text[mask] if isinstance(text, pd.Series) else text
            current = reasons[mask]
            reasons[mask] = np.where(current == "", addition, current + "; " + addition)

    for name, rule in FEATURE_RULES.items():
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce")
        missing = raw.isna()
        not_number = ~missing & values.isna()
        add(missing, f"{name} is missing")
        add(not_number, f"{name} is not a number: " + raw.astype(str).str.slice(0, 30))
        present = values.notna()
        out_of_range = present & ((values < rule.minimum) | (values > rule.maximum))
        shown = values.map(lambda value: f"{value:g}")
        add(out_of_range, f"{name}=" + shown + f" outside {rule.describe()}")
        if rule.integer:
            fractional = present & ~out_of_range & (values != np.floor(values))
            add(fractional, f"{name}=" + shown + " is not a whole number")
    if include_target and config.TARGET in frame:
        target = pd.to_numeric(frame[config.TARGET], errors="coerce")
        bad_target = frame[config.TARGET].notna() & ~target.isin([0, 1])
        add(bad_target, f"{config.TARGET} must be 0, 1 or missing, got "
            + frame[config.TARGET].astype(str).str.slice(0, 30))
    return reasons


def feature_dtypes() -> dict[str, str]:
    """The model's input types: whole-number features are int64, the others float64."""
    return {name: "int64" if rule.integer else "float64" for name, rule in FEATURE_RULES.items()}


def cast_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast the feature columns of contract-valid rows to :func:`feature_dtypes`."""
    return frame.astype({name: dtype for name, dtype in feature_dtypes().items()})


def split_valid_rows(frame: pd.DataFrame, source: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into rows that satisfy the contract and rejected rows.

    Valid rows come back with the features cast to their numeric types (extra columns kept,
    order untouched). Rejected rows keep their original values plus a ``rejection_reason``.
    Every input row lands in exactly one of the two frames.
    """
    require_columns(frame, config.FEATURES, source)
    reasons = _row_reasons(frame, include_target=True)
    is_valid = reasons == ""
    valid = cast_features(frame.loc[is_valid].copy())
    if config.TARGET in valid:
        valid[config.TARGET] = pd.to_numeric(valid[config.TARGET]).astype("float64")
    rejected = frame.loc[~is_valid].copy()
    rejected[REASON_COLUMN] = reasons[~is_valid]
    return valid, rejected


def violations_message(frame: pd.DataFrame) -> str | None:
    """A short message naming the offending rows and columns, or None when all rows are valid."""
    reasons = _row_reasons(frame, include_target=False)
    bad = reasons[reasons != ""]
    if bad.empty:
        return None
    shown = "; ".join(f"row {index}: {reason}" for index, reason in bad.head(MAX_ROWS_IN_MESSAGE).items())
    more = f" (and {len(bad) - MAX_ROWS_IN_MESSAGE} more rows)" if len(bad) > MAX_ROWS_IN_MESSAGE else ""
    return f"{len(bad)} of {len(frame)} rows break the data contract: {shown}{more}"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a parquet file, turning every way it can fail into one clear DataContractError."""
    path = Path(path)
    if not path.exists():
        raise DataContractError(f"{path}: file not found.")
    if path.is_dir():
        raise DataContractError(f"{path}: is a folder, expected a parquet file.")
    if path.stat().st_size == 0:
        raise DataContractError(f"{path}: file is empty (0 bytes).")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt input
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataContractError(f"{path}: not a readable parquet file ({detail}).") from None
    if frame.empty:
        raise DataContractError(f"{path}: has no rows.")
    return frame
