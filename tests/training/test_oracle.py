"""The oracle: every candidate's true selection probability beside the model's walk-forward."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.contract import load_dataset
from features.pipeline import stack_panels
from models.lgbm import TierModel
from training.oracle import POOLED, TRUTH_CANDIDATES, oracle_comparison, oracle_probabilities

TIER = "little_giant"
quick_model = functools.partial(TierModel, num_boost_round=60, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def truth(small_universe) -> pd.DataFrame:
    return pd.read_parquet(small_universe / TRUTH_CANDIDATES)


def test_oracle_probabilities_of_a_panel_come_from_the_candidates_file(small_universe, truth):
    dataset = load_dataset(small_universe)
    panel = stack_panels(dataset, [2023, 2024], TIER)
    keys, y = panel.keys.reset_index(drop=True), panel.y.to_numpy()
    p = oracle_probabilities(truth, keys, TIER)
    assert p.shape == (len(keys),) and np.all((p >= 0) & (p <= 1))
    # Every selection was eligible, with the probability truth.parquet records for it.
    grants = pd.read_parquet(small_universe / "truth.parquet").query(
        "tier == @TIER and event == 'granted' and year in (2023, 2024)")
    selected = keys[y == 1].assign(p=p[y == 1])
    both = selected.merge(grants, on=["firm_id", "year"], validate="1:1")
    assert len(both) == len(selected) == len(grants)
    np.testing.assert_array_equal(both["p"], both["true_p_selected"])
    # Candidates the generator did not consider (no Specialized title, up for re-review)
    # had no chance; the others keep their own probability.
    listed = keys.merge(truth.query("tier == @TIER"), on=["firm_id", "year"], how="left")
    np.testing.assert_array_equal(p, listed["true_p_selected"].fillna(0.0).to_numpy())
    assert (p == 0).any() and (p > 0).sum() > y.sum()
    assert roc_auc_score(y, p) > 0.95  # the truth ranks the panel's own labels


def test_oracle_comparison_puts_the_model_and_the_oracle_on_the_same_rows(small_universe):
    table = oracle_comparison(small_universe, tiers=(TIER,), n_folds=2, model_factory=quick_model)
    assert list(table["test_year"]) == ["2024", "2025", "mean", POOLED]
    folds = table.iloc[:2]
    cert = load_dataset(small_universe).certifications
    granted = cert.query("tier == @TIER and event == 'granted'").groupby("year").size()
    assert list(folds["n_selected"]) == [granted[2024], granted[2025]]
    assert folds["rounds"].between(1, 60).all()
    mean = table.iloc[2]
    assert mean["roc_auc"] == pytest.approx(folds["roc_auc"].mean())
    assert mean["oracle_pr_auc"] == pytest.approx(folds["oracle_pr_auc"].mean())
    for metric in ("roc_auc", "pr_auc"):
        np.testing.assert_allclose(table[f"{metric}_ratio"],
                                   table[metric] / table[f"oracle_{metric}"])
    pooled = table.iloc[3]
    assert pooled["n_test"] == folds["n_test"].sum()
    assert pooled["n_selected"] == folds["n_selected"].sum()
    assert (table["oracle_roc_auc"] > 0.95).all()
