"""Parsers: raw column (CSV text or any Parquet/JSON dtype) -> (typed column, bad cells).

`PARSERS` maps each kind of contract column (`column_kind` of its schema column) to its
parser; `PARSE_RULES` holds the sentence of each parser's bad cells (pandera never sees an
unparsable cell: it would only see it as missing). They work on whole columns; where a
Python function is needed it runs once per distinct value (`_per_distinct`), never per
row, so 13M-row columns stay fast, and a column of few distinct values (an API request)
reuses each value's parse from the memo of this process.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc

from features.schemas import PROVINCES

STR = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas 3 default "str"

# Province names (Chinese or romanised, with or without a suffix) -> GB/T 2260 code.
_PROVINCE_ALIASES = {alias: code for code, names in PROVINCES.items() for alias in names}
_PROVINCE_SUFFIX = re.compile(
    r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区"
    r"|\s+(province|municipality|autonomous region|sar))$"
)
_ENUM_ALIASES = {
    "创新型中小企业": "innovative", "专精特新中小企业": "specialized", "小巨人": "little_giant",
    "专精特新小巨人": "little_giant", "专精特新“小巨人”": "little_giant",
    "单项冠军": "champion", "制造业单项冠军": "champion",
    "发明": "invention", "发明专利": "invention", "实用新型": "utility", "utility_model": "utility",
    "外观设计": "design", "软件著作权": "software", "software_copyright": "software",
}
_BOOLEAN_WORDS = {
    "true": True, "t": True, "yes": True, "y": True, "1": True, "1.0": True, "是": True,
    "false": False, "f": False, "no": False, "n": False, "0": False, "0.0": False, "否": False,
}

# Sentences of the parse (type) rules; pandera never sees an unparsable cell.
NOT_A_NUMBER = "must be a number"
NOT_A_WHOLE_NUMBER = "must be a whole number"
NOT_A_DATE = "must be a date YYYY-MM-DD"
NOT_A_BOOLEAN = "must be true/false, 1/0, yes/no or empty"
NOT_A_YEAR = "must be a year written as a whole number, e.g. 2021"
TOO_LARGE = "is too large to be a count of anything a firm has"


def _arrow_text(s: pd.Series, trim: bool = True) -> pyarrow.ChunkedArray:
    """Any column -> Arrow strings, whitespace stripped, empty -> null (Arrow kernels are
    several times faster than the pandas string methods on 10M+ rows)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(s.cat.categories.dtype)
    if pd.api.types.is_float_dtype(s.dtype) and (np.floor(s.dropna()) == s.dropna()).all():
        s = s.astype("Int64")  # so 1001.0 read from a float column stays "1001"
    if s.dtype != "str":
        s = s.astype("str")
    arr = pyarrow.chunked_array(pyarrow.array(s.array))
    if trim:
        trimmed = pc.utf8_trim_whitespace(arr)
        # Most columns have nothing to trim: keep the input then, so that a 17M-row column
        # is not held three times (input, trimmed, contiguous) while it is converted.
        if pc.any(pc.not_equal(trimmed, arr)).as_py():
            arr = trimmed
        del trimmed
    empty = pc.equal(arr, "")
    # Most columns hold no empty cell: skip rewriting a 17M-row column to change nothing.
    return pc.if_else(empty, pyarrow.scalar(None, arr.type), arr) if pc.any(empty).as_py() \
        else arr


def text(s: pd.Series) -> pd.Series:
    """Any column -> `str` dtype, whitespace stripped, empty -> NaN; one contiguous Arrow
    array (taking rows of a many-chunked column, as batch scoring does per chunk of firms,
    is several times slower)."""
    arr = _arrow_text(s)
    whole = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()  # no copy of one
    return pd.Series(pyarrow.chunked_array([whole], type=arr.type), index=s.index, dtype=STR)


# An API request's few rows bring back the same values request after request (provinces,
# enum names, booleans, industry codes): for a column of few distinct values, each value's
# parse is remembered per parser function, so pandas' string methods (a fixed cost of
# tens of microseconds per call) run once per value per process instead of per request.
_MEMO_DISTINCT = 64  # columns with more distinct values (a loaded file) parse directly
_MEMO_SIZE = 100_000  # values remembered per parser function; emptied when full
_MEMOS: dict[tuple[Callable, str], tuple[dict, list]] = {}
_UNSEEN = object()


def _per_distinct(s: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply `fn` (element-wise: each output value depends on its input value alone) to
    the distinct non-missing values of `s` and spread the result back."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if len(uniques) <= _MEMO_DISTINCT:
        mapped = _memoised(fn, uniques, s.dtype)
    else:
        mapped = fn(pd.Series(uniques, dtype=s.dtype)).array
    return pd.Series(pd.api.extensions.take(mapped, codes, allow_fill=True), index=s.index)


def _memoised(fn: Callable[[pd.Series], pd.Series], uniques, dtype):
    """`fn(uniques).array`, computing only the values `fn` has not seen in this process
    (safe under the API's concurrent requests: a value is read from the memo once)."""
    memo, output_dtype = _MEMOS.setdefault((fn, str(dtype)), ({}, [None]))
    keys = list(uniques)
    values = [memo.get(k, _UNSEEN) for k in keys]
    new = [k for k, v in zip(keys, values) if v is _UNSEEN]
    if not new:
        return pd.array(values, dtype=output_dtype[0])
    mapped = fn(pd.Series(new, dtype=dtype)).array
    if len(memo) + len(new) > _MEMO_SIZE:
        memo.clear()
    memo.update(zip(new, mapped))
    output_dtype[0] = mapped.dtype
    if len(new) == len(keys):
        return mapped
    fresh = dict(zip(new, mapped))
    return pd.array([fresh[k] if v is _UNSEEN else v for k, v in zip(keys, values)],
                    dtype=mapped.dtype)


def _no_failures(s: pd.Series) -> np.ndarray:
    return np.zeros(len(s), dtype=bool)


def parse_number(s: pd.Series, whole: bool = False) -> tuple[pd.Series, np.ndarray]:
    """-> float64 (NaN = missing); bad = present but not a finite (whole) number."""
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        # Arrow's C++ cast is ~7x faster than pd.to_numeric but fails on any bad cell:
        # try it untrimmed, then trimmed, and only then locate bad cells with pandas.
        raw = _arrow_text(s, trim=False)
        try:
            values = pd.Series(pc.cast(raw, pyarrow.float64()).to_numpy(), index=s.index)
        except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError):
            raw = _arrow_text(s)
            try:
                values = pd.Series(pc.cast(raw, pyarrow.float64()).to_numpy(), index=s.index)
            except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError):
                values = pd.to_numeric(pd.Series(raw, dtype=STR), errors="coerce")
                values = values.astype("float64").set_axis(s.index)
        present = pc.is_valid(raw).to_numpy()
    else:
        values = s.astype("float64")
        present = s.notna().to_numpy()
    numbers = values.to_numpy()
    finite = np.isfinite(numbers)
    bad = present & ~finite
    if whole:  # floor, not % 1: fmod is ~30x slower on columns with NaN
        bad |= finite & (numbers != np.floor(numbers))
    return (values.mask(bad) if bad.any() else values), bad


def parse_int(s: pd.Series, rule: str = NOT_A_WHOLE_NUMBER
              ) -> tuple[pd.Series, dict[str, np.ndarray]]:
    """-> Int64; bad cells under `rule`, and whole numbers past 2**53 (they do not fit a
    64-bit float exactly, nor any count) under TOO_LARGE."""
    values, bad = parse_number(s, whole=True)
    huge = (values.abs() >= 2**53).to_numpy()
    return values.mask(huge).astype("Int64"), {rule: bad, TOO_LARGE: huge}


def parse_bool(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """true/false, 1/0, yes/no (any case) -> nullable boolean; empty -> <NA>."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("boolean"), _no_failures(s)
    raw = text(s)
    values = _per_distinct(raw, _boolean_word)
    return values, (raw.notna() & values.isna()).to_numpy()


def _boolean_word(u: pd.Series) -> pd.Series:
    return pd.Series(u.str.lower().map(_BOOLEAN_WORDS), dtype="boolean")


def parse_date(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """ISO dates (a time part is dropped) or Parquet date/timestamp -> datetime64[us]."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.astype("datetime64[us]").dt.floor("D"), _no_failures(s)
    raw = text(s)  # date/datetime objects (JSON, date_as_object) become ISO text here
    values = _per_distinct(raw, _iso_date).astype("datetime64[us]")
    return values, (raw.notna() & values.isna()).to_numpy()


def _iso_date(u: pd.Series) -> pd.Series:
    iso = u.str.match(r"^\d{4}-\d{2}-\d{2}(?:[T ]|$)")
    dates = pd.to_datetime(u.where(iso), format="ISO8601", errors="coerce")
    return dates.dt.floor("D").astype("datetime64[us]")


def _province_code(u: pd.Series) -> pd.Series:
    """33, "33", "330000" (6-digit division code) or a name -> "33"; others unchanged."""
    digits = u.str.extract(r"^(\d+)(?:\.0+)?$", expand=False)
    code = digits.where(digits.str.len().isin([2, 4, 6])).str.slice(0, 2)
    named = u.str.lower().str.replace(_PROVINCE_SUFFIX, "", regex=True).map(_PROVINCE_ALIASES)
    return code.fillna(named).fillna(u)


def parse_province(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    return _per_distinct(s, _province_of_cell).astype("str"), _no_failures(s)


def _province_of_cell(u: pd.Series) -> pd.Series:
    # A named function, not a lambda: _per_distinct remembers parses per function object.
    return _province_code(text(u))


def parse_industry(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    return _per_distinct(s, _industry_code).astype("str"), _no_failures(s)


def _industry_code(u: pd.Series) -> pd.Series:
    # text() per distinct value too: trimming a 17M-row column cell by cell costs more
    # than the whole canonicalisation of its few distinct values.
    return text(u).str.upper().str.replace(r"[\s.]", "", regex=True)


def parse_enum(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Any case, spaces or hyphens for underscores, a few Chinese names."""
    return _per_distinct(s, _enum_name).astype("str"), _no_failures(s)


def _enum_name(u: pd.Series) -> pd.Series:
    key = text(u).str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    return key.map(_ENUM_ALIASES).fillna(key)


PARSERS: dict[str, Callable[[pd.Series], tuple[pd.Series, np.ndarray]]] = {
    "text": lambda s: (text(s), _no_failures(s)), "province": parse_province,
    "industry": parse_industry, "enum": parse_enum, "float": parse_number,
    "int": lambda s: parse_number(s, whole=True), "Int64": parse_int,
    "year": lambda s: parse_int(s, NOT_A_YEAR), "bool": parse_bool, "date": parse_date,
}
# The rule of each parser's bad cells (a parser may also return {rule: mask}).
PARSE_RULES = {"int": NOT_A_WHOLE_NUMBER, "Int64": NOT_A_WHOLE_NUMBER, "float": NOT_A_NUMBER,
               "bool": NOT_A_BOOLEAN, "date": NOT_A_DATE, "year": NOT_A_YEAR}
ALL_PARSE_RULES = (*PARSE_RULES.values(), TOO_LARGE)


def column_kind(column: pa.Column) -> str:
    """Parser name of a schema column: explicit `metadata["kind"]`, else from its dtype."""
    kind = (column.metadata or {}).get("kind")
    if kind:
        return kind
    dtype = str(column.dtype)
    if dtype.startswith("datetime64"):
        return "date"
    return {"Int64": "Int64", "float64": "float", "boolean": "bool"}.get(dtype, "text")
