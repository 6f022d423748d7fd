"""The pandas engine streams: tiny record batches give the whole-frame outputs and figures.

Small files cut into batches of a few rows over several row groups, so every streaming path runs;
the reference is ``score_frame`` on ``read_table`` and the monitor on the whole frame.
"""

import os
import pickle
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deployment_support import UNUSABLE_FILES, DistanceModel, Keep, garble_row_group, outputs, shots, write

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import REASON_COLUMN, DataContractError, read_table
from kobe_mlops.deployment.application import apply_to_file, score_frame
from kobe_mlops.deployment.batches import Observers, RowCounts, ScoredBatch
from kobe_mlops.deployment.outputs import install, staged_outputs
from kobe_mlops.modeling.metrics import baseline_metrics, evaluate_probabilities
from kobe_mlops.monitoring import streaming_figures
from kobe_mlops.monitoring.calculators import Monitor, MonitoringReference
from kobe_mlops.monitoring.streaming_figures import (
    ApplicationFigures,
    LabelledMetrics,
    LearnedShots,
    MonitorFigures,
    ScoreSummary,
)
from kobe_mlops.tracking import names

TOLERANCE = 1e-9
LEARNED = np.arange(1000, 1040, 3)  # shot ids of dirty(): labelled, unlabelled and rejected rows


def dirty(rows: int = 60) -> pd.DataFrame:
    frame = shots(rows)
    frame.loc[[3, 4, 5, 6], "period"] = 0  # a whole tiny batch of rejects (batch_rows=4)
    frame.loc[17, "lat"] = np.nan
    frame.loc[23, "shot_distance"] = 120.0
    frame.loc[31, "playoffs"] = 3
    frame.loc[41, config.TARGET] = 2.0
    frame.loc[44, "minutes_remaining"] = 99
    return frame


def development(rows: int = 400) -> pd.DataFrame:
    frame = shots(rows, seed=11)
    frame[config.TARGET] = frame[config.TARGET].fillna(1.0)
    return frame


def monitor_of(development_frame: pd.DataFrame) -> Monitor:
    scored = score_frame(development_frame, DistanceModel()).predictions
    return Monitor(MonitoringReference(scored, "development rows scored by the distance model"))


def figures(development_frame: pd.DataFrame) -> list:
    """The figures' observers on their own (every labelled row graded), and all of them in one
    :class:`ApplicationFigures` that never grades the rows of the :data:`LEARNED` shot ids."""
    rate = float(development_frame[config.TARGET].mean())
    learned = LearnedShots(np.array([], dtype="int64"))
    monitor = monitor_of(development_frame)
    alone = [MonitorFigures(monitor, learned, rate), LabelledMetrics(rate), ScoreSummary()]
    return [*alone, ApplicationFigures(monitor, rate, LEARNED)]


def text_and_gaps() -> pd.DataFrame:
    frame = dirty()
    frame["lat"] = frame["lat"].astype(str).replace("nan", None)
    frame.loc[9, "lat"] = "north"  # text in a numeric column: the contract's detailed check
    frame["playoffs"] = frame["playoffs"].astype("Int64")
    frame.loc[12, "playoffs"] = pd.NA  # an integer column with a gap: pandas reads it as float64
    return frame


@pytest.mark.parametrize(
    "frame, row_group_size, batch_rows, workers",
    [(dirty, 16, 1, 1), (dirty, 16, 4, 3), (dirty, 16, 7, 2), (dirty, 16, 1000, 1), (text_and_gaps, 8, 3, 2)],
)
def test_tiny_batches_give_the_whole_frame_outputs(tmp_path, frame, row_group_size, batch_rows, workers):
    path = write(frame(), tmp_path / "prod.parquet", row_group_size)
    reference = score_frame(read_table(path), DistanceModel(), source=path)
    result = apply_to_file(path, DistanceModel(), outputs(tmp_path), batch_rows=batch_rows, workers=workers)
    assert result.counts == reference.counts and result.counts["rows_input"] == 60
    pd.testing.assert_frame_equal(pd.read_parquet(outputs(tmp_path).predictions), reference.predictions)
    rejected = pd.read_parquet(outputs(tmp_path).rejected)
    pd.testing.assert_frame_equal(rejected, reference.rejected, check_dtype=False)
    if frame is text_and_gaps:
        reasons = rejected[REASON_COLUMN].tolist()
        assert "lat is not a number: north" in reasons and "playoffs is missing" in reasons


def assert_labelled_figures(folded: dict, graded: pd.DataFrame, rate: float) -> None:
    """``folded`` (:meth:`LabelledMetrics.result`) is scikit-learn's figures of the ``graded`` rows."""
    truth, probability = graded[config.TARGET], graded[config.PROBABILITY_COLUMN]
    assert folded["rows"] == len(graded)
    assert folded["metrics"] == pytest.approx(evaluate_probabilities(truth, probability), abs=TOLERANCE)
    assert folded["baseline"] == pytest.approx(baseline_metrics(truth, rate), abs=TOLERANCE)
    assert folded["observed_make_rate"] == pytest.approx(truth.mean(), abs=TOLERANCE)
    assert folded["mean_probability"] == pytest.approx(probability.mean(), abs=TOLERANCE)
    null = baseline_metrics(truth, float(truth.mean()))["log_loss"]
    assert folded["null_log_loss"] == pytest.approx(null, abs=TOLERANCE)


def test_streamed_figures_equal_the_whole_frame_figures(tmp_path):
    path = write(dirty(), tmp_path / "prod.parquet")
    dev = development()
    reference = score_frame(read_table(path), DistanceModel(), source=path)
    whole = apply_to_file(path, DistanceModel(), observers=figures(dev), batch_rows=1000, workers=1)
    tiny = apply_to_file(path, DistanceModel(), observers=figures(dev), batch_rows=2, workers=3)
    predictions, rate = reference.predictions, float(dev[config.TARGET].mean())
    labelled = predictions[predictions[config.TARGET].notna()]
    learned = labelled["shot_id"].isin(LEARNED)
    graded = labelled[~learned]
    assert learned.any() and len(graded) and predictions[config.TARGET].isna().any() and learned.sum() < len(LEARNED)
    expected_scores = {
        "mean_probability": predictions[config.PROBABILITY_COLUMN].mean(),
        "predicted_make_rate": predictions[config.PREDICTION_COLUMN].mean(),
    }
    every_labelled_row = monitor_of(dev).evaluate(predictions, labelled, rate, "production file")
    graded_rows = monitor_of(dev).evaluate(predictions, graded, rate, "production")
    for result in (whole, tiny):
        pd.testing.assert_frame_equal(result.observer(MonitorFigures).result(), every_labelled_row, rtol=1e-9)
        assert_labelled_figures(result.observer(LabelledMetrics).result(), labelled, rate)
        assert result.observer(ScoreSummary).result() == pytest.approx(expected_scores, abs=TOLERANCE)

        application = result.observer(ApplicationFigures)
        folded = application.result("production")
        pd.testing.assert_frame_equal(folded["table"], graded_rows, rtol=1e-9)
        assert_labelled_figures(folded["labelled"], graded, rate)
        assert folded["scores"] == pytest.approx(expected_scores, abs=TOLERANCE)
        assert folded["rows_seen_in_training"] == learned.sum()
        counts = application.page_tables()[names.GRADED_SCORE_COUNTS_ARTIFACT].set_index("probability")
        by_label = graded.groupby(graded[config.PROBABILITY_COLUMN].round(4))[config.TARGET]
        expected_counts = pd.DataFrame({"misses": by_label.apply(lambda t: (t == 0).sum()), "makes": by_label.sum()})
        pd.testing.assert_frame_equal(counts, expected_counts.rename_axis("probability"), check_dtype=False)
        scored = application.page_tables()[names.SCORE_COUNTS_ARTIFACT].set_index("probability")["rows"]
        expected_scored = predictions[config.PROBABILITY_COLUMN].round(4).value_counts().sort_index()
        pd.testing.assert_series_equal(scored, expected_scored, check_names=False, check_dtype=False)


@pytest.mark.parametrize("truth", [[0, 0, 0], [1, 1], [0, 1, 1, 0, 1]])
def test_the_null_model_s_figures_from_class_counts_equal_scikit_learn_s(truth):
    positives = sum(truth)
    counted = streaming_figures._constant_metrics(positives, len(truth) - positives, 0.4)
    assert counted == pytest.approx(baseline_metrics(truth, 0.4), abs=1e-12, nan_ok=True)


def test_a_corrupt_row_group_names_file_and_group_and_keeps_the_previous_outputs(tmp_path):
    path = tmp_path / "prod.parquet"
    write(shots(64), path, row_group_size=16)
    previous = outputs(tmp_path)
    apply_to_file(path, DistanceModel(), previous, batch_rows=5)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in previous}
    garble_row_group(path, 2)
    model = DistanceModel()
    with pytest.raises(DataContractError, match=r"prod\.parquet: row group 2 of 4 \(rows 32 to 47\) is not readable"):
        apply_to_file(path, model, previous, batch_rows=5)
    assert model.inputs  # the first row groups were scored before the failure
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in previous} == before
    assert sorted(os.listdir(tmp_path)) == ["predictions.parquet", "prod.parquet", "rejected.parquet"]


@pytest.mark.parametrize("case", [*UNUSABLE_FILES, "folder"])
def test_unusable_files_fail_before_any_output(tmp_path, case):
    path = tmp_path / "bad.parquet"
    write_bad, message = UNUSABLE_FILES.get(case, (lambda p: p.mkdir(), "is a folder, expected a parquet file"))
    write_bad(path)
    with pytest.raises(DataContractError, match=re.escape(f"{path}: {message}")):
        apply_to_file(path, DistanceModel(), outputs(tmp_path / "out"))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_file_whose_rows_are_all_rejected_writes_two_outputs_and_never_calls_the_model(tmp_path):
    path = write(shots(10).assign(period=0), tmp_path / "prod.parquet")
    model = DistanceModel()
    result = apply_to_file(path, model, outputs(tmp_path), observers=figures(development()), batch_rows=3)
    assert model.inputs == [] and result.counts["rows_rejected"] == 10 and result.counts["rows_scored"] == 0
    assert pd.read_parquet(outputs(tmp_path).predictions).empty
    assert len(pd.read_parquet(outputs(tmp_path).rejected)) == 10
    assert result.observer(MonitorFigures).result().empty
    assert result.observer(LabelledMetrics).result() == {}
    assert result.observer(ApplicationFigures).result()["labelled"] == {}


# --- Observers: merge, pickle, bounded counts -----------------------------------------


def test_merged_copies_equal_one_observer_that_saw_every_batch(tmp_path):
    """What Spark does: one pickled copy per partition, merged on the driver in any order."""
    path = write(dirty(), tmp_path / "prod.parquet")
    batches = apply_to_file(path, DistanceModel(), observers=[Keep()], batch_rows=5, workers=1).observer(Keep).result()
    template = Observers([RowCounts(), *figures(development())])
    one = pickle.loads(pickle.dumps(template))
    for batch in batches:
        one.update(batch)
    parts = [pickle.loads(pickle.dumps(template)) for _ in range(3)]
    for number, batch in enumerate(batches):
        parts[number % 3].update(batch)
    merged = pickle.loads(pickle.dumps(template))
    for part in reversed(parts):
        merged.merge(pickle.loads(pickle.dumps(part)))
    expected, actual = one.result(), merged.result()
    assert actual[0] == expected[0]
    pd.testing.assert_frame_equal(actual[1], expected[1], rtol=0, atol=TOLERANCE)
    assert actual[2]["metrics"] == pytest.approx(expected[2]["metrics"], abs=TOLERANCE)
    assert actual[3] == pytest.approx(expected[3], abs=TOLERANCE)
    pd.testing.assert_frame_equal(actual[4]["table"], expected[4]["table"], rtol=0, atol=TOLERANCE)
    assert actual[4]["labelled"]["metrics"] == pytest.approx(expected[4]["labelled"]["metrics"], abs=TOLERANCE)
    assert actual[4]["rows_seen_in_training"] == expected[4]["rows_seen_in_training"] > 0


def test_probability_counts_switch_to_a_grid_past_the_cap_and_report_the_auc_error_bound(monkeypatch):
    rng = np.random.default_rng(5)
    probability = 1 / (1 + np.exp(-rng.normal(0, 1.5, 30_000)))  # unrounded: one distinct value per row
    labels = (rng.random(len(probability)) < probability).astype(int)
    monkeypatch.setattr(streaming_figures, "MAX_DISTINCT", 1_000)
    monkeypatch.setattr(streaming_figures, "GRID_CELLS", 1 << 16)
    parts = []
    for chunk in np.array_split(np.arange(len(probability)), 3):
        metrics = LabelledMetrics(0.5)
        scored = pa.table({config.PROBABILITY_COLUMN: probability[chunk], config.TARGET: labels[chunk].astype(float)})
        metrics.update(ScoredBatch(scored, pa.table({})))
        parts.append(metrics)
    merged = parts[0].merge(parts[1]).merge(parts[2])
    auc, bound = merged.auc()
    assert not merged.probabilities.exact and merged.probabilities.counts.sum() == len(probability)
    assert 0 < bound < 1e-3
    assert abs(auc - evaluate_probabilities(labels, probability)["auc"]) <= bound + 1e-12


# --- Outputs: staged, then moved in -----------------------------------------------------------


def test_a_folder_replaces_a_file_and_a_file_replaces_a_folder(tmp_path):
    target = tmp_path / "predictions.parquet"
    target.write_text("old file")
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "part-00000.parquet").write_text("part")
    install(folder, target)
    assert target.is_dir() and (target / "part-00000.parquet").read_text() == "part"
    replacement = tmp_path / "file"
    replacement.write_text("new file")
    install(replacement, target)
    assert target.is_file() and target.read_text() == "new file"
    assert sorted(os.listdir(tmp_path)) == ["predictions.parquet"]


def test_staged_outputs_leave_nothing_behind_on_failure(tmp_path):
    targets = outputs(tmp_path)
    for target in targets:
        target.write_text("previous")
    with pytest.raises(RuntimeError), staged_outputs(targets) as staged:
        staged.predictions.write_text("half")
        raise RuntimeError("scoring failed")
    assert [target.read_text() for target in targets] == ["previous"] * 2
    assert sorted(os.listdir(tmp_path)) == ["predictions.parquet", "rejected.parquet"]


def test_a_failed_output_write_stops_the_sink_before_the_error_leaves(tmp_path, monkeypatch):
    """A sink still writing after the caller aborted would leave its file behind (a full disk)."""
    import time

    from kobe_mlops.deployment import application

    def full_disk(writers, tables):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(application, "_write", full_disk)
    sunk = []

    def slow_sink(table):
        time.sleep(0.05)
        sunk.append(table.num_rows)

    path = write(shots(200), tmp_path / "prod.parquet")
    with pytest.raises(OSError, match="No space left"):
        apply_to_file(path, DistanceModel(), outputs(tmp_path), batch_rows=8, workers=1, sink=slow_sink)
    calls = len(sunk)
    time.sleep(0.3)
    assert len(sunk) == calls, "the sink went on after apply_to_file returned"
