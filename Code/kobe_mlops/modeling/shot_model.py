"""The MLflow pyfunc that wraps a fitted PyCaret pipeline.

Its ``predict`` returns, for every row, the probability of a make and the 0/1 label at the
project threshold, so both embedded and served scoring hand back probabilities. Rows that
break the data contract are refused with a message naming rows and columns (MLflow's server
turns that into a 400 response).
"""

# No "from __future__ import annotations": MLflow reads the predict type hint at runtime.
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import violations_message


class ShotMadeModel(mlflow.pyfunc.PythonModel):
    def __init__(self, pipeline, threshold: float = config.DECISION_THRESHOLD):
        self.pipeline = pipeline
        self.threshold = threshold

    def predict_probability(self, features: pd.DataFrame) -> np.ndarray:
        """P(make) through the whole preprocessing pipeline."""
        return self.pipeline.predict_proba(features[config.FEATURES])[:, 1]

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = pd.DataFrame(model_input)
        problem = violations_message(frame)
        if problem:
            raise MlflowException(problem, error_code=INVALID_PARAMETER_VALUE)
        probability = self.predict_probability(frame)
        return pd.DataFrame(
            {
                config.PROBABILITY_COLUMN: probability,
                config.PREDICTION_COLUMN: (probability >= self.threshold).astype("int64"),
            },
            index=frame.index,
        )
