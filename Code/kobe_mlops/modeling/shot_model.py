"""The MLflow pyfunc around a fitted pipeline: probability of a make and 0/1 label per row.

Rows breaking the data contract are refused, rows and columns named; the rest are scored as
float64. When every PyCaret step maps the six features to themselves, the fitted transformers
score a bare matrix (PyCaret's wrappers cost ~4 ms a call), kept only if it gives the same numbers.
"""

# No "from __future__ import annotations": MLflow reads the predict type hint at runtime.
import copy

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import (
    DataContractError,
    broken_matrix_rows,
    feature_dtypes,
    feature_matrix,
    require_columns,
    violations_message,
)

# The unwrapped path runs the same fitted numbers in the same order: it must agree to rounding.
EQUIVALENCE_TOLERANCE = 1e-12


def plain_copy(fitted):
    """A copy of a fitted scikit-learn object that takes a bare matrix without warning on column names."""
    twin = copy.deepcopy(fitted)
    if hasattr(twin, "feature_names_in_"):
        del twin.feature_names_in_
    return twin


def verified_column_steps(pipeline, check_features: pd.DataFrame) -> list | None:
    """PyCaret's fitted transformers and the estimator, for scoring a float matrix directly; None unless
    every preprocessing step maps all six features in order (or none) to the same six columns, and the
    steps give the pipeline's probabilities on ``check_features``."""
    if not hasattr(pipeline, "steps"):  # a bare estimator (gradient boosting, a recalibrated model)
        return None
    steps = []
    for _, step in pipeline.steps[:-1]:
        include = getattr(step, "_include", None)  # the fitted column list of a TransformerWrapper
        transformer = getattr(step, "transformer", None)
        if include is None or transformer is None:
            return None
        if not include:
            continue  # e.g. the categorical imputer: there are no categorical features
        try:
            produced = list(transformer.get_feature_names_out())
        except (AttributeError, ValueError):
            return None
        if list(include) != config.FEATURES or produced != config.FEATURES:
            return None
        steps.append(plain_copy(transformer))
    steps.append(plain_copy(pipeline.steps[-1][1]))
    unwrapped = probability_through(steps, feature_matrix(check_features))
    reference = pipeline.predict_proba(check_features[config.FEATURES])[:, 1]
    return steps if np.max(np.abs(unwrapped - reference)) <= EQUIVALENCE_TOLERANCE else None


class ShotMadeModel(mlflow.pyfunc.PythonModel):
    def __init__(self, pipeline, check_features: pd.DataFrame | None = None):
        """``check_features``: rows on which the unwrapped path must match the pipeline to be used."""
        self.pipeline = pipeline
        self.threshold = config.DECISION_THRESHOLD
        self.column_steps = None if check_features is None else verified_column_steps(pipeline, check_features)

    @property
    def scoring_path(self) -> str:
        return "unwrapped" if self.column_steps else "pycaret"

    def predict_probability(self, features: pd.DataFrame, matrix: np.ndarray | None = None) -> np.ndarray:
        """P(make) of contract-valid rows; ``matrix``: their :func:`feature_matrix` when already built."""
        matrix = feature_matrix(features) if matrix is None else matrix
        if self.column_steps:
            return probability_through(self.column_steps, matrix)
        # The pipeline gets the features in the dtypes it was trained on, whatever the caller's were.
        typed = pd.DataFrame(matrix, columns=config.FEATURES).astype(feature_dtypes())
        return self.pipeline.predict_proba(typed)[:, 1]

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = pd.DataFrame(model_input)
        try:
            # Through MLflow the schema has refused a missing column already; this is for direct calls.
            require_columns(frame, config.FEATURES, "model input")
        except DataContractError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None
        matrix = feature_matrix(frame)
        if broken_matrix_rows(matrix).any():  # the matrix check clears valid input; the rest get the details
            raise MlflowException(violations_message(frame), error_code=INVALID_PARAMETER_VALUE)
        probability = self.predict_probability(frame, matrix)
        return pd.DataFrame(
            {
                config.PROBABILITY_COLUMN: probability,
                config.PREDICTION_COLUMN: (probability >= self.threshold).astype("int64"),
            },
            index=frame.index,
        )


def probability_through(steps: list, matrix: np.ndarray) -> np.ndarray:
    for transformer in steps[:-1]:
        matrix = transformer.transform(matrix)
    return steps[-1].predict_proba(matrix)[:, 1]
