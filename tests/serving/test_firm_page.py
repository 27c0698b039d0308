"""`giantwatch explain`: one firm's page, its numbers those of `score`, rendered in Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import tracking_env
from tests.serving.test_score import SCORE_YEAR, trained_store


@pytest.fixture(scope="module")
def page(small_universe, tmp_path_factory):
    """The page of the Little Giant candidate with the highest probability."""
    from serving.score import load_models, score_firms

    home = tmp_path_factory.mktemp("firm-page")
    with tracking_env(trained_store(small_universe, tmp_path_factory)) as uri:
        # Scored in several chunks: the page's reason words must still equal the file's.
        scores, _ = score_firms(small_universe, SCORE_YEAR, models=load_models(),
                                chunk_size=1_500)
        best = scores.loc[scores["p_little_giant"].idxmax()]
        out = home / "firm.html"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        done = subprocess.run([str(Path(sys.executable).parent / "giantwatch"), "explain",
                               "--data", str(small_universe), "--year", str(SCORE_YEAR),
                               "--firm", best["firm_id"], "--out", str(out),
                               "--whatif", "little_giant"],
                              check=False, capture_output=True, text=True, env=env,
                              timeout=600)
        missing = subprocess.run([str(Path(sys.executable).parent / "giantwatch"), "explain",
                                  "--data", str(small_universe), "--year", str(SCORE_YEAR),
                                  "--firm", "NO-SUCH-FIRM", "--out", str(home / "x.html")],
                                 check=False, capture_output=True, text=True, env=env,
                              timeout=600)
    return {"done": done, "missing": missing, "path": out, "best": best, "scores": scores,
            "html": out.read_text(encoding="utf-8") if out.exists() else ""}


def test_the_page_says_what_score_says(page):
    assert page["done"].returncode == 0, page["done"].stderr
    text, best = page["html"], page["best"]
    assert f"{best['name']} ({best['firm_id']})" in text
    assert f"<b>{best['p_little_giant']:.1%}</b> chance of selection; rank 1 of " in text
    assert f"<code>{best['rulebook_little_giant']}</code>: <b>{best['eligible_little_giant']}" \
        in text
    import html as html_module

    assert html_module.escape(best["reasons_little_giant_for"]) in text
    # The checklist has one row per criterion of the rulebook named.
    from features.rules import load_rulebook

    rulebook = load_rulebook(best["rulebook_little_giant"])
    for criterion in rulebook.criteria:
        assert html_module.escape(criterion.name_en) in text
    for gap in str(best["gaps_little_giant"] or "").split(" | "):
        if gap:
            assert html_module.escape(gap.split(": ", 1)[1]) in text


def test_the_page_shows_the_whatif_plan_asked_for(page):
    """`--whatif little_giant` adds that tier's plan: its steps (if any) and where it ends
    against the year's quota line, as `giantwatch whatif` computes it."""
    text = page["html"]
    assert text.count("What it would take (to the year's quota line)") == 1
    assert re.search(r"<p>Target \d+\.\d%: (reached|not reached) \(\d+\.\d%, eligible "
                     r"(pass|fail|unknown)\)\.", text)


def test_an_unknown_firm_is_one_clear_message(page):
    missing = page["missing"]
    assert missing.returncode == 2
    assert "NO-SUCH-FIRM" in missing.stderr and "Traceback" not in missing.stderr


def test_the_page_renders_in_headless_chromium(page, tmp_path):
    from tests.serving.browser import image_widths, layout, open_page

    with open_page(page["path"]) as (view, problems):
        widths = image_widths(view)
        seen = layout(view)
        view.screenshot(path=str(tmp_path / "firm.png"), full_page=True)
    assert len(widths) >= 2 and all(w > 0 for w in widths), widths
    assert not problems, problems
    assert seen["boxes"] > 50 and not seen["overlaps"], seen["overlaps"]
    assert not seen["overflows"], seen["overflows"]
    assert not re.search(r"https?://", page["html"])
    # Every tier states its probability as a percentage (tiny ones as "< 0.1%", escaped).
    chances = re.findall(r"<b>([^<]*)</b> chance of selection", page["html"])
    assert chances and all(re.fullmatch(r"\d{1,3}\.\d%|&lt; 0\.1%", c) for c in chances)
    assert page["html"].count("chance of selection") == len(chances)
    assert pd.notna(page["best"]["p_little_giant"])
