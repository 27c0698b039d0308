"""Human-readable gap texts for failed criteria, in each firm's own units.

Texts are built only for the firms that fail a criterion, so the cost scales with failures.
A text shows its numbers rounded (3 significant digits of CNY, a percentage to a decimal),
so many firms share one: `GapWriter` writes each distinct text once, with `leaf_text`, and
hands it to every firm whose rounded numbers are the same (`rounding_key`).
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
        d = shown_decimals(v, t, leaf.decimals)
        if percent(v, d) == percent(t, d):  # closer than any shown decimals tell
            side = "under" if sym == "<" else "over"
            text = f"{leaf.label} just {side} {percent(t, leaf.decimals)}"
        else:
            text = f"{leaf.label} {percent(v, d)} {sym} {percent(t, d)}"
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


# A failing share that rounds to its bar ("90% < 90%") is shown with up to this many more
# decimals ("89.6% < 90.0%").
EXTRA_DECIMALS = 3


def shown_decimals(v: float, t: float, decimals: int) -> int:
    """The decimals that tell a share `v` from its bar `t` in percent: `decimals`, or more
    where the two would print alike."""
    d = decimals
    while d < decimals + EXTRA_DECIMALS and percent(v, d) == percent(t, d):
        d += 1
    return d


def rounding_key(x: np.ndarray, *, significant: int | None = None,
                 decimals: int | None = None) -> np.ndarray:
    """(n, 3) int64: two values with equal keys print alike with ``f"{x:.{significant}g}"``
    (or ``f"{x:.{decimals}f}"``), so a text that shows x rounded so can be written once per
    key. Columns: kind (rounded / zero / NaN / infinite / one of a kind) with the sign, the
    rounded digits, the decimal exponent. A value too close to a rounding tie to be sure of
    its digits (or too large for the float arithmetic here) is one of a kind: its key
    holds its row number, so it is printed on its own."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    with np.errstate(all="ignore"):
        a = np.abs(x)
        if significant is not None:
            exponent = np.floor(np.log10(a))
            z = a / 10.0 ** (exponent - significant + 1)
            # A wrong exponent (log10 rounding at a power of ten) shows as z out of range.
            sure = (z >= 10.0 ** (significant - 1) + 1e-6) & (z < 10.0 ** significant - 1e-6)
        else:
            exponent = np.zeros(n)
            z = a * 10.0 ** decimals
            sure = z < 1e9
        sure &= np.isfinite(z) & (a > 0) & (np.abs(z - np.floor(z) - 0.5) > 1e-6)
    kind = np.select([sure, a == 0, np.isnan(x), np.isinf(x)], [0, 1, 2, 3], default=4)
    key = np.zeros((n, 3), dtype=np.int64)
    key[:, 0] = 2 * kind + np.signbit(x)
    key[:, 1] = np.where(sure, np.rint(np.where(sure, z, 0)), np.where(kind == 4, np.arange(n), 0))
    key[:, 2] = np.where(sure, exponent, 0)
    return key


def exact_key(x: np.ndarray) -> np.ndarray:
    """(n, 1) int64: equal keys for bit-identical values (texts that print x in full)."""
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64).reshape(-1, 1)


def leaf_keys(leaf: Leaf, v: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """(n, k) int64: rows with equal keys get the same `leaf_text` (every number it prints,
    computed as it computes them, keyed by how it rounds them)."""
    n = len(v)
    if leaf.fail_text:
        return np.zeros((n, 1), dtype=np.int64)
    if leaf.unit == "flag":
        return (v == 1).astype(np.int64).reshape(-1, 1)
    if leaf.unit == "fraction":
        keys = [rounding_key(v * 100, decimals=leaf.decimals)]
        # Shares within half a shown unit of the bar get more decimals (shown_decimals):
        # each such value is keyed exactly, so it gets its own text.
        with np.errstate(invalid="ignore"):
            near = np.abs(v - leaf.threshold) * 100 <= 0.5 * 10.0 ** -leaf.decimals + 1e-9
        keys.append(np.where(near.reshape(-1, 1), exact_key(v), 0))
        if leaf.gap:
            with np.errstate(all="ignore"):  # as _ratio_gap fills and computes them
                num = np.where(np.isnan(num), v * den, num)
                den = np.where(np.isnan(den) & (v != 0), num / v, den)
                needed = np.abs(leaf.threshold * den - num)
            keys.append(exact_key(np.ceil(needed)) if leaf.gap.unit == "count"
                        else rounding_key(needed, significant=2))
        return np.hstack(keys)
    if leaf.unit == "CNY":
        return np.hstack([rounding_key(v, significant=3),
                          rounding_key(np.abs(leaf.threshold - v), significant=3)])
    return exact_key(v)


def texts_by_key(keys: np.ndarray, write) -> np.ndarray:
    """Object array of ``write(i)`` for every row i, calling `write` once per distinct row
    of `keys` (n, k) (on the first row holding it)."""
    if not len(keys):
        return np.empty(0, dtype=object)
    # Sorting the key columns together (np.unique with axis=0 sorts rows as opaque bytes,
    # several times slower).
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    texts = np.empty(int(starts.sum()), dtype=object)
    texts[:] = [write(i) for i in order[starts]]
    return texts[inverse]


def _join(parts: list[np.ndarray], sep: str) -> np.ndarray:
    """Per row, the non-empty texts of `parts` (object arrays of str) joined by `sep`."""
    joined = parts[0]
    for part in parts[1:]:
        both = (joined != "") & (part != "")
        joined = np.where(both, joined + sep + part, np.where(joined == "", part, joined))
    return np.asarray(joined, dtype=object)


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
                    part[need] = f"{case.label}: " + self.texts(case.then, rows[need])
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
        known = np.flatnonzero(~np.isnan(v))
        v, num, den = v[known], num[known], den[known]
        out[known] = texts_by_key(leaf_keys(leaf, v, num, den),
                                  lambda i: leaf_text(leaf, v[i], num[i], den[i]))
        return out

    def _score(self, node: ScorePass, rows: np.ndarray) -> np.ndarray:
        s = self.ev.score
        lo, hi, thr = s.lo[rows], s.hi[rows], s.threshold_lo[rows]
        parts = [texts_by_key(
            np.hstack([exact_key(lo), exact_key(hi), exact_key(thr)]),
            lambda i: (f"{node.label} {lo[i]:g} (at most {hi[i]:g}) < {thr[i]:g}: at least "
                       f"{thr[i] - hi[i]:g} more points" if hi[i] < thr[i] else ""))]
        for pillar, minimum in self.score_def.pillar_min.items():
            p_hi = s.pillar_hi[pillar][rows]
            parts.append(texts_by_key(
                exact_key(p_hi),
                lambda i, p_hi=p_hi, pillar=pillar, minimum=minimum:
                    f"{pillar} points at most {p_hi[i]:g} < {minimum:g}" if p_hi[i] < minimum
                    else ""))
        return _join(parts, "; ")
