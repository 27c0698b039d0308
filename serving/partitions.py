"""A dataset split by firm: who is scored as of a year, the chunks, and who is rejected.

Features are per firm, so a chunk of firms with every row of theirs needs no other data.
`Chunks` keeps, once per run, only the rows and columns that scoring as of the year reads,
ordered by chunk, so each chunk is a slice of them (no copy per chunk and no second
partitioning for the second pass over the chunks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import TABLES, Dataset
from features.domain import founded_before, no_financials_rejects
from features.panel import is_in, positions_in
from features.pipeline import PATENT_INPUTS, as_of_cutoff, fiscal_years_read, patents_read

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


def _rows_read(table: str, frame: pd.DataFrame, year: int) -> np.ndarray | bool:
    """Which rows of `table` the features as of `year` can read, by date, as the feature
    pipeline selects them (`features.pipeline.fiscal_years_read`, `patents_read`); every row
    of the other tables (candidacy and re-reviews read every year of certifications)."""
    if table == "financials":
        return fiscal_years_read(frame["year"].to_numpy(), year)
    if table == "patents":
        return patents_read(frame["filed"].to_numpy(), as_of_cutoff(year))
    return True


@dataclass
class Chunks:
    """The scored firms' rows that scoring as of `year` reads, ordered by chunk of
    `chunk_size` consecutive `firm_ids`: chunk i of table t is rows
    ``bounds[t][i]:bounds[t][i + 1]`` of ``tables[t]``, in the order of the input rows.
    Patents are kept without ``patent_id`` (no feature reads it). Iterating gives
    (chunk firm_ids, Dataset of the chunk's rows) per chunk, as often as asked."""

    firm_ids: np.ndarray
    chunk_size: int
    tables: dict[str, pd.DataFrame]
    bounds: dict[str, np.ndarray]

    @classmethod
    def of(cls, tables: dict[str, pd.DataFrame], year: int, firm_ids: np.ndarray,
           chunk_size: int) -> Chunks:
        """Chunks of the four normalised `tables` (table -> frame). `tables` is emptied
        table by table, so that a full table nobody else holds is freed as soon as its
        rows are taken (a million firms' tables are most of a run's memory)."""
        n_chunks = max(1, -(-len(firm_ids) // chunk_size))
        scored = _id_index(firm_ids)
        kept, bounds = {}, {}
        for table in TABLES:
            frame = tables.pop(table)
            pos = positions_in(frame["firm_id"], scored)
            rows = np.flatnonzero((pos >= 0) & _rows_read(table, frame, year))
            chunk = pos[rows] // chunk_size
            del pos
            order = np.argsort(chunk, kind="stable")  # stable: input order within a chunk
            rows, chunk = rows[order], chunk[order]
            bounds[table] = np.searchsorted(chunk, np.arange(n_chunks + 1))
            del order, chunk
            columns = [i for i, c in enumerate(frame.columns)
                       if table != "patents" or c in PATENT_COLUMNS]
            kept[table] = frame.iloc[rows, columns].reset_index(drop=True)
            del frame, rows
        return cls(firm_ids, chunk_size, kept, bounds)

    def __len__(self) -> int:
        return max(1, -(-len(self.firm_ids) // self.chunk_size))

    def __iter__(self) -> Iterator[tuple[np.ndarray, object]]:
        return self.starting(0)

    def starting(self, first: int) -> Iterator[tuple[np.ndarray, object]]:
        """(chunk firm_ids, Dataset) of the chunks from index `first` on."""
        return (self.chunk(i) for i in range(first, len(self)))

    def chunk(self, i: int) -> tuple[np.ndarray, object]:
        """(firm_ids, Dataset of their rows) of chunk i."""
        size = self.chunk_size
        parts = {t: frame.iloc[self.bounds[t][i]:self.bounds[t][i + 1]].reset_index(drop=True)
                 for t, frame in self.tables.items()}
        return self.firm_ids[i * size:(i + 1) * size], Dataset(**parts)


def chunks_of(dataset, year: int, firm_ids: np.ndarray, chunk_size: int) -> Chunks:
    """`Chunks` of a loaded Dataset, which is left as it is (its tables stay whole)."""
    return Chunks.of({t: getattr(dataset, t) for t in TABLES}, year, firm_ids, chunk_size)


def missing_financials(dataset, year: int, firm_ids: np.ndarray) -> pd.DataFrame:
    """Rejects of the firms founded before `year` (features.domain.founded_before, the
    founding part of candidacy) that have no financials for `year`-1: no tier can score
    them."""
    firms = dataset.firms
    founded = founded_before(firms["founded_year"].to_numpy(), year)
    absent = ~is_in(firms["firm_id"], _id_index(firm_ids))
    return no_financials_rejects(firms["firm_id"].to_numpy(dtype=object)[founded & absent], year)
