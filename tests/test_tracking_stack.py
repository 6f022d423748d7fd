"""The pipeline, unchanged, against the local stack (``kobe_mlops.tracking_stack``: PostgreSQL and
``mlflow server --serve-artifacts`` on free loopback ports), read back through the server; the stack
is stopped and deleted afterwards, also when a test fails. Then the stack's refusals of planted links."""

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import sqlalchemy

from conftest import require_shared_data, run_pipeline
from kobe_mlops import config, tracking_stack

RUN_NAMES = ["AquisicaoDados", "PreparacaoDados", "Treinamento", "PipelineAplicacao"]


@dataclass
class SharedPipeline:
    state: tracking_stack.StackState
    paths: config.WorkspacePaths
    stdout: str

    @property
    def uri(self) -> str:
        return self.state.tracking_uri

    def run_all(self, *args: str) -> subprocess.CompletedProcess:
        return run_pipeline(self.paths.root, *args, tracking_uri=self.uri)

    def client(self) -> mlflow.MlflowClient:
        return mlflow.MlflowClient(self.uri)

    def runs(self, name: str) -> list:
        experiment = self.client().get_experiment_by_name(config.EXPERIMENT_NAME)
        return self.client().search_runs(
            [experiment.experiment_id], f"attributes.run_name = '{name}'", order_by=["attributes.start_time ASC"]
        )


def require_postgres() -> None:
    pytest.importorskip("psycopg2", reason="PostgreSQL driver not installed: .venv/bin/pip install -e '.[scale]'")
    try:
        tracking_stack.postgres_bin_dir()
    except tracking_stack.StackError as exc:
        pytest.skip(f"PostgreSQL absent: {exc}")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    data = require_shared_data()
    require_postgres()
    paths = config.workspace_paths(tmp_path_factory.mktemp("shared-tracking"))
    try:
        state = tracking_stack.start(paths, port=0)
        pipeline = SharedPipeline(state, paths, "")
        pipeline.stdout = pipeline.run_all("--fast", "--data-source", str(data)).stdout
        yield pipeline
    finally:
        tracking_stack.stop(paths, purge=True)


@pytest.fixture
def server_uri(shared, monkeypatch):
    """This process's MLflow client points at the server for one test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared.uri)
    mlflow.set_tracking_uri(shared.uri)
    yield shared.uri
    mlflow.set_tracking_uri(None)


@pytest.mark.e2e
def test_four_runs_of_one_invocation_and_their_metrics_in_postgres(shared):
    assert f"tracking {shared.uri}" in shared.stdout
    runs = {name: shared.runs(name) for name in RUN_NAMES}
    assert all(len(found) == 1 and found[0].info.status == "FINISHED" for found in runs.values())
    assert len({found[0].data.tags[config.INVOCATION_TAG] for found in runs.values()}) == 1
    application, training = runs["PipelineAplicacao"][0].data.metrics, runs["Treinamento"][0].data.metrics
    assert application["rows_input"] == 6426 == application["rows_scored"] + application["rows_rejected"]
    assert 0 < application["log_loss"] < 5 and "f1_score" in application
    assert training["log_loss_lr_test"] < training["log_loss_baseline_test"]
    assert not shared.paths.mlflow_db.exists()  # nothing fell back to a local SQLite store
    with sqlalchemy.create_engine(shared.state.backend_store_uri).connect() as connection:
        stored = connection.execute(sqlalchemy.text("SELECT name FROM runs WHERE lifecycle_stage = 'active'"))
        assert sorted(stored.scalars()) == sorted(RUN_NAMES)


@pytest.mark.e2e
def test_artifacts_are_served_by_the_server_and_the_champion_loads_through_it(shared, server_uri, tmp_path):
    run = shared.runs("PipelineAplicacao")[0]
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # proxied, not a client-side path
    downloaded = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="data/predictions_prod.parquet", dst_path=str(tmp_path)
    )
    predictions = pd.read_parquet(shared.paths.predictions_prod)
    pd.testing.assert_frame_equal(pd.read_parquet(downloaded), predictions)
    stored = list(shared.state.artifacts_dir.rglob("predictions_prod.parquet"))
    assert len(stored) == 1, "the server writes artifacts to its --artifacts-destination"
    version = shared.client().get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    assert run.data.params["model_version"] == version.version
    scored = mlflow.pyfunc.load_model(config.CHAMPION_URI).predict(predictions[config.FEATURES])
    np.testing.assert_allclose(
        scored[config.PROBABILITY_COLUMN], predictions[config.PROBABILITY_COLUMN], rtol=0, atol=1e-12
    )


@pytest.mark.e2e
def test_spark_engine_scores_the_champion_from_the_server(shared):
    pytest.importorskip("pyspark", reason="Spark engine not installed: .venv/bin/pip install -e '.[scale]'")
    before = shared.runs("PipelineAplicacao")[0]
    shared.run_all("--steps", "04", "--engine", "spark", "--spark-master", "local[2]")
    after = shared.runs("PipelineAplicacao")[-1]
    assert after.info.run_id != before.info.run_id and after.data.params["engine"] == "spark"
    for name in ["rows_scored", "rows_rejected", "log_loss"]:
        assert after.data.metrics[name] == pytest.approx(before.data.metrics[name], abs=1e-9)


@pytest.mark.e2e
def test_status_prints_the_uri_to_export(shared):
    command = [sys.executable, "-m", "kobe_mlops.tracking_stack", "--workspace", str(shared.paths.root), "status"]
    assert f"export MLFLOW_TRACKING_URI={shared.uri}" in subprocess.check_output(command, text=True, timeout=60)


@pytest.mark.e2e
def test_the_cluster_folder_and_the_secrets_are_private(shared):
    cluster, account = Path(shared.state.cluster_dir), tracking_stack._service_account()
    info = os.lstat(cluster)
    assert info.st_uid == (account.pw_uid if account else os.geteuid()) and info.st_mode & 0o777 == 0o700
    if account is not None:  # as root: a fresh folder of the service account, outside the workspace
        assert cluster.parent == Path(tempfile.gettempdir())
    assert not cluster.is_symlink() and not (cluster / "initial-password").exists()
    for private in [shared.paths.tracking_stack_dir, shared.state.artifacts_dir]:
        assert private.stat().st_mode & 0o777 == 0o700
    for secret in [shared.paths.tracking_stack_dir / tracking_stack.STATE_FILE, shared.state.server_log]:
        assert secret.stat().st_mode & 0o777 == 0o600


@pytest.mark.e2e
def test_stop_ends_the_server_and_postgres_and_purge_deletes_the_cluster(shared):
    # The module's last e2e test (pytest keeps file order): the fixture's own stop is then a no-op.
    assert tracking_stack.stop(shared.paths) is True
    assert tracking_stack.status(shared.paths) is None
    assert not tracking_stack.port_in_use(shared.state.server_port)
    assert not tracking_stack.port_in_use(shared.state.postgres_port)
    assert not Path(shared.state.cluster_dir, "data", "postmaster.pid").exists()
    assert tracking_stack.stop(shared.paths, purge=True) is False
    assert not Path(shared.state.cluster_dir).exists() and not shared.paths.tracking_stack_dir.exists()


def test_missing_postgresql_is_named_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tracking_stack, "POSTGRES_BIN_GLOB", str(tmp_path / "*" / "bin"))
    with pytest.raises(tracking_stack.StackError, match="apt-get install postgresql"):
        tracking_stack.postgres_bin_dir()


def test_status_without_a_stack_says_not_running(tmp_path):
    assert tracking_stack.main(["--workspace", str(tmp_path), "status"]) == 3
    assert tracking_stack.main(["--workspace", str(tmp_path), "stop"]) == 0


# --- Safe as root: no folder or file is ever used through a planted link ---------------------


def planted_target(tmp_path: Path) -> Path:
    """A folder and a file someone wants the stack (run as root) to write into or overwrite."""
    target = tmp_path / "victim"
    target.mkdir()
    (target / "precious").write_text("keep me\n")
    return target


def assert_untouched(target: Path) -> None:
    assert sorted(p.name for p in target.iterdir()) == ["precious"]
    assert (target / "precious").read_text() == "keep me\n"


def test_a_symlink_in_place_of_the_state_folder_is_refused(tmp_path):
    target = planted_target(tmp_path)
    paths = config.workspace_paths(tmp_path / "workspace")
    paths.root.mkdir()
    paths.tracking_stack_dir.symlink_to(target)
    with pytest.raises(tracking_stack.StackError, match="is a symbolic link .* never follows one"):
        tracking_stack.start(paths, port=0)
    assert_untouched(target)
    assert tracking_stack.main(["--workspace", str(paths.root), "start", "--port", "0"]) == 1  # one line, no traceback


def test_a_symlink_in_place_of_the_cluster_folder_is_refused_and_never_purged_through(tmp_path):
    target = planted_target(tmp_path)
    paths = config.workspace_paths(tmp_path / "workspace")
    paths.root.mkdir()
    tracking_stack.private_dir(paths.tracking_stack_dir)
    planted = tmp_path / "kobe-mlops-pg-guessed"
    planted.symlink_to(target)
    state = tracking_stack.StackState(str(paths.tracking_stack_dir), str(planted), 1, 1, 0, "secret")
    tracking_stack._save_state(state, paths)
    assert (paths.tracking_stack_dir / tracking_stack.STATE_FILE).stat().st_mode & 0o777 == 0o600  # holds the password
    with pytest.raises(tracking_stack.StackError, match="symbolic link"):
        tracking_stack.start(paths, port=0)
    with pytest.raises(tracking_stack.StackError, match="symbolic link"):
        tracking_stack.stop(paths, purge=True)
    assert_untouched(target)
    assert planted.is_symlink()


def test_a_file_is_never_written_through_a_planted_link(tmp_path):
    target = planted_target(tmp_path)
    folder = tracking_stack.private_dir(tmp_path / "cluster")
    (folder / "initial-password").symlink_to(target / "precious")
    with pytest.raises(tracking_stack.StackError, match="already exists"):
        tracking_stack.write_new_file(folder / "initial-password", "password\n")
    assert_untouched(target)
    tracking_stack.write_new_file(folder / "other", "password\n")
    assert (folder / "other").stat().st_mode & 0o777 == 0o600


def test_folders_are_created_private_and_only_ours_are_reused(tmp_path):
    folder = tracking_stack.private_dir(tmp_path / "state")
    assert folder.stat().st_mode & 0o777 == 0o700 and folder.stat().st_uid == os.geteuid()
    assert tracking_stack.private_dir(folder) == folder  # the stack's own folder, resumed
    folder.chmod(0o777)  # world-writable: anything could have been planted inside
    with pytest.raises(tracking_stack.StackError, match="was not made by the tracking stack.*mode 0777"):
        tracking_stack.private_dir(folder)
    if os.geteuid() == 0:
        other = tmp_path / "theirs"
        other.mkdir(mode=0o700)
        os.chown(other, 65534, 65534)  # made first by another user
        with pytest.raises(tracking_stack.StackError, match="belongs to uid 65534"):
            tracking_stack.private_dir(other)
