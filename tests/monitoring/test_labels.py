"""The label store: append-only, one file per run, a known label never replaced, every error names its file."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import synthetic_shots
from kobe_mlops import config
from kobe_mlops.monitoring import labels
from kobe_mlops.monitoring.labels import LabelStoreError, LabelStoreWriter, read_labels, store_files


def scored(shot_ids, outcomes) -> pd.DataFrame:
    """Scored rows as an application run hands them over, dated over nine days."""
    rows = len(shot_ids)
    frame = synthetic_shots(rows).drop(columns=config.TARGET)
    dates = [f"2001-01-0{1 + i % 9}" for i in range(rows)]
    predicted = {config.PROBABILITY_COLUMN: 0.4, config.PREDICTION_COLUMN: 0, config.TARGET: outcomes}
    return frame.assign(shot_id=shot_ids, game_date=dates, **predicted)


def append_labels(scored_rows: pd.DataFrame, run_id: str, source: str, paths) -> tuple[int, Path | None]:
    """What an application run does with its labelled rows: stage them, then publish the file."""
    with LabelStoreWriter(run_id, source, paths) as writer:
        writer.update(scored_rows)
    return writer.rows_appended, writer.publish()


@pytest.fixture
def paths(tmp_path):
    return config.workspace_paths(tmp_path)


def test_each_run_appends_one_file_and_reads_accumulate(paths):
    empty = read_labels(paths)
    assert empty.rows.empty and empty.files == 0 and list(empty.rows.columns) == labels.STORE_COLUMNS
    first, _ = append_labels(scored([1, 2, 3], [1.0, 0.0, np.nan]), "run-a", "a.parquet", paths)
    second, _ = append_labels(scored([4, 5], [0.0, 1.0]), "run-b", "b.parquet", paths)
    assert (first, second) == (2, 2)  # the unlabelled row of run a is not stored
    unlabelled = append_labels(scored([6, 7], [np.nan, np.nan]), "run-c", "unlabelled.parquet", paths)
    assert unlabelled == (0, None)  # no file for a run without labels
    assert "nothing was added" in labels.append_summary(0, "unlabelled.parquet")
    assert len(store_files(paths)) == 2
    assert all(pq.read_schema(path) == labels.SCHEMA for path in store_files(paths))  # what any reader gets
    stored = read_labels(paths)
    assert sorted(stored.rows["shot_id"]) == [1, 2, 4, 5]
    assert set(stored.rows[labels.FILE_COLUMN]) == {"a.parquet", "b.parquet"}
    assert stored.rows[config.TARGET].dtype == "int64" and stored.conflicts == 0


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
    assert stored.conflicts == 1 and stored.rows_read - len(stored.rows) == 2 and stored.rows_read == 5


def test_labelled_rows_without_a_game_date_are_refused_naming_the_file(paths):
    with pytest.raises(LabelStoreError, match=r"^no_dates.parquet: labelled rows without a game_date"):
        append_labels(scored([1, 2], [1.0, 0.0]).drop(columns="game_date"), "run-a", "no_dates.parquet", paths)
    assert store_files(paths) == [] and not list(paths.label_store_dir.rglob("*.tmp"))


def dateless(good, bad):
    table = pq.read_table(good)
    pq.write_table(table.set_column(1, "game_date", pa.nulls(table.num_rows, pa.string())), bad)


def garbage(good, bad):
    bad.write_bytes(b"PAR1 this is not parquet")


@pytest.mark.parametrize("spoil, problem", [(dateless, "has rows without a game_date"), (garbage, "cannot be read")])
def test_a_bad_store_file_is_named_and_nothing_is_rewritten(paths, spoil, problem):
    append_labels(scored([1, 2], [1.0, 0.0]), "run-a", "a.parquet", paths)
    good = store_files(paths)[0]
    bad = good.parent / "0_bad.parquet"
    spoil(good, bad)
    content = bad.read_bytes()
    with pytest.raises(LabelStoreError, match=f"0_bad.parquet: label store file {problem}") as error:
        read_labels(paths)
    assert "Nothing in the store was changed" in str(error.value)
    assert bad.read_bytes() == content and good.is_file()


def test_batches_stream_into_one_hidden_file_and_a_failure_or_a_kill_leaves_the_store_unchanged(paths):
    append_labels(scored([1], [1.0]), "run-a", "a.parquet", paths)
    with LabelStoreWriter("run-b", "b.parquet", paths) as writer:
        for part in np.array_split(scored(list(range(10, 40)), [1.0, 0.0] * 15), 6):
            writer.update(part)
    assert len(store_files(paths)) == 1 and len(read_labels(paths).rows) == 1  # staged, not published
    writer.publish()
    assert writer.rows_appended == 30 and len(store_files(paths)) == 2
    before = sorted(path.read_bytes() for path in store_files(paths))
    with pytest.raises(RuntimeError, match="scoring failed"):
        with LabelStoreWriter("run-c", "c.parquet", paths) as failing:
            failing.update(scored([50, 51], [1.0, 0.0]))
            raise RuntimeError("scoring failed")
    assert not list(paths.label_store_dir.rglob("*.tmp"))
    with LabelStoreWriter("run-d", "d.parquet", paths) as killed:  # closed, never published: as after a kill
        killed.update(scored([60], [1.0]))
    assert labels.clean_staging(paths) and not list(paths.label_store_dir.rglob("*.tmp"))
    assert sorted(path.read_bytes() for path in store_files(paths)) == before


def test_a_failed_batch_leaves_no_staged_file_and_the_writer_refuses_the_next_ones(paths, monkeypatch):
    """As on a full disk: the parquet writer creates its file, then cannot write its header."""

    def no_space(where, *args, **kwargs):
        Path(where).write_bytes(b"PAR")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(labels.pq, "ParquetWriter", no_space)
    writer = LabelStoreWriter("run-a", "a.parquet", paths)
    with pytest.raises(LabelStoreError, match="No space left"):
        writer.update(scored([1], [1.0]))
    assert not list(paths.label_store_dir.rglob("*.tmp"))
    monkeypatch.undo()  # space again: the next batch still must not start a store file without the first
    with pytest.raises(LabelStoreError, match="No space left"):
        writer.update(scored([2], [0.0]))
    with pytest.raises(LabelStoreError, match="No space left"):
        writer.publish()
    writer.abort()
    assert not list(paths.label_store_dir.rglob("*.tmp")) and store_files(paths) == []
