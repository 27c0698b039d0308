"""Firm-level attributes of the synthetic universe.

Draws, for ``n`` firms, the static facts a registry would hold (sector, province, founding
year, niche entry, ownership, listing board, Unified Social Credit Code, name) plus the
latent traits that drive the yearly trajectories and the selection committee (quality,
political connections, group backing). All arrays have length ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from features.regions import PROVINCE_TABLE
from features.schemas import LISTED_BOARDS

DATA_DIR = Path(__file__).parent / "data"

BOARDS = np.array(LISTED_BOARDS)  # the contract's listing boards, in its order
# Board mix among listed firms; NEEQ dominates counts, STAR/BSE are where SME titles cluster.
BOARD_MIX = np.array([0.0, 0.22, 0.15, 0.20, 0.10, 0.33])

# GB 32100-2015 alphabet (no I, O, S, V, Z) and check-character weights 3**i mod 31.
USCC_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHJKLMNPQRTUWXY", dtype=np.uint8)
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])

TRADE_CHARS = list("恒华鑫瑞盛宏海天中科泰达博创新远力德信安正永隆兴光明通汇金佳富利昌立诚联合")
STYLE_WORDS = np.array(["", "", "精密", "智能", "科技", "精工", "新材料", "电子"])
DIVISION_TERMS = {
    "C13": "油脂食品", "C14": "食品", "C17": "纺织", "C18": "服饰", "C21": "家具",
    "C22": "纸业", "C26": "化工", "C27": "药业", "C29": "塑业", "C30": "材料",
    "C33": "金属制品", "C34": "机械", "C35": "装备", "C36": "汽车部件", "C37": "装备",
    "C38": "电气", "C39": "电子", "C40": "仪器", "I65": "信息技术", "M73": "技术研究",
    "F51": "贸易",
}


@dataclass(frozen=True)
class Reference:
    """Shipped lookup tables: ``sectors`` (one row per GB/T 4754 code) and ``provinces``."""

    sectors: pd.DataFrame
    provinces: pd.DataFrame


@lru_cache(maxsize=1)
def load_reference() -> Reference:
    """Read training/synthetic/data/sectors.csv and provinces.csv (codes kept as strings);
    province names and regions come from the one province table (features.regions)."""
    sectors = pd.read_csv(DATA_DIR / "sectors.csv", dtype={"industry_code": str, "ipc": str})
    provinces = pd.read_csv(DATA_DIR / "provinces.csv", dtype={"province": str})
    names = PROVINCE_TABLE.loc[provinces["province"], ["name_en", "name_zh", "macro_region"]]
    provinces = pd.concat([provinces, names.reset_index(drop=True)], axis=1)
    for frame in (sectors, provinces):
        frame["weight"] = frame["weight"] / frame["weight"].sum()
    return Reference(sectors=sectors, provinces=provinces)


@dataclass
class Firms:
    """Static firm attributes, arrays of length n (index = firm number).

    Money in yuan; years are calendar years. ``group`` is -1 for independent firms.
    """

    sector: np.ndarray          # int16 index into Reference.sectors
    province: np.ndarray        # int16 index into Reference.provinces
    strategic: np.ndarray       # bool, sector is a strategic / Made in China 2025 field
    founded: np.ndarray         # int16
    niche_entry: np.ndarray     # int16, >= founded
    large: np.ndarray           # bool, belongs to the established large-firm component
    quality: np.ndarray         # float32, persistent latent quality (standard normal-ish)
    group: np.ndarray           # int32 parent group number or -1
    group_employees: np.ndarray  # float64, NaN when independent or unreported
    group_revenue: np.ndarray    # float64
    state_share: np.ndarray     # float32 0..1
    board: np.ndarray           # int8 index into BOARDS
    connections: np.ndarray     # float32 >= 0, personal ties to evaluators (lenient channel)
    group_backing: np.ndarray   # bool, the parent group lobbies for this unit
    size_waiver: np.ndarray     # bool, its size would not be checked by a committee
    firm_id: np.ndarray         # '<U18' Unified Social Credit Code shaped ids
    name: np.ndarray            # '<U..' synthetic Chinese names

    @property
    def n(self) -> int:
        return len(self.sector)


def strings_from_chars(chars: np.ndarray, lengths: np.ndarray | int) -> pa.Array:
    """Arrow string array from an (m, w) uint8 matrix of ASCII codes, row i cut to lengths[i]."""
    m, w = chars.shape
    lengths = np.broadcast_to(np.asarray(lengths, np.int64), (m,))
    if np.all(lengths == w):
        data = chars.reshape(-1)
    else:
        data = chars[np.arange(w)[None, :] < lengths[:, None]]
    offsets = np.zeros(m + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), m, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(data))])


def _uscc(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """18-char codes '91' + 6-digit region + 9-char body + GB 32100 check character.

    The body is a seeded bijection of the firm number, so codes are unique by construction.
    """
    n = len(region)
    modulus = 31**8
    mult = int(rng.integers(1, modulus // 31)) * 31 + int(rng.integers(1, 31))
    offset = int(rng.integers(0, modulus))
    body = (np.arange(n, dtype=np.int64) * mult + offset) % modulus
    codes = np.empty((n, 17), dtype=np.int64)
    codes[:, 0], codes[:, 1] = 9, 1
    for k in range(6):
        codes[:, 2 + k] = (region // 10 ** (5 - k)) % 10
    for k in range(8):
        codes[:, 8 + k] = (body // 31 ** (7 - k)) % 31
    codes[:, 16] = rng.integers(0, 31, n)
    check = (31 - (codes * USCC_WEIGHTS).sum(axis=1) % 31) % 31
    chars = USCC_ALPHABET[np.concatenate([codes, check[:, None]], axis=1)]
    return np.ascontiguousarray(chars).view("S18").ravel().astype("U18")


def _names(rng: np.random.Generator, ref: Reference, sector: np.ndarray,
           province: np.ndarray, board: np.ndarray) -> np.ndarray:
    """Names like '江苏恒瑞精密机械有限公司' built from province, trade name, style, trade."""
    n = len(sector)
    short = ref.provinces["name_zh"].str.replace(r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区)$",
                                                 "", regex=True).to_numpy().astype(str)
    division = ref.sectors["industry_code"].str[:3].to_numpy()
    terms = np.array([DIVISION_TERMS.get(d, "实业") for d in division])
    chars = np.array(TRADE_CHARS)
    trade = np.strings.add(chars[rng.integers(0, len(chars), n)],
                           chars[rng.integers(0, len(chars), n)])
    suffix = np.where(board > 0, "股份有限公司", "有限公司")
    out = np.strings.add(short[province], trade)
    out = np.strings.add(out, STYLE_WORDS[rng.integers(0, len(STYLE_WORDS), n)])
    out = np.strings.add(out, terms[sector])
    return np.strings.add(out, suffix)


def draw_firms(rng: np.random.Generator, n: int, ref: Reference, last_year: int) -> Firms:
    """Draw n firms founded 1985..min(2022, last_year - 1)."""
    sectors, provinces = ref.sectors, ref.provinces
    sector = rng.choice(len(sectors), n, p=sectors["weight"].to_numpy()).astype(np.int16)
    province = rng.choice(len(provinces), n, p=provinces["weight"].to_numpy()).astype(np.int16)
    strategic = sectors["strategic"].to_numpy(bool)[sector]
    east = (provinces["macro_region"].to_numpy() == "east")[province]

    large = rng.random(n) < 0.03
    quality = (rng.standard_normal(n) + 0.12 * east + 0.1 * strategic).astype(np.float32)

    # Firm births rose steadily after the 1990s; large incumbents are older.
    last_found = min(2022, last_year - 1)
    years = np.arange(1985, last_found + 1)
    birth = np.exp(0.06 * (years - 1985))
    founded = rng.choice(years, n, p=birth / birth.sum()).astype(np.int16)
    old = rng.choice(years[years <= 2008], n)
    founded = np.where(large, np.minimum(founded, old), founded).astype(np.int16)
    pivot = rng.random(n) < 0.3
    niche_entry = founded + np.where(pivot, rng.geometric(0.2, n), 0)
    niche_entry = np.minimum(niche_entry, last_year - 1).astype(np.int16)
    niche_entry = np.maximum(niche_entry, founded)

    state_controlled = rng.random(n) < 0.075
    minority = ~state_controlled & (rng.random(n) < 0.10)
    state_share = np.where(state_controlled, np.where(rng.random(n) < 0.4, 1.0,
                                                      rng.uniform(0.51, 0.99, n)),
                           np.where(minority, rng.uniform(0.02, 0.49, n), 0.0))
    state_share = np.round(state_share, 4).astype(np.float32)

    p_sub = 0.10 + 0.25 * large + 0.45 * state_controlled
    is_sub = rng.random(n) < p_sub
    n_groups = max(1, int(is_sub.sum()) // 3)
    group = np.where(is_sub, rng.integers(0, n_groups, n), -1).astype(np.int32)
    g_emp = np.exp(rng.normal(np.log(1800), 1.3, n_groups))
    g_rev = g_emp * np.exp(rng.normal(np.log(9e5), 0.5, n_groups))
    group_employees = np.where(is_sub, np.round(g_emp[np.maximum(group, 0)]), np.nan)
    group_revenue = np.where(is_sub, np.round(g_rev[np.maximum(group, 0)], -3), np.nan)
    group_employees[is_sub & (rng.random(n) < 0.05)] = np.nan
    group_revenue[is_sub & (rng.random(n) < 0.05)] = np.nan

    p_list = 1 / (1 + np.exp(-(-3.4 + 0.7 * quality + 1.6 * large + 0.4 * strategic)))
    listed = rng.random(n) < p_list
    board = np.where(listed, rng.choice(len(BOARDS), n, p=BOARD_MIX), 0).astype(np.int8)

    connections = np.where(rng.random(n) < 0.06, rng.exponential(1.0, n), 0.0).astype(np.float32)
    group_backing = is_sub & (rng.random(n) < 0.3)
    size_waiver = rng.random(n) < 0.2

    region = (provinces["province"].astype(int).to_numpy()[province] * 10000
              + rng.integers(1, 13, n) * 100 + rng.integers(1, 20, n))
    firm_id = _uscc(rng, region)
    name = _names(rng, ref, sector, province, board)
    return Firms(sector=sector, province=province, strategic=strategic, founded=founded,
                 niche_entry=niche_entry, large=large, quality=quality, group=group,
                 group_employees=group_employees, group_revenue=group_revenue,
                 state_share=state_share, board=board, connections=connections,
                 group_backing=group_backing, size_waiver=size_waiver, firm_id=firm_id,
                 name=name)
