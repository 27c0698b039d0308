"""Baselines every LightGBM model must beat, on the same folds.

- `RuleBaseline`: the official rulebook alone (what `giantwatch check` says), turned into a
  probability by the selection rate of each eligibility outcome in the training years.
- `LogisticBaseline`: a regularised logistic regression on the same feature frame, with
  the same within-year treatment as the LightGBM model (a fixed effect per training year,
  scored at the newest training year's level).

Both follow scikit-learn's conventions like `models.lgbm.TierModel`: hyper-parameters in
``__init__``, ``fit(X, y, *, years=None)`` returning self, fitted attributes ending with an
underscore and ``predict_proba`` of shape (n_rows, 2) (column 1: probability of selection).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer
from threadpoolctl import threadpool_limits

from models.calibration import sampling_offset
from models.lgbm import categorical_columns

YEAR_COLUMN = "__selection_year__"
# Rows scored at a time by LogisticBaseline.predict_proba (bounds its memory, not its result).
PREDICT_CHUNK_ROWS = 100_000
_LEVEL = {"fail": 0, "unknown": 1, "pass": 2}


def rule_outcomes(X: pd.DataFrame, tier: str) -> tuple[np.ndarray, np.ndarray]:
    """(eligibility level, share of known criteria passed), each of shape (n_rows,).

    Level: 0 fail, 1 unknown, 2 pass. Read back from the feature frame's ``rule_`` columns
    (the lens rulebook's on-data reading, see `features.rule_features.lens_outcomes`): the
    on-data reading matters because qualitative criteria that no dataset records (chain
    role, information systems, awards) would otherwise keep every firm `unknown`.
    """
    from features.rule_features import lens_outcomes

    outcome = lens_outcomes(X, tier)
    eligible = np.asarray(outcome.eligible, dtype=float)
    level = np.where(np.isnan(eligible), _LEVEL["unknown"],
                     np.where(eligible == 1.0, _LEVEL["pass"], _LEVEL["fail"])).astype(float)
    criteria = outcome.criteria.to_numpy(dtype=float)
    passed = (criteria == 1.0).sum(axis=1).astype(float)
    known = (~np.isnan(criteria)).sum(axis=1).astype(float)
    share = np.divide(passed, known, out=np.zeros_like(passed), where=known > 0)
    return level, share


def _two_columns(p: np.ndarray) -> np.ndarray:
    return np.column_stack([1.0 - p, p])


class RuleBaseline(ClassifierMixin, BaseEstimator):
    """Probability = training-years selection rate of the firm's eligibility outcome.

    Ties within an outcome are broken by the share of known criteria passed, so ranking
    metrics see the rulebook's full information and no more. X must be a feature frame built
    by the pipeline (its ``rule_`` columns carry the lens rulebook's verdicts).

    Fitted attributes: rates_ (dict level 0/1/2 -> selection rate), classes_ ([0, 1]).
    """

    def __init__(self, tier: str):
        self.tier = tier

    def fit(self, X: pd.DataFrame, y, *, years=None, kept_rate=None) -> RuleBaseline:
        """y: (n_rows,) 0/1 labels; years are accepted for a common signature and unused;
        kept_rate: (n_rows,) fraction of its year's rows of its class kept by case-control
        sampling (None = every row): each row then counts 1/kept_rate times, so the rates
        are the population's."""
        level, _ = rule_outcomes(X, self.tier)
        y = np.asarray(y, dtype=float)
        weight = 1.0 / (np.ones(len(y)) if kept_rate is None
                        else np.asarray(kept_rate, dtype=float))

        def rate(rows):
            return float(np.sum(y[rows] * weight[rows]) / np.sum(weight[rows]))

        overall = rate(slice(None))
        self.rates_ = {
            lv: rate(level == lv) if (level == lv).any() else overall
            for lv in _LEVEL.values()
        }
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows, 2); column 1: the outcome's selection rate plus 1e-6 x share passed."""
        level, share = rule_outcomes(X, self.tier)
        base = np.array([self.rates_[int(lv)] for lv in level])
        return _two_columns(np.clip(base + 1e-6 * share, 0.0, 1.0))


class LogisticBaseline(ClassifierMixin, BaseEstimator):
    """Logistic regression: quantile-normalised numerics with missing indicators, one-hot
    categoricals. The quantile transform keeps heavy-tailed money columns from dominating.

    Given the rows' years, it also fits one indicator per year (the counterpart of the
    LightGBM model's year offsets, so the comparison is like for like) and scores new rows
    as if they came from the newest training year.

    Fitted attributes: pipeline_ (sklearn Pipeline), newest_year_ (int, or None when fitted
    without years), classes_ ([0, 1]).
    """

    def __init__(self, seed: int = 0, C: float = 0.5):
        self.seed = seed
        self.C = C

    def fit(self, X: pd.DataFrame, y, *, years=None, kept_rate=None) -> LogisticBaseline:
        """y: (n_rows,) 0/1 labels; years: (n_rows,) as-of years, or None (one pooled rate);
        kept_rate: (n_rows,) fraction of its year's rows of its class kept by case-control
        sampling (None = every row): the newest year's log f - log s is added to the
        intercept, so the probabilities are on the population scale
        (models.calibration.sampling_offset)."""
        categorical = categorical_columns(X)
        numeric = [c for c in X.columns if c not in categorical]
        X = _with_year(X, years)
        self.newest_year_ = None if years is None else int(np.max(years))
        prep = ColumnTransformer([
            ("num", make_pipeline(
                SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                QuantileTransformer(n_quantiles=200, output_distribution="normal",
                                    subsample=200_000, random_state=self.seed)), numeric),
            ("cat", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="missing"),
                OneHotEncoder(handle_unknown="ignore", min_frequency=20)), categorical),
            ("year", OneHotEncoder(handle_unknown="ignore"), [YEAR_COLUMN]),
        ])
        self.pipeline_ = Pipeline([
            ("prep", prep),
            ("lr", LogisticRegression(C=self.C, max_iter=3000, random_state=self.seed,
                                      solver=_solver(kept_rate))),
        ])
        # One BLAS thread: the solver's path then does not depend on how sums are split
        # across threads, so the same data and seed give the same coefficients.
        with threadpool_limits(1):
            self.pipeline_.fit(_objects_for_categories(X, categorical), np.asarray(y, dtype=int))
        self.pipeline_[-1].intercept_ += sampling_offset(
            kept_rate, y, np.zeros(len(y)) if years is None else years)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n_rows, 2); column 1: probability of selection at the newest training year.
        Scored PREDICT_CHUNK_ROWS rows at a time: every step is row by row, and a whole
        test year at national scale (800k rows) would otherwise hold several copies of
        itself (object categoricals, the transformed design matrix) at once."""
        categorical = categorical_columns(X)
        parts = []
        for start in range(0, max(len(X), 1), PREDICT_CHUNK_ROWS):
            chunk = X.iloc[start:start + PREDICT_CHUNK_ROWS]
            year = None if self.newest_year_ is None else np.full(len(chunk), self.newest_year_)
            chunk = _objects_for_categories(_with_year(chunk, year), categorical)
            with threadpool_limits(1):
                parts.append(self.pipeline_.predict_proba(chunk))
        return np.concatenate(parts)


def _solver(kept_rate) -> str:
    """The logistic regression's solver: Newton-Cholesky on a case-control sample (national
    scale: its ~10 Newton steps reach the penalised optimum at about half the CPU time of
    L-BFGS's ~700 iterations on 57,635 Specialized rows of the default universe, PR-AUC
    0.7276 against 0.7261), L-BFGS on every row, so the default universe's published
    figures stay those measured."""
    return "lbfgs" if kept_rate is None else "newton-cholesky"


def _with_year(X: pd.DataFrame, years) -> pd.DataFrame:
    """X plus the year column the pipeline one-hot encodes (a constant when years are unknown)."""
    year = np.zeros(len(X), dtype=np.int64) if years is None else np.asarray(years, dtype=np.int64)
    return X.assign(**{YEAR_COLUMN: year})


def _objects_for_categories(X: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    if not categorical:
        return X
    X = X.copy()
    for column in categorical:
        X[column] = X[column].astype(object).where(X[column].notna(), np.nan)
    return X
