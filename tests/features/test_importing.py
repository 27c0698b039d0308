"""Name normalisation and matching, USCC check characters, import profiles and headers."""

from __future__ import annotations

import pandas as pd
import pytest

from features.importing.names import match_names, normalise_name, uscc_is_valid
from features.importing.profile import ImportProblem, header_key, load_profile


@pytest.mark.parametrize("name, key", [
    ("浙江精工机器人有限公司", "精工机器人"),
    ("浙江省 精工机器人股份有限公司", "精工机器人"),
    ("精工机器人（杭州）有限责任公司", "精工机器人杭州"),
    ("精工机器人(杭州)有限公司", "精工机器人杭州"),
    ("杭州市精工机器人集团有限公司", "精工机器人"),
    ("ＡＢＣ精工有限公司", "abc精工"),
    ("Shenzhen Soft Co., Ltd.", "shenzhensoft"),
])
def test_normalise_name(name, key):
    assert normalise_name(name) == key


def test_uscc_check_character():
    # Published codes (GB 32100-2015 examples and real registrations).
    for code in ("91350100M000100Y43", "911100007109288314"):
        assert uscc_is_valid(code)
        assert not uscc_is_valid(code[:-1] + ("0" if code[-1] != "0" else "1"))
    assert not uscc_is_valid("00001") and not uscc_is_valid("91350100M000100YI3")


def test_match_names_exact_normalised_fuzzy_ambiguous_unmatched():
    firms = pd.DataFrame({
        "firm_id": ["a", "b", "c", "d", "e"],
        "name": ["浙江精工机器人有限公司", "江苏光恒精工装备有限公司", "广东利利新材料化工有限公司",
                 "上海信通科技有限公司", "北京信通科技有限公司"],
        "province": ["33", "32", "44", "31", "11"]})
    names = pd.Series(["浙江精工机器人有限公司", "光恒精工装备股份有限公司",
                       "广东利利新型材料化工有限公司", "信通科技有限公司", "信通科技有限公司",
                       "不存在的公司"])
    provinces = pd.Series([None, None, None, None, "31", None])
    matched = match_names(names, provinces, firms)
    assert matched["kind"].tolist() == ["exact", "normalised", "fuzzy", "ambiguous",
                                        "normalised", "unmatched"]
    assert matched["firm_id"].tolist()[:3] == ["a", "b", "c"]
    assert matched["firm_id"].iloc[4] == "d" and pd.isna(matched["firm_id"].iloc[3])
    assert 85 <= matched["score"].iloc[2] < 100


@pytest.mark.parametrize("header, key, unit", [
    ("营业收入(万元)", "营业收入", "wan"), ("营业收入（千元）", "营业收入", "thousand"),
    (" Revenue [CNY] ", "revenue", "yuan"), ("员工人数（人）", "员工人数（人）", None),
])
def test_header_key_takes_the_unit_out(header, key, unit):
    assert header_key(header) == (key, unit)


def test_a_user_profile_comes_first(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[tables.financials]\nmoney_unit = "thousand"\nfiles = ["年报"]\n'
                    '[tables.financials.columns]\nrevenue = ["主营收入合计"]\n'
                    'main_revenue = ["营业收入"]\n', encoding="utf-8")
    profile = load_profile(mine)
    assert profile.money_unit["financials"] == "thousand"
    assert profile.money_unit["firms"] == "yuan"
    assert profile.files["financials"][0] == "年报"
    assert profile.columns["financials"]["主营收入合计"] == "revenue"
    assert profile.columns["financials"]["营业收入"] == "main_revenue"  # the user's wins
    assert load_profile(None, money_unit="wan").money_unit["firms"] == "wan"


def test_a_broken_profile_is_one_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[tables.firms.columns]\nname = 3\n', encoding="utf-8")
    with pytest.raises(ImportProblem, match="lists of text"):
        load_profile(bad)
    with pytest.raises(ImportProblem, match="cannot be read"):
        load_profile(tmp_path / "missing.toml")
