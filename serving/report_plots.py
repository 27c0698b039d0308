"""The audit report's plots, drawn with shap and matplotlib and embedded as PNG: beeswarm,
pillar importance, dependence on the threshold criteria, the disparity of selections
against merit, and the waterfall of one firm (shared with the firm page and the API)."""

from __future__ import annotations

import base64
import io
import threading

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from features.labels import feature_label
from models.audit import disparity
from models.audit_channels import AGAINST_MERIT
from models.explain import PILLARS, SHAP_AXIS, explanation, pillar_importance, use_cjk_fallback
from models.reasons import rulebook_thresholds
from serving.page import png_img
from serving.report_summary import AGAINST_WORDS, province_label

THRESHOLD_FEATURES = ("rd_intensity", "main_share", "debt_ratio", "class1_ip")

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
    return png_img(fig)


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
    return png_img(fig)


def _bars(rulebook, feature: str) -> list[tuple[float, str]]:
    """Official thresholds (hard criteria) of `rulebook` as (value, legend label in the
    feature's display format: "≥ 3% (revenue >= 100M CNY)"), else its score-band edges."""
    from models.reason_text import template
    from models.values import format_values

    fmt = template(feature)["format"]
    fmt = "number" if fmt in ("flag", "category") else fmt
    found = rulebook_thresholds(rulebook, feature)
    if found:
        shown = format_values(np.array([t for t, _, _ in found]), fmt, bar=True)
        return [(t, f"{'≥' if op.startswith('>') else '≤'} {text}" + (f" ({label})" if label
                                                                        else ""))
                for (t, op, label), text in zip(found, shown)]
    if rulebook.score is None:
        return []
    bounds = [b for item in rulebook.score.items for table in item.inputs
              if table.feature == feature for b in table.bounds]
    shown = format_values(np.array(bounds, dtype=float), fmt, bar=True) if bounds else []
    return [(b, f"score band edge {text}") for b, text in zip(bounds, shown)]


def _newest_rulebook(audit):
    """The tier's rulebook in force for the newest audited year, and that year."""
    from features.rules import rulebook_in_force

    year = int(audit.certified["year"].max())
    return rulebook_in_force(audit.tier, year), year


def dependence_plots(audit) -> str:
    """SHAP value against the measure for the threshold criteria, two plots a row, each
    rulebook threshold a dashed line named in the plot's legend (labels never collide)."""
    from matplotlib.ticker import PercentFormatter

    from models.reason_text import template

    features = [f for f in THRESHOLD_FEATURES if f in audit.contributions_full.columns]
    rows = (len(features) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4.2 * rows), squeeze=False)
    contributions, X = audit.contributions_full, audit.X
    certified = contributions.index.isin(audit.certified.index)
    rulebook, year = _newest_rulebook(audit)
    for ax, feature in zip(axes.ravel(), features):
        x = pd.to_numeric(X.loc[contributions.index, feature], errors="coerce").to_numpy(float)
        s = contributions[feature].to_numpy(float)
        ok = ~np.isnan(x)
        if ok.any():
            lo, hi = np.nanpercentile(x[ok], [1, 99])
            ok &= (x >= lo) & (x <= hi)
        ax.scatter(x[ok & ~certified], s[ok & ~certified], s=8, alpha=0.4, color="#7f8c9d",
                   label="candidates (sample)")
        ax.scatter(x[ok & certified], s[ok & certified], s=10, alpha=0.6, color="#c8102e",
                   label="certified")
        styles = ("--", ":", "-.")
        for k, (threshold, label) in enumerate(_bars(rulebook, feature)):
            word = "bar" if label.startswith("≥") else "ceiling"
            ax.axvline(threshold, color="#1f5fbf", linestyle=styles[k % 3], linewidth=1.4,
                       label=f"{word} {label}")
        if template(feature)["format"] == "percent":
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_xlabel(feature_label(feature), fontsize=10)
        ax.set_ylabel("SHAP value (log-odds)", fontsize=10)
        ax.legend(fontsize=9, loc="best", framealpha=0.9)
    for ax in axes.ravel()[len(features):]:
        ax.set_visible(False)
    fig.suptitle(f"Dependence on threshold criteria (blue lines: bars of the {rulebook.name_en}, "
                 f"in force for {year})", fontsize=12)
    fig.tight_layout()
    return png_img(fig)


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
        _reword_waterfall(fig)
        fig.set_size_inches(7.5, 4.6)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
    return buffer.getvalue()


# shap's waterfall names its ends in notation ("E[f(X)]", "f(x)"); a reader gets words.
WATERFALL_ENDS = {"E[f(X)]": "typical candidate", "f(x)": "this firm"}


def _reword_waterfall(fig) -> None:
    """Name the waterfall's two ends in words ("typical candidate = -4.86") and its axis by
    what it measures. shap draws each end as two tick labels of a twin axis (the notation
    and "= value"); no option renames them, so they are merged into one label here."""
    for ax in fig.axes:
        labels = [label.get_text() for label in ax.get_xticklabels()]
        if len(labels) != 2 or not any(n in labels[0] for n in WATERFALL_ENDS):
            continue
        words = next(w for n, w in WATERFALL_ENDS.items() if n in labels[0])
        value = labels[1].replace("$", "").strip()
        # The bottom end keeps shap's leading line break: it sits below the axis's numbers.
        below = "\n" if "E[" in labels[0] else ""
        ax.set_xticks(ax.get_xticks(), [f"{below}{words} {value}", ""])
    fig.axes[0].set_xlabel(SHAP_AXIS, fontsize=9, labelpad=20)


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
    outliers = by_province["z"].abs().sort_values(ascending=False).index[:6]
    rest = by_province.drop(index=outliers)
    right.scatter(rest["expected"], rest["observed"], color="#9aa3ae", s=18,
                  label="other provinces")
    # The provinces furthest from merit each get a marker named in the legend: text next to
    # points of neighbouring provinces would collide.
    markers = ("o", "s", "^", "D", "v", "P")
    for marker, r in zip(markers, by_province.loc[outliers].itertuples()):
        right.scatter([r.expected], [r.observed], marker=marker, s=42,
                      label=f"{province_label(r.group)} (z {r.z:+.1f})")
    top = float(max(by_province["expected"].max(), by_province["observed"].max(), 1)) * 1.05
    right.plot([0, top], [0, top], color="grey", linestyle=":")
    right.legend(fontsize=8, loc="upper left")
    right.set(title="By province (dotted: observed = expected)", xlabel="expected from merit",
              ylabel="observed selections")
    fig.tight_layout()
    return png_img(fig)



def effects_plot(audit) -> str:
    """The non-merit channel's effects with their intervals: provinces (left), ownership
    classes (right); excess over what merit predicts (on a provincial list, the provinces'
    over the list's average share of unexplained selections), in percent."""
    channels = audit.channels
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 6.5),
                                      gridspec_kw={"width_ratios": [3, 2]})
    for ax, effects, provinces, title, against in (
            (left, channels.province_effects, True, "By province", channels.province_reference),
            (right, channels.ownership_effects, False, "By ownership", AGAINST_MERIT)):
        table = effects.sort_values("excess", ignore_index=True)
        y = np.arange(len(table))
        centre = 100 * table["excess"].to_numpy()
        err = 100 * np.vstack([table["excess"] - table["low"], table["high"] - table["excess"]])
        ax.errorbar(centre, y, xerr=np.clip(err, 0, None), fmt="o", color="#1f5f8b",
                    ecolor="#9aa3ae", capsize=2, markersize=4)
        ax.axvline(0, color="grey", linestyle=":")
        labels = table["group"].map(province_label) if provinces else table["group"]
        ax.set_yticks(y, labels, fontsize=8 if provinces else 9)
        ax.set(title=title, xlabel=AGAINST_WORDS[against][2])
    fig.tight_layout()
    return png_img(fig)
