"""Score 1 M and 10 M replicated production rows with each engine; print rows/s and peak memory.

    .venv/bin/python bench/engines.py --workspace /tmp/ws             # a workspace with a champion
    .venv/bin/python bench/engines.py --data-source ../shared/data    # train one first (--fast)
    .venv/bin/python bench/engines.py --workspace /tmp/ws --rows 1000000 --engines spark \\
        --arrow-batch-rows 10000                                      # Spark's default batch size

The input is the course production base repeated up to N rows (ids renumbered), written as
parquet with pyarrow's default row groups (about 1 M rows each). Each measurement is a fresh
process doing what the application step does: start the engine (load the model, or start a
Spark session), then read, validate, score, collect and write both outputs. Rows/s counts
that second part; the start-up is printed beside it. Peak memory is the largest proportional
set size (PSS: shared pages split between the processes sharing them) summed over the process
and its children (Spark's JVM and Python workers), sampled with psutil. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from common import add_workspace_arguments, prepare_workspace

SAMPLE_EVERY_S = 0.5  # reading a large JVM's PSS costs CPU: sampling steals from the measured job
CHUNK_ROWS = 1 << 20  # pyarrow's default row group: one per chunk written


def replicated_file(source: Path, rows: int, target: Path) -> Path:
    """``rows`` rows of ``source`` repeated in order, with unique shot ids, written chunk by chunk."""
    table = pq.read_table(source)
    table = table.drop_columns([c for c in table.column_names if c.startswith("__index_level_")])
    with pq.ParquetWriter(target, table.schema) as writer:
        for start in range(0, rows, CHUNK_ROWS):
            positions = np.arange(start, min(start + CHUNK_ROWS, rows))
            chunk = table.take(pa.array(positions % table.num_rows))
            chunk = chunk.set_column(chunk.schema.get_field_index("shot_id"), "shot_id", pa.array(positions))
            writer.write_table(chunk)
    return target


def measure_here(engine: str, path: str, master: str, batch_rows: int | None) -> dict:
    """Runs in the measured child process: start the engine, then score the file as step 04 does."""
    import mlflow

    from kobe_mlops import config, tracking
    from kobe_mlops.deployment.application import apply_to_file, write_outputs

    mlflow.set_tracking_uri(tracking.tracking_uri())  # the workspace's store, not ./mlflow.db

    outputs = Path(tempfile.mkdtemp(prefix="kobe-bench-outputs-", dir=Path(path).parent))
    started = time.perf_counter()
    if engine == "pandas":
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(config.CHAMPION_URI)
        ready = time.perf_counter()
        result = apply_to_file(path, model)
    else:
        from kobe_mlops.deployment import spark_scoring

        conf = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_rows)} if batch_rows else None
        with spark_scoring.spark_session(master, conf) as spark:
            ready = time.perf_counter()
            result = spark_scoring.score(spark, path, config.CHAMPION_URI).to_result()
    write_outputs(result, outputs / "predictions.parquet", outputs / "rejected.parquet")
    finished = time.perf_counter()
    return {
        "rows": result.counts["rows_input"],
        "scored": result.counts["rows_scored"],
        "startup_s": ready - started,
        "score_s": finished - ready,
    }


def tree_memory(process: psutil.Process) -> int:
    """PSS (RSS where PSS is unavailable) of a process and all its descendants, in bytes."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def measure(engine: str, path: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--single", engine, str(path), "--spark-master", args.spark_master]
    if args.arrow_batch_rows:
        command += ["--arrow-batch-rows", str(args.arrow_batch_rows)]
    log = path.with_suffix(f".{engine}.log")
    with open(log, "w") as stderr:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=os.environ)
    peak = 0
    watched = psutil.Process(child.pid)

    def sample() -> None:
        nonlocal peak
        while child.poll() is None:
            try:
                peak = max(peak, tree_memory(watched))
            except psutil.NoSuchProcess:
                return
            time.sleep(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = child.communicate()
    sampler.join()
    if child.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise SystemExit(f"{engine} on {path.name} failed (exit {child.returncode}):\n{tail}")
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", choices=["pandas", "spark"], default=["pandas", "spark"])
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--arrow-batch-rows", type=int, help="override the engine's Arrow batch size")
    parser.add_argument("--single", nargs=2, metavar=("ENGINE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.single:
        engine, path = args.single
        print(json.dumps(measure_here(engine, path, args.spark_master, args.arrow_batch_rows)))
        return
    workspace = prepare_workspace(args)
    source = Path(workspace) / "data" / "raw" / "dataset_kobe_prod.parquet"

    print(
        f"Engines on {os.cpu_count()} cores, workspace {workspace}, Spark master {args.spark_master}"
        + (f", Arrow batches of {args.arrow_batch_rows} rows" if args.arrow_batch_rows else "")
    )
    print(f"{'rows':>11} {'engine':<7} {'start-up s':>10} {'score s':>8} {'rows/s':>11} {'peak memory':>12}")
    with tempfile.TemporaryDirectory(prefix="kobe-bench-rows-") as folder:
        for rows in args.rows:
            path = replicated_file(source, rows, Path(folder) / f"prod_{rows}.parquet")
            for engine in args.engines:
                figures = measure(engine, path, args)
                assert figures["rows"] == rows, figures  # every row was scored or rejected
                print(
                    f"{rows:>11,} {engine:<7} {figures['startup_s']:>10.1f} {figures['score_s']:>8.1f} "
                    f"{rows / figures['score_s']:>11,.0f} {figures['peak_bytes'] / 2**30:>9.2f} GiB",
                    flush=True,
                )
            path.unlink()


if __name__ == "__main__":
    main()
