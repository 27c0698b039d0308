"""A dataset split by firm: who is scored as of a year, the chunks, and who is rejected.

Features are per firm, so a chunk of firms with every row of theirs needs no other data;
chunks are built lazily, so only one chunk's copy exists at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.domain import founded_before, no_financials_rejects


def scored_firm_ids(dataset, year: int) -> np.ndarray:
    """Sorted firm_ids with a financials row for fiscal year `year`-1 (object array)."""
    fin = dataset.financials
    ids = fin.loc[fin["year"].to_numpy() == year - 1, "firm_id"].unique()
    return np.sort(np.asarray(ids, dtype=object))


def _positions(ids: pd.Series, scored: pa.Array) -> np.ndarray:
    """Position of each id in `scored` (-1 if absent), hashed by Arrow in C++."""
    values = pa.array(np.asarray(ids, dtype=object), type=pa.string())
    return pc.index_in(values, value_set=scored).fill_null(-1).to_numpy().astype(np.int64)


def partitions(dataset, firm_ids: np.ndarray, chunk_size: int) -> Iterator[tuple[np.ndarray, object]]:
    """(chunk firm_ids, Dataset holding only those firms' rows) per chunk of `chunk_size`
    consecutive `firm_ids`; built lazily, so only one chunk's copy exists at a time."""
    from features.contract import Dataset

    n_chunks = max(1, -(-len(firm_ids) // chunk_size))
    scored = pa.array(firm_ids, type=pa.string())
    layout = {}
    for table in ("firms", "financials", "patents", "certifications"):
        frame = getattr(dataset, table)
        pos = _positions(frame["firm_id"], scored)
        chunk = np.where(pos >= 0, pos // chunk_size, n_chunks)
        order = np.argsort(chunk, kind="stable")
        bounds = np.searchsorted(chunk[order], np.arange(n_chunks + 1))
        layout[table] = (frame, order, bounds)
    for i in range(n_chunks):
        parts = {t: f.iloc[o[b[i]:b[i + 1]]].reset_index(drop=True)
                 for t, (f, o, b) in layout.items()}
        yield firm_ids[i * chunk_size:(i + 1) * chunk_size], Dataset(**parts)


def missing_financials(dataset, year: int, firm_ids: np.ndarray) -> pd.DataFrame:
    """Rejects of the firms founded before `year` (features.domain.founded_before, the
    founding part of candidacy) that have no financials for `year`-1: no tier can score
    them."""
    firms = dataset.firms
    founded = founded_before(firms["founded_year"].to_numpy(), year)
    absent = _positions(firms["firm_id"], pa.array(firm_ids, type=pa.string())) < 0
    return no_financials_rejects(firms["firm_id"].to_numpy(dtype=object)[founded & absent], year)
