"""Individual IP rights of the synthetic universe.

Filings are Poisson per firm-year with a rate driven by that year's R&D spend (plus a
pre-sample stock for older firms); each right then gets a grant lag, a refusal, a lapse
(unpaid annuities, end of term, exit of the holder) and an IPC class of its sector. The
resulting rows look like CNIPA records; the per-firm counts of rights in force at each
year end are returned for the committee and the HNTE certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from training.synthetic.firms import Firms, Reference, strings_from_chars
from training.synthetic.trajectories import Panel

KINDS = np.array(["invention", "utility", "design", "software"])
# Filings per year at 1M yuan of R&D, before sector and firm factors.
BASE_RATE = np.array([0.28, 0.30, 0.08, 0.05])
# Utility models and designs are cheap: small firms file them almost as readily as big ones.
RD_ELASTICITY = np.array([0.75, 0.55, 0.4, 0.6])
# Beyond 10M yuan of R&D, filings grow more slowly than spend (big labs, fewer filings per yuan).
RD_KINK, RD_ELASTICITY_HIGH = 10.0, 0.25
GRANT_PROB = np.array([0.60, 0.93, 0.95, 1.0])          # ~40% of inventions are refused
GRANT_LAG_YEARS = np.array([[1.5, 3.0], [0.5, 1.0], [0.25, 0.6], [0.08, 0.3]])
LAPSE_HAZARD = np.array([0.06, 0.12, 0.12, 0.02])       # per year after grant
TERM_YEARS = np.array([20, 10, 10, 50])
PRE_SAMPLE_DECAY = 0.15                                 # R&D was lower before the sample
CN_CHECK_WEIGHTS = np.array([2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5])
BLOCK = 65_536        # firms per block of patent draws (bounds temporary memory)
ID_CHUNK = 1 << 21    # rows per chunk when spelling patent numbers


@dataclass
class Patents:
    """Patent rows (length m arrays; int32 days since 1970-01-01, -1 = empty), ordered by
    firm then filing date, and year-end stocks.

    ``valid_inv`` / ``valid_ip`` are (n, T) int32 counts of invention patents / all rights
    granted by the end of each fiscal year and not lapsed by then.
    """

    firm: np.ndarray
    kind: np.ndarray
    filed: np.ndarray
    granted: np.ndarray
    lapsed: np.ndarray
    ipc: np.ndarray       # int32 index into ``ipc_classes``, -1 for none
    patent_id: pa.Array
    ipc_classes: np.ndarray
    valid_inv: np.ndarray
    valid_ip: np.ndarray


def _sector_factors(ref: Reference) -> np.ndarray:
    """(n_sectors, 4) multipliers of the filing rate per kind."""
    code = ref.sectors["industry_code"].to_numpy()
    div = np.array([c[:3] for c in code])
    strategic = ref.sectors["strategic"].to_numpy(bool)
    inv = np.where(strategic, 1.3, 1.0) * np.where(div == "F51", 0.2, 1.0)
    machinery = np.isin(div, ["C33", "C34", "C35", "C36", "C37", "C38", "C40"])
    utility = np.select([machinery, np.isin(div, ["I65", "M73"]), np.isin(div, ["C13", "C14"])],
                        [1.3, 0.1, 0.5], 1.0)
    design = np.select([div == "C21", div == "C18", np.isin(div, ["C17", "C38", "C29"]),
                        div == "I65"], [4.0, 3.0, 1.5, 0.05], 0.5)
    software = np.select([div == "I65", div == "M73", np.isin(div, ["C39", "C40"])],
                         [6.0, 2.0, 1.5], 0.3)
    return np.stack([inv, utility, design, software], axis=1)


def _year_start_days(years: np.ndarray) -> np.ndarray:
    return (np.asarray(years, np.int64) - 1970).astype("datetime64[Y]").astype(
        "datetime64[D]").astype(np.int64)


def _year_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def _patent_ids(rng: np.random.Generator, kind: np.ndarray, year: np.ndarray) -> pa.Array:
    """CNIPA-style numbers 'CN' yyyy t nnnnnnn '.' c, software copyrights 'yyyySRnnnnnnn'.

    Serials are spread over disjoint slices of the 7-digit space per (year, kind), so the
    numbers are unique by construction.
    """
    m = len(kind)
    if m == 0:
        return pa.array([], pa.string())
    key = (year.astype(np.int32) - 1900) * 4 + kind
    perm = rng.permutation(m)
    order = perm[np.argsort(key[perm], kind="stable")]
    del perm
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    sizes = np.diff(np.r_[starts, m])
    if sizes.max() > 9_999_999:
        raise ValueError("more than 9,999,999 filings of one kind in one year")
    rank = np.empty(m, np.int64)
    rank[order] = np.arange(m) - np.repeat(starts, sizes)
    stride = np.empty(m, np.int64)
    stride[order] = np.repeat(9_999_999 // sizes, sizes)
    del order, sorted_key
    serial = 1 + rank * stride + (rng.random(m) * stride).astype(np.int64)
    del rank, stride
    chunks = [_id_chunk(kind[i:i + ID_CHUNK], year[i:i + ID_CHUNK], serial[i:i + ID_CHUNK])
              for i in range(0, m, ID_CHUNK)]
    return pa.concat_arrays(chunks)


def _id_chunk(kind: np.ndarray, year: np.ndarray, serial: np.ndarray) -> pa.Array:
    m = len(kind)
    digits = np.empty((m, 12), np.uint8)
    for k in range(4):
        digits[:, k] = (year // 10 ** (3 - k)) % 10
    digits[:, 4] = kind + 1
    for k in range(7):
        digits[:, 5 + k] = (serial // 10 ** (6 - k)) % 10
    check = np.zeros(m, np.int32)
    for k, weight in enumerate(CN_CHECK_WEIGHTS):
        check += digits[:, k] * np.int32(weight)
    check %= 11
    digits += ord("0")
    software = kind == 3
    cn_cols = ([np.uint8(ord("C")), np.uint8(ord("N"))] + [digits[:, k] for k in range(12)]
               + [np.uint8(ord(".")), np.where(check == 10, ord("X"), check + ord("0"))])
    sr_cols = ([digits[:, k] for k in range(4)] + [np.uint8(ord("S")), np.uint8(ord("R"))]
               + [digits[:, k] for k in range(5, 12)] + [np.uint8(0)] * 3)
    chars = np.empty((m, 16), np.uint8)
    for k in range(16):
        chars[:, k] = np.where(software, sr_cols[k], cn_cols[k])
    return strings_from_chars(chars, np.where(software, 13, 16))


def _ipc_table(ref: Reference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class names, (n_sectors, width) class indexes, classes per sector)."""
    per_sector = [s.split() for s in ref.sectors["ipc"].fillna("")]
    classes = np.array(sorted({c for cls in per_sector for c in cls}))
    table = np.zeros((len(per_sector), max(len(c) for c in per_sector)), np.int16)
    for s, cls in enumerate(per_sector):
        table[s, :len(cls)] = np.searchsorted(classes, cls)
    return classes, table, np.array([len(c) for c in per_sector])


def simulate_patents(seed: np.random.SeedSequence, firms: Firms, panel: Panel, ref: Reference,
                     exit_year: np.ndarray) -> Patents:
    """Draw every IP right; ``exit_year`` (n,) is the first year a firm no longer operates
    (beyond the last sample year for survivors). Firms are processed in fixed blocks so
    temporary memory stays bounded; rows come out ordered by firm, then filing date."""
    n, T = panel.revenue.shape
    classes, table, n_cls = _ipc_table(ref)
    factors = _sector_factors(ref)
    valid_inv = np.zeros((n, T), np.int32)
    valid_ip = np.zeros((n, T), np.int32)
    starts = range(0, n, BLOCK)
    seeds = seed.spawn(len(starts) + 1)
    parts = []
    for start, block_seed in zip(starts, seeds):
        rows = slice(start, min(start + BLOCK, n))
        part = _draw_block(np.random.default_rng(block_seed), firms, panel, rows, exit_year,
                           factors, table, n_cls)
        valid_inv[rows], valid_ip[rows] = _year_end_stocks(part, rows.stop - rows.start, T,
                                                           int(panel.years[0]))
        part["firm"] += start
        parts.append(part)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    del parts
    patent_id = _patent_ids(np.random.default_rng(seeds[-1]), cols["kind"],
                            _year_of(cols["filed"]))
    return Patents(firm=cols["firm"], kind=cols["kind"], filed=cols["filed"],
                   granted=cols["granted"], lapsed=cols["lapsed"], ipc=cols["ipc"],
                   patent_id=patent_id, ipc_classes=classes, valid_inv=valid_inv,
                   valid_ip=valid_ip)


def _draw_block(rng: np.random.Generator, firms: Firms, panel: Panel, rows: slice,
                exit_year: np.ndarray, factors: np.ndarray, table: np.ndarray,
                n_cls: np.ndarray) -> dict[str, np.ndarray]:
    """Patents of the firms in ``rows``; firm numbers relative to the block start, dates as
    int32 days since 1970 (-1 empty)."""
    T = panel.revenue.shape[1]
    first_year, last_year = int(panel.years[0]), int(panel.years[-1])
    sector = firms.sector[rows]
    n = len(sector)
    propensity = np.exp(rng.normal(0, 0.5, n) + 0.3 * firms.quality[rows]).astype(np.float32)
    rd_m = np.nan_to_num(panel.rd[rows] / 1e6, nan=0.0)
    with np.errstate(divide="ignore"):
        log_rd = np.log(np.minimum(rd_m, RD_KINK))                    # -inf without R&D
    growth = np.maximum(rd_m / RD_KINK, 1.0) ** RD_ELASTICITY_HIGH * propensity[:, None]
    first_obs = np.argmax(panel.obs[rows], axis=1)
    pre_years = np.maximum(first_year - np.maximum(firms.founded[rows].astype(np.int64), 1995), 0)
    pre_weight = (np.exp(-PRE_SAMPLE_DECAY) * (1 - np.exp(-PRE_SAMPLE_DECAY * pre_years))
                  / (1 - np.exp(-PRE_SAMPLE_DECAY)))
    rate = BASE_RATE[None, :] * factors[sector]                         # (n, 4)

    parts_firm, parts_year, parts_kind = [], [], []
    for k in range(4):
        intensity = np.exp(RD_ELASTICITY[k] * log_rd) * growth           # (n, T)
        pre_intensity = intensity[np.arange(n), first_obs] * pre_weight
        counts = rng.poisson(intensity * rate[:, k, None]).ravel()
        cells = np.repeat(np.arange(n * T, dtype=np.int32), counts)
        pre = rng.poisson(pre_intensity * rate[:, k])
        pre_firm = np.repeat(np.arange(n, dtype=np.int32), pre)
        span = pre_years[pre_firm]
        u = rng.random(len(pre_firm))
        back = 1 + np.floor(-np.log1p(-u * (1 - np.exp(-PRE_SAMPLE_DECAY * span)))
                            / PRE_SAMPLE_DECAY)
        parts_firm += [cells // T, pre_firm]
        parts_year += [cells % T + first_year, first_year - np.minimum(back, span)]
        parts_kind.append(np.full(len(cells) + len(pre_firm), k, np.int8))
    firm = np.concatenate(parts_firm).astype(np.int32)
    year = np.concatenate(parts_year).astype(np.int64)
    kind = np.concatenate(parts_kind)
    m = len(firm)

    filed = _year_start_days(year) + (rng.random(m) * 365).astype(np.int64)
    cut = int(_year_start_days(np.array([last_year + 1]))[0]) - 1
    lag = GRANT_LAG_YEARS[kind]
    grant = filed + ((lag[:, 0] + rng.random(m) * (lag[:, 1] - lag[:, 0])) * 365).astype(np.int64)
    granted = (rng.random(m) < GRANT_PROB[kind]) & (grant <= cut)
    lapse = grant + (rng.exponential(1.0, m) / LAPSE_HAZARD[kind] * 365).astype(np.int64)
    lapse = np.minimum(lapse, filed + TERM_YEARS[kind] * 365)
    exit_day = (_year_start_days(exit_year[rows][firm])
                + (rng.uniform(0.5, 2.0, m) * 365).astype(np.int64))
    lapse = np.maximum(np.minimum(lapse, exit_day), grant + 30)
    lapsed = granted & (lapse <= cut)

    firm_sector = sector[firm]
    main_pick = (rng.random(n) * n_cls[sector]).astype(np.int64)
    other_pick = (rng.random(m) * n_cls[firm_sector]).astype(np.int64)
    pick = np.where(rng.random(m) < 0.7, main_pick[firm], other_pick)
    ipc = np.where(kind <= 1, table[firm_sector, pick], -1).astype(np.int16)

    order = np.argsort(firm.astype(np.int64) * 65_536 + (filed - filed.min(initial=0)),
                       kind="stable")
    return {"firm": firm[order], "kind": kind[order], "filed": filed[order].astype(np.int32),
            "granted": np.where(granted, grant, -1)[order].astype(np.int32),
            "lapsed": np.where(lapsed, lapse, -1)[order].astype(np.int32), "ipc": ipc[order]}


def _year_end_stocks(part: dict[str, np.ndarray], n: int, T: int,
                     first_year: int) -> tuple[np.ndarray, np.ndarray]:
    """Rights in force at each year end: grants up to then minus lapses up to then."""
    firm, grant, lapse = part["firm"].astype(np.int64), part["granted"], part["lapsed"]

    def stock(mask):
        plus_idx = np.clip(_year_of(grant[mask]) - first_year, 0, T - 1)
        out = np.bincount(firm[mask] * T + plus_idx, minlength=n * T)
        gone = mask & (lapse >= 0)
        minus_idx = np.clip(_year_of(lapse[gone]) - first_year, 0, T - 1)
        out -= np.bincount(firm[gone] * T + minus_idx, minlength=n * T)
        return np.cumsum(out.reshape(n, T), axis=1).astype(np.int32)

    granted = grant >= 0
    return stock(granted & (part["kind"] == 0)), stock(granted)


def arrow_columns(p: Patents, firm_ids: pa.Array) -> dict[str, pa.Array]:
    """Arrow arrays of the patents table (dates as timestamp[us], empty = null)."""
    def dates(days):
        return pa.array(days.astype("datetime64[D]").astype("datetime64[us]"),
                        mask=days < 0, type=pa.timestamp("us"))

    ipc = pa.array(p.ipc_classes.astype(str)).take(pa.array(p.ipc, mask=p.ipc < 0))
    return {
        "patent_id": p.patent_id,
        "firm_id": firm_ids.take(pa.array(p.firm)),
        "kind": pa.array(KINDS).take(pa.array(p.kind)),
        "filed": dates(p.filed),
        "granted": dates(p.granted),
        "lapsed": dates(p.lapsed),
        "ipc": ipc,
    }
