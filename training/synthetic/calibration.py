"""Calibration of a universe against published figures on the tiered SME system.

``calibration_report`` reads only the contract tables (firms, financials, patents,
certifications) and, for the share of selections not made on merit, ``truth``. Profiles
of new Little Giants use the last fiscal year before the grant year, i.e. what the
committee saw. Ranges are set around the published figures in CRITERIA.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features import domain

TOP_SIX_PROVINCES = ("32", "44", "33", "37", "11", "31")  # Jiangsu ... Shanghai

# metric -> (low, high, what the range stands for)
TARGETS = {
    "lg_median_rd_intensity": (0.05, 0.12, "R&D intensity 6.4% (batches 1-2) to 10.4% (batch 4)"),
    "lg_mean_valid_invention_patents": (8, 30, "11.8 to 16 invention patents on average"),
    "lg_mean_employees": (120, 450, "average 252 employees (batches 1-4)"),
    "lg_state_controlled_share": (0.04, 0.15, "9% state-owned (batch 4)"),
    "lg_top6_province_share": (0.55, 0.80, "six provinces hold over 60%"),
    "lg_non_merit_share": (0.15, 0.35, "about 1 in 4 fall short (MERICS sample)"),
    "specialized_to_lg_valid_ratio": (4, 12, "~140,000 Specialized vs ~17,600 Little Giants"),
    "champion_from_lg_share": (0.15, 0.50, "22% of champions were Little Giants, ~40% lately"),
    "lg_renewed_count": (1, np.inf, "re-reviews kept most titles"),
    "lg_revoked_count": (1, np.inf, "re-reviews removed some titles"),
    "re_review_pass_rate": (0.80, 0.92, "87% passed in 2025 (Little Giant batches 1-3: 57-83%)"),
}


def _new_little_giants(certifications: pd.DataFrame, financials: pd.DataFrame,
                       firms: pd.DataFrame) -> pd.DataFrame:
    """New Little Giant grants with the firm's report of the year before the grant."""
    grants = certifications.loc[(certifications["tier"] == "little_giant")
                                & (certifications["event"] == "granted"), ["firm_id", "year"]]
    grants = grants.assign(fiscal_year=grants["year"] - 1)
    merged = grants.merge(financials, how="left", left_on=["firm_id", "fiscal_year"],
                          right_on=["firm_id", "year"], suffixes=("", "_fin"))
    return merged.merge(firms[["firm_id", "province", "state_share"]], on="firm_id", how="left")


def _valid_inventions(grants: pd.DataFrame, patents: pd.DataFrame) -> pd.Series:
    """Invention patents in force at the end of the year before each grant (0 if none)."""
    inv = patents.loc[(patents["kind"] == "invention") & patents["granted"].notna()
                      & patents["firm_id"].isin(grants["firm_id"]),
                      ["firm_id", "granted", "lapsed"]]
    keyed = grants[["firm_id", "year"]].reset_index(names="row")
    pairs = keyed.merge(inv, on="firm_id", how="inner")
    cut = pd.to_datetime((pairs["year"] - 1).astype(str) + "-12-31").astype(pairs["granted"].dtype)
    in_force = (pairs["granted"] <= cut) & (pairs["lapsed"].isna() | (pairs["lapsed"] > cut))
    counts = pairs.loc[in_force].groupby("row").size()
    return counts.reindex(keyed["row"], fill_value=0).set_axis(grants.index)


def _valid_holders(certifications: pd.DataFrame, tier: str, last_year: int) -> int:
    """Firms whose latest granted/renewed title of ``tier`` was announced in
    last_year-2..last_year and not revoked afterwards."""
    rows = certifications[certifications["tier"] == tier]
    announced = rows[rows["event"] != "revoked"].groupby("firm_id")["year"].max()
    revoked = rows[rows["event"] == "revoked"].groupby("firm_id")["year"].max()
    revoked = revoked.reindex(announced.index)
    valid = (announced >= last_year - 2) & ~(revoked >= announced)
    return int(valid.sum())


def _champions_from_little_giants(certifications: pd.DataFrame) -> float:
    """Share of first champion grants whose firm had a Little Giant grant before."""
    first_champ = (certifications[(certifications["tier"] == "champion")
                                  & (certifications["event"] == "granted")]
                   .groupby("firm_id")["year"].min())
    first_lg = (certifications[(certifications["tier"] == "little_giant")
                               & (certifications["event"] == "granted")]
                .groupby("firm_id")["year"].min())
    if first_champ.empty:
        return float("nan")
    lg_year = first_lg.reindex(first_champ.index)
    return float((lg_year < first_champ).mean())


def _re_review_pass_rate(certifications: pd.DataFrame) -> float:
    """Share of the titles up for re-review (features.domain.due_for_review) that were
    renewed, over every tier and reviewed year."""
    due, renewed = 0, 0.0
    for tier in domain.TIERS:
        for year in domain.reviewed_years(certifications, tier):
            held = domain.due_for_review(certifications, year, tier)
            ids = held.index[held.to_numpy(dtype=bool)]
            due += len(ids)
            renewed += domain.review_outcome(certifications, year, tier, ids).sum()
    return renewed / due if due else float("nan")


def calibration_report(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per calibration metric: metric, value, low, high, ok (low <= value <= high).

    ``tables`` holds the contract tables and, for ``lg_non_merit_share``, ``truth``
    (firm_id, tier, year, event, channel); without truth that metric is NaN and not ok.
    """
    firms, financials = tables["firms"], tables["financials"]
    patents, certs = tables["patents"], tables["certifications"]
    last_year = int(financials["year"].max())
    lg = _new_little_giants(certs, financials, firms)
    with np.errstate(divide="ignore", invalid="ignore"):
        rd_intensity = lg["rd_expense"] / lg["revenue"]
    values = {
        "lg_median_rd_intensity": float(rd_intensity.median()),
        "lg_mean_valid_invention_patents": float(_valid_inventions(lg, patents).mean()),
        "lg_mean_employees": float(lg["employees"].mean()),
        "lg_state_controlled_share": float((lg["state_share"] > 0.5).mean()),
        "lg_top6_province_share": float(lg["province"].isin(TOP_SIX_PROVINCES).mean()),
        "lg_non_merit_share": float("nan"),
        "specialized_to_lg_valid_ratio": (
            _valid_holders(certs, "specialized", last_year)
            / max(_valid_holders(certs, "little_giant", last_year), 1)),
        "champion_from_lg_share": _champions_from_little_giants(certs),
        "lg_renewed_count": float(((certs["tier"] == "little_giant")
                                   & (certs["event"] == "renewed")).sum()),
        "lg_revoked_count": float(((certs["tier"] == "little_giant")
                                   & (certs["event"] == "revoked")).sum()),
        "re_review_pass_rate": _re_review_pass_rate(certs),
    }
    truth = tables.get("truth")
    if truth is not None:
        new = truth[(truth["tier"] == "little_giant") & (truth["event"] == "granted")]
        values["lg_non_merit_share"] = float((new["channel"] != "merit").mean())
    rows = [{"metric": k, "value": v, "low": TARGETS[k][0], "high": TARGETS[k][1],
             "ok": bool(TARGETS[k][0] <= v <= TARGETS[k][1])}
            for k, v in values.items()]
    return pd.DataFrame(rows)
