"""Feature builders on hand-made firms: exact values per group."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.labels import feature_catalogue
from features.pipeline import AsOfFeatures, build_features, feature_names

FIRM_DEFAULTS = {
    "name": None, "province": "33", "industry_code": "C3491", "founded_year": 2010,
    "niche_entry_year": None, "parent_id": None, "parent_employees": np.nan,
    "parent_revenue": np.nan, "state_share": 0.0, "listed_board": "none",
}
FIN_FLOATS = ["revenue", "main_revenue", "net_profit", "total_assets", "total_liabilities",
              "rd_expense", "export_revenue", "equity_raised", "subsidies", "domestic_share",
              "rd_staff", "domestic_rank", "global_rank"]
FIN_BOOLS = ["high_tech", "quality_cert", "own_brand"]


def make_dataset(firms=(), financials=(), patents=(), certifications=()):
    """A Dataset-like object in the normalised format from lists of partial row dicts."""
    f = pd.DataFrame([{**FIRM_DEFAULTS, **r} for r in firms], columns=["firm_id", *FIRM_DEFAULTS])
    f["niche_entry_year"] = f["niche_entry_year"].fillna(f["founded_year"])
    for col in ("firm_id", "name", "province", "industry_code", "parent_id", "listed_board"):
        f[col] = f[col].astype("str")
    for col in ("founded_year", "niche_entry_year"):
        f[col] = f[col].astype("int64")
    for col in ("parent_employees", "parent_revenue", "state_share"):
        f[col] = f[col].astype("float64")

    fin = pd.DataFrame(list(financials), columns=["firm_id", "year", *FIN_FLOATS, "employees",
                                                  "rd_institution", *FIN_BOOLS])
    fin["firm_id"] = fin["firm_id"].astype("str")
    fin["year"] = fin["year"].astype("int64")
    fin[FIN_FLOATS] = fin[FIN_FLOATS].astype("float64")
    fin["employees"] = fin["employees"].fillna(0).astype("int64")
    fin["rd_institution"] = fin["rd_institution"].astype(object).fillna("none").astype("str")
    for col in FIN_BOOLS:
        fin[col] = fin[col].astype("boolean")

    pat = pd.DataFrame(list(patents), columns=["patent_id", "firm_id", "kind", "filed", "granted",
                                               "lapsed", "ipc"])
    pat["patent_id"] = [f"P{i}" for i in range(len(pat))]
    for col in ("patent_id", "firm_id", "kind", "ipc"):
        pat[col] = pat[col].astype("str")
    for col in ("filed", "granted", "lapsed"):
        pat[col] = pd.to_datetime(pat[col])

    cert = pd.DataFrame(list(certifications), columns=["firm_id", "tier", "year", "batch", "event"])
    cert["event"] = cert["event"].fillna("granted")
    for col in ("firm_id", "tier", "event"):
        cert[col] = cert[col].astype("str")
    cert["year"] = cert["year"].astype("int64")
    cert["batch"] = cert["batch"].astype("float64")
    rejects = pd.DataFrame(columns=["table", "row", "column", "rule", "reason", "record"])
    return SimpleNamespace(firms=f, financials=fin, patents=pat, certifications=cert,
                           rejects=rejects)


def fin_row(firm_id, year, **values):
    base = {"firm_id": firm_id, "year": year, "revenue": 100e6, "net_profit": 10e6,
            "total_assets": 200e6, "total_liabilities": 80e6, "rd_expense": 5e6,
            "employees": 200}
    return {**base, **values}


def close(a, b):
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


# --- financials -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fin_frame():
    ds = make_dataset(
        firms=[{"firm_id": "A"}, {"firm_id": "B"}, {"firm_id": "C"}],
        financials=[
            fin_row("A", 2020, revenue=160e6, main_revenue=150e6, net_profit=-2e6,
                    rd_expense=4e6, equity_raised=1e6, employees=300),
            fin_row("A", 2021, revenue=200e6, main_revenue=180e6, net_profit=4e6,
                    rd_expense=6e6, equity_raised=2e6, employees=350),
            fin_row("A", 2022, revenue=250e6, main_revenue=240e6, net_profit=6e6,
                    total_assets=500e6, total_liabilities=300e6, rd_expense=10e6,
                    rd_staff=70, employees=400, export_revenue=50e6, subsidies=5e6,
                    equity_raised=3e6, rd_institution="provincial", high_tech=True,
                    quality_cert=False, domestic_share=0.12, domestic_rank=2),
            fin_row("A", 2019, revenue=100e6),
            # B: only t-1; revenue zero makes every revenue ratio NaN, big firm
            fin_row("B", 2022, revenue=0.0, employees=1500, total_assets=0.0),
            # C: gap at t-2, large by both criteria
            fin_row("C", 2022, revenue=500e6, employees=1200),
            fin_row("C", 2020, revenue=400e6),
            # a future row that must be ignored
            fin_row("A", 2023, revenue=1e12),
        ],
    )
    return build_features(ds, 2023)


def test_default_firms_are_those_with_t1_financials(fin_frame):
    assert list(fin_frame.index) == ["A", "B", "C"]
    assert fin_frame.index.name == "firm_id"
    assert list(fin_frame.columns) == feature_names()


def test_financial_levels_and_ratios(fin_frame):
    a = fin_frame.loc["A"]
    assert a["revenue"] == 250e6 and a["employees"] == 400 and a["total_assets"] == 500e6
    assert a["log_revenue"] == pytest.approx(math.log1p(250e6))
    assert a["rd_intensity"] == pytest.approx(0.04)
    assert a["rd_intensity_prev"] == pytest.approx(0.03)
    assert a["rd_intensity_2y_min"] == pytest.approx(0.03)
    assert a["rd_expense_prev"] == 6e6
    assert a["rd_expense_2y_sum"] == 16e6 and a["rd_expense_2y_avg"] == 8e6
    assert a["rd_expense_3y_sum"] == 20e6
    assert a["rd_staff_share"] == pytest.approx(70 / 400)
    assert a["main_share"] == pytest.approx(0.96)
    assert a["net_margin"] == pytest.approx(6 / 250)
    assert a["roa"] == pytest.approx(6 / 500)
    assert a["debt_ratio"] == pytest.approx(0.6)
    assert a["export_share"] == pytest.approx(0.2)
    assert a["subsidies_to_revenue"] == pytest.approx(0.02)
    assert a["equity_raised_2y"] == 5e6 and a["equity_raised_3y"] == 6e6
    assert a["rd_institution_level"] == 2.0
    assert a["high_tech"] == 1.0 and a["quality_cert"] == 0.0 and math.isnan(a["own_brand"])
    assert a["domestic_share"] == 0.12 and a["domestic_rank"] == 2.0
    assert math.isnan(a["global_rank"])
    assert a["financial_years_known"] == 4.0


def test_growth_definitions(fin_frame):
    a = fin_frame.loc["A"]
    assert a["revenue_growth_1y"] == pytest.approx(0.25)
    assert a["revenue_growth_2y"] == pytest.approx(250 / 160 - 1)
    assert a["revenue_growth_3y"] == pytest.approx(1.5)
    assert a["revenue_growth_2y_avg"] == pytest.approx((0.25 + 0.25) / 2)
    assert a["main_revenue_growth_1y"] == pytest.approx(240 / 180 - 1)
    assert a["main_revenue_growth_2y_avg"] == pytest.approx((240 / 180 - 1 + 180 / 150 - 1) / 2)
    assert math.isnan(a["main_revenue_growth_3y"])  # 2019 main revenue unknown
    assert a["net_profit_growth_1y"] == pytest.approx(0.5)
    # from -2M to 4M: +300% relative to |base|
    assert a["net_profit_growth_2y_avg"] == pytest.approx((0.5 + 3.0) / 2)
    assert a["employees_growth_1y"] == pytest.approx(400 / 350 - 1)


def test_missing_years_and_zero_denominators_are_nan(fin_frame):
    b, c = fin_frame.loc["B"], fin_frame.loc["C"]
    for col in ("rd_intensity", "main_share", "net_margin", "export_share", "roa", "debt_ratio",
                "revenue_growth_1y", "rd_expense_prev", "rd_expense_2y_sum", "equity_raised_2y"):
        assert math.isnan(b[col]), col
    assert math.isnan(c["revenue_growth_1y"]) and math.isnan(c["revenue_growth_2y_avg"])
    assert c["revenue_growth_2y"] == pytest.approx(0.25)
    assert c["financial_years_known"] == 2.0
    assert b["rd_institution_level"] == 0.0  # row present, default "none"


def test_size_class_and_sme(fin_frame):
    assert str(fin_frame["size_class"].dtype) == "category"
    assert list(fin_frame["size_class"].cat.categories) == ["micro", "small", "medium", "large"]
    assert fin_frame.loc["A", "size_class"] == "medium"
    assert fin_frame.loc["B", "size_class"] == "micro"  # no revenue: micro by revenue
    assert fin_frame.loc["C", "size_class"] == "large"
    assert fin_frame.loc["A", "is_sme"] == 1.0
    assert fin_frame.loc["B", "is_sme"] == 1.0
    assert fin_frame.loc["C", "is_sme"] == 0.0


def test_is_sme_is_three_valued():
    ds = make_dataset(firms=[{"firm_id": f} for f in "DEF"],
                      financials=[fin_row("D", 2022, employees=1500, revenue=np.nan),
                                  fin_row("E", 2022, employees=500, revenue=np.nan),
                                  fin_row("F", 2022, employees=1000, revenue=400e6)])
    x = build_features(ds, 2023)
    assert math.isnan(x.loc["D", "is_sme"])
    assert x.loc["E", "is_sme"] == 1.0
    assert x.loc["F", "is_sme"] == 0.0 and x.loc["F", "size_class"] == "large"


def test_main_revenue_3y_avg(fin_frame):
    assert fin_frame.loc["A", "main_revenue_3y_avg"] == pytest.approx((240e6 + 180e6 + 150e6) / 3)
    assert math.isnan(fin_frame.loc["B", "main_revenue_3y_avg"])  # only t-1 known
    assert math.isnan(fin_frame.loc["C", "main_revenue_3y_avg"])  # gap at t-2


# --- patents ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pat_frame():
    P = lambda kind, filed, granted=None, lapsed=None, ipc=None, firm="A": {
        "firm_id": firm, "kind": kind, "filed": filed, "granted": granted, "lapsed": lapsed,
        "ipc": ipc}
    ds = make_dataset(
        firms=[{"firm_id": "A"}, {"firm_id": "N"}],
        financials=[fin_row("A", 2022), fin_row("N", 2022)],
        patents=[
            P("invention", "2018-03-01", "2020-06-01", ipc="B25J 9/16"),
            P("invention", "2021-01-10", "2022-12-31", ipc="G06F"),
            P("invention", "2022-05-01", "2023-02-01", ipc="G06N"),   # granted in t: pending
            P("invention", "2015-01-01", "2016-01-01", "2022-06-30", ipc="H01L"),  # lapsed
            P("invention", "2016-01-01", "2017-01-01", "2023-03-01", ipc="A01B"),  # lapse in t
            P("utility", "2021-02-01", "2021-08-01", ipc="B25J"),
            P("design", "2020-01-01", "2020-09-01"),
            P("software", "2022-03-01", "2022-04-01"),
            P("invention", "2017-01-01", ipc="G06F"),       # old, never granted: refused
            P("utility", "2023-01-05", "2023-06-01"),       # filed in t: unknown
        ],
    )
    return build_features(ds, 2023)


def test_valid_rights_by_kind(pat_frame):
    a = pat_frame.loc["A"]
    assert a["valid_invention_patents"] == 3.0   # 2020, 2022-12-31, lapses only in 2023
    assert a["valid_utility_patents"] == 1.0
    assert a["valid_design_patents"] == 1.0
    assert a["valid_software_copyrights"] == 1.0
    assert a["class1_ip"] == 3.0 and a["class2_ip"] == 3.0 and a["valid_ip_total"] == 6.0
    assert a["invention_share"] == pytest.approx(0.5)


def test_patent_flows_and_pending(pat_frame):
    a = pat_frame.loc["A"]
    assert a["new_grants_1y"] == 2.0   # 2022-12-31 invention, 2022 software
    assert a["new_grants_2y"] == 3.0   # + 2021 utility
    assert a["new_grants_3y"] == 5.0   # + 2020 invention and design
    assert a["new_invention_grants_3y"] == 2.0
    assert a["pending_applications"] == 1.0
    assert a["pending_invention_applications"] == 1.0
    assert a["lapse_rate"] == pytest.approx(1 / 7)


def test_patent_profile(pat_frame):
    a = pat_frame.loc["A"]
    # valid IPC subclasses: B25J (x2), G06F, A01B
    assert a["ipc_diversity"] == 3.0
    assert a["strategic_ipc_share"] == pytest.approx(3 / 4)
    filed = ["2018-03-01", "2021-01-10", "2016-01-01", "2021-02-01", "2020-01-01", "2022-03-01"]
    cutoff = pd.Timestamp("2023-01-01")
    expected = sum(0.85 ** ((cutoff - pd.Timestamp(d)).days / 365.25) for d in filed)
    assert a["patent_stock_depreciated"] == pytest.approx(expected)


def test_no_patents_zero_counts_nan_shares(pat_frame):
    n = pat_frame.loc["N"]
    assert n["valid_invention_patents"] == 0.0 and n["pending_applications"] == 0.0
    assert n["ipc_diversity"] == 0.0 and n["patent_stock_depreciated"] == 0.0
    for col in ("invention_share", "strategic_ipc_share", "lapse_rate"):
        assert math.isnan(n[col]), col


# --- sectors, region, ownership, history ------------------------------------------------

@pytest.fixture(scope="module")
def firm_frame():
    ds = make_dataset(
        firms=[
            {"firm_id": "R", "industry_code": "C3491", "province": "32", "founded_year": 2005,
             "niche_entry_year": 2012, "parent_id": "G", "parent_employees": 5000.0,
             "parent_revenue": 100e6, "state_share": 0.6, "listed_board": "star"},
            {"firm_id": "S", "industry_code": "I6511", "province": "51",
             "parent_id": "H", "parent_employees": 100.0, "listed_board": "neeq"},
            {"firm_id": "T", "industry_code": "C3953", "province": "23",
             "parent_id": "K", "parent_employees": 100.0, "parent_revenue": 10e6},
            {"firm_id": "U", "industry_code": "A01", "province": "71"},
        ],
        financials=[fin_row(f, 2022) for f in "RSTU"],
        certifications=[
            {"firm_id": "R", "tier": "specialized", "year": 2019},
            {"firm_id": "R", "tier": "specialized", "year": 2022, "event": "renewed"},
            {"firm_id": "R", "tier": "little_giant", "year": 2021},
            {"firm_id": "S", "tier": "little_giant", "year": 2020},
            {"firm_id": "S", "tier": "little_giant", "year": 2021, "event": "revoked"},
            {"firm_id": "T", "tier": "champion", "year": 2023},  # announced in t: unknown
        ],
    )
    return build_features(ds, 2023)


def test_sector_codes_and_flags(firm_frame):
    r, s, t, u = (firm_frame.loc[i] for i in "RSTU")
    assert (r["industry_section"], r["industry_division"], r["industry_group"]) == (
        "C", "C34", "C349")
    assert (r["sector_mic2025"], r["sector_five_foundations"], r["sector_strategic_emerging"],
            r["sector_network_power"]) == (1.0, 0.0, 1.0, 0.0)
    assert (s["sector_five_foundations"], s["sector_network_power"]) == (1.0, 1.0)
    # C3953 falls under the C395 override of C39: no flag
    assert t["sector_mic2025"] == 0.0 and t["industry_group"] == "C395"
    assert pd.isna(u["industry_group"]) and u["industry_division"] == "A01"
    assert u["sector_mic2025"] == 0.0
    for col in ("industry_section", "industry_division", "industry_group"):
        assert str(firm_frame[col].dtype) == "category"
        assert len(firm_frame[col].cat.categories) > 10  # fixed list, not data-derived


def test_region_and_ownership(firm_frame):
    r, s, t, u = (firm_frame.loc[i] for i in "RSTU")
    assert r["province"] == "32" and r["macro_region"] == "east"
    assert s["macro_region"] == "west" and t["macro_region"] == "northeast"
    assert pd.isna(u["macro_region"]) and u["province"] == "71"
    assert r["is_subsidiary"] == 1.0 and u["is_subsidiary"] == 0.0
    assert r["parent_large_group"] == 0.0          # 5000 employees but 100M: not large
    assert s["parent_large_group"] == 0.0          # 100 employees: below whatever the revenue
    assert t["parent_large_group"] == 0.0
    assert u["parent_large_group"] == 0.0          # independent
    assert r["state_share"] == 0.6 and r["state_controlled"] == 1.0
    assert u["state_controlled"] == 0.0
    assert r["listed"] == 1.0 and r["listed_board"] == "star"
    assert s["listed"] == 0.0 and s["listed_board"] == "neeq"


def test_parent_large_group_needs_both_limits():
    ds = make_dataset(
        firms=[
            {"firm_id": "L", "parent_id": "G", "parent_employees": 1000.0,
             "parent_revenue": 400e6},
            {"firm_id": "M", "parent_id": "G", "parent_employees": 5000.0},  # revenue unknown
            {"firm_id": "N", "parent_id": "G", "parent_revenue": 300e6},  # staff unknown
        ],
        financials=[fin_row(f, 2022) for f in "LMN"],
    )
    x = build_features(ds, 2023)
    assert x.loc["L", "parent_large_group"] == 1.0
    assert math.isnan(x.loc["M", "parent_large_group"])
    assert x.loc["N", "parent_large_group"] == 0.0


def test_history(firm_frame):
    r, s, t = (firm_frame.loc[i] for i in "RST")
    assert r["holds_specialized"] == 1.0 and r["holds_little_giant"] == 1.0
    assert r["title_level"] == 3.0
    assert r["years_held_specialized"] == 4.0 and r["years_held_little_giant"] == 2.0
    assert math.isnan(r["years_held_champion"])
    assert r["renewals_passed"] == 1.0 and r["ever_revoked"] == 0.0
    assert r["firm_age"] == 18.0 and r["years_in_niche"] == 11.0
    assert s["holds_little_giant"] == 0.0 and s["ever_revoked"] == 1.0
    assert s["years_held_little_giant"] == 3.0
    assert t["holds_champion"] == 0.0 and math.isnan(t["years_held_champion"])
    assert t["title_level"] == 0.0


def test_unknown_firm_gets_nan_firm_features():
    ds = make_dataset(firms=[{"firm_id": "A"}], financials=[fin_row("A", 2022),
                                                            fin_row("X", 2022)])
    x = build_features(ds, 2023).loc["X"]
    assert math.isnan(x["is_subsidiary"]) and math.isnan(x["firm_age"])
    assert math.isnan(x["sector_mic2025"]) and pd.isna(x["province"])
    assert x["revenue"] == 100e6


# --- pipeline surface -------------------------------------------------------------------

def test_dtypes_and_fixed_categories_match_across_frames(fin_frame, firm_frame):
    cats = {n for n, k in zip(feature_catalogue()["name"], feature_catalogue()["kind"])
            if k == "category"}
    assert cats == {"industry_section", "industry_division", "industry_group", "province",
                    "macro_region", "listed_board", "size_class"}
    for col in fin_frame.columns:
        if col in cats:
            assert fin_frame[col].dtype == firm_frame[col].dtype, col
        else:
            assert fin_frame[col].dtype == np.float64, col


def test_catalogue_complete():
    cat = feature_catalogue()
    assert list(cat["name"]) == feature_names()
    assert cat["name"].is_unique
    assert (cat["meaning"].str.len() > 0).all() and (cat["source"].str.len() > 0).all()
    assert list(cat.columns) == ["name", "group", "pillar", "label_en", "label_zh", "meaning",
                                 "unit", "kind", "source", "criterion"]
    src = cat.set_index("name")["source"]
    assert src["rd_intensity"] == "financials.rd_expense[t-1], financials.revenue[t-1]"
    assert "patents.granted" in src["valid_invention_patents"]
    required = ["revenue", "main_revenue", "employees", "total_assets", "rd_expense",
                "rd_expense_prev", "rd_expense_2y_sum", "rd_expense_2y_avg", "rd_intensity",
                "rd_intensity_prev", "rd_staff_share", "main_share", "revenue_growth_1y",
                "revenue_growth_2y_avg", "main_revenue_growth_1y", "main_revenue_growth_2y_avg",
                "net_profit_growth_2y_avg", "net_margin", "roa", "debt_ratio", "equity_raised_2y",
                "equity_raised_3y", "domestic_share", "domestic_rank", "global_rank",
                "rd_institution_level", "high_tech", "quality_cert", "own_brand", "size_class",
                "is_sme", "main_revenue_3y_avg", "valid_invention_patents", "valid_utility_patents",
                "valid_design_patents", "valid_software_copyrights", "class1_ip", "class2_ip",
                "years_in_niche", "firm_age", "sector_strategic_emerging", "sector_mic2025",
                "sector_five_foundations", "sector_network_power", "holds_specialized",
                "holds_little_giant", "holds_champion", "province"]
    assert not set(required) - set(cat["name"])


def test_asof_transformer_matches_build_features(fin_frame):
    ds = make_dataset(firms=[{"firm_id": "A"}, {"firm_id": "B"}],
                      financials=[fin_row("A", 2021), fin_row("A", 2022, revenue=2e8),
                                  fin_row("B", 2022)])
    keys = pd.DataFrame({"firm_id": ["B", "A", "A"], "year": [2023, 2023, 2022]},
                        index=[10, 11, 12])
    tf = AsOfFeatures(ds).fit(keys)
    out = tf.transform(keys)
    assert list(out.index) == [10, 11, 12]
    assert list(tf.get_feature_names_out()) == list(out.columns)
    assert out.loc[11, "revenue"] == 2e8 and out.loc[12, "revenue"] == 100e6
    pd.testing.assert_series_equal(
        out.loc[10], build_features(ds, 2023).loc["B"], check_names=False)


def test_empty_firm_list_gives_empty_frame_with_all_columns():
    ds = make_dataset(firms=[{"firm_id": "A"}], financials=[fin_row("A", 2022)])
    empty = build_features(ds, 2023, firm_ids=[])
    assert empty.shape == (0, len(feature_names()))
    out = AsOfFeatures(ds).fit(pd.DataFrame({"firm_id": [], "year": []})).transform(
        pd.DataFrame({"firm_id": pd.Series([], dtype="str"), "year": pd.Series([], dtype=int)}))
    assert list(out.columns) == feature_names() and len(out) == 0


def test_features_doc_is_generated_from_the_registry(tmp_path):
    from pathlib import Path

    from features.docs import REGENERATE, catalogue_markdown, write_catalogue

    written = write_catalogue(tmp_path / "FEATURES.md").read_text(encoding="utf-8")
    assert written == catalogue_markdown() + "\n"
    docs = Path(__file__).resolve().parents[2] / "docs" / "FEATURES.md"
    assert docs.read_text(encoding="utf-8") == written, (
        f"docs/FEATURES.md is stale: run {REGENERATE}")
