"""`giantwatch import` end to end: a generated dataset exported the way Chinese users hold
it (Chinese headers, 万元, GB18030/UTF-16, semicolons and tabs, an Excel name-only MIIT list
with names written as lists write them) is imported and scores exactly as the original."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contract import load_dataset
from serving.cli import app
from serving.score import load_models, score_firms
from tests.conftest import tracking_env
from tests.features.export_fixtures import chinese_export
from tests.serving.test_score import SCORE_YEAR, trained_store

LIST = "专精特新名单.xlsx"


@pytest.fixture(scope="module")
def imported(small_universe, tmp_path_factory):
    home = tmp_path_factory.mktemp("import")
    made = chinese_export(small_universe, home / "exports", seed=1)
    result = CliRunner().invoke(app, ["import", "--from", str(home / "exports"), "--out",
                                      str(home / "dataset"), "--lists",
                                      str(home / "exports" / LIST)])
    return made, result, home / "dataset"


def test_import_reads_every_file_maps_headers_and_converts_wan(imported):
    _, result, out = imported
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    err = " ".join(result.stderr.split())
    for text in ("企业名录.csv: GB18030/GBK, comma-separated",
                 "财务数据.csv: UTF-8 with BOM, semicolon-separated",
                 "专利.csv: UTF-16, tab-separated", f"{LIST}:",
                 "营业收入（万元） -> revenue", "成立日期 -> founded_date",
                 "financials.revenue (wan)"):
        assert text in err
    assert sorted(p.name for p in out.iterdir()) == [
        "certifications.parquet", "financials.parquet", "firms.parquet", "match_report.csv",
        "patents.parquet", "rejects.csv"]


def test_every_list_name_matches_its_firm_and_strangers_are_rejected(imported,
                                                                      small_universe):
    made, _, out = imported
    report = pd.read_csv(out / "match_report.csv", encoding="utf-8-sig", dtype={"firm_id": str})
    counts = report["kind"].value_counts()
    assert counts["exact"] == made["variations"][0]
    assert counts["fuzzy"] > 0 and counts["normalised"] > 0
    assert counts["unmatched"] == len(made["strangers"]) and "ambiguous" not in counts
    assert (report["score"][report["kind"] == "fuzzy"] >= 85).all()
    rejects = pd.read_csv(out / "rejects.csv", encoding="utf-8-sig")
    assert len(rejects) == 2 and set(rejects["reason"]) == {"name unmatched"}
    assert all(any(s in r for s in made["strangers"]) for r in rejects["record"])
    original = load_dataset(small_universe).certifications
    again = load_dataset(out).certifications
    key = ["firm_id", "tier", "year", "event"]
    assert (original[key].sort_values(key).reset_index(drop=True)
            .equals(again[key].astype(original[key].dtypes).sort_values(key)
                    .reset_index(drop=True)))


def test_the_imported_dataset_scores_as_the_original(imported, small_universe,
                                                     tmp_path_factory):
    _, _, out = imported
    with tracking_env(trained_store(small_universe, tmp_path_factory)):
        models = load_models()
        before, _ = score_firms(load_dataset(small_universe), SCORE_YEAR, models=models,
                                 reasons=0)
        after, _ = score_firms(load_dataset(out), SCORE_YEAR, models=models, reasons=0)
    assert len(before) > 1000 and before["firm_id"].tolist() == after["firm_id"].tolist()
    for tier in models:
        np.testing.assert_allclose(after[f"p_{tier}"].to_numpy(float),
                                   before[f"p_{tier}"].to_numpy(float), rtol=0, atol=1e-12)
        assert after[f"eligible_{tier}"].fillna("-").equals(before[f"eligible_{tier}"]
                                                            .fillna("-"))


def test_an_export_in_wan_without_the_unit_stops_with_the_option_to_declare_it(
        small_universe, tmp_path):
    chinese_export(small_universe, tmp_path / "exports")
    profile = tmp_path / "mine.toml"  # the user's profile names the bare header in 万元
    fin = tmp_path / "exports" / "财务数据.csv"
    text = fin.read_text(encoding="utf-8-sig")
    header, rest = text.split("\n", 1)
    fin.write_text(header.replace("(万元)", "").replace("（万元）", "") + "\n" + rest,
                   encoding="utf-8-sig")
    runner = CliRunner()
    first = runner.invoke(app, ["import", "--from", str(tmp_path / "exports"), "--out",
                                str(tmp_path / "a")])
    assert first.exit_code == 2 and "--money-unit wan" in " ".join(first.stderr.split())
    assert not (tmp_path / "a").exists()
    profile.write_text('[tables.financials]\nmoney_unit = "wan"\n', encoding="utf-8")
    second = runner.invoke(app, ["import", "--from", str(tmp_path / "exports"), "--out",
                                 str(tmp_path / "b"), "--profile", str(profile)])
    assert second.exit_code == 0, second.stderr
    a = load_dataset(small_universe).financials["revenue"].to_numpy()
    b = load_dataset(tmp_path / "b").financials["revenue"].to_numpy()
    np.testing.assert_allclose(b, a, rtol=1e-12)


@pytest.mark.parametrize("args, message", [
    (["--from", "{tmp}/nowhere"], "no such folder"),
    (["--from", "{tmp}/exports", "--out", "{tmp}/exports"], "must be a new or empty folder"),
    (["--from", "{tmp}/exports", "--profile", "{tmp}/bad.toml"], "not valid TOML"),
    (["--from", "{tmp}/exports", "--lists", "{tmp}/missing.xlsx"], "no such file"),
    (["--from", "{tmp}/exports", "--money-unit", "yen"], "money unit 'yen'"),
    (["--from", "{tmp}/empty"], "firms: no file for it"),
])
def test_import_problems_are_one_message(tmp_path, args, message):
    (tmp_path / "exports").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "exports" / "firms.csv").write_text("firm_id,name\n1,a\n")
    (tmp_path / "bad.toml").write_text("[[[")
    filled = [a.format(tmp=tmp_path) for a in args]
    if "--out" not in filled:
        filled += ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, ["import", *filled])
    assert result.exit_code == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_match_report_columns_are_documented(imported):
    from tests.outputs_doc import documented

    _, _, out = imported
    columns = pd.read_csv(out / "match_report.csv", encoding="utf-8-sig", nrows=1).columns
    assert set(columns) == documented("match_report.csv")
