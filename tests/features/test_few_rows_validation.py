"""A few rows (an API request) are validated value by value from per-value memos of the same
parsers and checks (`schemas.parse_cells`, `fast_validation._column_checks_pass`): the
tables, rejects and messages must equal those of the whole-column path for any input,
passing or failing, whatever the memos already hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from features import contract, fast_validation, panel, parsers, rejects, schemas
from features.contract import ContractError, from_frames
from tests.features.contract_fixtures import contract_tables

MONEY = schemas.MONEY_COLUMNS["financials"]


def _records(copies: int = 2) -> dict[str, list[dict]]:
    """The fixture tables, each firm `copies` times (12 firm-years: enough for the money
    unit plausibility check to judge), as JSON records like an API request's."""
    tables = contract_tables()
    out = {}
    for table, frame in tables.items():
        parts = []
        for k in range(copies):
            part = frame.copy()
            for column in ("firm_id", "patent_id"):
                if column in part:
                    part[column] = part[column].map(lambda v, k=k: f"{k}{v}")
            parts.append(part)
        stacked = pd.concat(parts, ignore_index=True).astype(object)
        out[table] = [{c: None if (isinstance(v, float) and np.isnan(v)) else v
                       for c, v in row.items()} for row in stacked.to_dict(orient="records")]
    return out


# Cells that break a rule or only look odd: wrong types, spellings, ranges, dates, enums.
ODD_CELLS = [None, "", " ", "moon", "None", "Main Board", "是", "yes", "maybe", True, False,
             0, -1, -0.0, 1, 2.5, 1e16, 2**60, "1e3", " 42 ", "FY2021", 1899, 2101, 2021.0,
             "2021", "2021-13-01", "2021-02-30", "04/03/2021", "2021-03-04T10:00:00",
             "1850-01-01", "2019-01-01", "33", "330000", "浙江省", "99", "c 3491", "Z99",
             "invention", "发明", "software_copyright", "little giant", "renewed",
             "revoked", "0001", "00001", 0.5, 1.5, 12000, 1e7, 1e12]


@st.composite
def requests(draw):
    tables = _records()
    for _ in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from(list(tables)))
        rows = tables[table]
        action = draw(st.sampled_from(["cell", "cell", "cell", "drop", "duplicate", "scale"]))
        if not rows:
            continue
        row = draw(st.integers(0, len(rows) - 1))
        if action == "cell":
            column = draw(st.sampled_from(sorted(rows[0])))
            rows[row][column] = draw(st.sampled_from(ODD_CELLS))
        elif action == "drop":
            column = draw(st.sampled_from(sorted(rows[0])))
            for r in rows:
                r.pop(column, None)
        elif action == "duplicate":
            rows.append(dict(rows[row]))
        elif table == "financials":  # money posted in 万元 or 千元
            factor = draw(st.sampled_from([1e-4, 1e-3]))
            for r in rows:
                for column in MONEY:
                    if isinstance(r.get(column), float):
                        r[column] *= factor
    unit = draw(st.sampled_from(["yuan", "yuan", "wan", "thousand"]))
    return tables, unit


def _outcome(tables: dict[str, list[dict]], unit: str):
    """The validated Dataset's tables and rejects, or the ContractError's problems."""
    frames = {t: pd.DataFrame.from_records(rows) for t, rows in tables.items()}
    try:
        dataset = from_frames(frames, source="request", money_unit=unit)
    except ContractError as exc:
        return exc.problems
    return {t: getattr(dataset, t) for t in (*contract.TABLES, "rejects")}


def _assert_same(fast, whole):
    if isinstance(whole, list):
        assert fast == whole
        return
    assert isinstance(fast, dict), fast
    for table, frame in whole.items():
        pd.testing.assert_frame_equal(fast[table], frame, check_exact=True)


@settings(max_examples=40, deadline=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(requests())
def test_few_rows_and_whole_columns_accept_the_same_and_say_the_same(monkeypatch, request_):
    tables, unit = request_
    fast = _outcome(tables, unit)
    with monkeypatch.context() as m:  # no table is short enough: the whole-column path
        m.setattr(contract, "FEW_CELLS", 0)
        m.setattr(fast_validation, "FEW_CELLS", 0)
        m.setattr(schemas, "FEW_CELLS", 0)
        m.setattr(panel, "FEW_ROWS", 0)
        whole = _outcome(tables, unit)
    _assert_same(fast, whole)


def test_rows_of_an_unknown_firm_are_the_same_rejects_on_both_paths(monkeypatch):
    tables = _records()
    for table in ("financials", "patents", "certifications"):
        tables[table][0]["firm_id"] = "NOBODY"  # a firm the firms table does not hold
    fast = _outcome(tables, "yuan")
    assert isinstance(fast, dict), fast
    assert sorted(fast["rejects"]["table"]) == ["certifications", "financials", "patents"]
    assert set(fast["rejects"]["rule"]) == {rejects.UNKNOWN_FIRM_RULE}
    with monkeypatch.context() as m:
        for module in (contract, fast_validation, schemas):
            m.setattr(module, "FEW_CELLS", 0)
        m.setattr(panel, "FEW_ROWS", 0)  # ids looked up by Arrow, not in a dict
        whole = _outcome(tables, "yuan")
    _assert_same(fast, whole)


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_the_generated_requests_pass_and_fail():
    """The generator reaches both answers and the rules that matter (not a vacuous test)."""
    outcomes = [_outcome(*requests().example()) for _ in range(30)]
    problems = [p for o in outcomes if isinstance(o, list) for p in o]
    assert any(isinstance(o, dict) for o in outcomes)
    assert any("must be" in p for p in problems)


@pytest.mark.parametrize("order", ["cold", "warm", "reversed"])
def test_memo_state_does_not_change_the_answer(order, monkeypatch):
    """The same failing and passing requests, with memos empty, filled by the same
    requests, or filled in another order, answer alike."""
    cases = [(_records(), "yuan"), (_records(), "wan")]
    broken = _records()
    broken["financials"][3]["revenue"] = -5.0
    broken["patents"][1]["granted"] = "2019-01-01"  # before filing
    broken["firms"][0]["province"] = "99"
    cases.append((broken, "yuan"))
    monkeypatch.setattr(fast_validation, "_CELL_MEMOS", {k: {} for k in parsers.PARSERS})
    monkeypatch.setattr(fast_validation, "_CHECK_MEMOS", {})
    if order != "cold":
        for tables, unit in (cases if order == "warm" else cases[::-1]):
            _outcome(tables, unit)
    with monkeypatch.context() as m:
        m.setattr(contract, "FEW_CELLS", 0)
        m.setattr(fast_validation, "FEW_CELLS", 0)
        m.setattr(schemas, "FEW_CELLS", 0)
        m.setattr(panel, "FEW_ROWS", 0)
        expected = [_outcome(*c) for c in cases]
    for case, want in zip(cases, expected):
        _assert_same(_outcome(*case), want)
    assert isinstance(expected[0], dict) and isinstance(expected[2], list)


def _checked_columns():
    frames = {t: contract._normalise(t, pd.DataFrame.from_records(rows))[0]
              for t, rows in _records(3).items()}
    for table, frame in frames.items():
        schema = schemas.SCHEMAS[table].to_schema()
        for name, column in schema.columns.items():
            for check in column.checks:
                yield pytest.param(check, frame[name], id=f"{table}.{name}.{check.name}")


@pytest.mark.parametrize("check, values", list(_checked_columns()))
def test_every_column_check_judges_each_value_alone(check, values):
    """What the memo of verdicts rests on: a check's verdict on a column equals its verdicts
    on the column's parts, in any order (with an out-of-range value added)."""
    odd = {"float64": -1.0, "Int64": 1850, "str": "moon"}.get(str(values.dtype))
    if odd is not None:
        values = pd.concat([values, pd.Series([odd], dtype=values.dtype)], ignore_index=True)
    values = fast_validation._check_input(check, values)
    fn = check._check_fn
    whole = fn(values).to_numpy(dtype=bool, na_value=False)
    shuffled = np.random.default_rng(0).permutation(len(values))
    parts = [fn(values.iloc[[i]]).to_numpy(dtype=bool, na_value=False)[0] for i in shuffled]
    assert list(whole[shuffled]) == parts


def test_an_optional_column_left_out_stays_missing_for_the_next_request():
    """A request's absent optional columns are one shared all-missing column per kind and
    length: what a caller writes into its dataset (a default, a fix) never reaches the
    next request's."""
    tables = _records()
    for row in tables["financials"]:
        row.pop("rd_institution", None)
        row.pop("quality_cert", None)
    first = from_frames(tables, source="request")
    assert (first.financials["rd_institution"] == "none").all()  # the schema's default
    first.financials.loc[:, "quality_cert"] = True
    first.financials.loc[:, "rd_institution"] = "x"
    second = from_frames(tables, source="request")
    assert second.financials["quality_cert"].isna().all()
    assert (second.financials["rd_institution"] == "none").all()
    assert second.financials.shape == first.financials.shape
