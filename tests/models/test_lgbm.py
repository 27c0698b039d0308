import numpy as np
import pandas as pd
import pytest

from models.lgbm import TierModel, align_categories


def toy_frame(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "rd_intensity": rng.gamma(2.0, 0.03, n),
        "noise": rng.normal(size=n),
        "province": pd.Categorical(rng.choice(["11", "32", "44"], n), categories=["11", "32", "44"]),
    })
    X.loc[::9, "noise"] = np.nan
    margin = -4 + 40 * X["rd_intensity"] + 1.0 * (X["province"] == "44")
    y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(int)
    years = rng.choice([2020, 2021, 2022], n)
    return X, y, years


def test_same_data_and_seed_give_identical_predictions():
    X, y, years = toy_frame()
    a = TierModel(seed=3).fit(X, y, years).predict_proba(X)
    b = TierModel(seed=3).fit(X, y, years).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_contributions_sum_to_the_margin_and_signal_is_found():
    X, y, years = toy_frame()
    model = TierModel(seed=1).fit(X, y, years)
    contrib = model.contributions(X.head(200))
    np.testing.assert_allclose(contrib.sum(axis=1), model.predict_margin(X.head(200)), atol=1e-6)
    importance = model.feature_importance()
    assert importance["feature"].iloc[0] == "rd_intensity"


def test_probabilities_are_calibrated_on_new_rows():
    X, y, years = toy_frame(n=20_000)
    Xt, yt, _ = toy_frame(n=20_000, seed=5)
    p = TierModel(seed=1).fit(X, y, years).predict_proba(Xt)
    assert p.mean() == pytest.approx(yt.mean(), abs=0.02)


def test_string_categories_from_json_map_to_training_codes():
    X, y, years = toy_frame()
    model = TierModel(seed=1).fit(X, y, years)
    as_strings = X.head(50).assign(province=X["province"].head(50).astype(str))
    np.testing.assert_allclose(model.predict_proba(as_strings), model.predict_proba(X.head(50)))
    unseen = align_categories(pd.DataFrame({"province": ["99", None]}), model.categories)
    assert unseen["province"].isna().all()


def quota_years(n_per_year=8000, seed=0):
    """Two years ranked by the same merit but with quotas 1% and 20%; a third column marks
    the year (a feature the booster could use to learn the quota)."""
    rng = np.random.default_rng(seed)
    frames, labels, years = [], [], []
    for year, quota in ((2021, 0.01), (2022, 0.20)):
        merit = rng.normal(size=n_per_year)
        chosen = merit + 0.5 * rng.normal(size=n_per_year)
        labels.append((chosen >= np.quantile(chosen, 1 - quota)).astype(int))
        frames.append(pd.DataFrame({"merit": merit, "year_marker": float(year - 2021)}))
        years.append(np.full(n_per_year, year))
    return pd.concat(frames, ignore_index=True), np.concatenate(labels), np.concatenate(years)


def test_year_offsets_are_the_log_odds_of_each_years_selection_rate():
    X, y, years = quota_years()
    model = TierModel(seed=0).fit(X, y, years)
    for year, rate in ((2021, 0.01), (2022, 0.20)):
        assert model.year_offsets[year] == pytest.approx(np.log(rate / (1 - rate)), abs=0.01)


def test_trees_learn_the_ranking_within_a_year_not_the_quota():
    """The year's quota is carried by the offset, so a column that only says which year a
    row comes from explains (almost) nothing; merit carries the ranking."""
    X, y, years = quota_years()
    importance = TierModel(seed=0).fit(X, y, years).feature_importance().set_index("feature")
    assert importance.loc["year_marker", "gain"] < 0.02 * importance.loc["merit", "gain"]


def test_uncalibrated_probability_is_at_the_newest_years_rate():
    X, y, years = quota_years()
    model = TierModel(seed=0).fit(X, y, years)
    assert model.predict_uncalibrated(X[years == 2022]).mean() == pytest.approx(0.20, abs=0.03)
