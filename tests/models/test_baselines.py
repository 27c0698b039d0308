import numpy as np
import pandas as pd
import pytest

from models.baselines import LogisticBaseline


def two_quota_years(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"merit": rng.normal(size=2 * n)})
    years = np.repeat([2021, 2022], n)
    cutoff = np.where(years == 2021, 2.3, 0.8)   # ~1% and ~21% selected
    y = (X["merit"] + 0.3 * rng.normal(size=2 * n) > cutoff).astype(int)
    return X, y.to_numpy(), years


def test_logistic_scores_new_rows_at_the_newest_years_rate():
    X, y, years = two_quota_years()
    model = LogisticBaseline().fit(X, y, years)
    fresh, fresh_y, fresh_years = two_quota_years(seed=1)
    newest_rate = fresh_y[fresh_years == 2022].mean()
    p = model.predict_proba(fresh)
    assert p.mean() == pytest.approx(newest_rate, abs=0.03)
    # Without years the same data is one pooled rate: the year effect is what moves it.
    pooled = LogisticBaseline().fit(X, y).predict_proba(fresh)
    assert pooled.mean() == pytest.approx(y.mean(), abs=0.03)
    assert abs(pooled.mean() - newest_rate) > 0.05


def test_logistic_ranking_ignores_the_year_column_it_adds():
    X, y, years = two_quota_years()
    model = LogisticBaseline().fit(X, y, years)
    p = model.predict_proba(X.head(500))
    order = np.argsort(X["merit"].head(500).to_numpy())
    assert np.all(np.diff(p[order]) >= -1e-12)
