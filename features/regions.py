"""Province-level divisions: GB/T 2260 codes, English and Chinese names, NBS macro regions.

One table, features/data/provinces.csv, read here; the region features, the reasons, the
output tables and the synthetic universe all take province names and regions from it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from features.domain import FEW_ROWS


def _read() -> pd.DataFrame:
    with resources.files("features").joinpath("data/provinces.csv").open("rb") as handle:
        table = pd.read_csv(handle, dtype=str, keep_default_na=False)
    return table.set_index("code", drop=False)


PROVINCE_TABLE: pd.DataFrame = _read()
# Codes in ascending order: the fixed category list of the `province` feature.
PROVINCES: list[str] = sorted(PROVINCE_TABLE["code"])
# The NBS four-region split used by the published regional statistics (east 55%, centre
# 23%, west 16%, north-east 6% of Little Giants); Taiwan, Hong Kong and Macao have GB/T 2260
# codes but no mainland region.
MACRO_REGIONS: list[str] = ["east", "centre", "west", "northeast"]
PROVINCE_REGION: dict[str, str] = {
    code: region for code, region in PROVINCE_TABLE["macro_region"].items() if region
}


_NAME_COLUMNS = {"en": "name_en", "zh": "name_zh"}


@cache
def _name_of(lang: str) -> dict[str, str]:
    return dict(PROVINCE_TABLE[_NAME_COLUMNS[lang]])


def province_names(codes, lang: str = "en") -> np.ndarray:
    """Name of each GB/T 2260 code (``lang`` "en" or "zh"); None where unknown. A code is
    read as text without surrounding blanks (33, " 33" and "33" are Zhejiang)."""
    values = np.asarray(codes, dtype=object)
    # A few codes (FEW_ROWS) are looked up one by one in a dict: a one-firm answer would pay
    # pandas' fixed cost of a Series, a cast, a strip and a map (about a millisecond) a name.
    if len(values) <= FEW_ROWS:
        name_of = _name_of(lang)
        return np.array([None if pd.isna(code) else name_of.get(str(code).strip())
                         for code in values] + [None], dtype=object)[:-1]
    names = PROVINCE_TABLE[_NAME_COLUMNS[lang]]
    keys = pd.Series(values).astype("str").str.strip()
    return keys.map(names).astype(object).where(lambda s: s.notna(), None).to_numpy()
