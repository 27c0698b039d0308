"""Reason codes: hand-made firms whose leading reason is known, and one trained model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.rules import assess, load_rulebook
from models.lgbm import TierModel
from models.reasons import format_values, reason_codes, rulebook_thresholds, template

LG22, SP22, LG26 = "little_giant_2022", "specialized_2022", "little_giant_2026"


def under(X: pd.DataFrame, rulebook: str):
    """The assessment of X's rows under a rulebook (what reasons quote)."""
    return assess(X, load_rulebook(rulebook))

COLUMNS = ["rd_intensity", "revenue", "parent_large_group", "parent_employees", "class1_ip",
           "main_share", "province", "debt_ratio"]


@pytest.fixture()
def firms() -> pd.DataFrame:
    return pd.DataFrame({
        "rd_intensity": [0.072, 0.02, np.nan],
        "revenue": [8e7, 2e8, 5e7],
        "parent_large_group": [1.0, 0.0, 1.0],
        "parent_employees": [5200.0, np.nan, np.nan],
        "class1_ip": [0.0, 3.0, 1.0],
        "main_share": [0.62, 0.9, 0.75],
        "province": pd.Categorical(["44", "32", None]),
        "debt_ratio": [0.75, 0.3, 0.5],
    }, index=pd.Index(["f1", "f2", "f3"], name="firm_id"))


def _contributions(rows: list[list[float]], index) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS, index=index)
    frame["bias"] = -4.0
    return frame


def test_dominant_feature_leads_with_the_firms_value_and_the_rulebook_bar(firms):
    contributions = _contributions([
        [2.0, 0.1, 1.0, 0.0, -1.5, -0.8, 0.3, -0.2],
        [-1.0, 0.5, 0.0, 0.0, 0.7, 0.4, -0.1, 0.2],
        [0.0, 0.0, 0.9, 0.2, 0.0, 0.1, 0.3, 0.0],
    ], firms.index)
    reasons = reason_codes(firms, contributions, n=3, assessment=under(firms, LG22))
    assert list(reasons.columns) == ["reasons_for", "reasons_against"]
    assert reasons.index.equals(firms.index)
    first_for = reasons.loc["f1", "reasons_for"].split("; ")
    # A criterion of several measures is one reason quoting the measures of the case
    # that applies (revenue 50M-100M: this year's R&D intensity alone).
    assert first_for == ["R&D input by revenue band: met (revenue 80M CNY, R&D intensity 7.2%)",
                         "subsidiary of a large group (5,200 employees)", "based in Guangdong"]
    assert reasons.loc["f1", "reasons_against"].split("; ") == [
        "0 Class I IP rights: below the minimum of 2", "main-business share 62%: below the 70% bar",
        "debt ratio 75%: above the 70% ceiling"]
    # revenue >= 100M: both years' R&D intensity
    assert reasons.loc["f2", "reasons_against"].startswith(
        "R&D input by revenue band: not met (revenue 200M CNY, R&D intensity 2.0%, "
        "R&D intensity the year before not reported)")
    assert reasons.loc["f2", "reasons_for"].startswith(
        "3 Class I IP rights: above the minimum of 2")
    # the group size is unknown: the shorter text; only positive pushes are reasons for
    assert reasons.loc["f3", "reasons_for"].split("; ")[0] == "subsidiary of a large group"
    assert reasons.loc["f3", "reasons_against"] == ""


def test_thresholds_follow_the_tier_and_none_quotes_no_bar(firms):
    contributions = _contributions([[0, 0, 0, 0, 0, 3.0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
                                    [0, 0, 0, 0, 0, 0, 0, 0]], firms.index)
    lg = reason_codes(firms, contributions, n=2, assessment=under(firms, LG22))
    sp = reason_codes(firms, contributions, n=2, assessment=under(firms, SP22))
    plain = reason_codes(firms, contributions, n=2)
    lg26 = reason_codes(firms, contributions, n=2, assessment=under(firms, LG26))
    assert lg.loc["f1", "reasons_for"] == "main-business share 62%: below the 70% bar"
    # The bar is the assessed rulebook's: 90% under the 2026 Measures.
    assert lg26.loc["f1", "reasons_for"] == "main-business share 62%: below the 90% bar"
    assert sp.loc["f1", "reasons_for"] == "main-business share 62%"  # no hard bar for SMEs
    assert plain.loc["f1", "reasons_for"] == "main-business share 62%"
    assert (lg.loc[["f2", "f3"]] == "").all().all()
    assert rulebook_thresholds(load_rulebook("champion_2022"), "main_share") == \
        [(0.7, ">=", "")]
    assert [t for t, _, _ in rulebook_thresholds(load_rulebook(LG22), "rd_intensity")] == \
        [0.03, 0.06]


def test_strongest_first_and_n_limits_the_count(firms):
    contributions = _contributions([[0.1, 0.2, 0.3, 0.0, 0.4, 0.5, 0.0, 0.0]] * 3, firms.index)
    reasons = reason_codes(firms, contributions, n=2, assessment=under(firms, LG22))
    assert reasons.loc["f2", "reasons_for"] == (
        "main-business share 90%: above the 70% bar; 3 Class I IP rights: above the minimum of 2")
    one = reason_codes(firms, contributions, n=1, assessment=under(firms, LG22))
    assert one.loc["f2", "reasons_for"] == "main-business share 90%: above the 70% bar"


def test_unknown_values_and_columns_read_as_not_reported(firms):
    contributions = _contributions([[0.0] * 8, [0.0] * 8, [1.0] + [0.0] * 7], firms.index)
    contributions["net_margin"] = [0.0, -2.0, 0.0]  # a model feature missing from the frame
    reasons = reason_codes(firms, contributions, n=3, assessment=under(firms, LG22))
    assert reasons.loc["f3", "reasons_for"] == (
        "R&D input by revenue band: undecided on its data (revenue 50M CNY, R&D intensity not "
        "reported)")
    assert reasons.loc["f2", "reasons_against"] == "net margin not reported"


def test_rule_features_fold_onto_their_measure_and_the_rest_is_the_assessed_verdict():
    """The lens (2022) rule features never quote the lens: a single-measure criterion's
    push reads as its measure against the assessed rulebook's bar, and the overall outcomes
    as that rulebook's verdict, the same one as the eligibility beside the reasons."""
    X = pd.DataFrame({"main_share": [0.62, 0.95],
                      "rule_lg22_main_share": [0.0, 1.0],
                      "rule_lg22_eligible_on_data": [0.0, np.nan],
                      "mystery_ratio": [0.5, 0.25]})
    contributions = pd.DataFrame({"main_share": [0.0, 0.0],
                                  "rule_lg22_main_share": [-1.0, 1.0],
                                  "rule_lg22_eligible_on_data": [-0.5, 0.5],
                                  "mystery_ratio": [0.0, 0.1]})
    verdict = under(X, LG26)
    reasons = reason_codes(X, contributions, n=3, assessment=verdict)
    assert verdict.eligible.tolist() == ["fail", "unknown"]
    assert reasons.loc[0, "reasons_against"] == (
        "main-business share 62%: below the 90% bar; fails the Little Giant (2026 Measures) "
        "on the criteria named in these reasons")
    assert reasons.loc[1, "reasons_for"] == (
        "main-business share 95%: above the 90% bar; Little Giant (2026 Measures): undecided "
        "on its data; mystery ratio 0.2")
    assert "70%" not in " ".join(reasons.to_numpy().ravel())
    assert template("mystery_ratio")["format"] == "number"


def test_formatting_is_vectorised_by_distinct_value():
    values = np.array([1_270_000.0, 250_000.0, 4.2e9, 1_270_400.0])
    assert list(format_values(values, "money")) == ["1.27M CNY", "250K CNY", "4.2B CNY",
                                                    "1.27M CNY"]
    assert list(format_values(np.array([0.0724, -0.001]), "percent", 1)) == ["7.2%", "-0.1%"]
    assert list(format_values(np.array([-0.001]), "percent", 0)) == ["0%"]
    assert list(format_values(np.array([5200.0]), "count")) == ["5,200"]
    assert list(format_values(np.array([0.06]), "percent", bar=True)) == ["6%"]


def test_batch_of_many_firms_keeps_order_and_reasons_per_firm():
    rng = np.random.default_rng(1)
    n = 20_000
    X = pd.DataFrame({"main_share": rng.uniform(0.3, 1.0, n), "debt_ratio": rng.uniform(0, 1, n),
                      "class1_ip": rng.integers(0, 8, n).astype(float)})
    C = pd.DataFrame(rng.normal(size=(n, 3)), columns=X.columns)
    reasons = reason_codes(X, C, n=2, assessment=under(X, LG22))
    assert len(reasons) == n
    leading = C.idxmax(axis=1)
    words = {"main_share": "main-business share", "debt_ratio": "debt ratio",
             "class1_ip": "Class I IP"}
    positive = C.max(axis=1) > 0
    for i in rng.choice(np.flatnonzero(positive), 200, replace=False):
        assert words[leading.iloc[i]] in reasons["reasons_for"].iloc[i].split("; ")[0]
    assert (reasons.loc[~positive, "reasons_for"] == "").all()


def test_end_to_end_with_a_trained_tier_model():
    rng = np.random.default_rng(0)
    n = 3_000
    X = pd.DataFrame({
        "rd_intensity": rng.uniform(0, 0.15, n), "main_share": rng.uniform(0.4, 1.0, n),
        "debt_ratio": rng.uniform(0.1, 0.9, n), "revenue": rng.uniform(6e7, 9e7, n),
    })
    y = (X["rd_intensity"] > 0.08).astype(int) & (rng.random(n) < 0.9)
    model = TierModel(params={"num_threads": 1}, seed=0, num_boost_round=80,
                      early_stopping_rounds=10).fit(X, y, years=np.repeat([2021, 2022, 2023], n // 3))
    firms = pd.DataFrame({"rd_intensity": [0.12, 0.01], "main_share": [0.75, 0.75],
                          "debt_ratio": [0.5, 0.5], "revenue": [7e7, 7e7]}, index=["hi", "lo"])
    reasons = reason_codes(firms, model.contributions(firms), n=3,
                           assessment=under(firms, LG22))
    assert reasons.loc["hi", "reasons_for"].startswith(
        "R&D input by revenue band: met (revenue 70M CNY, R&D intensity 12.0%)")
    assert reasons.loc["lo", "reasons_against"].startswith(
        "R&D input by revenue band: not met (revenue 70M CNY, R&D intensity 1.0%)")


def test_counts_of_one_read_in_the_singular():
    X = pd.DataFrame({"years_held_specialized": [1.0, 2.0], "class1_ip": [1.0, 4.0],
                      "renewals_passed": [1.0, 3.0]})
    C = pd.DataFrame({"years_held_specialized": [1.0, 1.0], "class1_ip": [0.5, 0.5],
                      "renewals_passed": [0.2, 0.2]})
    reasons = reason_codes(X, C, n=3)["reasons_for"]
    assert reasons[0] == ("Specialized SME for 1 year; 1 Class I IP right (valid invention "
                          "patents); passed 1 re-review")
    assert reasons[1] == ("Specialized SME for 2 years; 4 Class I IP rights (valid invention "
                          "patents); passed 3 re-reviews")


def test_strongest_groups_match_a_full_sort_with_ties_to_the_lower_column():
    from models.reasons import _strongest

    rng = np.random.default_rng(3)
    C = rng.choice([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], size=(400, 9))
    for k in (1, 3, 9):
        got = _strongest(C, k)
        for i, row in enumerate(C):
            up = [j for j in sorted(range(9), key=lambda j: (-row[j], j)) if row[j] > 0][:k]
            down = [j for j in sorted(range(9), key=lambda j: (row[j], j)) if row[j] < 0][:k]
            assert list(got[i]) == up + [-1] * (k - len(up)) + down + [-1] * (k - len(down))
