"""The registered model: an MLflow pyfunc that returns selection probabilities.

A plain LightGBM pyfunc returns labels; analysts need probabilities, and the model must
carry the feature pipeline version it was trained with so a scorer can refuse a mismatch.

The model is logged "from code" (MLflow's models-from-code): `models/pyfunc_model.py` is the
model's definition, the fitted TierModel an artifact (joblib), and the `models` package
travels with it as code, so it loads wherever its pinned requirements are installed,
with or without giantwatch (see `training.train`).
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from models.lgbm import TierModel

OUTPUT_COLUMN = "probability"
TIER_MODEL_ARTIFACT = "tier_model"
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")


class TierProbabilityModel(mlflow.pyfunc.PythonModel):
    """Input: a frame of the model's feature columns (categoricals as plain strings).
    Output: a frame with one column `probability` in [0, 1], one row per input row.

    `tier_model` is given when used directly, or read from the TIER_MODEL_ARTIFACT artifact
    (a joblib file of the fitted TierModel) when MLflow loads the logged model.
    """

    def __init__(self, tier_model: TierModel | None = None):
        self.tier_model = tier_model

    def load_context(self, context) -> None:
        import joblib

        self.tier_model = joblib.load(context.artifacts[TIER_MODEL_ARTIFACT])

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
