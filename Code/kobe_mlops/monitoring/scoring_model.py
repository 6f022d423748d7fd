"""What monitoring must know about the model that scored a file, so its figures stay honest.

* **The production rows it learned.** A challenger trained on labelled production rows would
  look good graded on them. Each ``Treinamento`` run logs those rows' ``shot_id``
  (:mod:`kobe_mlops.modeling.training_run`); :func:`split_seen_rows` keeps them out of every
  labelled metric and counts them (``rows_seen_in_training``).
* **Its performance estimator** (:mod:`kobe_mlops.monitoring.estimation`): calibrated on the
  labelled rows its training run held out and logged the scores of (``base_test``, which no
  version trains on, plus a challenger's production holdout, so the reference covers the
  population it learned), with the training support its training run logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.modeling.support import feature_support, support_from_json
from kobe_mlops.monitoring.estimation import PerformanceEstimator
from kobe_mlops.tracking import reads


@dataclass(frozen=True)
class ScoringModel:
    """The scoring model's learned production rows and its estimator."""

    version: str | None  # the registered version, None for a model not addressed by alias
    learned_shot_ids: np.ndarray  # int64, sorted
    estimator: PerformanceEstimator

    def seen_mask(self, shot_ids) -> np.ndarray:
        """True for each ``shot_id`` the model learned."""
        return np.isin(np.asarray(shot_ids, dtype="int64"), self.learned_shot_ids, assume_unique=False)


def split_seen_rows(labelled: pd.DataFrame, learned_shot_ids: np.ndarray) -> tuple[pd.DataFrame, int]:
    """``(rows to evaluate, rows seen in training)``: labelled rows whose shot the model did not learn."""
    if not len(learned_shot_ids) or "shot_id" not in labelled:
        return labelled, 0
    seen = np.isin(labelled["shot_id"].to_numpy(dtype="int64"), learned_shot_ids)
    return labelled[~seen], int(seen.sum())


def reference_estimator(
    model, support_text: str | None, paths: config.WorkspacePaths, reference: pd.DataFrame | None = None
) -> PerformanceEstimator:
    """Calibrate on the reference scores the training run logged (held-out rows it never learned);
    versions that logged none are calibrated on base_test scored by ``model`` now. Support from the
    training run, else base_train's (such versions learned development rows only)."""
    if reference is None:
        base_test = pd.read_parquet(paths.base_test)
        reference = pd.DataFrame(
            {
                config.PROBABILITY_COLUMN: model.predict(base_test[config.FEATURES])[config.PROBABILITY_COLUMN],
                config.TARGET: base_test[config.TARGET],
            }
        )
    if support_text:
        support = support_from_json(support_text)
    else:
        support = feature_support(pd.read_parquet(paths.base_train))
    return PerformanceEstimator.fit(reference[config.PROBABILITY_COLUMN], reference[config.TARGET], support)


VERSION_URI = re.compile(r"^models:/([^/@]+)/(\d+)$")


def registered_version(model_uri: str, client: MlflowClient | None = None) -> dict[str, str]:
    """``model_name``, ``model_version`` (and ``model_alias``) of a registry URI; an alias is
    resolved now, once. Empty for any other URI (a run URI, a path)."""
    match = VERSION_URI.match(model_uri)
    if match:
        return {"model_name": match[1], "model_version": match[2]}
    return reads.resolve_model_uri(model_uri, client)


def pinned_uri(model_uri: str, version: dict[str, str]) -> str:
    """``models:/<name>/<version>`` of a resolved alias (so loading it cannot pick up a promotion)."""
    return f"models:/{version['model_name']}/{version['model_version']}" if version else model_uri


def load_scoring_model(
    model_uri: str, model=None, paths: config.WorkspacePaths | None = None, client: MlflowClient | None = None
) -> ScoringModel:
    """Everything above for ``model_uri`` (``model``: the already loaded pyfunc, to load it once)."""
    paths = paths or config.workspace_paths()
    client = client or reads.client()
    resolved = registered_version(model_uri, client)
    version = client.get_model_version(resolved["model_name"], resolved["model_version"]) if resolved else None
    learned = np.sort(reads.learned_shot_ids(client, version)) if version else np.array([], dtype="int64")
    support_text = reads.feature_support_text(client, version) if version else None
    reference = reads.reference_scores(client, version) if version else None
    if reference is None and model is None:
        model = mlflow.pyfunc.load_model(model_uri)
    estimator = reference_estimator(model, support_text, paths, reference)
    return ScoringModel(resolved.get("model_version"), learned, estimator)
