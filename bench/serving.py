"""Latency and throughput of the champion: served over REST, and embedded in this process.

    .venv/bin/python bench/serving.py --workspace /tmp/ws             # a workspace with a champion
    .venv/bin/python bench/serving.py --data-source ../shared/data    # train one first (--fast)

Prints three figures, each over repeated measurements after a warm-up, and where the
single-row time goes (the ``/ping`` round trip, MLflow's request handling, the model's share):

1. single-row latency (p50, p99) of ``POST /invocations`` to ``mlflow models serve`` on a
   loopback port: HTTP, the server's JSON parsing and schema check, the data contract, the
   model and the JSON answer (one kept-alive connection); beside it, the same requests to a bare
   scikit-learn model (a logistic regression on the six features, MLflow's sklearn flavour
   answering ``predict_proba``, its signature inferred from the features) behind the same
   command, the two servers asked in alternating rounds so both see the same machine load;
2. rows/s of one request carrying the whole production base (6,426 rows);
3. rows/s of the embedded pyfunc on 1 M replicated production rows, the data contract check
   included: as ``mlflow.pyfunc.load_model`` returns it (MLflow checks each value of the ``Any``
   columns), and as the batch engines call it (``embedded_model``: the unwrapped Python model).

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from common import add_workspace_arguments, prepare_workspace


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def round_trips(url: str, requests: list[tuple[str, str, str | None]], warmup: int) -> list[float]:
    """Milliseconds per ``(method, path, body)`` request after ``warmup`` untimed ones.

    The client is the standard library's ``http.client`` on one kept-alive connection, so the
    figure is the server's time plus the loopback round trip, not a client library's overhead.
    """
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    latencies = []
    for i, (method, path, body) in enumerate(requests):
        started = time.perf_counter()
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        answer = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"{method} {path}: HTTP {response.status}: {answer[:300]!r}")
        if i >= warmup:
            latencies.append(elapsed * 1000)
    connection.close()
    return latencies


def single_row_latencies(url: str, rows: pd.DataFrame, requests_count: int, warmup: int) -> list[float]:
    """Milliseconds per single-row ``POST /invocations``, cycling through ``rows``."""
    from kobe_mlops.deployment.serving import dataframe_split_body

    bodies = [json.dumps(dataframe_split_body(rows.iloc[[i % len(rows)]])) for i in range(requests_count + warmup)]
    return round_trips(url, [("POST", "/invocations", body) for body in bodies], warmup)


def in_process_milliseconds(model, rows: pd.DataFrame, repeats: int) -> dict[str, float]:
    """Median milliseconds of what the server does for one row, without HTTP: MLflow's whole
    request handling (parse, schema check, predict, JSON answer), and the model's predict alone."""
    from mlflow.pyfunc.scoring_server import invocations

    from kobe_mlops.deployment.serving import dataframe_split_body

    one_row = rows.iloc[[0]]
    body = json.dumps(dataframe_split_body(one_row)).encode()
    schema = model.metadata.get_input_schema()
    python_model = model.unwrap_python_model()
    figures = {}
    for name, call in [
        ("handling", lambda: invocations(body, "application/json", model, schema)),
        ("predict", lambda: python_model.predict(None, one_row)),
    ]:
        call()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        figures[name] = statistics.median(times)
    return figures


def bare_sklearn_model(folder: str, rows: pd.DataFrame) -> str:
    """A logistic regression on the six features of ``base_train``, saved with MLflow's sklearn
    flavour (its pyfunc answers ``predict_proba``); the saved model's path."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from kobe_mlops import config

    train = pd.read_parquet(config.workspace_paths().base_train)
    fitted = LogisticRegression(max_iter=1000).fit(train[config.FEATURES], train[config.TARGET].astype(int))
    signature = infer_signature(rows, fitted.predict_proba(rows))
    mlflow.sklearn.save_model(fitted, folder, signature=signature, pyfunc_predict_fn="predict_proba")
    return folder


def alternating_latencies(urls: dict[str, str], rows: pd.DataFrame, requests_count: int, warmup: int, rounds: int):
    """Single-row latencies of each server, asked in ``rounds`` alternating rounds."""
    latencies = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            latencies[name] += single_row_latencies(url, rows, requests_count // rounds, warmup)
    return latencies


def whole_base_seconds(url: str, rows: pd.DataFrame, repeats: int) -> list[float]:
    """Seconds for one request carrying every row, answered with every row's probability."""
    from kobe_mlops.deployment.serving import RestScoringClient

    client = RestScoringClient(url, batch_rows=len(rows))  # one request, not the client's batches
    client.predict(rows)  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        scored = client.predict(rows)
        seconds.append(time.perf_counter() - started)
        assert len(scored) == len(rows)
    return seconds


def embedded_seconds(model, rows: pd.DataFrame, target_rows: int, repeats: int) -> list[float]:
    from kobe_mlops import config

    replicated = rows.iloc[np.arange(target_rows) % len(rows)].reset_index(drop=True)[config.FEATURES]
    model.predict(replicated.head(1000))  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        scored = model.predict(replicated)
        seconds.append(time.perf_counter() - started)
        assert len(scored) == target_rows
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workspace_arguments(parser)
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests timed (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="single-row requests not timed (default 200)")
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed whole-base requests and embedded runs (default 10)"
    )
    parser.add_argument("--embedded-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    workspace = prepare_workspace(args)

    import mlflow

    from kobe_mlops import config, tracking
    from kobe_mlops.data_acquisition.contract import split_valid_rows
    from kobe_mlops.deployment.serving import ModelServer

    mlflow.set_tracking_uri(tracking.tracking_uri())
    production, _ = split_valid_rows(pd.read_parquet(config.workspace_paths().raw_file("prod")))
    production = production[config.FEATURES]
    print(f"Champion {config.CHAMPION_URI} of workspace {workspace}")

    print(f"{time.strftime('%H:%M:%S')} load {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="kobe-bare-") as folder:
        bare_path = bare_sklearn_model(f"{folder}/model", production)
        with ModelServer(config.CHAMPION_URI) as server, ModelServer(bare_path) as bare:
            pings = round_trips(server.url, [("GET", "/ping", None)] * (args.requests + args.warmup), args.warmup)
            urls = {"champion": server.url, "bare": bare.url}
            both = alternating_latencies(urls, production, args.requests, args.warmup // 10, 10)
            whole = whole_base_seconds(server.url, production, args.repeats)
    for name, label in [("champion", "served champion"), ("bare", "served bare scikit-learn model")]:
        times = both[name]
        print(
            f"{label}, 1 row per request ({len(times)} requests): p50 {percentile(times, 50):.2f} ms, "
            f"p99 {percentile(times, 99):.2f} ms, mean {statistics.fmean(times):.2f} ms"
        )
    ratio = percentile(both["champion"], 50) / percentile(both["bare"], 50)
    print(f"  champion p50 / bare p50: {ratio:.3f}; {time.strftime('%H:%M:%S')} load {os.getloadavg()}")
    print(f"  floor: GET /ping p50 {percentile(pings, 50):.2f} ms (HTTP round trip, no model)")
    median = statistics.median(whole)
    print(
        f"served, {len(production):,} rows in one request ({len(whole)} requests): median {median * 1000:.0f} ms, "
        f"{len(production) / median:,.0f} rows/s"
    )

    model = mlflow.pyfunc.load_model(config.CHAMPION_URI)
    in_process = in_process_milliseconds(model, production, args.requests)
    print(
        f"  in process, no HTTP: MLflow's request handling {in_process['handling']:.2f} ms, of which the "
        f"model's predict (data contract + scoring) {in_process['predict']:.2f} ms"
    )
    from kobe_mlops.deployment.application import embedded_model

    for label, scorer in [("embedded pyfunc", model), ("the engines' embedded model", embedded_model(model))]:
        embedded = embedded_seconds(scorer, production, args.embedded_rows, args.repeats)
        median = statistics.median(embedded)
        print(
            f"{label}, {args.embedded_rows:,} rows ({len(embedded)} runs): median {median:.3f} s, "
            f"{args.embedded_rows / median:,.0f} rows/s (min {args.embedded_rows / max(embedded):,.0f}, "
            f"max {args.embedded_rows / min(embedded):,.0f})"
        )


if __name__ == "__main__":
    main()
