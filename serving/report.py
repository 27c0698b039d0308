"""The audit report: one self-contained HTML page (images embedded as base64 PNG, inline CSS,
no external resources) that opens from disk anywhere.

Sections: MERICS-style summary (how many selections fall short, by category, province and
ownership), the check against truth where known, per tier the global SHAP plots (beeswarm,
pillars, dependence on threshold criteria with the official thresholds), the top anomalies
with waterfall plots and reasons, the disparity of selections against merit by province and
ownership, and the overlooked candidates.
"""

from __future__ import annotations

import base64
import html
import io
import threading
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from features.domain import TIER_NAMES
from features.pipeline import feature_label
from models.audit import FLAG_COLUMNS, disparity
from models.audit_flags import FLAG_LABELS, SHORTFALL_FLAGS
from models.explain import PILLARS, SHAP_AXIS, explanation, pillar_importance, use_cjk_fallback
from models.reasons import display_names, rulebook_thresholds

THRESHOLD_FEATURES = ("rd_intensity", "main_share", "debt_ratio", "class1_ip")
TOP_ANOMALIES = 5
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC",sans-serif;
margin:0 auto;max-width:1180px;padding:1.2em 2em;color:#1d2330;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.1em}h2{border-bottom:2px solid #c8102e;padding-bottom:.2em;
margin-top:2em}h3{margin-top:1.4em}table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #d5d9e0;padding:.25em .55em;text-align:right;vertical-align:top}
th{background:#eef1f5}td.text,th.text{text-align:left}img{max-width:100%;height:auto}
.note{color:#555;font-size:.9em}.card{border:1px solid #d5d9e0;border-radius:6px;
padding:.6em 1em;margin:1em 0;background:#fafbfc}.flags{color:#c8102e;font-weight:600}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.contents{border:1px solid #d5d9e0;border-radius:6px;padding:.4em 1em;display:inline-block}
.contents ul{margin:.3em 0;padding-left:1.2em}
"""


def _png(fig: plt.Figure, dpi: int = 80) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, text_columns=(), floats: str = "{:.3f}") -> str:
    head = "".join(f'<th class="{"text" if c in text_columns else ""}">{html.escape(str(c))}</th>'
                   for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row):
            if isinstance(value, (float, np.floating)):
                text = "" if np.isnan(value) else floats.format(value)
            elif isinstance(value, (int, np.integer)):
                text = str(value) if column == "year" else f"{value:,}"
            else:
                text = str(value)
            cls = ' class="text"' if column in text_columns else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _province_label(code: str) -> str:
    name = display_names("province").get(str(code))
    return f"{code} {name}" if name else str(code)


# ---------------------------------------------------------------------------------------
# Summary tables

def shortfall_summary(anomalies: pd.DataFrame) -> pd.DataFrame:
    """Per tier (and all tiers): certified firm-years, how many fall short, and each flag."""
    def one(part: pd.DataFrame, name: str) -> dict:
        row = {"tier": name, "certified": len(part), "falls short": int(part["falls_short"].sum()),
               "share falling short": float(part["falls_short"].mean()) if len(part) else np.nan}
        row.update({FLAG_LABELS[f]: int(part[f].sum()) for f in FLAG_COLUMNS})
        return row

    rows = [one(part, tier) for tier, part in anomalies.groupby("tier", sort=False)]
    rows.append(one(anomalies, "all tiers"))
    return pd.DataFrame(rows)


def shortfall_by(anomalies: pd.DataFrame, column: str) -> pd.DataFrame:
    """Certified firm-years and the share falling short, by province or ownership."""
    table = anomalies.groupby(column).agg(
        certified=("falls_short", "size"), falls_short=("falls_short", "sum"),
        **{FLAG_LABELS[f]: (f, "sum") for f in SHORTFALL_FLAGS}).reset_index()
    table = table.rename(columns={"falls_short": "falls short"})
    table.insert(3, "share falling short", table["falls short"] / table["certified"])
    if column == "province":
        table[column] = table[column].map(_province_label)
    return table.sort_values("certified", ascending=False, ignore_index=True)


# ---------------------------------------------------------------------------------------
# Plots

def _rows_with_both(audit) -> pd.Index:
    return audit.contributions_full.index.intersection(audit.contributions_merit.index)


def beeswarm(audit, max_display: int = 15) -> str:
    import shap

    contributions = audit.contributions_full
    shap.plots.beeswarm(explanation(contributions, audit.X), max_display=max_display,
                        show=False, plot_size=(9.5, 6.5))
    fig = plt.gcf()
    fig.axes[0].set_xlabel(SHAP_AXIS)
    fig.suptitle(f"Full model: SHAP values (log-odds), {len(contributions):,} firm-years")
    return _png(fig)


def pillar_chart(audit) -> str:
    rows = _rows_with_both(audit)
    full = pillar_importance(audit.contributions_full.loc[rows]).set_index("pillar")
    merit = pillar_importance(audit.contributions_merit.loc[rows]).set_index("pillar")
    order = [p for p in PILLARS if p in full.index or p in merit.index][::-1]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    y = np.arange(len(order))
    ax.barh(y + 0.2, full["share"].reindex(order).fillna(0), height=0.4, label="full model")
    ax.barh(y - 0.2, merit["share"].reindex(order).fillna(0), height=0.4, label="merit model")
    # Chinese pillar names need a CJK font; without one the axis shows the English part.
    chinese = use_cjk_fallback()
    ax.set_yticks(y, [PILLARS[p] if chinese else
                      PILLARS[p].encode("ascii", "ignore").decode().replace("()", "").strip()
                      for p in order])
    ax.set(xlabel="Share of mean |pillar SHAP| (pillar = summed SHAP of its features)",
           title="What the models rest on, by pillar")
    ax.legend()
    fig.tight_layout()
    return _png(fig)


def _bars(rulebook, feature: str) -> list[tuple[float, str]]:
    """Official thresholds (hard criteria) of `rulebook`, else its score-band edges."""
    lines = [(t, f"{'≥' if op.startswith('>') else '≤'} {t:g}"
              + (f" ({label})" if label else ""))
             for t, op, label in rulebook_thresholds(rulebook, feature)]
    if lines or rulebook.score is None:
        return lines
    return [(b, f"score band {b:g}") for item in rulebook.score.items for table in item.inputs
            if table.feature == feature for b in table.bounds]


def _newest_rulebook(audit):
    """The tier's rulebook in force for the newest audited year, and that year."""
    from features.rules import rulebook_in_force

    year = int(audit.certified["year"].max())
    return rulebook_in_force(audit.tier, year), year


def dependence_plots(audit) -> str:
    features = [f for f in THRESHOLD_FEATURES if f in audit.contributions_full.columns]
    fig, axes = plt.subplots(1, len(features), figsize=(4.1 * len(features), 3.6), squeeze=False)
    contributions, X = audit.contributions_full, audit.X
    certified = contributions.index.isin(audit.certified.index)
    rulebook, year = _newest_rulebook(audit)
    for ax, feature in zip(axes[0], features):
        x = pd.to_numeric(X.loc[contributions.index, feature], errors="coerce").to_numpy(float)
        s = contributions[feature].to_numpy(float)
        ok = ~np.isnan(x)
        if ok.any():
            lo, hi = np.nanpercentile(x[ok], [1, 99])
            ok &= (x >= lo) & (x <= hi)
        ax.scatter(x[ok & ~certified], s[ok & ~certified], s=6, alpha=0.4, color="#7f8c9d",
                   label="candidates (sample)")
        ax.scatter(x[ok & certified], s[ok & certified], s=8, alpha=0.6, color="#c8102e",
                   label="certified")
        for k, (threshold, label) in enumerate(_bars(rulebook, feature)):
            ax.axvline(threshold, color="#1f5fbf", linestyle="--", linewidth=1.2)
            ax.annotate(label, (threshold, 0.97 - 0.09 * k), xycoords=("data", "axes fraction"),
                        fontsize=7, color="#1f5fbf", rotation=0, ha="left", va="top")
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set(xlabel=feature_label(feature), ylabel="SHAP value (log-odds)")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Dependence on threshold criteria (dashed: thresholds of {rulebook.id}, "
                 f"in force for {year})")
    fig.tight_layout()
    return _png(fig)


_PLOT_LOCK = threading.Lock()  # pyplot keeps global state; the API draws from threads


def waterfall_png(contributions: pd.DataFrame, X: pd.DataFrame, max_display: int = 10,
                  dpi: int = 72) -> bytes:
    """PNG of the SHAP waterfall of the first row of `contributions` (features by their
    labels, values of `X`): the audit's cards, the firm page and the API draw it alike."""
    import shap

    use_cjk_fallback()
    with _PLOT_LOCK:
        plt.figure()
        shap.plots.waterfall(explanation(contributions.iloc[:1], X)[0],
                             max_display=max_display, show=False)
        fig = plt.gcf()
        fig.set_size_inches(7.5, 4.6)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
    return buffer.getvalue()


def waterfall(audit, row: int) -> str:
    png = waterfall_png(audit.contributions_full.loc[[row]], audit.X)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'



def disparity_plot(audit) -> str:
    by_owner = disparity(audit.candidates, "ownership")
    by_province = disparity(audit.candidates, "province")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(len(by_owner))
    left.bar(x - 0.2, by_owner["observed"], width=0.4, label="observed selections")
    left.bar(x + 0.2, by_owner["expected"], width=0.4, label="expected from merit")
    left.set_xticks(x, by_owner["group"])
    left.set(title="By ownership", ylabel="selections")
    left.legend(fontsize=8)
    right.scatter(by_province["expected"], by_province["observed"], color="#c8102e")
    top = float(max(by_province["expected"].max(), by_province["observed"].max(), 1)) * 1.05
    right.plot([0, top], [0, top], color="grey", linestyle=":")
    outliers = by_province["z"].abs().sort_values(ascending=False).index[:6]
    for r in by_province.loc[outliers].itertuples():
        right.annotate(_province_label(r.group), (r.expected, r.observed), fontsize=7)
    right.set(title="By province (dotted: observed = expected)", xlabel="expected from merit",
              ylabel="observed selections")
    fig.tight_layout()
    return _png(fig)


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
             dependence_plots(audit), f"<h3>Top {top_n} anomalies</h3>"]
    for row, r in cert.head(top_n).iterrows():
        flags = ", ".join(FLAG_LABELS[f] for f in FLAG_COLUMNS if r[f]) or "none"
        parts.append(
            f'<div class="card"><b>{html.escape(_named(r.firm_id, names))}</b>, {r.year}: '
            f'anomaly score '
            f'{r.anomaly_score:.3f}; merit rank {r.merit_rank:,.0f} of {r.candidates:,.0f} for '
            f'{r.quota:,.0f} places; full-model probability {r.full_probability:.3f}'
            f'<br><span class="flags">Flags: {html.escape(flags)}</span>'
            f"<br>{html.escape(r.reasons or '')}"
            f"<br><b>Pushed towards selection:</b> {html.escape(r.reasons_for or '')}"
            f"<br><b>Short on merit:</b> {html.escape(r.reasons_against or '')}"
            f"<br>{waterfall(audit, row)}</div>")
    by_owner = disparity(audit.candidates, "ownership")
    by_province = disparity(audit.candidates, "province")
    by_province["group"] = by_province["group"].map(_province_label)
    parts += ["<h3>Disparity: selections against predicted merit</h3>",
              ('<p class="note">Expected = merit-model probabilities of every candidate, scaled '
               "so that each year's expectations add up to that year's selections. A ratio "
               "above 1 means more selections than merit predicts; z = (observed - expected) / "
               "sqrt(expected).</p>"), disparity_plot(audit),
              '<div class="grid"><div>', _table(by_owner, ("group",), "{:.2f}"), "</div><div>",
              _table(by_province, ("group",), "{:.2f}"), "</div></div>"]
    return parts


def _title(audits: dict, anomalies: pd.DataFrame) -> str:
    """The report's title from its data: tiers and years audited."""
    tiers = ", ".join(TIER_NAMES[t][0] for t in audits)
    years = anomalies["year"]
    span = f"{years.min()}–{years.max()}" if len(years) else ""
    return f"Selection audit: {tiers}, {span}"


def _contents(audits: dict, evaluation, overlooked: pd.DataFrame) -> str:
    """Links to the report's sections."""
    entries = [("summary", "Summary")]
    if evaluation is not None and len(evaluation):
        entries.append(("check", "Check against the known selection channels"))
    entries += [(t, TIER_NAMES[t][0]) for t in audits]
    if len(overlooked):
        entries.append(("overlooked", "Overlooked candidates"))
    items = "".join(f'<li><a href="#{a}">{html.escape(label)}</a></li>' for a, label in entries)
    return f'<nav class="contents"><b>Contents</b><ul>{items}</ul></nav>'


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


def render_report(audits: dict, anomalies: pd.DataFrame, overlooked: pd.DataFrame,
                  evaluation: pd.DataFrame | None, path: str | Path, dataset_name: str = "",
                  skipped: dict | None = None, top_n: int = TOP_ANOMALIES) -> Path:
    """Write the one-page HTML report to `path` and return it.

    audits: tier -> models.audit.TierAudit; anomalies / overlooked: the frames written to
    CSV; evaluation: `training.audit_run.evaluate_against_truth` output or None.
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
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        (f'<p class="note">Generated {stamp}.{source} Every probability is out of fold: no '
         "firm-year was scored by a model trained on its own year.</p>"),
        _contents(audits, evaluation, overlooked),
        '<h2 id="summary">Summary</h2>',
        (f"<p><b>{int(total['falls short']):,} of {int(total['certified']):,} certified "
         f"firm-years ({total['share falling short']:.0%})</b> fall short of the published "
         "criteria in at least one MERICS category: exceeding the SME size, weak performance "
         "(shrinking or loss-making), being a subsidiary of a large group, or failing the "
         "R&amp;D/IP criteria of the rulebook in force in its year, on the data (column "
         "<code>rulebook</code> of anomalies.csv). MERICS found about 1 in 4 in a sample of 44 "
         "robotics Little Giants.</p>"),
        _table(summary, ("tier",), "{:.1%}"),
    ]
    if skipped:
        parts.append('<p class="note">Not audited: ' + html.escape(
            "; ".join(f"{t} ({why})" for t, why in skipped.items())) + "</p>")
    parts += ["<h3>By ownership</h3>",
              _table(shortfall_by(anomalies, "ownership"), ("ownership",), "{:.1%}"),
              "<h3>By province</h3>",
              _table(shortfall_by(anomalies, "province"), ("province",), "{:.1%}")]
    if evaluation is not None and len(evaluation):
        parts += ['<h2 id="check">Check against the known selection channels</h2>',
                  ('<p class="note">The synthetic universe records why each firm was selected. '
                   "Average precision and precision@k (k = number of non-merit selections) of "
                   "each ranking for finding the non-merit selections; the truth was used for "
                   "this table only, never to fit or tune the audit.</p>"),
                  _table(evaluation, ("tier", "method"), "{:.3f}")]
    names = dict(zip(anomalies["firm_id"], anomalies["name"])) if "name" in anomalies else {}
    for audit in audits.values():
        parts += _tier_section(audit, top_n, names)
    if len(overlooked):
        shown = overlooked_once(overlooked).head(15)
        parts += ['<h2 id="overlooked">Overlooked candidates</h2>',
                  (f'<p class="note">{len(overlooked):,} candidate-years ranked within the '
                   "year's number of places on merit but were not selected; the 15 strongest "
                   "firms, each once with every year it was overlooked (the reasons are those "
                   "of its strongest year):</p>"),
                  _table(shown, ("firm_id", "name", "tier", "years", "province", "ownership",
                                 "reasons_for"))]
    parts.append("</body></html>")
    path = Path(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
