"""One LightGBM selection model per tier: early stopping and calibration on training years only.

`TierModel.fit(X, y, years=...)` never looks at a year it is not given. It follows
scikit-learn's conventions: hyper-parameters in ``__init__``, fitted state in attributes
ending with an underscore, ``predict_proba`` of shape (n_rows, 2).

Fitting takes four steps:

1. A probe booster, trained on every given year but the newest, finds the number of
   boosting rounds by early stopping on the newest year (with a single year, on a seeded
   fifth of its rows). When the newest year holds fewer than ``min_holdout_selections``
   selections (a dozen Single Champions), older years are held out too, each by a probe
   trained on the years before it, and the round count is read from their pooled curve
   (models.boosting_rounds).
2. The served booster (``booster_``) is trained on every given row with that round count.
3. Out-of-fold margins: the rows are split into ``calibration_folds`` seeded folds
   (stratified by year and label; rows, not firms: the frame carries no firm id, so a firm's
   other years may sit on the training side of its fold). Per fold, a booster with the served
   configuration (same parameters, round count, year offsets and feature bins) is trained on
   the rows outside the fold and scores the fold's newest-year rows.
4. Platt scaling (``calibrator_``) is fitted on those out-of-fold newest-year margins (and
   those of the other held-out years of step 1, each shifted by its year's offset). They
   come from boosters trained like the served one on the same years, so the calibration maps
   the served booster's margin scale, without the in-sample optimism of its own margins.

A fit on more than LARGE_FIT_ROWS rows (national scale) learns faster (LARGE_FIT_PARAMS)
and calibrates on LARGE_FIT_CALIBRATION_FOLDS folds.

Selection works like a quota and the quotas move (a tier may pick ten times more firms in
one year than in another), so each training row starts from its own year's selection rate
(an offset, LightGBM's ``init_score``) and the trees learn how firms rank within a year.
Without it, years with generous quotas teach the trees a lower bar than a tight year sets.
The booster's margin is therefore relative to the year; the calibration fitted on the
newest training year turns it into a probability at that year's selection rate.

Trained on case-control samples (a fraction s of a year's selections, a fraction f of its
other rows: training.sampling), a year's odds of selection among the rows are its population
odds x s/f; ``fit(..., kept_rate=...)`` adds log f - log s (of the newest year) to the
calibration's intercept, so the probabilities are on the population scale again
(``sampling_offset_``, models.calibration.sampling_offset).
"""

from __future__ import annotations

import os

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from models.boosting_rounds import MIN_HOLDOUT_SELECTIONS, round_count
from models.calibration import (
    calibration_folds,
    platt,
    platt_probability,
    sampling_offset,
    year_offsets,
)
from models.lgbm_dask import dask_booster
from models.treeshap import ShapTables, feature_matrix

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
# When the newest year holds fewer than min_holdout_selections selections (Single Champions:
# a dozen a year at 20,000 firms), leaves are shrunk harder. A leaf's value is its gradient
# sum over (hessian sum + lambda_l2), and at a selection rate of 0.1% the hessian sum of a
# leaf with a few selections is below 1: lambda_l2 10 keeps a leaf built on one or two
# selections from setting a firm's rank on its own. Chosen on the universe of seed 11 and
# confirmed on seeds 3 and 7 (README, "How close to the best achievable ranking").
FEW_SELECTIONS_PARAMS = {"lambda_l2": 10.0}
# National scale: a fit on more rows than this (1,000,000 firms sample 160,000-210,000 rows
# per tier: training.sampling) learns at LARGE_FIT_PARAMS' rate, so it needs about half the
# rounds, and calibrates on LARGE_FIT_CALIBRATION_FOLDS out-of-fold boosters (each on half
# the rows) instead of calibration_folds: together about 2.5x less boosting per fit. The
# default universe's largest fit (122,685 Specialized rows) is under it and unchanged.
# PR-AUC cost measured on 200,000 firms (docs/PERFORMANCE.md, "What the national-scale
# settings cost").
LARGE_FIT_ROWS = 150_000
LARGE_FIT_PARAMS = {"learning_rate": 0.1}
LARGE_FIT_CALIBRATION_FOLDS = 2
# Below this many rows one thread is faster: OpenMP's thread start-up and spinning cost more
# than the histogram work, and on a busy 2-core machine two threads can be 4x slower.
MULTITHREAD_MIN_ROWS = 200_000


def thread_count(n_rows: int) -> int:
    return 1 if n_rows < MULTITHREAD_MIN_ROWS else (os.cpu_count() or 1)


def categorical_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]


def has_categories(values: pd.Series, categories: list) -> bool:
    """Whether `values` is categorical with exactly `categories`, in that order (its codes
    are then what the model's codes mean)."""
    return isinstance(values.dtype, pd.CategoricalDtype) and \
        list(values.dtype.categories) == list(categories)


def align_categories(X: pd.DataFrame, categories: dict[str, list]) -> pd.DataFrame:
    """Cast columns to the categories seen at fit time (strings from JSON become categories).

    LightGBM encodes a category by its position in the category list, so a score frame
    must use exactly the training lists or codes would silently mean other values.
    """
    if not categories:
        return X
    X = X.copy(deep=False)  # copy-on-write: the caller's frame is never changed
    for column, cats in categories.items():
        values = X[column]
        if has_categories(values, cats):
            continue  # already aligned (e.g. a frame aligned once for several models)
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        # Values never seen in training (or empty strings) become missing, as LightGBM
        # would treat an unseen category anyway.
        values = values.where(values.isin(cats), None)
        X[column] = pd.Categorical(values, categories=cats)
    return X


class TierModel(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM classifier for one tier (a scikit-learn style estimator).

    Parameters: params (LightGBM parameters overriding DEFAULT_PARAMS; None = none),
    seed, num_boost_round (cap of the probe's rounds), early_stopping_rounds (patience of the
    probe), calibration_folds (K of the out-of-fold margins the calibration is fitted on),
    min_holdout_selections (selections the held-out years of the round count must reach).

    Fitted attributes:
        booster_: lightgbm.Booster served, trained on every row with best_iteration_ rounds.
        best_iteration_: int, the round count found by early stopping.
        calibrator_: LogisticRegression, Platt scaling from margin (log-odds) to probability.
        calibration_folds_: int, K of the out-of-fold margins used (calibration_folds, or
            LARGE_FIT_CALIBRATION_FOLDS on more than LARGE_FIT_ROWS rows).
        year_offsets_: dict year -> log-odds of that year's selection rate (the init_score).
        feature_names_in_: ndarray of str, the model's columns (EXCLUDED_FEATURES dropped).
        n_features_in_: int, len(feature_names_in_).
        categories_: dict column -> list of the categories seen in fit (categoricals only).
        classes_: ndarray [0, 1].
        few_selections_: bool, the newest year held fewer than min_holdout_selections
            selections (then FEW_SELECTIONS_PARAMS apply).
        sampling_offset_: float, log f - log s of the newest year's kept rates of
            non-selected rows and selections (0.0 unsampled), added to the calibrated
            log-odds (see the module's docstring).
    """

    def __init__(self, params: dict | None = None, seed: int = 0, num_boost_round: int = 4000,
                 early_stopping_rounds: int = 200, calibration_folds: int = 3,
                 min_holdout_selections: int = MIN_HOLDOUT_SELECTIONS):
        self.params = params
        self.seed = seed
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration_folds = calibration_folds
        self.min_holdout_selections = min_holdout_selections

    def _params(self, n_rows: int = 0) -> dict:
        """LightGBM parameters of every booster of a fit on n_rows rows (with
        FEW_SELECTIONS_PARAMS when the fit found few selections, few_selections_)."""
        few = FEW_SELECTIONS_PARAMS if getattr(self, "few_selections_", False) else {}
        large = LARGE_FIT_PARAMS if n_rows > LARGE_FIT_ROWS else {}
        return {**DEFAULT_PARAMS, "num_threads": thread_count(n_rows), **large, **few,
                **(self.params or {}), "seed": self.seed}

    def _calibration_folds(self, n_rows: int) -> int:
        """K of the out-of-fold margins of a fit on n_rows rows (fewer on large fits)."""
        if n_rows > LARGE_FIT_ROWS:
            return min(self.calibration_folds, LARGE_FIT_CALIBRATION_FOLDS)
        return self.calibration_folds

    def fit(self, X: pd.DataFrame, y, *, years, kept_rate=None, client=None) -> TierModel:
        """X: (n_rows, n_features) frame; y: (n_rows,) 0/1 labels; years: (n_rows,) as-of
        year of each row; kept_rate: (n_rows,) fraction of its year's rows of its class
        that were kept (case-control sampling, training.sampling.CaseControl.kept_rate;
        None = every row); client: a distributed Client whose cluster fits the boosters
        (models.lgbm_dask; None = this process), made by training.cluster.dask_client so
        that its workers' LightGBM messages go to logging. Columns in EXCLUDED_FEATURES are
        ignored. Returns self."""
        y = np.asarray(y, dtype=float)
        years = np.asarray(years)
        self.sampling_offset_ = sampling_offset(kept_rate, y, years)
        X = X.drop(columns=[c for c in EXCLUDED_FEATURES if c in X.columns])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_ = {c: list(X[c].cat.categories) for c in categorical_columns(X)}
        self.classes_ = np.array([0, 1])
        self.few_selections_ = bool(y[years == years.max()].sum() < self.min_holdout_selections)
        params = self._params(len(X))
        self.year_offsets_ = year_offsets(y, years)
        offset = self.row_offsets(years)

        self.best_iteration_, held = round_count(
            X, y, offset, years, params=params, num_boost_round=self.num_boost_round,
            patience=self.early_stopping_rounds, min_selections=self.min_holdout_selections,
            seed=self.seed, client=client)

        # The served booster sees every training year: the newest is the most recent and
        # most informative one, and the round count found above carries over.
        everything = None
        if client is None:
            everything = lgb.Dataset(X, y, init_score=offset, free_raw_data=True)
            self.booster_ = lgb.train(params, everything, num_boost_round=self.best_iteration_)
        else:
            self.booster_ = dask_booster(client, params, X, y, offset, self.best_iteration_)

        # The calibration reads the years that chose the round count (the newest, or the
        # newest few when it holds few selections), each at its own selection rate relative
        # to the newest year's, so the probabilities are at the newest year's rate.
        calibrated = np.isin(years, np.unique(years[held])) if len(np.unique(years)) > 1 \
            else np.ones(len(y), bool)
        self.calibration_folds_ = self._calibration_folds(len(X))
        margin = self._out_of_fold_margins(X, everything, params, y, years, calibrated,
                                           client, offset)
        shift = offset - self.year_offsets_[int(years.max())]
        self.calibrator_ = platt(margin[calibrated], y[calibrated], shift[calibrated])
        # The sampled rows' odds are the population's / f: back to the population scale.
        self.calibrator_.intercept_ += self.sampling_offset_
        return self

    def _out_of_fold_margins(self, X: pd.DataFrame, everything: lgb.Dataset | None,
                             params: dict, y: np.ndarray, years: np.ndarray, wanted: np.ndarray,
                             client=None, offset: np.ndarray | None = None) -> np.ndarray:
        """(n_rows,) raw margins of the `wanted` rows, each from a booster of the served
        configuration trained on the other folds (NaN elsewhere).

        The fold boosters are subsets of the served booster's dataset, so they share its
        feature bins and year offsets; they run best_iteration_ rounds, no early stopping.
        With a client they are fitted on its cluster (X's rows with their offsets).
        """
        margin = np.full(len(y), np.nan)
        fold = calibration_folds(y, years, self.calibration_folds_, self.seed)
        for k in range(self.calibration_folds_):
            inside = np.flatnonzero((fold == k) & wanted)
            if len(inside) == 0:
                continue
            outside = np.flatnonzero(fold != k)
            booster = (lgb.train(params, everything.subset(outside),
                                 num_boost_round=self.best_iteration_) if client is None
                       else dask_booster(client, params, X.iloc[outside], y[outside],
                                         offset[outside], self.best_iteration_))
            margin[inside] = booster.predict(X.iloc[inside], raw_score=True)
        return margin

    def row_offsets(self, years) -> np.ndarray:
        """(n_rows,) log-odds offset of each row's year (the `init_score` the booster was
        trained from); every year must be one of the training years."""
        distinct, row_year = np.unique(np.asarray(years), return_inverse=True)
        return np.array([self.year_offsets_[int(t)] for t in distinct])[row_year]

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """X's model columns (feature_names_in_ order) with categories aligned to categories_;
        cheap for a frame already aligned. Raises ValueError if a model column is missing."""
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"feature frame lacks {len(missing)} model features, e.g. {missing[:5]}")
        return align_categories(X[list(self.feature_names_in_)], self.categories_)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows,) raw margin in log-odds, relative to the year (without the year offset)."""
        return self.booster_.predict(self.prepare(X), raw_score=True)

    def probability_from_margin(self, margin) -> np.ndarray:
        """(n_rows,) calibrated probability of selection for raw margins (log-odds), e.g. the
        row sums of `contributions`."""
        return platt_probability(self.calibrator_, margin)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows, 2): column 0 probability of not being selected, column 1 calibrated
        probability of selection (at the newest training year's selection rate)."""
        p = self.probability_from_margin(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows,) 0/1: calibrated probability of selection at least one half."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def predict_uncalibrated(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows,) the booster's own probability of selection at the newest training
        year's selection rate (margin plus that year's offset, no calibration)."""
        return self.uncalibrated_from_margin(self.decision_function(X))

    def uncalibrated_from_margin(self, margin) -> np.ndarray:
        """(n_rows,) `predict_uncalibrated` for raw margins already computed (log-odds)."""
        newest = self.year_offsets_[max(self.year_offsets_)] if self.year_offsets_ else 0.0
        newest += getattr(self, "sampling_offset_", 0.0)
        return 1.0 / (1.0 + np.exp(-(np.asarray(margin, dtype=float) + newest)))

    def contributions(self, X: pd.DataFrame, *, num_threads: int | None = None,
                      matrix: np.ndarray | None = None) -> pd.DataFrame:
        """SHAP values on the margin (log-odds): (n_rows, n_features_in_ + 1) frame, columns
        feature_names_in_ + "bias", index of X. Rows sum to `decision_function(X)`.

        Exact path-dependent TreeSHAP, the values of LightGBM's pred_contrib (to rounding),
        from the precomputed tables of models.treeshap; a booster they do not apply to
        (large trees) goes through pred_contrib itself. num_threads: threads for this call
        (None = the machine's cores; for pred_contrib, the booster's own setting).
        matrix: `model_matrix(X)` when already made (for another model of the same
        `input_key`); read only by the tables.
        """
        tables = self.shap_tables()
        if tables is None:
            extra = {} if num_threads is None else {"num_threads": num_threads}
            values = self.booster_.predict(self.prepare(X), pred_contrib=True, **extra)
        else:
            if matrix is None:
                matrix = self.model_matrix(X)
            values = tables.contributions(matrix, threads=num_threads)
        return pd.DataFrame(values, index=X.index, columns=[*self.feature_names_in_, "bias"])

    def model_matrix(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows, n_features_in_) float64 matrix of X's model columns as the booster reads
        them (categories as codes of categories_, missing as NaN; models.treeshap)."""
        positions = self._positions_in(X.columns)
        if positions is None or not all(has_categories(X[c], cats)
                                        for c, cats in (self.categories_ or {}).items()):
            return feature_matrix(self.prepare(X))
        # A feature frame of the model's categories (the pipeline's): its matrix, the model
        # columns taken by position, without the model frame `prepare` would first make.
        return np.asfortranarray(feature_matrix(X)[:, positions])

    def _positions_in(self, columns: pd.Index) -> np.ndarray | None:
        """Positions of feature_names_in_ among `columns` (None if one is missing), kept for
        the last column layout seen: the feature frames of one pipeline share it."""
        layout = tuple(columns)
        cached = self.__dict__.get("_positions")
        if cached is None or cached[0] != layout:
            positions = columns.get_indexer(self.feature_names_in_)
            cached = (layout, None if (positions < 0).any() else positions)
            self._positions = cached
        return cached[1]

    def input_key(self) -> tuple:
        """What `model_matrix` depends on: the model columns and their categories. Models
        with equal keys (the tiers of one feature pipeline) read the same matrix of a frame,
        made once for them all (models.scoring.score_frame)."""
        return (tuple(self.feature_names_in_),
                tuple((c, tuple(v)) for c, v in (self.categories_ or {}).items()))

    def shap_tables(self) -> ShapTables | None:
        """booster_'s models.treeshap.ShapTables (None: pred_contrib serves), built on first
        use and kept with the booster they were built from."""
        cached = self.__dict__.get("_shap_tables")
        if cached is None or cached[0] is not self.booster_:
            cached = (self.booster_, ShapTables.from_booster(self.booster_))
            self._shap_tables = cached
        return cached[1]

    def __getstate__(self):
        # The tables are derived from booster_ and rebuilt on first use: a pickled model
        # (MLflow artifact, Dask worker copy) stays what training wrote.
        state = dict(super().__getstate__())  # a copy: the live model keeps its tables
        state.pop("_shap_tables", None)
        state.pop("_positions", None)
        return state

    def feature_importance(self) -> pd.DataFrame:
        """One row per model feature: total gain and split count in booster_, by gain."""
        return pd.DataFrame({
            "feature": self.feature_names_in_,
            "gain": self.booster_.feature_importance("gain"),
            "split": self.booster_.feature_importance("split"),
        }).sort_values("gain", ascending=False, ignore_index=True)
