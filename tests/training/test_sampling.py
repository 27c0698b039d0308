"""Case-control sampling of training rows: deterministic, every selection kept, features only
of the sampled rows, probabilities back on the population scale, test years unsampled."""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.contract import load_dataset
from features.panel import candidate_panel
from features.pipeline import stack_panels
from models.baselines import LogisticBaseline, RuleBaseline
from models.calibration import sampling_offset
from models.lgbm import TierModel
from training import sampling
from training.sampling import CaseControl, WholeYears, firm_year_uniform
from training.tracking import registered_name
from training.train import train

TIER = "little_giant"
quick_model = functools.partial(TierModel, num_boost_round=60, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def dataset(small_universe):
    return load_dataset(small_universe)


def test_the_draw_is_fixed_by_firm_year_and_seed():
    ids = np.array([f"F{i:07d}" for i in range(20_000)], dtype=object)
    years = np.full(len(ids), 2021)
    u = firm_year_uniform(ids, years, seed=3)
    np.testing.assert_array_equal(u, firm_year_uniform(ids, years, seed=3))
    # a firm's draw does not depend on the other rows given with it
    np.testing.assert_array_equal(u[::7], firm_year_uniform(ids[::7], years[::7], seed=3))
    assert not np.array_equal(u, firm_year_uniform(ids, years, seed=4))
    assert not np.array_equal(u, firm_year_uniform(ids, years + 1, seed=3))
    assert 0.0 <= u.min() and u.max() < 1.0
    # uniform: each tenth of [0, 1) holds about a tenth of the draws
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert np.all(np.abs(counts - 2_000) < 200)


def test_sampling_keeps_every_selection_and_repeats(dataset):
    years = [2021, 2022, 2023]
    runs = []
    for _ in range(2):
        rule = CaseControl(rate=0.2, seed=5, full_years=frozenset({2023}))
        runs.append((rule, stack_panels(dataset, years, TIER, keep=rule)))
    (rule, panel), (_, again) = runs
    pd.testing.assert_frame_equal(panel.keys, again.keys)
    pd.testing.assert_frame_equal(panel.X, again.X)
    assert rule.rates_ == {2021: 0.2, 2022: 0.2, 2023: 0.2}
    for year in years:
        candidates, _ = candidate_panel(dataset, year, TIER)
        built = panel.keys["year"] == year
        selected = set(candidates.loc[candidates["label"] == 1, "firm_id"])
        assert selected <= set(panel.keys.loc[built & (panel.y == 1), "firm_id"])
        others = int((candidates["label"] == 0).sum())
        if year == 2023:  # a full year: every candidate built
            assert built.sum() == len(candidates)
        else:  # features of the unsampled rows were never built
            kept_others = int((built & (panel.y == 0)).sum())
            assert kept_others == pytest.approx(0.2 * others, rel=0.15)
    # The stacked sample: every selection, the same rows as were built in the sampled years.
    kept = rule.kept(panel.keys, panel.y)
    assert kept[panel.y.to_numpy() == 1].all()
    assert kept[panel.keys["year"].to_numpy() < 2023].all()
    full = (panel.keys["year"] == 2023).to_numpy()
    assert 0 < kept[full].sum() < full.sum()


def test_automatic_rule_samples_only_years_above_the_cap():
    rule = CaseControl(max_others=1_000, max_selected=500)
    assert rule.year_rate(800) == 1.0 and rule.year_rate(4_000) == 0.25
    assert rule.selected_year_rate(500) == 1.0 and rule.selected_year_rate(2_000) == 0.25
    assert CaseControl(rate=1.0).year_rate(10**7) == 1.0
    # a fixed rate samples only the non-selected rows
    assert CaseControl(rate=0.4).selected_year_rate(10**7) == 1.0
    assert sampling.MAX_OTHERS_PER_YEAR >= 20_000, "the default universe stays unsampled"
    assert sampling.MAX_SELECTED_PER_YEAR >= 2_000, "the default universe's selections all kept"
    # train --sample-rate's help states the cap in words
    from typer.main import get_command

    from serving.cli import app
    option = next(p for p in get_command(app).commands["train"].params
                  if p.name == "sample_rate")
    assert f"{sampling.MAX_OTHERS_PER_YEAR:,}" in option.help
    with pytest.raises(ValueError):
        CaseControl(rate=0.0)


def logistic_years(n: int, seed: int):
    """Rows of three years from one logistic truth (a selection rate of about 2%)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"score": rng.normal(size=n), "noise": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(-4.6 + 1.2 * X["score"])))).astype(int).to_numpy()
    return X, y, rng.choice([2020, 2021, 2022], n)


@pytest.mark.parametrize("selected_rate", [1.0, 0.4])
def test_a_sampled_fit_predicts_at_the_population_rate(selected_rate):
    """Trained on a tenth of the non-selected rows (and every selection, or 40% of them),
    the probabilities of an unsampled year from the same truth average to its observed
    selection rate (without the correction they would be several times higher)."""
    X, y, years = logistic_years(60_000, seed=0)
    rule = CaseControl(seed=1)
    rule.rates_ = {2020: 0.1, 2021: 0.1, 2022: 0.1}
    rule.selected_rates_ = {2020: selected_rate, 2021: selected_rate, 2022: selected_rate}
    keys = pd.DataFrame({"firm_id": [f"F{i}" for i in range(len(y))], "year": years})
    kept = rule.kept(keys, y)
    assert kept[y == 1].mean() == pytest.approx(selected_rate, abs=0.05)
    assert kept[y == 0].mean() == pytest.approx(0.1, abs=0.01)
    X_test, y_test, _ = logistic_years(60_000, seed=1)
    observed = y_test.mean()
    rate = rule.kept_rate(years, y)[kept]
    models = {"lightgbm": TierModel(seed=0, num_boost_round=200, early_stopping_rounds=30),
              "logistic": LogisticBaseline(seed=0), "rules": None}
    for name, model in models.items():
        if model is None:
            continue
        fitted = model.fit(X[kept], y[kept], years=years[kept], kept_rate=rate)
        mean = fitted.predict_proba(X_test)[:, 1].mean()
        assert mean == pytest.approx(observed, rel=0.15), name
        naive = type(model)(**model.get_params()).fit(X[kept], y[kept], years=years[kept])
        assert naive.predict_proba(X_test)[:, 1].mean() > 2 * observed, name
    tier_model = models["lightgbm"]
    assert tier_model.sampling_offset_ == pytest.approx(np.log(0.1) - np.log(selected_rate))
    assert tier_model.predict_uncalibrated(X_test).mean() == pytest.approx(observed, rel=0.25)


def test_sampling_offset_reads_both_classes_of_the_newest_year():
    y = np.array([0, 0, 1, 0, 1, 1])
    years = np.array([2020, 2020, 2020, 2021, 2021, 2021])
    rate = np.array([0.5, 0.5, 1.0, 0.2, 0.4, 0.4])
    assert sampling_offset(rate, y, years) == pytest.approx(np.log(0.2) - np.log(0.4))
    assert sampling_offset(None, y, years) == 0.0
    # a newest year without selections: only its non-selected rows' rate
    assert sampling_offset(rate[:4], y[:4], years[:4]) == pytest.approx(np.log(0.2))
    with pytest.raises(ValueError):  # two rates for one class of one year
        sampling_offset(np.array([0.5, 0.5, 1.0, 0.2, 0.4, 0.3]), y, years)


def test_rule_baseline_rates_are_population_rates(small_universe, dataset):
    panel = stack_panels(dataset, [2021, 2022], TIER)
    y = panel.y.to_numpy()
    full = RuleBaseline(TIER).fit(panel.X, y)
    rule = CaseControl(seed=2)
    rule.rates_ = {2021: 0.25, 2022: 0.25}
    rule.selected_rates_ = {2021: 0.5, 2022: 0.5}
    kept = rule.kept(panel.keys, y)
    assert 0.3 < kept[y == 1].mean() < 0.7
    sampled = RuleBaseline(TIER).fit(panel.X[kept], y[kept],
                                     kept_rate=rule.kept_rate(panel.keys["year"], y)[kept])
    for level, rate in full.rates_.items():
        assert sampled.rates_[level] == pytest.approx(rate, rel=0.3, abs=2e-3)


def test_sampled_training_scores_whole_test_years(small_universe, dataset, tracking_uri):
    result = train(small_universe, tiers=(TIER,), seed=1, model_factory=quick_model,
                   reviews=(), sample_rate=0.3, n_folds=2)
    outcome = result.tiers[TIER]
    evaluation = outcome.evaluation
    metrics = evaluation.metrics.query("test_year != 'mean'")
    for fold in evaluation.folds:
        candidates, _ = candidate_panel(dataset, fold.test_year, TIER)
        rows = evaluation.predictions[evaluation.predictions["year"] == fold.test_year]
        # every candidate of the test year scored, by every model
        assert len(rows) == len(candidates)
        assert (metrics.loc[metrics["test_year"] == str(fold.test_year), "n_test"]
                == len(candidates)).all()
        assert rows[["p_lightgbm", "p_logistic", "p_rules"]].notna().all().all()
    # ... while the models trained on the sample
    first = metrics.iloc[0]
    train_candidates = sum(len(candidate_panel(dataset, year, TIER)[0])
                           for year in evaluation.folds[0].train_years)
    assert first["n_train"] < 0.5 * train_candidates
    client = MlflowClient(tracking_uri)
    params = client.get_run(outcome.run_id).data.params
    assert params["sampling"].startswith("case-control sampling (fixed rate 0.3")
    all_candidates = sum(len(candidate_panel(dataset, year, TIER)[0])
                         for year in outcome.evaluation.folds[-1].train_years
                         + (outcome.evaluation.folds[-1].test_year,))
    assert int(params["rows"]) == outcome.rows < 0.5 * all_candidates
    card = client.get_model_version(registered_name(TIER), outcome.model_version).description
    assert f"- Training rows: {params['sampling']}" in card
    assert outcome.final_model.sampling_offset_ == pytest.approx(np.log(0.3))


def test_whole_test_years_built_apart_score_as_within_the_panel(dataset):
    """A sample holding only sampled rows, with each test year built whole when scored,
    gives the metrics and predictions of a panel built with its test years whole."""
    from training.evaluate import walk_forward
    from training.splits import walk_forward_folds

    years = [2020, 2021, 2022, 2023]
    folds = walk_forward_folds(years, n_folds=2)
    within = CaseControl(rate=0.3, seed=4, full_years=frozenset(f.test_year for f in folds))
    panel = stack_panels(dataset, years, TIER, keep=within)
    y = panel.y.to_numpy()
    kept = within.kept(panel.keys, y)
    before = walk_forward(panel.X, y, panel.keys, folds, TIER, seed=0, model_factory=quick_model,
                          train_rows=kept, kept_rate=within.kept_rate(panel.keys["year"], y))
    apart = CaseControl(rate=0.3, seed=4)
    sample = stack_panels(dataset, years, TIER, keep=apart)
    after = walk_forward(sample.X, sample.y.to_numpy(), sample.keys, folds, TIER, seed=0,
                         model_factory=quick_model,
                         kept_rate=apart.kept_rate(sample.keys["year"], sample.y),
                         test_year=functools.partial(
                             WholeYears(dataset, Counter(f.test_year for f in folds)), TIER))
    assert len(sample.keys) == int(kept.sum()) < len(panel.keys)
    pd.testing.assert_frame_equal(before.metrics, after.metrics)
    pd.testing.assert_frame_equal(before.predictions, after.predictions)


def test_whole_years_share_feature_rows_across_tiers(dataset, monkeypatch):
    """A year two tiers test is built once (then only the second tier's missing firms),
    each tier getting exactly its whole as-of panel; it is dropped once no tier needs it."""
    from features import pipeline

    built = []
    real = pipeline.build_features
    monkeypatch.setattr(pipeline, "build_features", lambda ds, year, firm_ids=None: built.append(
        len(firm_ids)) or real(ds, year, firm_ids=firm_ids))
    whole = WholeYears(dataset, Counter({2023: 2, 2022: 1}))
    for tier in ("specialized", "little_giant"):
        X, y, keys = whole(tier, 2023)
        panel = pipeline.asof_panel(dataset, 2023, tier)
        pd.testing.assert_frame_equal(X, panel.X)
        np.testing.assert_array_equal(y, panel.y.to_numpy(dtype=float))
        pd.testing.assert_frame_equal(keys, panel.keys)
        whole.done([2023])
    specialized, little_giant = (len(candidate_panel(dataset, 2023, t)[0])
                                 for t in ("specialized", "little_giant"))
    # the first tier built its year whole, the second only the firms it did not hold
    # (asof_panel's own builds are the other entries)
    assert built[0] == specialized and built[2] < little_giant
    assert whole.frames == {}
    whole("specialized", 2022)
    assert whole.frames == {}, "a year no later tier tests is not kept"
