"""Certification history and firm age at the start of the as-of year t.

``certifications_known`` holds only the certification rows announced before t (the lists of
t itself are the target) of the scored firms, with their row position in the feature frame
in column ``pos``; ``firm_index`` is the positional index (RangeIndex) of the scored firms.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import feature
from features.domain import TITLE_EVENTS, holds_valid_title, is_one_of

GROUP = "history"


def _holds(certifications_known: pd.DataFrame, year: int, tier: str, firm_index: pd.Index):
    held = holds_valid_title(certifications_known, year, tier, key="pos")
    out = np.zeros(len(firm_index))
    out[held.index[held.to_numpy(dtype=bool)].to_numpy(dtype=np.int64)] = 1.0
    return pd.Series(out, index=firm_index)


def _years_since_first(certs: pd.DataFrame, year: int, tier: str, firm_index: pd.Index):
    titles = is_one_of(certs["tier"], (tier,)) & is_one_of(certs["event"], TITLE_EVENTS)
    # Earliest title year per firm by scatter-min over positions (+inf: none; NaN years
    # skipped, as a groupby's min does), without a groupby's fixed cost per call.
    first = np.full(len(firm_index), np.inf)
    np.fmin.at(first, certs["pos"].to_numpy(dtype=np.int64)[titles],
               certs["year"].to_numpy(dtype="float64", na_value=np.nan)[titles])
    return pd.Series(np.where(np.isfinite(first), year - first, np.nan), index=firm_index)


def _per_firm_count(certs: pd.DataFrame, event: str, firm_index: pd.Index) -> np.ndarray:
    pos = certs["pos"].to_numpy(dtype=np.int64)[is_one_of(certs["event"], (event,))]
    return np.bincount(pos, minlength=len(firm_index)).astype("float64")


@feature(GROUP, "1/0", "", pillar="history",
         label_en="holds Innovative SME title", label_zh="持有创新型中小企业称号")
def holds_innovative(certifications_known, year, firm_index):
    """valid Innovative SME title at the start of t"""
    return _holds(certifications_known, year, "innovative", firm_index)


@feature(GROUP, "1/0", "little giant: must already be a Specialized SME", pillar="history",
         label_en="holds Specialized SME title", label_zh="持有专精特新中小企业称号")
def holds_specialized(certifications_known, year, firm_index):
    """valid Specialized SME title at the start of t"""
    return _holds(certifications_known, year, "specialized", firm_index)


@feature(GROUP, "1/0", "champion: Little Giants below 400M qualify", pillar="history",
         label_en="holds Little Giant title", label_zh="持有专精特新“小巨人”称号")
def holds_little_giant(certifications_known, year, firm_index):
    """valid Little Giant title at the start of t"""
    return _holds(certifications_known, year, "little_giant", firm_index)


@feature(GROUP, "1/0", "little giant: not recommended if already a Single Champion",
         pillar="history", label_en="holds Single Champion title", label_zh="持有制造业单项冠军称号")
def holds_champion(certifications_known, year, firm_index):
    """valid Single Champion title at the start of t"""
    return _holds(certifications_known, year, "champion", firm_index)


@feature(GROUP, "level 0-4", "", pillar="history",
         label_en="highest title held", label_zh="已获最高称号等级")
def title_level(holds_innovative, holds_specialized, holds_little_giant, holds_champion):
    """highest valid title: 0 none, 1 innovative, 2 specialized, 3 little giant, 4 champion"""
    held = [holds_innovative, holds_specialized, holds_little_giant, holds_champion]
    level = np.zeros(len(holds_innovative))
    for rank, holds in enumerate(held, start=1):
        level[holds.to_numpy(dtype=np.float64) == 1.0] = float(rank)
    return pd.Series(level, index=holds_innovative.index)


@feature(GROUP, "years", "", pillar="history",
         label_en="years since Specialized SME title", label_zh="获专精特新中小企业称号年数")
def years_held_specialized(certifications_known, year, firm_index):
    """years since the first Specialized SME title (NaN if never held)"""
    return _years_since_first(certifications_known, year, "specialized", firm_index)


@feature(GROUP, "years", "", pillar="history",
         label_en="years since Little Giant title", label_zh="获“小巨人”称号年数")
def years_held_little_giant(certifications_known, year, firm_index):
    """years since the first Little Giant title (NaN if never held)"""
    return _years_since_first(certifications_known, year, "little_giant", firm_index)


@feature(GROUP, "years", "", pillar="history",
         label_en="years since Single Champion title", label_zh="获单项冠军称号年数")
def years_held_champion(certifications_known, year, firm_index):
    """years since the first Single Champion title (NaN if never held)"""
    return _years_since_first(certifications_known, year, "champion", firm_index)


@feature(GROUP, "count", "", pillar="history",
         label_en="re-reviews passed", label_zh="通过复核次数")
def renewals_passed(certifications_known, firm_index):
    """re-reviews passed (renewed rows of any tier) before t"""
    return pd.Series(_per_firm_count(certifications_known, "renewed", firm_index),
                     index=firm_index)


@feature(GROUP, "1/0", "", pillar="history",
         label_en="title ever revoked", label_zh="曾被撤销称号")
def ever_revoked(certifications_known, firm_index):
    """a title of any tier was revoked before t"""
    revoked = _per_firm_count(certifications_known, "revoked", firm_index)
    return pd.Series((revoked > 0).astype("float64"), index=firm_index)


@feature(GROUP, "years", "champion: >= 10 years in the field", pillar="history",
         label_en="firm age", label_zh="企业成立年限")
def firm_age(firm_founded_year: pd.Series, year: int) -> pd.Series:
    """t - founded_year"""
    return (year - firm_founded_year).astype("float64")


@feature(GROUP, "years", "专 years in the niche", pillar="specialization",
         label_en="years in the niche", label_zh="从事特定细分市场年限")
def years_in_niche(firm_niche_entry_year: pd.Series, year: int) -> pd.Series:
    """t - niche_entry_year"""
    return (year - firm_niche_entry_year).astype("float64")
