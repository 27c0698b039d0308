"""Evaluation metrics for selection models: ranking, probability quality and quota precision."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "ece", "precision_at_k")
# Larger is better for these; the others are losses.
HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "precision_at_k": True,
                    "brier": False, "log_loss": False, "ece": False}


def expected_calibration_error(y_true: np.ndarray, p: np.ndarray, n_bins: int = 15) -> float:
    """Mean |observed rate - mean prediction| over equal-mass bins, weighted by bin size.

    Equal-mass (quantile) bins rather than equal-width ones: selection rates are a few
    per cent, so equal-width bins would put almost every firm in the first bin and hide
    miscalibration among the firms that matter.
    """
    y_true = np.asarray(y_true, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, min(n_bins, len(p)))
    total = len(p)
    return float(sum(len(b) / total * abs(y_true[b].mean() - p[b].mean()) for b in bins if len(b)))


def precision_at_k(y_true: np.ndarray, score: np.ndarray, k: int | None = None) -> float:
    """Share of true selections among the k highest scores; k defaults to the number selected.

    Selection works like a quota, so a reviewer asks: of as many firms as were picked,
    how many of our top picks were right?
    """
    y_true = np.asarray(y_true, dtype=float)
    k = int(y_true.sum()) if k is None else int(k)
    if k <= 0:
        return float("nan")
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:k]
    return float(y_true[top].mean())


def binary_metrics(y_true, p) -> dict[str, float]:
    """All metrics of METRICS for one set of labels (0/1) and probabilities in [0, 1]."""
    y_true = np.asarray(y_true, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    if y_true.min() == y_true.max():
        raise ValueError("metrics need both selected and not-selected firms in the fold")
    return {
        "roc_auc": float(roc_auc_score(y_true, p)),
        "pr_auc": float(average_precision_score(y_true, p)),
        "brier": float(brier_score_loss(y_true, p)),
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])),
        "ece": expected_calibration_error(y_true, p),
        "precision_at_k": precision_at_k(y_true, p),
    }


def reliability_table(y_true, p, n_bins: int = 10) -> pd.DataFrame:
    """Mean prediction vs observed rate per equal-mass bin (for the reliability curve)."""
    frame = pd.DataFrame({"y": np.asarray(y_true, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(n_bins, len(frame)), labels=False)
    return frame.groupby("bin").agg(mean_predicted=("p", "mean"), observed_rate=("y", "mean"),
                                    firms=("y", "size")).reset_index(drop=True)
