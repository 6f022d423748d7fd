"""A logged replay read back from MLflow: its summary per strategy and its timeline per batch.

:mod:`~kobe_mlops.monitoring.replay` writes one ``SimulacaoOperacao`` run and a ``PipelineAplicacao``
child per strategy and batch; :func:`summary_frame` and :func:`timeline_frame` turn them back into
the tables the dashboard's Timeline page shows (pure functions of the runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from kobe_mlops.tracking import names, reads

# Per strategy: the parent run's ``<figure>_<strategy>`` metrics between the name and the verdict.
SUMMARY_FIGURES = ["log_loss", "vs_null", "vs_null_lower", "vs_null_upper", "retrains", "promotions"]
ESTIMATE_FIGURES = ["estimation_error", "previous_batch_error", "estimate_coverage"]
SUMMARY_COLUMNS = ["strategy", *SUMMARY_FIGURES, *ESTIMATE_FIGURES, "verdict"]
# Per strategy and batch: which batch, the child run's metrics of the same name, what happened.
BATCH_COLUMNS = ["strategy", "batch_index", "batch", "trained_through_batch"]
BATCH_METRICS = ["rows_input", "rows_scored", "rows_rejected", "rows_evaluated", "log_loss"]
ESTIMATE_METRICS = ["estimated_log_loss", "estimated_log_loss_lower", "estimated_log_loss_upper", "log_loss_null"]
BATCH_OUTCOMES = ["fired", "fired_triggers", "retrained", "promoted", "decision"]
ESTIMATE_OUTCOMES = ["applicability", "applicability_reason"]
TIMELINE_COLUMNS = [*BATCH_COLUMNS, *BATCH_METRICS, *ESTIMATE_METRICS, *BATCH_OUTCOMES, *ESTIMATE_OUTCOMES, "run_id"]


def null_verdict(vs_null: float, lower: float, upper: float) -> str:
    """One sentence from the pooled gain over the null model and its 95 % seasons bootstrap interval."""
    interval = f"95 % interval [{lower:+.4f}, {upper:+.4f}]"
    if upper < 0:
        return f"beats the null model by {-vs_null:.4f} ({interval})"
    if lower > 0:
        return f"is worse than the null model by {vs_null:.4f} ({interval})"
    return f"ties with the null model ({vs_null:+.4f}, {interval})"


@dataclass(frozen=True)
class ReplayView:
    """The newest finished replay: what the Timeline page shows."""

    run_id: str
    start_time: pd.Timestamp
    params: dict[str, str]
    summary: pd.DataFrame  # SUMMARY_COLUMNS, one row per strategy, then the null model
    timeline: pd.DataFrame  # TIMELINE_COLUMNS, by strategy (in the replay's order) then batch


def summary_frame(parent: Run) -> pd.DataFrame:
    """One row per strategy of the replay, plus the null model's, from the parent run."""
    metrics, params = parent.data.metrics, parent.data.params
    rows = []
    for strategy in params.get("strategies", "").split(","):
        figure = {name: metrics.get(names.strategy_metric(name, strategy), np.nan) for name in SUMMARY_COLUMNS[1:-1]}
        figure.update({count: int(np.nan_to_num(figure[count])) for count in ("retrains", "promotions")})
        verdict = null_verdict(figure["vs_null"], figure["vs_null_lower"], figure["vs_null_upper"])
        rows.append({"strategy": strategy, **figure, "verdict": verdict})
    null = {"strategy": "null", "log_loss": metrics.get(names.REPLAY_POOLED_NULL_LOG_LOSS, np.nan), "vs_null": 0.0}
    rows.append({**null, "retrains": 0, "promotions": 0, "verdict": "yardstick: the make rate known before each batch"})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def timeline_frame(children: list[Run], strategies: list[str]) -> pd.DataFrame:
    """One row per child run (strategy and batch, numbered from 1), in ``strategies``' order then by batch."""
    rows = []
    for run in children:
        metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
        fired = tags.get(names.FIRED_TRIGGERS_TAG, "")
        rows.append(
            {
                "strategy": tags.get(names.REPLAY_STRATEGY_TAG, ""),
                "batch_index": int(params[names.REPLAY_BATCH_NUMBER]),
                "batch": params.get(names.REPLAY_BATCH, ""),
                "trained_through_batch": int(params[names.TRAINED_THROUGH_BATCH]),
                **{column: metrics.get(column, np.nan) for column in BATCH_METRICS + ESTIMATE_METRICS},
                "fired": bool(fired),
                "fired_triggers": fired,
                "retrained": bool(metrics.get(names.RETRAINED, 0.0)),
                "promoted": bool(metrics.get(names.PROMOTED, 0.0)),
                "decision": tags.get(names.DECISION_TAG, ""),
                "applicability": tags.get(names.ESTIMATE_APPLICABILITY_TAG, ""),
                "applicability_reason": tags.get(names.ESTIMATE_REASON_TAG, ""),
                "run_id": run.info.run_id,
            }
        )
    frame = pd.DataFrame(rows, columns=TIMELINE_COLUMNS)
    frame["order"] = frame["strategy"].map({name: position for position, name in enumerate(strategies)})
    return frame.sort_values(["order", "batch_index"]).drop(columns="order").reset_index(drop=True)


def applicability_table(timeline: pd.DataFrame) -> pd.DataFrame:
    """The estimate's verdict per batch (rows) and strategy (columns)."""
    table = timeline.pivot(index=["batch_index", "batch"], columns="strategy", values="applicability")
    return table[list(dict.fromkeys(timeline["strategy"]))].reset_index()


def load_replay(client: MlflowClient, run_id: str | None = None) -> ReplayView | None:
    """The replay logged as ``run_id`` (default: the newest finished one), or None before the first."""
    parent = client.get_run(run_id) if run_id else reads.latest_replay_run(client)
    if parent is None:
        return None
    params = dict(parent.data.params)
    children = reads.replay_batch_runs(client, parent.info.run_id)
    started = pd.to_datetime(parent.info.start_time, unit="ms", utc=True)
    timeline = timeline_frame(children, params.get("strategies", "").split(","))
    return ReplayView(parent.info.run_id, started, params, summary_frame(parent), timeline)
