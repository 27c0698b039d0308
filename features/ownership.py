"""Region and ownership features from the firms table.

Inputs ``firm_*`` are the firms columns aligned to the scored firms (NaN for a firm_id that
is not in the firms table); ``firm_known`` is True where the firm has a row. The firms table
is static in the data contract, so these describe the firm as the user's data has it.
"""

from __future__ import annotations

import pandas as pd

from features import schemas
from features.catalogue import feature
from features.domain import is_large
from features.regions import MACRO_REGIONS, PROVINCE_REGION, PROVINCES
from features.sectors import fixed_categorical

GROUP = "region and ownership"

LISTED_BOARDS: list[str] = list(schemas.LISTED_BOARDS)  # the contract's values, in order
# NEEQ is an over-the-counter quotation system, not an exchange listing (the "~7% of Little
# Giants listed on A-shares" figure counts the four exchange boards only).
EXCHANGE_BOARDS = ("main", "star", "chinext", "bse")
STATE_CONTROL_SHARE = 0.5


def _known_flag(condition: pd.Series, known: pd.Series) -> pd.Series:
    return condition.astype(float).where(known.astype(bool))


@feature(GROUP, "category", "", kind="category", pillar="region",
         label_en="province", label_zh="所在省份")
def province(firm_province: pd.Series) -> pd.Series:
    """province-level division, 2-digit GB/T 2260 code"""
    return fixed_categorical(firm_province.astype("str").str.strip(), PROVINCES)


@feature(GROUP, "category", "", kind="category", pillar="region",
         label_en="macro region", label_zh="所在经济区域")
def macro_region(firm_province: pd.Series) -> pd.Series:
    """NBS macro region (east, centre, west, northeast) of the province"""
    region = firm_province.astype("str").str.strip().map(PROVINCE_REGION)
    return fixed_categorical(region, MACRO_REGIONS)


@feature(GROUP, "1/0", "selection anomaly: subsidiary of a larger firm", pillar="ownership",
         label_en="subsidiary", label_zh="控股子公司")
def is_subsidiary(firm_parent_id: pd.Series, firm_known: pd.Series) -> pd.Series:
    """controlled (>= 50%) by a parent firm"""
    return _known_flag(firm_parent_id.notna(), firm_known)


@feature(GROUP, "persons", "selection anomaly: large group", pillar="ownership",
         label_en="parent group employees", label_zh="母公司集团从业人员数")
def parent_employees(firm_parent_employees: pd.Series) -> pd.Series:
    """employees of the parent's whole group"""
    return firm_parent_employees.astype("float64")


@feature(GROUP, "CNY", "selection anomaly: large group", pillar="ownership",
         label_en="parent group revenue", label_zh="母公司集团营业收入")
def parent_revenue(firm_parent_revenue: pd.Series) -> pd.Series:
    """revenue of the parent's whole group"""
    return firm_parent_revenue.astype("float64")


@feature(GROUP, "1/0", "selection anomaly: subsidiary of a large group", pillar="ownership",
         label_en="large parent group", label_zh="隶属大型企业集团")
def parent_large_group(
    is_subsidiary: pd.Series, parent_employees: pd.Series, parent_revenue: pd.Series
) -> pd.Series:
    """large parent group: >= 1,000 employees and >= 400M revenue (0 for independent firms)"""
    # features.domain.is_large: 0 where either figure is below its limit, NaN where the
    # known figures cannot tell; independent firms are 0, unknown subsidiary status NaN.
    large = pd.Series(is_large(parent_employees, parent_revenue), index=is_subsidiary.index)
    return large.where(is_subsidiary != 0.0, 0.0).where(is_subsidiary.notna())


@feature(GROUP, "fraction", "", pillar="ownership",
         label_en="state ownership share", label_zh="国有股权比例")
def state_share(firm_state_share: pd.Series) -> pd.Series:
    """state ownership share"""
    return firm_state_share.astype("float64")


@feature(GROUP, "1/0", "", pillar="ownership",
         label_en="state controlled", label_zh="国有控股")
def state_controlled(state_share: pd.Series) -> pd.Series:
    """state ownership above 50%"""
    return (state_share > STATE_CONTROL_SHARE).astype(float).where(state_share.notna())


@feature(GROUP, "1/0", "", pillar="ownership",
         label_en="listed on an A-share exchange", label_zh="A股上市")
def listed(firm_listed_board: pd.Series) -> pd.Series:
    """listed on an A-share exchange board (main, STAR, ChiNext, BSE; not NEEQ)"""
    board = firm_listed_board.astype("str")
    return board.isin(EXCHANGE_BOARDS).astype(float).where(board.notna())


@feature(GROUP, "category", "", kind="category", pillar="ownership",
         label_en="listing board", label_zh="上市板块")
def listed_board(firm_listed_board: pd.Series) -> pd.Series:
    """listing board: none, main, star, chinext, bse, neeq"""
    board = firm_listed_board.astype("str").str.strip().str.lower()
    return fixed_categorical(board, LISTED_BOARDS)
