"""Whether a normalised table passes its pandera schema, without pandera's bookkeeping.

pandera costs about a millisecond per column and check whatever the size of the table
(error handlers, failure-case frames, a `dropna` copy per check), which was most of what a
one-firm API request spent validating: 4 tables, 50 columns, 60 checks. `passes_schema`
runs the *same* schema objects of `features.schemas` directly (their required columns,
defaults, nullability, uniqueness, dtypes and check functions, in pandera's order) and
only answers yes or no. A table that passes comes out exactly as pandera would return it
(the defaults filled by pandera's own function); on any doubt the answer is no and the
caller runs pandera, whose failure cases name every problem. So every rule stays declared
once, in the schemas, and pandera stays the judge of every failing table.

A table of a few rows (an API request: FEW_CELLS) is parsed and checked value by value:
`parse_cells` and `_column_checks_pass` run the same parsers and check functions, on the
values this process has not seen yet only, and remember each value's result. A request
then pays pandas' fixed cost per call a few times per table, not once per column and rule.
tests/features/test_few_rows_validation.py holds both paths to the same tables and messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandera.backends.pandas.array import ArraySchemaBackend
from pandera.engines.pandas_engine import Engine

from features.parsers import PARSERS
from features.schemas import FEW_CELLS, is_missing_cell

_DEFAULTS = ArraySchemaBackend()


def _all_true(output) -> bool:
    """A check's output (bool, or a boolean Series / array) holds only True (NA: no)."""
    if isinstance(output, (bool, np.bool_)):
        return bool(output)
    if isinstance(output, pd.Series):
        output = output.to_numpy(dtype=bool, na_value=False) \
            if output.dtype != np.bool_ else output.to_numpy()
    return bool(np.all(np.asarray(output, dtype=bool)))


HASHED_ROWS = 100_000  # from this many strings on, uniqueness is first tried on hashes


def _has_duplicates(values: pd.Series) -> bool:
    """`values.duplicated().any()` (missing values equal each other).

    Millions of strings (17M patent ids at a million firms) are first hashed to 64 bits
    and the hashes sorted: all distinct proves the strings distinct, in a fraction of the
    time and memory of a hash table of the strings; equal hashes (a duplicate, or a
    collision: about 1e-5 at 17M ids) fall back to Arrow's exact hashing.
    """
    if values.dtype != "str":
        return bool(values.duplicated().any())
    arrow = pyarrow.chunked_array(pyarrow.array(values.array))
    if len(arrow) >= HASHED_ROWS and arrow.null_count == 0:
        hashes = _string_hashes(arrow)
        hashes.sort()
        if not (hashes[1:] == hashes[:-1]).any():
            return False
    return len(pc.unique(arrow)) < len(arrow)


def _string_hashes(arrow: pyarrow.ChunkedArray) -> np.ndarray:
    """uint64 FNV-1a hash of each string of `arrow` (no nulls), from its Arrow buffers."""
    from features.string_hash import fnv1a

    out = []
    for chunk in arrow.cast(pyarrow.large_string()).chunks:
        _, offsets, data = chunk.buffers()
        offsets = np.frombuffer(offsets, dtype=np.int64)[chunk.offset:chunk.offset + len(chunk) + 1]
        data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
        out.append(fnv1a(offsets, data))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)


# A few rows (an API request) are parsed value by value from a memo of each value's parse
# by the same parser (`PARSERS`): pandas costs tens of microseconds per call whatever the
# size of a column, and a request's values mostly come back (years, provinces, enum names,
# booleans, dates). A value is keyed with its type (1, 1.0 and True parse differently).
_MEMO_SIZE = 100_000  # values remembered per parser or check; emptied when full
_CELL_MEMOS: dict[str, dict] = {kind: {} for kind in PARSERS}
_EMPTY_DTYPES: dict[tuple[str, str], object] = {}  # (kind, raw dtype) -> all-missing parse


def cell_key(value) -> tuple | None:
    """A cell's key in a memo of per-value results: None if missing, else its type and
    value (1, 1.0 and True are equal keys of a dict but parse differently; so are 0.0 and
    -0.0)."""
    if is_missing_cell(value):
        return None
    if isinstance(value, float) and value == 0.0:
        return float, value, str(value)
    return type(value), value


# Kinds whose parse of a float column depends on the whole column (text of 1001.0 is
# "1001" only if every value of the column is whole): such columns are not parsed per value.
_NUMERIC_KINDS = ("float", "int", "Int64", "year")


def remember_cells(kind: str, columns: list[pd.Series]) -> None:
    """Parse the cells of `columns` that `PARSERS[kind]` has not parsed in this process,
    those of one column dtype together, as a column of that dtype (one parser call per
    dtype for all the short columns of a kind), and remember each one's parse and dtype."""
    memo = _CELL_MEMOS[kind]
    new: dict[tuple, tuple] = {}
    for column in columns:
        dtype = column.dtype
        if pd.api.types.is_float_dtype(dtype) and kind not in _NUMERIC_KINDS:
            continue
        dtype_name = str(dtype)  # once per column: a dtype's str() is not free
        for value in column.tolist():
            if (key := cell_key(value)) is not None and (key := (dtype_name, *key)) not in memo:
                new[key] = (dtype, value)
    if not new:
        return
    if len(memo) + len(new) > _MEMO_SIZE:
        memo.clear()
    # Grouped by the dtype itself: two categorical columns share a name ("category") but
    # not their categories.
    by_dtype: dict[object, list] = {}
    for key, dtype_value in new.items():
        by_dtype.setdefault(dtype_value[0], []).append((key, *dtype_value))
    for group in by_dtype.values():
        typed, bad = PARSERS[kind](pd.Series([v for *_, v in group], dtype=group[0][1]))
        masks = bad.values() if isinstance(bad, dict) else [bad]
        broken = np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
        for (key, *_), out, failed in zip(group, typed.array, broken):
            memo[key] = (out, bool(failed), typed.dtype)


def parse_cells(kind: str, column: pd.Series) -> pd.api.extensions.ExtensionArray | np.ndarray | None:
    """`PARSERS[kind](column)`'s typed column for a short column, value by value from the
    parses `remember_cells` keeps (each distinct (column dtype, type, value) parsed once per
    process by the parser itself); a missing cell stays missing. Returns None when a cell
    does not parse, the cells' parses differ in dtype, or the parse of a value depends on
    the rest of the column: the caller then runs the parser on the column (its bad-cell
    masks name the rule)."""
    if pd.api.types.is_float_dtype(column.dtype) and kind not in _NUMERIC_KINDS:
        return None
    memo = _CELL_MEMOS[kind]
    dtype_name = str(column.dtype)
    keys = [None if (k := cell_key(v)) is None else (dtype_name, *k) for v in column.tolist()]
    if any(k is not None and k not in memo for k in keys):  # usually remembered already
        remember_cells(kind, [column])
    parsed = [None if k is None else memo.get(k, False) for k in keys]
    if any(p is False or (p is not None and p[1]) for p in parsed):
        return None  # a bad cell (or a value evicted meanwhile): the parser decides
    dtypes = {p[2] for p in parsed if p is not None}
    if not dtypes:  # every cell missing: the parser's dtype for such a column
        empty = (kind, str(column.dtype))
        if empty not in _EMPTY_DTYPES:
            _EMPTY_DTYPES[empty] = PARSERS[kind](column)[0].dtype
        dtypes = {_EMPTY_DTYPES[empty]}
    if len(dtypes) > 1:
        return None
    [dtype] = dtypes
    outputs = [None if p is None else p[0] for p in parsed]
    try:
        if isinstance(dtype, np.dtype):
            return np.array(outputs, dtype=dtype)
        return pd.array(outputs, dtype=dtype)
    except (TypeError, ValueError):  # cells numpy cannot put in the parser's dtype
        return None


def _plain(check: pa.Check) -> bool:
    """A check this module runs as pandera would: vectorised and ungrouped."""
    return not check.element_wise and check.groupby is None and not check.raise_warning


# A short table (an API request) is checked value by value: each column check's verdict
# on each distinct (type, value) of a dtype is remembered per process, and the values no
# check has seen yet go to the check function in one call for all the columns it checks
# (pandas costs tens of microseconds per call whatever the length of a column). This takes
# every column check to be per value (a cell's verdict depends on that cell alone), as the
# contract's are (isin, ranges, patterns, limits; tests/features/test_fast_validation.py
# checks each on split columns); a check answering one bool for a column runs on it whole.
_CHECK_MEMOS: dict[tuple, tuple[pa.DataFrameSchema, dict]] = {}
_MISSING = ("missing",)


def _check_input(check: pa.Check, values: pd.Series) -> pd.Series:
    """What pandera gives a column check: the column, without missing values if the check
    ignores them."""
    return values.dropna() if check.ignore_na and values.hasnans else values


def _whole_columns_pass(pending: list[tuple[pa.Check, pd.Series]]) -> bool:
    """Whether every (column check, column) of `pending` passes, each run on its column
    whole, as pandera runs it."""
    return all(_all_true(partial(c._check_fn, **c._check_kwargs)(_check_input(c, v)))
               for c, v in pending)


def _column_checks_pass(schema: pa.DataFrameSchema, pending: list[tuple[pa.Check, pd.Series]]
                        ) -> bool:
    """Whether every (column check, column) of `pending` passes, as pandera runs them."""
    if any(len(values) > FEW_CELLS for _, values in pending):
        return _whole_columns_pass(pending)
    # A check of a DataFrameModel checks each of its columns with the same function: one
    # memo (and one call for the unseen values) per check name and dtype.
    wanted, unseen, columns = [], {}, {}
    for check, values in pending:
        key = (id(schema), check.name, check.error, str(values.dtype))
        owner, memo = _CHECK_MEMOS.setdefault(key, (schema, {}))
        if owner is not schema:  # a new schema object under an old one's id
            owner, memo = _CHECK_MEMOS[key] = (schema, {})
        if id(values) not in columns:  # each column's cells listed once for all its checks
            every = values.tolist()
            columns[id(values)] = (every, [cell_key(v) for v in every])
        every, every_key = columns[id(values)]
        if check.ignore_na:  # pandera drops the missing values first
            cells = [v for v, k in zip(every, every_key) if k is not None]
            keys = [k for k in every_key if k is not None]
        else:
            cells, keys = every, [k or _MISSING for k in every_key]
        wanted.append((memo, keys))
        todo = unseen.setdefault(key, (check, values, memo, {}))[3]
        todo.update((k, v) for k, v in zip(keys, cells) if k not in memo)
    for check, values, memo, todo in unseen.values():
        if not todo:
            continue
        sample = pd.Series(pd.array(list(todo.values()), dtype=values.dtype))
        output = partial(check._check_fn, **check._check_kwargs)(sample)
        if not isinstance(output, pd.Series) or len(output) != len(sample):
            # a verdict on a column as a whole: run it on each column as pandera does
            return _whole_columns_pass(pending)
        if len(memo) + len(todo) > _MEMO_SIZE:
            memo.clear()
        memo.update(zip(todo, output.to_numpy(dtype=bool, na_value=False)))
    return all(memo.get(k, False) for memo, keys in wanted for k in keys)


_DTYPE_VERDICTS: dict[tuple, tuple[object, bool]] = {}


def _dtype_passes(dtype, values: pd.Series) -> bool:
    """pandera's dtype check of a column; a verdict on the dtypes alone (a bool, not one
    per value) is remembered per (schema dtype, column dtype)."""
    key = (id(dtype), str(values.dtype))
    known = _DTYPE_VERDICTS.get(key)
    if known is not None and known[0] is dtype:
        return known[1]
    verdict = dtype.check(Engine.dtype(values.dtype), values)
    if isinstance(verdict, (bool, np.bool_)):
        _DTYPE_VERDICTS[key] = (dtype, bool(verdict))
    return _all_true(verdict)


def _default_converts(values: pd.Series, column) -> bool:
    """Whether pandera's default filling would convert the dtype of `values`, a column
    without missing values (pandas >= 3: a text column is cast to the schema's type)."""
    if not (pd.api.types.is_object_dtype(values.dtype)
            or pd.api.types.is_string_dtype(values.dtype)):
        return False
    return values.dtype != pd.api.types.pandas_dtype(Engine.dtype(column.dtype).type)


def _duplicated_keys(frame: pd.DataFrame, keys: list[str], missing: dict | None) -> bool:
    """`frame.duplicated(subset=keys).any()`; a few rows without missing keys compare
    their keys as Python tuples (`missing`: column -> has a missing value, or None)."""
    if missing is not None and all(k in missing and not missing[k] for k in keys):
        rows = list(zip(*(frame[k].tolist() for k in keys)))
        return len(set(rows)) < len(rows)
    return bool(frame.duplicated(subset=keys).any())


@dataclass(frozen=True)
class _ColumnPlan:
    """What `passes_schema` reads of one schema column (pandera's properties, read once)."""

    name: str
    required: bool
    default: object  # None: no default to fill
    nullable: bool
    unique: bool
    dtype: object
    checks: tuple


_PLANS: dict[int, tuple[pa.DataFrameSchema, tuple[_ColumnPlan, ...] | None]] = {}


def _plan(schema: pa.DataFrameSchema) -> tuple[_ColumnPlan, ...] | None:
    """The columns of `schema` as plans, or None if `passes_schema` cannot judge it (parsers,
    coercion, regex columns, index checks, grouped or element-wise checks); remembered per
    schema object."""
    known = _PLANS.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    plans: list[_ColumnPlan] | None = []
    if schema.coerce or schema.strict or schema.index is not None or schema.dtype is not None:
        plans = None
    for name, column in schema.columns.items():
        if plans is None or column.regex or column.coerce or column.parsers \
                or not all(_plain(c) for c in column.checks):
            plans = None
            break
        default = column.default if column.default is not None and pd.notna(column.default) \
            else None
        plans.append(_ColumnPlan(name, column.required, default, column.nullable,
                                 column.unique, column.dtype, tuple(column.checks)))
    if plans is not None and not all(_plain(c) for c in schema.checks):
        plans = None
    result = None if plans is None else tuple(plans)
    _PLANS[id(schema)] = (schema, result)
    return result


def passes_schema(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> bool:
    """True if `frame` passes `schema` (pandera's `validate(frame, inplace=True)` would
    return it unchanged but for the defaults, which this fills in place the same way);
    False if it fails or might (then validate with pandera for the failure report).

    schema: a pandera DataFrameSchema without parsers, coercion, regex columns or index
    checks (the contract's); frame: the normalised table (rows x columns).
    """
    plans = _plan(schema)
    if plans is None:
        return False
    columns = frame.columns
    if any(plan.required and plan.name not in columns for plan in plans):
        return False
    # A few rows: every column's missing values in one pass (pandas costs the same per call
    # for one row as for thousands).
    missing = dict(zip(frame.columns, frame.isna().to_numpy().any(axis=0).tolist())) \
        if len(frame) <= FEW_CELLS else None  # (a frame's own `any` costs twice as much)
    for plan in plans:
        if plan.default is None or plan.name not in columns:
            continue
        if missing is not None and not missing[plan.name] and \
                not _default_converts(frame[plan.name], schema.columns[plan.name]):
            continue  # nothing to fill, nothing to convert: pandera would change nothing
        _DEFAULTS.set_default(frame, schema.columns[plan.name])
        if missing is not None:
            missing[plan.name] = frame[plan.name].hasnans
    pending: list[tuple[pa.Check, pd.Series]] = []  # column checks, run after the rest
    for plan in plans:
        if plan.name not in columns:
            continue
        values = frame[plan.name]
        if not plan.nullable and (missing[plan.name] if missing is not None
                                  else values.hasnans):
            return False
        if plan.unique and _has_duplicates(values):
            return False
        if plan.dtype is not None and not _dtype_passes(plan.dtype, values):
            return False
        pending.extend((check, values) for check in plan.checks)
    if not _column_checks_pass(schema, pending):
        return False
    if schema.unique and _duplicated_keys(frame, list(schema.unique), missing):
        return False
    for check in schema.checks:
        # Row-wise checks of several columns: a missing side counts as passing inside the
        # check itself (features.schemas.cross_column_check), so NA needs no handling here.
        if not _all_true(partial(check._check_fn, **check._check_kwargs)(frame)):
            return False
    return True
