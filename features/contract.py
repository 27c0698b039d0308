"""Load a dataset in the format of DATA_CONTRACT.md, normalise it and validate it.

`load_dataset(folder)` and `from_frames(tables)` return a `Dataset` of normalised tables
(dtypes as listed in the schemas of `features.schemas`) or raise `ContractError` naming
every fatal problem: table, column, row(s) and the rule broken, one sentence each.
Rows of a firm_id unknown to `firms` are removed and kept in `Dataset.rejects`.

Validation runs in three vectorised passes over whole columns:
1. parse: raw text (or Parquet/JSON values) -> typed columns; unparsable cells are type
   problems (pandera would only see them as missing);
2. pandera (`lazy=True`): required columns, missing values, keys, ranges, enums, order
   of dates and amounts; its failure cases (plus, for rules that quote only their first
   values, the rows of the check's boolean output) become the messages
   (`features.contract_messages`);
3. rows of unknown firms and financials before founding become rejects
   (`features.rejects`; `record` holds the rejected row as normalised, as JSON).
Then the plausibility checks of `features.plausibility`: money in the wrong unit and a table
whose rows were all rejected are fatal; financials dated before founding are rejects.
Files are read by `features.files` (encodings, delimiters, Excel, Parquet beside CSV).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features import plausibility
from features.contract_messages import describe, failure_cases, without_echoes
from features.fast_validation import FEW_CELLS, parse_cells, passes_schema, remember_cells
from features.files import TableFileError, find_table, read_table
from features.parsers import PARSE_RULES, PARSERS, column_kind, text
from features.rejects import REJECT_COLUMNS, empty_rejects, reject_rows, write_rejects
from features.schemas import EVENTS, SCHEMAS

__all__ = ["REJECT_COLUMNS", "TABLES", "ContractError", "Dataset", "empty_rejects",
           "from_frames", "load_dataset", "summarize", "write_rejects"]

TABLES = tuple(SCHEMAS)  # in contract order, as the schemas are declared
SMALL_TABLE = 10_000  # rows: below this a table is normalised in one frame construction
REQUIRED_ROWS = ("firms", "financials")  # a dataset with none of these rows is no dataset


class ContractError(ValueError):
    """Fatal data-contract violations; `problems` holds one sentence per problem and
    `failure_cases` the failing cells (table, column, check, failure_case, index, row)."""

    def __init__(self, source: str, problems: list[str], failure_cases: pd.DataFrame | None = None):
        self.source = source
        self.problems = problems
        self.failure_cases = failure_cases
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"{source} does not follow the data contract ({count}):\n"
            + "\n".join(f"- {p}" for p in problems)
        )


@dataclass
class Dataset:
    """The four normalised contract tables (RangeIndex) and the rows rejected from them."""

    firms: pd.DataFrame
    financials: pd.DataFrame
    patents: pd.DataFrame
    certifications: pd.DataFrame
    rejects: pd.DataFrame = field(default_factory=empty_rejects)
    source: str = ""
    notes: list[str] = field(default_factory=list)  # how each file was read
    warnings: list[str] = field(default_factory=list)  # e.g. a stale file beside a table


def load_dataset(path: str | Path, money_unit: str | dict[str, str] | None = None,
                 timer=None) -> Dataset:
    """Read `NAME.parquet`, `NAME.csv` or `NAME.xlsx` (in that order) for the four tables
    of folder `path`; rows in messages and rejects are 1-based data rows (CSV line number -
    1). `money_unit` ("yuan", "thousand", "wan", or one per table) converts money to yuan.
    `timer`: a stage timer (`timer("load")` is a context manager) timing the reading
    ("load") and the validation ("validate")."""
    timer = timer or (lambda stage: nullcontext())
    folder = Path(path)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "not found"
        raise ContractError(str(folder), [f"{folder}: data folder {what}"])
    raw, labels, problems, notes, warnings = {}, {}, [], [], []
    with timer("load"):
        _read_tables(folder, raw, labels, problems, notes, warnings)
    with timer("validate"):
        dataset = _build(raw, labels, row_base=1, source=str(folder), problems=problems,
                         money_unit=money_unit, required=REQUIRED_ROWS)
    dataset.notes, dataset.warnings = notes, warnings
    return dataset


def _read_tables(folder: Path, raw: dict, labels: dict, problems: list, notes: list,
                 warnings: list) -> None:
    """Read each table's file into `raw` (its label into `labels`, how it was read into
    `notes`), adding unreadable files to `problems` and stale files to `warnings`."""
    for table in TABLES:
        file, stale = find_table(folder, table)
        warnings += stale
        if file is None:
            problems.append(f"{table}: table is missing (no {table}.parquet, {table}.csv "
                            f"or {table}.xlsx in {folder})")
            continue
        labels[table] = file.name
        try:
            read = read_table(file, enum_columns(table))
        except TableFileError as exc:
            problems.append(str(exc))
            continue
        if problem := _foreign_header(file.name, table, read):
            problems.append(problem)
            continue
        raw[table] = read.frame
        notes.append(read.describe())


def enum_columns(table: str) -> tuple[str, ...]:
    """The columns of `table` holding a few coded values (kind, tier, event, ...): read as
    categoricals, their millions of cells are parsed once per distinct value."""
    return tuple(name for name, column in SCHEMAS[table].to_schema().columns.items()
                 if column_kind(column) == "enum")


def _foreign_header(label: str, table: str, read) -> str | None:
    """One sentence instead of a "required column is missing" per column, when the header
    was split on the wrong character or holds none of the contract's columns."""
    columns = SCHEMAS[table].to_schema().columns
    header = [str(c).strip().lower() for c in read.frame.columns]
    if read.delimiter and len(header) == 1 and len(columns) > 1:
        return (f"{label}: one column was read ({header[0][:60]!r}); the delimiter is none "
                f"of comma, semicolon, tab and vertical bar: save it comma-separated")
    if header and not set(header) & set(columns):
        shown = ", ".join(repr(h) for h in header[:4])
        return (f"{label}: none of the contract's columns ({', '.join(list(columns)[:4])}, ...) "
                f"is in its header ({shown}, ...); exports with their own headers go through "
                f"`giantwatch import` (docs/INPUT.md)")
    return None


def from_frames(tables: dict[str, pd.DataFrame | list[dict]], source: str = "request",
                row_base: int = 0, money_unit: str | dict[str, str] | None = None,
                required: tuple[str, ...] = ("firms",)) -> Dataset:
    """Validate in-memory raw tables (frames or lists of JSON records) by the same rules.

    Rows are counted from `row_base` and called "record" when it is 0 ("row" otherwise).
    A table given with no rows may omit columns; the tables of `required` need rows.
    """
    problems = [f"{t}: table is missing" for t in TABLES if t not in tables]
    raw = {t: tables[t].reset_index(drop=True) if isinstance(tables[t], pd.DataFrame)
           else pd.DataFrame(tables[t]) for t in TABLES if t in tables}
    return _build(raw, {t: t for t in TABLES}, row_base, source, problems, money_unit,
                  required)


def _build(raw: dict[str, pd.DataFrame], labels: dict[str, str], row_base: int,
           source: str, problems: list[str], money_unit=None,
           required: tuple[str, ...] = ()) -> Dataset:
    """Normalise and validate every table (all problems, lazily), then reject rows of
    unknown firms. `raw` is consumed so that each raw column is freed once typed."""
    try:
        factors = plausibility.unit_factors(money_unit)
    except ValueError as exc:
        raise ContractError(source, [str(exc)]) from None
    nothing = "has a header but no rows" if row_base else "has no records"
    problems = problems + [f"{labels[t]}: {nothing}; {t} is required"
                           for t in required if t in raw and len(raw[t]) == 0]
    frames, cases = {}, []
    remember_tables({t: frame for t, frame in raw.items() if len(frame) <= FEW_CELLS})
    for table in [t for t in TABLES if t in raw]:
        frame, parse_failures = _normalise(table, raw.pop(table))
        plausibility.to_yuan(frame, table, factors.get(table, 1.0))
        if parse_failures is not None:
            cases.append(parse_failures)
        if parse_failures is None and passes_schema(SCHEMAS[table].to_schema(), frame):
            frames[table] = frame  # pandera would pass it: skip its per-check overhead
            continue
        try:
            frames[table] = SCHEMAS[table].validate(frame, lazy=True, inplace=True)
        except pa.errors.SchemaErrors as err:
            cases.append(failure_cases(table, err))
    failures = without_echoes(pd.concat(cases, ignore_index=True)) if cases else None
    if failures is not None and len(failures):
        failures["row"] = failures["index"] + row_base
        problems = problems + describe(failures, labels, row_base)
    if problems:
        raise ContractError(source, problems, failures)
    for table, frame in frames.items():
        for name, column in SCHEMAS[table].to_schema().columns.items():
            if str(column.dtype) == "Int64":  # validated non-empty, so plain int64 fits
                frame[name] = frame[name].astype("int64")
    if scale := plausibility.money_scale_problem(frames["financials"], labels["financials"]):
        raise ContractError(source, [scale])
    given = {t: len(f) for t, f in frames.items()}
    ids = {t: f["firm_id"] for t, f in frames.items()}
    rejects = reject_rows(frames, row_base)
    emptied = [plausibility.unknown_ids_diagnosis(labels[t], n, ids[t], frames["firms"]["firm_id"])
               for t, n in given.items() if n and not len(frames[t])]
    if emptied:
        raise ContractError(source, emptied)
    return Dataset(**frames, rejects=rejects, source=source)


def _normalise(table: str, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed contract columns (schema order, optional ones added) then extra columns;
    plus the cells that do not parse, in the layout of pandera's failure cases."""
    columns = SCHEMAS[table].to_schema().columns
    kinds = _column_kinds(table)
    renamed = {c: c.strip().lower() for c in raw.columns
               if isinstance(c, str) and c.strip().lower() in columns
               and c.strip().lower() not in raw}
    if renamed:  # a rename costs a frame copy even when it renames nothing
        raw = raw.rename(columns=renamed)
    n_rows = len(raw)
    # A big table is converted column by column, each raw column freed once typed; a small
    # one (an API request) is not worth the cost of deleting and inserting single columns.
    small = n_rows <= SMALL_TABLE
    typed, extra, failures = {}, {}, []
    few = n_rows <= FEW_CELLS  # its new values were parsed by `remember_tables`
    for name in list(raw.columns):
        values = raw[name] if small else raw.pop(name)
        if name not in columns:
            extra[name] = text(values) if values.dtype == "str" else values
            continue
        kind = kinds[name]
        if few and (cells := parse_cells(kind, values)) is not None:
            typed[name] = cells  # every cell parsed (by the same parser, remembered per value)
            continue
        typed[name], bad = PARSERS[kind](values)
        for rule, mask in (bad.items() if isinstance(bad, dict) else [(PARSE_RULES.get(kind), bad)]):
            if mask.any():
                failures.append(pd.DataFrame({
                    "table": table, "column": name, "check": rule,
                    "failure_case": values[mask].astype(object).to_numpy(),
                    "index": np.flatnonzero(mask),
                }))
    for name, column in columns.items():
        if name not in typed and (not column.required or n_rows == 0):
            typed[name] = _empty_column(column_kind(column), n_rows)
    if table == "firms" and "founded_year" in typed:
        typed["niche_entry_year"] = pd.Series(typed["niche_entry_year"]).fillna(
            pd.Series(typed["founded_year"]))
    ordered = {name: typed[name] for name in columns if name in typed}
    if small:
        frame = pd.DataFrame({**ordered, **extra}, index=pd.RangeIndex(n_rows))
    else:
        frame = pd.DataFrame(index=pd.RangeIndex(n_rows))
        for name, values in {**ordered, **extra}.items():
            frame[name] = values  # column by column: no consolidated copy of all floats
    parse_failures = pd.concat(failures, ignore_index=True) if failures else None
    return frame, parse_failures


@cache
def _column_kinds(table: str) -> dict[str, str]:
    """Contract column name -> parser name (`column_kind`) of `table`'s schema."""
    return {name: column_kind(column)
            for name, column in SCHEMAS[table].to_schema().columns.items()}


def remember_tables(raw: dict[str, pd.DataFrame]) -> None:
    """Parse the values of the raw tables `raw` (table -> frame, each of at most FEW_CELLS
    rows) that this process has not parsed yet: one parser call per kind and column dtype
    for all the tables together (`fast_validation.remember_cells`), so that a request's
    four tables pay for their new firm ids, amounts and dates once."""
    kinds: dict[str, list] = {}
    for table, frame in raw.items():
        known = _column_kinds(table)
        for name, values in frame.items():
            if isinstance(name, str) and (kind := known.get(name.strip().lower())):
                kinds.setdefault(kind, []).append(values)
    for kind, same_kind in kinds.items():
        remember_cells(kind, same_kind)


def _empty_column(kind: str, n_rows: int) -> pd.Series:
    """An all-missing column of the parser `kind`'s dtype; of a few rows (a request's
    optional columns), one shared object per kind and length: pandas copies on write."""
    return _few_empty_column(kind, n_rows) if n_rows <= FEW_CELLS else \
        _new_empty_column(kind, n_rows)


@lru_cache(maxsize=1024)
def _few_empty_column(kind: str, n_rows: int) -> pd.Series:
    return _new_empty_column(kind, n_rows)


def _new_empty_column(kind: str, n_rows: int) -> pd.Series:
    dtype = {"float": "float64", "int": "float64", "Int64": "Int64", "year": "Int64",
             "bool": "boolean",
             "date": "datetime64[us]"}.get(kind, "str")
    return pd.Series(index=pd.RangeIndex(n_rows), dtype=dtype)


def summarize(dataset: Dataset) -> dict:
    """Overview for `giantwatch validate`: {"rows": {table: n}, "firms": n,
    "years": (first, last) financial year or None, "certifications": frame of
    year, tier and counts per event, "rejects": {reason: n}}."""
    fin, certs = dataset.financials, dataset.certifications
    per_event = (pd.crosstab([certs["year"], certs["tier"]], certs["event"])
                 .reindex(columns=list(EVENTS), fill_value=0))
    per_event.columns.name = None
    return {
        "rows": {t: len(getattr(dataset, t)) for t in TABLES},
        "firms": int(dataset.firms["firm_id"].nunique()),
        "years": (int(fin["year"].min()), int(fin["year"].max())) if len(fin) else None,
        "certifications": per_event.reset_index(),
        "rejects": {str(k): int(v) for k, v in
                    dataset.rejects["reason"].value_counts(sort=False).items()},
    }
