"""Human-readable gap texts for failed criteria, in each firm's own units.

Texts are built only for the firms that fail a criterion, so the cost scales with failures.
"""

from __future__ import annotations

import math

import numpy as np

from features.rules.engine import FAIL, PASS, NodeEvaluator
from features.rules.types import AllOf, AnyOf, Cases, Leaf, Qualitative, Score, ScorePass

FAILED_SYMBOL = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "=="}


def _significant(x: float, digits: int) -> str:
    """``x`` rounded to ``digits`` significant digits, without exponent notation."""
    text = f"{x:.{digits}g}"
    if "e" not in text:
        return text
    return f"{float(text):.0f}" if math.isfinite(x) else text


def money(x: float, digits: int = 3) -> str:
    """1_270_000 -> '1.27M', 250_000 -> '250K', 4.2e9 -> '4.2B' (``digits`` significant)."""
    x = float(_significant(x, digits))
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return _significant(x / scale, digits) + suffix
    return _significant(x, digits)


def percent(x: float, decimals: int) -> str:
    return f"{x * 100:.{decimals}f}%"


def _steps(leaf: Leaf, v: float) -> int:
    """Whole units (years, items) still missing to reach a >= / > threshold."""
    if leaf.op == ">":
        return math.floor(leaf.threshold - v) + 1
    return math.ceil(leaf.threshold - v)


def _ratio_gap(leaf: Leaf, v: float, num: float, den: float) -> str:
    gap = leaf.gap
    if math.isnan(num):
        num = v * den
    if math.isnan(den) and v != 0:
        den = num / v
    needed = leaf.threshold * den - num
    if math.isnan(needed):
        return ""
    raising = leaf.op in (">=", ">")
    if gap.unit == "count":
        word = "more" if raising else "fewer"
        return f": about {math.ceil(abs(needed))} {word} {gap.noun}".rstrip()
    word = "more" if raising else "less"
    return f": about {money(abs(needed), 2)} CNY {word} {gap.noun}".rstrip()


def leaf_text(leaf: Leaf, v: float, num: float = math.nan, den: float = math.nan) -> str:
    """Gap text for one failed threshold, e.g. 'years in niche 2 < 3: eligible in 1 year'."""
    sym = FAILED_SYMBOL[leaf.op]
    t = leaf.threshold
    if leaf.fail_text:
        return leaf.fail_text
    if leaf.unit == "flag":
        return f"{leaf.label}: {'yes' if v == 1 else 'no'}"
    if leaf.unit == "fraction":
        text = f"{leaf.label} {percent(v, leaf.decimals)} {sym} {percent(t, leaf.decimals)}"
        return text + (_ratio_gap(leaf, v, num, den) if leaf.gap else "")
    if leaf.unit == "CNY":
        word = "more" if leaf.op in (">=", ">") else "less"
        noun = f" {leaf.gap.noun}" if leaf.gap and leaf.gap.noun else ""
        return f"{leaf.label} {money(v)} {sym} {money(t)} CNY: {money(abs(t - v))} CNY {word}{noun}"
    text = f"{leaf.label} {v:g} {sym} {t:g}"
    if leaf.op in (">=", ">") and leaf.unit == "years":
        n = _steps(leaf, v)
        return f"{text}: eligible in {n} year{'' if n == 1 else 's'}"
    if leaf.op in (">=", ">") and leaf.unit == "count":
        return f"{text}: {_steps(leaf, v)} more"
    return text


def _join(parts: list[np.ndarray], sep: str) -> np.ndarray:
    return np.array([sep.join(p for p in row if p) for row in zip(*parts)], dtype=object)


class GapWriter:
    """Gap texts of condition trees for selected firms (``rows`` = positional indices)."""

    def __init__(self, ev: NodeEvaluator, score: Score | None, on_data: bool):
        self.ev, self.score_def, self.on_data = ev, score, on_data

    def texts(self, node, rows: np.ndarray) -> np.ndarray:
        empty = np.full(len(rows), "", dtype=object)
        if isinstance(node, Qualitative):
            return empty
        if isinstance(node, Leaf):
            return self._leaf(node, rows)
        if isinstance(node, ScorePass):
            return self._score(node, rows)
        if isinstance(node, (AllOf, AnyOf)):
            sep = "; " if isinstance(node, AllOf) else "; or "
            parts = []
            for child in node.children:
                part = empty.copy()
                failed = self.ev.codes(child, self.on_data)[rows] == FAIL
                if failed.any():
                    part[failed] = self.texts(child, rows[failed])
                parts.append(part)
            return _join(parts, sep)
        if isinstance(node, Cases):
            # Report the case that applies to the firm; if none is known to apply (the case
            # variable is missing), every case that might apply.
            when = [self.ev.codes(c.when, self.on_data)[rows] for c in node.cases]
            none_applies = ~np.any([w == PASS for w in when], axis=0)
            parts = []
            for case, w in zip(node.cases, when):
                part = empty.copy()
                need = (w == PASS) | (none_applies & (w != FAIL))
                if need.any():
                    part[need] = [f"{case.label}: {t}" for t in self.texts(case.then, rows[need])]
                parts.append(part)
            return _join(parts, "; or ")
        raise TypeError(f"unknown condition node {node!r}")

    def _leaf(self, leaf: Leaf, rows: np.ndarray) -> np.ndarray:
        cols = self.ev.cols
        v = cols.total(leaf.features)[rows]
        nan = np.full(len(rows), np.nan)
        gap = leaf.gap
        num = cols.get(gap.numerator)[rows] if gap and gap.numerator else nan
        den = cols.get(gap.denominator)[rows] if gap and gap.denominator else nan
        out = np.full(len(rows), "", dtype=object)
        known = ~np.isnan(v)
        out[known] = [leaf_text(leaf, a, b, c) for a, b, c in zip(v[known], num[known], den[known])]
        return out

    def _score(self, node: ScorePass, rows: np.ndarray) -> np.ndarray:
        s = self.ev.score
        lo, hi, thr = s.lo[rows], s.hi[rows], s.threshold_lo[rows]
        parts = [
            np.array(
                [
                    f"{node.label} {a:g} (at most {b:g}) < {t:g}: at least {t - b:g} more points"
                    if b < t
                    else ""
                    for a, b, t in zip(lo, hi, thr)
                ],
                dtype=object,
            )
        ]
        for pillar, minimum in self.score_def.pillar_min.items():
            p_hi = s.pillar_hi[pillar][rows]
            parts.append(
                np.array(
                    [
                        f"{pillar} points at most {b:g} < {minimum:g}" if b < minimum else ""
                        for b in p_hi
                    ],
                    dtype=object,
                )
            )
        return _join(parts, "; ")
