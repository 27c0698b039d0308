"""A dataset split by firm: who is scored as of a year, the chunks, and who is rejected.

Features are per firm, so a chunk of firms with every row of theirs needs no other data;
chunks are built lazily, so only one chunk's copy exists at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from features.domain import founded_before, no_financials_rejects
from features.panel import is_in, positions_in
from features.pipeline import PATENT_INPUTS

PATENT_COLUMNS = ("firm_id", *PATENT_INPUTS.values())  # what the features read of patents


def scored_firm_ids(dataset, year: int) -> np.ndarray:
    """Sorted firm_ids with a financials row for fiscal year `year`-1 (object array)."""
    fin = dataset.financials
    ids = fin.loc[fin["year"].to_numpy() == year - 1, "firm_id"].unique()
    return np.sort(np.asarray(ids, dtype=object))


def _id_index(firm_ids: np.ndarray) -> pd.Index:
    """The scored ids once as Arrow-backed strings, so each lookup against them is
    zero-copy (an object array would be converted again for every table)."""
    return pd.Index(pd.array(firm_ids, dtype="str"))


def partitions(dataset, firm_ids: np.ndarray, chunk_size: int) -> Iterator[tuple[np.ndarray, object]]:
    """(chunk firm_ids, Dataset holding only those firms' rows, patents without the
    unread patent_id) per chunk of `chunk_size` consecutive `firm_ids`; built lazily, so
    only one chunk's copy exists at a time."""
    from features.contract import Dataset

    n_chunks = max(1, -(-len(firm_ids) // chunk_size))
    scored = _id_index(firm_ids)
    layout = {}
    for table in ("firms", "financials", "patents", "certifications"):
        frame = getattr(dataset, table)
        if table == "patents":  # no feature reads patent_id: 17M ids not copied per chunk
            frame = frame[[c for c in frame.columns if c in PATENT_COLUMNS]]
        pos = positions_in(frame["firm_id"], scored)
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
    absent = ~is_in(firms["firm_id"], _id_index(firm_ids))
    return no_financials_rejects(firms["firm_id"].to_numpy(dtype=object)[founded & absent], year)
