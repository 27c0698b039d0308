"""The pandera shortcut: a passing table comes out as pandera returns it; no broken rule passes."""

from __future__ import annotations

import pandas as pd
import pytest

from features.contract import _normalise
from features.fast_validation import passes_schema
from features.files import find_table, read_table
from features.schemas import SCHEMAS
from tests.features.contract_fixtures import contract_tables
from tests.features.test_contract import RULES, TABLES, _with


def _both(table: str, raw: pd.DataFrame) -> tuple[bool, pd.DataFrame, pd.DataFrame | None]:
    """(passes_schema's answer, its frame, pandera's validated frame or None if it fails)."""
    fast, failures = _normalise(table, raw.copy())
    slow, _ = _normalise(table, raw.copy())
    assert failures is None
    answer = passes_schema(SCHEMAS[table].to_schema(), fast)
    try:
        judged = SCHEMAS[table].validate(slow, lazy=True, inplace=True)
    except Exception:  # noqa: BLE001 - pandera's SchemaErrors: the table fails
        judged = None
    return answer, fast, judged


@pytest.mark.parametrize("table", TABLES)
def test_a_generated_table_passes_and_equals_pandera_output(small_universe, table):
    file, _ = find_table(small_universe, table)
    answer, fast, judged = _both(table, read_table(file).frame)
    assert answer and judged is not None
    pd.testing.assert_frame_equal(fast, judged, check_exact=True)


@pytest.mark.parametrize("table", TABLES)
def test_defaults_are_filled_as_pandera_fills_them(table):
    raw = contract_tables()[table].head(2)
    for column, spec in SCHEMAS[table].to_schema().columns.items():
        if spec.default is not None and column in raw:
            raw[column] = None  # every cell empty: the default's dtype handling matters
    answer, fast, judged = _both(table, raw)
    assert answer and judged is not None
    pd.testing.assert_frame_equal(fast, judged, check_exact=True)


# The broken rules that pandera judges (a cell that does not parse never reaches it).
PANDERA_RULES = [(t, r, c) for t, r, c, _ in RULES
                 if _normalise(t, _with([(t, r, c)])[t])[1] is None]


def test_most_rules_are_pandera_rules():
    assert len(PANDERA_RULES) >= 20


@pytest.mark.parametrize("table, row, cells", PANDERA_RULES,
                         ids=[f"{t}.{next(iter(c))}" for t, _, c in PANDERA_RULES])
def test_no_broken_rule_passes(table, row, cells):
    raw = _with([(table, row, cells)])[table]
    fast, _ = _normalise(table, raw)
    assert not passes_schema(SCHEMAS[table].to_schema(), fast)


def test_duplicate_keys_and_missing_required_columns_do_not_pass():
    firms = contract_tables()["firms"]
    twice, _ = _normalise("firms", pd.concat([firms, firms.head(1)], ignore_index=True))
    assert not passes_schema(SCHEMAS["firms"].to_schema(), twice)
    fin = contract_tables()["financials"]
    again, _ = _normalise("financials", pd.concat([fin, fin.head(1)], ignore_index=True))
    assert not passes_schema(SCHEMAS["financials"].to_schema(), again)
    without, _ = _normalise("financials", fin.drop(columns=["revenue"]))
    assert not passes_schema(SCHEMAS["financials"].to_schema(), without)


def test_a_duplicate_among_a_million_ids_is_found_through_the_hashes():
    """Past HASHED_ROWS strings are told apart by their 64-bit hashes first; a duplicate
    anywhere (or a chunked column, or one sliced out of a longer one) is still found."""
    from features.fast_validation import HASHED_ROWS, _has_duplicates

    n = 2 * HASHED_ROWS
    ids = pd.Series([f"CN{i:012d}.{i % 7}" for i in range(n)], dtype="str")
    assert not _has_duplicates(ids)
    assert not _has_duplicates(ids.iloc[1:])
    for at in (0, n // 2, n - 1):
        twice = pd.concat([ids, ids.iloc[[at]]], ignore_index=True)  # two Arrow chunks
        assert _has_duplicates(twice)
        assert _has_duplicates(twice.iloc[at:])
    # ids that are prefixes of others ("1", "10", "100") are other ids
    assert not _has_duplicates(pd.Series([str(i) for i in range(n)], dtype="str"))


def test_enum_columns_read_as_categoricals_give_the_same_tables(small_universe, monkeypatch):
    """Reading kind, tier, event, ... from Parquet as categoricals (parsed per distinct
    value) changes nothing in the validated tables or the rejects."""
    from features import contract

    assert contract.enum_columns("patents") == ("kind",)
    fast = contract.load_dataset(small_universe)
    monkeypatch.setattr(contract, "enum_columns", lambda table: ())
    plain = contract.load_dataset(small_universe)
    for table in contract.TABLES:
        pd.testing.assert_frame_equal(getattr(fast, table), getattr(plain, table),
                                      check_exact=True)
    pd.testing.assert_frame_equal(fast.rejects, plain.rejects, check_exact=True)
