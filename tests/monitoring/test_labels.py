"""The label store: append-only, one file per run, a known label never replaced, every error names its file."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kobe_mlops import config
from kobe_mlops.monitoring import labels
from kobe_mlops.monitoring.labels import LabelStoreError, LabelStoreWriter, append_labels, read_labels, store_files


def scored(shot_ids, outcomes, day="2001-01-0{}") -> pd.DataFrame:
    rows = len(shot_ids)
    return pd.DataFrame(
        {
            "shot_id": shot_ids,
            "game_date": [day.format(1 + i % 9) for i in range(rows)],
            "lat": np.linspace(33.9, 34.0, rows),
            "lon": np.full(rows, -118.3),
            "minutes_remaining": np.arange(rows) % 12,
            "period": np.ones(rows, dtype=int),
            "playoffs": np.zeros(rows, dtype=int),
            "shot_distance": np.full(rows, 24.0),
            config.PROBABILITY_COLUMN: np.full(rows, 0.4),
            config.PREDICTION_COLUMN: np.zeros(rows, dtype=int),
            config.TARGET: outcomes,
        }
    )


@pytest.fixture
def paths(tmp_path):
    return config.workspace_paths(tmp_path)


def test_each_run_appends_one_file_and_reads_accumulate(paths):
    first, _ = append_labels(scored([1, 2, 3], [1.0, 0.0, np.nan]), "run-a", "a.parquet", paths)
    second, _ = append_labels(scored([4, 5], [0.0, 1.0]), "run-b", "b.parquet", paths)
    assert (first, second) == (2, 2)  # the unlabelled row of run a is not stored
    assert len(store_files(paths)) == 2
    stored = read_labels(paths)
    assert sorted(stored.rows["shot_id"]) == [1, 2, 4, 5]
    assert set(stored.rows[labels.FILE_COLUMN]) == {"a.parquet", "b.parquet"}
    assert stored.rows[config.TARGET].dtype == "int64" and stored.conflicts == 0


def test_a_file_without_labels_adds_nothing(paths):
    appended, written = append_labels(scored([1, 2], [np.nan, np.nan]), "run-a", "unlabelled.parquet", paths)
    assert (appended, written) == (0, None)
    assert store_files(paths) == []
    assert "nothing was added" in labels.append_summary(appended, "unlabelled.parquet")


def test_a_conflicting_label_never_replaces_the_known_one_and_is_counted(paths):
    append_labels(scored([1, 2], [1.0, 0.0]), "run-a", "a.parquet", paths)
    with LabelStoreWriter("run-b", "b.parquet", paths) as writer:
        writer.update(scored([2, 3], [1.0, 1.0]))  # shot 2 relabelled
    assert writer.conflicts == 1
    writer.publish()
    append_labels(scored([3], [1.0]), "run-c", "c.parquet", paths)  # shot 3 again, same label
    stored = read_labels(paths)
    by_shot = stored.rows.set_index("shot_id")[config.TARGET].to_dict()
    assert by_shot == {1: 1, 2: 0, 3: 1}
    assert stored.conflicts == 1 and stored.duplicates == 2 and stored.rows_read == 5


def test_labelled_rows_without_a_game_date_are_refused_naming_the_file(paths):
    with pytest.raises(LabelStoreError, match=r"^no_dates.parquet: labelled rows without a game_date"):
        append_labels(scored([1, 2], [1.0, 0.0]).drop(columns="game_date"), "run-a", "no_dates.parquet", paths)
    assert store_files(paths) == [] and not list(paths.label_store_dir.rglob("*.tmp"))


def test_a_store_file_without_game_dates_is_named(paths):
    append_labels(scored([1], [1.0]), "run-a", "a.parquet", paths)
    table = pq.read_table(store_files(paths)[0])
    dateless = store_files(paths)[0].with_name("000000000000_dateless.parquet")
    pq.write_table(table.set_column(1, "game_date", pa.nulls(1, pa.string())), dateless)
    with pytest.raises(LabelStoreError, match="000000000000_dateless.parquet: label store file has rows without"):
        read_labels(paths)


def test_staged_labels_stay_invisible_until_published_and_a_killed_run_s_are_cleaned(paths):
    writer = LabelStoreWriter("run-a", "a.parquet", paths)
    with writer:
        writer.update(scored([1, 2], [1.0, 0.0]))
    assert store_files(paths) == [] and read_labels(paths).rows.empty  # staged, not published
    assert labels.clean_staging(paths) and not list(paths.label_store_dir.rglob("*.tmp"))  # as after a kill


def test_batches_stream_into_one_file_and_a_failure_leaves_the_store_unchanged(paths):
    append_labels(scored([1], [1.0]), "run-a", "a.parquet", paths)
    with LabelStoreWriter("run-b", "b.parquet", paths) as writer:
        for part in np.array_split(scored(list(range(10, 40)), [1.0, 0.0] * 15), 6):
            writer.update(part)
    writer.publish()
    assert writer.rows_appended == 30 and len(store_files(paths)) == 2
    before = sorted(path.read_bytes() for path in store_files(paths))
    with pytest.raises(RuntimeError, match="scoring failed"):
        with LabelStoreWriter("run-c", "c.parquet", paths) as failing:
            failing.update(scored([50, 51], [1.0, 0.0]))
            raise RuntimeError("scoring failed")
    assert sorted(path.read_bytes() for path in store_files(paths)) == before
    assert not list(paths.label_store_dir.rglob("*.tmp"))


def test_an_unreadable_store_file_is_named_and_nothing_is_rewritten(paths):
    append_labels(scored([1, 2], [1.0, 0.0]), "run-a", "a.parquet", paths)
    good = store_files(paths)[0]
    broken = good.parent / "999999999999_broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(LabelStoreError, match="999999999999_broken.parquet") as error:
        read_labels(paths)
    assert "Nothing in the store was changed" in str(error.value)
    assert broken.read_bytes() == b"PAR1 this is not parquet" and good.is_file()


def test_an_empty_store_reads_as_no_rows(paths):
    stored = read_labels(paths)
    assert stored.rows.empty and stored.files == 0 and list(stored.rows.columns) == labels.STORE_COLUMNS
