"""What a selection committee sees and how it scores it.

For an announcement year ``t`` the committee reads only the published facts known at the
start of ``t``: the financial reports of fiscal year ``t-1`` (and ``t-2``/``t-3`` for
growth), IP rights in force at the end of ``t-1`` and titles held at the start of ``t``.
:func:`facts` extracts those as (n,) arrays; the ``*_merit`` functions turn them into a
committee score (log scale, ~0 for a firm meeting every criterion, about -3.5 per clearly
failed criterion) that weighs the 2022 rulebook softly.
"""

from __future__ import annotations

import numpy as np

from features.domain import is_large
from training.synthetic.firms import Firms
from training.synthetic.trajectories import Panel

F32 = np.float32
FLOOR = 0.03       # a clearly failed criterion costs log(0.03) ~ -3.5
SME_PENALTY = 5.0  # firms that are not SMEs (own size or large parent) fail outright


def soft(x: np.ndarray, threshold: float, scale: float, missing: float) -> np.ndarray:
    """Smooth pass probability of ``x >= threshold``; NaN (unreported) scores ``missing``."""
    with np.errstate(over="ignore", invalid="ignore"):
        p = 1.0 / (1.0 + np.exp(-(x - threshold) / scale))
    return np.where(np.isnan(x), missing, p).astype(F32)


def coded(x: np.ndarray, yes: float, no: float, unknown: float) -> np.ndarray:
    """Score of a coded boolean (1 / 0 / -1 unknown)."""
    return np.where(x > 0, yes, np.where(x == 0, no, unknown)).astype(F32)


def all_of(*terms: np.ndarray) -> np.ndarray:
    """Soft conjunction: sum of log pass probabilities, each floored at FLOOR."""
    out = np.zeros_like(terms[0], dtype=F32)
    for term in terms:
        out += np.log(FLOOR + (1 - FLOOR) * term)
    return out


def _col(a: np.ndarray, i: int) -> np.ndarray:
    return a[:, i] if i >= 0 else np.full(a.shape[0], np.nan, a.dtype)


def facts(panel: Panel, valid_inv: np.ndarray, valid_ip: np.ndarray, firms: Firms,
          year: int) -> dict[str, np.ndarray]:
    """(n,) arrays of what is published before the lists of ``year`` are drawn up."""
    i1 = year - 1 - int(panel.years[0])
    i2, i3 = i1 - 1, i1 - 2
    rev1, rev2, rev3 = _col(panel.revenue, i1), _col(panel.revenue, i2), _col(panel.revenue, i3)
    main_share = _col(panel.main_share, i1)
    main1 = rev1 * np.where(np.isnan(main_share), 1.0, main_share)
    main3 = _col(panel.revenue, i3) * np.nan_to_num(_col(panel.main_share, i3), nan=1.0)
    main2 = rev2 * np.nan_to_num(_col(panel.main_share, i2), nan=1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(np.isnan(main3), main1 / main2 - 1, np.sqrt(main1 / main3) - 1)
        rd1, rd2 = _col(panel.rd, i1), _col(panel.rd, i2)
        rdi1, rdi2 = rd1 / rev1, rd2 / rev2
        emp1 = _col(panel.employees, i1)
        equity2 = np.nan_to_num(_col(panel.equity, i1)) + np.nan_to_num(_col(panel.equity, i2))
        out = {
            "obs": _col(panel.obs, i1) if i1 >= 0 else np.zeros(firms.n, bool),
            "rev": rev1, "rev3": rev3, "main_share": main_share,
            "growth": growth.astype(F32),
            "rd": rd1, "rd2": np.where(np.isnan(rd2), rd1, rd2),
            "rdi": rdi1, "rdi_min": np.fmin(rdi1, np.where(np.isnan(rdi2), rdi1, rdi2)),
            "debt": _col(panel.liabilities, i1) / _col(panel.assets, i1),
            "margin": _col(panel.net_profit, i1) / rev1,
            "emp": emp1, "staff_share": _col(panel.rd_staff, i1) / emp1,
            "equity2": equity2.astype(F32),
            "dom_share": _col(panel.dom_share, i1), "glob_rank": _col(panel.glob_rank, i1),
            "inst": _col(panel.rd_inst, i1), "cert": _col(panel.quality_cert, i1),
            "brand": _col(panel.own_brand, i1),
            "inv": _col(valid_inv, i1).astype(F32), "ip": _col(valid_ip, i1).astype(F32),
            "niche_years": (year - 1 - firms.niche_entry).astype(F32),
        }
    # The committee's SME check is the domain's definition of a large firm and group.
    out["oversized"] = is_large(emp1, rev1) == 1.0
    out["group_large"] = is_large(firms.group_employees, firms.group_revenue) == 1.0
    return out


def _points(x: np.ndarray, bins: list[float], points: list[float]) -> np.ndarray:
    """Banded points: ``points[k]`` for x in [bins[k-1], bins[k]); NaN scores 0."""
    return np.where(np.isnan(x), 0.0, np.asarray(points, F32)[np.digitize(x, bins)]).astype(F32)


def specialized_merit(f: dict[str, np.ndarray], firms: Firms, guangdong: np.ndarray) -> np.ndarray:
    """Provincial Specialized SME score: hard conditions softly, then the 100-point scale
    (pass mark 60, Guangdong 70) with the province-set distinctiveness pillar at 10."""
    hard = all_of(
        soft(f["niche_years"], 1.6, 0.3, 0.0),
        soft(f["rd"], 1e6, 1.5e5, 0.0),
        soft(f["rdi"], 0.03, 0.004, 0.0),
        np.maximum(soft(f["rev"], 1e7, 1.5e6, 0.0), soft(f["equity2"], 2e7, 3e6, 0.0)),
    )
    specialization = (_points(f["main_share"], [0.6, 0.7, 0.8], [0, 1, 3, 5])
                      + _points(f["growth"], [0, 0.04, 0.06, 0.08, 0.10], [0, 2, 4, 6, 8, 10])
                      + np.minimum(np.floor(f["niche_years"] / 2), 5)
                      + 5 * firms.strategic)
    refinement = (3 * (f["inst"] >= 1) + 2 * (f["rdi"] >= 0.05)
                  + np.minimum(3 * (f["cert"] > 0) + 3 * (f["brand"] > 0), 5)
                  + _points(f["margin"], [0.02, 0.04, 0.06, 0.08, 0.10], [0, 2, 4, 6, 8, 10])
                  + _points(f["debt"], [0.5, 0.6, 0.7], [5, 3, 1, 0]))
    rd_amount = _points(f["rd"], [1e6, 2e6, 3e6, 4e6, 5e6], [0, 2, 4, 6, 8, 10])
    rd_share = _points(f["rdi"], [0.03, 0.04, 0.06, 0.08, 0.10], [0, 2, 4, 6, 8, 10])
    innovation = (np.where(f["inv"] >= 3, 10, np.where(f["inv"] >= 1, 7, 2 * (f["ip"] >= 1)))
                  + np.maximum(rd_amount, rd_share)
                  + _points(f["staff_share"], [0.05, 0.10, 0.20], [0, 1, 3, 5])
                  + np.asarray([0, 4, 8, 10], F32)[np.clip(f["inst"], 0, 3)])
    total = specialization + refinement + 10 + innovation
    pass_mark = np.where(guangdong, 70, 60)
    return (hard + (total - pass_mark) / 8).astype(F32)


def little_giant_merit(f: dict[str, np.ndarray], firms: Firms) -> np.ndarray:
    """National Little Giant score (2022 rulebook): every pillar as a soft condition,
    R&D by revenue band, plus a small premium for excellence beyond the bars."""
    rev = f["rev"]
    rd_rule = np.where(
        rev >= 1e8, soft(f["rdi_min"], 0.03, 0.004, 0.0),
        np.where(rev >= 5e7, soft(f["rdi_min"], 0.06, 0.006, 0.0),
                 soft(f["equity2"], 8e7, 1e7, 0.0) * soft(f["rd"] + f["rd2"], 3e7, 4e6, 0.0)))
    score = all_of(
        soft(f["niche_years"], 3, 0.4, 0.0),
        soft(f["main_share"], 0.70, 0.03, 0.5),
        soft(f["growth"], 0.05, 0.03, 0.4),
        soft(-f["debt"], -0.70, 0.03, 0.5),
        coded(f["cert"], 1.0, 0.1, 0.6),
        soft(f["dom_share"], 0.10, 0.02, 0.4),
        coded(f["brand"], 1.0, 0.15, 0.6),
        np.where(f["inst"] >= 1, 1.0, 0.15).astype(F32),
        rd_rule.astype(F32),
        soft(f["inv"], 1.5, 0.4, 0.0),
        np.where(firms.strategic, 1.0, 0.35).astype(F32),
    )
    excellence = (0.3 * np.log1p(f["inv"]) + 1 * np.clip(np.nan_to_num(f["rdi"]), 0, 0.25)
                  + 0.5 * (f["inst"] >= 2))
    return (score + excellence).astype(F32)


def champion_merit(f: dict[str, np.ndarray], lg_before: np.ndarray, year: int) -> np.ndarray:
    """Single Champion score (2016 plan, 2022 notice): global top 3 in the niche, main
    product >= 70% of sales, >= 10 years in the field, revenue >= 400M (from 2022 a Little
    Giant may be smaller), margin above the industry's; cultivated firms are preferred."""
    size = soft(np.log(f["rev"]), np.log(4e8), 0.15, 0.0)
    if year >= 2022:
        size = np.maximum(size, 0.9 * lg_before).astype(F32)
    score = all_of(
        np.where(np.isnan(f["glob_rank"]), 0.0, soft(-f["glob_rank"], -3.5, 0.4, 0.0)).astype(F32),
        soft(f["main_share"], 0.70, 0.03, 0.5),
        soft(f["niche_years"], 10, 0.7, 0.0),
        size,
        soft(f["margin"], 0.05, 0.02, 0.0),
    )
    excellence = 0.4 * np.clip(np.log(np.nan_to_num(f["rev"], nan=1.0) / 4e8), -2, 2)
    pipeline = {2020: 0.2, 2021: 0.4}.get(year, 0.7 if year >= 2022 else 0.0)
    return (score + excellence + pipeline * lg_before).astype(F32)
