"""Print the wall time of each pipeline step and of the whole run, over several fresh runs.

    .venv/bin/python bench/pipeline_steps.py --runs 3 --data-source ../shared/data

Each run starts from an empty temporary workspace (download/copy, preparation, full tuning,
registration, application), exactly what a user's first `python run_all.py` does. The figures
are printed, never asserted: a timed test would fail on a busy machine for no fault of the code.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def one_run(data_source: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="kobe-bench-") as workspace:
        env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID"}}
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(PROJECT_ROOT / "run_all.py"),
                "--workspace",
                workspace,
                "--data-source",
                data_source,
                *extra,
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        summary = json.loads((Path(workspace) / "reports" / "last_run.json").read_text())
    return {"steps": summary["steps"], "total": summary["total_seconds"], "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-source", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument("--fast", action="store_true", help="time the --fast smoke mode instead")
    args = parser.parse_args()
    results = [
        one_run(str(Path(args.data_source).resolve()), ["--fast"] if args.fast else []) for _ in range(args.runs)
    ]
    print(
        f"{args.runs} fresh {'fast' if args.fast else 'full'} runs on {os.cpu_count()} cores (median, min-max, seconds)"
    )
    for step in results[0]["steps"]:
        times = [r["steps"][step] for r in results]
        print(f"  {step:<16} {statistics.median(times):6.1f}  ({min(times):.1f}-{max(times):.1f})")
    for key, label in [("total", "steps total"), ("wall", "process wall")]:
        times = [r[key] for r in results]
        print(f"  {label:<16} {statistics.median(times):6.1f}  ({min(times):.1f}-{max(times):.1f})")


if __name__ == "__main__":
    main()
