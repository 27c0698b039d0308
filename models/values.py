"""A feature's values as reason text: read from a feature frame, formatted for display.

Vectorised for batch scoring: one Python call per distinct rounded value, not per firm.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.rules.gaps import money

STRING = np.dtypes.StringDType()


def str_array(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """An object array of str and None as a pandas ``str`` array (None -> NaN), built by
    Arrow: `pd.array(values, dtype="str")` checks every element in Python, twice the time
    on the millions of reason and gap texts of a national run. Anything but str / None
    goes the pandas way (which also converts numbers to text)."""
    import pyarrow as pa

    try:
        arrow = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.array(values, dtype="str")
    return pd.array(pa.chunked_array([arrow]), dtype="str")


def join_per_row(rows: np.ndarray, texts, n: int, separator: str,
                 within: np.ndarray | None = None):
    """Per row of n, its entries' `texts` `separator`-joined, "" where it has none: one Arrow
    join over all rows, no Python string per row (a large_string Arrow array, (n,)).
    rows: (m,) int row of each entry; texts: (m,) Arrow large_string array; within: (m,)
    order of the entries in their row (None: the order they come in)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    order = (np.argsort(rows, kind="stable") if within is None
             else np.lexsort((within, rows)))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), texts.take(order))
    return pc.binary_join(lists, pa.scalar(separator, pa.large_string()))


def column_values(X: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """Values of one column at positional rows: float64, or object (str / None) for text."""
    if name not in X.columns:
        return np.full(len(rows), np.nan)
    column = X[name]
    if not (len(rows) == len(column) and (rows == np.arange(len(rows))).all()):
        column = column.iloc[rows]  # (every row in order, a one-firm request: no take)
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column):
        values = column.astype(object).to_numpy()
        return np.where(pd.isna(values), None, values)
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def is_missing(values: np.ndarray) -> np.ndarray:
    """Unknown entries: NaN for numbers, None / NA for text."""
    if values.dtype == object:
        return pd.isna(values)
    return np.isnan(values)


def _significant(v: np.ndarray, digits: int = 3) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.where(v == 0, 1.0, 10.0 ** (np.floor(np.log10(np.abs(v))) - digits + 1))
    return np.round(v / magnitude) * magnitude


def _money_text(x: float) -> str:
    return f"{money(x)} CNY"


def format_values(values: np.ndarray, fmt: str, decimals: int = 1, names: dict | None = None,
                  bar: bool = False) -> np.ndarray:
    """Text of each (known) value in a display format; a StringDType array.

    percent: fraction shown as "7.2%"; money: "1.27M CNY"; count: "5,200"; years / rank:
    whole numbers; number: `decimals` places; category: the value or its name in `names`.
    `bar=True` drops trailing zeros ("6%" for a threshold, not "6.0%").
    """
    if fmt == "category":
        if values.dtype != object:  # coded levels such as rd_institution_level
            uniq, inverse = np.unique(values, return_inverse=True)
            keys = np.array([f"{u:.0f}" for u in uniq], dtype=object)[inverse].astype(str)
        else:
            keys = values.astype(str)
        uniq, inverse = np.unique(keys, return_inverse=True)
        names = names or {}
        return np.array([names.get(u, u) for u in uniq], dtype=STRING)[inverse]
    v = np.asarray(values, dtype=np.float64)
    if fmt in ("money_log", "count_log"):
        v, fmt = np.expm1(v), fmt.removesuffix("_log")
    if fmt == "percent":
        rounded = np.round(v * 100, 2 if bar else decimals) + 0.0
        pattern = "{:g}%" if bar else f"{{:,.{decimals}f}}%"
    elif fmt == "money":
        rounded = _significant(v) + 0.0
        pattern = None
    elif fmt in ("count", "years", "rank"):
        rounded = np.round(v) + 0.0
        pattern = "{:,.0f}"
    else:
        rounded = np.round(v, decimals) + 0.0
        pattern = "{:g}" if bar else f"{{:,.{decimals}f}}"
    uniq, inverse = np.unique(rounded, return_inverse=True)
    texts = [_money_text(u) if pattern is None else pattern.format(u) for u in uniq]
    return np.array(texts, dtype=STRING)[inverse]
