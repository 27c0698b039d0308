"""Vectorised three-valued evaluation of rulebook conditions and scores.

Statuses are int8 codes ordered fail (0) < unknown (1) < pass (2), so Kleene logic is
``all_of = min`` and ``any_of = max``: an alternative set fails only when every alternative
fails, and missing data (NaN) is unknown, never a failure.

Two readings of the same conditions:
- strict: a qualitative condition (data not in the contract) is unknown;
- on data: qualitative conditions are taken as not met, i.e. undocumented alternatives and
  exemptions (awards, direct paths, new-product rules) are assumed absent. Criteria that are
  wholly qualitative are left out of the on-data eligibility instead.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.rules.types import AllOf, AnyOf, BandTable, Cases, Leaf, Qualitative, Score, ScorePass

FAIL, UNKNOWN, PASS = np.int8(0), np.int8(1), np.int8(2)
STATUSES = ["fail", "unknown", "pass"]

COMPARE = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


class Columns:
    """float64 views of feature columns (NaN = unknown); absent columns read as all NaN."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.n = len(frame)
        self._cache: dict[str, np.ndarray] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if name not in self.frame.columns:
                arr = np.full(self.n, np.nan)
            else:
                s = self.frame[name]
                if isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiub":
                    arr = s.to_numpy(dtype=np.float64)
                else:
                    arr = pd.to_numeric(s, errors="coerce").to_numpy(
                        dtype=np.float64, na_value=np.nan
                    )
            self._cache[name] = arr
        return self._cache[name]

    def total(self, names: tuple[str, ...]) -> np.ndarray:
        if len(names) == 1:
            return self.get(names[0])
        return np.sum([self.get(n) for n in names], axis=0)

    def text(self, name: str) -> pd.Series | None:
        return self.frame[name] if name in self.frame.columns else None


def leaf_codes(leaf: Leaf, values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        hit = COMPARE[leaf.op](values, leaf.threshold)
    codes = hit.astype(np.int8) * PASS
    codes[np.isnan(values)] = UNKNOWN
    return codes


@dataclass
class ScoreResult:
    """Per-firm score bounds: ``lo`` = points certain from known data, ``hi`` = lo + the most
    the unknown items could add; thresholds as a range where the province is unknown."""

    lo: np.ndarray
    hi: np.ndarray
    pillar_lo: dict[str, np.ndarray]
    pillar_hi: dict[str, np.ndarray]
    threshold_lo: np.ndarray
    threshold_hi: np.ndarray
    status: np.ndarray


def band_points(table: BandTable, cols: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Points (lo, hi) per firm for one banded table; unknown input spans the whole table."""
    lo_pts, hi_pts = np.asarray(table.lo), np.asarray(table.hi)
    if table.feature is None:
        return np.full(cols.n, lo_pts[-1]), np.full(cols.n, hi_pts[-1])
    v = cols.get(table.feature)
    bounds = np.asarray(table.bounds)
    # Index into the band list; the appended "else" entry sits at -1 / len(bounds).
    if table.op in (">=", ">"):
        idx = np.searchsorted(bounds, v, side="right" if table.op == ">=" else "left") - 1
    else:
        idx = np.searchsorted(bounds, v, side="left" if table.op == "<=" else "right")
    lo, hi = lo_pts[idx], hi_pts[idx]
    missing = np.isnan(v)
    lo[missing], hi[missing] = lo_pts.min(), hi_pts.max()
    return lo, hi


def province_thresholds(score: Score, cols: Columns) -> tuple[np.ndarray, np.ndarray]:
    base = np.full(cols.n, score.threshold)
    if not score.threshold_by_province:
        return base, base
    every = [score.threshold, *score.threshold_by_province.values()]
    province = cols.text("province")
    if province is None:
        return np.full(cols.n, min(every)), np.full(cols.n, max(every))
    thr = base.copy()
    for code, value in score.threshold_by_province.items():
        thr[(province == code).to_numpy(dtype=bool, na_value=False)] = value
    lo, hi = thr.copy(), thr
    unknown = province.isna().to_numpy()
    lo[unknown], hi[unknown] = min(every), max(every)
    return lo, hi


def evaluate_score(score: Score, cols: Columns) -> ScoreResult:
    pillar_lo: dict[str, np.ndarray] = {}
    pillar_hi: dict[str, np.ndarray] = {}
    for item in score.items:
        parts = [band_points(t, cols) for t in item.inputs]
        los, his = np.array([p[0] for p in parts]), np.array([p[1] for p in parts])
        if item.combine == "max":
            lo, hi = los.max(axis=0), his.max(axis=0)
        else:
            lo, hi = los.sum(axis=0), his.sum(axis=0)
        if item.cap is not None:
            lo, hi = np.minimum(lo, item.cap), np.minimum(hi, item.cap)
        pillar_lo[item.pillar] = pillar_lo.get(item.pillar, 0.0) + lo
        pillar_hi[item.pillar] = pillar_hi.get(item.pillar, 0.0) + hi
    total_lo = np.sum(list(pillar_lo.values()), axis=0)
    total_hi = np.sum(list(pillar_hi.values()), axis=0)
    thr_lo, thr_hi = province_thresholds(score, cols)
    passes, fails = total_lo >= thr_hi, total_hi < thr_lo
    for pillar, minimum in score.pillar_min.items():
        passes &= pillar_lo[pillar] >= minimum
        fails |= pillar_hi[pillar] < minimum
    status = np.where(passes, PASS, np.where(fails, FAIL, UNKNOWN)).astype(np.int8)
    return ScoreResult(total_lo, total_hi, pillar_lo, pillar_hi, thr_lo, thr_hi, status)


class NodeEvaluator:
    """Evaluates condition trees over all firms at once, memoising each node's codes."""

    def __init__(self, cols: Columns, score: ScoreResult | None):
        self.cols = cols
        self.score = score
        self._memo: dict[tuple[int, bool], np.ndarray] = {}

    def codes(self, node, on_data: bool = False) -> np.ndarray:
        key = (id(node), on_data)
        if key not in self._memo:
            self._memo[key] = self._compute(node, on_data)
        return self._memo[key]

    def _compute(self, node, on_data: bool) -> np.ndarray:
        n = self.cols.n
        if isinstance(node, Leaf):
            return leaf_codes(node, self.cols.total(node.features))
        if isinstance(node, Qualitative):
            return np.full(n, FAIL if on_data else UNKNOWN, dtype=np.int8)
        if isinstance(node, ScorePass):
            return self.score.status
        if isinstance(node, AllOf):
            return np.minimum.reduce([self.codes(c, on_data) for c in node.children])
        if isinstance(node, AnyOf):
            return np.maximum.reduce([self.codes(c, on_data) for c in node.children])
        if isinstance(node, Cases):
            return np.maximum.reduce(
                [
                    np.minimum(self.codes(c.when, on_data), self.codes(c.then, on_data))
                    for c in node.cases
                ]
            )
        raise TypeError(f"unknown condition node {node!r}")
