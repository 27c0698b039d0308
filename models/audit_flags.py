"""Rule flags of an audited selection, in the categories of the MERICS review of Little Giants
(too large for an SME, lacklustre performance, subsidiary of a larger group) plus the
2022 rulebook's R&D and IP criteria.

All functions are vectorised over a feature frame (rows = firm-years, pipeline columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RULEBOOK = "2022"
SME_EMPLOYEES, SME_REVENUE = 1_000, 400e6  # MIIT 2011 No. 300: at or above both = not an SME
# Tiers whose titles are SME titles; a Single Champion may be any size.
SME_TIERS = ("innovative", "specialized", "little_giant")
SHORTFALL_FLAGS = ("exceeds_sme_size", "weak_performance", "subsidiary_of_large_group",
                   "fails_rd_or_ip")
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


def rule_result(X: pd.DataFrame, tier: str):
    """The tier's 2022 rulebook evaluated on X (a features.rules.RuleResult), or None."""
    from features.rules import evaluate, load_rulebook

    try:
        rulebook = load_rulebook(RULEBOOK, tier=tier)
    except KeyError:
        return None
    return evaluate(X, rulebook)


def rule_features(result, index: pd.Index) -> pd.DataFrame:
    """1.0 pass / 0.0 fail / NaN unknown per criterion, as model features (prefix rule_)."""
    if result is None:
        return pd.DataFrame(index=index)
    features = result.as_features("rule_")
    features.index = index
    return features


def failed_criteria(result, n: int) -> np.ndarray:
    """Count of the rulebook's criteria failed on the data, per row (the rules baseline)."""
    if result is None:
        return np.zeros(n)
    return (result.criteria_on_data.astype(str) == "fail").sum(axis=1).to_numpy(dtype=float)


def rd_ip_failures(result, n: int) -> list[list[str]]:
    """Ids of the failed innovation (R&D, IP, R&D institution) criteria, per row."""
    if result is None:
        return [[] for _ in range(n)]
    ids = [c.id for c in result.rulebook.criteria if c.pillar == "innovation"]
    if not ids:
        return [[] for _ in range(n)]
    failed = (result.criteria_on_data[ids].astype(str) == "fail").to_numpy()
    names = np.array(ids, dtype=object)
    return [list(names[row]) for row in failed]


def large_group(X: pd.DataFrame) -> np.ndarray:
    """The parent group is at or above both SME limits; one known figure decides alone."""
    employees, revenue = _col(X, "parent_employees"), _col(X, "parent_revenue")
    big_emp = np.where(np.isnan(employees), np.nan, employees >= SME_EMPLOYEES)
    big_rev = np.where(np.isnan(revenue), np.nan, revenue >= SME_REVENUE)
    both = np.where(np.isnan(big_emp), big_rev, np.where(np.isnan(big_rev), big_emp,
                                                          big_emp * big_rev))
    return np.nan_to_num(both, nan=0.0) == 1


def ownership_class(X: pd.DataFrame) -> np.ndarray:
    """state-controlled (state share > 50%), subsidiary (has a controlling parent) or
    independent, per row."""
    state = _col(X, "state_controlled") == 1
    subsidiary = _col(X, "is_subsidiary") == 1
    return np.where(state, OWNERSHIP_CLASSES[0],
                    np.where(subsidiary, OWNERSHIP_CLASSES[1], OWNERSHIP_CLASSES[2]))


def shortfall_flags(X: pd.DataFrame, tier: str, result) -> pd.DataFrame:
    """0/1 columns SHORTFALL_FLAGS per row of X.

    exceeds_sme_size: >= 1,000 employees and >= 400M revenue (SME tiers only);
    weak_performance: shrinking (2-year average revenue growth < 0) or loss-making, the two
      "else 0 points" bands of the 2022 specialization and refinement scores;
    subsidiary_of_large_group: controlled by a group at or above the SME limits;
    fails_rd_or_ip: fails an innovation criterion of the tier's 2022 rulebook on the data.
    """
    employees, revenue = _col(X, "employees"), _col(X, "revenue")
    oversized = (employees >= SME_EMPLOYEES) & (revenue >= SME_REVENUE)
    if tier not in SME_TIERS:
        oversized = np.zeros(len(X), dtype=bool)
    growth = _col(X, "revenue_growth_2y_avg")
    growth = np.where(np.isnan(growth), _col(X, "revenue_growth_1y"), growth)
    weak = (growth < 0) | (_col(X, "net_margin") < 0)
    subsidiary = (_col(X, "is_subsidiary") == 1) & large_group(X)
    rd_ip = np.array([bool(f) for f in rd_ip_failures(result, len(X))], dtype=bool)
    return pd.DataFrame({"exceeds_sme_size": oversized, "weak_performance": weak,
                         "subsidiary_of_large_group": subsidiary, "fails_rd_or_ip": rd_ip},
                        index=X.index).astype("int64")


def flag_texts(X: pd.DataFrame, flags: pd.DataFrame, rd_ip: list[list[str]],
               details: pd.DataFrame) -> list[str]:
    """One "; "-joined sentence per row naming each raised flag with the firm's figures.

    details: merit_rank, candidates, quota, non_merit_share per row (same order as X).
    Built per audited selection (thousands of rows), so a plain loop is clear enough.
    """
    from features.rules.gaps import money

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
            parts.append("fails 2022 criteria " + ", ".join(rd_ip[i]))
        if row.low_merit_probability:
            d = details.iloc[i]
            parts.append(f"low merit: ranks {d['merit_rank']:,.0f} of {d['candidates']:,.0f} "
                         f"candidates on merit for {d['quota']:,.0f} places")
        if row.non_merit_attribution_share:
            parts.append(f"{details.iloc[i]['non_merit_share'] * 100:.0f}% of the selection "
                         "model's push comes from ownership or region")
        texts.append("; ".join(parts))
    return texts
