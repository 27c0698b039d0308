"""One LightGBM selection model per tier: early stopping and calibration on training years only.

`TierModel.fit(X, y, years)` never looks at a year it is not given: the newest given year
is held out for early stopping and for fitting the probability calibration, then the
booster is refit on every given year with the number of rounds found.

Selection works like a quota and the quotas move (a tier may pick ten times more firms in
one year than in another), so each training row starts from its own year's selection rate
(an offset, LightGBM's ``init_score``) and the trees learn how firms rank within a year.
Without it, years with generous quotas teach the trees a lower bar than a tight year sets.
The booster's margin is therefore relative to the year; the calibration fitted on the
newest training year turns it into a probability at that year's selection rate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

DEFAULT_PARAMS: dict = {
    "objective": "binary",
    # Early stopping watches a ranking metric: yearly quotas move the selection rate, and
    # log loss on a held-out year mostly measures that shift, not how well firms are ranked.
    "metric": "average_precision",
    "learning_rate": 0.05,
    # Small trees: committees add up criteria, so the signal is close to additive.
    "num_leaves": 8,
    "min_data_in_leaf": 20,
    # Extremely randomised split thresholds: averaged over hundreds of rounds they give
    # smooth responses to the steep but smooth criteria scores (R&D, points totals), where
    # best-split thresholds overfit one year's marginal firms.
    "extra_trees": True,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}
# High-cardinality sector codes overfit LightGBM's categorical splits (hundreds of levels,
# a handful of selections each); the section and the policy-sector flags carry the signal.
EXCLUDED_FEATURES = ("industry_group", "industry_division")
OFFSET_RATE_FLOOR = 1e-5
SMOOTHING_ROUNDS = 25
MIN_ROUNDS = 20
# Below this many rows one thread is faster: OpenMP's thread start-up and spinning cost more
# than the histogram work, and on a busy 2-core machine two threads can be 4x slower.
MULTITHREAD_MIN_ROWS = 200_000


def thread_count(n_rows: int) -> int:
    return 1 if n_rows < MULTITHREAD_MIN_ROWS else (os.cpu_count() or 1)


def categorical_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]


def align_categories(X: pd.DataFrame, categories: dict[str, list]) -> pd.DataFrame:
    """Cast columns to the categories seen at fit time (strings from JSON become categories).

    LightGBM encodes a category by its position in the category list, so a score frame
    must use exactly the training lists or codes would silently mean other values.
    """
    if not categories:
        return X
    X = X.copy()
    for column, cats in categories.items():
        values = X[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        # Values never seen in training (or empty strings) become missing, as LightGBM
        # would treat an unseen category anyway.
        values = values.where(values.isin(cats), None)
        X[column] = pd.Categorical(values, categories=cats)
    return X


@dataclass
class TierModel:
    """Calibrated LightGBM classifier for one tier.

    Attributes after fit: booster (lightgbm.Booster), best_iteration (int), calibrator
    (Platt scaling on the raw margin), feature_names (list[str]), categories (dict).
    """

    params: dict = field(default_factory=dict)
    seed: int = 0
    num_boost_round: int = 4000
    early_stopping_rounds: int = 200
    booster: lgb.Booster | None = None
    best_iteration: int = 0
    calibrator: LogisticRegression | None = None
    year_offsets: dict[int, float] = field(default_factory=dict)
    feature_names: list[str] = field(default_factory=list)
    categories: dict[str, list] = field(default_factory=dict)

    def _params(self, n_rows: int = 0) -> dict:
        return {**DEFAULT_PARAMS, "num_threads": thread_count(n_rows), **self.params,
                "seed": self.seed}

    def fit(self, X: pd.DataFrame, y, years) -> TierModel:
        """X: (n_rows, n_features) frame; y: 0/1 labels; years: as-of year of each row."""
        y = np.asarray(y, dtype=float)
        years = np.asarray(years)
        X = X.drop(columns=[c for c in EXCLUDED_FEATURES if c in X.columns])
        self.feature_names = list(X.columns)
        self.categories = {c: list(X[c].cat.categories) for c in categorical_columns(X)}
        holdout = _holdout_mask(years, seed=self.seed)
        params = self._params(len(X))
        self.year_offsets = year_offsets(y, years)
        offset = self.row_offsets(years)
        train_set = lgb.Dataset(X[~holdout], y[~holdout], init_score=offset[~holdout],
                                free_raw_data=True)
        valid_set = lgb.Dataset(X[holdout], y[holdout], init_score=offset[holdout],
                                reference=train_set)
        history: dict = {}
        probe = lgb.train(
            params, train_set, num_boost_round=self.num_boost_round, valid_sets=[valid_set],
            valid_names=["holdout"],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                       lgb.record_evaluation(history)],
        )
        self.best_iteration = _smoothed_best(history["holdout"][params["metric"]])
        self.calibrator = _platt(probe.predict(X[holdout], num_iteration=self.best_iteration,
                                               raw_score=True), y[holdout])
        # Refit on every training year: the held-out year is the most recent and most
        # informative one, and the round count found above carries over.
        self.booster = lgb.train(params, lgb.Dataset(X, y, init_score=offset),
                                 num_boost_round=self.best_iteration)
        return self

    def row_offsets(self, years) -> np.ndarray:
        """Each row's year offset (the `init_score` the booster was trained from)."""
        distinct, row_year = np.unique(np.asarray(years), return_inverse=True)
        return np.array([self.year_offsets[int(t)] for t in distinct])[row_year]

    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise ValueError(f"feature frame lacks {len(missing)} model features, e.g. {missing[:5]}")
        return align_categories(X[self.feature_names], self.categories)

    def predict_margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self._prepare(X), raw_score=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of selection, shape (n_rows,)."""
        margin = self.predict_margin(X)
        return self.calibrator.predict_proba(margin.reshape(-1, 1))[:, 1]

    def predict_uncalibrated(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's own probability at the newest training year's selection rate."""
        offsets = getattr(self, "year_offsets", None) or {}  # models saved before offsets
        newest = offsets[max(offsets)] if offsets else 0.0
        return 1.0 / (1.0 + np.exp(-(self.predict_margin(X) + newest)))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP values on the margin (log-odds), shape (n_rows, n_features + 1 bias column).

        LightGBM's pred_contrib computes exactly TreeSHAP, faster than the shap package.
        """
        values = self.booster.predict(self._prepare(X), pred_contrib=True)
        return pd.DataFrame(values, index=X.index, columns=[*self.feature_names, "bias"])

    def feature_importance(self) -> pd.DataFrame:
        return pd.DataFrame({
            "feature": self.feature_names,
            "gain": self.booster.feature_importance("gain"),
            "split": self.booster.feature_importance("split"),
        }).sort_values("gain", ascending=False, ignore_index=True)


def year_offsets(y: np.ndarray, years: np.ndarray) -> dict[int, float]:
    """Log-odds of each year's selection rate among the given rows (clipped away from 0/1,
    so a year without selections still has a finite offset)."""
    rates = pd.Series(y, dtype=float).groupby(np.asarray(years)).mean()
    rates = rates.clip(OFFSET_RATE_FLOOR, 1 - OFFSET_RATE_FLOOR)
    return {int(t): float(np.log(r / (1 - r))) for t, r in rates.items()}


def _smoothed_best(curve: list[float]) -> int:
    """Round count at the best moving average of the held-out metric.

    A held-out year may hold only a dozen selections; its raw curve then peaks by chance
    after a few rounds. Averaging over SMOOTHING_ROUNDS rounds picks a stable plateau.
    """
    values = pd.Series(curve, dtype=float)
    smoothed = values.rolling(SMOOTHING_ROUNDS, min_periods=1, center=True).mean()
    return max(int(smoothed.to_numpy().argmax()) + 1, min(MIN_ROUNDS, len(values)))


def _holdout_mask(years: np.ndarray, seed: int) -> np.ndarray:
    """Hold out the newest year; with a single year, a seeded fifth of its rows.

    (Holding out only half of the newest year, so the probe also sees that year's quota,
    was tried: it ranked worse on the walk-forward folds and calibrated no better.)
    """
    distinct = np.unique(years)
    if len(distinct) > 1:
        return years == distinct.max()
    rng = np.random.default_rng(seed)
    return rng.random(len(years)) < 0.2


def _platt(margin: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Platt scaling on the raw margin: two parameters, stable with few selected firms
    (isotonic regression overfits when a year holds only dozens of selections)."""
    calibrator = LogisticRegression(C=1e4, max_iter=1000)
    if y.min() == y.max():  # no selections in the held-out rows: keep the margin as is
        calibrator.fit(np.array([[-50.0], [50.0]]), np.array([0, 1]))
        calibrator.coef_[:] = 1.0
        calibrator.intercept_[:] = 0.0
        return calibrator
    calibrator.fit(margin.reshape(-1, 1), y.astype(int))
    return calibrator
