"""Score replicated production rows with each engine; print rows/s, peak memory and the model-only ceiling.

    .venv/bin/python bench/engines.py --workspace /tmp/ws             # a workspace with a champion
    .venv/bin/python bench/engines.py --data-source ../shared/data    # train one first (--fast)
    .venv/bin/python bench/engines.py --workspace /tmp/ws --pandas-rows 1000000 --spark-rows 1000000 \\
        --spark-conf spark.driver.memory=1g --arrow-batch-rows 10000  # Spark's default batch size

The input is the course production base repeated up to N rows (ids renumbered), written as
parquet with pyarrow's default row groups (about 1 M rows each) into a temporary folder, and
deleted as soon as both engines have scored it: the 100 M-row file (about 1.4 GB) exists only
while it is measured. Each measurement is a fresh process doing what the application step does:
start the engine (load the model, or start a Spark session), then stream the file through the
data contract and the model, write both outputs and fold every figure the step logs (drift with
PSI, the label-free estimate, labelled metrics, scores). Rows/s counts that second part; the start-up is printed
beside it. Peak memory is the largest proportional set size (PSS: shared pages split between
the processes sharing them) summed over the process and its children (Spark's JVM and Python
workers), sampled with psutil; for Spark the JVM's own peak is printed too (in local mode the
driver's JVM runs every task). Rows/CPU-s divides the rows by the CPU seconds (user + system)
the process tree spent scoring: the per-core throughput, whatever the machine's other load.
Spark then scores the file a second time in the same session ("warm": its Python workers have
started, imported PyCaret and loaded the model). The model-only ceiling is the embedded model
alone (its own data-contract check and the pipeline) on 1 M rows in the engine's batches, in a
process of its own. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
from kobe_mlops.runner import spark_setting

SAMPLE_EVERY_S = 0.5  # reading a large JVM's PSS costs CPU: sampling steals from the measured job
CHUNK_ROWS = 1 << 20  # pyarrow's default row group: one per chunk written
CEILING_ROWS = 1_000_000


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


def measure_here(engine: str, path: str, master: str, conf: dict[str, str]) -> dict:
    """Runs in the measured child process: start the engine, then score the file as step 04 does."""
    import mlflow

    from kobe_mlops import config, tracking
    from kobe_mlops.deployment.application import apply_to_file, embedded_model
    from kobe_mlops.deployment.outputs import OutputPaths
    from kobe_mlops.monitoring.application_run import application_figures, streamed_metrics
    from kobe_mlops.monitoring.scoring_model import load_scoring_model, pinned_uri, registered_version

    mlflow.set_tracking_uri(tracking.tracking_uri())  # the workspace's store, not ./mlflow.db
    folder = Path(tempfile.mkdtemp(prefix="kobe-bench-outputs-", dir=Path(path).parent))
    outputs = OutputPaths(folder / "predictions.parquet", folder / "rejected.parquet")
    scoring = load_scoring_model(pinned_uri(registered_version(config.CHAMPION_URI)), None)
    figures = application_figures(scoring)
    warm = {}
    try:
        started = time.perf_counter()
        if engine == "pandas":
            import mlflow.pyfunc

            model = embedded_model(mlflow.pyfunc.load_model(config.CHAMPION_URI))
            ready, cpu = time.perf_counter(), tree_cpu()
            result = apply_to_file(path, model, outputs, [figures])
            metrics = streamed_metrics(result)
            finished, cpu = time.perf_counter(), tree_cpu() - cpu
        else:
            from kobe_mlops.deployment import spark_scoring

            with spark_scoring.spark_session(master, conf) as spark:
                ready, cpu = time.perf_counter(), tree_cpu()
                result = spark_scoring.score(spark, path, config.CHAMPION_URI, outputs, [figures])
                metrics = streamed_metrics(result)
                finished, cpu = time.perf_counter(), tree_cpu() - cpu
                # Again in the same session: Python workers already started, PyCaret imported, model loaded.
                again, again_cpu = time.perf_counter(), tree_cpu()
                spark_scoring.score(spark, path, config.CHAMPION_URI, outputs, [application_figures(scoring)])
                warm = {"warm_s": time.perf_counter() - again, "warm_cpu_s": tree_cpu() - again_cpu}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "rows": result.counts["rows_input"],
        "scored": result.counts["rows_scored"],
        "startup_s": ready - started,
        "score_s": finished - ready,
        "cpu_s": cpu,
        **warm,
        "log_loss": metrics.get("log_loss"),
        "psi_shot_distance": metrics.get("psi_shot_distance"),
    }


def tree_cpu() -> float:
    """CPU seconds (user + system) used so far by this process and its live descendants."""
    total = 0.0
    for member in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def ceiling_here(source: str) -> dict:
    """Runs in its own child: the embedded model alone on 1 M rows, in the engine's batches."""
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    from kobe_mlops import config, tracking
    from kobe_mlops.data_acquisition.contract import cast_features
    from kobe_mlops.deployment.application import BATCH_ROWS, embedded_model

    mlflow.set_tracking_uri(tracking.tracking_uri())
    model = embedded_model(mlflow.pyfunc.load_model(config.CHAMPION_URI))
    base = cast_features(pd.read_parquet(source)[config.FEATURES])
    features = base.iloc[np.arange(CEILING_ROWS) % len(base)].reset_index(drop=True)
    batches = [features.iloc[i : i + BATCH_ROWS] for i in range(0, CEILING_ROWS, BATCH_ROWS)]
    model.predict(batches[0].head(1000))  # warm-up
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        for batch in batches:
            model.predict(batch)
        timings.append(time.perf_counter() - started)
    return {"rows_per_s": CEILING_ROWS / min(timings)}


def tree_memory(process: psutil.Process) -> tuple[int, int]:
    """``(PSS of a process and all its descendants, PSS of the Java ones)`` in bytes (RSS without PSS)."""
    total = java = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
            size = getattr(info, "pss", info.rss)
            total += size
            if member.name() == "java":
                java += size
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total, java


def run_child(arguments: list[str], log: Path) -> tuple[dict, int, int]:
    command = [sys.executable, __file__, *arguments]
    with open(log, "w") as stderr:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=os.environ)
    peak = java_peak = 0
    watched = psutil.Process(child.pid)

    def sample() -> None:
        nonlocal peak, java_peak
        while child.poll() is None:
            try:
                total, java = tree_memory(watched)
            except psutil.NoSuchProcess:
                return
            peak, java_peak = max(peak, total), max(java_peak, java)
            time.sleep(SAMPLE_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = child.communicate()
    sampler.join()
    if child.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise SystemExit(f"{' '.join(arguments[:2])} failed (exit {child.returncode}):\n{tail}")
    return json.loads(stdout.strip().splitlines()[-1]), peak, java_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--pandas-rows", type=int, nargs="*", default=[1_000_000, 10_000_000, 100_000_000])
    parser.add_argument("--spark-rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument(
        "--spark-conf", action="append", default=[], type=spark_setting, metavar="KEY=VALUE", help="repeatable"
    )
    parser.add_argument("--arrow-batch-rows", type=int, help="override the Spark engine's Arrow batch size")
    parser.add_argument("--single", nargs=2, metavar=("ENGINE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    conf = dict(args.spark_conf)
    if args.arrow_batch_rows:
        conf["spark.sql.execution.arrow.maxRecordsPerBatch"] = str(args.arrow_batch_rows)

    if args.single:
        engine, path = args.single
        figures = ceiling_here(path) if engine == "ceiling" else measure_here(engine, path, args.spark_master, conf)
        print(json.dumps(figures))
        return
    workspace = prepare_workspace(args)
    source = Path(workspace) / "data" / "raw" / "dataset_kobe_prod.parquet"
    forwarded = ["--spark-master", args.spark_master, *(f"--spark-conf={k}={v}" for k, v in conf.items())]

    load = os.getloadavg()
    print(
        f"Engines on {os.cpu_count()} cores (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}), "
        f"workspace {workspace}, Spark master {args.spark_master}" + (f", Spark settings {conf}" if conf else "")
    )
    ceiling, _, _ = run_child(["--single", "ceiling", str(source)], Path(tempfile.gettempdir()) / "kobe-ceiling.log")
    print(f"model-only ceiling: {ceiling['rows_per_s']:,.0f} rows/s (embedded model, 1 M rows in the engine's batches)")
    header = f"{'rows':>11} {'engine':<7} {'start-up s':>10} {'score s':>8} {'rows/s':>11} {'rows/CPU-s':>11}"
    print(f"{header} {'warm rows/s':>11} {'warm rows/CPU-s':>15} {'peak memory':>12} {'of it JVM':>10}")
    with tempfile.TemporaryDirectory(prefix="kobe-bench-rows-") as folder:
        for rows in sorted(set(args.pandas_rows) | set(args.spark_rows)):
            path = replicated_file(source, rows, Path(folder) / f"prod_{rows}.parquet")
            engines = [e for e, sizes in (("pandas", args.pandas_rows), ("spark", args.spark_rows)) if rows in sizes]
            for engine in engines:
                log = path.with_suffix(f".{engine}.log")
                figures, peak, java = run_child(["--single", engine, str(path), *forwarded], log)
                assert figures["rows"] == rows, figures  # every row was scored or rejected
                warm = f"{'-':>11} {'-':>15}"
                if "warm_s" in figures:  # Spark, scoring the file again in the same session
                    warm = f"{rows / figures['warm_s']:>11,.0f} {rows / figures['warm_cpu_s']:>15,.0f}"
                print(
                    f"{rows:>11,} {engine:<7} {figures['startup_s']:>10.1f} {figures['score_s']:>8.1f} "
                    f"{rows / figures['score_s']:>11,.0f} {rows / figures['cpu_s']:>11,.0f} "
                    f"{warm} {peak / 2**30:>8.2f} GiB "
                    f"{(f'{java / 2**30:.2f} GiB' if java else '-'):>10}",
                    flush=True,
                )
            path.unlink()
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
