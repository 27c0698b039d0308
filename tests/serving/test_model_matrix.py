"""The tiers of one feature pipeline read one model matrix of a feature frame
(`TierModel.input_key`, `models.scoring.score_frame`): made once per frame, and each tier's
SHAP values are exactly those of the tier scored alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import load_dataset
from features.pipeline import build_features
from models.lgbm import TierModel
from models.scoring import score_frame
from serving.partitions import scored_firm_ids
from serving.score import load_models, rulebooks_for
from tests.conftest import tracking_env
from tests.serving.test_score import SCORE_YEAR, trained_store


@pytest.fixture(scope="module")
def tier_models(small_universe, tmp_path_factory):
    with tracking_env(trained_store(small_universe, tmp_path_factory)):
        return {t: m.model for t, m in load_models().items()}


def test_the_tiers_read_one_model_matrix_made_once_per_frame(small_universe, tier_models,
                                                            monkeypatch):
    assert len(tier_models) == 3
    assert len({m.input_key() for m in tier_models.values()}) == 1
    dataset = load_dataset(small_universe)
    X = build_features(dataset, SCORE_YEAR, firm_ids=scored_firm_ids(dataset, SCORE_YEAR)[:500])
    made = []
    original = TierModel.model_matrix
    monkeypatch.setattr(TierModel, "model_matrix",
                        lambda self, frame: made.append(len(frame)) or original(self, frame))
    scored = score_frame(X, SCORE_YEAR, tier_models,
                         rulebooks_for(None, SCORE_YEAR, tuple(tier_models)), reasons=0)
    assert made == [len(X)]
    for tier, model in tier_models.items():
        rows = np.flatnonzero(scored.tiers[tier].candidates)
        assert 0 < len(rows) < len(X)  # each tier reads its candidates' rows of the matrix
        alone = model.contributions(X.iloc[rows])
        pd.testing.assert_frame_equal(scored.tiers[tier].contributions, alone, check_exact=True)


def test_a_model_of_other_categories_reads_its_own_matrix(small_universe, tier_models,
                                                          monkeypatch):
    """Its codes mean other categories: it must not read the other tiers' matrix."""
    model = tier_models["champion"]
    other = TierModel(**model.get_params())
    other.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    other.categories_ = {**model.categories_,
                         "size_class": model.categories_["size_class"][::-1]}
    assert other.input_key() != model.input_key()
    dataset = load_dataset(small_universe)
    X = build_features(dataset, SCORE_YEAR, firm_ids=scored_firm_ids(dataset, SCORE_YEAR)[:500])
    made = []
    original = TierModel.model_matrix
    monkeypatch.setattr(TierModel, "model_matrix",
                        lambda self, frame: made.append(self) or original(self, frame))
    models = {"little_giant": tier_models["little_giant"], "champion": other}
    scored = score_frame(X, SCORE_YEAR, models,
                         rulebooks_for(None, SCORE_YEAR, tuple(models)), reasons=0)
    assert made == [tier_models["little_giant"], other]
    rows = np.flatnonzero(scored.tiers["champion"].candidates)
    alone = other.contributions(X.iloc[rows])
    pd.testing.assert_frame_equal(scored.tiers["champion"].contributions, alone,
                                  check_exact=True)


def test_the_matrix_read_from_the_feature_frame_is_that_of_the_model_frame(small_universe,
                                                                          tier_models):
    """`model_matrix` reads a feature frame of the model's categories directly (model
    columns by position); any other frame goes through `prepare`: the same matrix, bit for
    bit, whatever the column order or categories."""
    from models.treeshap import feature_matrix

    model = tier_models["little_giant"]
    dataset = load_dataset(small_universe)
    X = build_features(dataset, SCORE_YEAR, firm_ids=scored_firm_ids(dataset, SCORE_YEAR)[:300])
    assert len(X.columns) > len(model.feature_names_in_)  # extra columns to skip
    reference = feature_matrix(model.prepare(X))
    shuffled = X[X.columns[::-1]]
    recoded = X.astype({"size_class": pd.CategoricalDtype(
        X["size_class"].cat.categories[::-1])})
    for frame in (X, shuffled, recoded, X.iloc[:1], X):
        matrix = model.model_matrix(frame)
        assert matrix.flags.f_contiguous
        np.testing.assert_array_equal(matrix, reference[:len(frame)])
    with pytest.raises(ValueError, match="lacks 1 model features"):
        model.model_matrix(X.drop(columns=[model.feature_names_in_[0]]))
