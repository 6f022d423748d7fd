"""Time `run_all.py --steps 04 --prod-data FILE` as a whole process: rows/s beyond a small run, peak memory.

    .venv/bin/python bench/application_step.py --workspace /tmp/ws --rows 10000000
    .venv/bin/python bench/application_step.py --workspace /tmp/ws --rows 100000000 --layouts small
    .venv/bin/python bench/application_step.py --workspace /tmp/ws --rows 10000000 --engine spark \
        --spark-conf spark.driver.memory=1g

The input is the course production base repeated up to ``--rows`` rows with unique shot ids,
written in two layouts: small row groups of 6,426 rows (the course file's size, what an appending
writer leaves: 1,557 groups for 10 M rows) and 1 M-row groups. Each measurement runs the
README's command in a fresh copy of ``--workspace`` (so the label store does not grow between
runs) and samples, every 0.2 s with psutil, the resident memory of the command's process tree:
the peak of the sum and of the largest process (the notebook kernel that scores). The fixed cost
(starting the kernel, importing, loading the model, logging) is the wall time of the same
command on the course file (6,426 rows); rows/s is ``(rows - 6,426) / (wall - fixed cost)``, and
rows per CPU-second the same over the CPU seconds of the whole process tree (steadier than wall
time on a shared machine). The artifact store's growth is what the run added under ``mlruns``.
The generated files are deleted at the end. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from common import PROJECT_ROOT, add_workspace_arguments, prepare_workspace

SMALL_GROUP_ROWS = 6_426
LARGE_GROUP_ROWS = 1 << 20
SAMPLE_EVERY_S = 0.2


def replicated_file(source: Path, rows: int, target: Path, group_rows: int) -> Path:
    """``rows`` rows of ``source`` repeated in order, unique shot ids, row groups of ``group_rows``."""
    table = pq.read_table(source)
    table = table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")])
    chunk_rows = max(group_rows, (LARGE_GROUP_ROWS // group_rows) * group_rows)
    with pq.ParquetWriter(target, table.schema) as writer:
        for start in range(0, rows, chunk_rows):
            positions = np.arange(start, min(start + chunk_rows, rows))
            chunk = table.take(pa.array(positions % table.num_rows))
            chunk = chunk.set_column(chunk.schema.get_field_index("shot_id"), "shot_id", pa.array(positions + 1))
            writer.write_table(chunk, row_group_size=group_rows)
    return target


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else 0


def measured(command: list[str], env: dict[str, str]) -> dict:
    """Wall time, CPU seconds of the process tree (the waited-for descendants' rusage, or the sum of
    every process's last sampled CPU time when larger) and peak resident memory (sum over the
    process tree, and the largest process)."""
    cpu_before = children_cpu_s()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(process.pid)
    peak_tree = peak_one = 0
    cpu_seen: dict[int, float] = {}  # a process not waited for by its parent (Spark's JVM) is counted here
    while process.poll() is None:
        sizes = []
        for member in [root, *root.children(recursive=True)]:
            try:
                sizes.append(member.memory_info().rss)
                times = member.cpu_times()
                cpu_seen[member.pid] = times.user + times.system
            except psutil.NoSuchProcess:
                continue
        peak_tree, peak_one = max(peak_tree, sum(sizes)), max(peak_one, max(sizes, default=0))
        time.sleep(SAMPLE_EVERY_S)
    wall = time.perf_counter() - started
    output = process.stdout.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    cpu = max(children_cpu_s() - cpu_before, sum(cpu_seen.values()))
    return {"wall_s": wall, "cpu_s": cpu, "peak_tree_gib": peak_tree / 2**30, "peak_process_gib": peak_one / 2**30}


def run_step(workspace: str, prod_data: Path, engine: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="kobe-bench-step-") as folder:
        copy = Path(folder) / "workspace"
        shutil.copytree(workspace, copy, ignore=shutil.ignore_patterns("labels"))
        env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "KOBE_INVOCATION_ID"}}
        command = [sys.executable, str(PROJECT_ROOT / "run_all.py"), "--workspace", str(copy), "--steps", "04"]
        command += ["--prod-data", str(prod_data), "--engine", engine, *extra]
        # The copied store keeps the experiments' artifact locations: the original workspace's mlruns.
        stores = [copy / "mlruns", Path(workspace) / "mlruns"]
        artifacts = sum(folder_bytes(store) for store in stores)
        result = measured(command, env)
        return {**result, "artifacts_mb": (sum(folder_bytes(store) for store in stores) - artifacts) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--engine", default="pandas", choices=["pandas", "spark"])
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--repeat", type=int, default=1, help="runs per file (the fastest is reported)")
    parser.add_argument("--layouts", default="small,large", help="row-group layouts to measure: small, large or both")
    args = parser.parse_args()
    workspace = prepare_workspace(args)
    extra = [item for pair in args.spark_conf for item in ("--spark-conf", pair)]
    course = Path(workspace) / "data" / "raw" / "dataset_kobe_prod.parquet"
    folder = Path(tempfile.mkdtemp(prefix="kobe-bench-files-"))
    try:
        fixed = min(
            (run_step(workspace, course, args.engine, extra) for _ in range(args.repeat)), key=lambda r: r["wall_s"]
        )
        print(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()}; engine {args.engine}; {os.cpu_count()} cores")
        print(
            f"course file ({SMALL_GROUP_ROWS:,} rows): {fixed['wall_s']:.1f} s, {fixed['cpu_s']:.1f} CPU-s "
            f"(fixed cost), peak {fixed['peak_process_gib']:.2f} GiB (tree {fixed['peak_tree_gib']:.2f}), "
            f"artifact store +{fixed['artifacts_mb']:.1f} MB"
        )
        layouts = {"small": ("6,426-row groups", SMALL_GROUP_ROWS), "large": ("1 M-row groups", LARGE_GROUP_ROWS)}
        for name in args.layouts.split(","):
            label, group_rows = layouts[name]
            path = replicated_file(course, args.rows, folder / f"prod_{group_rows}.parquet", group_rows)
            groups = pq.ParquetFile(path).num_row_groups
            print(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()}")
            runs = [run_step(workspace, path, args.engine, extra) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["wall_s"])
            rate = (args.rows - SMALL_GROUP_ROWS) / max(best["wall_s"] - fixed["wall_s"], 1e-9)
            per_cpu = (args.rows - SMALL_GROUP_ROWS) / max(best["cpu_s"] - fixed["cpu_s"], 1e-9)
            print(
                f"{args.rows:,} rows, {label} ({groups:,} groups): {best['wall_s']:.1f} s, {best['cpu_s']:.1f} CPU-s; "
                f"beyond the fixed cost {rate:,.0f} rows/s, {per_cpu:,.0f} rows/CPU-s; peak "
                f"{best['peak_process_gib']:.2f} GiB (tree {best['peak_tree_gib']:.2f}); artifact store "
                f"+{best['artifacts_mb']:.1f} MB; {time.strftime('%H:%M:%S')} load {os.getloadavg()}"
            )
            path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
