"""Row-level rejects: rows that cannot be used but do not make a dataset wrong are removed
from the validated tables and kept, with the rule and the row as JSON, for the rejects file.
Nothing a user gave is lost: every removed row is a reject."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features import plausibility
from features.atomic import write_csv
from features.panel import is_in

REJECT_COLUMNS = ["table", "row", "column", "rule", "reason", "record"]
UNKNOWN_FIRM_REASON = {
    "financials": "financials of an unknown firm",
    "patents": "patent of an unknown firm",
    "certifications": "certification of an unknown firm",
}
UNKNOWN_FIRM_RULE = "firm_id must be a firm_id of firms"


_EMPTY = pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str")
                       for c in REJECT_COLUMNS})


def empty_rejects() -> pd.DataFrame:
    # A copy of one frame built once: six typed columns cost a one-firm request ~1 ms each time.
    return _EMPTY.copy()


def reject_rows(frames: dict[str, pd.DataFrame], row_base: int) -> pd.DataFrame:
    """Remove rows of unknown firms, and financials dated before their firm was founded,
    from `frames` (in place) -> rejects."""
    rejects = [empty_rejects()]
    for table, index in _unknown_firm_rows(frames).items():
        rejects.append(_rejected(frames[table], table, index, row_base, "firm_id",
                                 UNKNOWN_FIRM_RULE, UNKNOWN_FIRM_REASON[table]))
        frames[table] = frames[table].drop(index=index)
    early = plausibility.before_founding(frames["financials"], frames["firms"])
    if len(early):
        rejects.append(_rejected(frames["financials"], "financials", early, row_base, "year",
                                 plausibility.BEFORE_FOUNDING_RULE,
                                 plausibility.BEFORE_FOUNDING_REASON))
        frames["financials"] = frames["financials"].drop(index=early)
    if len(rejects) == 1:  # nothing rejected: the tables keep their RangeIndex
        return rejects[0]
    for table in UNKNOWN_FIRM_REASON:
        frames[table] = frames[table].reset_index(drop=True)
    return pd.concat(rejects, ignore_index=True).astype({"row": "int64"})


def _unknown_firm_rows(frames: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    """Index labels of the rows of each table whose firm_id is not in firms."""
    unknown = {}
    for table in UNKNOWN_FIRM_REASON:
        ids = frames[table]["firm_id"]
        if len(ids) and not (known := is_in(ids, frames["firms"]["firm_id"])).all():
            unknown[table] = ids.index[~known].to_numpy()
    return unknown


def _rejected(frame: pd.DataFrame, table: str, index: np.ndarray, row_base: int, column: str,
              rule: str, reason: str) -> pd.DataFrame:
    """Reject rows: the rows `index` of `frame` (RangeIndex of the input) with the rule
    broken, the reason and the row as normalised, as JSON."""
    rejected = frame.loc[index]
    for name in rejected.columns[rejected.dtypes.map(pd.api.types.is_datetime64_dtype)]:
        rejected[name] = rejected[name].dt.strftime("%Y-%m-%d")
    records = rejected.to_json(orient="records", lines=True, force_ascii=False)
    return pd.DataFrame({
        "table": table, "row": np.asarray(index, dtype="int64") + row_base, "column": column,
        "rule": rule, "reason": reason,
        "record": pd.Series(records.splitlines(), dtype="str"),
    })


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    """Write rejects as CSV for Excel (features.atomic.write_csv), atomically. A directory
    `path` gets `rejects.csv`. Returns the file written."""
    path = Path(path)
    if path.is_dir():
        path = path / "rejects.csv"
    return write_csv(rejects, path)
