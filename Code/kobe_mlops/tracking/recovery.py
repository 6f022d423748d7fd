"""Runs left RUNNING by a process that died (kill -9, a lost kernel) are marked FAILED when ``run_all.py`` starts.

:func:`kobe_mlops.tracking.start_run` tags each run with its process's pid, host and start time (so a reused
pid is not taken for the same process); runs of a live process, another host or without those tags are kept.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.tracking import names, reads

PID_TAG = "kobe.pid"
HOST_TAG = "kobe.host"
PROCESS_START_TAG = "kobe.process_start"  # Linux clock ticks since boot (field 22 of /proc/<pid>/stat)
EXPERIMENTS = (config.EXPERIMENT_NAME, config.REPLAY_EXPERIMENT_NAME)


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None (no /proc, or no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # the command name may hold spaces: split after it


def process_tags() -> dict[str, str]:
    """The tags that identify this process, which opens a run."""
    tags = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    if (start := _process_start(os.getpid())) is not None:
        tags[PROCESS_START_TAG] = start
    return tags


def process_alive(pid: int, start: str | None = None) -> bool:
    """True while process ``pid`` runs on this host (and, when ``start`` is given, is the same process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return start is None or _process_start(pid) in (None, start)


def _running(client: MlflowClient, experiment_ids: list[str], extra: str = "") -> list:
    return reads.every_run(client, experiment_ids, f"attributes.status = 'RUNNING'{extra}")


def orphaned_runs(client: MlflowClient) -> list:
    """RUNNING runs opened on this host by a process that is gone."""
    experiment_ids = [e.experiment_id for name in EXPERIMENTS if (e := client.get_experiment_by_name(name))]
    if not experiment_ids:
        return []
    host = socket.gethostname()
    orphans = []
    for run in _running(client, experiment_ids):
        tags = run.data.tags
        if tags.get(HOST_TAG) != host or not tags.get(PID_TAG, "").isdigit():
            continue
        if not process_alive(int(tags[PID_TAG]), tags.get(PROCESS_START_TAG)):
            orphans.append(run)
    return orphans


def fail_orphaned_runs(client: MlflowClient | None = None) -> list[str]:
    """Mark every orphaned run (and its RUNNING nested runs) FAILED with a reason; one line per run."""
    if (client := reads.store_client(client)) is None:
        return []
    lines = []
    for run in orphaned_runs(client):
        tags = run.data.tags
        reason = (
            f"process {tags[PID_TAG]} on {tags[HOST_TAG]} ended without closing this run (killed or crashed); "
            "marked FAILED at the next start"
        )
        children = _running(client, [run.info.experiment_id], f" and tags.`mlflow.parentRunId` = '{run.info.run_id}'")
        for ended in [run, *children]:
            client.set_tag(ended.info.run_id, names.FAILURE_TAG, reason)
            client.set_terminated(ended.info.run_id, RunStatus.to_string(RunStatus.FAILED))
            lines.append(f"Run {ended.info.run_name} ({ended.info.run_id}) was left RUNNING: {reason}.")
    return lines
