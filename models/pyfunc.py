"""The registered model: an MLflow pyfunc that returns selection probabilities.

A plain LightGBM pyfunc returns labels; analysts need probabilities, and the model must
carry the feature pipeline version it was trained with so a scorer can refuse a mismatch.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.lgbm import TierModel

OUTPUT_COLUMN = "probability"


class TierProbabilityModel(mlflow.pyfunc.PythonModel):
    """Input: a frame of the model's feature columns (categoricals as plain strings).
    Output: a frame with one column `probability` in [0, 1], one row per input row."""

    def __init__(self, tier_model: TierModel, tier: str, feature_pipeline_version: str):
        self.tier_model = tier_model
        self.tier = tier
        self.feature_pipeline_version = feature_pipeline_version

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = signature_frame(pd.DataFrame(model_input), self.tier_model)
        return pd.DataFrame({OUTPUT_COLUMN: self.tier_model.predict_proba(frame)[:, 1]})


def signature_frame(X: pd.DataFrame, tier_model: TierModel) -> pd.DataFrame:
    """The model's columns with plain dtypes: categoricals as object strings (None = missing)
    and numerics as float64, because MLflow's schema enforcement mishandles pandas
    `category` and nullable integer dtypes."""
    frame = X[list(tier_model.feature_names_in_)].copy()
    for column in frame.columns:
        if column in tier_model.categories_:
            values = frame[column].astype(object)
            frame[column] = values.where(pd.notna(values), None)
        else:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    return frame
