"""Human-readable gap texts for failed criteria, in each firm's own units.

Texts are built only for the firms that fail a criterion, so the cost scales with failures.
A text shows its numbers rounded (3 significant digits of CNY, a percentage to a decimal),
so many firms share one: `GapWriter` writes each distinct text once and hands it to every
firm whose rounded numbers are the same (`leaf_keys`). The distinct texts are assembled
with numpy's vectorised string ops, as the reasons are (models.reason_text), from numbers
each written once per distinct rounded value (`money_texts`, `percent_texts`: the scalar
`money` and `percent`, the one definition of how an amount or a share reads).
"""

from __future__ import annotations

import math

import numpy as np

from features.rules.engine import FAIL, PASS, NodeEvaluator
from features.rules.types import AllOf, AnyOf, Cases, Leaf, Qualitative, Score, ScorePass

FAILED_SYMBOL = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "=="}
STRING = np.dtypes.StringDType()


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


def leaf_text(leaf: Leaf, v: float, num: float = math.nan, den: float = math.nan) -> str:
    """Gap text for one failed threshold, e.g. 'years in niche 2 < 3: eligible in 1 year'
    (one row of `leaf_texts`)."""
    return str(leaf_texts(leaf, np.array([v], dtype=float), np.array([num], dtype=float),
                          np.array([den], dtype=float))[0])


def leaf_texts(leaf: Leaf, v: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """(n,) StringDType gap texts of a failed threshold for values v (n,) (known: not NaN),
    with the numerator and denominator (n,) of a ratio (NaN: not given) from which a
    fraction's gap in the ratio's own units is told."""
    n = len(v)
    if leaf.fail_text:
        return np.full(n, leaf.fail_text, dtype=STRING)
    if leaf.unit == "flag":
        return np.where(v == 1, f"{leaf.label}: yes", f"{leaf.label}: no").astype(STRING)
    sym = FAILED_SYMBOL[leaf.op]
    t = leaf.threshold
    raising = leaf.op in (">=", ">")
    if leaf.unit == "fraction":
        text = _share_texts(leaf, v)
        return np.strings.add(text, _ratio_gap_texts(leaf, v, num, den)) if leaf.gap else text
    if leaf.unit == "CNY":
        word = "more" if raising else "less"
        noun = f" {leaf.gap.noun}" if leaf.gap and leaf.gap.noun else ""
        with np.errstate(invalid="ignore"):
            short = np.abs(t - v)
        return _concat(f"{leaf.label} ", money_texts(v), f" {sym} {money(t)} CNY: ",
                       money_texts(short), f" CNY {word}{noun}")
    # Counts, years, ranks: printed in full, so each distinct value is a text of its own.
    return texts_by_key(exact_key(v), lambda i: _number_text(leaf, float(v[i])), STRING)


def _number_text(leaf: Leaf, v: float) -> str:
    text = f"{leaf.label} {v:g} {FAILED_SYMBOL[leaf.op]} {leaf.threshold:g}"
    if leaf.op in (">=", ">") and leaf.unit == "years":
        n = _steps(leaf, v)
        return f"{text}: eligible in {n} year{'' if n == 1 else 's'}"
    if leaf.op in (">=", ">") and leaf.unit == "count":
        return f"{text}: {_steps(leaf, v)} more"
    return text


# A failing share that rounds to its bar ("90% < 90%") is shown with up to this many more
# decimals ("89.6% < 90.0%").
EXTRA_DECIMALS = 3


def _share_texts(leaf: Leaf, v: np.ndarray) -> np.ndarray:
    """'R&D intensity 2.1% < 3.0%': the share and its bar with the leaf's decimals, or with
    the fewest more (up to EXTRA_DECIMALS) that tell them apart; 'just under 90%' where
    none do."""
    sym = FAILED_SYMBOL[leaf.op]
    side = "under" if sym == "<" else "over"
    out = np.zeros(len(v), dtype=STRING)  # "" (np.full would copy a str into every row)
    undecided = np.arange(len(v))
    for d in range(leaf.decimals, leaf.decimals + EXTRA_DECIMALS + 1):
        shown, bar = percent_texts(v[undecided], d), percent(leaf.threshold, d)
        apart = shown != bar
        out[undecided[apart]] = _concat(f"{leaf.label} ", shown[apart], f" {sym} {bar}")
        undecided = undecided[~apart]
        if not len(undecided):
            break
    out[undecided] = f"{leaf.label} just {side} {percent(leaf.threshold, leaf.decimals)}"
    return out


def _ratio_gap_texts(leaf: Leaf, v: np.ndarray, num: np.ndarray, den: np.ndarray
                     ) -> np.ndarray:
    """': about 1.1M CNY more R&D' (or '... 3 more staff'): what the ratio's numerator lacks
    to reach the bar over its denominator (`_ratio_needed`); "" where it is not known."""
    gap = leaf.gap
    needed = _ratio_needed(leaf, v, num, den)
    out = np.zeros(len(v), dtype=STRING)
    known = np.flatnonzero(~np.isnan(needed))
    needed = needed[known]
    raising = leaf.op in (">=", ">")
    if gap.unit == "count":
        word = "more" if raising else "fewer"
        amount = texts_by_key(exact_key(np.ceil(needed)),
                              lambda i: str(math.ceil(needed[i])), STRING)
        out[known] = _concat(": about ", amount, f" {word} {gap.noun}".rstrip())
    else:
        word = "more" if raising else "less"
        out[known] = _concat(": about ", money_texts(needed, 2),
                             f" CNY {word} {gap.noun}".rstrip())
    return out


def _ratio_needed(leaf: Leaf, v: np.ndarray, num: np.ndarray, den: np.ndarray
                  ) -> np.ndarray:
    """(n,) how much the ratio's numerator is off its bar over the denominator (absolute,
    in the numerator's units; NaN where neither is known), a missing numerator or
    denominator told from the share v."""
    with np.errstate(all="ignore"):
        num = np.where(np.isnan(num), v * den, num)
        den = np.where(np.isnan(den) & (v != 0), num / v, den)
        return np.abs(leaf.threshold * den - num)


def money_texts(x: np.ndarray, digits: int = 3) -> np.ndarray:
    """(n,) StringDType `money` of each value, written once per distinct rounded value."""
    x = np.asarray(x, dtype=np.float64)
    return texts_by_key(rounding_key(x, significant=digits), lambda i: money(x[i], digits),
                        STRING)


def percent_texts(x: np.ndarray, decimals: int) -> np.ndarray:
    """(n,) StringDType `percent` of each share, written once per distinct rounded value."""
    x = np.asarray(x, dtype=np.float64)
    return texts_by_key(rounding_key(x * 100, decimals=decimals),
                        lambda i: percent(x[i], decimals), STRING)


def _concat(*pieces) -> np.ndarray:
    """Row by row, the pieces (str, or StringDType arrays of one length) one after another."""
    out = pieces[0]
    for piece in pieces[1:]:
        out = np.strings.add(out, piece)
    return out


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
    if n <= 1:  # one text at most: nothing to share, so no digits to compare
        return np.zeros((n, 3), dtype=np.int64)
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
    """(n, k) int64: rows with equal keys get the same `leaf_texts` (every number it prints,
    computed as it computes them, keyed by how it rounds them)."""
    n = len(v)
    if leaf.fail_text or n <= 1:  # one text, or at most one row to write it for
        return np.zeros((n, 1), dtype=np.int64)
    if leaf.unit == "flag":
        return (v == 1).astype(np.int64).reshape(-1, 1)
    if leaf.unit == "fraction":
        keys = [rounding_key(v * 100, decimals=leaf.decimals)]
        # Shares within half a shown unit of the bar get more decimals (_share_texts):
        # each such value is keyed exactly, so it gets its own text.
        with np.errstate(invalid="ignore"):
            near = np.abs(v - leaf.threshold) * 100 <= 0.5 * 10.0 ** -leaf.decimals + 1e-9
        keys.append(np.where(near.reshape(-1, 1), exact_key(v), 0))
        if leaf.gap:
            needed = _ratio_needed(leaf, v, num, den)
            keys.append(exact_key(np.ceil(needed)) if leaf.gap.unit == "count"
                        else rounding_key(needed, significant=2))
        return np.hstack(keys)
    if leaf.unit == "CNY":
        return np.hstack([rounding_key(v, significant=3),
                          rounding_key(np.abs(leaf.threshold - v), significant=3)])
    return exact_key(v)


def distinct_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) of the distinct rows of `keys` (n, k): the first row holding each,
    and each row's index into `first`."""
    if len(keys) <= 1:  # no row, or one (a one-firm request): nothing to sort
        return np.arange(len(keys), dtype=np.int64), np.arange(len(keys), dtype=np.int64)
    # Sorting the key columns together (np.unique with axis=0 sorts rows as opaque bytes,
    # several times slower).
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return order[starts], inverse


def texts_by_key(keys: np.ndarray, write, dtype=object) -> np.ndarray:
    """Array (`dtype`: object, or STRING) of ``write(i)`` for every row i, calling `write`
    once per distinct row of `keys` (n, k) (on the first row holding it)."""
    first, inverse = distinct_rows(keys)
    return np.array([write(i) for i in first], dtype=dtype)[inverse]


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
        # Each distinct text assembled once (from the first row holding it), then shared.
        first, inverse = distinct_rows(leaf_keys(leaf, v, num, den))
        out[known] = leaf_texts(leaf, v[first], num[first], den[first]).astype(object)[inverse]
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
