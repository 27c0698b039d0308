"""A compiled 64-bit hash of Arrow strings, for telling millions of ids apart quickly.

Written by hand because no installed library hashes Arrow strings in place: pyarrow's
compute "hash_*" functions are grouped aggregations, not a per-row hash, and pandas'
`hash_array` needs a Python object per string (17M patent ids at a million firms, the cost
this module removes). FNV-1a is enough here: equal hashes are checked again exactly.

Kept apart from `features.fast_validation` so that numba is imported only when a table
is large enough to need it (a one-firm API request never is).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def fnv1a(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """FNV-1a hash (uint64) of each string i = data[offsets[i]:offsets[i + 1]] (UTF-8
    bytes; offsets int64 of length n + 1)."""
    n = len(offsets) - 1
    out = np.empty(n, dtype=np.uint64)
    prime = np.uint64(1099511628211)
    for i in range(n):
        h = np.uint64(14695981039346656037)
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * prime
        out[i] = h
    return out
