"""`features.parsers.text`: every text cell trimmed, empty = missing, one Arrow chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features.parsers import STR, text


def _chunked(*chunks: list) -> pd.Series:
    arrow = pa.chunked_array([pa.array(c, type=pa.large_string()) for c in chunks])
    return pd.Series(arrow, dtype=STR)


@pytest.mark.parametrize("chunks, expected", [
    ([["a", " b", "c "], ["\u3000d\u3000", None, ""]], ["a", "b", "c", "d", np.nan, np.nan]),
    ([["a", "b"], ["c", None]], ["a", "b", "c", np.nan]),  # nothing to trim
    ([["x", " ", "y"]], ["x", np.nan, "y"]),
    ([["91110000", "91110001"]], ["91110000", "91110001"]),  # one chunk, nothing to trim
])
def test_text_trims_and_empties_in_one_chunk(chunks, expected):
    series = _chunked(*chunks)
    out = text(series)
    assert series.array._pa_array.num_chunks == len(chunks)
    pd.testing.assert_series_equal(out, pd.Series(expected, dtype=STR))
    assert out.array._pa_array.num_chunks == 1
    # the input is left as it was
    pd.testing.assert_series_equal(series, pd.Series([v for c in chunks for v in c], dtype=STR))
