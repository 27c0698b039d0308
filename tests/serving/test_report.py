"""The audit report: self-contained HTML that renders in headless Chromium."""

from __future__ import annotations

import re

import pytest

from models.audit import FLAG_COLUMNS
from serving.report import render_report, shortfall_by, shortfall_summary

TIER = "little_giant"


@pytest.fixture(scope="module")
def report(small_universe, tmp_path_factory):
    """A report of a three-year Little Giant audit (the full audit is tested elsewhere)."""
    import pandas as pd

    from features.contract import load_dataset
    from features.pipeline import stack_panels
    from models.audit import audit_tier
    from training.audit_run import evaluate_against_truth, with_identity

    dataset = load_dataset(small_universe)
    audit = audit_tier(stack_panels(dataset, [2023, 2024, 2025], TIER), TIER, seed=0,
                       sample_size=300)
    anomalies = with_identity(audit.certified.reset_index(drop=True), dataset.firms)
    evaluation = evaluate_against_truth(anomalies,
                                        pd.read_parquet(small_universe / "truth.parquet"))
    path = tmp_path_factory.mktemp("report") / "report.html"
    overlooked = with_identity(audit.overlooked, dataset.firms)
    render_report({TIER: audit}, anomalies, overlooked, evaluation, path,
                  dataset_name="small")
    return {"path": path, "html": path.read_text(encoding="utf-8"), "anomalies": anomalies,
            "audit": audit, "overlooked": overlooked}


def test_report_is_self_contained(report):
    text = report["html"]
    assert text.startswith("<!DOCTYPE html>")
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    # Everything inline: data: URIs, and links only to the page's own sections.
    assert sources and all(s.startswith(("data:", "#")) for s in sources)
    assert not re.search(r"https?://", text)
    images = re.findall(r'<img[^>]*src="([^"]*)"', text)
    assert len(images) >= 3 + 5 + 1  # global plots, top-5 waterfalls, disparity
    assert all(s.startswith("data:image/png;base64,") for s in images)


def test_report_has_the_summary_disparity_and_truth_sections(report):
    text = report["html"]
    for heading in ("Summary", "By ownership", "By province", "Global explanations",
                    "Top anomalies", "By tier and year", "Disparity: selections against predicted merit",
                    "Check against the known selection channels", "Overlooked candidates"):
        assert heading in text
    summary = shortfall_summary(report["anomalies"])
    assert summary.iloc[-1]["certified"] == len(report["anomalies"])
    assert summary.iloc[-1]["falls short"] == report["anomalies"]["falls_short"].sum()
    by_owner = shortfall_by(report["anomalies"], "ownership")
    assert by_owner["certified"].sum() == len(report["anomalies"])
    assert set(by_owner["ownership"]) <= {"state-controlled", "subsidiary", "independent"}
    # The title comes from the data; the contents link every section; overlooked firms once.
    assert "<title>Selection audit: Little Giant, 2023–2025</title>" in text
    for anchor in ("summary", "by-year", "check", "little_giant", "overlooked"):
        assert f'href="#{anchor}"' in text and f'id="{anchor}"' in text
    from serving.report import overlooked_once

    once = overlooked_once(report["overlooked"])
    assert not once.duplicated(["firm_id", "tier"]).any()
    assert once["years"].str.split(", ").str.len().sum() == len(report["overlooked"])
    top = report["anomalies"].sort_values("anomaly_score", ascending=False).iloc[0]
    assert f"{top['name']} ({top['firm_id']})" in text  # the firm's name beside its id
    assert len(FLAG_COLUMNS) == 6


def test_the_summary_counts_failed_criteria_by_year_from_the_anomalies(report):
    """The plain-words summary and the year table say what anomalies.csv holds: each
    criterion named with the number of selections failing it, per tier and year."""
    from serving.report_summary import by_year_table, failed_counts

    anomalies = report["anomalies"]
    table = by_year_table(anomalies)
    assert table["selections"].sum() == len(anomalies)
    assert sorted(table["year"]) == sorted(anomalies["year"].unique())
    counts = failed_counts(anomalies)
    ids = anomalies["failed_criteria"].str.split("; ").explode()
    assert counts["selections"].sum() == (ids.fillna("") != "").sum()
    for row in table.itertuples():
        part = anomalies[anomalies["year"] == row.year]
        assert row._5 == part["falls_short"].sum()  # "fall short"
        for name, count in re.findall(r"([^;]+?) \(([\d,]+)\)", row._8):
            expected = counts[(counts["year"] == row.year) & (counts["name"] == name.strip())]
            assert int(count.replace(",", "")) == int(expected["selections"].iloc[0])
    text = report["html"]
    assert "Little Giant (专精特新“小巨人”企业)</b>:" in text and "Most often failed:" in text
    assert not re.search(r"lg\d\d_", text.split('id="by-year"')[0])  # names, not ids


def test_report_renders_in_headless_chromium(report, tmp_path):
    """At 1,400 px: every image loads, no console error or request, no text overflows or
    overlaps other text, and the year filter shows the strongest cards of one year."""
    from tests.serving.browser import image_widths, layout, open_page

    with open_page(report["path"]) as (page, problems):
        widths = image_widths(page)
        title = page.title()
        seen = layout(page)
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        year = str(report["anomalies"]["year"].max())
        page.select_option("#year-filter", year)
        shown = page.evaluate("Array.from(document.querySelectorAll('.card[data-year]'))"
                              ".filter(c => c.offsetParent !== null).map(c => c.dataset.year)")
        after = layout(page)
    assert len(widths) >= 9
    assert all(w > 0 for w in widths), widths
    assert not problems, problems
    assert title.startswith("Selection audit: Little Giant")
    assert seen["boxes"] > 100 and not seen["overlaps"], seen["overlaps"]
    assert not seen["overflows"], seen["overflows"]
    assert shown and set(shown) == {year}, shown
    assert not after["overlaps"] and not after["overflows"], after


def test_a_tier_with_too_few_selections_says_it_is_not_modelled(report):
    audit, anomalies = report["audit"], report["anomalies"]
    # Three years of a 6,000-firm universe hold fewer selections than the model needs.
    assert audit.channels is None and "fewer than the 200" in audit.fallback
    assert anomalies["p_non_merit"].isna().all()
    assert "Not modelled" in report["html"]


def test_effect_words_read_as_a_sentence_with_the_interval():
    from serving.report_summary import effect_words

    assert effect_words("Jiangsu", "little_giant", 0.18, 0.09, 0.27) == (
        "In Jiangsu, Little Giant selections exceed what merit predicts by 18% "
        "(90% interval 9% to 27%)")
    assert effect_words("Hebei", "specialized", -0.12, -0.2, -0.04) == (
        "In Hebei, Specialized SME selections fall short of what merit predicts by 12% "
        "(90% interval 4% to 20%)")


def _effects(values):
    """Effects frame (group, candidates, excess, low, high), most favoured first."""
    import pandas as pd

    rows = [(f"g{i}", 100, excess, excess - spread, excess + spread)
            for i, (excess, spread) in enumerate(values)]
    return pd.DataFrame(rows, columns=["group", "candidates", "excess", "low", "high"]) \
        .sort_values("excess", ascending=False, ignore_index=True)


@pytest.mark.parametrize("seed", range(5))
def test_effect_sentences_and_the_clear_column_agree_at_the_printed_precision(seed):
    """An effect told in a sentence has an interval clear of 0% as printed, and the
    table's "clear" column says yes for exactly the effects a sentence may tell."""
    from types import SimpleNamespace

    import numpy as np

    from models.audit_channels import AGAINST_MERIT
    from serving.report_summary import effect_summary, effects_table

    rng = np.random.default_rng(seed)
    # Tiny effects (a bounded coefficient at its bound gives +0.0004, interval 1e-5 to 1e-3)
    # beside real ones, both signs.
    values = [(float(rng.choice([1, -1]) * rng.choice([rng.uniform(0, 0.004),
                                                      rng.uniform(0.01, 0.6)])),
               float(rng.uniform(0, 0.02))) for _ in range(8)]
    ownership = _effects(values)
    channels = SimpleNamespace(province_effects=ownership.iloc[:0], ownership_effects=ownership,
                               province_reference=AGAINST_MERIT)
    sentences = effect_summary(SimpleNamespace(channels=channels, tier="little_giant"), most=8)
    table = effects_table(ownership, provinces=False)
    told = set()
    for sentence in sentences:
        group, low, high = re.match(r"Among (\S+) firms, .* \(90% interval (\d+)% to (\d+)%\)",
                                    sentence).groups()
        assert int(low) >= 1 and int(high) >= 1, sentence
        told.add(group)
    assert told == set(table.loc[table["clear"] == "yes", "group"])
