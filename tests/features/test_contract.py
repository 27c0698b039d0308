"""Data contract: loading, normalisation, every validation rule and its message."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from features.contract import (
    REJECT_COLUMNS,
    ContractError,
    Dataset,
    from_frames,
    load_dataset,
    summarize,
    write_rejects,
)
from features.schemas import SCHEMAS
from tests.features.contract_fixtures import contract_tables, write_tables

TABLES = ("firms", "financials", "patents", "certifications")


def _with(changes: list[tuple[str, int, dict]]) -> dict[str, pd.DataFrame]:
    """The fixture tables with cells replaced: (table, 0-based row, {column: value})."""
    tables = contract_tables()
    for table, row, cells in changes:
        for column, value in cells.items():
            tables[table][column] = tables[table][column].astype(object)
            tables[table].loc[row, column] = value
    return tables


def _problems(folder) -> list[str]:
    with pytest.raises(ContractError) as caught:
        load_dataset(folder)
    return caught.value.problems


@pytest.fixture
def csv_dataset(tmp_path):
    return load_dataset(write_tables(contract_tables(), tmp_path))


# --- loading and normalisation -----------------------------------------------------------


def test_valid_dataset_has_contract_dtypes(csv_dataset):
    ds = csv_dataset
    assert (len(ds.firms), len(ds.financials), len(ds.patents), len(ds.certifications)) == (
        3,
        6,
        5,
        4,
    )
    assert list(ds.rejects.columns) == REJECT_COLUMNS and ds.rejects.empty
    assert ds.firms["firm_id"].tolist() == ["0001", "0002", "0003"]  # leading zeros kept
    assert ds.firms["province"].tolist() == ["33", "44", "32"]
    dtypes = {
        ("firms", "founded_year"): "int64",
        ("firms", "niche_entry_year"): "int64",
        ("firms", "state_share"): "float64",
        ("firms", "firm_id"): "str",
        ("financials", "year"): "int64",
        ("financials", "employees"): "int64",
        ("financials", "rd_staff"): "float64",
        ("financials", "high_tech"): "boolean",
        ("patents", "filed"): "datetime64[us]",
        ("patents", "lapsed"): "datetime64[us]",
        ("certifications", "batch"): "float64",
        ("certifications", "event"): "str",
    }
    for (table, column), dtype in dtypes.items():
        assert getattr(ds, table)[column].dtype == dtype, (table, column)
    for table in TABLES:
        frame = getattr(ds, table)
        assert isinstance(frame.index, pd.RangeIndex)
        assert list(frame.columns) == list(SCHEMAS[table].to_schema().columns)


def test_csv_and_parquet_load_identically(tmp_path):
    from_csv = load_dataset(write_tables(contract_tables(), tmp_path / "csv"))
    from_parquet = load_dataset(write_tables(contract_tables(), tmp_path / "pq", "parquet"))
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(from_csv, table), getattr(from_parquet, table))


def test_frames_load_like_csv(tmp_path, csv_dataset):
    in_memory = from_frames(contract_tables())
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(in_memory, table), getattr(csv_dataset, table))


def test_parquet_wins_when_both_exist(tmp_path):
    write_tables(contract_tables(), tmp_path)
    firms = contract_tables()["firms"].assign(name="from parquet")
    write_tables({"firms": firms}, tmp_path, "parquet")
    assert load_dataset(tmp_path).firms["name"].tolist() == ["from parquet"] * 3


def test_defaults_fill_missing_columns_and_empty_cells(tmp_path):
    tables = contract_tables()
    tables["firms"] = tables["firms"].drop(columns=["state_share", "listed_board"])
    tables["financials"] = tables["financials"].drop(columns=["rd_institution"])
    ds = load_dataset(write_tables(tables, tmp_path))
    assert ds.firms["niche_entry_year"].tolist() == [2008, 2010, 2001]  # empty -> founded
    assert ds.firms["state_share"].tolist() == [0.0, 0.0, 0.0]
    assert ds.firms["listed_board"].tolist() == ["none"] * 3
    assert ds.financials["rd_institution"].tolist() == ["none"] * 6
    assert ds.certifications["event"].tolist() == ["granted"] * 4  # one cell was empty
    assert ds.financials["global_rank"].isna().sum() == 4  # missing is never zero


def test_booleans_accept_spellings_and_empty_is_unknown(tmp_path):
    tables = contract_tables()
    tables["financials"]["high_tech"] = ["TRUE", "no", "1", "0", "Yes", ""]
    ds = load_dataset(write_tables(tables, tmp_path))
    assert ds.financials["high_tech"].tolist() == [True, False, True, False, True, pd.NA]


def test_codes_and_enums_are_normalised():
    tables = contract_tables()
    tables["firms"]["province"] = [33, "440000", " 江苏省 "]
    tables["firms"]["industry_code"] = [" c3491", "i65 ", "C39"]
    tables["patents"]["kind"] = ["INVENTION", "Utility", "design", "Software", "发明"]
    tables["certifications"]["tier"] = ["Specialized", "little giant", "Little_Giant", "CHAMPION"]
    tables["certifications"]["event"] = ["GRANTED", " renewed ", None, "Revoked"]
    ds = from_frames(tables)
    assert ds.firms["province"].tolist() == ["33", "44", "32"]
    assert ds.firms["industry_code"].tolist() == ["C3491", "I65", "C39"]
    assert ds.patents["kind"].tolist() == [
        "invention",
        "utility",
        "design",
        "software",
        "invention",
    ]
    assert ds.certifications["tier"].tolist() == [
        "specialized",
        "little_giant",
        "little_giant",
        "champion",
    ]
    assert ds.certifications["event"].tolist() == ["granted", "renewed", "granted", "revoked"]


def test_text_is_kept_verbatim_and_extra_columns_are_kept(tmp_path):
    tables = contract_tables()
    tables["firms"]["name"] = ["NA", " 007 ", ""]
    tables["firms"]["website"] = ["a.cn", "", "c.cn"]
    ds = load_dataset(write_tables(tables, tmp_path))
    assert ds.firms["name"].tolist()[:2] == ["NA", "007"] and pd.isna(ds.firms["name"][2])
    assert ds.firms["website"].tolist()[0] == "a.cn"


def test_headers_are_matched_ignoring_case_and_spaces(tmp_path):
    tables = contract_tables()
    tables["firms"] = tables["firms"].rename(
        columns={"firm_id": " Firm_ID", "province": "PROVINCE"}
    )
    ds = load_dataset(write_tables(tables, tmp_path))
    assert ds.firms["firm_id"].tolist() == ["0001", "0002", "0003"]
    assert ds.firms["province"].tolist() == ["33", "44", "32"]


# --- fatal rules: one broken input each, exact message -----------------------------------

RULES = [
    # firms
    ("firms", 1, {"firm_id": " "}, "firms.csv, column firm_id, row 2: must not be empty"),
    (
        "firms",
        2,
        {"firm_id": "0001"},
        "firms.csv, column firm_id, rows 1, 3: must be unique (got '0001')",
    ),
    (
        "firms",
        1,
        {"province": "99"},
        "firms.csv, column province, row 2: must be a 2-digit GB/T 2260 province code, e.g. 33 (got '99')",
    ),
    ("firms", 1, {"province": ""}, "firms.csv, column province, row 2: must not be empty"),
    (
        "firms",
        0,
        {"industry_code": "Z123"},
        "firms.csv, column industry_code, row 1: must be a GB/T 4754-2017 code: section letter A-T and 2 to 4 digits, e.g. C3491 (got 'Z123')",
    ),
    (
        "firms",
        0,
        {"industry_code": "C3"},
        "firms.csv, column industry_code, row 1: must be a GB/T 4754-2017 code: section letter A-T and 2 to 4 digits, e.g. C3491 (got 'C3')",
    ),
    (
        "firms",
        2,
        {"founded_year": 1800},
        "firms.csv, column founded_year, row 3: must be a year from 1900 to 2100 (got 1800)",
    ),
    (
        "firms",
        2,
        {"founded_year": "1998.5"},
        ("firms.csv, column founded_year, row 3: must be a year written as a whole number, "
         "e.g. 2021 (got '1998.5')"),
    ),
    (
        "firms",
        0,
        {"niche_entry_year": 1990},
        "firms.csv, column niche_entry_year, row 1: must be >= founded_year (got 1990 < 2005)",
    ),
    (
        "firms",
        1,
        {"parent_employees": -1},
        "firms.csv, column parent_employees, row 2: must be >= 0 (got -1.0)",
    ),
    (
        "firms",
        0,
        {"state_share": 1.5},
        "firms.csv, column state_share, row 1: must be between 0 and 1 (got 1.5)",
    ),
    (
        "firms",
        0,
        {"listed_board": "nasdaq"},
        "firms.csv, column listed_board, row 1: must be one of none, main, star, chinext, bse, neeq (got 'nasdaq')",
    ),
    # financials
    (
        "financials",
        2,
        {"revenue": -5},
        "financials.csv, column revenue, row 3: must be >= 0 (got -5.0)",
    ),
    (
        "financials",
        2,
        {"revenue": "abc"},
        "financials.csv, column revenue, row 3: must be a number (got 'abc')",
    ),
    ("financials", 2, {"revenue": ""}, "financials.csv, column revenue, row 3: must not be empty"),
    (
        "financials",
        2,
        {"total_assets": -1},
        "financials.csv, column total_assets, row 3: must be >= 0 (got -1.0)",
    ),
    (
        "financials",
        2,
        {"total_liabilities": -1},
        "financials.csv, column total_liabilities, row 3: must be >= 0 (got -1.0)",
    ),
    (
        "financials",
        2,
        {"rd_expense": -1},
        "financials.csv, column rd_expense, row 3: must be >= 0 (got -1.0)",
    ),
    (
        "financials",
        2,
        {"employees": -1},
        "financials.csv, column employees, row 3: must be >= 0 (got -1)",
    ),
    (
        "financials",
        2,
        {"employees": "2.5"},
        "financials.csv, column employees, row 3: must be a whole number (got '2.5')",
    ),
    (
        "financials",
        0,
        {"year": 1800},
        "financials.csv, column year, row 1: must be a year from 1900 to 2100 (got 1800)",
    ),
    (
        "financials",
        1,
        {"year": 2020},
        "financials.csv, columns firm_id and year, rows 1, 2: must be unique together (got '0001'/2020)",
    ),
    (
        "financials",
        0,
        {"main_revenue": 9e7},
        "financials.csv, column main_revenue, row 1: must be <= revenue (got 90000000.0 > 80000000.0)",
    ),
    (
        "financials",
        0,
        {"export_revenue": 9e7},
        "financials.csv, column export_revenue, row 1: must be <= revenue (got 90000000.0 > 80000000.0)",
    ),
    (
        "financials",
        0,
        {"rd_staff": 200},
        "financials.csv, column rd_staff, row 1: must be <= employees (got 200.0 > 150)",
    ),
    (
        "financials",
        0,
        {"domestic_share": 1.2},
        "financials.csv, column domestic_share, row 1: must be between 0 and 1 (got 1.2)",
    ),
    (
        "financials",
        0,
        {"domestic_rank": 0},
        "financials.csv, column domestic_rank, row 1: must be >= 1 (got 0.0)",
    ),
    (
        "financials",
        4,
        {"global_rank": 0},
        "financials.csv, column global_rank, row 5: must be >= 1 (got 0.0)",
    ),
    (
        "financials",
        0,
        {"rd_institution": "lab"},
        "financials.csv, column rd_institution, row 1: must be one of none, city, provincial, national (got 'lab')",
    ),
    (
        "financials",
        0,
        {"high_tech": "maybe"},
        "financials.csv, column high_tech, row 1: must be true/false, 1/0, yes/no or empty (got 'maybe')",
    ),
    # patents
    (
        "patents",
        1,
        {"patent_id": "CN201910000001"},
        "patents.csv, column patent_id, rows 1, 2: must be unique (got 'CN201910000001')",
    ),
    (
        "patents",
        2,
        {"kind": "trademark"},
        "patents.csv, column kind, row 3: must be one of invention, utility, design, software (got 'trademark')",
    ),
    (
        "patents",
        4,
        {"filed": "2019-02-30"},
        "patents.csv, column filed, row 5: must be a date YYYY-MM-DD (got '2019-02-30')",
    ),
    (
        "patents",
        4,
        {"filed": "30/06/2018"},
        "patents.csv, column filed, row 5: must be a date YYYY-MM-DD (got '30/06/2018')",
    ),
    ("patents", 4, {"filed": ""}, "patents.csv, column filed, row 5: must not be empty"),
    (
        "patents",
        4,
        {"filed": "1850-01-01"},
        "patents.csv, column filed, row 5: must be a date from 1900 to 2100 (got 1850-01-01)",
    ),
    (
        "patents",
        0,
        {"granted": "2019-01-01"},
        "patents.csv, column granted, row 1: must be >= filed (got 2019-01-01 < 2019-03-01)",
    ),
    (
        "patents",
        1,
        {"lapsed": "2019-06-01"},
        "patents.csv, column lapsed, row 2: must be >= granted (got 2019-06-01 < 2019-11-20)",
    ),
    # certifications
    (
        "certifications",
        0,
        {"tier": "gold"},
        "certifications.csv, column tier, row 1: must be one of innovative, specialized, little_giant, champion (got 'gold')",
    ),
    (
        "certifications",
        0,
        {"event": "expired"},
        "certifications.csv, column event, row 1: must be one of granted, renewed, revoked (got 'expired')",
    ),
    (
        "certifications",
        3,
        {"year": "20x1"},
        ("certifications.csv, column year, row 4: must be a year written as a whole number, "
         "e.g. 2021 (got '20x1')"),
    ),
    (
        "certifications",
        1,
        {"batch": 0},
        "certifications.csv, column batch, row 2: must be >= 1 (got 0.0)",
    ),
]


@pytest.mark.parametrize(
    "table, row, cells, message",
    RULES,
    ids=[f"{t}.{next(iter(c))}={c[next(iter(c))]!r}" for t, _, c, _ in RULES],
)
def test_rule_violation_is_fatal_with_exact_message(tmp_path, table, row, cells, message):
    assert _problems(write_tables(_with([(table, row, cells)]), tmp_path)) == [message]


REQUIRED = [
    (t, name)
    for t in TABLES
    for name, column in SCHEMAS[t].to_schema().columns.items()
    if column.required
]


@pytest.mark.parametrize("table, column", REQUIRED, ids=[f"{t}.{c}" for t, c in REQUIRED])
def test_missing_required_column_is_fatal(tmp_path, table, column):
    tables = contract_tables()
    tables[table] = tables[table].drop(columns=[column])
    assert _problems(write_tables(tables, tmp_path)) == [
        f"{table}.csv, column {column}: required column is missing"
    ]


def test_missing_table_and_unreadable_file_are_fatal(tmp_path):
    tables = contract_tables()
    del tables["patents"]
    write_tables(tables, tmp_path)
    (tmp_path / "certifications.csv").write_text("firm_id,tier,year\n0001,champion,2021,x\n")
    problems = _problems(tmp_path)
    assert problems[0] == (
        f"patents: table is missing (no patents.parquet, patents.csv or patents.xlsx in "
        f"{tmp_path})"
    )
    assert problems[1].startswith("certifications.csv: cannot be read as UTF-8 "
                                  "comma-separated text (")
    assert len(problems) == 2


def test_missing_folder_is_fatal(tmp_path):
    assert _problems(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: data folder not found"]


def test_many_rows_are_listed_up_to_five(tmp_path):
    tables = contract_tables()
    tables["financials"]["total_assets"] = [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0]
    assert _problems(write_tables(tables, tmp_path)) == [
        (
            "financials.csv, column total_assets, rows 1, 2, 3, 4, 5 and 1 more: must be >= 0 "
            "(got -1.0, -2.0, -3.0, -4.0, -5.0)"
        )
    ]


def test_many_rows_of_a_cross_column_rule_are_counted(tmp_path):
    tables = contract_tables()
    tables["financials"]["main_revenue"] = tables["financials"]["revenue"] * 2
    assert _problems(write_tables(tables, tmp_path)) == [
        (
            "financials.csv, column main_revenue, rows 1, 2, 3, 4, 5 and 1 more: must be <= revenue "
            "(got 160000000.0 > 80000000.0, 190000000.0 > 95000000.0, 60000000.0 > 30000000.0, "
            "66000000.0 > 33000000.0, 420000000.0 > 210000000.0)"
        )
    ]


def test_lazy_validation_reports_all_problems_at_once(tmp_path):
    tables = _with(
        [
            ("firms", 1, {"province": "99"}),
            ("financials", 2, {"revenue": "abc"}),
            ("financials", 2, {"employees": -3}),
            ("patents", 2, {"kind": "x"}),
            ("certifications", 0, {"tier": "gold"}),
        ]
    )
    with pytest.raises(ContractError) as caught:
        load_dataset(write_tables(tables, tmp_path))
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "firms.csv, column province, row 2",
        "financials.csv, column revenue, row 3",
        "financials.csv, column employees, row 3",
        "patents.csv, column kind, row 3",
        "certifications.csv, column tier, row 1",
    ]
    assert str(caught.value).startswith(
        f"{tmp_path} does not follow the data contract (5 problems):\n- firms.csv, column province"
    )
    assert set(caught.value.failure_cases["row"]) >= {1, 2, 3}


def test_frames_count_records_from_zero():
    with pytest.raises(ContractError) as caught:
        from_frames(_with([("financials", 2, {"revenue": -5})]))
    assert caught.value.problems == [
        "financials, column revenue, record 2: must be >= 0 (got -5.0)"
    ]
    assert str(caught.value).startswith("request does not follow the data contract")


# --- row-level problems: removed and recorded ------------------------------------------


def test_rows_of_unknown_firms_are_rejected_and_the_rest_kept(tmp_path):
    tables = contract_tables()
    stranger = {
        "firms": None,
        "financials": {**tables["financials"].iloc[0].to_dict(), "firm_id": "9999"},
        "patents": {**tables["patents"].iloc[0].to_dict(), "patent_id": "CN9", "firm_id": "9999"},
        "certifications": {**tables["certifications"].iloc[0].to_dict(), "firm_id": "9999"},
    }
    for table, row in stranger.items():
        if row is not None:
            tables[table] = pd.concat([tables[table], pd.DataFrame([row])], ignore_index=True)
    ds = load_dataset(write_tables(tables, tmp_path))
    assert (len(ds.financials), len(ds.patents), len(ds.certifications)) == (6, 5, 4)
    assert "9999" not in set(ds.patents["firm_id"])
    assert isinstance(ds.patents.index, pd.RangeIndex)
    rejects = ds.rejects
    assert rejects[["table", "row", "column", "reason"]].values.tolist() == [
        ["financials", 7, "firm_id", "financials of an unknown firm"],
        ["patents", 6, "firm_id", "patent of an unknown firm"],
        ["certifications", 5, "firm_id", "certification of an unknown firm"],
    ]
    assert set(rejects["rule"]) == {"firm_id must be a firm_id of firms"}
    patent = json.loads(rejects["record"][1])
    assert patent["patent_id"] == "CN9" and patent["filed"] == "2019-03-01"
    assert summarize(ds)["rejects"] == {
        "financials of an unknown firm": 1,
        "patent of an unknown firm": 1,
        "certification of an unknown firm": 1,
    }


def test_write_rejects_is_atomic_csv(tmp_path):
    rejects = pd.DataFrame(
        [
            {
                "table": "patents",
                "row": 6,
                "column": "firm_id",
                "rule": "r",
                "reason": "patent of an unknown firm",
                "record": json.dumps({"firm_id": "9999"}),
            }
        ]
    )
    path = write_rejects(rejects, tmp_path / "out")
    assert path == tmp_path / "out"
    written = write_rejects(rejects, tmp_path)
    assert written == tmp_path / "rejects.csv"
    back = pd.read_csv(written, dtype={"row": "int64"})
    assert back["record"][0] == '{"firm_id": "9999"}' and back["row"][0] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rejects.csv"]


def test_summarize(csv_dataset):
    summary = summarize(csv_dataset)
    assert summary["rows"] == {"firms": 3, "financials": 6, "patents": 5, "certifications": 4}
    assert summary["firms"] == 3 and summary["years"] == (2020, 2021)
    certs = summary["certifications"]
    assert list(certs.columns) == ["year", "tier", "granted", "renewed", "revoked"]
    assert certs[["year", "tier", "granted"]].values.tolist() == [
        [2019, "specialized", 1],
        [2020, "little_giant", 1],
        [2021, "champion", 1],
        [2021, "little_giant", 1],
    ]
    assert summary["rejects"] == {}


def test_dataset_records_its_source(tmp_path):
    ds = load_dataset(write_tables(contract_tables(), tmp_path))
    assert isinstance(ds, Dataset) and ds.source == str(tmp_path)


def test_records_with_an_empty_table_are_accepted():
    records = {t: frame.to_dict("records") for t, frame in contract_tables().items()}
    records["certifications"] = []
    ds = from_frames(records)
    assert ds.certifications.empty and ds.certifications["year"].dtype == "int64"
    assert list(ds.certifications.columns) == ["firm_id", "tier", "year", "batch", "event"]
    assert len(ds.patents) == 5
