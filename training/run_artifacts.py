"""What a training run records in MLflow besides its parameters: walk-forward metrics per
fold and their means, the tables (metrics, out-of-fold predictions, importance) and plots
as artifacts, and the parent run's summary note."""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from models.lgbm import TierModel
from training import plots
from training.evaluate import Evaluation
from training.model_card import markdown_table

# Rows of the newest training year whose contributions make the final model's SHAP summary.
SHAP_SAMPLE = 2_000


def log_summary(summary: pd.DataFrame, folds: pd.DataFrame, data_fingerprint: str,
                registered: str) -> None:
    """The parent run's view: walk-forward means per tier and model as metrics
    (``<tier>.<model>.<metric>``; `summary` has columns tier, model and one per metric),
    the summary and fold tables as artifacts, and both in the run's description (MLflow
    shows it on the run page, under the line `registered` names the versions in)."""
    metrics = [c for c in summary.columns if c not in ("tier", "model")]
    for row in summary.to_dict("records"):
        for metric in metrics:
            value = row[metric]
            if np.isfinite(value):
                mlflow.log_metric(f"{row['tier']}.{row['model']}.{metric}", float(value))
    log_frame(summary, "metrics_summary.csv")
    log_frame(folds, "folds.csv")
    shown = summary.assign(**{m: summary[m].map("{:.4f}".format) for m in metrics})
    note = "\n".join([
        f"Data fingerprint `{data_fingerprint}`. Registered: {registered}.", "",
        "Walk-forward means over the test years:", "", markdown_table(shown), "",
        "Folds (LightGBM):", "", markdown_table(folds), ""])
    mlflow.set_tag("mlflow.note.content", note)


def log_evaluation(evaluation: Evaluation, tier: str) -> None:
    metrics = evaluation.metrics
    numeric = [c for c in metrics.columns if c not in ("model", "test_year", "train_years")]
    for row in metrics.itertuples(index=False):
        row = row._asdict()
        for metric in numeric:
            value = row[metric]
            if value is None or not np.isfinite(value):
                continue
            # The walk-forward mean under the plain name (what the run page shows); each
            # fold's value as the `fold.` metric's history, one step per test year.
            if row["test_year"] == "mean":
                mlflow.log_metric(f"{row['model']}.{metric}", float(value))
            else:
                mlflow.log_metric(f"fold.{row['model']}.{metric}", float(value),
                                  step=int(row["test_year"]))
    for baseline in ("logistic", "rules"):
        for metric in ("pr_auc", "roc_auc"):
            lift = evaluation.mean("lightgbm", metric) - evaluation.mean(baseline, metric)
            mlflow.log_metric(f"lift_over_{baseline}.{metric}", lift)
    log_frame(metrics, "walk_forward_metrics.csv")
    log_frame(evaluation.predictions, "out_of_fold_predictions.parquet")
    _log_figure(plots.roc_pr_curves(evaluation.predictions, tier), "plots/roc_pr.png")
    _log_figure(plots.reliability_curve(evaluation.predictions, tier), "plots/reliability.png")


def log_final_plots(model: TierModel, X: pd.DataFrame, keys: pd.DataFrame, tier: str,
                     seed: int) -> None:
    _log_figure(plots.feature_importance(model.feature_importance(), tier),
                "plots/feature_importance.png")
    log_frame(model.feature_importance(), "feature_importance.csv")
    latest = X[keys["year"].to_numpy() == keys["year"].max()]
    sample = latest.sample(min(SHAP_SAMPLE, len(latest)), random_state=seed)
    _log_figure(plots.shap_summary(model.contributions(sample), sample, tier),
                "plots/shap_summary.png")


def log_frame(frame: pd.DataFrame, artifact: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        folder = str(Path(artifact).parent)
        mlflow.log_artifact(str(path), artifact_path=None if folder == "." else folder)


def _log_figure(fig: plt.Figure, artifact: str) -> None:
    mlflow.log_figure(fig, artifact)
    plt.close(fig)
