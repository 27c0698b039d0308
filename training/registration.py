"""Logging a fitted model to MLflow from code and registering it, with its card.

Each version is logged with MLflow's models-from-code (`models/pyfunc_model.py`, the fitted
TierModel as a joblib artifact, the `models` package as its code, requirements pinned to
the versions that trained it) and tagged with what the gate and the scorers check.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from models.lgbm import TierModel
from models.pyfunc import MODEL_CODE, OUTPUT_COLUMN, TIER_MODEL_ARTIFACT, signature_frame
from training.evaluate import Evaluation
from training.tracking import registered_name

# What the registered model needs at load time (models.pyfunc, models.lgbm), pinned to the
# versions that trained it. giantwatch itself is not a requirement: the model carries its code.
MODEL_REQUIREMENTS = ("lightgbm", "scikit-learn", "scipy", "joblib", "pandas", "numpy", "mlflow",
                      "numba")  # numba: models.treeshap_kernels, the contributions engine
# The packages shipped as the model's code (code_paths): models.pyfunc needs only `models`.
MODEL_CODE_PACKAGES = ("models",)

def register(model: TierModel, X: pd.DataFrame, tier: str, data_fp: str,
             evaluation: Evaluation, trained_until: int, pipeline_version: str,
             versions: dict[str, str]) -> str:
    """Log the model from code (models.pyfunc_model, the TierModel as a joblib artifact,
    the `models` package as its code) and register it; returns the new version."""
    import joblib

    example = signature_frame(X.head(5), model)
    output = pd.DataFrame({OUTPUT_COLUMN: model.predict_proba(X.head(5))[:, 1]})
    with tempfile.TemporaryDirectory() as tmp:
        artifact = Path(tmp) / "tier_model.joblib"
        joblib.dump(model, artifact)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={TIER_MODEL_ARTIFACT: str(artifact)},
            code_paths=_model_code(Path(tmp) / "code"),
            signature=_optional_inputs(
                infer_signature(signature_frame(X.head(500), model), output)),
            input_example=example,
            registered_model_name=registered_name(tier),
            # Pinned to what trained the model; skips MLflow's slow requirement inference.
            pip_requirements=_model_requirements(),
            metadata={"tier": tier, "feature_pipeline_version": pipeline_version,
                      "giantwatch_version": versions["giantwatch"]},
        )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    folds = ",".join(str(f.test_year) for f in evaluation.folds)
    tags = {"tier": tier, "feature_pipeline_version": pipeline_version,
            "giantwatch_version": versions["giantwatch"],
            "data_fingerprint": data_fp, "fold_test_years": folds, "trained_until": trained_until,
            "comparable_key": f"{data_fp}|{folds}",
            **{f"cv_{m}": repr(evaluation.mean("lightgbm", m))
               for m in ("pr_auc", "roc_auc", "brier", "ece", "precision_at_k")}}
    for key, value in tags.items():
        client.set_model_version_tag(registered_name(tier), version, key, str(value))
    return version


def _model_code(folder: Path) -> list[str]:
    """Copies of MODEL_CODE_PACKAGES without caches, for log_model's code_paths."""
    import importlib

    paths = []
    for package in MODEL_CODE_PACKAGES:
        source = Path(importlib.import_module(package).__file__).parent
        target = folder / package
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        paths.append(str(target))
    return paths


def _model_requirements() -> list[str]:
    requirements = []
    for package in MODEL_REQUIREMENTS:
        try:
            requirements.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            requirements.append(package)
    return requirements


def describe(tier: str, version: str, card: str) -> None:
    """The model card as the version's description, the registered model's description
    (what the registry's model page shows: the newest version's card) and a run artifact."""
    client = mlflow.MlflowClient()
    client.update_model_version(registered_name(tier), version, description=card)
    client.update_registered_model(registered_name(tier), description=card)
    mlflow.log_text(card, "model_card.md")
    mlflow.set_tag("mlflow.note.content", card)


def _optional_inputs(signature):
    """Mark every input column optional: any feature may be missing for a firm (NaN / null),
    whether or not the sample the signature was inferred from happened to show it."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec(c.type, c.name, required=False) for c in signature.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=signature.outputs)
