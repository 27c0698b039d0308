"""What the contract's rules cannot see, checked once every table is typed and valid:
money in the wrong unit, financials from before a firm existed, and a table whose rows
all point nowhere (with a guess at why).

Units: the contract keeps money in CNY yuan. Exports often use 千元 (thousand yuan) or
万元 (ten thousand yuan); read as yuan they make every firm 1,000 or 10,000 times smaller,
which moves probabilities and flips eligibility without any rule failing. Revenue per
employee gives it away: no real firm turns over less than about 20,000 CNY a year per
employee (a wage is more than that), while yuan data of Chinese SMEs has a median near
500,000 CNY.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.schemas import MONEY_COLUMNS

MONEY_UNITS = {"yuan": 1.0, "thousand": 1e3, "wan": 1e4}
UNIT_NAMES = {"yuan": "yuan (元)", "thousand": "thousand yuan (千元)",
              "wan": "ten-thousand yuan (万元)"}
TYPICAL_REVENUE_PER_EMPLOYEE = 5e5  # CNY a year, median of Chinese manufacturing SMEs
IMPLAUSIBLE_REVENUE_PER_EMPLOYEE = 2e4  # CNY a year: below a wage
MIN_ROWS_TO_JUDGE = 10  # firm-years with revenue and at least 5 employees
BEFORE_FOUNDING_RULE = "year must be >= founded_year of the firm"
BEFORE_FOUNDING_REASON = "financials before the firm was founded"


def unit_factors(money_unit: str | dict[str, str] | None) -> dict[str, float]:
    """{table: factor to yuan} for `money_unit`: one unit for every table, or one per
    table ({"financials": "wan"}); raises ValueError naming the accepted units."""
    if money_unit is None:
        return {}
    per_table = money_unit if isinstance(money_unit, dict) else dict.fromkeys(MONEY_COLUMNS,
                                                                              money_unit)
    factors = {}
    for table, unit in per_table.items():
        if unit not in MONEY_UNITS:
            raise ValueError(f"money unit {unit!r} of {table} is not one of "
                             f"{', '.join(MONEY_UNITS)}")
        factors[table] = MONEY_UNITS[unit]
    return factors


def to_yuan(frame: pd.DataFrame, table: str, factor: float) -> None:
    """Multiply the money columns of `frame` (typed, in place) by `factor`."""
    for name in MONEY_COLUMNS.get(table, ()):
        if name in frame and factor != 1.0:
            frame[name] = frame[name] * factor


def money_scale_problem(financials: pd.DataFrame, label: str = "financials") -> str | None:
    """A sentence when the money of `financials` looks like 千元 or 万元, else None."""
    if not {"revenue", "employees"} <= set(financials.columns):
        return None
    # On arrays (missing: NaN, never judged): a one-firm request pays this on every call.
    employees = pd.to_numeric(financials["employees"], errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan)
    revenue = financials["revenue"].to_numpy(dtype="float64", na_value=np.nan)
    judged = (employees >= 5) & (revenue > 0)
    if judged.sum() < MIN_ROWS_TO_JUDGE:
        return None
    per_head = float(np.median(revenue[judged] / employees[judged]))
    if per_head >= IMPLAUSIBLE_REVENUE_PER_EMPLOYEE:
        return None
    likely = min(("thousand", "wan"), key=lambda unit: abs(
        math.log10(max(per_head, 1e-9) * MONEY_UNITS[unit])
        - math.log10(TYPICAL_REVENUE_PER_EMPLOYEE)))
    columns = [c for c in MONEY_COLUMNS["financials"] if c in financials]
    return (f"{label}, columns {', '.join(columns)}: money looks like it is in "
            f"{UNIT_NAMES[likely]}, not yuan: the median revenue per employee is "
            f"{per_head:,.0f} (real firms: 20,000 CNY a year and far more). Declare the "
            f"unit with --money-unit {likely} (yuan, thousand or wan; per table in an "
            f"import profile; \"money_unit\": \"{likely}\" in an API request) and it is "
            f"converted to yuan")


def before_founding(financials: pd.DataFrame, firms: pd.DataFrame) -> np.ndarray:
    """Index labels of financials rows dated before their firm's founded_year."""
    from features.panel import positions_in

    # Each firm's row by Arrow hashing: Series.map on `str` ids goes through Python strings
    # (about 20 s for the 9M financial rows of a million firms).
    at = positions_in(financials["firm_id"], firms["firm_id"])
    founded = np.append(firms["founded_year"].to_numpy(dtype="float64", na_value=np.nan), np.nan)
    year = financials["year"].to_numpy(dtype="float64", na_value=np.nan)
    return financials.index[year < founded[at]].to_numpy()  # unknown firm or year: NaN, kept


def unknown_ids_diagnosis(label: str, n_rows: int, ids: pd.Series, firm_ids: pd.Series) -> str:
    """Why every row of a table refers to an unknown firm, as far as it can be told."""
    sample = list(dict.fromkeys(ids.head(1000)))[:3]
    known = list(firm_ids.head(3))
    shown = ", ".join(repr(v) for v in sample)
    known_shown = ", ".join(repr(v) for v in known) or "no firms at all"
    why = f"firm_id in {label} has {shown}, ... while firms has {known_shown}"
    stripped = {str(v).lstrip("0") for v in firm_ids if str(v).isdigit()}
    if sample and all(str(v).isdigit() for v in sample) and stripped & {
            str(v).lstrip("0") for v in ids.head(1000)}:
        why = (f"firm_id in {label} looks numeric ({shown}, ...) while firms has "
               f"{known_shown}, ...: the leading zeros were lost (keep firm_id as text "
               f"when exporting)")
    return f"{label}: all {n_rows:,} rows refer to unknown firms; {why}"
