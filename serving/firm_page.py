"""One firm, one page: `giantwatch explain --data DIR --year Y --firm ID [--out FILE.html]`.

Per tier: the probability and the firm's rank among the year's candidates, the checklist of
the rulebook in force (each criterion: the firm's values, pass / fail / unknown, the gap in
its units), the reasons, a SHAP waterfall with human labels, and the title holders of the
same industry division most like it; then the firm's titles and key financials over the
years. Every number comes from the scoring core, so the page says what `score` says.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.domain import TIER_NAMES
from features.financials import rd_intensity
from features.identity import firm_identity
from serving.page import CSS, html_table, percent, png_img
from serving.report_plots import waterfall_png

SIMILAR_FEATURES = ("log_revenue", "rd_intensity", "class1_ip", "employees", "main_share")
SIMILAR_SHOWN = 5


class FirmPageProblem(Exception):
    """The firm cannot be explained as asked (unknown firm, no financials for the year)."""


@dataclass
class TierView:
    tier: str
    rulebook: str
    candidate: bool
    probability: float = float("nan")
    rank: int = 0
    candidates: int = 0
    expected: float = 0.0
    eligible: str = ""
    checklist: pd.DataFrame = field(default_factory=pd.DataFrame)
    reasons_for: str = ""
    reasons_against: str = ""
    waterfall: str = ""
    similar: pd.DataFrame = field(default_factory=pd.DataFrame)
    whatif: pd.DataFrame | None = None  # the what-if plan's steps, when asked for
    whatif_summary: str = ""


@dataclass
class FirmView:
    firm_id: str
    year: int
    identity: dict
    tiers: list[TierView]
    titles: pd.DataFrame
    history: str


def _checklist(verdict, X_row: pd.DataFrame) -> pd.DataFrame:
    """One row per criterion of the assessed rulebook for the one firm of `X_row`."""
    from models.reasons import display_names, template
    from models.values import format_values

    rows = []
    strict = verdict.result.criteria.iloc[0]
    on_data = verdict.result.criteria_on_data.iloc[0]
    for c in verdict.rulebook.criteria:
        values = []
        for name in c.features:
            value = X_row[name].iloc[0] if name in X_row.columns else np.nan
            if pd.isna(value):
                values.append(f"{name.replace('_', ' ')}: not reported")
                continue
            spec = template(name)
            if spec["format"] == "flag":
                shown = "yes" if float(value) >= 0.5 else "no"
            else:
                raw = np.array([value], dtype=object if isinstance(value, str) else float)
                shown = str(format_values(raw, spec["format"], spec.get("decimals", 1),
                                          display_names(name) or None)[0])
            values.append(f"{spec['label']}: {shown}")
        rows.append({"criterion": f"{c.name_en} ({c.name_zh})",
                     "firm's values": "; ".join(values) or "not in the data",
                     "status": str(on_data[c.id]) if str(strict[c.id]) == "unknown"
                     and not c.qualitative else str(strict[c.id]),
                     "gap": verdict.gaps[0].get(c.id, "")})
    return pd.DataFrame(rows)


def _similar(X: pd.DataFrame, identity: pd.DataFrame, firm_id: str, tier: str) -> pd.DataFrame:
    """Holders of a valid `tier` title in the firm's industry division, nearest on a few
    standardised size and innovation measures (the firm's own row excluded)."""
    division = identity.set_index("firm_id")["industry_code"].astype(str).str[:3]
    holders = X.index[(X.get(f"holds_{tier}", pd.Series(0, index=X.index)) == 1).to_numpy()
                      & (division.reindex(X.index) == division.get(firm_id, "")).to_numpy()]
    holders = holders.drop(firm_id, errors="ignore")
    if not len(holders):
        return pd.DataFrame()
    columns = [c for c in SIMILAR_FEATURES if c in X.columns]
    values = X[columns].astype(float)
    scale = values.std().replace(0, 1.0)
    gap = ((values.loc[holders] - values.loc[firm_id]) / scale).abs().fillna(3.0)
    nearest = gap.mean(axis=1).sort_values(kind="stable").index[:SIMILAR_SHOWN]
    named = identity.set_index("firm_id").reindex(nearest)
    return pd.DataFrame({"firm_id": nearest, "name": named["name"].to_numpy(),
                         "province": named["province_en"].to_numpy(),
                         "industry_code": named["industry_code"].to_numpy()})


def _history(dataset, firm_id: str, year: int) -> str:
    """Revenue and R&D intensity over the fiscal years before `year`, as a small chart."""
    import matplotlib.pyplot as plt

    fin = dataset.financials
    own = fin[(fin["firm_id"] == firm_id) & (fin["year"] < year)].sort_values("year")
    fig, left = plt.subplots(figsize=(7.5, 2.8))
    if len(own):
        left.bar(own["year"], own["revenue"] / 1e6, color="#9db4d6", label="revenue (M CNY)")
        right = left.twinx()
        share = rd_intensity(own["rd_expense"], own["revenue"])  # the feature's definition
        right.plot(own["year"], share * 100, color="#c8102e", marker="o",
                   label="R&D intensity (%)")
        right.set_ylabel("R&D intensity (%)")
        left.set_xticks(own["year"])
    left.set(ylabel="revenue (M CNY)", title="Revenue and R&D intensity by fiscal year")
    fig.tight_layout()
    return png_img(fig)


def explain_firm(dataset, year: int, firm_id: str, models: dict, rulebooks: dict,
                 whatif: tuple[str, ...] = ()) -> FirmView:
    """Everything the firm page shows (see the module docstring). `models`: tier ->
    RegisteredModel; `rulebooks`: tier -> Rulebook; `whatif`: tiers whose what-if plan
    (models.whatif, to the year's quota line) the page shows."""
    from features.pipeline import build_features
    from models.scoring import score_frame
    from serving.output import candidate_ranks
    from serving.partitions import scored_firm_ids

    year = int(year)
    if not (dataset.firms["firm_id"] == firm_id).any():
        raise FirmPageProblem(f"firm {firm_id!r} is not in the firms table")
    scored_ids = scored_firm_ids(dataset, year)
    if firm_id not in set(scored_ids):
        raise FirmPageProblem(f"firm {firm_id!r} has no financials for fiscal year {year - 1}, "
                              f"so it cannot be explained as of {year}")
    # One feature frame of every firm of the year: the year's probabilities and ranks (as
    # `score` computes them), the firm's own scoring with the places its reasons quote, and
    # the similar title holders all read it.
    X_all = build_features(dataset, year, firm_ids=scored_ids)
    tier_models = {t: m.model for t, m in models.items()}
    everyone = score_frame(X_all, year, tier_models, rulebooks, reasons=0)
    at = int(np.flatnonzero(X_all.index == firm_id)[0])
    scored = score_frame(X_all.iloc[[at]], year, tier_models, rulebooks, reasons=5,
                         population=X_all)
    scored.X = X_all.iloc[[at]]
    identity = firm_identity(dataset.firms, scored_ids).assign(firm_id=scored_ids)
    views = []
    for tier, tier_score in scored.tiers.items():
        view = TierView(tier, tier_score.rulebook.id, bool(tier_score.candidates[0]))
        if view.candidate:
            # Probability and rank from the year's run over every firm, as `score` writes it.
            p = pd.Series(everyone.tiers[tier].probability)
            view.probability = float(p.iloc[at])
            view.rank = int(candidate_ranks(p.to_numpy())[at])
            view.candidates, view.expected = int(p.notna().sum()), float(p.sum())
            view.eligible = str(tier_score.assessment.eligible.iloc[0])
            view.checklist = _checklist(tier_score.assessment, scored.X)
            view.reasons_for = str(tier_score.reasons["reasons_for"].iloc[0])
            view.reasons_against = str(tier_score.reasons["reasons_against"].iloc[0])
            png = waterfall_png(tier_score.contributions, scored.X, max_display=12)
            view.waterfall = base64.b64encode(png).decode("ascii")
            view.similar = _similar(X_all, identity, firm_id, tier)
            if tier in whatif:
                from models.whatif import quota_probability, whatif_plan
                from serving.whatif_run import plan_summary, plan_table

                plan = whatif_plan(dataset, firm_id, year, tier, models[tier].model,
                                   rulebooks[tier], quota_probability(p.to_numpy(float)))
                view.whatif, view.whatif_summary = plan_table(plan), plan_summary(plan)
        views.append(view)
    certs = dataset.certifications
    titles = certs[certs["firm_id"] == firm_id].sort_values(["year", "tier"])
    titles = titles[titles["year"] < year][["year", "tier", "event"]]
    first = firm_identity(dataset.firms, [firm_id]).iloc[0].to_dict()
    return FirmView(firm_id, year, first, views, titles.reset_index(drop=True),
                    _history(dataset, firm_id, year))


def render_firm_page(view: FirmView) -> str:
    """The firm page as one self-contained HTML document."""
    who = view.identity
    name = who.get("name") or view.firm_id
    heading = f"{name} ({view.firm_id})"
    place = ", ".join(str(v) for v in (who.get("province_en"), who.get("province_zh"),
                                        who.get("industry_code")) if v)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             '<link rel="icon" href="data:,">',
             f"<title>{html.escape(heading)}, as of {view.year}</title>",
             f"<style>{CSS}</style></head><body>",
             f"<h1>{html.escape(heading)}</h1>",
             (f'<p class="note">{html.escape(place)}. As of {view.year}: features use data '
             f"known by the end of {view.year - 1}.</p>")]
    for tier in view.tiers:
        english, chinese = TIER_NAMES[tier.tier]
        parts.append(f'<h2 id="{tier.tier}">{html.escape(english)} '
                     f"({html.escape(chinese)})</h2>")
        if not tier.candidate:
            parts.append("<p>Not a candidate this year: it holds a valid title that excludes "
                         "it, or was founded in the as-of year.</p>")
            continue
        parts += [
            (f"<p><b>{html.escape(percent(tier.probability))}</b> chance of selection; rank "
             f"{tier.rank:,} of "
             f"{tier.candidates:,} candidates (about {tier.expected:,.0f} selections expected "
             f"this year). Eligible under <code>{html.escape(tier.rulebook)}</code>: "
             f"<b>{html.escape(tier.eligible)}</b>.</p>"),
            (f"<p><b>For:</b> {html.escape(tier.reasons_for)}<br>"
            f"<b>Against:</b> {html.escape(tier.reasons_against)}</p>"),
            f"<h3>Checklist: {html.escape(tier.rulebook)}</h3>",
            html_table(tier.checklist, ("criterion", "firm's values", "status", "gap")),
            "<h3>What moved the probability</h3>",
            f'<img alt="SHAP waterfall" src="data:image/png;base64,{tier.waterfall}">',
        ]
        if tier.whatif is not None:
            parts += ["<h3>What it would take (to the year's quota line)</h3>",
                      html_table(tier.whatif, ("change", "clears", "eligible after"))
                      if len(tier.whatif) else "<p>No change of its inputs helps.</p>",
                      f"<p>{html.escape(tier.whatif_summary)}</p>"]
        if len(tier.similar):
            parts += ["<h3>Title holders of the same industry most like it</h3>",
                      html_table(tier.similar, tuple(tier.similar.columns))]
    parts += ["<h2>History</h2>",
              html_table(view.titles, ("tier", "event")) if len(view.titles)
              else "<p>No titles before this year.</p>",
              view.history, "</body></html>"]
    return "\n".join(parts)


def write_firm_page(data_dir, year: int, firm_id: str, out_file, model_alias: str = "production",
                    rulebook: str | None = None, whatif: tuple[str, ...] = ()) -> Path:
    """Explain `firm_id` as of `year` with the registered models and write the page (with
    the what-if plans of the tiers in `whatif`)."""
    from features.atomic import atomic_file
    from features.contract import load_dataset
    from serving.score import load_models, rulebooks_for

    models = load_models(model_alias)
    rulebooks = rulebooks_for(rulebook, year, tuple(models))
    view = explain_firm(load_dataset(data_dir), year, firm_id, models, rulebooks, whatif)
    out_file = Path(out_file)
    with atomic_file(out_file) as tmp:
        tmp.write_text(render_firm_page(view), encoding="utf-8")
    return out_file
