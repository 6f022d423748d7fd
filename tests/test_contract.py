import numpy as np
import pandas as pd
import pytest

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import (
    FEATURE_RULES,
    REASON_COLUMN,
    DataContractError,
    read_table,
    split_valid_rows,
    violations_message,
)


def valid_rows(rows: int = 4) -> pd.DataFrame:
    return pd.DataFrame({
        "shot_id": range(1, rows + 1), "lat": [33.9] * rows, "lon": [-118.3] * rows,
        "minutes_remaining": [5] * rows, "period": [2] * rows, "playoffs": [0] * rows,
        "shot_distance": [24] * rows, config.TARGET: [1.0, 0.0, np.nan, 1.0][:rows],
    })


def test_all_valid_rows_pass_with_contract_types():
    valid, rejected = split_valid_rows(valid_rows())
    assert len(valid) == 4 and rejected.empty
    assert valid["period"].dtype == "int64" and valid["lat"].dtype == "float64"


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("lat", np.nan, "lat is missing"),
        ("lon", "abc", "lon is not a number: abc"),
        ("period", 0, "period=0 outside whole number in [1, 10]"),
        ("playoffs", 2, "playoffs=2 outside"),
        ("minutes_remaining", 3.5, "minutes_remaining=3.5 is not a whole number"),
        ("shot_distance", -1, "shot_distance=-1 outside number in [0, 94]"),
        ("lat", 40.7, "lat=40.7 outside"),
        (config.TARGET, 3, "shot_made_flag must be 0, 1 or missing, got 3"),
    ],
)
def test_each_broken_rule_rejects_the_row_with_a_reason(column, value, reason):
    frame = valid_rows().astype({column: object})
    frame.loc[1, column] = value
    valid, rejected = split_valid_rows(frame)
    assert len(valid) + len(rejected) == len(frame)
    assert rejected["shot_id"].tolist() == [2]
    assert reason in rejected[REASON_COLUMN].iloc[0]


def test_several_problems_in_one_row_are_all_named():
    frame = valid_rows().astype({"lat": object})
    frame.loc[0, ["lat", "period"]] = ["x", 99]
    _, rejected = split_valid_rows(frame)
    assert "lat is not a number" in rejected[REASON_COLUMN].iloc[0]
    assert "period=99" in rejected[REASON_COLUMN].iloc[0]


def test_extra_and_reordered_columns_are_fine():
    frame = valid_rows()
    frame["comment"] = "extra"
    valid, rejected = split_valid_rows(frame[list(reversed(frame.columns))])
    assert len(valid) == 4 and rejected.empty


def test_missing_required_column_names_the_file_and_column():
    with pytest.raises(DataContractError, match=r"prod\.parquet: missing required column\(s\) 'playoffs'"):
        split_valid_rows(valid_rows().drop(columns="playoffs"), "prod.parquet")


def test_violations_message_names_rows_and_columns():
    frame = valid_rows()
    frame.loc[3, "period"] = 12
    message = violations_message(frame)
    assert message.startswith("1 of 4 rows") and "row 3: period=12" in message
    assert violations_message(valid_rows()) is None


def test_every_rule_has_a_meaning_and_an_ordered_range():
    for rule in FEATURE_RULES.values():
        assert rule.minimum < rule.maximum and rule.meaning


def test_read_table_failures_are_one_clear_message(tmp_path):
    with pytest.raises(DataContractError, match="file not found"):
        read_table(tmp_path / "absent.parquet")
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(DataContractError, match="empty"):
        read_table(empty)
    text = tmp_path / "text.parquet"
    text.write_text("lat,lon\n1,2\n")
    with pytest.raises(DataContractError, match="not a readable parquet file"):
        read_table(text)
    good = tmp_path / "good.parquet"
    valid_rows().to_parquet(good)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataContractError, match="truncated.parquet: not a readable parquet file"):
        read_table(truncated)
    no_rows = tmp_path / "no_rows.parquet"
    valid_rows().iloc[0:0].to_parquet(no_rows)
    with pytest.raises(DataContractError, match="has no rows"):
        read_table(no_rows)
    assert len(read_table(good)) == 4
