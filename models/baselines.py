"""Baselines every LightGBM model must beat, on the same folds.

- `RuleBaseline`: the official rulebook alone (what `giantwatch check` says), turned into a
  probability by the selection rate of each eligibility outcome in the training years.
- `LogisticBaseline`: a regularised logistic regression on the same feature frame, with
  the same within-year treatment as the LightGBM model (a fixed effect per training year,
  scored at the newest training year's level).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer
from threadpoolctl import threadpool_limits

from models.lgbm import categorical_columns

RULEBOOK_FOR_BASELINE = "2022"
YEAR_COLUMN = "__selection_year__"
_LEVEL = {"fail": 0, "unknown": 1, "pass": 2}


def rule_outcomes(X: pd.DataFrame, tier: str, rulebook: str = RULEBOOK_FOR_BASELINE):
    """(eligibility level 0/1/2, share of known criteria passed) per row of X.

    Uses the rulebook's on-data reading: qualitative criteria that no dataset records
    (chain role, information systems, awards) would otherwise keep every firm `unknown`.
    """
    from features.rules import evaluate, load_rulebook

    result = evaluate(X, load_rulebook(rulebook, tier=tier))
    level = result.eligible_on_data.astype(str).map(_LEVEL).to_numpy(dtype=float)
    criteria = result.criteria_on_data.astype(str)
    passed = (criteria == "pass").sum(axis=1).to_numpy(dtype=float)
    known = (criteria != "unknown").sum(axis=1).to_numpy(dtype=float)
    share = np.divide(passed, known, out=np.zeros_like(passed), where=known > 0)
    return level, share


@dataclass
class RuleBaseline:
    """Probability = training-years selection rate of the firm's eligibility outcome.

    Ties within an outcome are broken by the share of known criteria passed, so ranking
    metrics see the rulebook's full information and no more.
    """

    tier: str
    rulebook: str = RULEBOOK_FOR_BASELINE
    rates: dict[int, float] = field(default_factory=dict)

    def fit(self, X: pd.DataFrame, y, years=None) -> RuleBaseline:
        level, _ = rule_outcomes(X, self.tier, self.rulebook)
        y = np.asarray(y, dtype=float)
        overall = float(y.mean())
        self.rates = {
            lv: float(y[level == lv].mean()) if (level == lv).any() else overall
            for lv in _LEVEL.values()
        }
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        level, share = rule_outcomes(X, self.tier, self.rulebook)
        base = np.array([self.rates[int(lv)] for lv in level])
        return np.clip(base + 1e-6 * share, 0.0, 1.0)


@dataclass
class LogisticBaseline:
    """Logistic regression: quantile-normalised numerics with missing indicators, one-hot
    categoricals. The quantile transform keeps heavy-tailed money columns from dominating.

    Given the rows' years, it also fits one indicator per year (the counterpart of the
    LightGBM model's year offsets, so the comparison is like for like) and scores new rows
    as if they came from the newest training year.
    """

    seed: int = 0
    C: float = 0.5
    pipeline: Pipeline | None = None
    newest_year: int | None = None

    def fit(self, X: pd.DataFrame, y, years=None) -> LogisticBaseline:
        categorical = categorical_columns(X)
        numeric = [c for c in X.columns if c not in categorical]
        X = _with_year(X, years)
        self.newest_year = None if years is None else int(np.max(years))
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
        self.pipeline = Pipeline([
            ("prep", prep),
            ("lr", LogisticRegression(C=self.C, max_iter=3000, random_state=self.seed)),
        ])
        # One BLAS thread: the solver's path then does not depend on how sums are split
        # across threads, so the same data and seed give the same coefficients.
        with threadpool_limits(1):
            self.pipeline.fit(_objects_for_categories(X, categorical), np.asarray(y, dtype=int))
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        categorical = categorical_columns(X)
        X = _with_year(X, None if self.newest_year is None else np.full(len(X), self.newest_year))
        with threadpool_limits(1):
            return self.pipeline.predict_proba(_objects_for_categories(X, categorical))[:, 1]


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
