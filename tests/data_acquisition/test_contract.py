import numpy as np
import pandas as pd
import pytest

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import (
    FEATURE_RULES,
    REASON_COLUMN,
    DataContractError,
    broken_matrix_rows,
    feature_matrix,
    id_rejections,
    read_table,
    split_valid_rows,
    violations_message,
)


def valid_rows(rows: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "shot_id": range(1, rows + 1),
            "lat": [33.9] * rows,
            "lon": [-118.3] * rows,
            "minutes_remaining": [5] * rows,
            "period": [2] * rows,
            "playoffs": [0] * rows,
            "shot_distance": [24] * rows,
            config.TARGET: [1.0, 0.0, np.nan, 1.0][:rows],
        }
    )


def dated_rows(rows: int = 4) -> pd.DataFrame:
    return valid_rows(rows).assign(game_date=["2010-01-01", "2010-01-02", "2010-01-03", "2010-01-04"][:rows])


def test_all_valid_rows_pass_with_contract_types_whatever_the_extra_columns_order_and_date_type():
    valid, rejected = split_valid_rows(valid_rows())
    assert len(valid) == 4 and rejected.empty
    assert valid["period"].dtype == "int64" and valid["lat"].dtype == "float64"
    frame = dated_rows().assign(comment="extra")
    dates = pd.to_datetime(frame["game_date"])
    for variant in [
        frame[list(reversed(frame.columns))],
        frame.assign(game_date=dates),
        frame.assign(game_date=dates.dt.date),
    ]:
        valid, rejected = split_valid_rows(variant)
        assert len(valid) == 4 and rejected.empty


@pytest.mark.parametrize(
    "column, value, reason",
    [
        ("lat", np.nan, "lat is missing"),
        ("lon", "abc", "lon is not a number: abc"),
        ("period", 0, "period=0 outside whole number in [1, 10]"),
        ("minutes_remaining", 3.5, "minutes_remaining=3.5 is not a whole number"),
        ("shot_distance", -1, "shot_distance=-1 outside number in [0, 94]"),
        (config.TARGET, 3, "shot_made_flag must be 0, 1 or missing, got 3"),
        # Ids the later stages read: game_date in one format (the retraining's time split), shot_id whole.
        ("game_date", "01/01/2010", "game_date is not a date written %Y-%m-%d: 01/01/2010"),
        ("game_date", None, "game_date is missing"),
        ("game_date", "2010-02-30", "not a date written"),
        ("shot_id", None, "shot_id is missing"),
        ("shot_id", 2.5, "shot_id is not a whole number: 2.5"),
        ("shot_id", "x", "shot_id is not a whole number: x"),
    ],
)
def test_each_broken_rule_rejects_the_row_with_a_reason(column, value, reason):
    frame = dated_rows().astype({column: object})
    frame.loc[1, column] = value
    valid, rejected = split_valid_rows(frame, "prod.parquet")
    assert valid.index.tolist() == [0, 2, 3] and rejected.index.tolist() == [1]
    assert reason in rejected[REASON_COLUMN].iloc[0]
    assert pd.to_datetime(valid["game_date"], format="%Y-%m-%d").notna().all()  # the kept dates read one way


def test_missing_required_column_names_the_file_and_column():
    with pytest.raises(DataContractError, match=r"prod\.parquet: missing required column\(s\) 'playoffs'"):
        split_valid_rows(valid_rows().drop(columns="playoffs"), "prod.parquet")


def test_violations_message_names_rows_and_columns_and_needs_no_ids():
    frame = valid_rows()
    frame.loc[3, "period"] = 12
    message = violations_message(frame)
    assert message.startswith("1 of 4 rows") and "row 3: period=12" in message
    assert violations_message(valid_rows().drop(columns="shot_id")) is None
    assert violations_message(dated_rows().assign(game_date="01/01/2010", shot_id=1)) is None  # the served input


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


def reference_reason(row: pd.Series) -> str:
    """The contract read row by row, the slow and obvious way: the vectorised check must agree."""
    problems = []
    for name, rule in FEATURE_RULES.items():
        value = row[name]
        if pd.isna(value):
            problems.append(f"{name} is missing")
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            problems.append(f"{name} is not a number: {str(value)[:30]}")
            continue
        if not rule.minimum <= number <= rule.maximum:
            problems.append(f"{name}={number:g} outside {rule.describe()}")
        elif rule.integer and number != int(number):
            problems.append(f"{name}={number:g} is not a whole number")
    if not pd.isna(row[config.TARGET]) and row[config.TARGET] not in (0, 1):
        problems.append(f"{config.TARGET} must be 0, 1 or missing, got {row[config.TARGET]}")
    return "; ".join(problems)


def test_detailed_and_matrix_checks_agree_with_a_row_by_row_reading():
    rng = np.random.default_rng(7)
    rows = 400
    frame = valid_rows(1).sample(rows, replace=True, random_state=1).reset_index(drop=True).astype(object)
    frame["shot_id"] = range(rows)
    corruptions = [np.nan, "abc", -5, 0.5, 1e6, 3.25, 120, 2, np.inf]
    for column in [*config.FEATURES, config.TARGET]:
        hit = rng.random(rows) < 0.15
        frame.loc[hit, column] = rng.choice(np.array(corruptions, dtype=object), hit.sum())
    frame.index = rng.permutation(rows) + 1000  # an index that is neither sorted nor positional
    valid, rejected = split_valid_rows(frame)
    expected = frame.apply(reference_reason, axis=1)
    assert 0 < len(rejected) < rows and len(valid) + len(rejected) == rows
    expected_rejected = {shot: reason for shot, reason in zip(frame["shot_id"], expected, strict=False) if reason}
    assert dict(zip(rejected["shot_id"], rejected[REASON_COLUMN], strict=False)) == expected_rejected
    assert set(valid["shot_id"]) == set(frame["shot_id"]) - set(expected_rejected)
    # The served model's quick check flags the rows with a feature problem, the same on text and on numbers.
    feature_problem = frame.assign(**{config.TARGET: 1}).apply(reference_reason, axis=1) != ""
    matrix = feature_matrix(frame)
    np.testing.assert_array_equal(broken_matrix_rows(matrix), feature_problem.to_numpy())
    as_floats = frame[config.FEATURES].apply(pd.to_numeric, errors="coerce").astype("float64")
    np.testing.assert_array_equal(feature_matrix(as_floats), matrix)


def test_every_row_of_a_repeated_shot_id_is_quarantined_never_graded_twice():
    frame = dated_rows()
    frame.loc[3, "shot_id"] = 2  # the same shot twice, with opposite labels
    frame.loc[3, config.TARGET] = 1 - frame.loc[1, config.TARGET]
    valid, rejected = split_valid_rows(frame)
    assert valid["shot_id"].tolist() == [1, 3]
    assert rejected["shot_id"].tolist() == [2, 2]
    assert set(rejected[REASON_COLUMN]) == {"shot_id 2 appears 2 times in the file"}
    assert len(valid) + len(rejected) == len(frame)


def test_id_rejections_of_a_whole_file_find_repeats_across_batches():
    ids = dated_rows()[["shot_id", "game_date"]]
    ids.loc[3, "shot_id"] = 1
    ids.loc[2, "game_date"] = "2010/01/03"
    reasons = id_rejections(ids)
    assert reasons.to_dict() == {
        0: "shot_id 1 appears 2 times in the file",
        2: "game_date is not a date written %Y-%m-%d: 2010/01/03",
        3: "shot_id 1 appears 2 times in the file",
    }
    # Each half alone has no repeat: only the whole file's ids show it.
    assert id_rejections(ids.iloc[:2]).empty and list(id_rejections(ids.iloc[2:]).index) == [2]
    assert id_rejections(dated_rows()[["shot_id", "game_date"]]).empty
