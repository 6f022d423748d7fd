"""Print how long each dashboard page takes to render, cold (first visit) and warm (cached).

    .venv/bin/python bench/dashboard_pages.py --workspace /tmp/ws      # a workspace with a run
    .venv/bin/python bench/dashboard_pages.py --data-source ../shared/data --rounds 3

Each round is a fresh Python process, like a freshly started `streamlit run`: it imports the
dashboard, then runs every page script twice through Streamlit's AppTest (the server-side
work of a page view, without the browser). The first run of a page fills the caches; the
second is what every later visitor waits for. Figures are printed, never asserted.
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


def one_round(workspace: str) -> dict:
    """Time the imports and two runs of every page in this (fresh) process."""
    os.environ["KOBE_WORKSPACE"] = workspace
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    from streamlit.testing.v1 import AppTest

    from kobe_mlops.dashboard import common

    timings = {"imports": time.perf_counter() - started, "pages": {}}
    for page in common.page_files():
        app = AppTest.from_file(str(page), default_timeout=300)
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            app.run()
            runs.append(time.perf_counter() - started)
            if app.exception:
                raise SystemExit(f"{page.name} raised: {app.exception[0].value}")
        timings["pages"][page.name] = runs
    return timings


def fresh_workspace(data_source: str) -> str:
    workspace = tempfile.mkdtemp(prefix="kobe-bench-dashboard-")
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID"}}
    subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "run_all.py"), "--workspace", workspace, "--data-source", data_source],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workspace", help="a workspace holding a finished pipeline run")
    source.add_argument("--data-source", help="run the pipeline first, in a temporary workspace, from this data")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes to time (default 3)")
    parser.add_argument("--single-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    workspace = args.workspace or fresh_workspace(args.data_source)
    if args.single_round:
        print(json.dumps(one_round(workspace)))
        return

    rounds = []
    for _ in range(args.rounds):
        result = subprocess.run(
            [sys.executable, __file__, "--workspace", workspace, "--single-round"],
            check=True,
            capture_output=True,
            text=True,
        )
        rounds.append(json.loads(result.stdout.strip().splitlines()[-1]))

    print(f"Dashboard page render times over {args.rounds} fresh processes (workspace {workspace})")
    print(f"{'':48} {'median s':>9} {'max s':>7}")
    imports = [r["imports"] for r in rounds]
    print(f"{'imports (streamlit, dashboard)':48} {statistics.median(imports):9.2f} {max(imports):7.2f}")
    for page in rounds[0]["pages"]:
        for index, label in enumerate(["first visit", "cached"]):
            values = [r["pages"][page][index] for r in rounds]
            print(f"{page + ' ' + label:48} {statistics.median(values):9.2f} {max(values):7.2f}")


if __name__ == "__main__":
    main()
