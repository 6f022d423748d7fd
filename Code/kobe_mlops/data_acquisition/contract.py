"""The data contract, written down once: the :data:`FEATURE_RULES` preparation, batch scoring, the
served model and the dashboard's form check rows against, and the :data:`ID_RULES` of a file's ids
(``game_date`` orders the label store, ``shot_id`` ties a label to one prediction)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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
# The course files write dates as 2000-10-31; one format, so no date is read two ways.
DATE_FORMAT = "%Y-%m-%d"
ID_RULES = {
    "shot_id": "whole number, unique within the file (a repeated shot would be graded twice)",
    "game_date": f"date written {DATE_FORMAT} (e.g. 2000-10-31), or a date type",
}
assert list(ID_RULES) == config.ID_COLUMNS
_MINIMA = np.array([rule.minimum for rule in FEATURE_RULES.values()])
_MAXIMA = np.array([rule.maximum for rule in FEATURE_RULES.values()])
_WHOLE = np.array([rule.integer for rule in FEATURE_RULES.values()])


def require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataContractError(
            f"{source}: missing required column(s) {', '.join(map(repr, missing))}; "
            f"the model needs {', '.join(config.FEATURES)}."
        )


Problems = list[tuple[np.ndarray, Callable[[np.ndarray], pd.Series | str]]]


def _text(raw: pd.Series, rows: np.ndarray) -> pd.Series:
    return raw[rows].astype(str).str.slice(0, 30)


def _as_numbers(column: pd.Series) -> np.ndarray:
    """``column`` as float64, read the contract's way: a missing or unreadable value is NaN."""
    if column.dtype.kind not in "iuf":  # numeric columns skip the parse: the served path reads every request
        column = pd.to_numeric(column, errors="coerce")
    return column.to_numpy(dtype="float64", na_value=np.nan)


def _missing_or_unreadable(name: str, raw: pd.Series, unreadable: np.ndarray, what: str) -> Problems:
    """A missing value, or a present one that does not read as ``what``."""
    missing = raw.isna().to_numpy()
    return [
        (missing, lambda rows: f"{name} is missing"),
        (~missing & unreadable, lambda rows: f"{name} is not {what}: " + _text(raw, rows)),
    ]


def _value_text(name: str, values: pd.Series, suffix: str, rows: np.ndarray) -> pd.Series:
    return f"{name}=" + values[rows].map("{:g}".format) + suffix


def _problems(frame: pd.DataFrame, include_target: bool) -> Problems:
    """Every way a row can break the contract: ``(rows that break it, text for those rows)``; the text
    is built only for the rows a mask marks, so a million valid rows cost no strings."""
    problems = []
    for name, rule in FEATURE_RULES.items():
        values = pd.to_numeric(frame[name], errors="coerce")
        number = values.to_numpy(dtype="float64", na_value=np.nan)
        out_of_range = (number < rule.minimum) | (number > rule.maximum)  # NaN compares False
        fractional = rule.integer & ~out_of_range & (np.floor(number) < number)
        problems += _missing_or_unreadable(name, frame[name], np.isnan(number), "a number")
        problems += [
            (out_of_range, partial(_value_text, name, values, f" outside {rule.describe()}")),
            (fractional, partial(_value_text, name, values, " is not a whole number")),
        ]
    if include_target and config.TARGET in frame:
        raw_target = frame[config.TARGET]
        bad_target = (raw_target.notna() & ~pd.to_numeric(raw_target, errors="coerce").isin([0, 1])).to_numpy()
        problems.append(
            (bad_target, lambda rows: f"{config.TARGET} must be 0, 1 or missing, got " + _text(raw_target, rows))
        )
    return problems


def _id_problems(frame: pd.DataFrame, repeats: dict | None = None) -> Problems:
    """The :data:`ID_RULES` of the id columns ``frame`` has (a file without ids is scored without them);
    ``repeats``: the whole file's repeated shot ids and their counts, when ``frame`` is only a part."""
    problems = []
    if "shot_id" in frame:
        raw = frame["shot_id"]
        number = _as_numbers(raw)
        whole = number == np.floor(number)  # NaN is not
        problems += _missing_or_unreadable("shot_id", raw, ~whole, "a whole number")
        ids = pd.Series(number, index=raw.index)
        twice = ids.duplicated(keep=False) if repeats is None else ids.isin(list(repeats))

        def repeated(rows: np.ndarray) -> pd.Series:
            shown = ids[rows]  # every copy of each repeated id, so their counts are the frame's
            times = shown.map(shown.value_counts() if repeats is None else repeats)
            return "shot_id " + shown.map("{:.0f}".format) + " appears " + times.astype(str) + " times in the file"

        problems.append((whole & twice.to_numpy(), repeated))
    if "game_date" in frame:
        raw = frame["game_date"]
        unreadable = np.zeros(len(raw), dtype=bool)
        if not pd.api.types.is_datetime64_any_dtype(raw):  # each distinct value parsed once: a few thousand dates
            codes, uniques = pd.factorize(raw)
            parsed = pd.to_datetime(pd.Series(uniques, dtype=object), format=DATE_FORMAT, errors="coerce")
            unreadable = np.append(parsed.isna().to_numpy(), False)[codes]
        problems += _missing_or_unreadable("game_date", raw, unreadable, f"a date written {DATE_FORMAT}")
    return problems


def _broken_rows(frame: pd.DataFrame, problems: Problems) -> tuple[np.ndarray, pd.Series]:
    """``(mask of the rows that break the contract, their reasons)``; the reasons hold those rows only."""
    broken = np.logical_or.reduce([np.zeros(len(frame), dtype=bool), *(mask for mask, _ in problems)])
    reasons = pd.Series("", index=frame.index[broken], dtype=object)
    for mask, describe in problems:
        rows = mask[broken]  # the problem's rows among the broken ones
        if rows.any():
            text = describe(mask)
            addition = text.to_numpy() if isinstance(text, pd.Series) else text
            current = reasons[rows]
            reasons[rows] = np.where(current == "", addition, current + "; " + addition)
    return broken, reasons


def feature_dtypes() -> dict[str, str]:
    """The model's input types: whole-number features are int64, the others float64."""
    return {name: "int64" if rule.integer else "float64" for name, rule in FEATURE_RULES.items()}


def cast_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Cast the feature columns of contract-valid rows to :func:`feature_dtypes`."""
    return frame.astype(feature_dtypes())


def split_valid_rows(frame: pd.DataFrame, source: str = "input") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(valid rows, features cast to their types; rejected rows as given, plus a rejection_reason)``:
    every row lands in one. A repeated ``shot_id`` rejects every row carrying it (for repeats across
    the parts of a file, see :func:`id_rejections`)."""
    require_columns(frame, config.FEATURES, source)
    broken, reasons = _broken_rows(frame, _problems(frame, include_target=True) + _id_problems(frame))
    # No row selection when every row passes: copying a wide file costs more than checking it.
    valid = cast_features(frame.loc[~broken] if broken.any() else frame)
    if config.TARGET in valid:
        valid[config.TARGET] = pd.to_numeric(valid[config.TARGET]).astype("float64")
    rejected = frame.loc[broken].copy()
    rejected[REASON_COLUMN] = reasons.to_numpy()
    return valid, rejected


def id_rejections(ids: pd.DataFrame, repeats: dict | None = None) -> pd.Series:
    """The reason of each row whose ids break :data:`ID_RULES` (indexed like ``ids``): for an engine
    that checks a file batch by batch, run on the whole file's ids or on a batch with the whole file's
    ``repeats`` (a repeat may span batches)."""
    return _broken_rows(ids, _id_problems(ids, repeats))[1] if len(ids) else pd.Series(dtype=object)


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The features as a float64 matrix, unreadable values NaN (so :func:`broken_matrix_rows` flags them)."""
    return np.column_stack([_as_numbers(frame[name]) for name in config.FEATURES])


def broken_matrix_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows of a :func:`feature_matrix` that break a rule: missing, out of range, or not whole."""
    whole = matrix[:, _WHOLE]
    broken = np.isnan(matrix) | (matrix < _MINIMA) | (matrix > _MAXIMA)
    broken[:, _WHOLE] |= whole != np.floor(whole)
    return broken.any(axis=1)


def violations_message(frame: pd.DataFrame) -> str | None:
    """A short message naming the offending rows and columns, or None when all rows are valid."""
    # The served model checks every request: one matrix comparison clears valid rows in microseconds.
    if not broken_matrix_rows(feature_matrix(frame)).any():
        return None
    _, bad = _broken_rows(frame, _problems(frame, include_target=False))
    shown = "; ".join(f"row {index}: {reason}" for index, reason in bad.head(MAX_ROWS_IN_MESSAGE).items())
    more = f" (and {len(bad) - MAX_ROWS_IN_MESSAGE} more rows)" if len(bad) > MAX_ROWS_IN_MESSAGE else ""
    return f"{len(bad)} of {len(frame)} rows break the data contract: {shown}{more}"


def readable_detail(exc: BaseException) -> str:
    """An error's first line, short enough for a one-line message."""
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def require_parquet_path(path: Path) -> None:
    """The clear error for a path that cannot be a parquet file: missing, a folder or empty."""
    if not path.exists():
        raise DataContractError(f"{path}: file not found.")
    if path.is_dir():
        raise DataContractError(f"{path}: is a folder, expected a parquet file.")
    if path.stat().st_size == 0:
        raise DataContractError(f"{path}: file is empty (0 bytes).")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a parquet file, turning every way it can fail into one clear DataContractError."""
    path = Path(path)
    require_parquet_path(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt input
        raise DataContractError(f"{path}: not a readable parquet file ({readable_detail(exc)}).") from None
    if frame.empty:
        raise DataContractError(f"{path}: has no rows.")
    return frame
