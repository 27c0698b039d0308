"""SHAP explanations: pillars of every feature, additive aggregation, shap objects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.explain import (
    NON_MERIT_PILLARS,
    PILLARS,
    explanation,
    feature_pillar,
    feature_pillars,
    fold_rule_columns,
    global_importance,
    non_merit_features,
    pillar_contributions,
    pillar_importance,
    positive_share,
    prerequisite_features,
)
from models.lgbm import TierModel


@pytest.mark.parametrize("feature, pillar", [
    ("main_share", "specialization"), ("revenue_growth_2y_avg", "specialization"),
    ("years_in_niche", "specialization"), ("main_revenue_growth_2y_avg", "specialization"),
    ("net_margin", "refinement"), ("debt_ratio", "refinement"), ("quality_cert", "refinement"),
    ("own_brand", "refinement"),
    ("domestic_share", "distinctiveness"), ("domestic_rank", "distinctiveness"),
    ("global_rank", "distinctiveness"),
    ("rd_intensity", "innovation"), ("rd_expense_2y_avg", "innovation"),
    ("valid_invention_patents", "innovation"), ("class1_ip", "innovation"),
    ("rd_institution_level", "innovation"),
    ("revenue", "size"), ("employees", "size"), ("is_sme", "size"),
    ("sector_mic2025", "sector"), ("industry_division", "sector"),
    ("province", "region"), ("macro_region", "region"),
    ("state_share", "ownership"), ("parent_large_group", "ownership"), ("listed", "ownership"),
    ("subsidies_to_revenue", "ownership"),
    ("holds_specialized", "history"), ("firm_age", "history"),
    # rule results follow their criterion's pillar
    ("rule_lg22_main_share", "specialization"), ("rule_lg22_debt_ratio", "refinement"),
    ("rule_lg22_domestic_share", "distinctiveness"), ("rule_lg22_class1_ip__on_data", "innovation"),
    ("rule_sp22_sme_size", "size"), ("rule_lg22_priority_sector", "sector"),
    ("rule_lg22_specialized_title", "history"), ("rule_lg22_eligible_on_data", "rules"),
    ("rule_sp22_score", "rules"),
])
def test_feature_pillars(feature, pillar):
    assert feature_pillar(feature) == pillar


def test_pillars_come_from_the_catalogue_only():
    from features.labels import feature_catalogue
    from models import explain

    for gone in ("PILLAR_OVERRIDES", "_CRITERION_MARK", "_GROUP_PILLAR", "_RULEBOOK_PILLAR"):
        assert not hasattr(explain, gone), gone
    cat = feature_catalogue()
    assert list(feature_pillars(cat["name"])) == list(cat["pillar"])
    assert feature_pillar("rule_xx99_unknown") == "rules"


def test_every_pipeline_feature_has_a_known_pillar():
    from features.pipeline import feature_names

    pillars = feature_pillars(feature_names())
    assert set(pillars) <= set(PILLARS)
    assert set(non_merit_features(feature_names())) == set(
        pillars.index[pillars.isin(NON_MERIT_PILLARS)])
    assert "state_share" in non_merit_features(feature_names())
    assert "rd_intensity" not in non_merit_features(feature_names())


def _contributions() -> pd.DataFrame:
    return pd.DataFrame({
        "main_share": [0.5, -0.2, 0.0], "years_in_niche": [0.25, 0.1, 0.0],
        "rd_intensity": [1.0, -1.0, 0.0], "province": [0.25, 0.3, -0.4],
        "state_share": [1.0, 0.0, 0.0], "bias": [-3.0, -3.0, -3.0],
    }, index=["a", "b", "c"])


def test_pillar_sums_are_additive_and_importance_shares_sum_to_one():
    contributions = _contributions()
    pillars = pillar_contributions(contributions)
    np.testing.assert_allclose(pillars.sum(axis=1) + contributions["bias"],
                               contributions.sum(axis=1))
    assert pillars.loc["a", "specialization"] == pytest.approx(0.75)
    assert list(pillars.columns) == ["specialization", "innovation", "region", "ownership"]
    importance = pillar_importance(contributions)
    assert importance["share"].sum() == pytest.approx(1.0)
    assert importance.iloc[0]["pillar"] == "innovation"  # mean |1, -1, 0| = 2/3
    features = global_importance(contributions)
    assert features.iloc[0]["feature"] == "rd_intensity"
    assert features["share"].sum() == pytest.approx(1.0)


def test_positive_share_of_non_merit_features():
    contributions = _contributions()
    share = positive_share(contributions, ["province", "state_share"])
    assert share["a"] == pytest.approx(1.25 / 3.0)
    assert share["b"] == pytest.approx(0.3 / 0.4)
    assert share["c"] == 0.0  # no positive push at all
    excluded = positive_share(contributions, ["province", "state_share"], exclude=["rd_intensity"])
    assert excluded["a"] == pytest.approx(1.25 / 2.0)


def test_rule_columns_fold_onto_their_feature_and_prerequisites_are_named():
    contributions = pd.DataFrame({"main_share": [0.1], "rule_lg22_main_share": [0.4],
                                  "rule_lg22_rd_by_revenue_band": [0.3], "bias": [-2.0]})
    folded = fold_rule_columns(contributions)
    assert list(folded.columns) == ["main_share", "rule_lg22_rd_by_revenue_band", "bias"]
    assert folded.loc[0, "main_share"] == pytest.approx(0.5)
    assert folded.sum(axis=1)[0] == pytest.approx(contributions.sum(axis=1)[0])
    assert set(prerequisite_features(["holds_specialized", "rule_lg22_specialized_title",
                                      "main_share", "rule_lg22_main_share"])) == {
        "holds_specialized", "rule_lg22_specialized_title"}


def test_explanation_from_a_trained_model_is_additive():
    rng = np.random.default_rng(0)
    n = 1_500
    X = pd.DataFrame({
        "rd_intensity": rng.uniform(0, 0.15, n), "main_share": rng.uniform(0.4, 1, n),
        "province": pd.Categorical(rng.choice(["11", "32", "44"], n)),
    })
    y = (X["rd_intensity"] + rng.normal(0, 0.02, n) > 0.09).astype(int)
    model = TierModel(params={"num_threads": 1}, seed=0, num_boost_round=60,
                      early_stopping_rounds=10).fit(X, y, years=np.repeat([2021, 2022], n // 2))
    contributions = model.contributions(X.head(20))
    np.testing.assert_allclose(contributions.sum(axis=1), model.decision_function(X.head(20)),
                               atol=1e-6)
    exp = explanation(contributions, X.head(20))
    assert exp.values.shape == (20, 3)
    np.testing.assert_allclose(exp.base_values, contributions["bias"])
    # Plots read the catalogue's labels, not identifiers.
    from features.labels import feature_label

    assert exp.feature_names == [feature_label(f) for f in ("rd_intensity", "main_share",
                                                             "province")]
    assert exp.feature_names[0] == "R&D intensity"
    assert exp.display_data[0, 2] in ("Beijing", "Jiangsu", "Guangdong")  # names, not codes
    assert exp.display_data[0, 0].endswith("%")  # a fraction reads as a percentage
    gap = X.head(20).copy()
    gap.loc[gap.index[0], "rd_intensity"] = np.nan
    assert explanation(contributions, gap).display_data[0, 0] == "not reported"
    top = global_importance(contributions)
    assert top.iloc[0]["feature"] == "rd_intensity"
