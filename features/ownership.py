"""Region and ownership features from the firms table.

Inputs ``firm_*`` are the firms columns aligned to the scored firms (NaN for a firm_id that
is not in the firms table); ``firm_known`` is True where the firm has a row. The firms table
is static in the data contract, so these describe the firm as the user's data has it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import feature
from features.sectors import fixed_categorical

GROUP = "region and ownership"

# GB/T 2260 province-level codes with the NBS four-region split (used by the published
# regional statistics: east 55%, centre 23%, west 16%, north-east 6% of Little Giants).
MACRO_REGION_PROVINCES: dict[str, tuple[str, ...]] = {
    "east": ("11", "12", "13", "31", "32", "33", "35", "37", "44", "46"),
    "centre": ("14", "34", "36", "41", "42", "43"),
    "west": ("15", "45", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65"),
    "northeast": ("21", "22", "23"),
}
MACRO_REGIONS: list[str] = list(MACRO_REGION_PROVINCES)
# Taiwan, Hong Kong and Macao have GB/T 2260 codes but no mainland region.
PROVINCES: list[str] = sorted(
    [p for codes in MACRO_REGION_PROVINCES.values() for p in codes] + ["71", "81", "82"]
)
PROVINCE_REGION = {p: r for r, codes in MACRO_REGION_PROVINCES.items() for p in codes}
LISTED_BOARDS: list[str] = ["none", "main", "star", "chinext", "bse", "neeq"]
# NEEQ is an over-the-counter quotation system, not an exchange listing (the "~7% of Little
# Giants listed on A-shares" figure counts the four exchange boards only).
EXCHANGE_BOARDS = ("main", "star", "chinext", "bse")
LARGE_GROUP_EMPLOYEES, LARGE_GROUP_REVENUE = 1000, 400e6
STATE_CONTROL_SHARE = 0.5


def _known_flag(condition: pd.Series, known: pd.Series) -> pd.Series:
    return condition.astype(float).where(known.astype(bool))


@feature(GROUP, "category", "", kind="category")
def province(firm_province: pd.Series) -> pd.Series:
    """province-level division, 2-digit GB/T 2260 code"""
    return fixed_categorical(firm_province.astype("str").str.strip(), PROVINCES)


@feature(GROUP, "category", "", kind="category")
def macro_region(firm_province: pd.Series) -> pd.Series:
    """NBS macro region (east, centre, west, northeast) of the province"""
    region = firm_province.astype("str").str.strip().map(PROVINCE_REGION)
    return fixed_categorical(region, MACRO_REGIONS)


@feature(GROUP, "1/0", "selection anomaly: subsidiary of a larger firm")
def is_subsidiary(firm_parent_id: pd.Series, firm_known: pd.Series) -> pd.Series:
    """controlled (>= 50%) by a parent firm"""
    return _known_flag(firm_parent_id.notna(), firm_known)


@feature(GROUP, "persons", "selection anomaly: large group")
def parent_employees(firm_parent_employees: pd.Series) -> pd.Series:
    """employees of the parent's whole group"""
    return firm_parent_employees.astype("float64")


@feature(GROUP, "CNY", "selection anomaly: large group")
def parent_revenue(firm_parent_revenue: pd.Series) -> pd.Series:
    """revenue of the parent's whole group"""
    return firm_parent_revenue.astype("float64")


@feature(GROUP, "1/0", "selection anomaly: subsidiary of a large group")
def parent_large_group(
    is_subsidiary: pd.Series, parent_employees: pd.Series, parent_revenue: pd.Series
) -> pd.Series:
    """parent group has >= 1,000 employees or >= 400M revenue (0 for independent firms)"""
    large = (parent_employees >= LARGE_GROUP_EMPLOYEES) | (parent_revenue >= LARGE_GROUP_REVENUE)
    both_known = parent_employees.notna() & parent_revenue.notna()
    out = pd.Series(np.where(large, 1.0, np.where(both_known, 0.0, np.nan)),
                    index=is_subsidiary.index)
    return out.where(is_subsidiary != 0.0, 0.0).where(is_subsidiary.notna())


@feature(GROUP, "fraction", "")
def state_share(firm_state_share: pd.Series) -> pd.Series:
    """state ownership share"""
    return firm_state_share.astype("float64")


@feature(GROUP, "1/0", "")
def state_controlled(state_share: pd.Series) -> pd.Series:
    """state ownership above 50%"""
    return (state_share > STATE_CONTROL_SHARE).astype(float).where(state_share.notna())


@feature(GROUP, "1/0", "")
def listed(firm_listed_board: pd.Series) -> pd.Series:
    """listed on an A-share exchange board (main, STAR, ChiNext, BSE; not NEEQ)"""
    board = firm_listed_board.astype("str")
    return board.isin(EXCHANGE_BOARDS).astype(float).where(board.notna())


@feature(GROUP, "category", "", kind="category")
def listed_board(firm_listed_board: pd.Series) -> pd.Series:
    """listing board: none, main, star, chinext, bse, neeq"""
    board = firm_listed_board.astype("str").str.strip().str.lower()
    return fixed_categorical(board, LISTED_BOARDS)
