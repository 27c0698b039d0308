"""Evaluation plots logged with every training run (matplotlib, Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from models.metrics import reliability_table

MODEL_LABELS = {"lightgbm": "LightGBM", "logistic": "Logistic regression", "rules": "2022 rulebook"}


def roc_pr_curves(predictions: pd.DataFrame, tier: str) -> plt.Figure:
    """ROC and precision-recall curves of every model on the pooled out-of-fold rows."""
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.5))
    y = predictions["label"].to_numpy()
    for model, label in MODEL_LABELS.items():
        p = predictions[f"p_{model}"].to_numpy()
        fpr, tpr, _ = roc_curve(y, p)
        precision, recall, _ = precision_recall_curve(y, p)
        ax_roc.plot(fpr, tpr, label=label)
        ax_pr.plot(recall, precision, label=label)
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax_pr.axhline(y.mean(), color="grey", linestyle=":", linewidth=1, label="selection rate")
    ax_roc.set(xlabel="False positive rate", ylabel="True positive rate", title=f"ROC — {tier}")
    ax_pr.set(xlabel="Recall", ylabel="Precision", title=f"Precision-recall — {tier}")
    for ax in (ax_roc, ax_pr):
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def reliability_curve(predictions: pd.DataFrame, tier: str, n_bins: int = 12) -> plt.Figure:
    """Observed selection rate against predicted probability, before and after calibration.

    Equal-mass bins on log-log axes: selections are rare (a Single Champion is about one
    candidate in a thousand), so on linear axes every bin but the top one sits in a corner.
    Bins without a selection are drawn as open markers on the bottom edge.
    """
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 5.5))
    y = predictions["label"].to_numpy()
    tables = {label: reliability_table(y, predictions[column].to_numpy(), n_bins=n_bins)
              for column, label in (("p_lightgbm_raw", "LightGBM, uncalibrated"),
                                    ("p_lightgbm", "LightGBM, calibrated"))}
    positive = np.concatenate([t[c].to_numpy() for t in tables.values()
                               for c in ("mean_predicted", "observed_rate")])
    positive = positive[positive > 0]
    floor = max(float(positive.min()) / 2 if len(positive) else 1e-4, 1e-6)
    for label, table in tables.items():
        empty = table["observed_rate"] == 0
        line = ax.plot(table.loc[~empty, "mean_predicted"].clip(lower=floor),
                       table.loc[~empty, "observed_rate"], marker="o", label=label)[0]
        ax.scatter(table.loc[empty, "mean_predicted"].clip(lower=floor),
                   np.full(int(empty.sum()), floor), marker="o", facecolors="white",
                   edgecolors=line.get_color(), zorder=3)
    ax.plot([floor, 1], [floor, 1], color="grey", linestyle=":", label="perfect calibration")
    ax.axhline(y.mean(), color="grey", linewidth=0.8, linestyle="--",
               label=f"selection rate {y.mean():.2%}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor * 0.8, 1)
    ax.set(xlabel="Predicted probability (bin mean, log scale)",
           ylabel="Observed selection rate (log scale)",
           title=f"Reliability, {n_bins} equal-mass bins — {tier}")
    ax.text(0.98, 0.02, f"{len(y):,} out-of-fold firm-years, {int(y.sum()):,} selections;\n"
            "open markers: bins without a selection", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=7, color="dimgrey")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def feature_importance(importance: pd.DataFrame, tier: str, top: int = 25) -> plt.Figure:
    from models.explain import plot_label

    shown = importance.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(shown) + 1.2))
    ax.barh([plot_label(f) for f in shown["feature"]], shown["gain"] / importance["gain"].sum())
    ax.set(xlabel="Share of total split gain", title=f"Feature importance — {tier}")
    fig.tight_layout()
    return fig


def shap_summary(contributions: pd.DataFrame, X: pd.DataFrame, tier: str,
                 max_display: int = 20) -> plt.Figure:
    """Beeswarm of SHAP values (log-odds) with the shap package's renderer, features named
    by their labels (models.explain.explanation)."""
    import shap

    from models.explain import SHAP_AXIS, explanation, use_cjk_fallback

    use_cjk_fallback()
    plt.figure()
    shap.plots.beeswarm(explanation(contributions, X), max_display=max_display, show=False,
                        plot_size=(12, 7))
    fig = plt.gcf()
    fig.axes[0].set_xlabel(SHAP_AXIS)
    fig.suptitle(f"SHAP values (log-odds) — {tier}", fontsize=11)
    fig.tight_layout()
    return fig
