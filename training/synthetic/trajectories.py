"""Yearly firm trajectories: the (firm x year) panel of financials and capabilities.

Every array in :class:`Panel` has shape ``(n_firms, n_years)`` with column ``j`` the fiscal
year ``first_year + j``. Money in yuan (float32 internally), shares as fractions, counts as
floats. Missing reports are NaN (or -1 for the coded booleans) exactly as a user would see
them, because the selection committee reads the same published figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synthetic.firms import Firms, Reference

F32 = np.float32

# Demand shocks by calendar year (log growth added to every firm): 2020 pandemic dip,
# 2021 rebound, 2022 lockdowns.
MACRO = {2015: -0.03, 2016: -0.01, 2019: -0.01, 2020: -0.07, 2021: 0.08, 2022: -0.04,
         2023: -0.01}
# Revenue per employee relative to general manufacturing, by GB/T 4754 division.
PRODUCTIVITY = {"F51": 1.1, "C13": 0.6, "C26": 0.35, "C27": 0.1, "C17": -0.45, "C18": -0.6,
                "C21": -0.3, "I65": -0.35, "M73": -0.5, "C36": 0.2, "C38": 0.15}
# Reporting gaps in the mandatory financials, and optional items left empty.
GAP_RATE = 0.012
MISSING = {"main_share": 0.03, "rd_staff": 0.04, "export": 0.04, "equity": 0.03,
           "dom_share": 0.05, "rank": 0.05, "bool": 0.03}


@dataclass
class Panel:
    """(n, T) arrays of the yearly financial reports; ``years`` lists the T fiscal years."""

    years: np.ndarray
    alive: np.ndarray        # bool, firm operating in the year
    obs: np.ndarray          # bool, a financial report exists (alive and not a reporting gap)
    revenue: np.ndarray
    main_share: np.ndarray   # main-business revenue / revenue, NaN unreported
    net_profit: np.ndarray
    assets: np.ndarray
    liabilities: np.ndarray
    rd: np.ndarray           # R&D expense, yuan
    employees: np.ndarray    # headcount (integer-valued float32)
    rd_staff: np.ndarray     # NaN unreported
    export: np.ndarray
    equity: np.ndarray       # new equity paid in during the year, 0 when no round
    dom_share: np.ndarray    # domestic niche market share
    dom_rank: np.ndarray     # NaN when not ranked (outside the top 30) or unreported
    glob_rank: np.ndarray    # NaN outside the global top 20 or unreported
    rd_inst: np.ndarray      # int8 0 none, 1 city, 2 provincial, 3 national
    quality_cert: np.ndarray  # int8 1/0, -1 unknown
    own_brand: np.ndarray    # int8 1/0, -1 unknown
    high_tech: np.ndarray    # int8 1/0, -1 unknown; filled once patents exist
    subsidies: np.ndarray    # filled once titles are known


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _rank_from_share(share: np.ndarray, lead: float, noise: np.ndarray) -> np.ndarray:
    """Rank in a niche from a market share: a ~lead share is the leader, 1% is ~25th."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rank = 1.0 + np.floor(np.maximum(lead / share - 1.0, 0.0) * 0.8 * noise)
    return rank.astype(F32)


def simulate_panel(rng: np.random.Generator, firms: Firms, ref: Reference,
                   first_year: int, last_year: int) -> Panel:
    """Simulate revenue paths and derived financials for every firm-year it exists."""
    n, years = firms.n, np.arange(first_year, last_year + 1)
    T = len(years)
    q = firms.quality
    strategic = firms.strategic.astype(F32)
    division = ref.sectors["industry_code"].str[:3].to_numpy()
    prod_sector = np.array([PRODUCTIVITY.get(d, 0.0) for d in division], F32)[firms.sector]
    rd_base = ref.sectors["rd_intensity"].to_numpy(F32)[firms.sector]

    start = np.maximum(firms.founded.astype(np.int32) - first_year, 0)
    hazard = np.clip(0.028 * np.exp(-0.45 * q), 0.004, 0.15) * np.where(firms.large, 0.4, 1.0)
    exit_idx = start + rng.geometric(hazard)
    j = np.arange(T)[None, :]
    alive = (j >= start[:, None]) & (j < exit_idx[:, None])
    interior = alive & (j > start[:, None]) & (j < np.minimum(exit_idx, T)[:, None] - 1)
    obs = alive & ~(interior & (rng.random((n, T)) < GAP_RATE))

    age0 = np.maximum(first_year - firms.founded.astype(F32), 0)
    established = firms.founded < first_year
    lr = np.where(established,
                  np.log(1.1e7) + 0.5 * q + 0.06 * np.minimum(age0, 25)
                  + rng.normal(0, 0.95, n),
                  np.log(2.5e6) + 0.35 * q + rng.normal(0, 0.8, n))
    lr = np.where(firms.large, rng.normal(np.log(8e8), 0.6, n), lr).astype(F32)

    ln_prod0 = (np.log(6e5) + prod_sector + 0.15 * q + rng.normal(0, 0.35, n)).astype(F32)
    main_logit = (1.6 + 0.5 * q + rng.normal(0, 1.0, n)).astype(F32)
    margin_i = (0.04 + 0.025 * q + rng.normal(0, 0.035, n)).astype(F32)
    turnover_i = (np.log(1.15) + rng.normal(0, 0.4, n)).astype(F32)
    debt_i = (-0.1 - 0.3 * q + rng.normal(0, 0.7, n)).astype(F32)
    no_rd = rng.random(n) < np.where(firms.strategic, 0.03, 0.12)
    rd_i = (np.log(rd_base) + 0.25 * q + rng.normal(0, 0.4, n)
            - 0.35 * firms.large).astype(F32)
    staff_i = rng.normal(0, 0.04, n).astype(F32)
    exporter = rng.random(n) < _logistic(-0.6 + 0.5 * q)
    export_i = np.where(exporter, rng.beta(1.5, 4.0, n), 0.0).astype(F32)
    listed = (firms.board > 0).astype(F32)
    # Niche market: the firm's world niche is ~100x its first-year sales, tighter for
    # better firms; China's part of world demand varies by niche.
    niche_gap = (np.log(100.0) - 0.45 * q + rng.normal(0, 1.1, n)).astype(F32)
    china_frac = rng.uniform(0.25, 0.55, n).astype(F32)
    niche_growth = (0.07 + 0.03 * strategic).astype(F32)
    rank_noise_d = np.exp(rng.normal(0, 0.3, n)).astype(F32)
    rank_noise_g = np.exp(rng.normal(0, 0.3, n)).astype(F32)
    inst_i = rng.normal(0, 0.6, n).astype(F32)
    cert_i = rng.normal(0, 0.8, n).astype(F32)
    brand_i = rng.normal(0, 1.0, n).astype(F32)

    shape = (n, T)
    out = {k: np.full(shape, np.nan, F32) for k in (
        "revenue", "main_share", "net_profit", "assets", "liabilities", "rd", "employees",
        "rd_staff", "export", "equity", "dom_share", "dom_rank", "glob_rank")}
    inst = np.zeros(shape, np.int8)
    cert = np.zeros(shape, np.int8)
    brand = np.zeros(shape, np.int8)
    ln_world = np.full(n, np.nan, F32)
    shock = np.zeros(n, F32)
    for t in range(T):
        year = years[t]
        age = np.maximum(year - firms.founded.astype(F32), 0)
        if t > 0:
            shock = (0.35 * shock + rng.normal(0, 0.16, n)).astype(F32)
            growth = (0.05 + 0.045 * q + 0.025 * strategic + MACRO.get(int(year), 0.0)
                      + 0.22 * np.exp(-age / 4) - 0.02 * firms.large + shock)
            lr = np.where(j[0, t] > start, lr + np.clip(growth, -0.8, 1.0), lr).astype(F32)
        else:
            growth = np.full(n, 0.08, F32)
        lr = np.minimum(lr, np.log(5e10)).astype(F32)
        rev = np.exp(lr)
        main = _logistic(main_logit + rng.normal(0, 0.25, n))
        margin = np.clip(margin_i + rng.normal(0, 0.03, n) + 0.15 * (growth - 0.08), -0.6, 0.45)
        assets = rev * np.exp(turnover_i + rng.normal(0, 0.08, n))
        debt = np.clip(1.15 * _logistic(debt_i + rng.normal(0, 0.15, n)), 0.01, 1.5)
        rdi = np.minimum(np.exp(rd_i + 0.015 * (year - 2013) + rng.normal(0, 0.15, n)), 0.35)
        rdi = np.where(no_rd, 0.0, rdi)
        prod = np.exp(ln_prod0 + 0.035 * (year - 2013) + rng.normal(0, 0.06, n))
        emp = np.maximum(np.round(rev / prod), 3)
        staff = np.round(emp * np.clip(0.02 + 1.4 * rdi + staff_i, 0.0, 0.9))
        exp_share = np.minimum(export_i * np.exp(rng.normal(0, 0.15, n)), 1.0)
        p_round = _logistic(-4.0 + 0.5 * q + 0.7 * strategic + 1.2 * listed
                            + 0.5 * (growth > 0.2))
        equity = np.where(rng.random(n) < p_round,
                          rev * np.exp(rng.normal(np.log(0.3), 0.9, n)), 0.0)

        main_rev = rev * main
        ln_world = np.where(np.isnan(ln_world) & alive[:, t], np.log(main_rev) + niche_gap,
                            ln_world + niche_growth).astype(F32)
        world = np.exp(ln_world)
        g_share = np.minimum(main_rev / world, 0.9)
        d_share = np.minimum(main_rev * (1 - exp_share) / (world * china_frac), 0.95)
        d_rank = _rank_from_share(d_share, 0.3, rank_noise_d)
        g_rank = _rank_from_share(g_share, 0.25, rank_noise_g)

        latent_inst = 0.8 * q + 0.6 * np.log(rev * rdi / 1e6 + 0.05) + inst_i
        inst[:, t] = np.digitize(latent_inst, [0.3, 1.3, 2.4]).astype(np.int8)
        cert[:, t] = (-0.3 + 0.7 * q + 0.45 * (lr - np.log(3e7)) + cert_i) > 0
        brand[:, t] = (0.2 + 0.7 * q + 0.25 * (lr - np.log(3e7)) + brand_i) > 0

        out["revenue"][:, t] = rev
        out["main_share"][:, t] = main
        out["net_profit"][:, t] = rev * margin
        out["assets"][:, t] = assets
        out["liabilities"][:, t] = assets * debt
        out["rd"][:, t] = rev * rdi
        out["employees"][:, t] = emp
        out["rd_staff"][:, t] = staff
        out["export"][:, t] = rev * exp_share
        out["equity"][:, t] = equity
        out["dom_share"][:, t] = d_share
        out["dom_rank"][:, t] = np.where(d_rank <= 30, d_rank, np.nan)
        out["glob_rank"][:, t] = np.where(g_rank <= 20, g_rank, np.nan)

    # Institutions, certificates and brands are rarely given up once obtained.
    inst = np.maximum.accumulate(np.where(alive, inst, 0), axis=1).astype(np.int8)
    cert = np.maximum.accumulate(np.where(alive, cert, 0), axis=1).astype(np.int8)
    brand = np.maximum.accumulate(np.where(alive, brand, 0), axis=1).astype(np.int8)

    for key, rate in (("main_share", MISSING["main_share"]), ("rd_staff", MISSING["rd_staff"]),
                      ("export", MISSING["export"]), ("equity", MISSING["equity"]),
                      ("dom_share", MISSING["dom_share"]), ("dom_rank", MISSING["rank"]),
                      ("glob_rank", MISSING["rank"])):
        out[key][rng.random(shape) < rate] = np.nan
    for arr in (cert, brand):
        arr[rng.random(shape) < MISSING["bool"]] = -1
    for arr in out.values():
        arr[~obs] = np.nan
    return Panel(years=years, alive=alive, obs=obs, rd_inst=inst, quality_cert=cert,
                 own_brand=brand, high_tech=np.zeros(shape, np.int8),
                 subsidies=np.full(shape, np.nan, F32), **out)


def add_high_tech(rng: np.random.Generator, panel: Panel, valid_ip: np.ndarray) -> None:
    """HNTE certificate: R&D intensity over the revenue-band threshold, own IP and >= 10%
    R&D staff; a certificate lasts three years and most eligible firms apply."""
    rev, rd = panel.revenue, panel.rd
    with np.errstate(invalid="ignore", divide="ignore"):
        rdi = rd / rev
        threshold = np.where(rev < 5e7, 0.05, np.where(rev < 2e8, 0.04, 0.03))
        eligible = (rdi >= threshold) & (valid_ip > 0) & (panel.rd_staff >= 0.1 * panel.employees)
    applies = rng.random(rev.shape[0]) < 0.85
    held = eligible.copy()
    held[:, 1:] |= eligible[:, :-1]
    held[:, 2:] |= eligible[:, :-2]
    code = (held & applies[:, None]).astype(np.int8)
    code[rng.random(code.shape) < MISSING["bool"]] = -1
    panel.high_tech = code


def add_subsidies(rng: np.random.Generator, panel: Panel, firms: Firms,
                  favoured: np.ndarray, title: np.ndarray) -> None:
    """Government subsidies of each firm-year, yuan.

    ``title`` (n, T) int8 is the highest tier held during the year (0 none, 1 specialized,
    2 little giant, 3 champion); ``favoured`` (n,) marks firms with political ties. Title
    holders receive programme money (national Little Giant funds pay a few million yuan).
    """
    n, T = title.shape
    rev = panel.revenue
    ties = 1.0 + (firms.state_share > 0.5) + 0.5 * (firms.group >= 0) + favoured
    base_rate = np.exp(rng.normal(np.log(0.003), 0.8, n)).astype(F32) * ties
    gets = rng.random((n, T)) < _logistic(-0.2 + 0.4 * firms.quality[:, None] + 0.8 * (title > 0))
    programme = np.select([title == 1, title == 2, title == 3],
                          [0.004 * rev + 2e5, 0.012 * rev + 1.5e6, 0.006 * rev + 3e6], 0.0)
    noise = np.exp(rng.normal(0, 0.3, (n, T)))
    sub = np.where(gets, (base_rate[:, None] * rev + programme) * noise, 0.0).astype(F32)
    sub[rng.random((n, T)) < MISSING["equity"]] = np.nan
    sub[~panel.obs] = np.nan
    panel.subsidies = sub
