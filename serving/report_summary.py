"""The audit report's summary: how many selections fall short, of which published criterion,
by tier and year, in tables and in plain words.

Every figure is counted from the rows of ``anomalies.csv`` (one per audited selection): the
MERICS-style flags and ``failed_criteria``, the criteria of the rulebook in force in the
selection's year (column ``rulebook``) that its data fails.
"""

from __future__ import annotations

import html
from functools import cache

import numpy as np
import pandas as pd

from features.domain import TIER_NAMES, TIER_ORDER
from models.audit import FLAG_COLUMNS
from models.audit_channels import AGAINST_LIST_SHARE, AGAINST_MERIT
from models.audit_flags import FLAG_LABELS, SHORTFALL_FLAGS
from models.reason_text import criterion_names

MOST_FAILED = 3  # criteria named per tier and year


def province_label(code: str) -> str:
    """"Jiangsu 江苏省" for a province code (features.regions' table); the code itself when
    unknown."""
    from features.regions import PROVINCE_TABLE

    code = str(code)
    if code not in PROVINCE_TABLE.index:
        return code
    row = PROVINCE_TABLE.loc[code]
    return f"{row['name_en']} {row['name_zh']}"


def shortfall_summary(anomalies: pd.DataFrame) -> pd.DataFrame:
    """Per tier (and all tiers): certified firm-years, how many fall short, and each flag."""
    def one(part: pd.DataFrame, name: str) -> dict:
        row = {"tier": name, "certified": len(part), "falls short": int(part["falls_short"].sum()),
               "share falling short": float(part["falls_short"].mean()) if len(part) else np.nan}
        row.update({FLAG_LABELS[f]: int(part[f].sum()) for f in FLAG_COLUMNS})
        return row

    rows = [one(part, TIER_NAMES[tier][0]) for tier, part in anomalies.groupby("tier", sort=False)]
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
        table[column] = table[column].map(province_label)
    return table.sort_values("certified", ascending=False, ignore_index=True)


@cache
def _rulebook_name(rulebook_id: str) -> str:
    from features.rules import load_rulebook

    return load_rulebook(rulebook_id).name_en


def failed_counts(anomalies: pd.DataFrame) -> pd.DataFrame:
    """One row per (tier, year, rulebook, criterion): how many selections fail it on the
    data. Columns tier, year, rulebook, criterion (id), name, selections."""
    ids = anomalies["failed_criteria"].fillna("").astype(str).str.split("; ")
    long = anomalies[["tier", "year", "rulebook"]].assign(criterion=ids).explode("criterion")
    long = long[long["criterion"] != ""]
    table = long.groupby(["tier", "year", "rulebook", "criterion"], sort=False).size()
    table = table.rename("selections").reset_index()
    table["name"] = [criterion_names(rb).get(c, c)
                     for rb, c in zip(table["rulebook"], table["criterion"])]
    return table.sort_values(["tier", "year", "selections"], ascending=[True, True, False],
                             ignore_index=True)


def _tier_year_groups(frame: pd.DataFrame):
    """(tier, year and rulebook-in-force cells, the rows of that tier and year, the criteria
    failed most often in words) per tier and year of `frame` (audited selections or
    renewals: tier, year, rulebook, failed_criteria), tiers in their order."""
    failed = failed_counts(frame)
    order = {t: i for i, t in enumerate(TIER_ORDER)}
    groups = sorted(frame.groupby(["tier", "year"]), key=lambda g: (order[g[0][0]], g[0][1]))
    for (tier, year), part in groups:
        top = failed[(failed["tier"] == tier) & (failed["year"] == year)].head(MOST_FAILED)
        head = {"tier": TIER_NAMES[tier][0], "year": int(year),
                "rulebook in force": _rulebook_name(part["rulebook"].iloc[0])}
        yield head, part, "; ".join(f"{n} ({k:,})" for n, k in
                                    zip(top["name"], top["selections"]))


def by_year_table(anomalies: pd.DataFrame) -> pd.DataFrame:
    """Per tier and year: selections audited, how many fall short (flags) and fail a
    criterion of the rulebook in force, and the criteria failed most often."""
    rows = []
    for head, part, most_failed in _tier_year_groups(anomalies):
        rows.append({
            **head,
            "selections": len(part), "fall short": int(part["falls_short"].sum()),
            "share falling short": float(part["falls_short"].mean()),
            "fail a criterion": int((part["failed_criteria"].fillna("") != "").sum()),
            "most often failed": most_failed,
        })
    return pd.DataFrame(rows)


def summary_words(anomalies: pd.DataFrame) -> list[str]:
    """One HTML paragraph per tier: the selections audited, the share falling short, the
    criteria failed most often and the year with the largest share."""
    failed = failed_counts(anomalies)
    out = []
    for tier, part in anomalies.groupby("tier", sort=False):
        english, chinese = TIER_NAMES[tier]
        years = part["year"]
        span = f"{years.min()}–{years.max()}" if years.min() != years.max() else str(years.min())
        short = int(part["falls_short"].sum())
        failing = int((part["failed_criteria"].fillna("") != "").sum())
        top = (failed[failed["tier"] == tier].groupby("name")["selections"].sum()
               .sort_values(ascending=False).head(MOST_FAILED))
        shares = part.groupby("year")["falls_short"].mean()
        worst = shares.idxmax() if len(shares) else None
        text = (f"<b>{html.escape(english)} ({html.escape(chinese)})</b>: {short:,} of "
                f"{len(part):,} selections in {span} ({short / len(part):.0%}) fall short in at "
                f"least one MERICS category; {failing:,} ({failing / len(part):.0%}) fail at "
                "least one criterion of the rulebook in force in their year, on their data")
        if len(top):
            text += (". Most often failed: " + "; ".join(
                f"{html.escape(name)} ({count:,})" for name, count in top.items()))
        if worst is not None and len(shares) > 1:
            text += f". The largest share falling short: {worst} ({shares[worst]:.0%})"
        out.append(f"<p>{text}.</p>")
    return out


# What an effect is counted against (models.audit_channels), in a reader's words: the
# sentence's comparison, the table's column and the plot's axis.
AGAINST_WORDS = {
    AGAINST_MERIT: ("what merit predicts", "excess over merit",
                    "selections above merit (%), 90% interval"),
    AGAINST_LIST_SHARE: ("what merit and the list's average unexplained share predict",
                         "excess over the list's average",
                         "selections above the list's average (%), 90% interval"),
}


def effect_words(group: str, tier: str, excess: float, low: float, high: float,
                 level: float = 0.9, preposition: str = "In",
                 against: str = AGAINST_MERIT) -> str:
    """"In Jiangsu 江苏省, Little Giant selections exceed what merit predicts by 18% (90%
    interval 9% to 27%)" for one group's excess (fractions) over what ``against`` names
    (AGAINST_WORDS); a shortfall is worded as one, its interval in the same magnitudes."""
    if excess >= 0:
        verb, size, (a, b) = "exceed", excess, (low, high)
    else:
        verb, size, (a, b) = "fall short of", -excess, (-high, -low)
    return (f"{preposition} {group}, {TIER_NAMES[tier][0]} selections {verb} "
            f"{AGAINST_WORDS[against][0]} by {size:.0%} ({level:.0%} interval {a:.0%} to "
            f"{b:.0%})")


# Effects are printed in whole percents: one whose interval rounds to touch 0% (e.g. +0%, 90%
# interval +0% to +0%) is not told as an effect, in the table's "clear" column or a sentence.
PRINTED_HALF_PERCENT = 0.005


def clear_of_no_effect(effects: pd.DataFrame) -> np.ndarray:
    """(n,) bool: the effects whose interval excludes no effect at the printed precision."""
    return ((effects["low"] >= PRINTED_HALF_PERCENT)
            | (effects["high"] <= -PRINTED_HALF_PERCENT)).to_numpy()


def effects_table(effects: pd.DataFrame, provinces: bool,
                  against: str = AGAINST_MERIT) -> pd.DataFrame:
    """A channel-effect table as a reader sees it: group names, excess (over what
    ``against`` names) and interval in percent, and whether the interval excludes no effect."""
    out = pd.DataFrame({
        "group": effects["group"].map(province_label) if provinces else effects["group"],
        "candidates": effects["candidates"],
        AGAINST_WORDS[against][1]: effects["excess"].map("{:+.0%}".format),
        "interval": [f"{lo:+.0%} to {hi:+.0%}" for lo, hi in zip(effects["low"],
                                                                 effects["high"])],
        "clear": np.where(clear_of_no_effect(effects), "yes", "no"),
    })
    return out


def effect_summary(audit, most: int = 3) -> list[str]:
    """Plain-words sentences for a tier's clearest effects: the provinces (up to ``most``
    above and ``most`` below) and ownership classes whose interval excludes no effect
    (clear_of_no_effect)."""
    channels = audit.channels
    if channels is None:
        return []
    sentences = []
    for effects, provinces, against in (
            (channels.province_effects, True, channels.province_reference),
            (channels.ownership_effects, False, AGAINST_MERIT)):
        clear = effects[clear_of_no_effect(effects)]
        above = clear[clear["excess"] > 0].head(most)
        below = clear[clear["excess"] < 0].tail(most).iloc[::-1]
        for r in pd.concat([above, below]).itertuples():
            name = province_label(r.group) if provinces else f"{r.group} firms"
            sentences.append(effect_words(name, audit.tier, r.excess, r.low, r.high,
                                          preposition="In" if provinces else "Among",
                                          against=against))
    return sentences


def renewal_table(renewals: pd.DataFrame) -> pd.DataFrame:
    """Per tier and year of re-review: renewals, how many fail a criterion of the rulebook in
    force on their data (renewals.csv ``fails_rules_in_force``) and the criteria failed most
    often."""
    rows = []
    for head, part, most_failed in _tier_year_groups(renewals):
        failing = int(part["fails_rules_in_force"].sum())
        rows.append({
            **head,
            "renewals": len(part), "fail a criterion": failing,
            "share failing": failing / len(part),
            "most often failed": most_failed,
        })
    return pd.DataFrame(rows)


def failing_renewals(renewals: pd.DataFrame, most: int = 15) -> pd.DataFrame:
    """The renewals failing the most criteria of the rulebook in force, as a reader sees
    them: firm, tier and year, the criteria by name and the gaps in the firm's units."""
    top = renewals[renewals["fails_rules_in_force"] == 1].head(most)
    names = [[criterion_names(rb).get(c, c) for c in ids.split("; ") if c]
             for rb, ids in zip(top["rulebook"], top["failed_criteria"].fillna(""))]
    return pd.DataFrame({
        "firm id": top["firm_id"].to_numpy(),
        "name": top["name"].to_numpy() if "name" in top else "",
        "tier": top["tier"].map(lambda t: TIER_NAMES[t][0]).to_numpy(),
        "year": top["year"].to_numpy(),
        "fails": ["; ".join(n) for n in names],
        # "id: gap text" -> the gap text (the criterion is named in "fails")
        "gaps": [" | ".join(g.partition(": ")[2] for g in gaps.split(" | ") if g)
                 for gaps in top["gaps"].fillna("")],
    })
