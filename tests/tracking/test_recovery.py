"""Runs a killed process left RUNNING are marked FAILED at the next start, with the reason; others are kept."""

import os
import socket
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from conftest import run_pipeline
from kobe_mlops import config
from kobe_mlops.tracking import names, recovery, start_run

KILLED_STEP = """
import os, signal, mlflow
from kobe_mlops.tracking import start_run
with start_run("validacao_challenger") as run:
    with mlflow.start_run(run_name="child", nested=True):
        print(run.info.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
"""


def runs_by_name(client: MlflowClient) -> dict:
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    return {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}


def test_runs_of_a_dead_process_are_failed_with_a_reason_and_live_runs_are_kept(mlflow_workspace):
    ended = subprocess.Popen(["true"])
    ended.wait()  # its pid names a process that is gone
    client = MlflowClient(f"sqlite:///{mlflow_workspace / 'mlflow.db'}")
    with start_run("rollback") as live:  # this process: alive, never touched
        assert live.data.tags[recovery.PID_TAG] == str(os.getpid())
        experiment_id = live.info.experiment_id
        dead = {recovery.PID_TAG: str(ended.pid), recovery.HOST_TAG: socket.gethostname()}
        orphan = client.create_run(experiment_id, run_name="ValidacaoChallenger", tags=dead)
        client.create_run(experiment_id, run_name="child", tags={"mlflow.parentRunId": orphan.info.run_id})
        other_host = client.create_run(
            experiment_id, run_name="elsewhere", tags={recovery.PID_TAG: "1", recovery.HOST_TAG: "another-host"}
        )
        lines = recovery.fail_orphaned_runs(client)
        assert len(lines) == 2 and all("was left RUNNING" in line for line in lines)
        after = runs_by_name(client)
        for name in ["ValidacaoChallenger", "child"]:
            assert after[name].info.status == "FAILED" and after[name].info.end_time is not None
            reason = after[name].data.tags[names.FAILURE_TAG]
            assert f"process {ended.pid}" in reason and "killed or crashed" in reason
        assert after["Rollback"].info.status == "RUNNING"
        assert client.get_run(other_host.info.run_id).info.status == "RUNNING"
        assert recovery.fail_orphaned_runs(client) == []  # nothing twice
    assert mlflow.get_run(live.info.run_id).info.status == "FINISHED"


def test_a_reused_pid_is_not_taken_for_the_process_that_opened_the_run():
    own = recovery.process_tags()
    assert recovery.process_alive(os.getpid(), own.get(recovery.PROCESS_START_TAG))
    if recovery.PROCESS_START_TAG in own:  # Linux: the start time tells a new process with the same pid apart
        assert not recovery.process_alive(os.getpid(), str(int(own[recovery.PROCESS_START_TAG]) - 1))


def test_no_store_no_work(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert recovery.fail_orphaned_runs() == []
    assert not (tmp_path / "mlflow.db").exists()  # reading never creates a store


@pytest.mark.e2e
def test_run_all_fails_the_runs_a_killed_process_left_before_anything_else(mlflow_workspace):
    killed = subprocess.run([sys.executable, "-c", KILLED_STEP], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    result = run_pipeline(mlflow_workspace, "--rollback", check=False)
    assert "Run ValidacaoChallenger" in result.stdout and "was left RUNNING" in result.stdout, result.stdout
    assert "Nothing to roll back" in result.stderr  # the action itself then runs as usual
    client = MlflowClient(f"sqlite:///{mlflow_workspace / 'mlflow.db'}")
    assert runs_by_name(client)["ValidacaoChallenger"].info.status == "FAILED"
