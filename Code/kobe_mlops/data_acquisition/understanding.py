"""Describe a raw dataset in the figures the acquisition run logs to MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kobe_mlops import config


def describe_dataset(frame: pd.DataFrame, label: str) -> dict[str, float]:
    """Shape, missing values, class balance and shot-type mix, as flat MLflow metrics."""
    missing = frame.isna().sum()
    metrics: dict[str, float] = {
        f"{label}_rows": len(frame),
        f"{label}_columns": frame.shape[1],
        f"{label}_missing_cells": int(missing.sum()),
        f"{label}_rows_unlabelled": int(missing[config.TARGET]),
        f"{label}_make_rate": float(frame[config.TARGET].mean()),  # unlabelled rows skipped; NaN if none is labelled
    }
    metrics |= {f"{label}_missing_{column}": int(count) for column, count in missing.items() if count}
    if "shot_type" in frame:
        for shot_type, share in frame["shot_type"].value_counts(normalize=True).items():
            metrics[f"{label}_share_{shot_type.split()[0]}"] = float(share)
    return metrics


# --- Raw data dictionary (Docs/Data_Dictionaries) --------------------------------------------

# One sentence per raw column: a raw file with a column missing here is refused.
RAW_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "action_type": "Detailed shot action as the play-by-play names it.",
    "combined_shot_type": "Broad shot family grouping the action types.",
    "game_event_id": "Number of the event in the game's play-by-play.",
    "game_id": "NBA game identifier; every shot of one game shares it.",
    "lat": "Court latitude of the shot location: a linear function of loc_y, not a GPS position. Model feature.",
    "loc_x": "Horizontal position of the shot relative to the basket, in tenths of a foot.",
    "loc_y": "Position of the shot along the court's length relative to the basket, in tenths of a foot.",
    "lon": "Court longitude of the shot location: a linear function of loc_x, not a GPS position. Model feature.",
    "minutes_remaining": "Whole minutes left on the period clock. Model feature.",
    "period": "Period of the game: 1 to 4 are quarters, 5 and up are overtimes. Model feature.",
    "playoffs": "1 for a playoff game, 0 for a regular-season game. Model feature.",
    "season": "NBA season of the game.",
    "seconds_remaining": "Seconds part of the period clock (with minutes_remaining).",
    "shot_distance": "Distance from the basket in whole feet. Model feature.",
    "shot_made_flag": "Target: 1 if the shot went in, 0 if it missed; missing when the outcome is withheld.",
    "shot_type": "Two- or three-point field goal attempt.",
    "shot_zone_area": "Side of the court the shot came from.",
    "shot_zone_basic": "Court zone of the shot.",
    "shot_zone_range": "Distance band of the shot.",
    "team_id": "NBA identifier of Kobe Bryant's team.",
    "team_name": "Name of Kobe Bryant's team.",
    "game_date": "Date of the game (ISO text, YYYY-MM-DD).",
    "matchup": "Teams of the game: 'LAL @ XXX' away, 'LAL vs. XXX' at home.",
    "opponent": "Abbreviation of the opposing team.",
    "shot_id": "Identifier of the shot, unique over both course files: the row key.",
}
DICTIONARY_COLUMNS = ["column", "type", "values", "description"]
# Up to this many distinct values are listed one by one (text with counts); more are summarised.
MAX_LISTED_VALUES = 8
MOST_FREQUENT_SHOWN = 3
_ORDERED_TEXT = r"^\d{4}-\d{2}(-\d{2})?$"  # dates (2000-10-31) and seasons (2000-01) sort as text


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() else format(float(value), ".10g")


def value_summary(series: pd.Series) -> str:
    """What values a column holds, in one line: a list, a range, or the most frequent values."""
    present = series.dropna()
    distinct = present.nunique()
    if series.dtype.kind in "iuf":
        if distinct <= 2:
            text = ", ".join(_number(value) for value in sorted(present.unique()))
        else:
            text = f"{_number(present.min())} to {_number(present.max())}, {distinct} distinct"
    else:
        counts = sorted(present.astype(str).value_counts().items(), key=lambda item: (-item[1], item[0]))
        listed = [f"{value} ({rows})" for value, rows in counts]
        if distinct <= MAX_LISTED_VALUES:
            text = "; ".join(listed)
        elif present.astype(str).str.match(_ORDERED_TEXT).all():
            text = f"{present.min()} to {present.max()}, {distinct} distinct"
        else:
            text = f"{distinct} distinct; most frequent: " + "; ".join(listed[:MOST_FREQUENT_SHOWN])
    if distinct == len(series) and len(series) > MAX_LISTED_VALUES:
        text += " (unique per row)"
    missing = int(series.isna().sum())
    if missing:
        text += f"; {missing} missing"
    return text


def data_dictionary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per column of a raw table: column, type, values and description."""
    undocumented = [column for column in frame.columns if column not in RAW_COLUMN_DESCRIPTIONS]
    if undocumented:
        raise ValueError(
            f"no description for column(s) {', '.join(map(repr, undocumented))}: "
            "add them to RAW_COLUMN_DESCRIPTIONS before generating the data dictionary."
        )
    rows = [
        {
            "column": column,
            "type": "string" if frame[column].dtype == object else str(frame[column].dtype),
            "values": value_summary(frame[column]),
            "description": RAW_COLUMN_DESCRIPTIONS[column],
        }
        for column in frame.columns
    ]
    return pd.DataFrame(rows, columns=DICTIONARY_COLUMNS)


def data_dictionary_csv(frame: pd.DataFrame) -> str:
    """The data dictionary as the CSV text committed in Docs/Data_Dictionaries."""
    return data_dictionary(frame).to_csv(index=False, lineterminator="\n")


def write_data_dictionaries(raw_dir, output_dir) -> list:
    """Write ``<dataset>.csv`` in ``output_dir`` for each course file in ``raw_dir``; return the paths."""
    written = []
    for file_name in config.DATASET_FILES.values():
        target = Path(output_dir) / f"{Path(file_name).stem}.csv"
        target.write_text(data_dictionary_csv(pd.read_parquet(Path(raw_dir) / file_name)))
        written.append(target)
    return written


def outcome_counts(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Shots per outcome in each base (``1``, ``0`` or ``unlabelled``): columns base, outcome, shots."""
    counts = {
        name: frame[config.TARGET]
        .value_counts(dropna=False)
        .rename(index=lambda v: "unlabelled" if pd.isna(v) else f"{int(v)}")
        for name, frame in raw.items()
    }
    return pd.concat(counts, names=["base", config.TARGET]).rename("shots").reset_index()
