"""Print the production replay's wall time and where it goes: scoring, evaluation, training, logging.

    .venv/bin/python bench/replay.py --workspace /tmp/ws            # the loop in this process
    .venv/bin/python bench/replay.py --workspace /tmp/ws --run-all  # also time run_all.py --replay

``--workspace`` is a workspace after a pipeline run (``--data-source DIR`` makes one with
``run_all.py --fast`` first). The replay runs on a temporary copy of it, so the workspace's own
store gets no replay run. The loop runs in this process, as notebook 05 runs it in its kernel
(``monitoring/replay.py``); ``--run-all`` also times ``run_all.py --replay`` end to end on another
copy (kernel start, imports and loading the champion included). The replay trains only the
scikit-learn recipes, so ``--fast`` (the pipeline's small PyCaret grids) does not change it.
Figures are printed, never asserted: a busy machine would fail a timed test for no fault of the code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PROJECT_ROOT, add_workspace_arguments, prepare_workspace


def copy_of(workspace: str) -> str:
    copy = Path(tempfile.mkdtemp(prefix="kobe-bench-replay-")) / "workspace"
    shutil.copytree(workspace, copy)
    return str(copy)


def in_process(workspace: str) -> None:
    os.environ["KOBE_WORKSPACE"] = workspace
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from kobe_mlops import config
    from kobe_mlops.monitoring import replay

    started = time.perf_counter()
    paths = config.workspace_paths()
    batches = replay.plan_batches(replay.read_production(paths.raw_file("prod")))
    inputs = replay.load_inputs(paths)
    loaded = time.perf_counter() - started
    settings = replay.ReplaySettings()
    result = replay.run_replay(batches, inputs, settings, progress=lambda line: None, log=replay.MlflowReplayLog())
    gates = sum(record.decision != "none" for record in result.records)
    print(f"replay of {len(batches)} batches x {len(settings.strategies)} strategies")
    print(f"{'stage':<22}{'seconds':>9}{'share':>8}")
    total = result.wall_seconds + loaded
    print(f"{'load inputs, champion':<22}{loaded:9.1f}{loaded / total:8.0%}")
    for stage, seconds in result.seconds.items():
        print(f"{stage:<22}{seconds:9.1f}{seconds / total:8.0%}")
    other = result.wall_seconds - sum(result.seconds.values())
    print(f"{'other':<22}{other:9.1f}{other / total:8.0%}")
    print(f"{'wall (in process)':<22}{total:9.1f}")
    print(f"{gates} gate runs over the strategies, {result.trainings} recipe fits (each training set fitted once)")


def whole_command(workspace: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID"}}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "run_all.py"), "--workspace", workspace, "--replay"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--run-all", action="store_true", help="also time run_all.py --replay end to end")
    args = parser.parse_args()
    workspace = prepare_workspace(args)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")
    in_process(copy_of(workspace))
    if args.run_all:
        print(f"{'run_all.py --replay':<22}{whole_command(copy_of(workspace)):9.1f}  (whole command)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
