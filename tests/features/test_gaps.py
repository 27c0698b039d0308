"""Gap texts assembled per distinct value are the texts written one firm at a time."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.rules import available_rulebooks, load_rulebook
from features.rules.gaps import (
    FAILED_SYMBOL,
    STRING,
    _join,
    _steps,
    distinct_rows,
    leaf_keys,
    leaf_texts,
    money,
    money_texts,
    percent,
    percent_texts,
    rounding_key,
)
from features.rules.types import Gap, Leaf

# Values where a rounding tie, a power of ten or a sign decides the printed digits.
TRICKY = [0.0, -0.0, 1.0, -1.0, 0.5, 1.235, 1.2345, 0.0125, 0.00125, 999.5, 999.4999999,
          9.995, 99.95, 1e6, 999_500.0, 999_499.9999, 1_234_500.0, 0.995, -0.004, -0.005,
          12_345.0, 1e-7, 2.5e9, 1e12, 123_456_789_012.0, 0.1 + 0.2, 1 / 3, np.inf, -np.inf]


def _all_leaves():
    for rb_id in available_rulebooks()["id"]:
        for criterion in load_rulebook(rb_id).criteria:
            yield from criterion.leaves


LEAVES = list({id(leaf): leaf for leaf in _all_leaves()}.values())
# Every kind of text a leaf can write, whether or not a rulebook uses it today.
LEAVES += [
    Leaf(("x",), ">=", 0.03, "fraction", "share", 2, Gap("a", "b", "more", "count")),
    Leaf(("x",), "<=", 0.7, "fraction", "ratio", 0, Gap(None, "b", "debt")),
    Leaf(("x",), ">", 5e6, "CNY", "revenue", gap=Gap(noun="revenue")),
    Leaf(("x",), "<", 2.5, "count", "items"),
    Leaf(("x",), ">", 2.5, "years", "age"),
    Leaf(("x",), "==", 1.0, "flag", "listed"),
]


def _one_by_one(leaf: Leaf, v: float, num: float, den: float) -> str:
    """The gap text of one firm as it was written one firm at a time, with the scalar
    `money` and `percent` (the reference the vectorised texts must equal)."""
    sym = FAILED_SYMBOL[leaf.op]
    t = leaf.threshold
    if leaf.fail_text:
        return leaf.fail_text
    if leaf.unit == "flag":
        return f"{leaf.label}: {'yes' if v == 1 else 'no'}"
    if leaf.unit == "fraction":
        d = leaf.decimals
        while d < leaf.decimals + 3 and percent(v, d) == percent(t, d):
            d += 1
        if percent(v, d) == percent(t, d):
            side = "under" if sym == "<" else "over"
            text = f"{leaf.label} just {side} {percent(t, leaf.decimals)}"
        else:
            text = f"{leaf.label} {percent(v, d)} {sym} {percent(t, d)}"
        return text + (_one_ratio_gap(leaf, v, num, den) if leaf.gap else "")
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


def _one_ratio_gap(leaf: Leaf, v: float, num: float, den: float) -> str:
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


def _assert_same_as_one_by_one(leaf: Leaf, v, num, den):
    v, num, den = (np.asarray(a, dtype=float) for a in (v, num, den))
    expected = []
    for a, b, c in zip(v, num, den):
        try:
            expected.append(_one_by_one(leaf, float(a), float(b), float(c)))
        except (OverflowError, ValueError):  # e.g. ceil(inf): not a value to compare
            return
    got = leaf_texts(leaf, v, num, den)
    assert got.dtype == STRING and list(got) == expected
    # GapWriter's way: each distinct text assembled once, on the first row of its key.
    first, inverse = distinct_rows(leaf_keys(leaf, v, num, den))
    assert list(leaf_texts(leaf, v[first], num[first], den[first])[inverse]) == expected


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda leaf: f"{leaf.unit}-{leaf.label}")
def test_tricky_values_give_the_one_by_one_texts(leaf):
    rng = np.random.default_rng(0)
    t = leaf.threshold
    # shares that print like the bar with the leaf's decimals and j more (j = 0..4)
    near = [t + side * 0.6 * 10.0 ** -(2 + leaf.decimals + j)
            for j in range(5) for side in (-1, 1)]
    values = np.array(TRICKY + near + [t, t * 0.5, t * 1.5, t - 0.5, t + 1e-9]
                      + list(rng.lognormal(0, 3, 300) * rng.choice([-1, 1], 300))
                      + list(np.round(rng.lognormal(10, 3, 300), -3) + 500))  # ties in CNY
    values = values[np.isfinite(values) | (leaf.unit != "fraction")]
    num = np.concatenate([rng.lognormal(12, 2, len(values) - 40), np.full(40, np.nan)])
    den = np.concatenate([np.full(20, np.nan), rng.lognormal(14, 2, len(values) - 20)])
    _assert_same_as_one_by_one(leaf, values, num, den)


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e13, max_value=1e13)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite | st.just(float("nan")),
                          finite | st.just(float("nan"))), min_size=1, max_size=40),
       st.sampled_from(LEAVES))
def test_any_values_give_the_one_by_one_texts(rows, leaf):
    v, num, den = zip(*rows)
    _assert_same_as_one_by_one(leaf, v, num, den)


# Amounts and shares where the printed digits are decided by a tie, a power of ten or a sign.
ties = st.builds(lambda digits, k, sign, nudge: sign * (digits + 0.5) * 10.0 ** k * nudge,
                 st.integers(1, 999), st.integers(-8, 10), st.sampled_from([-1, 1]),
                 st.sampled_from([1.0, 1 + 1e-12, 1 - 1e-12]))
amounts = finite | ties | st.sampled_from(TRICKY + [float("nan")])


@settings(max_examples=300, deadline=None)
@given(st.lists(amounts, min_size=1, max_size=60), st.integers(1, 4))
def test_money_texts_are_the_one_definition_of_an_amount_value_by_value(values, digits):
    x = np.array(values)
    assert list(money_texts(x, digits)) == [money(v, digits) for v in x]
    assert list(money_texts(x)) == [money(v) for v in x]


@settings(max_examples=300, deadline=None)
@given(st.lists(amounts, min_size=1, max_size=60), st.integers(0, 4))
def test_percent_texts_are_percent_value_by_value(values, decimals):
    x = np.array(values) / 1e4
    assert list(percent_texts(x, decimals)) == [percent(v, decimals) for v in x]


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=2, max_size=30), st.integers(1, 6), st.integers(0, 3))
def test_equal_rounding_keys_print_alike(values, significant, decimals):
    values = np.array(values)
    for key, text in ((rounding_key(values, significant=significant),
                       [f"{x:.{significant}g}" for x in values]),
                      (rounding_key(values * 100, decimals=decimals),
                       [f"{x * 100:.{decimals}f}" for x in values])):
        printed: dict[tuple, str] = {}
        for k, t in zip(map(tuple, key), text):
            assert printed.setdefault(k, t) == t


def _assert_keys_print_alike(values: np.ndarray, key: np.ndarray, print_one) -> None:
    printed: dict[tuple, str] = {}
    for k, x in zip(map(tuple, key), values):
        assert printed.setdefault(k, print_one(x)) == print_one(x), (k, x)


@pytest.mark.parametrize("digits", [2, 3])
def test_values_at_decimal_ties_are_printed_one_by_one(digits):
    """Decimal ties (x.5 in the last shown digit) are rarely exact in binary: each prints
    as its binary value rounds, and near-ties next to them may print otherwise."""
    ties = (np.arange(10 ** (digits - 1), 10 ** digits) + 0.5)
    values = np.concatenate([ties * 10.0 ** k for k in range(-6, 10)])
    values = np.concatenate([values, values * (1 + 1e-12), values * (1 - 1e-12)])
    _assert_keys_print_alike(values, rounding_key(values, significant=digits),
                             lambda x: f"{x:.{digits}g}")
    _assert_keys_print_alike(values / 1e4, rounding_key(values / 1e4, decimals=digits),
                             lambda x: f"{x:.{digits}f}")


def test_join_skips_empty_texts():
    parts = [np.array(["a", "", "", "b"], dtype=object), np.array(["c", "d", "", ""], dtype=object)]
    assert list(_join(parts, "; ")) == ["a; c", "d", "", "b"]


def test_assess_is_explain_failures_in_one_list_per_firm(small_universe):
    """assess() builds failed ids and gaps from the failure patterns directly; they are
    explain_failures' failed + failed_on_data and gaps, firm by firm."""
    from features.contract import load_dataset
    from features.pipeline import build_features
    from features.rules import assess, explain_failures, rulebook_in_force

    X = build_features(load_dataset(small_universe), 2024)
    for tier in ("specialized", "little_giant", "champion"):
        rb = rulebook_in_force(tier, 2024)
        verdict = assess(X, rb)
        explained = explain_failures(X, rb, verdict.result)
        assert verdict.failed == [a + b for a, b in zip(explained["failed"],
                                                        explained["failed_on_data"])]
        assert verdict.gaps == list(explained["gaps"])
        assert sum(map(len, verdict.failed)) > len(X)  # firms fail in many ways
        # each firm's lists are its own
        verdict.failed[0].append("x")
        assert all(f[-1:] != ["x"] for f in verdict.failed[1:])


def test_a_share_that_rounds_to_its_bar_is_told_apart_from_it():
    """'main-business share 90% < 90%' never: more decimals, or 'just under' the bar, and
    the vectorised texts agree with the one-value text."""
    from features.rules import load_rulebook
    from features.rules.gaps import leaf_text

    rb = load_rulebook("little_giant_2026")
    leaf = next(x for c in rb.criteria if c.id == "lg26_main_share" for x in c.leaves)
    assert leaf_text(leaf, 0.896) == "main-business share 89.6% < 90.0%"
    assert leaf_text(leaf, 0.8996) == "main-business share 89.96% < 90.00%"
    assert leaf_text(leaf, 0.899994) == "main-business share 89.999% < 90.000%"
    assert leaf_text(leaf, 0.8999999) == "main-business share just under 90%"
    assert leaf_text(leaf, 0.73) == "main-business share 73% < 90%"
    for v in (0.896, 0.8996, 0.899994, 0.8999999, 0.73, 0.8951, 0.8949):
        numbers = re.findall(r"[\d.]+%", leaf_text(leaf, v))
        assert len(set(numbers)) == len(numbers)
