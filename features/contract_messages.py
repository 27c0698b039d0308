"""The user's messages of a failing contract table: pandera's failure cases and the cells
that did not parse -> one sentence per (table, column, rule).

`failure_cases` completes pandera's failure cases (checks quote only their first
`SHOWN_FAILURES` values: the other failing rows are read from the check's boolean output),
`without_echoes` drops failures that only repeat another, and `describe` writes the
sentences (table, column, rows and the values that broke the rule), tables and columns in
contract order. `features.contract` raises them in its `ContractError`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.parsers import ALL_PARSE_RULES
from features.schemas import SCHEMAS, SHOWN_FAILURES

_CROSS_COLUMN = re.compile(r"^(\w+) (<=|>=) (\w+)$")
_VIOLATION = {"<=": ">", ">=": "<"}
_BUILTIN_RULES = {
    "not_nullable": "must not be empty",
    "field_uniqueness": "must be unique",
    "multiple_fields_uniqueness": "must be unique together",
    "column_in_dataframe": "required column is missing",
}
_KEY_FIRST = {t: (SCHEMAS[t].to_schema().unique or [None])[0] for t in SCHEMAS}


def failure_cases(table: str, err: pa.errors.SchemaErrors) -> pd.DataFrame:
    """pandera's failure cases plus, for checks that quote only their first failures
    (`n_failure_cases`), every other failing row, taken from the check's boolean output."""
    cases = err.failure_cases.assign(table=table)
    # A missing column is reported by pandera on the schema: name the column instead.
    missing = (cases["check"].astype(str) == "column_in_dataframe").to_numpy()
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"]
    frames = [cases]
    for error in err.schema_errors:
        check, output = error.check, error.check_output
        if (not isinstance(check, pa.Check) or check.n_failure_cases is None
                or not isinstance(output, pd.Series)):
            continue
        rule = check.error or check.name
        cross = _CROSS_COLUMN.match(rule)
        frames.append(pd.DataFrame({
            "table": table, "column": cross[1] if cross else error.column_name, "check": rule,
            "failure_case": None,
            "index": output.index[~output.fillna(True).to_numpy(dtype=bool)],
        }))
    return pd.concat(frames, ignore_index=True)


def without_echoes(cases: pd.DataFrame) -> pd.DataFrame:
    """Drop failures that only repeat another: "must not be empty" for a cell that did
    not parse, uniqueness of empty keys (reported as empty) or of a key whose column is
    missing (reported as missing). Works on whole columns: there may be millions."""
    cases = cases[["table", "column", "check", "failure_case", "index"]].copy()
    cases["check"] = cases["check"].astype(str)
    cases["index"] = pd.to_numeric(cases["index"], errors="coerce").astype("Int64")
    check = cases["check"]
    echo = np.zeros(len(cases), dtype=bool)
    empty = (check == "not_nullable").to_numpy()
    unparsable = cases.loc[check.isin(ALL_PARSE_RULES), ["table", "column", "index"]]
    if empty.any() and len(unparsable):
        keys = pd.MultiIndex.from_frame(cases.loc[empty, ["table", "column", "index"]])
        echo[empty] = keys.isin(pd.MultiIndex.from_frame(unparsable))
    unique_rule = check.isin(["field_uniqueness", "multiple_fields_uniqueness"])
    echo |= (unique_rule & cases["failure_case"].isna()).to_numpy()
    # A key that did not parse (year "FY2021") or is empty is reported as such, not as a
    # duplicate of the other rows whose key did not parse either.
    broken = cases.loc[check.isin(ALL_PARSE_RULES) | (check == "not_nullable"), ["table", "index"]]
    if unique_rule.any() and len(broken):
        rows = pd.MultiIndex.from_frame(cases.loc[unique_rule, ["table", "index"]])
        echo[unique_rule.to_numpy()] |= rows.isin(pd.MultiIndex.from_frame(broken))
    # pandera checks a key with a missing column on the remaining columns only
    missing = cases[check == "column_in_dataframe"]
    partial_key = {t for t, name in zip(missing["table"], missing["failure_case"])
                   if name in (SCHEMAS[t].to_schema().unique or [])}
    echo |= ((check == "multiple_fields_uniqueness") & cases["table"].isin(partial_key)).to_numpy()
    for rule in check.unique():  # a cross-column check lists every column of a failing row
        if cross := _CROSS_COLUMN.match(rule):
            echo |= ((check == rule) & ~cases["column"].isin([cross[1], cross[3]])).to_numpy()
    return cases[~echo].reset_index(drop=True)


def describe(cases: pd.DataFrame, labels: dict[str, str], row_base: int) -> list[str]:
    """One sentence per (table, column, rule), tables and columns in contract order."""
    check = cases["check"]
    subject = cases["column"].copy()
    for rule in check.unique():  # a handful of rules; each step is one vectorised pass
        at = (check == rule).to_numpy()
        if cross := _CROSS_COLUMN.match(rule):
            subject[at] = cross[1]  # reported on its left-hand column
        elif rule == "column_in_dataframe":
            subject[at] = cases.loc[at, "failure_case"]
        elif rule == "multiple_fields_uniqueness":
            subject[at] = cases.loc[at, "table"].map(_KEY_FIRST)
    positions = pd.DataFrame(
        [(t, c, j) for t in SCHEMAS for j, c in enumerate(SCHEMAS[t].to_schema().columns)],
        columns=["table", "subject", "column_pos"])
    cases = cases.assign(subject=subject).merge(positions, how="left")
    cases["table_pos"] = cases["table"].map({t: i for i, t in enumerate(SCHEMAS)})
    cases["column_pos"] = cases["column_pos"].fillna(999)
    word = "record" if row_base == 0 else "row"
    problems = []
    for (_, _, table, name, rule), group in cases.groupby(
            ["table_pos", "column_pos", "table", "subject", "check"]):
        where = f"{labels[table]}, column {name}"
        if rule == "column_in_dataframe":
            problems.append(f"{where}: required column is missing")
            continue
        rows = np.sort(group["row"].dropna().unique().astype("int64"))
        shown = group[group["row"].isin(rows[:SHOWN_FAILURES])].sort_values("row", kind="stable")
        cross_rule = _CROSS_COLUMN.match(rule)
        if cross_rule:
            left, op, right = cross_rule.groups()
            wide = shown.pivot_table(index="row", columns="column", values="failure_case",
                                     aggfunc="first")
            got = [f"{_show(a)} {_VIOLATION[op]} {_show(b)}"
                   for a, b in zip(wide[left], wide[right])]
            rule = f"must be {op} {right}"
        elif rule == "multiple_fields_uniqueness":
            wide = shown.pivot_table(index="row", columns="column", values="failure_case",
                                     aggfunc="first", sort=False)
            got = ["/".join(_show(v) for v in r) for r in wide.itertuples(index=False)]
            where = f"{labels[table]}, columns {' and '.join(wide.columns)}"
        else:
            got = [] if rule == "not_nullable" else [
                _show(v) for v in shown.drop_duplicates("row")["failure_case"]]
        got_text = f" (got {', '.join(dict.fromkeys(got))})" if got else ""
        problems.append(f"{where}, {_rows(rows, word)}: {_BUILTIN_RULES.get(rule, rule)}"
                        f"{got_text}")
    return problems


def _rows(rows: np.ndarray, word: str) -> str:
    """Sorted distinct row numbers -> "rows 1, 2, 3, 4, 5 and 7 more"."""
    shown = ", ".join(str(int(r)) for r in rows[:SHOWN_FAILURES])
    more = f" and {len(rows) - SHOWN_FAILURES} more" if len(rows) > SHOWN_FAILURES else ""
    return f"{word}{'s' if len(rows) > 1 else ''} {shown}{more}"


def _show(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and np.isnan(value)):
        return "empty"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return repr(value) if isinstance(value, (str, float)) else str(value)
