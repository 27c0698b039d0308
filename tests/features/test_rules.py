"""Rulebooks and the rule evaluator: boundaries generated from every TOML file, plus cases."""

from __future__ import annotations

import math
import operator
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.rules import (
    RulebookError,
    available_rulebooks,
    criteria_table,
    evaluate,
    explain_failures,
    feature_directions,
    load_rulebook,
)
from features.rules.engine import Columns, NodeEvaluator, band_points
from features.rules.gaps import GapWriter
from features.rules.types import RULEBOOK_DIR, Leaf, ScorePass, iter_nodes

NAN = np.nan
COMPARE = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
CONTRACT_FEATURES = {
    "revenue",
    "main_revenue",
    "main_revenue_3y_avg",
    "employees",
    "total_assets",
    "rd_expense",
    "rd_expense_prev",
    "rd_expense_2y_sum",
    "rd_expense_2y_avg",
    "rd_intensity",
    "rd_intensity_prev",
    "rd_staff_share",
    "main_share",
    "revenue_growth_1y",
    "revenue_growth_2y_avg",
    "main_revenue_growth_1y",
    "main_revenue_growth_2y_avg",
    "net_profit_growth_2y_avg",
    "net_margin",
    "roa",
    "debt_ratio",
    "equity_raised_2y",
    "equity_raised_3y",
    "domestic_share",
    "domestic_rank",
    "global_rank",
    "rd_institution_level",
    "high_tech",
    "quality_cert",
    "own_brand",
    "size_class",
    "is_sme",
    "valid_invention_patents",
    "valid_utility_patents",
    "valid_design_patents",
    "valid_software_copyrights",
    "class1_ip",
    "class2_ip",
    "years_in_niche",
    "firm_age",
    "sector_strategic_emerging",
    "sector_mic2025",
    "sector_five_foundations",
    "sector_network_power",
    "holds_specialized",
    "holds_little_giant",
    "holds_champion",
    "province",
}
TOML_FILES = sorted(RULEBOOK_DIR.glob("*.toml"))
RULEBOOKS = [load_rulebook(p) for p in TOML_FILES]


def _leaf_cases():
    for rb in RULEBOOKS:
        for c in rb.criteria:
            for i, leaf in enumerate(c.leaves):
                yield pytest.param(rb, c, leaf, id=f"{c.id}-{i}-{leaf.features[0]}")


def _band_cases():
    for rb in RULEBOOKS:
        for item in rb.score.items if rb.score else ():
            for j, table in enumerate(item.inputs):
                if table.feature is not None:
                    yield pytest.param(table, id=f"{rb.code}-{item.id}-{j}")


def _codes(node, frame: pd.DataFrame) -> list[str]:
    ev = NodeEvaluator(Columns(frame), None)
    return [["fail", "unknown", "pass"][c] for c in ev.codes(node)]


def _frame(**cols) -> pd.DataFrame:
    n = max(len(v) if isinstance(v, list) else 1 for v in cols.values())
    return pd.DataFrame(
        {k: v if isinstance(v, list) else [v] * n for k, v in cols.items()},
        index=[f"f{i}" for i in range(n)],
    )


def _eval(rb_name: str, tier: str | None = None, **cols):
    rb = load_rulebook(rb_name, tier=tier)
    frame = _frame(**cols)
    return rb, frame, evaluate(frame, rb)


# ---------------------------------------------------------------- files and metadata


def test_every_toml_file_loads_with_sources_and_labels():
    assert len(TOML_FILES) >= 8
    ids = [c.id for rb in RULEBOOKS for c in rb.criteria]
    assert len(ids) == len(set(ids)), "criterion ids must be unique across rulebooks"
    for rb in RULEBOOKS:
        assert rb.source and rb.name_zh and rb.name_en and rb.criteria
        for c in rb.criteria:
            assert c.source and c.name_zh and c.name_en and c.pillar_zh
            assert c.tier == rb.tier
            if not c.confirmed:
                assert c.note, f"{c.id} is unconfirmed without a note"
            assert set(c.features) <= CONTRACT_FEATURES, c.id
        if rb.score:
            assert rb.score.source
            assert {t.feature for it in rb.score.items for t in it.inputs} - {
                None
            } <= CONTRACT_FEATURES


def test_unconfirmed_items_are_labelled():
    for rb in RULEBOOKS:
        if rb.year == "2026" or rb.id == "champion_2023":
            assert not rb.confirmed
            assert all(not c.confirmed for c in rb.criteria), rb.id
    assert not load_rulebook("lg18").criterion("lg18_patents").confirmed
    table = available_rulebooks()
    assert set(table["tier"]) == {"innovative", "specialized", "little_giant", "champion"}
    assert {"2018", "2022", "2026", "2016"} <= set(table["year"])


def test_load_rulebook_by_year_tier_id_code_and_path():
    rb = load_rulebook("2022", tier="little_giant")
    assert rb.id == "little_giant_2022"
    assert load_rulebook("little_giant_2022") is rb
    assert load_rulebook("lg22") is rb
    assert load_rulebook(RULEBOOK_DIR / "little_giant_2022.toml") is rb
    with pytest.raises(KeyError):
        load_rulebook("2022")  # several tiers
    with pytest.raises(KeyError):
        load_rulebook("1999", tier="champion")
    assert len(criteria_table(rb)) == len(rb.criteria)


def test_a_new_rulebook_is_a_new_file(tmp_path: Path):
    path = tmp_path / "specialized_2030.toml"
    path.write_text(
        """
[rulebook]
id = "specialized_2030"
code = "sp30"
year = "2030"
tier = "specialized"
name_zh = "专精特新中小企业"
name_en = "Specialized SME"
source = "test"
[[criteria]]
id = "sp30_years"
pillar = "specialization"
pillar_zh = "专"
name_zh = "年限"
name_en = "Years"
source = "test"
feature = "years_in_niche"
op = ">"
threshold = 4
unit = "years"
""",
        encoding="utf-8",
    )
    res = evaluate(_frame(years_in_niche=[4, 5, NAN]), load_rulebook(path))
    assert list(res.criteria["sp30_years"]) == ["fail", "pass", "unknown"]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        path.read_text(encoding="utf-8").replace('op = ">"', 'op = "=>"'), encoding="utf-8"
    )
    with pytest.raises(RulebookError):
        load_rulebook(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text(
        path.read_text(encoding="utf-8").replace("threshold = 4", "threshold = 4\ntreshold = 5"),
        encoding="utf-8",
    )
    with pytest.raises(RulebookError, match="treshold"):
        load_rulebook(typo)


# ---------------------------------------------------------------- generated boundaries


@pytest.mark.parametrize(("rb", "criterion", "leaf"), list(_leaf_cases()))
def test_threshold_boundaries(rb, criterion, leaf: Leaf):
    t = leaf.threshold
    eps = max(abs(t) * 1e-9, 1e-9)
    values = [t - eps, t, t + eps]
    if leaf.unit in ("years", "count", "rank", "flag"):
        values += [t - 1, t + 1]
    first, *rest = leaf.features
    frame = pd.DataFrame({first: values + [NAN], **{f: [0.0] * len(values) + [0.0] for f in rest}})
    expected = ["pass" if COMPARE[leaf.op](v, t) else "fail" for v in values] + ["unknown"]
    assert _codes(leaf, frame) == expected
    # Boundaries hold through evaluate() for criteria that are a single threshold.
    if criterion.node is leaf:
        assert list(evaluate(frame, rb).criteria[criterion.id]) == expected
    # Every failed threshold gets a gap text.
    ev = NodeEvaluator(Columns(frame), None)
    rows = np.flatnonzero(np.array(expected) == "fail")
    assert len(rows) and all(GapWriter(ev, None, on_data=False).texts(leaf, rows))


@pytest.mark.parametrize("table", list(_band_cases()))
def test_score_band_boundaries(table):
    def reference(v: float) -> tuple[float, float]:
        pairs = list(zip(table.bounds, table.lo, table.hi))
        if table.op in (">=", ">"):
            hit = [p for p in pairs if COMPARE[table.op](v, p[0])]
            chosen = max(hit, key=lambda p: p[0]) if hit else None
        else:
            hit = [p for p in pairs if COMPARE[table.op](v, p[0])]
            chosen = min(hit, key=lambda p: p[0]) if hit else None
        return (chosen[1], chosen[2]) if chosen else (table.lo[-1], table.hi[-1])

    values = []
    for b in table.bounds:
        eps = max(abs(b) * 1e-9, 1e-9)
        values += [b - eps, b, b + eps]
    lo, hi = band_points(table, Columns(pd.DataFrame({table.feature: values + [NAN]})))
    assert [(a, b) for a, b in zip(lo[:-1], hi[:-1])] == [reference(v) for v in values]
    assert (lo[-1], hi[-1]) == (min(table.lo), max(table.hi)), "unknown input spans the table"


# ---------------------------------------------------------------- missing data


@pytest.mark.parametrize("rb", RULEBOOKS, ids=[rb.id for rb in RULEBOOKS])
def test_missing_data_is_unknown_never_fail(rb):
    frame = pd.DataFrame({"revenue": [NAN, NAN]}, index=["a", "b"])
    res = evaluate(frame, rb)
    assert (res.criteria == "unknown").all().all()
    assert (res.eligible == "unknown").all()
    assert list(res.criteria.columns) == [c.id for c in rb.criteria]
    if rb.score:
        assert (res.score["score_status"] == "unknown").all()
        assert (res.score["score_max_possible"] == rb.score.max).all()
    ex = explain_failures(frame, rb, res)
    assert ex["failed"].map(len).eq(0).all()


def test_qualitative_criteria_stay_unknown_with_full_data():
    rb = load_rulebook("lg22")
    res = evaluate(pd.DataFrame({"revenue": [1e8]}), rb)
    qualitative = [c.id for c in rb.criteria if c.qualitative]
    assert set(qualitative) == {
        "lg22_not_linked_to_little_giant",
        "lg22_information_systems",
        "lg22_chain_role",
    }
    assert (res.criteria[qualitative] == "unknown").all().all()
    assert (res.criteria_on_data[qualitative] == "unknown").all().all()


def test_nullable_and_absent_columns():
    frame = pd.DataFrame(
        {
            "own_brand": pd.array([True, False, None], dtype="boolean"),
            "main_share": pd.array([0.8, None, 0.1], dtype="Float64"),
        }
    )
    res = evaluate(frame, load_rulebook("lg22"))
    assert list(res.criteria["lg22_own_brand"]) == ["pass", "fail", "unknown"]
    assert list(res.criteria["lg22_main_share"]) == ["pass", "unknown", "fail"]
    assert list(res.criteria["lg22_debt_ratio"]) == ["unknown"] * 3


# ---------------------------------------------------------------- alternatives and bands


def test_alternatives_pass_on_any_fail_only_on_all():
    _, _, res = _eval(
        "sp22",
        revenue=[5e6, 5e6, 5e6, NAN, NAN, 12e6],
        equity_raised_2y=[25e6, 10e6, NAN, 25e6, NAN, NAN],
    )
    assert list(res.criteria["sp22_revenue_or_equity"]) == [
        "pass",
        "fail",
        "unknown",
        "pass",
        "unknown",
        "pass",
    ]


def test_little_giant_rd_rule_by_revenue_band():
    rows = [  # revenue, rd_intensity, rd_intensity_prev, equity_2y, rd_2y_sum, staff_share, expected
        (150e6, 0.03, 0.03, NAN, NAN, NAN, "pass"),
        (100e6, 0.05, 0.029, NAN, NAN, NAN, "fail"),  # at 100M the 3%-each-year band applies
        (150e6, 0.05, NAN, NAN, NAN, NAN, "unknown"),
        (99e6, 0.06, NAN, NAN, NAN, NAN, "pass"),
        (50e6, 0.059, 0.2, NAN, NAN, NAN, "fail"),
        (49.9e6, 0.2, 0.2, 80e6, 30e6, 0.5, "pass"),
        (49.9e6, 0.2, 0.2, 79e6, 30e6, 0.5, "fail"),
        (30e6, NAN, NAN, 90e6, 40e6, 0.49, "fail"),
        (30e6, NAN, NAN, 90e6, NAN, 0.6, "unknown"),
        (NAN, 0.01, 0.01, 0.0, 0.0, 0.0, "fail"),  # fails in every band, whatever the revenue
        (NAN, 0.07, 0.07, NAN, NAN, NAN, "unknown"),
    ]
    cols = [
        "revenue",
        "rd_intensity",
        "rd_intensity_prev",
        "equity_raised_2y",
        "rd_expense_2y_sum",
        "rd_staff_share",
    ]
    frame = pd.DataFrame([r[:-1] for r in rows], columns=cols)
    rb = load_rulebook("lg22")
    res = evaluate(frame, rb)
    # Strictly the national-award direct path may still apply, so no firm fails outright.
    assert list(res.criteria["lg22_rd_by_revenue_band"]) == [
        "pass" if r[-1] == "pass" else "unknown" for r in rows
    ]
    assert list(res.criteria_on_data["lg22_rd_by_revenue_band"]) == [r[-1] for r in rows]
    node = rb.criterion("lg22_rd_by_revenue_band").node.children[
        0
    ]  # the bands without the direct path
    assert _codes(node, frame) == [r[-1] for r in rows]


def test_little_giant_requires_a_valid_specialized_title():
    good = {
        "holds_specialized": [1.0, 0.0, NAN],
        "holds_champion": 0.0,
        "is_sme": 1.0,
        "years_in_niche": 8.0,
        "main_share": 0.9,
        "main_revenue_growth_2y_avg": 0.1,
        "quality_cert": 1.0,
        "debt_ratio": 0.4,
        "domestic_share": 0.2,
        "own_brand": 1.0,
        "revenue": 150e6,
        "rd_intensity": 0.05,
        "rd_intensity_prev": 0.05,
        "rd_institution_level": 2.0,
        "class1_ip": 5.0,
        "sector_mic2025": 1.0,
    }
    rb, frame, res = _eval("2022", "little_giant", **good)
    assert list(res.criteria["lg22_specialized_title"]) == ["pass", "fail", "unknown"]
    # The qualitative items keep the strict verdict open; on the data alone the firm qualifies.
    assert list(res.eligible) == ["unknown", "fail", "unknown"]
    assert list(res.eligible_on_data) == ["pass", "fail", "unknown"]
    ex = explain_failures(frame, rb, res)
    assert ex.loc["f1", "failed"] == ["lg22_specialized_title"]
    assert ex.loc["f1", "gaps"] == {"lg22_specialized_title": "no valid Specialized SME title"}
    assert "lg22_information_systems" in ex.loc["f0", "unknown"]
    champion = evaluate(frame.assign(holds_champion=1.0), rb)
    assert (champion.eligible == "fail").all()


def test_champion_2022_revenue_or_little_giant():
    _, _, res = _eval(
        "2022",
        "champion",
        revenue=[400e6, 399e6, 399e6, NAN, 500e6],
        holds_little_giant=[0.0, 1.0, 0.0, 0.0, NAN],
    )
    assert list(res.criteria["ch22_revenue_or_little_giant"]) == [
        "pass",
        "pass",
        "fail",
        "unknown",
        "pass",
    ]


def test_champion_new_product_rule_keeps_short_tenure_open():
    _, _, res = _eval("2016", "champion", years_in_niche=[12.0, 5.0, 2.0])
    assert list(res.criteria["ch16_years_in_niche"]) == ["pass", "unknown", "fail"]
    assert list(res.criteria_on_data["ch16_years_in_niche"]) == ["pass", "fail", "fail"]


# ---------------------------------------------------------------- scores

FULL_SPECIALIZED = {  # known items worth 71 points; 29 more possible from unknown items
    "main_share": 0.85,
    "main_revenue_growth_2y_avg": 0.12,
    "years_in_niche": 10.0,
    "quality_cert": 1.0,
    "own_brand": 1.0,
    "net_margin": 0.12,
    "debt_ratio": 0.3,
    "class1_ip": 3.0,
    "class2_ip": 0.0,
    "rd_expense": 6e6,
    "rd_intensity": 0.05,
    "rd_staff_share": 0.25,
    "rd_institution_level": 3.0,
}


def test_specialized_score_points_and_bounds():
    _, _, res = _eval("sp22", province="33", **FULL_SPECIALIZED)
    assert res.score["score"].iloc[0] == 71
    assert res.score["score_max_possible"].iloc[0] == 71 + 4 + 5 + 5 + 15
    assert res.pillars["specialization_points"].iloc[0] == 20
    assert res.pillars["specialization_points_max"].iloc[0] == 25
    assert res.pillars["innovation_points"].iloc[0] == 31
    assert res.score["score_status"].iloc[0] == "pass"


def test_guangdong_needs_70_points_elsewhere_60():
    provinces = ["33", "44", None]
    mid = {**FULL_SPECIALIZED, "rd_institution_level": 1.0}  # 65 certain points
    _, _, res = _eval("sp22", province=provinces, **mid)
    assert list(res.score["score"]) == [65, 65, 65]
    assert list(res.score["score_status"]) == ["pass", "unknown", "unknown"]
    assert list(res.score["score_threshold"].fillna(-1)) == [60, 70, -1]
    # At most 63 points: undecided against 60, a certain miss against 70.
    low = {
        "main_share": 0.75,
        "main_revenue_growth_2y_avg": 0.05,
        "years_in_niche": 4.0,
        "quality_cert": 0.0,
        "own_brand": 1.0,
        "net_margin": 0.05,
        "debt_ratio": 0.55,
        "class1_ip": 2.0,
        "class2_ip": 4.0,
        "rd_expense": 1.5e6,
        "rd_intensity": 0.05,
        "rd_staff_share": 0.12,
        "rd_institution_level": 0.0,
        "rd_expense_2y_avg": 1.5e6,
        "equity_raised_2y": 0.0,
    }
    rb, frame, res = _eval("sp22", province=provinces, **low)
    assert list(res.score["score"]) == [32, 32, 32]
    assert list(res.score["score_max_possible"]) == [63, 63, 63]
    assert list(res.score["score_status"]) == ["unknown", "fail", "unknown"]
    assert list(res.criteria["sp22_score_or_direct"]) == ["unknown"] * 3
    assert list(res.criteria_on_data["sp22_score_or_direct"]) == ["unknown", "fail", "unknown"]
    ex = explain_failures(frame, rb, res)
    assert ex.loc["f1", "failed_on_data"] == ["sp22_score_or_direct"]
    assert ex.loc["f1", "gaps"]["sp22_score_or_direct"] == (
        "Specialized SME score 32 (at most 63) < 70: at least 7 more points; "
        "or 2-year average R&D expense 1.5M < 10M CNY: 8.5M CNY more; "
        "or equity raised in 2 years 0 < 60M CNY: 60M CNY more "
        "(unless: S&T award or 创客中国 top 500)"
    )


def test_score_direct_conditions_pass_without_points():
    _, _, res = _eval("sp22", rd_expense_2y_avg=[10e6, 9.99e6], equity_raised_2y=[0.0, 0.0])
    assert list(res.criteria["sp22_score_or_direct"]) == ["pass", "unknown"]


def test_innovative_score_pillar_minimums():
    strong = {
        "class1_ip": 0.0,
        "class2_ip": 0.0,
        "rd_intensity": 0.005,  # innovation 0 < 20
        "main_revenue_growth_1y": 0.2,
        "debt_ratio": 0.3,
        "sector_strategic_emerging": 1.0,
        "main_share": 0.9,
    }
    _, _, res = _eval("in22", **strong)
    assert res.score["score"].iloc[0] == 60
    assert res.score["score_status"].iloc[0] == "fail"
    ok = {**strong, "rd_intensity": 0.05}
    _, _, res = _eval("in22", **ok)
    assert res.score["score_status"].iloc[0] == "pass"
    assert res.criteria["in22_score_or_direct"].iloc[0] == "pass"
    _, _, res = _eval("in22", **{**strong, "class1_ip": 1.0, "rd_intensity": 0.0})
    assert (res.score["score"].iloc[0], res.score["score_max_possible"].iloc[0]) == (70, 80)
    assert res.score["score_status"].iloc[0] == "unknown"  # innovation 10..20 against 20


# ---------------------------------------------------------------- gap texts


def test_gap_texts_in_the_firms_units():
    rb, frame, res = _eval(
        "lg22",
        years_in_niche=2.0,
        main_share=0.62,
        debt_ratio=0.78,
        total_assets=52.5e6,
        revenue=120e6,
        rd_expense=2.52e6,
        rd_intensity=0.021,
        rd_intensity_prev=0.035,
        class1_ip=1.0,
        holds_specialized=1.0,
    )
    gaps = explain_failures(frame, rb, res).iloc[0]["gaps"]
    direct = " (unless: innovation direct path (national S&T award top 3 / 创客中国 top 50))"
    assert gaps == {
        "lg22_years_in_niche": "years in niche 2 < 3: eligible in 1 year",
        "lg22_main_share": "main-business share 62% < 70%",
        "lg22_debt_ratio": "debt ratio 78% > 70%: about 4.2M CNY less debt",
        "lg22_rd_by_revenue_band": "revenue >= 100M CNY: R&D intensity 2.1% < 3.0%: about 1.1M CNY more R&D"
        + direct,
        "lg22_class1_ip": "valid invention patents 1 < 2: 1 more" + direct,
    }


def test_gap_texts_money_counts_and_alternatives():
    rb, frame, res = _eval(
        "sp22",
        rd_expense=[750e3, 1e6],
        revenue=[5e6, 40e6],
        equity_raised_2y=[3e6, 0.0],
        rd_intensity=[0.15, 0.025],
    )
    ex = explain_failures(frame, rb, res)
    assert ex.loc["f0", "gaps"] == {
        "sp22_rd_expense": "R&D expense 750K < 1M CNY: 250K CNY more R&D",
        "sp22_revenue_or_equity": "revenue 5M < 10M CNY: 5M CNY more; "
        "or equity raised in 2 years 3M < 20M CNY: 17M CNY more",
    }
    assert ex.loc["f1", "gaps"] == {
        "sp22_rd_intensity": "R&D intensity 2.5% < 3.0%: about 200K CNY more R&D"
    }
    rb, frame, res = _eval(
        "lg22",
        revenue=30e6,
        equity_raised_2y=90e6,
        rd_expense_2y_sum=31e6,
        rd_staff_share=0.41,
        employees=120.0,
    )
    gap = explain_failures(frame, rb, res).iloc[0]["gaps"]["lg22_rd_by_revenue_band"]
    assert gap.startswith("revenue < 50M CNY: R&D staff share 41% < 50%: about 11 more R&D staff")


# ---------------------------------------------------------------- outputs and speed


def test_as_features_is_numeric():
    _rb, frame, res = _eval("sp22", province=["44", "33"], **FULL_SPECIALIZED)
    feats = res.as_features("rule_")
    assert feats.index.equals(frame.index)
    assert all(dt == np.float64 for dt in feats.dtypes)
    assert set(np.unique(feats.filter(like="rule_sp22_years").to_numpy())) <= {0.0, 1.0}
    assert {
        "rule_sp22_score",
        "rule_sp22_score_max_possible",
        "rule_sp22_eligible",
        "rule_sp22_eligible_on_data",
        "rule_sp22_score_or_direct__on_data",
    } <= set(feats)
    assert feats["rule_sp22_score"].tolist() == [71, 71]
    assert res.criteria["sp22_years_in_niche"].dtype == "category"
    unscored = evaluate(frame, load_rulebook("lg22"))
    assert unscored.score["score"].isna().all()
    assert unscored.as_features()["lg22_score"].isna().all()


def test_evaluate_is_vectorised():
    n = 200_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {c: rng.uniform(0, 1, n) for c in CONTRACT_FEATURES - {"province", "size_class"}}
    )
    frame["province"] = pd.array(rng.choice(["44", "33"], n), dtype="str")
    rb = load_rulebook("sp22")
    start = time.perf_counter()
    res = evaluate(frame, rb)
    assert time.perf_counter() - start < 10  # about 0.2 s on one core
    assert len(res.criteria) == n and not math.isnan(res.score["score"].iloc[0])
    assert any(
        isinstance(x, ScorePass) for x in iter_nodes(rb.criterion("sp22_score_or_direct").node)
    )


def test_feature_directions_follow_the_bars_of_the_published_criteria():
    lg = feature_directions([load_rulebook("little_giant_2022")])
    assert lg["main_share"] == 1 and lg["class1_ip"] == 1  # at least 70%, at least two
    assert lg["debt_ratio"] == -1  # at most 70%
    assert lg["revenue"] == 0  # the R&D rule's bands: from 100M and below 50M
    assert lg["sector_mic2025"] == 1  # a 0/1 flag that must be 1
    assert "holds_specialized" not in lg  # a status criterion: every candidate holds it
    specialized = feature_directions([load_rulebook("specialized_2022")])
    assert specialized["net_margin"] == 1  # read by a score item's bands only
    champion = feature_directions([load_rulebook("champion_2022")])
    assert champion["global_rank"] == -1  # top 3 of the world: a smaller rank is better
