"""The audit report: self-contained HTML that renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from models.audit import FLAG_COLUMNS
from serving.report import render_report, shortfall_by, shortfall_summary

TIER = "little_giant"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


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
                    "Top 5 anomalies", "Disparity: selections against predicted merit",
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
    for anchor in ("summary", "check", "little_giant", "overlooked"):
        assert f'href="#{anchor}"' in text and f'id="{anchor}"' in text
    from serving.report import overlooked_once

    once = overlooked_once(report["overlooked"])
    assert not once.duplicated(["firm_id", "tier"]).any()
    assert once["years"].str.split(", ").str.len().sum() == len(report["overlooked"])
    top = report["anomalies"].sort_values("anomaly_score", ascending=False).iloc[0]
    assert f"{top['name']} ({top['firm_id']})" in text  # the firm's name beside its id
    assert len(FLAG_COLUMNS) == 6


def test_report_renders_in_headless_chromium(report):
    from playwright import sync_api

    executable = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    # `make install` installs Debian's chromium; a missing browser is a failure, not a skip.
    assert executable, "chromium is not installed: run `make install` (apt-get install chromium)"
    messages, failures = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
            page.on("requestfailed", lambda r: failures.append(r.url[:80]))
            page.goto(report["path"].resolve().as_uri(), wait_until="load")
            widths = page.evaluate(
                "Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
            title = page.title()
        finally:
            browser.close()
    assert len(widths) >= 9
    assert all(w > 0 for w in widths), widths
    assert not [m for m in messages if m[0] in ("error", "pageerror")], messages
    assert not failures
    assert title.startswith("Selection audit: Little Giant")
