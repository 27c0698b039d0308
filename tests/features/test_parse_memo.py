"""The parsers' per-value memo: a column parses the same whether its values were seen or not."""

from __future__ import annotations

import pandas as pd
import pytest

from features import parsers

# Messy spellings each parser accepts, some it refuses, and missing cells.
COLUMNS = {
    "enum": ["None", "Sci-Tech Board", "main board", "", None, "moon", "none"],
    "province": ["33", "330000", "Zhejiang", "浙江省", "99", None, "33.0"],
    "industry": ["c 3491", "C34.91", "F51", "", None, "c3491"],
    "bool": ["yes", "No", "1", "0.0", "maybe", "", None, "是"],
    "date": ["2021-03-04", "2021-03-04T10:00:00", "2021-13-01", "04/03/2021", "", None],
}


@pytest.mark.parametrize("kind", COLUMNS)
def test_memoised_parse_equals_a_fresh_parse(kind, monkeypatch):
    parse = parsers.PARSERS[kind]
    values = pd.Series(COLUMNS[kind], dtype=object)
    monkeypatch.setattr(parsers, "_MEMOS", {})
    monkeypatch.setattr(parsers, "_MEMO_DISTINCT", 0)  # no memo: every value parsed
    expected, expected_bad = parse(values)
    monkeypatch.setattr(parsers, "_MEMO_DISTINCT", 64)
    half = values.iloc[::2].reset_index(drop=True)
    parse(half)  # some values seen before, some new
    for column in (values, values.iloc[::-1].reset_index(drop=True), half):
        got, bad = parse(column)
        want, want_bad = (expected, expected_bad) if column is values else \
            _fresh(parse, column, monkeypatch)
        pd.testing.assert_series_equal(got, want, check_exact=True)
        assert got.dtype == want.dtype and list(bad) == list(want_bad)


def _fresh(parse, column: pd.Series, monkeypatch):
    monkeypatch.setattr(parsers, "_MEMO_DISTINCT", 0)
    try:
        return parse(column)
    finally:
        monkeypatch.setattr(parsers, "_MEMO_DISTINCT", 64)


@pytest.mark.parametrize("kind", COLUMNS)
def test_repeated_requests_reuse_one_memo_per_parser(kind, monkeypatch):
    """A server parses the same few values request after request: the memo table must not
    gain an entry per call (a parser passing a fresh lambda would, without bound)."""
    parse = parsers.PARSERS[kind]
    monkeypatch.setattr(parsers, "_MEMOS", {})
    for _ in range(3):
        parse(pd.Series(COLUMNS[kind], dtype=object))
    assert len(parsers._MEMOS) <= 1
