"""The scoring model's lineage and monitoring reference (monitoring/scoring_model.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from kobe_mlops import config
from kobe_mlops.monitoring import labels, scoring_model
from kobe_mlops.monitoring.calculators import MIN_REFERENCE_ROWS, MonitoringReference, newest_chunks


def test_a_version_uri_is_its_own_lineage():
    resolved = scoring_model.registered_version("models:/kobe-shot-model/3", client=object())
    assert resolved == {"model_name": "kobe-shot-model", "model_version": "3"}
    assert scoring_model.pinned_uri(resolved) == "models:/kobe-shot-model/3"


@pytest.mark.parametrize("uri", ["runs:/0123abcd/model", "/tmp/some/model", "file:///tmp/model"])
def test_a_uri_without_a_registered_version_stops_clearly(uri):
    no_versions = SimpleNamespace(search_model_versions=lambda filter_string: [])
    with pytest.raises(scoring_model.LineageError, match="figures"):
        scoring_model.registered_version(uri, client=no_versions)


VERSION = SimpleNamespace(version="2")


class Halves:
    """A pyfunc stand-in: every shot at 0.5."""

    def predict(self, features):
        return pd.DataFrame({config.PROBABILITY_COLUMN: np.full(len(features), 0.5)}, index=features.index)


def stored(rows: int, runs: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.uniform(0, 10, rows) for name in config.FEATURES})
    frame[config.TARGET] = rng.integers(0, 2, rows).astype(float)
    frame["shot_id"] = np.arange(rows)
    frame["source_run_id"] = [f"run{i * runs // rows}" for i in range(rows)]
    return frame


def test_the_reference_moves_to_the_unseen_labelled_rows_once_there_are_enough(monkeypatch):
    initial = stored(500, 1).drop(columns=["shot_id", "source_run_id"]).assign(**{config.PROBABILITY_COLUMN: 0.4})
    monkeypatch.setattr(scoring_model.reads, "reference_scores", lambda client, version: initial)
    unseen = stored(750, 3)
    reference = scoring_model.monitoring_reference(Halves(), None, VERSION, unseen, None)
    assert isinstance(reference, MonitoringReference) and len(reference.own) == 750
    assert reference.rows[config.PROBABILITY_COLUMN].eq(0.5).all()  # scored again by the model
    too_few = scoring_model.monitoring_reference(Halves(), None, VERSION, unseen.head(MIN_REFERENCE_ROWS - 1), None)
    assert too_few.rows is too_few.initial


def test_a_version_without_logged_reference_rows_is_monitored_on_base_test(monkeypatch, tmp_path):
    monkeypatch.setattr(scoring_model.reads, "reference_scores", lambda client, version: None)
    paths = config.workspace_paths(tmp_path)
    paths.processed_dir.mkdir(parents=True)
    stored(200, 1).drop(columns=["shot_id", "source_run_id"]).to_parquet(paths.base_test)
    reference = scoring_model.monitoring_reference(Halves(), None, VERSION, stored(10, 1), paths)
    assert reference.source.startswith("base_test scored by version 2") and len(reference.rows) == 200


def test_known_labels_are_the_store_s_first_labels_before_the_date_and_its_newest_chunks(tmp_path):
    paths = config.workspace_paths(tmp_path)
    rng = np.random.default_rng(1)
    for run, ids in enumerate([np.arange(0, 900), np.arange(900, 2100), np.arange(2000, 3300), np.arange(150, 250)]):
        frame = stored(len(ids), 1).assign(shot_id=ids)
        frame["game_date"] = (pd.Timestamp("2001-01-01") + pd.to_timedelta(ids // 7, unit="D")).strftime("%Y-%m-%d")
        frame[config.TARGET] = rng.integers(0, 2, len(ids)).astype(float)  # repeats may disagree: the first is kept
        with labels.LabelStoreWriter(f"run{run}", "", paths) as writer:
            writer.update(frame)
        writer.publish()
    before, learned = pd.Timestamp("2002-03-05"), np.arange(0, 3300, 3)
    known = scoring_model.known_labels(before, learned, paths)

    everything = labels.read_labels(paths).rows
    expected = everything[pd.to_datetime(everything["game_date"]) < before]
    assert (known.rows, known.made) == (len(expected), int(expected[config.TARGET].sum()))
    unseen = expected[~np.isin(expected["shot_id"], learned)].reset_index(drop=True)
    unseen = unseen.assign(chunk=unseen[labels.RUN_COLUMN], **{config.PROBABILITY_COLUMN: 0.5})
    window = newest_chunks(unseen.iloc[0:0], unseen)
    assert known.newest[config.TARGET].tolist() == window[config.TARGET].tolist()
    assert set(known.newest[labels.RUN_COLUMN]) == {"run1", "run2"}  # the oldest chunk is outside the window
    columns = [*config.FEATURES, config.TARGET]
    pd.testing.assert_frame_equal(known.newest[columns], window[columns], check_dtype=False)
