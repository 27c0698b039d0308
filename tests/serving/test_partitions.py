"""The chunks scoring goes through hold exactly what the features read of each firm."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import TABLES, load_dataset
from features.pipeline import build_features
from serving.partitions import Chunks, chunks_of, scored_firm_ids


@pytest.fixture(scope="module")
def dataset(small_universe):
    return load_dataset(small_universe)


@pytest.mark.parametrize("year", [2022, 2025])
def test_chunks_give_the_features_of_the_whole_tables(dataset, year):
    firm_ids = scored_firm_ids(dataset, year)
    chunk_size = len(firm_ids) // 3 + 1
    chunks = chunks_of(dataset, year, firm_ids, chunk_size)
    # the chunks keep fewer rows: years the features do not look back on, later patents,
    # firms not scored, and no patent ids
    assert len(chunks.tables["financials"]) < len(dataset.financials)
    assert len(chunks.tables["patents"]) < len(dataset.patents)
    assert "patent_id" not in chunks.tables["patents"]
    seen = []
    for ids, part in chunks:
        assert len(part.firms) == len(ids)
        pd.testing.assert_frame_equal(build_features(part, year, firm_ids=ids),
                                      build_features(dataset, year, firm_ids=ids),
                                      check_exact=True)
        seen.append(ids)
    assert len(seen) == len(chunks) == 3
    np.testing.assert_array_equal(np.concatenate(seen), firm_ids)
    # a second pass (the reasons' cohorts, then the scores) gives the same chunks
    again = [ids for ids, _ in chunks]
    assert all(np.array_equal(a, b) for a, b in zip(seen, again))


def test_chunks_take_each_table_and_leave_a_loaded_dataset_whole(dataset):
    firm_ids = scored_firm_ids(dataset, 2025)
    tables = {t: getattr(dataset, t) for t in TABLES}
    sizes = {t: len(f) for t, f in tables.items()}
    chunks = Chunks.of(tables, 2025, firm_ids, chunk_size=1_000)
    assert tables == {}  # each whole table dropped once its rows were taken
    assert {t: len(getattr(dataset, t)) for t in TABLES} == sizes
    for table, bounds in chunks.bounds.items():
        assert bounds[0] == 0 and bounds[-1] == len(chunks.tables[table])
        assert (np.diff(bounds) >= 0).all()
