"""A ``PipelineAplicacao`` run logs what the triggers read (names shared through ``tracking/names.py``),
and publishes nothing unless it was logged."""

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from conftest import copy_empty_store, empty_store_workspace, run_pipeline, synthetic_shots, workspace_env
from kobe_mlops import config
from kobe_mlops.modeling.registry import log_and_register, log_reference_scores
from kobe_mlops.modeling.train import Candidate
from kobe_mlops.monitoring import application_run, labels, triggers
from kobe_mlops.tracking import configure, names, reads


@pytest.mark.e2e
def test_a_real_application_run_logs_what_the_triggers_read(tracking):
    """The session pipeline's application run, and the training run of the version it scored with."""
    application = reads.latest_application_run(tracking)
    assert application is not None, "the session pipeline logged no finished PipelineAplicacao run"
    logged = application.data.metrics
    # Every drift figure with the threshold the triggers compare it with, logged beside it.
    psi = [names.psi_metric(feature) + end for feature in config.FEATURES for end in ("", "_upper", "_alert")]
    expected = [*triggers.APPLICATION_METRICS_READ, *psi]
    missing = [name for name in expected if name not in logged]
    assert not missing, f"PipelineAplicacao run {application.info.run_id} does not log {missing}"

    assert application.data.params.get("model_version"), "the application run names no registered version"
    version = reads.model_version_used(tracking, application)
    assert reads.training_run_of(tracking, version).info.run_name == config.RUN_NAMES["treinamento"]


# --- The step in this process, on a small registered model: commit at the end ----------------


def shots_file(path, rows: int, seed: int = 5, first_id: int = 1):
    """Production rows inside the data contract, with ids, dates and labels (some missing)."""
    frame = synthetic_shots(rows, seed)
    frame.insert(0, "shot_id", np.arange(first_id, first_id + rows))
    frame.insert(1, "game_date", "2015-01-01")
    frame[config.TARGET] = frame[config.TARGET].astype(float).where(np.arange(rows) % 5 != 0)
    frame.to_parquet(path, index=False)
    return path


def register(base_train, base_test, flip: bool = False) -> str:
    """A registered small pipeline (``flip``: learns the opposite) with its logged reference scores."""
    target = 1 - base_train[config.TARGET] if flip else base_train[config.TARGET]
    pipeline = Pipeline([("scale", StandardScaler()), ("trained_model", LogisticRegression())])
    candidate = Candidate("lr", pipeline.fit(base_train[config.FEATURES], target), {}, 0.6, pd.DataFrame())
    with mlflow.start_run() as run:
        log_reference_scores(candidate, base_test)
        _, version = log_and_register(candidate, base_train, version_tags={names.TRAINING_RUN_TAG: run.info.run_id})
    return version


def prepare(root: Path):
    """Prepared bases, a champion and one published step in workspace ``root``."""
    paths = config.workspace_paths(root)
    paths.processed_dir.mkdir(parents=True, exist_ok=True)
    base = synthetic_shots(600, seed=1)
    base.to_parquet(paths.data_filtered, index=False)
    base.iloc[:400].to_parquet(paths.base_train, index=False)
    base.iloc[400:].to_parquet(paths.base_test, index=False)
    configure()
    register(base.iloc[:400], base.iloc[400:])
    first = shots_file(root / "first.parquet", 300)
    application_run.run_application_step(str(first), paths=paths)
    return paths


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, empty_mlflow_db):
    """One prepared workspace per module (registering and the first step cost seconds); tests copy it."""
    root = tmp_path_factory.mktemp("prepared")
    with pytest.MonkeyPatch.context() as patch, empty_store_workspace(root, empty_mlflow_db, patch):
        prepare(root)
    return root


@pytest.fixture
def workspace(prepared, mlflow_workspace):
    """A private copy of the prepared workspace (its runs' artifacts stay under the original's store)."""
    shutil.copytree(prepared, mlflow_workspace, dirs_exist_ok=True)
    configure()
    return config.workspace_paths(mlflow_workspace)


def snapshot(paths) -> dict:
    """Everything a reader sees: both outputs, the label store's files and the latest finished run."""
    files = [paths.predictions_prod, paths.rejected_prod, *labels.store_files(paths)]
    latest = reads.latest_application_run(reads.client())
    return {"files": {str(p): p.read_bytes() for p in files}, "run": latest.info.run_id}


def leftovers(paths) -> list:
    return sorted(str(p) for p in [*paths.processed_dir.glob(".*.tmp"), *paths.label_store_dir.rglob(".*.tmp")])


FAULTS = {
    # after both outputs are written (the first thing the step does with them)
    "after-outputs": ("kobe_mlops.monitoring.application_run.drift_table", "scoring"),
    # the pandas engine hands each batch to the label writer while it scores
    "while-labels": ("kobe_mlops.monitoring.labels.LabelStoreWriter.update", "scoring"),
    "while-logging": ("kobe_mlops.monitoring.application_run.log_outputs", "logging the MLflow run"),
}


@pytest.mark.parametrize("target, stage", FAULTS.values(), ids=list(FAULTS))
def test_a_failure_at_any_point_changes_nothing_and_says_what_failed(target, stage, workspace, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(target, broken)
    before = snapshot(workspace)
    second = shots_file(tmp_path / "second.parquet", 200, seed=9, first_id=1000)
    with pytest.raises(application_run.ApplicationStepError) as error:
        application_run.run_application_step(str(second), paths=workspace)
    message = str(error.value)
    assert "\n" not in message and f"failed while {stage}" in message and "unchanged" in message
    assert snapshot(workspace) == before
    assert leftovers(workspace) == []
    run = reads.recent_runs(reads.client(), 1)[0]  # the failed one
    assert run.info.status == "FAILED" and run.data.tags[names.FAILURE_TAG].startswith(stage)


def test_the_version_that_scored_is_the_version_logged(workspace, tmp_path, monkeypatch):
    """A promotion between resolving the alias and logging changes neither the scores nor the logged version."""
    client = reads.client()
    bases = pd.read_parquet(workspace.base_train), pd.read_parquet(workspace.base_test)
    promoted = register(*bases, flip=True)  # moves @champion to a model that scores the other way
    client.set_registered_model_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS, "1")
    real_engine = application_run.apply_with_engine

    def promote_then_score(*args, **kwargs):
        client.set_registered_model_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS, promoted)
        return real_engine(*args, **kwargs)

    monkeypatch.setattr(application_run, "apply_with_engine", promote_then_score)
    incoming = shots_file(tmp_path / "during_promotion.parquet", 100, seed=11)
    application_run.run_application_step(str(incoming), paths=workspace)
    run = reads.latest_application_run(client)
    assert run.data.params["model_version"] == "1"
    predictions = pd.read_parquet(workspace.predictions_prod)
    assert set(predictions[names.MODEL_VERSION_COLUMN]) == {"1"}
    version_1 = mlflow.pyfunc.load_model(f"models:/{config.REGISTERED_MODEL_NAME}/1")
    expected = version_1.predict(pd.read_parquet(incoming)[config.FEATURES])[config.PROBABILITY_COLUMN]
    np.testing.assert_allclose(predictions[config.PROBABILITY_COLUMN], expected, rtol=0, atol=1e-12)


def test_a_run_cleans_what_a_killed_run_left_and_logs_a_bounded_sample_of_the_whole_outputs(
    workspace, tmp_path, monkeypatch
):
    killed = [
        workspace.processed_dir / f".{workspace.predictions_prod.name}.0123456789ab.tmp",
        workspace.processed_dir / f"..{workspace.rejected_prod.name}.0123456789ab.tmp.ba9876543210.tmp",
        labels.store_files(workspace)[0].parent / ".205706510374_deadrun.parquet.x1y2z3.tmp",
    ]
    for path in killed:
        path.write_bytes(b"partial")
    monkeypatch.setattr(application_run, "SAMPLE_ROWS", 40)
    application_run.run_application_step(str(shots_file(tmp_path / "big.parquet", 500)), paths=workspace)
    assert not any(path.exists() for path in killed) and leftovers(workspace) == []
    client = reads.client()
    run = reads.latest_application_run(client)
    local = client.download_artifacts(run.info.run_id, "data/predictions_prod.parquet", str(tmp_path))
    assert len(pd.read_parquet(local)) == 40 and len(pd.read_parquet(workspace.predictions_prod)) == 500
    sources = {json.loads(item.dataset.source)["uri"] for item in run.inputs.dataset_inputs}
    # MLflow reuses a dataset it already holds (same name and digest): the empty rejected sample
    # keeps the source the prepared workspace logged it with.
    assert str(workspace.predictions_prod) in sources
    assert {Path(source).name for source in sources} == {workspace.predictions_prod.name, workspace.rejected_prod.name}
    assert (
        pq.read_schema(workspace.predictions_prod).metadata[names.RUN_ID_METADATA.encode()] == run.info.run_id.encode()
    )

    # The tables the dashboard draws add up to the run's own counts (their values: test_streaming.py).
    def table(artifact):
        return pd.read_json(client.download_artifacts(run.info.run_id, artifact, str(tmp_path)), orient="split")

    assert table(names.SCORE_COUNTS_ARTIFACT)["rows"].sum() == run.data.metrics[names.ROWS_SCORED] == 500
    graded = table(names.GRADED_SCORE_COUNTS_ARTIFACT)
    assert graded[["misses", "makes"]].to_numpy().sum() == run.data.metrics[names.ROWS_EVALUATED]
    drift = table(names.DRIFT_DISTRIBUTIONS_ARTIFACT)
    per_base = drift.groupby(["feature", "base"])["rows"].sum().unstack()
    assert set(per_base.index) == set(config.FEATURES) and (per_base["production"] == 500).all()


def test_conflicting_labels_are_counted_and_logged_and_the_known_label_kept(workspace, tmp_path):
    first = pd.read_parquet(workspace.predictions_prod)
    flipped = pd.read_parquet(shots_file(tmp_path / "again.parquet", 300))
    flipped[config.TARGET] = 1 - flipped[config.TARGET]  # every labelled shot relabelled
    flipped.to_parquet(tmp_path / "flipped.parquet", index=False)
    _, _, logged = application_run.run_application_step(str(tmp_path / "flipped.parquet"), paths=workspace)
    labelled = int(first[config.TARGET].notna().sum())
    assert logged[names.LABEL_CONFLICTS] == labelled
    run = reads.latest_application_run(reads.client())
    assert run.data.metrics[names.LABEL_CONFLICTS] == labelled
    stored = labels.read_labels(workspace).rows.set_index("shot_id")[config.TARGET]
    known = first.dropna(subset=[config.TARGET]).set_index("shot_id")[config.TARGET].astype(int)
    pd.testing.assert_series_equal(stored.loc[known.index], known, check_names=False)


def test_a_figure_that_cannot_be_measured_is_not_logged(workspace, tmp_path):
    rejected = pd.read_parquet(shots_file(tmp_path / "any.parquet", 30)).assign(lat=np.nan)
    rejected.to_parquet(tmp_path / "no_lat.parquet", index=False)
    _, _, logged = application_run.run_application_step(str(tmp_path / "no_lat.parquet"), paths=workspace)
    metrics = reads.latest_application_run(reads.client()).data.metrics
    assert metrics[names.ROWS_SCORED] == 0 and metrics[names.ROWS_REJECTED] == 30
    assert all(np.isfinite(value) for value in metrics.values())
    for name in (names.ESTIMATED_LOG_LOSS, names.MEAN_PROBABILITY, "estimated_log_loss_all_rows", "psi_lat"):
        assert name not in metrics
    assert "No label-free estimate" in application_run.application_summary(logged, "no_lat.parquet")


@pytest.fixture
def small_disk(mlflow_workspace, empty_mlflow_db, monkeypatch):
    """The workspace on a tmpfs of its own (root only), whose size the test then shrinks."""
    disk = mlflow_workspace / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        copy_empty_store(empty_mlflow_db, disk / "mlflow.db")
        monkeypatch.setenv("KOBE_WORKSPACE", str(disk))
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.e2e
def test_a_full_disk_at_any_point_changes_nothing(small_disk, tmp_path):
    """A real ENOSPC while writing outputs, labels, artifacts or the store: the previous state stays."""
    paths = prepare(small_disk)
    incoming = shots_file(tmp_path / "large.parquet", 300_000, seed=13, first_id=10_000)
    failures = []
    for free_mib in (1, 8, 16, 18, 19, 20, 21, 22, 23, 24, 26):
        used = shutil.disk_usage(small_disk).used
        subprocess.run(["mount", "-o", f"remount,size={used + free_mib * 2**20}", str(small_disk)], check=True)
        before = snapshot(paths)
        try:
            application_run.run_application_step(str(incoming), paths=paths)
        except Exception as exc:
            failures.append(f"{free_mib} MiB free: {type(exc).__name__}: {exc}")
            assert snapshot(paths) == before, failures[-1]
            assert leftovers(paths) == [], failures[-1]
            assert "\n" not in str(exc)
        subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
    assert failures, "the disk never filled up: the test checked nothing"


@pytest.mark.e2e
def test_a_step_killed_while_scoring_leaves_the_previous_state_and_the_next_start_cleans_up(workspace_copy, tmp_path):
    """kill -9 of run_all.py and its kernel mid-scoring; then a normal run."""
    import os
    import signal
    import sys
    import time

    paths = workspace_copy.paths
    course = pq.read_table(paths.raw_file("prod"))
    repeats = 3_000_000 // course.num_rows
    big = pa.concat_tables([course] * repeats)
    big = big.set_column(big.schema.get_field_index("shot_id"), "shot_id", pa.array(np.arange(big.num_rows)))
    incoming = tmp_path / "big.parquet"
    pq.write_table(big, incoming, row_group_size=course.num_rows)
    files = [paths.predictions_prod, paths.rejected_prod, *labels.store_files(paths)]
    before = {str(path): path.read_bytes() for path in files}
    process = subprocess.Popen(
        [sys.executable, str(config.PROJECT_ROOT / "run_all.py"), "--workspace", str(workspace_copy.workspace)]
        + ["--steps", "04", "--prod-data", str(incoming)],
        env=workspace_env(workspace_copy.workspace),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the kernel too: one process group to kill
    )
    deadline = time.monotonic() + 300
    while not list(paths.processed_dir.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(paths.processed_dir.glob(".*.tmp")), "the step never started writing: nothing was killed mid-way"
    assert {str(path): path.read_bytes() for path in files} == before
    assert labels.store_files(paths) == files[2:]

    run_pipeline(workspace_copy.workspace, "--steps", "04")
    assert leftovers(paths) == []
