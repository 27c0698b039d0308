"""SHAP explanations from LightGBM's pred_contrib: per feature, per pillar, as shap objects.

Every function takes the frame of `TierModel.contributions` (rows x features + ``bias``,
log-odds) and, where values are shown, the feature frame it was computed from.

Features are grouped into the pillars of the selection criteria (专 specialization,
精 refinement, 特 distinctiveness, 新 innovation) and into the non-criteria groups (size,
sector, region, ownership, history). Each feature's pillar is a field of its catalogue
entry (`features.catalogue.FeatureSpec.pillar`; rule-result features take their
criterion's pillar in `features.rule_features.rule_feature_catalogue`).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

PILLARS: dict[str, str] = {
    "specialization": "专 specialization",
    "refinement": "精 refinement",
    "distinctiveness": "特 distinctiveness",
    "innovation": "新 innovation",
    "size": "size",
    "sector": "sector (品)",
    "region": "region",
    "ownership": "ownership and state support",
    "history": "title history and age",
    "rules": "overall rule outcome",
}
# Groups that are no part of any published criterion: attribution to them is what the
# audit calls non-merit.
NON_MERIT_PILLARS = ("region", "ownership")

RULE_PREFIX = "rule_"


@cache
def _catalogue_pillars() -> dict[str, str]:
    from features.labels import feature_catalogue

    table = feature_catalogue()
    return dict(zip(table["name"], table["pillar"]))


@cache
def _rulebook_criteria() -> dict:
    """criterion id -> Criterion, over every rulebook file."""
    from features.rules import available_rulebooks, load_rulebook

    return {c.id: c for path in available_rulebooks()["path"]
            for c in load_rulebook(path).criteria}


def rule_criterion(name: str):
    """The criterion (of any rulebook on file) behind a rule-result column, or None."""
    if not name.startswith(RULE_PREFIX):
        return None
    return _rulebook_criteria().get(name[len(RULE_PREFIX):].removesuffix("__on_data"))


def prerequisite_features(names) -> list[str]:
    """Titles a candidate must hold or lack to be on a list at all (holds_*, title level,
    rule results of a rulebook's status criteria): every selected firm shares them."""
    out = []
    for name in names:
        criterion = rule_criterion(name)
        if name.startswith("holds_") or name == "title_level" or (
                criterion is not None and criterion.pillar == "status"):
            out.append(name)
    return out


def fold_rule_columns(contributions: pd.DataFrame) -> pd.DataFrame:
    """Add the SHAP value of each single-feature rule result (``rule_lg22_main_share``) to
    the feature it reads (``main_share``) and drop it; SHAP values are additive, so the sum
    is the feature's whole effect, and a reason then names the feature once."""
    out = contributions.copy()
    for name in [c for c in out.columns if c.startswith(RULE_PREFIX)]:
        criterion = rule_criterion(name)
        if criterion is None or len(criterion.features) != 1:
            continue
        target = criterion.features[0]
        if target in out.columns:
            out[target] = out[target] + out[name]
            out = out.drop(columns=[name])
    return out


def feature_pillar(name: str) -> str:
    """Pillar key (a key of PILLARS) of one feature column: its catalogue entry's pillar.

    A column outside the catalogue (not produced by this feature pipeline) is "rules" when
    it is a rule result (``rule_*``) and "size" otherwise.
    """
    pillar = _catalogue_pillars().get(name)
    if pillar is not None:
        return pillar
    return "rules" if name.startswith(RULE_PREFIX) else "size"


def feature_pillars(names) -> pd.Series:
    """Pillar key per feature name (index = names)."""
    names = [n for n in names if n != "bias"]
    return pd.Series([feature_pillar(n) for n in names], index=pd.Index(names, name="feature"),
                     name="pillar", dtype="str")


def non_merit_features(names) -> list[str]:
    """The features of `names` outside every published criterion (region, ownership)."""
    pillars = feature_pillars(names)
    return list(pillars.index[pillars.isin(NON_MERIT_PILLARS)])


def _values(contributions: pd.DataFrame) -> pd.DataFrame:
    return contributions.drop(columns=["bias"], errors="ignore")


def global_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per feature (log-odds) and its share of the total, largest first.

    Columns: feature, pillar, mean_abs_shap, share, mean_shap.
    """
    values = _values(contributions)
    mean_abs = values.abs().mean()
    out = pd.DataFrame({"feature": mean_abs.index, "pillar": feature_pillars(mean_abs.index).values,
                        "mean_abs_shap": mean_abs.to_numpy(),
                        "mean_shap": values.mean().to_numpy()})
    total = out["mean_abs_shap"].sum()
    out["share"] = out["mean_abs_shap"] / total if total > 0 else 0.0
    return out.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def pillar_contributions(contributions: pd.DataFrame) -> pd.DataFrame:
    """SHAP values summed within each pillar: rows x pillars (log-odds).

    SHAP values are additive, so a pillar's sum is its exact share of the margin.
    """
    values = _values(contributions)
    pillars = feature_pillars(values.columns)
    summed = values.T.groupby(pillars.to_numpy(), sort=False).sum().T
    return summed.reindex(columns=[p for p in PILLARS if p in summed.columns])


def pillar_importance(contributions: pd.DataFrame) -> pd.DataFrame:
    """Per pillar: mean |summed SHAP| over rows, its share, and the count of features.

    Columns: pillar, label, mean_abs_shap, share, mean_shap, features.
    """
    summed = pillar_contributions(contributions)
    counts = feature_pillars(_values(contributions).columns).value_counts()
    out = pd.DataFrame({
        "pillar": summed.columns,
        "label": [PILLARS[p] for p in summed.columns],
        "mean_abs_shap": summed.abs().mean().to_numpy(),
        "mean_shap": summed.mean().to_numpy(),
        "features": [int(counts.get(p, 0)) for p in summed.columns],
    })
    total = out["mean_abs_shap"].sum()
    out["share"] = out["mean_abs_shap"] / total if total > 0 else 0.0
    return out.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def positive_share(contributions: pd.DataFrame, features, exclude=()) -> pd.Series:
    """Share of each row's positive attribution that comes from `features` (0..1).

    Positive SHAP values are what pushes a firm towards selection; the share answers "how
    much of the push came from these features". `exclude`: features left out of the total
    (e.g. prerequisite titles, which every selected firm shares and which would swamp it).
    Rows with no positive push get 0.
    """
    values = _values(contributions).drop(columns=list(exclude), errors="ignore")
    positive = values.clip(lower=0.0)
    total = positive.sum(axis=1).to_numpy()
    part = positive[[f for f in features if f in positive.columns]].sum(axis=1).to_numpy()
    share = np.divide(part, total, out=np.zeros_like(total), where=total > 0)
    return pd.Series(share, index=contributions.index, name="positive_share")


def numeric_view(X: pd.DataFrame) -> pd.DataFrame:
    """X with categories as their codes (NaN for missing): what shap's plots can colour."""
    shown = X.copy()
    for column in shown.columns:
        if isinstance(shown[column].dtype, pd.CategoricalDtype):
            shown[column] = shown[column].cat.codes.replace(-1, np.nan).astype(float)
        else:
            shown[column] = pd.to_numeric(shown[column], errors="coerce").astype(float)
    return shown


CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei")


def use_cjk_fallback() -> bool:
    """Let matplotlib draw Chinese (专精特新, 品) with an installed CJK font behind its
    default one; without one installed, nothing changes (no font warnings). Returns
    whether Chinese can be drawn."""
    import matplotlib
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    fallback = [f for f in CJK_FONTS if f in installed][:1]
    family = matplotlib.rcParams["font.family"]
    family = [family] if isinstance(family, str) else list(family)
    if fallback and fallback[0] not in family:
        matplotlib.rcParams["font.family"] = ["DejaVu Sans", *fallback]
    return bool(fallback)


SHAP_AXIS = "SHAP value: change in log-odds relative to the year's selection rate"
PLOT_LABEL_CHARS = 50


def plot_label(feature: str) -> str:
    """A feature's English label short enough for a plot axis: a criterion's parenthesised
    details dropped ("R&D input by revenue band (>= 100M: ...)" -> "R&D input by revenue
    band"), then cut at PLOT_LABEL_CHARS characters."""
    from features.labels import feature_label

    label = feature_label(feature, "en")
    short = label.split(" (")[0] + (", on the data" if label.endswith(", on the data")
                                    and " (" in label else "")
    return short if len(short) <= PLOT_LABEL_CHARS else short[:PLOT_LABEL_CHARS - 1] + "…"


def _is_outcome(name: str) -> bool:
    """A rule-result column holding pass (1) / fail (0): a criterion or an eligibility."""
    return name.startswith(RULE_PREFIX) and (
        rule_criterion(name) is not None or "_eligible" in name)


def display_values(X: pd.DataFrame) -> pd.DataFrame:
    """X's values as a reader sees them in a reason ("7.2%", "1.27M CNY", "Guangdong",
    "yes"), "not reported" where unknown; object frame like X."""
    from models.reason_text import display_names, template
    from models.values import column_values, format_values, is_missing

    rows = np.arange(len(X))
    out = {}
    for name in X.columns:
        spec = template(name)
        values = column_values(X, name, rows)
        missing = is_missing(values)
        # An unknown rule outcome is undecided, not a figure the firm failed to report.
        text = np.full(len(X), "undecided" if _is_outcome(name) else "not reported",
                       dtype=object)
        if (~missing).any():
            known = values[~missing]
            if _is_outcome(name):
                text[~missing] = np.where(known.astype(float) >= 0.5, "pass", "fail")
            elif spec["format"] == "flag":
                text[~missing] = np.where(known.astype(float) >= 0.5, "yes", "no")
            else:
                fmt = spec["format"] if values.dtype != object or spec["format"] == "category" \
                    else "category"
                text[~missing] = format_values(known, fmt, spec.get("decimals", 1),
                                               display_names(name)).astype(object)
        out[name] = text
    return pd.DataFrame(out, index=X.index, columns=X.columns)


def explanation(contributions: pd.DataFrame, X: pd.DataFrame):
    """A `shap.Explanation` (values, base values = bias, data) for the shap plots.

    Features are named by their English labels (`plot_label`), `display_data`
    keeps category labels so waterfall plots show "44", not a code, and a missing value
    reads "not reported", never "nan".
    """
    import shap

    values = _values(contributions)
    features = list(values.columns)
    shown = X.loc[contributions.index, features]
    return shap.Explanation(
        values=values.to_numpy(dtype=float),
        base_values=contributions["bias"].to_numpy(dtype=float)
        if "bias" in contributions else np.zeros(len(values)),
        data=numeric_view(shown).to_numpy(dtype=float),
        display_data=display_values(shown).to_numpy(),
        feature_names=[plot_label(f) for f in features],
    )
