"""MLflow plumbing: the tracking store, the experiment, fingerprints, the registry gate."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from training.settings import get_settings

PRODUCTION = "production"
GATE_METRIC = "pr_auc"
MLRUNS = Path("mlruns")
# MLflow 3's UI reads this experiment tag to choose between its GenAI pages (traces) and the
# model-training pages (runs, metrics, models); without it, it guesses from the contents.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# MLflow 3.17's UI decides between its GenAI and model-training pages by a global switch that
# defaults to GenAI (it no longer reads the tag above); this URL parameter sets it.
UI_MODEL_TRAINING = "workflowType=machine_learning"
EXPERIMENT_NOTE = (
    "giantwatch: LightGBM models per tier of the SME cultivation system (Specialized SME, "
    "Little Giant, Single Champion), evaluated walk-forward by year against the published "
    "rulebook and a logistic regression. Parent runs `train ...` hold the means per tier and "
    "model (metrics_summary.csv); child runs one tier each; `audit` runs the selection audit.")


def setup_tracking() -> str:
    """Use MLFLOW_TRACKING_URI if set, else the SQLite store sqlite:///mlruns/mlflow.db.

    The plain file store ./mlruns is refused by recent MLflow releases, hence SQLite; its
    artifacts go under mlruns/artifacts so everything a run makes lives in one folder.
    """
    uri = get_settings().tracking_uri
    if not uri:
        MLRUNS.mkdir(exist_ok=True)
        uri = _default_store()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _default_store() -> str:
    return f"sqlite:///{MLRUNS.resolve() / 'mlflow.db'}"


def use_experiment(name: str | None = None) -> str:
    """Make `name` (default: the GIANTWATCH_EXPERIMENT setting, "giantwatch") the active
    experiment, created if needed and tagged as model training for MLflow's UI.

    With the default store its artifacts go under mlruns/artifacts/<name>.
    """
    name = name or get_settings().experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = None
        # (Not MLFLOW_TRACKING_URI: mlflow.set_tracking_uri sets that variable too.)
        if mlflow.get_tracking_uri() == _default_store():
            location = (MLRUNS.resolve() / "artifacts" / name).as_uri()
        mlflow.create_experiment(name, artifact_location=location)
        experiment = mlflow.get_experiment_by_name(name)
    client = MlflowClient()
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    if "mlflow.note.content" not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, "mlflow.note.content",
                                  EXPERIMENT_NOTE)
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return name


def ui_runs_url(experiment_id: str, base: str = "http://127.0.0.1:5000") -> str:
    """The MLflow UI's run list of an experiment, in its model-training view."""
    return f"{base}/#/experiments/{experiment_id}/runs?{UI_MODEL_TRAINING}"


def experiment_for_dataset(data_dir: Path) -> str:
    """The experiment of a run on the dataset at `data_dir`: the configured one (runs record
    their dataset as the `data_dir` parameter and the data fingerprint tag)."""
    return use_experiment()


def fingerprint(tables: dict[str, pd.DataFrame]) -> str:
    """SHA-256 over the normalised contents of the tables: the same data in CSV or Parquet
    gives the same fingerprint, any changed cell gives another."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        frame = tables[name]
        digest.update(name.encode())
        digest.update(json.dumps(list(map(str, frame.columns))).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def registered_name(tier: str) -> str:
    return f"giantwatch-{tier}"


@dataclass
class GateDecision:
    promoted: bool
    reason: str
    previous_version: str | None


def _versus(score: float, baselines: Mapping[str, float]) -> str:
    """"PR-AUC 0.620 vs logistic 0.590, rulebook 0.320"."""
    against = ", ".join(f"{name} {value:.3f}" for name, value in baselines.items())
    return f"PR-AUC {score:.3f}" + (f" vs {against}" if against else "")


def promote_if_better(name: str, version: str, score: float, comparable_key: str,
                      force: bool = False,
                      baselines: Mapping[str, float] | None = None) -> GateDecision:
    """Give `version` the production alias if, on the same walk-forward folds, its
    PR-AUC `score` beats every baseline's (`baselines`: name -> PR-AUC, e.g. logistic and
    rulebook) and is at least the current production version's. `force` promotes anyway.

    Scores are only comparable when measured on the same folds of the same data, which
    `comparable_key` (data fingerprint + fold years) identifies; otherwise the gate holds.
    The decision's reason says it in words ("PR-AUC 0.620 vs logistic 0.590, rulebook 0.320").
    """
    baselines = dict(baselines or {})
    versus = _versus(score, baselines)
    beaten_by = {k: v for k, v in baselines.items() if not score > v}
    client = MlflowClient()
    try:
        current = client.get_model_version_by_alias(name, PRODUCTION)
    except MlflowException:
        current = None
    if force:
        decision = GateDecision(True, f"forced by --force-promote ({versus})",
                                current.version if current else None)
    elif beaten_by:
        losses = ", ".join(f"{k} {v:.3f}" for k, v in beaten_by.items())
        beaten = ", ".join(f"{k} {v:.3f}" for k, v in baselines.items() if k not in beaten_by)
        decision = GateDecision(
            False, f"PR-AUC {score:.3f} does not beat {losses} on the same folds"
                   + (f" (beats {beaten})" if beaten else "") + "; --force-promote overrides",
            current.version if current else None)
    elif current is None:
        decision = GateDecision(True, f"{versus}; no production version before", None)
    elif current.tags.get("comparable_key") != comparable_key:
        decision = GateDecision(
            False, f"production v{current.version} was evaluated on other data or folds; "
                   "scores are not comparable (use --force-promote to override)", current.version)
    else:
        previous = float(current.tags.get(f"cv_{GATE_METRIC}", "nan"))
        promoted = score >= previous
        decision = GateDecision(
            promoted, f"{versus}, production v{current.version} {previous:.3f}"
                      + ("" if promoted else " (not beaten; --force-promote overrides)"),
            current.version)
    if decision.promoted:
        client.set_registered_model_alias(name, PRODUCTION, version)
    client.set_model_version_tag(name, version, "gate_decision",
                                 ("promoted: " if decision.promoted else "held: ") + decision.reason)
    return decision
