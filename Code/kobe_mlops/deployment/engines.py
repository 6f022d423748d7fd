"""Choose the batch scoring engine of the application step: one pandas process, the served API, or Spark.

Every engine returns the same :class:`~kobe_mlops.deployment.application.AppliedFile`: the step logs
the same metrics whichever ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa

from kobe_mlops import config
from kobe_mlops.deployment.application import BATCH_ROWS, NO_STAMP, AppliedFile, Stamp, apply_to_file, embedded_model
from kobe_mlops.deployment.outputs import OutputPaths


def apply_with_engine(
    path: str | Path,
    model_uri: str,
    engine: str = "pandas",
    spark_master: str = config.DEFAULT_SPARK_MASTER,
    scoring_url: str = "",
    *,
    outputs: OutputPaths | Sequence[Path] | None = None,
    observers: Sequence = (),
    spark_conf: dict[str, str] | None = None,
    batch_rows: int = BATCH_ROWS,
    stamp: Stamp = NO_STAMP,
    sink: Callable[[pa.Table], None] | None = None,
    model=None,
) -> AppliedFile:
    """Score ``path`` with the model at ``model_uri`` (``model``: it loaded already) on ``engine``.

    ``pandas`` with a ``scoring_url`` scores through the served model; ``spark`` runs on ``spark_master``
    with the extra ``spark_conf`` settings and takes no ``sink``. The rest as in
    :func:`~kobe_mlops.deployment.application.apply_to_file`.
    """
    if scoring_url and engine != "pandas":
        raise ValueError(
            f"A scoring URL replaces the embedded model of the pandas engine; "
            f"it cannot be combined with engine {engine!r}."
        )
    if engine == "pandas":
        if scoring_url:
            from kobe_mlops.deployment.serving import RestScoringClient  # requests: only when asked

            # One batch at a time: the client keeps one HTTP session, the server its own cores.
            model, workers = RestScoringClient(scoring_url), 1
        else:
            import mlflow.pyfunc

            model, workers = embedded_model(model or mlflow.pyfunc.load_model(model_uri)), None
        return apply_to_file(path, model, outputs, observers, batch_rows, workers, stamp, sink)
    if engine == "spark":
        if sink is not None:
            raise ValueError("The Spark engine takes no sink: read its predictions output instead.")
        from kobe_mlops.deployment import spark_scoring  # an optional extra: imported only when chosen

        return spark_scoring.score_in_new_session(
            path, model_uri, spark_master, dict(spark_conf or {}), outputs, observers, stamp=stamp
        )
    raise ValueError(f"Unknown scoring engine {engine!r}; choose from {', '.join(config.SCORING_ENGINES)}.")
