import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models import boosting_rounds, calibration, lgbm
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
    a = TierModel(seed=3).fit(X, y, years=years).predict_proba(X)
    b = TierModel(seed=3).fit(X, y, years=years).predict_proba(X)
    np.testing.assert_array_equal(a, b)


def test_contributions_sum_to_the_margin_and_signal_is_found():
    X, y, years = toy_frame()
    model = TierModel(seed=1).fit(X, y, years=years)
    contrib = model.contributions(X.head(200))
    np.testing.assert_allclose(contrib.sum(axis=1), model.decision_function(X.head(200)), atol=1e-6)
    importance = model.feature_importance()
    assert importance["feature"].iloc[0] == "rd_intensity"


def test_fitted_attributes_follow_scikit_learn():
    X, y, years = toy_frame()
    model = TierModel(seed=1)
    assert model.get_params() == {"params": None, "seed": 1, "num_boost_round": 4000,
                                  "early_stopping_rounds": 200, "calibration_folds": 3,
                                  "min_holdout_selections":
                                      boosting_rounds.MIN_HOLDOUT_SELECTIONS}
    assert model.fit(X.assign(industry_group=1.0), y, years=years) is model
    assert list(model.feature_names_in_) == ["rd_intensity", "noise", "province"]
    assert model.n_features_in_ == 3
    assert model.categories_ == {"province": ["11", "32", "44"]}
    assert model.best_iteration_ == model.booster_.current_iteration()
    proba = model.predict_proba(X.head(100))
    assert proba.shape == (100, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X.head(100)), proba[:, 1] >= 0.5)
    with pytest.raises(TypeError):
        model.fit(X, y, years)  # years is keyword-only


def test_probability_from_margin_of_contributions_is_predict_proba():
    """What a scorer does with the SHAP values (sum them, calibrate) is what predict_proba does."""
    X, y, years = toy_frame()
    model = TierModel(seed=2).fit(X, y, years=years)
    contrib = model.contributions(X.head(300), num_threads=1)
    np.testing.assert_allclose(model.probability_from_margin(contrib.sum(axis=1).to_numpy()),
                               model.predict_proba(X.head(300))[:, 1], rtol=0, atol=1e-9)
    prepared = model.prepare(X.head(300))
    assert list(prepared.columns) == list(model.feature_names_in_)
    pd.testing.assert_frame_equal(model.contributions(prepared), contrib)


def test_calibration_is_fitted_on_out_of_fold_margins_of_the_served_configuration():
    """The calibrator sees margins of the newest year's rows from boosters that did not train
    on them (same parameters, rounds and offsets as the served booster), not the served
    booster's own in-sample margins."""
    X, y, years = toy_frame()
    model = TierModel(seed=4).fit(X, y, years=years)
    newest = years == years.max()
    seen = {}
    real_platt = lgbm.platt

    def spy(margin, labels, shift=None):
        seen["margin"], seen["y"], seen["shift"] = margin, labels, shift
        return real_platt(margin, labels, shift)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lgbm, "platt", spy)
        refit = TierModel(seed=4).fit(X, y, years=years)
    np.testing.assert_array_equal(refit.predict_proba(X), model.predict_proba(X))
    in_sample = model.decision_function(X[newest])
    assert seen["margin"].shape == in_sample.shape and np.isfinite(seen["margin"]).all()
    np.testing.assert_array_equal(seen["y"], y[newest])
    assert not np.any(seen["shift"])  # the newest year holds enough selections on its own
    assert np.abs(seen["margin"] - in_sample).mean() > 0.05
    # Each newest-year row is scored by the fold booster that left it out: refitting that
    # booster by hand on the other folds gives the same margins.
    fold = calibration.calibration_folds(y.astype(float), years, 3, seed=4)
    params = model._params(len(X))
    offset = model.row_offsets(years)
    everything = lgb.Dataset(X, y.astype(float), init_score=offset)
    lgb.train(params, everything, num_boost_round=model.best_iteration_)
    for k in range(3):
        booster = lgb.train(params, everything.subset(np.flatnonzero(fold != k)),
                            num_boost_round=model.best_iteration_)
        inside = fold[newest] == k
        np.testing.assert_allclose(seen["margin"][inside],
                                   booster.predict(X[newest][inside], raw_score=True))
    # The folds are stratified by year and label.
    for k in range(3):
        assert abs((fold[newest & (y == 1)] == k).sum() - (newest & (y == 1)).sum() / 3) <= 1


def test_no_selection_in_the_newest_year_keeps_the_margin():
    X, y, years = toy_frame()
    y = np.where(years == 2022, 0, y)
    model = TierModel(seed=0, min_holdout_selections=0).fit(X, y, years=years)
    margin = model.decision_function(X.head(50))
    np.testing.assert_allclose(model.predict_proba(X.head(50))[:, 1], 1 / (1 + np.exp(-margin)))


def test_probabilities_are_calibrated_on_new_rows():
    X, y, years = toy_frame(n=20_000)
    Xt, yt, _ = toy_frame(n=20_000, seed=5)
    p = TierModel(seed=1).fit(X, y, years=years).predict_proba(Xt)[:, 1]
    assert p.mean() == pytest.approx(yt.mean(), abs=0.02)


def test_string_categories_from_json_map_to_training_codes():
    X, y, years = toy_frame()
    model = TierModel(seed=1).fit(X, y, years=years)
    as_strings = X.head(50).assign(province=X["province"].head(50).astype(str))
    np.testing.assert_allclose(model.predict_proba(as_strings), model.predict_proba(X.head(50)))
    unseen = align_categories(pd.DataFrame({"province": ["99", None]}), model.categories_)
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
    model = TierModel(seed=0).fit(X, y, years=years)
    for year, rate in ((2021, 0.01), (2022, 0.20)):
        assert model.year_offsets_[year] == pytest.approx(np.log(rate / (1 - rate)), abs=0.01)


def test_trees_learn_the_ranking_within_a_year_not_the_quota():
    """The year's quota is carried by the offset, so a column that only says which year a
    row comes from explains (almost) nothing; merit carries the ranking."""
    X, y, years = quota_years()
    importance = TierModel(seed=0).fit(X, y, years=years).feature_importance().set_index("feature")
    assert importance.loc["year_marker", "gain"] < 0.02 * importance.loc["merit", "gain"]


def test_uncalibrated_probability_is_at_the_newest_years_rate():
    X, y, years = quota_years()
    model = TierModel(seed=0).fit(X, y, years=years)
    assert model.predict_uncalibrated(X[years == 2022]).mean() == pytest.approx(0.20, abs=0.03)


def test_holdouts_reach_back_until_they_hold_enough_selections():
    """The newest year alone when it holds enough selections; otherwise older years too,
    each probe trained only on the years before its holdout, the oldest never held out."""
    years = np.repeat(np.arange(2016, 2023), 100)
    y = np.zeros(len(years))
    for year, selected in zip(range(2016, 2023), (5, 6, 7, 8, 9, 10, 12)):
        y[np.flatnonzero(years == year)[:selected]] = 1
    held = [(int(years[h].min()), int(years[t].max()))
            for t, h in boosting_rounds._holdouts(years, y, 12, 0)]
    assert held == [(2022, 2021)]
    pairs = boosting_rounds._holdouts(years, y, 30, 0)
    assert [int(years[h].min()) for _, h in pairs] == [2022, 2021, 2020]  # 12 + 10 + 9 >= 30
    for train, holdout in pairs:
        assert years[train].max() < years[holdout].min() and np.unique(years[holdout]).size == 1
        assert years[train].min() == 2016
    assert len(boosting_rounds._holdouts(years, y, 10_000, 0)) == \
        boosting_rounds.MAX_HOLDOUT_YEARS
    two = years < 2018
    # 2016 stays for training
    assert len(boosting_rounds._holdouts(years[two], y[two], 10_000, 0)) == 1
    (train, holdout), = boosting_rounds._holdouts(np.full(1000, 2020), np.ones(1000), 30, seed=0)
    assert (train == ~holdout).all() and 0.1 < holdout.mean() < 0.3


def test_pooled_curve_holds_a_stopped_probe_at_its_last_value():
    curve = boosting_rounds._pooled_curve(
        [np.array([0.1, 0.3, 0.2]), np.array([0.2, 0.4, 0.5, 0.6, 0.7])], weights=[1.0, 3.0])
    np.testing.assert_allclose(curve, [0.175, 0.375, 0.425, 0.5, 0.575])


def test_platt_with_year_shifts_recovers_the_newest_years_line():
    """Rows of older years enter the calibration at their own rate: with the log-odds shift
    of their year, the fit finds the line of the newest year's rate."""
    rng = np.random.default_rng(0)
    margin = rng.normal(size=40_000)
    shift = np.where(np.arange(40_000) < 20_000, -1.0, 0.0)  # an older year at a lower rate
    y = (rng.random(40_000) < 1 / (1 + np.exp(-(1.5 * margin - 3 + shift)))).astype(float)
    calibrator = calibration.platt(margin, y, shift)
    assert calibrator.coef_[0, 0] == pytest.approx(1.5, abs=0.1)
    assert calibrator.intercept_[0] == pytest.approx(-3.0, abs=0.1)
    unshifted = calibration.platt(margin, y)
    assert unshifted.intercept_[0] < -3.2  # ignoring the years would mix their rates
    np.testing.assert_allclose(calibration.platt(margin, y, np.zeros(40_000)).coef_, unshifted.coef_)



@pytest.mark.parametrize("fitted", ["shifted", "plain", "fixed"])
def test_the_platt_probability_is_predict_probas_bit_for_bit(fitted):
    rng = np.random.default_rng(1)
    margin = rng.normal(size=5_000) * 4
    y = (rng.random(5_000) < 1 / (1 + np.exp(-(margin - 2)))).astype(float)
    calibrator = {"shifted": lambda: calibration.platt(margin, y, rng.normal(size=5_000)),
                  "plain": lambda: calibration.platt(margin, y),
                  "fixed": lambda: calibration.platt(margin, np.zeros(5_000))}[fitted]()
    tricky = np.concatenate([margin, [0.0, -0.0, 1e-300, -40.0, 40.0, 710.0, -745.0]])
    for rows in (tricky, tricky[:1]):
        np.testing.assert_array_equal(calibration.platt_probability(calibrator, rows),
                                      calibrator.predict_proba(rows.reshape(-1, 1))[:, 1])


def test_few_selections_in_the_newest_year_shrink_the_leaves_harder():
    rng = np.random.default_rng(0)
    years = np.repeat(np.arange(2016, 2023), 600)
    X = pd.DataFrame({"merit": rng.normal(size=len(years)), "noise": rng.normal(size=len(years))})
    chosen = X["merit"].to_numpy() + 0.5 * rng.normal(size=len(years))
    y = np.zeros(len(years))
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        y[rows[np.argsort(-chosen[rows])[:8]]] = 1  # eight selections a year
    rare = TierModel(seed=0, num_boost_round=300, early_stopping_rounds=30).fit(X, y, years=years)
    assert rare.few_selections_ and rare.booster_.params["lambda_l2"] == 10.0
    assert rare._params()["lambda_l2"] == lgbm.FEW_SELECTIONS_PARAMS["lambda_l2"]
    plenty = TierModel(seed=0, num_boost_round=300, early_stopping_rounds=30,
                       min_holdout_selections=8).fit(X, y, years=years)
    assert not plenty.few_selections_
    assert plenty.booster_.params["lambda_l2"] == lgbm.DEFAULT_PARAMS["lambda_l2"]
    # An explicit parameter still wins.
    own = TierModel(seed=0, num_boost_round=50, early_stopping_rounds=10,
                    params={"lambda_l2": 3.0}).fit(X, y, years=years)
    assert own.few_selections_ and own.booster_.params["lambda_l2"] == 3.0


def test_large_fits_learn_faster_and_calibrate_on_two_folds(monkeypatch):
    """Above LARGE_FIT_ROWS rows a fit uses LARGE_FIT_PARAMS and two out-of-fold boosters;
    at or under it, the configured ones (so the default universe's models do not move)."""
    X, y, years = toy_frame(n=3000)
    small = TierModel(seed=1, num_boost_round=80, early_stopping_rounds=10).fit(
        X, y, years=years)
    assert small.calibration_folds_ == 3
    assert small._params(len(X))["learning_rate"] == lgbm.DEFAULT_PARAMS["learning_rate"]
    monkeypatch.setattr(lgbm, "LARGE_FIT_ROWS", len(X) - 1)
    trained = []
    real_train = lgbm.lgb.train
    monkeypatch.setattr(lgbm.lgb, "train", lambda params, *a, **k: trained.append(params)
                        or real_train(params, *a, **k))
    large = TierModel(seed=1, num_boost_round=80, early_stopping_rounds=10).fit(
        X, y, years=years)
    assert large.calibration_folds_ == lgbm.LARGE_FIT_CALIBRATION_FOLDS == 2
    # probe(s), the served booster and two calibration boosters, all at the faster rate
    assert len(trained) == len(boosting_rounds._holdouts(
        years, y.astype(float), boosting_rounds.MIN_HOLDOUT_SELECTIONS, 1)) + 1 + 2
    assert all(p["learning_rate"] == lgbm.LARGE_FIT_PARAMS["learning_rate"] > 0.05
               for p in trained)
    # a model's own parameters still win
    assert TierModel(params={"learning_rate": 0.02})._params(len(X))["learning_rate"] == 0.02
    np.testing.assert_array_equal(large.predict_proba(X)[:, 1] > 0, True)
