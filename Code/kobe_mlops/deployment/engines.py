"""Choose the batch scoring engine of the application step: one pandas process, the served API, or Spark.

Both engines return the same :class:`~kobe_mlops.deployment.application.ApplicationResult`,
so the step writes the same files and logs the same metrics whichever ran. This module sits
above both (``application`` and ``spark_scoring``), so neither imports the other's caller.
"""

from __future__ import annotations

from pathlib import Path

from kobe_mlops import config
from kobe_mlops.deployment.application import ApplicationResult, apply_to_file


def apply_with_engine(
    path: str | Path,
    model_uri: str,
    engine: str = "pandas",
    spark_master: str = config.DEFAULT_SPARK_MASTER,
    scoring_url: str = "",
) -> ApplicationResult:
    """Score ``path`` with the model at ``model_uri`` on ``engine``; the result is the same either way.

    ``pandas`` loads the model here and scores in this process, or, given ``scoring_url``, sends
    the valid rows in batches to the served model (``mlflow models serve``) instead; ``spark``
    hands the file to :mod:`kobe_mlops.deployment.spark_scoring` (``mlflow.pyfunc.spark_udf`` on
    ``spark_master``).
    """
    if scoring_url:
        if engine != "pandas":
            raise ValueError(
                f"A scoring URL replaces the embedded model of the pandas engine; "
                f"it cannot be combined with engine {engine!r}."
            )
        from kobe_mlops.deployment.serving import RestScoringClient  # requests: only when asked

        return apply_to_file(path, RestScoringClient(scoring_url))
    if engine == "pandas":
        import mlflow.pyfunc

        return apply_to_file(path, mlflow.pyfunc.load_model(model_uri))
    if engine == "spark":
        from kobe_mlops.deployment import spark_scoring  # an optional extra: imported only when chosen

        return spark_scoring.apply_to_file(path, model_uri, master=spark_master)
    raise ValueError(f"Unknown scoring engine {engine!r}; choose from {', '.join(config.SCORING_ENGINES)}.")
