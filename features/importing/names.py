"""Matching the names of a name-only list (the MIIT lists publish names, no codes) to the
firms table, and checking Unified Social Credit Codes.

A name is matched in three steps, each only among the firms of the list row's province
when the list gives one:
1. exact: the name as written equals `firms.name`;
2. normalised: equal after `normalise_name` (full-width to half-width, brackets, spaces,
   the legal form 股份有限公司 / 有限责任公司 / 有限公司 with or without 集团, a leading
   province or city);
3. fuzzy: the best normalised name by RapidFuzz's ratio, at least FUZZY_MIN_SCORE and
   clearly ahead of the second best (FUZZY_MARGIN).
More than one firm at a step is "ambiguous"; no firm at any step is "unmatched".
"""

from __future__ import annotations

import re
import unicodedata

import pandas as pd
from rapidfuzz import fuzz, process

from features.regions import PROVINCE_TABLE

FUZZY_MIN_SCORE = 85.0
FUZZY_MARGIN = 3.0
MATCH_KINDS = ("exact", "normalised", "fuzzy", "ambiguous", "unmatched")

# The legal form, with a "(集团)" lists often add or drop before it.
_LEGAL_FORM = re.compile(r"(集团)?(股份有限公司|有限责任公司|有限公司|股份公司|(co\.?,?)?ltd\.?|"
                         r"limited|company|corporation|inc\.?)$", re.IGNORECASE)
_PROVINCE_PREFIX = re.compile(
    "^(" + "|".join(sorted({alias for aliases in PROVINCE_TABLE["aliases"]
                            for alias in aliases.split("|") if not alias.isascii()}
                           | set(PROVINCE_TABLE["name_zh"]), key=len, reverse=True))
    + r")(省|市|自治区)?")
# A leading prefecture-level city ("苏州", "苏州市"): two or three characters before 市.
_CITY_PREFIX = re.compile(r"^[\u4e00-\u9fff]{2,3}市")
_PUNCTUATION = re.compile(r"[\s()\[\]{}<>·.,，。、\"'“”‘’\-_/]+")


def normalise_name(name: str) -> str:
    """The part of a firm's name that identifies it: NFKC (full-width letters, digits and
    brackets become half-width), no spaces or brackets, no legal form, no leading province
    or city. "浙江 精工机器人（杭州）股份有限公司" -> "精工机器人杭州"."""
    text = unicodedata.normalize("NFKC", str(name)).strip().lower()
    text = _PUNCTUATION.sub("", text)
    text = _LEGAL_FORM.sub("", text)
    text = _PROVINCE_PREFIX.sub("", text)
    return _CITY_PREFIX.sub("", text) or text


def match_names(names: pd.Series, provinces: pd.Series | None, firms: pd.DataFrame
                ) -> pd.DataFrame:
    """Per list row: firm_id (None unless matched), kind (MATCH_KINDS), score (100 for
    exact and normalised, RapidFuzz's for fuzzy) and the firm's name. `provinces`: the
    list's province codes (None or NA where not given); `firms`: firm_id, name, province."""
    firms = firms.dropna(subset=["name"]).reset_index(drop=True)
    firm_keys = firms["name"].map(normalise_name)
    by_name = firms.groupby("name")["firm_id"].apply(list).to_dict()
    rows = []
    for position, name in enumerate(names):
        province = None if provinces is None else provinces.iloc[position]
        province = None if pd.isna(province) else str(province)
        rows.append(_match_one(str(name), province, firms, firm_keys, by_name))
    return pd.DataFrame(rows, columns=["firm_id", "kind", "score", "matched_name"],
                        index=names.index)


def _match_one(name: str, province: str | None, firms: pd.DataFrame, keys: pd.Series,
               by_name: dict) -> tuple:
    in_province = (firms["province"] == province).to_numpy() if province else None
    exact = by_name.get(name.strip(), [])
    if province:
        exact = [f for f in exact if f in set(firms.loc[in_province, "firm_id"])]
    if len(exact) == 1:
        return exact[0], "exact", 100.0, name.strip()
    if len(exact) > 1:
        return None, "ambiguous", 100.0, None
    key = normalise_name(name)
    pool = keys[in_province] if province else keys
    same = pool[pool == key]
    if len(same) == 1:
        return firms.at[same.index[0], "firm_id"], "normalised", 100.0, firms.at[same.index[0], "name"]
    if len(same) > 1:
        return None, "ambiguous", 100.0, None
    best = process.extract(key, pool.to_dict(), scorer=fuzz.ratio, limit=2)
    if best and best[0][1] >= FUZZY_MIN_SCORE:
        if len(best) > 1 and best[0][1] - best[1][1] < FUZZY_MARGIN:
            return None, "ambiguous", round(best[0][1], 1), None
        index = best[0][2]
        return firms.at[index, "firm_id"], "fuzzy", round(best[0][1], 1), firms.at[index, "name"]
    return None, "unmatched", round(best[0][1], 1) if best else 0.0, None


# GB 32100-2015: 18 characters from this alphabet (no I, O, Z, S, V); the last is a check
# character over the first 17 with these weights, modulo 31.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_is_valid(code: str) -> bool:
    """Whether `code` is a Unified Social Credit Code with a correct check character
    (GB 32100-2015)."""
    code = str(code).strip().upper()
    if len(code) != 18 or any(c not in _USCC_ALPHABET for c in code):
        return False
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS))
    return _USCC_ALPHABET[(31 - total % 31) % 31] == code[17]
