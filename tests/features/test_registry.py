"""The feature registry: built from the listed builder modules, complete on a bare import,
in the model's column order, with a pillar and English and Chinese labels per feature."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from features import catalogue
from features.labels import feature_catalogue, feature_label, feature_labels
from features.pipeline import (
    FEATURE_PIPELINE_VERSION,
    feature_names,
    pipeline_version,
    version_sources,
)

ROOT = Path(__file__).resolve().parents[2]

# Registered feature names in the order of pipeline 1.1.0 (the model's column order).
ORDER_1_1 = [
    "revenue", "main_revenue", "employees", "total_assets", "net_profit", "rd_expense",
    "rd_expense_prev", "domestic_share", "domestic_rank", "global_rank", "high_tech",
    "quality_cert", "own_brand", "log_revenue", "log_total_assets", "log_employees",
    "size_class", "is_sme", "revenue_growth_1y", "revenue_growth_2y", "revenue_growth_3y",
    "revenue_growth_2y_avg", "main_revenue_growth_1y", "main_revenue_growth_2y",
    "main_revenue_growth_3y", "main_revenue_growth_2y_avg", "net_profit_growth_1y",
    "net_profit_growth_2y_avg", "employees_growth_1y", "rd_intensity", "rd_intensity_prev",
    "rd_intensity_2y_min", "rd_expense_2y_sum", "rd_expense_2y_avg", "rd_expense_3y_sum",
    "rd_staff_share", "rd_institution_level", "main_share", "net_margin", "roa", "debt_ratio",
    "export_share", "subsidies_to_revenue", "equity_raised_2y", "equity_raised_3y",
    "financial_years_known", "holds_innovative", "holds_specialized", "holds_little_giant",
    "holds_champion", "title_level", "years_held_specialized", "years_held_little_giant",
    "years_held_champion", "renewals_passed", "ever_revoked", "firm_age", "years_in_niche",
    "industry_section", "industry_division", "industry_group", "sector_mic2025",
    "sector_five_foundations", "sector_strategic_emerging", "sector_network_power", "province",
    "macro_region", "is_subsidiary", "parent_employees", "parent_revenue", "parent_large_group",
    "state_share", "state_controlled", "listed", "listed_board", "valid_invention_patents",
    "valid_utility_patents", "valid_design_patents", "valid_software_copyrights", "class1_ip",
    "class2_ip", "valid_ip_total", "patent_stock_depreciated", "invention_share",
    "new_grants_1y", "new_grants_2y", "new_grants_3y", "new_invention_grants_3y",
    "pending_applications", "pending_invention_applications", "lapse_rate", "ipc_diversity",
    "strategic_ipc_share"
]
# Features added since, and the feature each comes right after.
ADDED_AFTER = {"main_revenue_3y_avg": "employees_growth_1y"}

# Pillar of every feature (rule results included) as models.explain.feature_pillar gave it
# in pipeline 1.1.0, plus the added features.
PILLARS_1_1 = {
    **dict.fromkeys([
        "revenue", "employees", "total_assets", "log_revenue", "log_total_assets",
        "log_employees", "size_class", "is_sme", "employees_growth_1y", "equity_raised_2y",
        "equity_raised_3y", "rule_sp22_sme_size", "rule_sp22_revenue_or_equity",
        "rule_lg22_sme_size", "rule_ch22_revenue_or_little_giant"
    ], "size"),
    **dict.fromkeys([
        "main_revenue", "revenue_growth_1y", "revenue_growth_2y", "revenue_growth_3y",
        "revenue_growth_2y_avg", "main_revenue_growth_1y", "main_revenue_growth_2y",
        "main_revenue_growth_3y", "main_revenue_growth_2y_avg", "net_profit_growth_1y",
        "net_profit_growth_2y_avg", "main_share", "years_in_niche", "rule_sp22_years_in_niche",
        "rule_lg22_years_in_niche", "rule_lg22_main_share", "rule_lg22_main_growth",
        "rule_ch22_main_share", "rule_ch22_years_in_niche", "rule_ch22_years_in_niche__on_data"
    ], "specialization"),
    **dict.fromkeys([
        "net_profit", "quality_cert", "own_brand", "net_margin", "roa", "debt_ratio",
        "rule_lg22_certification", "rule_lg22_debt_ratio"
    ], "refinement"),
    **dict.fromkeys([
        "rd_expense", "rd_expense_prev", "high_tech", "rd_intensity", "rd_intensity_prev",
        "rd_intensity_2y_min", "rd_expense_2y_sum", "rd_expense_2y_avg", "rd_expense_3y_sum",
        "rd_staff_share", "rd_institution_level", "valid_invention_patents",
        "valid_utility_patents", "valid_design_patents", "valid_software_copyrights",
        "class1_ip", "class2_ip", "valid_ip_total", "patent_stock_depreciated",
        "invention_share", "new_grants_1y", "new_grants_2y", "new_grants_3y",
        "new_invention_grants_3y", "pending_applications", "pending_invention_applications",
        "lapse_rate", "ipc_diversity", "rule_sp22_rd_expense", "rule_sp22_rd_intensity",
        "rule_lg22_rd_by_revenue_band", "rule_lg22_rd_by_revenue_band__on_data",
        "rule_lg22_rd_institution", "rule_lg22_rd_institution__on_data", "rule_lg22_class1_ip",
        "rule_lg22_class1_ip__on_data"
    ], "innovation"),
    **dict.fromkeys([
        "domestic_share", "domestic_rank", "global_rank", "export_share",
        "rule_lg22_domestic_share", "rule_lg22_own_brand", "rule_ch22_global_rank"
    ], "distinctiveness"),
    **dict.fromkeys([
        "subsidies_to_revenue", "is_subsidiary", "parent_employees", "parent_revenue",
        "parent_large_group", "state_share", "state_controlled", "listed", "listed_board"
    ], "ownership"),
    **dict.fromkeys([
        "financial_years_known", "holds_innovative", "holds_specialized", "holds_little_giant",
        "holds_champion", "title_level", "years_held_specialized", "years_held_little_giant",
        "years_held_champion", "renewals_passed", "ever_revoked", "firm_age",
        "rule_lg22_specialized_title", "rule_lg22_not_champion"
    ], "history"),
    **dict.fromkeys([
        "industry_section", "industry_division", "industry_group", "sector_mic2025",
        "sector_five_foundations", "sector_strategic_emerging", "sector_network_power",
        "strategic_ipc_share", "rule_lg22_priority_sector"
    ], "sector"),
    **dict.fromkeys([
        "province", "macro_region"
    ], "region"),
    **dict.fromkeys([
        "rule_sp22_score_or_direct", "rule_sp22_score_or_direct__on_data", "rule_sp22_score",
        "rule_sp22_score_max_possible", "rule_sp22_eligible", "rule_sp22_eligible_on_data",
        "rule_lg22_eligible", "rule_lg22_eligible_on_data", "rule_ch22_eligible",
        "rule_ch22_eligible_on_data"
    ], "rules"),
}
ADDED_PILLARS = {"main_revenue_3y_avg": "size"}
CJK = re.compile(r"[\u3400-\u9fff]")


def test_registry_is_complete_on_a_bare_import():
    code = "import features.catalogue as c; print(len(c.FEATURES), len(c.NODES))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == [str(len(catalogue.FEATURES)), str(len(catalogue.NODES))]
    assert len(catalogue.FEATURES) == len(ORDER_1_1) + len(ADDED_AFTER)


def test_catalogue_does_not_import_the_pipeline_or_builders():
    code = ("import sys, features.catalogue; "
            "print(sorted(m for m in sys.modules if m.startswith('features.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "['features.catalogue']"


def test_registry_keeps_the_column_order_with_only_the_listed_insertions():
    expected = list(ORDER_1_1)
    for name, after in ADDED_AFTER.items():
        expected.insert(expected.index(after) + 1, name)
    assert list(catalogue.FEATURES) == expected
    assert feature_names()[:len(expected)] == expected
    assert list(feature_catalogue()["name"]) == feature_names()


def test_registry_is_collected_from_the_builder_modules():
    modules = {spec.function.__module__ for spec in catalogue.FEATURES.values()
               if spec.function is not None}
    assert modules == set(catalogue.BUILDER_MODULES)
    assert catalogue.collect() == catalogue.registry()
    with pytest.raises(AttributeError):
        catalogue.NOT_A_REGISTRY  # noqa: B018


def test_every_feature_declares_the_pillar_it_had():
    expected = {**PILLARS_1_1, **ADDED_PILLARS}
    assert {n: s.pillar for n, s in catalogue.FEATURES.items()} == {
        n: expected[n] for n in catalogue.FEATURES}
    # Rule results: the pillar of their criterion, as before.
    cat = feature_catalogue()
    rules = cat[cat["group"] == "rules"]
    assert len(rules) > 20
    for name, pillar in zip(rules["name"], rules["pillar"]):
        if name in expected:
            assert pillar == expected[name], name


def test_pillars_are_the_explanation_pillars():
    from models.explain import PILLARS, feature_pillar

    assert tuple(PILLARS) == catalogue.PILLARS
    assert set(feature_catalogue()["pillar"]) <= set(PILLARS)
    for name, pillar in {**PILLARS_1_1, **ADDED_PILLARS}.items():
        assert feature_pillar(name) == pillar, name


def test_every_feature_has_english_and_chinese_labels():
    cat = feature_catalogue()
    for r in cat.itertuples(index=False):
        assert r.label_en.strip() and r.label_zh.strip(), r.name
        assert CJK.search(r.label_zh), (r.name, r.label_zh)
        assert not CJK.search(r.label_en), (r.name, r.label_en)
    assert cat["label_en"].is_unique and cat["label_zh"].is_unique


def test_feature_label():
    assert feature_label("rd_intensity") == "R&D intensity"
    assert feature_label("rd_intensity", lang="zh") == "研发费用占营业收入比重"
    assert feature_label("revenue") == "revenue (t-1)"
    assert feature_label("province", "zh") == "所在省份"
    assert feature_label("main_revenue_3y_avg", "zh") == "近3年主营业务收入平均"
    assert feature_label("rule_lg22_main_share").startswith("Little Giant 2022: ")
    assert feature_label("not_a_feature") == "not_a_feature"
    assert feature_labels(["roa", "debt_ratio"], "zh") == ["总资产收益率", "资产负债率"]
    with pytest.raises(ValueError):
        feature_label("roa", lang="fr")


def test_specs_reject_unknown_pillars_and_missing_labels():
    with pytest.raises(ValueError, match="pillar"):
        catalogue.passthrough("x", "g", "m", "u", pillar="merit", label_en="x", label_zh="某")
    with pytest.raises(ValueError, match="label"):
        catalogue.passthrough("x", "g", "m", "u", pillar="size", label_en="x", label_zh=" ")


def test_pipeline_version_is_a_pure_function_of_the_sources():
    sources = version_sources()
    assert pipeline_version(sources) == FEATURE_PIPELINE_VERSION
    assert re.fullmatch(r"2\.[0-9a-f]{12}", FEATURE_PIPELINE_VERSION)
    for module in (*catalogue.BUILDER_MODULES, "features.pipeline", "features.rule_features",
                   "features.domain"):
        assert module in sources
    assert any(name.endswith("little_giant_2022.toml") for name in sources)
    changed = dict(sources)
    changed["features.financials"] = changed["features.financials"] + b"\n# edited\n"
    assert pipeline_version(changed) != FEATURE_PIPELINE_VERSION
    assert pipeline_version(dict(sources)) == FEATURE_PIPELINE_VERSION


def test_pipeline_version_follows_a_changed_source(monkeypatch):
    import inspect

    real = inspect.getsource

    def edited(obj):
        text = real(obj)
        return text + "\n# edited\n" if obj.__name__ == "features.history" else text

    monkeypatch.setattr(inspect, "getsource", edited)
    assert pipeline_version(version_sources()) != FEATURE_PIPELINE_VERSION
