"""Rule flags of an audited selection, in the categories of the MERICS review of Little Giants
(too large for an SME, lacklustre performance, subsidiary of a larger group) plus the R&D
and IP criteria of the rulebook in force for the selection's year.

All functions are vectorised over a feature frame (rows = firm-years, pipeline columns).
The definitions of an SME, a large group and the rulebook in force are those of
features.domain and features.rules; this module only applies them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.domain import SME_TIERS, is_large
from features.rules import Assessment, assess, rulebook_in_force

SHORTFALL_FLAGS = ("exceeds_sme_size", "weak_performance", "subsidiary_of_large_group",
                   "fails_rd_or_ip")
# Breaches of the published SME eligibility rules: no selection breaking one is on merit.
DISQUALIFYING = ("exceeds_sme_size", "subsidiary_of_large_group")
FLAG_LABELS = {
    "exceeds_sme_size": "exceeds the SME size",
    "weak_performance": "weak performance",
    "subsidiary_of_large_group": "subsidiary of a large group",
    "fails_rd_or_ip": "fails the R&D or IP criteria",
    "low_merit_probability": "low merit probability",
    "non_merit_attribution_share": "selection driven by ownership or region",
}
OWNERSHIP_CLASSES = ("state-controlled", "subsidiary", "independent")


def _col(X: pd.DataFrame, name: str) -> np.ndarray:
    if name not in X.columns:
        return np.full(len(X), np.nan)
    return pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def assessments_in_force(X: pd.DataFrame, years, tier: str) -> dict[int, tuple[np.ndarray,
                                                                                Assessment]]:
    """year -> (positional rows of X, the assessment of those rows under the tier's
    rulebook in force that year): each rulebook evaluated once on its rows."""
    years = np.asarray(years)
    out = {}
    for year in np.unique(years):
        rows = np.flatnonzero(years == year)
        out[int(year)] = (rows, assess(X.iloc[rows], rulebook_in_force(tier, int(year))))
    return out


def failed_criteria(assessments: dict, n: int) -> list[list[str]]:
    """Ids of the criteria failed on the data under the rulebook in force, per row (the
    ``failed`` of the assessment behind eligibility)."""
    out: list[list[str]] = [[] for _ in range(n)]
    for rows, verdict in assessments.values():
        for row, failed in zip(rows, verdict.failed):
            out[row] = list(failed)
    return out


def rd_ip_failures(assessments: dict, n: int) -> list[list[str]]:
    """Ids of the failed innovation criteria (R&D, IP, R&D institution) under the rulebook
    in force, per row."""
    out: list[list[str]] = [[] for _ in range(n)]
    for rows, verdict in assessments.values():
        innovation = {c.id for c in verdict.rulebook.criteria if c.pillar == "innovation"}
        for row, failed in zip(rows, verdict.failed):
            out[row] = [c for c in failed if c in innovation]
    return out


def large_group(X: pd.DataFrame) -> np.ndarray:
    """The parent group is large (features.domain.is_large: at or above both SME limits);
    an undecided group (a figure missing) is not flagged."""
    return is_large(_col(X, "parent_employees"), _col(X, "parent_revenue")) == 1.0


def ownership_class(X: pd.DataFrame) -> np.ndarray:
    """state-controlled (state share > 50%), subsidiary (has a controlling parent) or
    independent, per row."""
    state = _col(X, "state_controlled") == 1
    subsidiary = _col(X, "is_subsidiary") == 1
    return np.where(state, OWNERSHIP_CLASSES[0],
                    np.where(subsidiary, OWNERSHIP_CLASSES[1], OWNERSHIP_CLASSES[2]))


def shortfall_flags(X: pd.DataFrame, tier: str, rd_ip: list[list[str]] | None) -> pd.DataFrame:
    """0/1 columns SHORTFALL_FLAGS per row of X.

    exceeds_sme_size: a large firm by features.domain.is_large (SME tiers only);
    weak_performance: shrinking (2-year average revenue growth < 0) or loss-making, the two
      "else 0 points" bands of the 2022 specialization and refinement scores;
    subsidiary_of_large_group: controlled by a large group (features.domain.is_large);
    fails_rd_or_ip: fails an innovation criterion of the rulebook in force (``rd_ip``, from
      :func:`rd_ip_failures`; None: not assessed).
    """
    oversized = is_large(_col(X, "employees"), _col(X, "revenue")) == 1.0
    if tier not in SME_TIERS:
        oversized = np.zeros(len(X), dtype=bool)
    growth = _col(X, "revenue_growth_2y_avg")
    growth = np.where(np.isnan(growth), _col(X, "revenue_growth_1y"), growth)
    weak = (growth < 0) | (_col(X, "net_margin") < 0)
    subsidiary = (_col(X, "is_subsidiary") == 1) & large_group(X)
    failing = np.array([bool(f) for f in rd_ip] if rd_ip is not None else np.zeros(len(X)),
                       dtype=bool)
    return pd.DataFrame({"exceeds_sme_size": oversized, "weak_performance": weak,
                         "subsidiary_of_large_group": subsidiary, "fails_rd_or_ip": failing},
                        index=X.index).astype("int64")


def flag_texts(X: pd.DataFrame, flags: pd.DataFrame, rd_ip: list[list[str]],
               details: pd.DataFrame, rulebook_ids: np.ndarray) -> list[str]:
    """One "; "-joined sentence per row naming each raised flag with the firm's figures.

    details: merit_rank, candidates, quota, non_merit_share per row (same order as X);
    rulebook_ids: the rulebook in force for each row's year (its name and the failed
    criteria's names are quoted in the R&D/IP flag).
    Built per audited selection (thousands of rows), so a plain loop is clear enough.
    """
    from features.rules import load_rulebook
    from features.rules.gaps import money
    from models.reason_text import criterion_names

    books = {rb: load_rulebook(rb) for rb in dict.fromkeys(rulebook_ids)}
    names = {k: v for rb in books for k, v in criterion_names(rb).items()}

    employees, revenue = _col(X, "employees"), _col(X, "revenue")
    growth, margin = _col(X, "revenue_growth_2y_avg"), _col(X, "net_margin")
    parent = _col(X, "parent_employees")
    texts = []
    for i, row in enumerate(flags.itertuples(index=False)):
        parts = []
        if row.exceeds_sme_size:
            parts.append(f"exceeds the SME size ({employees[i]:,.0f} employees, revenue "
                         f"{money(revenue[i])} CNY)")
        if row.subsidiary_of_large_group:
            size = f" ({parent[i]:,.0f} employees)" if not np.isnan(parent[i]) else ""
            parts.append(f"subsidiary of a large group{size}")
        if row.weak_performance:
            bits = []
            if not np.isnan(growth[i]) and growth[i] < 0:
                bits.append(f"2-year average revenue growth {growth[i] * 100:.1f}%")
            if not np.isnan(margin[i]) and margin[i] < 0:
                bits.append(f"net margin {margin[i] * 100:.1f}%")
            parts.append("weak performance" + (f" ({', '.join(bits)})" if bits else ""))
        if row.fails_rd_or_ip:
            parts.append(f"fails the R&D or IP criteria of the {books[rulebook_ids[i]].name_en}: "
                         + ", ".join(names.get(c, c) for c in rd_ip[i]))
        if row.low_merit_probability:
            d = details.iloc[i]
            parts.append(f"low merit: ranks {d['merit_rank']:,.0f} of {d['candidates']:,.0f} "
                         f"candidates on merit for {d['quota']:,.0f} places")
        if row.non_merit_attribution_share:
            parts.append(f"{details.iloc[i]['non_merit_share'] * 100:.0f}% of the selection "
                         "model's push comes from ownership or region")
        texts.append("; ".join(parts))
    return texts
