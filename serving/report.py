"""The audit report: one self-contained HTML page (images embedded as base64 PNG, inline CSS,
no external resources) that opens from disk anywhere.

Sections: MERICS-style summary (how many selections fall short, by category, province and
ownership), the check against truth where known, per tier the global SHAP plots (beeswarm,
pillars, dependence on threshold criteria with the official thresholds), the top anomalies
with waterfall plots and reasons, the disparity of selections against merit by province and
ownership (observed against merit, and the non-merit channel's effects with intervals and in
plain words), the renewals at re-review that fail the criteria in force, and the overlooked
candidates.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from features.domain import TIER_NAMES
from models.audit import FLAG_COLUMNS, disparity
from models.audit_channels import AGAINST_LIST_SHARE
from models.audit_flags import FLAG_LABELS
from models.explain import use_cjk_fallback
from models.selection_channels import DECISIVE_Z
from serving.page import CSS, html_table, percent
from serving.report_plots import (
    beeswarm,
    dependence_plots,
    disparity_plot,
    effects_plot,
    pillar_chart,
    waterfall,
)
from serving.report_summary import (
    by_year_table,
    effect_summary,
    effects_table,
    failing_renewals,
    province_label,
    renewal_table,
    shortfall_by,
    shortfall_summary,
    summary_words,
)

TOP_ANOMALIES = 5
TOP_PER_YEAR = 3  # anomaly cards per year, shown by the report's year filter
# The year filter: one select, no library; cards carry their year and whether they are among
# the strongest overall (data-all) or of their year (data-year-top).
YEAR_FILTER_JS = """
function showYear(y){
  document.querySelectorAll('.card[data-year]').forEach(function(c){
    var on = y === 'all' ? c.dataset.all === '1'
                         : (c.dataset.year === y && c.dataset.yearTop === '1');
    c.style.display = on ? '' : 'none';
  });
  document.querySelectorAll('.year-note').forEach(function(n){
    n.textContent = y === 'all' ? n.dataset.all : 'the strongest of ' + y;
  });
}
"""


# ---------------------------------------------------------------------------------------
# Page

def _named(firm_id, names: dict) -> str:
    """'firm name (id)' where the data names the firm, else the id."""
    name = names.get(firm_id)
    return f"{name} ({firm_id})" if isinstance(name, str) and name else str(firm_id)


def _tier_section(audit, top_n: int, names: dict) -> list[str]:
    tier = audit.tier
    cert = audit.certified
    english, chinese = TIER_NAMES[tier]
    parts = [f'<h2 id="{tier}">{html.escape(english)} ({html.escape(chinese)})</h2>',
             f'<p class="note">{len(cert):,} certified firm-years audited; out-of-fold schemes: '
             + ", ".join(f"{f.test_year} {f.scheme.replace('_', ' ')}" for f in audit.folds)
             + ". Merit model features: " + f"{len(audit.merit_features)} (no ownership, state "
             "share, parent group, listing, subsidies, province or region).</p>",
             "<h3>Global explanations</h3>", beeswarm(audit), pillar_chart(audit),
             dependence_plots(audit),
             (f'<h3>Top anomalies: <span class="year-note" data-all="the {top_n} strongest of '
              f'all years">the {top_n} strongest of all years</span></h3>')]
    # cert is sorted by anomaly score: the strongest overall, and the strongest of each year
    # for the year filter (TOP_PER_YEAR).
    overall = set(cert.head(top_n).index)
    of_year = set(cert.groupby("year", sort=False).head(TOP_PER_YEAR).index)
    for row, r in cert[cert.index.isin(overall | of_year)].iterrows():
        flags = ", ".join(FLAG_LABELS[f] for f in FLAG_COLUMNS if r[f]) or "none"
        shown = "" if row in overall else ' style="display:none"'
        parts.append(
            f'<div class="card" data-year="{r.year}" data-all="{int(row in overall)}" '
            f'data-year-top="{int(row in of_year)}"{shown}>'
            f'<b>{html.escape(_named(r.firm_id, names))}</b>, {r.year}: '
            f'{_score_words(r)}; merit rank {r.merit_rank:,.0f} of {r.candidates:,.0f} for '
            f'{r.quota:,.0f} places; full-model probability {percent(r.full_probability)}'
            f'<br><span class="flags">Flags: {html.escape(flags)}</span>'
            f"<br>{html.escape(r.reasons or '')}"
            f"<br><b>Pushed towards selection:</b> {html.escape(r.reasons_for or '')}"
            f"<br><b>Short on merit:</b> {html.escape(r.reasons_against or '')}"
            f"<br>{waterfall(audit, row)}</div>")
    parts += _channel_section(audit)
    by_owner = disparity(audit.candidates, "ownership")
    by_province = disparity(audit.candidates, "province")
    by_province["group"] = by_province["group"].map(province_label)
    parts += ["<h3>Disparity: selections against predicted merit</h3>",
              ('<p class="note">Expected = merit-model probabilities of every candidate, scaled '
               "so that each year's expectations add up to that year's selections. A ratio "
               "above 1 means more selections than merit predicts; z = (observed - expected) / "
               "sqrt(expected).</p>"), disparity_plot(audit),
              '<div class="grid"><div>', html_table(by_owner, ("group",), "{:.2f}"), "</div><div>",
              html_table(by_province, ("group",), "{:.2f}"), "</div></div>"]
    return parts


def _score_words(r) -> str:
    """The card's score, and the posterior where the tier is modelled."""
    words = f"anomaly score {r.anomaly_score:.3f}"
    if pd.notna(r.p_non_merit):
        words += f"; not on merit alone: {percent(r.p_non_merit)}"
    return words


def _channel_section(audit) -> list[str]:
    """How the list was filled: the structure the data chose, the non-merit channel's province
    and ownership effects with intervals, and the clearest effects in words."""
    parts = ["<h3>Merit and non-merit channels</h3>"]
    channels = audit.channels
    if channels is None:
        return parts + [f'<p class="note">Not modelled: {html.escape(audit.fallback)}.</p>']
    structure = {"separate": "two separate channels (a list filled partly by merit, partly "
                             "by favours)",
                 "additive": "one committee whose log-odds add a non-merit bonus, with "
                             f"{percent(channels.model.unexplained_share)} of the selections "
                             "left to favours no feature shows"}
    loglik = ", ".join(f"{k} {v:.4f}" for k, v in channels.heldout_loglik.items())
    evidence = (f"Held-out log-likelihood per candidate, walk-forward: {html.escape(loglik)}; "
                f"Vuong's z {channels.vuong_z:+.2f}")
    if channels.decided:
        choice = (f"The data chose {structure[channels.structure]}. {evidence}, beyond chance "
                  f"(|z| &ge; {DECISIVE_Z}).")
        posterior, effects_from = "that structure's posterior", ""
    else:
        choice = (f"The data do not tell apart {structure['separate']} and "
                  f"{structure['additive']}. {evidence}, within chance (|z| &lt; "
                  f"{DECISIVE_Z}).")
        posterior = "the mean of the two structures' posteriors"
        effects_from = (f"The effects below come from the {channels.structure} structure, "
                        "the better fit. ")
    parts += [
        f'<p class="note">{choice}</p>',
        ('<p class="note">Each selection\'s <code>p_non_merit</code> is the probability that it '
        f"would not have happened on merit alone: {posterior}. It is shown on each anomaly's "
        "card but does not order them (measured on synthetic universes, it finds the "
        "non-merit selections better than the anomaly score on most lists, as well on one and "
        "less well on one).</p>"),
        (f'<p class="note">{effects_from}An effect compares the selections the model expects in '
        "a province (or ownership class) with those it expects when that province's effect is "
        "removed (or the firms are taken as independent), merit unchanged: +18% means 18% "
        "more selections than merit and the other features predict. Intervals: 90%, from "
        "bootstrap refits.</p>")]
    if channels.province_reference == AGAINST_LIST_SHARE:  # a list filled province by province
        parts.append(
            '<p class="note">These lists are filled province by province, each province its '
            "own share of places: a province cannot raise its count, only fill its places "
            "below the merit line. A province's effect here is the selections its own share "
            "of favours no feature shows adds, against the list's average share, read from "
            "the committee with such favours whichever structure the data chose (intervals: "
            "bootstrap reweightings of the candidates).</p>")
    sentences = effect_summary(audit)
    parts.append("<ul>" + "".join(f"<li>{html.escape(t)}.</li>" for t in sentences) + "</ul>"
                 if sentences else '<p class="note">No province or ownership class has an '
                 "effect whose interval excludes zero.</p>")
    tables = [effects_table(channels.ownership_effects, False),
              effects_table(channels.province_effects, True, channels.province_reference)]
    parts += [effects_plot(audit), '<div class="grid"><div>',
              html_table(tables[0], tuple(tables[0].columns.drop("candidates"))),
              "</div><div>",
              html_table(tables[1], tuple(tables[1].columns.drop("candidates"))),
              "</div></div>"]
    return parts


def _renewal_section(renewals: pd.DataFrame) -> list[str]:
    """Renewals at re-review judged by the rulebook in force: counts per tier and year, and
    the renewals failing the most criteria (renewals.csv)."""
    failing = int(renewals["fails_rules_in_force"].sum())
    return [
        '<h2 id="renewals">Renewals that fail the criteria in force</h2>',
        (f"<p><b>{failing:,} of {len(renewals):,} renewals</b> at re-review "
         f"({failing / len(renewals):.0%}) kept a title although the firm fails at least one "
         "criterion of the rulebook in force in the re-review's year on its data for the year "
         "before (the conditions on titles held, such as already holding a Specialized SME "
         "title, are entry conditions and left aside). Every renewal, failing or not, is in "
         "<code>renewals.csv</code>.</p>"),
        html_table(renewal_table(renewals), ("tier", "rulebook in force", "most often failed"),
                   "{:.1%}"),
        "<h3>The renewals failing the most criteria</h3>",
        html_table(failing_renewals(renewals), ("firm id", "name", "tier", "fails", "gaps")),
    ]


def _title(audits: dict, anomalies: pd.DataFrame) -> str:
    """The report's title from its data: tiers and years audited."""
    tiers = ", ".join(TIER_NAMES[t][0] for t in audits)
    years = anomalies["year"]
    span = f"{years.min()}–{years.max()}" if len(years) else ""
    return f"Selection audit: {tiers}, {span}"


def _contents(audits: dict, evaluation, overlooked: pd.DataFrame,
              renewals: pd.DataFrame | None = None) -> str:
    """Links to the report's sections."""
    entries = [("summary", "Summary"), ("by-year", "By tier and year")]
    if evaluation is not None and len(evaluation):
        entries.append(("check", "Check against the known selection channels"))
    entries += [(t, TIER_NAMES[t][0]) for t in audits]
    if renewals is not None and len(renewals):
        entries.append(("renewals", "Renewals that fail the criteria in force"))
    if len(overlooked):
        entries.append(("overlooked", "Overlooked candidates"))
    items = "".join(f'<li><a href="#{a}">{html.escape(label)}</a></li>' for a, label in entries)
    return f'<nav class="contents"><b>Contents</b><ul>{items}</ul></nav>'


def _year_filter(anomalies: pd.DataFrame) -> str:
    """The select that shows the strongest anomaly cards of one year (or of all years)."""
    years = sorted({int(y) for y in anomalies["year"]})
    options = "".join(f'<option value="{y}">{y}</option>' for y in years)
    return ('<p class="filter"><label>Anomalies shown: <select id="year-filter" '
            'onchange="showYear(this.value)"><option value="all">all years</option>'
            f"{options}</select></label></p>")


def overlooked_once(overlooked: pd.DataFrame) -> pd.DataFrame:
    """One row per overlooked firm and tier, strongest first: its best merit probability and
    rank, and every year it was overlooked."""
    best = overlooked.sort_values("merit_probability", ascending=False, kind="stable")
    years = best.groupby(["firm_id", "tier"])["year"].apply(
        lambda y: ", ".join(str(v) for v in sorted(y)))
    first = best.drop_duplicates(["firm_id", "tier"]).set_index(["firm_id", "tier"])
    first = first.assign(years=years.reindex(first.index)).reset_index()
    columns = ["firm_id", "name", "tier", "years", "merit_probability", "merit_rank", "quota",
               "province", "ownership", "reasons_for"]
    return first[[c for c in columns if c in first.columns]]


def _readable(overlooked: pd.DataFrame) -> pd.DataFrame:
    """The overlooked table as a reader sees it: tier and province names, percentages."""
    out = overlooked.assign(
        tier=overlooked["tier"].map(lambda t: TIER_NAMES[t][0]),
        merit_probability=overlooked["merit_probability"].map(percent))
    if "province" in out:
        out["province"] = out["province"].map(province_label)
    return out.rename(columns={"firm_id": "firm id", "merit_probability": "merit probability",
                               "merit_rank": "merit rank", "reasons_for": "strong on merit"})


def render_report(audits: dict, anomalies: pd.DataFrame, overlooked: pd.DataFrame,
                  evaluation: pd.DataFrame | None, path: str | Path, dataset_name: str = "",
                  skipped: dict | None = None, top_n: int = TOP_ANOMALIES,
                  renewals: pd.DataFrame | None = None) -> Path:
    """Write the one-page HTML report to `path` and return it.

    audits: tier -> models.audit.TierAudit; anomalies / overlooked / renewals: the frames
    written to CSV; evaluation: `training.audit_run.evaluate_against_truth` output or None.
    """
    use_cjk_fallback()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = shortfall_summary(anomalies)
    total = summary.iloc[-1]
    title = _title(audits, anomalies)
    source = f" Data: {html.escape(dataset_name)}." if dataset_name else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        '<link rel="icon" href="data:,">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style><script>{YEAR_FILTER_JS}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        (f'<p class="note">Generated {stamp}.{source} Every probability is out of fold: no '
         "firm-year was scored by a model trained on its own year.</p>"),
        _contents(audits, evaluation, overlooked, renewals),
        _year_filter(anomalies),
        '<h2 id="summary">Summary</h2>',
        (f"<p><b>{int(total['falls short']):,} of {int(total['certified']):,} certified "
         f"firm-years ({total['share falling short']:.0%})</b> fall short of the published "
         "criteria in at least one MERICS category: exceeding the SME size, weak performance "
         "(shrinking or loss-making), being a subsidiary of a large group, or failing the "
         "R&amp;D/IP criteria of the rulebook in force in its year, on the data (column "
         "<code>rulebook</code> of anomalies.csv). MERICS found about 1 in 4 in a sample of 44 "
         "robotics Little Giants.</p>"),
        *summary_words(anomalies),
        html_table(summary, ("tier",), "{:.1%}"),
        '<h3 id="by-year">By tier and year</h3>',
        ('<p class="note">Each selection is judged by the rulebook in force in its year; '
         '"fail a criterion" counts selections failing at least one of its criteria on their '
         "data (column <code>failed_criteria</code> of anomalies.csv).</p>"),
        html_table(by_year_table(anomalies), ("tier", "rulebook in force", "most often failed"),
               "{:.1%}"),
    ]
    if skipped:
        parts.append('<p class="note">Not audited: ' + html.escape(
            "; ".join(f"{t} ({why})" for t, why in skipped.items())) + "</p>")
    parts += ["<h3>By ownership</h3>",
              html_table(shortfall_by(anomalies, "ownership"), ("ownership",), "{:.1%}"),
              "<h3>By province</h3>",
              html_table(shortfall_by(anomalies, "province"), ("province",), "{:.1%}")]
    if evaluation is not None and len(evaluation):
        parts += ['<h2 id="check">Check against the known selection channels</h2>',
                  ('<p class="note">The synthetic universe records why each firm was selected. '
                   "Average precision and precision@k (k = number of non-merit selections) of "
                   "each ranking for finding the non-merit selections: audit is the ranking "
                   "(anomaly_score), p_non_merit the two-channel posterior (the kept "
                   "structure's, or the mean of both where the held-out likelihood does not "
                   "tell them apart), separate_posterior and additive_posterior each "
                   "structure's. The truth was used for this table only, never to fit "
                   "or tune the audit.</p>"),
                  html_table(evaluation, ("tier", "method"), "{:.3f}")]
    names = dict(zip(anomalies["firm_id"], anomalies["name"])) if "name" in anomalies else {}
    for audit in audits.values():
        parts += _tier_section(audit, top_n, names)
    if renewals is not None and len(renewals):
        parts += _renewal_section(renewals)
    if len(overlooked):
        shown = overlooked_once(overlooked).head(15)
        parts += ['<h2 id="overlooked">Overlooked candidates</h2>',
                  (f'<p class="note">{len(overlooked):,} candidate-years ranked within the '
                   "year's number of places on merit but were not selected; the 15 strongest "
                   "firms, each once with every year it was overlooked (the reasons are those "
                   "of its strongest year):</p>"),
                  html_table(_readable(shown), ("firm id", "name", "tier", "years", "province",
                                                "ownership", "strong on merit"))]
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
