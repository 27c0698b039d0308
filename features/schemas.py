"""Pandera schemas of the four contract tables; `features.parsers` types their raw cells.

Every table of DATA_CONTRACT.md has one `DataFrameModel`. The models validate the
*normalised* tables (typed columns, missing = NA), so a check never sees raw text. Contract
columns that are optional are `Series[...] | None` fields; `Field(default=...)` states the
contract default, which pandera fills in during validation.

Required integer columns are validated as nullable `Int64` so that an empty cell is
reported as such; the loader stores them as `int64` once they pass. Optional integer
columns (counts and ranks that may be missing) are `float64` with NaN = missing.

Column checks carry the sentence used in error messages (`error=`). A cross-column check
is named `"<column> <op> <other column>"`; the loader reports it on `<column>`. Every
contract column and its rules are declared here, in one place.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa
from pandera.engines import pandas_engine
from pandera.typing import Series

from features.domain import EVENTS, TIER_ORDER
from features.regions import PROVINCE_TABLE

MIN_YEAR, MAX_YEAR = 1900, 2100
SHOWN_FAILURES = 5  # failing values quoted per rule in a message

# GB/T 2260 province-level divisions: code -> (Chinese short name, romanised names), from
# the one province table (features/data/provinces.csv).
PROVINCES: dict[str, tuple[str, ...]] = {
    code: tuple(aliases.split("|")) for code, aliases in PROVINCE_TABLE["aliases"].items()
}
INDUSTRY_CODE_PATTERN = r"^[A-T][0-9]{2,4}$"

TIERS = TIER_ORDER  # the values the certifications table accepts
KINDS = ("invention", "utility", "design", "software")
RD_INSTITUTIONS = ("none", "city", "provincial", "national")
LISTED_BOARDS = ("none", "main", "star", "chinext", "bse", "neeq")

# Beyond any real firm: the largest firms on earth have revenues near 1e13 CNY and about
# 2 million employees. A value past these is a unit or export error, not data.
MONEY_LIMIT = 1e15  # CNY
HEADCOUNT_LIMIT = 10_000_000
MONEY_LIMIT_RULE = "must be below 1e15 CNY (beyond any real firm: is the money unit right?)"
HEADCOUNT_LIMIT_RULE = "must be below 10,000,000 (beyond any real firm)"
# Money columns of each table, in CNY yuan (`--money-unit` converts from 千元 or 万元).
MONEY_COLUMNS = {
    "firms": ("parent_revenue",),
    "financials": ("revenue", "main_revenue", "net_profit", "total_assets",
                   "total_liabilities", "rd_expense", "export_revenue", "equity_raised",
                   "subsidies"),
}

YEAR_RULE = f"must be a year from {MIN_YEAR} to {MAX_YEAR}"
DATE_RULE = f"must be a date from {MIN_YEAR} to {MAX_YEAR}"
DateColumn = Series[pandas_engine.DateTime]
_US = {"unit": "us"}


def column_check(*columns: str, error: str):
    """A vectorised check whose `error` is the message sentence. Only the first
    `SHOWN_FAILURES` failing values are collected: pandera formats every failure case into
    one string (seconds per million cases); the loader takes the full list of failing rows
    from the check's boolean output instead."""
    return pa.check(*columns, error=error, n_failure_cases=SHOWN_FAILURES)


# Up to this many rows a table is parsed and checked value by value, in Python
# (features.fast_validation; the row-wise checks below too): pandas costs tens of
# microseconds per call whatever the length, a request's tables have a few rows.
FEW_CELLS = 256


def is_missing_cell(value) -> bool:
    """A missing cell as `Series.tolist()` gives it (None, NaN, NA or NaT); the few-rows
    routes (here and features.fast_validation) read cells with it."""
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and math.isnan(value))


def cross_column_check(rule: str):
    """Row-wise check "<column> <op> <other column>" (op <= or >=), reported on <column>;
    a row passes when either side is missing (missing is not a violation)."""
    left, op, right = rule.split()

    def ordered(cls, df: pd.DataFrame) -> pd.Series | bool:
        if left not in df or right not in df:
            return True  # the missing column is reported on its own
        if len(df) <= FEW_CELLS:  # as Python values: a few rows cost pandas' fixed costs
            pairs = zip(df[left].tolist(), df[right].tolist())
            return pd.Series([is_missing_cell(a) or is_missing_cell(b) or (a <= b if op == "<=" else a >= b)
                              for a, b in pairs], index=df.index, dtype=bool)
        broken = df[left] > df[right] if op == "<=" else df[left] < df[right]
        # A missing side compares as missing (nullable dtypes) or False: not broken.
        return pd.Series(~broken.to_numpy(dtype=bool, na_value=False), index=df.index)

    return pa.dataframe_check(name=rule, n_failure_cases=SHOWN_FAILURES)(ordered)


def _one_of(values: Iterable[str]) -> str:
    return "must be one of " + ", ".join(values)


def _plausible_year(s: pd.Series) -> pd.Series:
    return s.between(MIN_YEAR, MAX_YEAR)


class FirmsSchema(pa.DataFrameModel):
    """firms: one row per firm."""

    firm_id: Series[str] = pa.Field(unique=True)
    name: Series[str] | None = pa.Field(nullable=True)
    province: Series[str] = pa.Field(metadata={"kind": "province"})
    industry_code: Series[str] = pa.Field(metadata={"kind": "industry"})
    founded_year: Series[pd.Int64Dtype] = pa.Field(metadata={"kind": "year"})
    # Empty cells take founded_year; one left empty means founded_year is, reported there.
    niche_entry_year: Series[pd.Int64Dtype] | None = pa.Field(nullable=True,
                                                              metadata={"kind": "year"})
    parent_id: Series[str] | None = pa.Field(nullable=True)
    parent_employees: Series[float] | None = pa.Field(nullable=True, metadata={"kind": "int"})
    parent_revenue: Series[float] | None = pa.Field(nullable=True)
    state_share: Series[float] | None = pa.Field(nullable=True, default=0.0)
    listed_board: Series[str] | None = pa.Field(default="none", metadata={"kind": "enum"})

    @column_check("province", error="must be a 2-digit GB/T 2260 province code, e.g. 33")
    def _known_province(cls, s: pd.Series) -> pd.Series:
        return s.isin(list(PROVINCES))

    @column_check(
        "industry_code",
        error="must be a GB/T 4754-2017 code: section letter A-T and 2 to 4 digits, e.g. C3491",
    )
    def _industry_code(cls, s: pd.Series) -> pd.Series:
        return s.str.fullmatch(INDUSTRY_CODE_PATTERN)

    @column_check("founded_year", "niche_entry_year", error=YEAR_RULE)
    def _year(cls, s: pd.Series) -> pd.Series:
        return _plausible_year(s)

    @column_check("parent_employees", "parent_revenue", error="must be >= 0")
    def _non_negative(cls, s: pd.Series) -> pd.Series:
        return s >= 0

    @column_check("parent_revenue", error=MONEY_LIMIT_RULE)
    def _money_limit(cls, s: pd.Series) -> pd.Series:
        return s.abs() < MONEY_LIMIT

    @column_check("parent_employees", error=HEADCOUNT_LIMIT_RULE)
    def _headcount_limit(cls, s: pd.Series) -> pd.Series:
        return s < HEADCOUNT_LIMIT

    @column_check("state_share", error="must be between 0 and 1")
    def _share(cls, s: pd.Series) -> pd.Series:
        return s.between(0.0, 1.0)

    @column_check("listed_board", error=_one_of(LISTED_BOARDS))
    def _listed_board(cls, s: pd.Series) -> pd.Series:
        return s.isin(LISTED_BOARDS)

    _niche_after_founding = cross_column_check("niche_entry_year >= founded_year")


class FinancialsSchema(pa.DataFrameModel):
    """financials: one row per firm and fiscal year; money in CNY yuan."""

    firm_id: Series[str]
    year: Series[pd.Int64Dtype] = pa.Field(metadata={"kind": "year"})
    revenue: Series[float]
    main_revenue: Series[float] | None = pa.Field(nullable=True)
    net_profit: Series[float]
    total_assets: Series[float]
    total_liabilities: Series[float]
    rd_expense: Series[float]
    employees: Series[pd.Int64Dtype]
    rd_staff: Series[float] | None = pa.Field(nullable=True, metadata={"kind": "int"})
    export_revenue: Series[float] | None = pa.Field(nullable=True)
    equity_raised: Series[float] | None = pa.Field(nullable=True)
    subsidies: Series[float] | None = pa.Field(nullable=True)
    domestic_rank: Series[float] | None = pa.Field(nullable=True, metadata={"kind": "int"})
    domestic_share: Series[float] | None = pa.Field(nullable=True)
    global_rank: Series[float] | None = pa.Field(nullable=True, metadata={"kind": "int"})
    rd_institution: Series[str] | None = pa.Field(default="none", metadata={"kind": "enum"})
    high_tech: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    quality_cert: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    own_brand: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)

    class Config:
        unique = ["firm_id", "year"]  # noqa: RUF012 - pandera reads a plain list

    @column_check("year", error=YEAR_RULE)
    def _year(cls, s: pd.Series) -> pd.Series:
        return _plausible_year(s)

    @column_check(
        "revenue", "main_revenue", "total_assets", "total_liabilities", "rd_expense",
        "employees", "rd_staff", "export_revenue", error="must be >= 0",
    )
    def _non_negative(cls, s: pd.Series) -> pd.Series:
        return s >= 0

    @column_check(*MONEY_COLUMNS["financials"], error=MONEY_LIMIT_RULE)
    def _money_limit(cls, s: pd.Series) -> pd.Series:
        return s.abs() < MONEY_LIMIT

    @column_check("employees", "rd_staff", error=HEADCOUNT_LIMIT_RULE)
    def _headcount_limit(cls, s: pd.Series) -> pd.Series:
        return s < HEADCOUNT_LIMIT

    @column_check("domestic_rank", "global_rank", error="must be >= 1")
    def _rank(cls, s: pd.Series) -> pd.Series:
        return s >= 1

    @column_check("domestic_share", error="must be between 0 and 1")
    def _share(cls, s: pd.Series) -> pd.Series:
        return s.between(0.0, 1.0)

    @column_check("rd_institution", error=_one_of(RD_INSTITUTIONS))
    def _rd_institution(cls, s: pd.Series) -> pd.Series:
        return s.isin(RD_INSTITUTIONS)

    _main_within_revenue = cross_column_check("main_revenue <= revenue")
    _export_within_revenue = cross_column_check("export_revenue <= revenue")
    _rd_staff_within_employees = cross_column_check("rd_staff <= employees")


class PatentsSchema(pa.DataFrameModel):
    """patents: one row per IP right; dates are day-precision datetime64[us]."""

    patent_id: Series[str] = pa.Field(unique=True)
    firm_id: Series[str]
    kind: Series[str] = pa.Field(metadata={"kind": "enum"})
    filed: DateColumn = pa.Field(dtype_kwargs=_US)
    granted: DateColumn | None = pa.Field(nullable=True, dtype_kwargs=_US)
    lapsed: DateColumn | None = pa.Field(nullable=True, dtype_kwargs=_US)
    ipc: Series[str] | None = pa.Field(nullable=True)

    @column_check("kind", error=_one_of(KINDS))
    def _kind(cls, s: pd.Series) -> pd.Series:
        return s.isin(KINDS)

    @column_check("filed", "granted", "lapsed", error=DATE_RULE)
    def _plausible_date(cls, s: pd.Series) -> pd.Series:
        return _plausible_year(s.dt.year)

    _granted_after_filing = cross_column_check("granted >= filed")
    _lapsed_after_grant = cross_column_check("lapsed >= granted")


class CertificationsSchema(pa.DataFrameModel):
    """certifications: one row per published decision (the labels)."""

    firm_id: Series[str]
    tier: Series[str] = pa.Field(metadata={"kind": "enum"})
    year: Series[pd.Int64Dtype] = pa.Field(metadata={"kind": "year"})
    batch: Series[float] | None = pa.Field(nullable=True, metadata={"kind": "int"})
    event: Series[str] | None = pa.Field(default="granted", metadata={"kind": "enum"})

    @column_check("tier", error=_one_of(TIERS))
    def _tier(cls, s: pd.Series) -> pd.Series:
        return s.isin(TIERS)

    @column_check("event", error=_one_of(EVENTS))
    def _event(cls, s: pd.Series) -> pd.Series:
        return s.isin(EVENTS)

    @column_check("year", error=YEAR_RULE)
    def _year(cls, s: pd.Series) -> pd.Series:
        return _plausible_year(s)

    @column_check("batch", error="must be >= 1")
    def _batch(cls, s: pd.Series) -> pd.Series:
        return s >= 1


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "firms": FirmsSchema,
    "financials": FinancialsSchema,
    "patents": PatentsSchema,
    "certifications": CertificationsSchema,
}
