"""The precomputed TreeSHAP gives LightGBM's own pred_contrib, split by split kind."""

import pickle

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.lgbm import TierModel
from models.treeshap import ShapTables, feature_matrix
from models.treeshap_kernels import CATEGORICAL, MISSING_NAN, MISSING_ZERO

TOLERANCE = 1e-6


def _matrix(n: int, seed: int) -> np.ndarray:
    """Numbers with NaNs and exact zeros, and a categorical code column (index 3) of 70
    levels (bitsets of three words) with missing codes."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([
        rng.normal(size=n),
        rng.gamma(2.0, 1.0, n),
        rng.integers(0, 4, n).astype(float),
        rng.integers(0, 70, n).astype(float),
        rng.normal(size=n),
    ])
    X[rng.random(n) < 0.15, 0] = np.nan
    X[rng.random(n) < 0.2, 1] = 0.0
    X[rng.random(n) < 0.1, 3] = np.nan
    X[rng.random(n) < 0.1, 4] = np.nan
    return X


def _labels(X: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    margin = (np.nan_to_num(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] - 2
              + 1.5 * (np.nan_to_num(X[:, 3], nan=1) % 3 == 0) + np.nan_to_num(X[:, 4]))
    return (rng.random(len(X)) < 1 / (1 + np.exp(-margin))).astype(int)


def _booster(params: dict, categorical: bool, rounds: int = 60, seed: int = 0) -> lgb.Booster:
    X = _matrix(4000, seed)
    data = lgb.Dataset(X, _labels(X, seed), categorical_feature=[3] if categorical else "auto")
    base = {"objective": "binary", "verbose": -1, "num_leaves": 8, "min_data_in_leaf": 10,
            "min_data_per_group": 5, "cat_smooth": 1.0, "max_cat_to_onehot": 4,
            "num_threads": 1, "seed": seed}
    return lgb.train({**base, **params}, data, num_boost_round=rounds)


def _decisions(tables: ShapTables) -> set[str]:
    kinds = set()
    for kind in tables.decision:
        if kind & CATEGORICAL:
            kinds.add("categorical")
        else:
            kinds.add({MISSING_NAN: "nan", MISSING_ZERO: "zero"}.get((kind >> 2) & 3, "none"))
    return kinds


@pytest.mark.parametrize(("params", "categorical", "kinds"), [
    ({}, True, {"categorical", "nan"}),
    ({}, False, {"nan"}),
    ({"zero_as_missing": True}, True, {"categorical", "zero"}),
    ({"use_missing": False}, True, {"categorical", "none"}),
    ({"extra_trees": True, "num_leaves": 11, "max_depth": 7}, True, {"categorical", "nan"}),
])
def test_contributions_equal_pred_contrib(params, categorical, kinds):
    booster = _booster(params, categorical)
    tables = ShapTables.from_booster(booster)
    assert tables is not None
    assert booster.num_trees() > 1
    assert kinds <= _decisions(tables)
    X = _matrix(1500, seed=5)
    # Codes the training never saw (70 and beyond the bitsets) and negative codes go right.
    X[:40, 3] = 70 + np.arange(40) * 7
    X[40:60, 3] = -3
    X[60:80, 0] = np.inf
    expected = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(tables.contributions(X, threads=1), expected, rtol=0,
                               atol=TOLERANCE)
    # Two threads split the rows; each row is the same.
    np.testing.assert_allclose(tables.contributions(np.tile(X, (3, 1)), threads=2),
                               np.tile(expected, (3, 1)), rtol=0, atol=TOLERANCE)


def test_constant_trees_and_large_trees():
    """A model whose trees cannot split is its bias alone; one with trees beyond the table
    limit gets no tables (TierModel then serves pred_contrib)."""
    X = _matrix(500, 1)
    flat = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 1000},
                     lgb.Dataset(X, _labels(X, 1)), num_boost_round=5)
    tables = ShapTables.from_booster(flat)
    np.testing.assert_allclose(tables.contributions(X), flat.predict(X, pred_contrib=True),
                               rtol=0, atol=TOLERANCE)
    assert ShapTables.from_booster(_booster({"num_leaves": 31}, True)) is None


def _frame(n: int, seed: int, provinces: list[str]) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "rd_intensity": rng.gamma(2.0, 0.03, n),
        "revenue": rng.lognormal(3, 1, n),
        "province": pd.Categorical(rng.choice(provinces, n)),
        "size_class": pd.Categorical(rng.choice(["micro", "small", "medium"], n)),
    })
    X.loc[::7, "revenue"] = np.nan
    X.loc[::11, "province"] = np.nan
    return X


@pytest.mark.parametrize("with_categories", [True, False])
def test_tier_model_contributions_are_pred_contrib(with_categories):
    """Through TierModel: unseen and missing categories, NaNs, with and without
    categorical features; the pickled model rebuilds its tables and gives the same values."""
    provinces = [f"{p}" for p in range(11, 66)]
    X = _frame(6000, 0, provinces)
    if not with_categories:
        X = X.assign(province=X["province"].cat.codes.astype(float),
                     size_class=X["size_class"].cat.codes.astype(float))
    margin = -4 + 40 * X["rd_intensity"] + (X["size_class"].astype(str) == "small")
    y = (np.random.default_rng(1).random(len(X)) < 1 / (1 + np.exp(-margin))).astype(int)
    years = np.random.default_rng(2).choice([2021, 2022, 2023], len(X))
    model = TierModel(seed=0, params={"min_data_per_group": 5, "cat_smooth": 1.0},
                      num_boost_round=120, early_stopping_rounds=30,
                      calibration_folds=2).fit(X, y, years=years)
    assert model.shap_tables() is not None
    has_categorical = bool((model.shap_tables().decision & CATEGORICAL).any())
    assert has_categorical == with_categories

    new = _frame(800, 9, provinces + ["99", "unknown"])  # two provinces never trained on
    if not with_categories:
        new = new.assign(province=new["province"].cat.codes.astype(float),
                         size_class=new["size_class"].cat.codes.astype(float))
    ours = model.contributions(new)
    reference = model.booster_.predict(model.prepare(new), pred_contrib=True)
    assert list(ours.columns) == [*model.feature_names_in_, "bias"]
    np.testing.assert_allclose(ours.to_numpy(), reference, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(ours.sum(axis=1), model.decision_function(new), atol=TOLERANCE)

    copy = pickle.loads(pickle.dumps(model))
    assert "_shap_tables" not in copy.__dict__
    np.testing.assert_array_equal(copy.contributions(new).to_numpy(), ours.to_numpy())


def test_feature_matrix_reads_a_frame_as_lightgbm_does():
    frame = pd.DataFrame({"x": pd.array([1, None, 3], dtype="Int64"),
                          "c": pd.Categorical(["b", None, "a"], categories=["a", "b"]),
                          "f": np.array([0.5, np.nan, 2.0], dtype=np.float32)})
    np.testing.assert_array_equal(feature_matrix(frame),
                                  [[1, 1, 0.5], [np.nan, np.nan, np.nan], [3, 0, 2.0]])
