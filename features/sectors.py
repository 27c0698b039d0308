"""Sector features: GB/T 4754-2017 codes and strategic-sector flags.

The flags come from the shipped crosswalk ``features/data/sector_crosswalk.csv`` (scheme
``gbt4754``: industry-code prefix -> flags, matched by the longest prefix; scheme ``ipc``:
strategic IPC classes used by the patent features). Each row cites its source. Categories
use fixed lists derived from the classification itself, so a code maps to the same
category code in every frame.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from features.catalogue import feature, node

GROUP = "sector"
SECTOR_FLAGS = ("mic2025", "five_foundations", "strategic_emerging", "network_power")

# GB/T 4754-2017 sections and their two-digit division ranges.
SECTION_DIVISIONS: dict[str, tuple[int, int]] = {
    "A": (1, 5), "B": (6, 12), "C": (13, 43), "D": (44, 46), "E": (47, 50), "F": (51, 52),
    "G": (53, 60), "H": (61, 62), "I": (63, 65), "J": (66, 69), "K": (70, 70), "L": (71, 72),
    "M": (73, 75), "N": (76, 79), "O": (80, 82), "P": (83, 83), "Q": (84, 85), "R": (86, 90),
    "S": (91, 96), "T": (97, 97),
}
SECTIONS: list[str] = list(SECTION_DIVISIONS)
DIVISIONS: list[str] = [
    f"{s}{d:02d}" for s, (lo, hi) in SECTION_DIVISIONS.items() for d in range(lo, hi + 1)
]
# Every possible group code of each division (letter + 3 digits): a superset of the groups
# in use, fixed by construction, so no data-dependent category list is needed.
GROUPS: list[str] = [f"{div}{g}" for div in DIVISIONS for g in range(10)]


@lru_cache(maxsize=1)
def load_crosswalk() -> pd.DataFrame:
    """The shipped crosswalk: scheme, prefix, the four 0/1 flags, label, source."""
    path = resources.files("features") / "data" / "sector_crosswalk.csv"
    with path.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, dtype={"scheme": str, "prefix": str})
    table["prefix"] = table["prefix"].str.strip().str.upper()
    return table


@lru_cache(maxsize=1)
def strategic_ipc_prefixes() -> tuple[str, ...]:
    """IPC class/subclass prefixes counted as strategic technology (scheme ``ipc``)."""
    table = load_crosswalk()
    return tuple(table.loc[table["scheme"] == "ipc", "prefix"])


@lru_cache(maxsize=1)
def _industry_prefix_flags() -> dict[str, tuple[float, ...]]:
    table = load_crosswalk()
    table = table[table["scheme"] == "gbt4754"]
    flags = table[list(SECTOR_FLAGS)].astype(float).to_numpy()
    return {p: tuple(f) for p, f in zip(table["prefix"], flags)}


def sector_flags_for(code: str) -> tuple[float, ...]:
    """Flags of the longest crosswalk prefix of ``code`` (all 0.0 if none matches)."""
    prefixes = _industry_prefix_flags()
    for length in range(len(code), 0, -1):
        hit = prefixes.get(code[:length])
        if hit is not None:
            return hit
    return (0.0,) * len(SECTOR_FLAGS)


def fixed_categorical(values: pd.Series, categories: list[str]) -> pd.Series:
    """``values`` as a category Series over the fixed ``categories`` (others become NaN)."""
    dtype = _category_dtype(tuple(categories))
    # Map the few distinct values, then broadcast: cheap for millions of rows.
    value_codes, uniques = pd.factorize(values)
    lookup = np.append(dtype.categories.get_indexer(np.asarray(uniques, dtype=object)), -1)
    codes = lookup[value_codes]
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), index=values.index)


@cache
def _category_dtype(categories: tuple[str, ...]) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(list(categories))


@node
def industry_code_clean(firm_industry_code: pd.Series) -> pd.Series:
    return firm_industry_code.astype("str").str.strip().str.upper()


@node
def sector_flag_matrix(industry_code_clean: pd.Series) -> np.ndarray:
    # Few distinct codes: resolve each once, then broadcast to the firms.
    codes, uniques = pd.factorize(industry_code_clean)
    table = np.array([sector_flags_for(str(u)) for u in uniques], dtype=float).reshape(
        len(uniques), len(SECTOR_FLAGS)
    )
    out = np.full((len(codes), len(SECTOR_FLAGS)), np.nan)
    known = codes >= 0
    out[known] = table[codes[known]]
    return out


@feature(GROUP, "category", "", kind="category", pillar="sector",
         label_en="industry section", label_zh="国民经济行业门类")
def industry_section(industry_code_clean: pd.Series) -> pd.Series:
    """GB/T 4754-2017 section letter of the main business"""
    return fixed_categorical(industry_code_clean.str.slice(0, 1), SECTIONS)


@feature(GROUP, "category", "", kind="category", pillar="sector",
         label_en="industry division", label_zh="国民经济行业大类")
def industry_division(industry_code_clean: pd.Series) -> pd.Series:
    """GB/T 4754-2017 division (letter + 2 digits)"""
    return fixed_categorical(industry_code_clean.str.slice(0, 3), DIVISIONS)


@feature(GROUP, "category", "", kind="category", pillar="sector",
         label_en="industry group", label_zh="国民经济行业中类")
def industry_group(industry_code_clean: pd.Series) -> pd.Series:
    """GB/T 4754-2017 group (letter + 3 digits); missing when the code has only a division"""
    return fixed_categorical(industry_code_clean.str.slice(0, 4), GROUPS)


def _flag(matrix: np.ndarray, name: str, index: pd.Index) -> pd.Series:
    return pd.Series(matrix[:, SECTOR_FLAGS.index(name)], index=index)


@feature(GROUP, "1/0", "品 Made in China 2025 sectors", pillar="sector",
         label_en="Made in China 2025 sector", label_zh="制造强国战略十大重点产业领域")
def sector_mic2025(sector_flag_matrix, industry_code_clean):
    """main business in one of the ten Made in China 2025 sectors"""
    return _flag(sector_flag_matrix, "mic2025", industry_code_clean.index)


@feature(GROUP, "1/0", "品 五基 industrial foundations", pillar="sector",
         label_en="industrial foundations field", label_zh="工业“五基”领域")
def sector_five_foundations(sector_flag_matrix, industry_code_clean):
    """main business in an industrial-foundation field (components, processes, materials, base, software)"""
    return _flag(sector_flag_matrix, "five_foundations", industry_code_clean.index)


@feature(GROUP, "1/0", "innovative: Strategic Emerging Industries catalogue", pillar="sector",
         label_en="strategic emerging industry", label_zh="战略性新兴产业")
def sector_strategic_emerging(sector_flag_matrix, industry_code_clean):
    """main business in the NBS 2018 Strategic Emerging Industries classification"""
    return _flag(sector_flag_matrix, "strategic_emerging", industry_code_clean.index)


@feature(GROUP, "1/0", "品 network-power areas", pillar="sector",
         label_en="network-power area", label_zh="网络强国建设领域")
def sector_network_power(sector_flag_matrix, industry_code_clean):
    """main business in a network-power area (information infrastructure, key core IT, cyber and data security)"""
    return _flag(sector_flag_matrix, "network_power", industry_code_clean.index)
