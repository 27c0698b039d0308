import numpy as np
import pandas as pd
import pytest

from models.baselines import (
    LogisticBaseline,
    RuleBaseline,
    _objects_for_categories,
    _with_year,
    rule_outcomes,
)


def two_quota_years(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"merit": rng.normal(size=2 * n)})
    years = np.repeat([2021, 2022], n)
    cutoff = np.where(years == 2021, 2.3, 0.8)   # ~1% and ~21% selected
    y = (X["merit"] + 0.3 * rng.normal(size=2 * n) > cutoff).astype(int)
    return X, y.to_numpy(), years


def test_logistic_scores_new_rows_at_the_newest_years_rate():
    X, y, years = two_quota_years()
    model = LogisticBaseline().fit(X, y, years=years)
    fresh, fresh_y, fresh_years = two_quota_years(seed=1)
    newest_rate = fresh_y[fresh_years == 2022].mean()
    p = model.predict_proba(fresh)[:, 1]
    assert p.mean() == pytest.approx(newest_rate, abs=0.03)
    # Without years the same data is one pooled rate: the year effect is what moves it.
    pooled = LogisticBaseline().fit(X, y).predict_proba(fresh)[:, 1]
    assert pooled.mean() == pytest.approx(y.mean(), abs=0.03)
    assert abs(pooled.mean() - newest_rate) > 0.05


def test_logistic_ranking_ignores_the_year_column_it_adds():
    X, y, years = two_quota_years()
    model = LogisticBaseline().fit(X, y, years=years)
    p = model.predict_proba(X.head(500))[:, 1]
    order = np.argsort(X["merit"].head(500).to_numpy())
    assert np.all(np.diff(p[order]) >= -1e-12)


def test_a_sampled_logistic_fit_reaches_the_same_optimum_by_newton_steps():
    """A case-control fit uses Newton-Cholesky, an unsampled one L-BFGS; both minimise the
    same penalised loss, Newton's steps to at least L-BFGS's precision, so on the same rows
    they agree, apart from the sampling offset the sampled fit adds to the intercept."""
    X, y, years = two_quota_years()
    X = X.assign(kind=pd.Categorical(np.where(X["merit"] > 0.5, "a", "b")))
    plain = LogisticBaseline().fit(X, y, years=years)
    newton = LogisticBaseline().fit(X, y, years=years, kept_rate=np.ones(len(y)))
    assert plain.pipeline_[-1].solver == "lbfgs"
    assert newton.pipeline_[-1].solver == "newton-cholesky"

    def penalised_loss(model):
        frame = _objects_for_categories(_with_year(X, years), ["kind"])
        z = model.pipeline_.decision_function(frame)
        lr = model.pipeline_[-1]
        return np.sum(np.logaddexp(0, z) - y * z) + (lr.coef_ ** 2).sum() / (2 * lr.C)

    assert penalised_loss(newton) <= penalised_loss(plain) + 1e-6
    assert penalised_loss(newton) == pytest.approx(penalised_loss(plain), rel=1e-4)
    np.testing.assert_allclose(newton.predict_proba(X)[:, 1], plain.predict_proba(X)[:, 1],
                               atol=5e-3)
    half = LogisticBaseline().fit(X, y, years=years, kept_rate=np.where(y == 1, 1.0, 0.5))
    assert half.pipeline_[-1].intercept_[0] == pytest.approx(
        newton.pipeline_[-1].intercept_[0] + np.log(0.5), abs=1e-9)


def test_logistic_scores_in_chunks_as_at_once(monkeypatch):
    X, y, years = two_quota_years()
    X = X.assign(kind=pd.Categorical(np.where(X["merit"] > 0, "a", "b")))
    model = LogisticBaseline().fit(X, y, years=years)
    whole = model.predict_proba(X)
    from models import baselines

    monkeypatch.setattr(baselines, "PREDICT_CHUNK_ROWS", 997)
    chunked = model.predict_proba(X)
    assert chunked.shape == (len(X), 2)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def feature_panel(small_universe):
    from features.contract import load_dataset
    from features.pipeline import stack_panels

    return stack_panels(load_dataset(small_universe), [2021, 2022], "little_giant")


def _rulebook_on_data(X, tier):
    """The rulebook baseline computed the long way: the lens rulebook evaluated on X again."""
    from features.rule_features import lens_rulebook
    from features.rules import evaluate

    result = evaluate(X, lens_rulebook(tier))
    level = result.eligible_on_data.astype(str).map(
        {"fail": 0, "unknown": 1, "pass": 2}).to_numpy(dtype=float)
    criteria = result.criteria_on_data.astype(str)
    passed = (criteria == "pass").sum(axis=1).to_numpy(dtype=float)
    known = (criteria != "unknown").sum(axis=1).to_numpy(dtype=float)
    share = np.divide(passed, known, out=np.zeros_like(passed), where=known > 0)
    return level, share


@pytest.mark.parametrize("tier", ["specialized", "little_giant", "champion"])
def test_rule_baseline_reads_the_rule_columns_like_evaluating_the_rulebook(feature_panel, tier):
    X, y = feature_panel.X, np.asarray(feature_panel.y, dtype=float)
    years = feature_panel.keys["year"].to_numpy()
    level, share = rule_outcomes(X, tier)
    expected_level, expected_share = _rulebook_on_data(X, tier)
    np.testing.assert_array_equal(level, expected_level)
    np.testing.assert_array_equal(share, expected_share)
    assert len(np.unique(level)) > 1, "the frame exercises more than one outcome"

    train = years == 2021
    model = RuleBaseline(tier=tier).fit(X[train], y[train], years=years[train])
    rates = {lv: y[train][expected_level[train] == lv].mean()
             if (expected_level[train] == lv).any() else y[train].mean() for lv in (0, 1, 2)}
    expected = np.clip(np.array([rates[int(lv)] for lv in expected_level[~train]])
                       + 1e-6 * expected_share[~train], 0.0, 1.0)
    proba = model.predict_proba(X[~train])
    assert proba.shape == (int((~train).sum()), 2)
    np.testing.assert_array_equal(proba[:, 1], expected)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
