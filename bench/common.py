"""What the benchmark scripts share: a workspace with a champion to measure."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def add_workspace_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--workspace", help="a workspace whose store holds the champion")
    source.add_argument("--data-source", help="train a champion first (run_all.py --fast) from this data")


def prepare_workspace(args: argparse.Namespace) -> str:
    """``--workspace`` as given, or a new one trained with ``run_all.py --fast`` from ``--data-source``.

    Points this process (and its children) at the workspace's own store.
    """
    if args.workspace:
        workspace = str(Path(args.workspace).resolve())
    elif args.data_source:
        workspace = tempfile.mkdtemp(prefix="kobe-bench-")
        env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID"}}
        subprocess.run(
            [
                sys.executable,
                str(PROJECT_ROOT / "run_all.py"),
                "--workspace",
                workspace,
                "--fast",
                "--data-source",
                str(Path(args.data_source).resolve()),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    else:
        raise SystemExit("give --workspace (with a champion) or --data-source")
    os.environ["KOBE_WORKSPACE"] = workspace
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    return workspace
