"""Where a value stands among the known values of a measure across a set of candidates.

    cohort = Cohort.from_frame(X_candidates)          # or Cohort.from_values({name: values})
    higher, percent = cohort.place("rd_intensity", values)
    # higher[i]: more candidates lie below values[i] than above (ties count for "higher");
    # percent[i]: floor(100 * count / N) of the side chosen, exact (integer arithmetic)

A Cohort is a compact, exact summary built once (from a feature frame, or from the
candidates' values of many chunks concatenated): per measure the number N of known values,
the 100 boundary values that decide each percent, and the pivot that decides the side.
It does not hold the values, so it is small (a few KB per measure) and pickles cheaply to
Dask or process workers. The words built from it live in models.reason_text.

Why boundaries are exact: the share below v is at least p% when
floor(100 * count(< v) / N) >= p  <=>  count(< v) >= ceil(p * N / 100) = k
<=>  v > sorted[k - 1]; so the percent "higher than" is the number of boundaries
sorted[ceil(p N / 100) - 1], p = 1..100, lying strictly below v; symmetrically
count(> v) >= k <=> v < sorted[N - k] for "lower than". count(< v) - count(> v) only grows
with v, so one pivot (the lower median, sorted[(N - 1) // 2]) and the side taken at the
pivot itself decide "higher" versus "lower" for every v.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

PERCENTS = np.arange(1, 101, dtype=np.int64)


@dataclass(frozen=True)
class Measure:
    """One measure's summary: n known values; below[p-1] / above[p-1] (float64, (100,),
    ascending): v > below[p-1] <=> at least p% of the values are < v; v < above[100-p]
    <=> at least p% are > v; pivot and pivot_higher: the side at and around the median."""

    n: int
    below: np.ndarray
    above: np.ndarray
    pivot: float
    pivot_higher: bool

    @classmethod
    def of(cls, known: np.ndarray) -> Measure:
        """From the known (non-NaN) values, float64 (N,), N >= 1."""
        ordered = np.sort(known)
        n = len(ordered)
        need = (PERCENTS * n + 99) // 100          # ceil(p N / 100), >= 1 for N >= 1
        below = ordered[need - 1]                  # ascending in p
        above = ordered[n - need][::-1]            # descending in p, stored ascending
        pivot = ordered[(n - 1) // 2]
        lower_count = np.searchsorted(ordered, pivot, side="left")
        upper_count = n - np.searchsorted(ordered, pivot, side="right")
        return cls(n, below, above, float(pivot), bool(lower_count >= upper_count))

    def place(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(higher: bool (m,), percent: int64 (m,)) of known float64 `values` (no NaN)."""
        higher = (values > self.pivot) | ((values == self.pivot) & self.pivot_higher)
        share_below = np.searchsorted(self.below, values, side="left")
        share_above = 100 - np.searchsorted(self.above, values, side="right")
        return higher, np.where(higher, share_below, share_above).astype(np.int64)


@dataclass(frozen=True)
class Cohort:
    """measure name -> Measure, for the measures with at least one known value."""

    measures: Mapping[str, Measure]

    @classmethod
    def from_values(cls, values: Mapping[str, np.ndarray | Iterable[np.ndarray]]) -> Cohort:
        """From each measure's values (one array, or a list of per-chunk arrays that are
        concatenated); NaN is unknown and not counted."""
        measures = {}
        for name, parts in values.items():
            every = (np.asarray(parts, dtype=np.float64) if isinstance(parts, np.ndarray)
                     else np.concatenate([np.asarray(p, dtype=np.float64) for p in parts]
                                         or [np.zeros(0)]))
            known = every[~np.isnan(every)]
            if len(known):
                measures[name] = Measure.of(known)
        return cls(measures)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, columns: Iterable[str] | None = None) -> Cohort:
        """From the numeric columns of a feature frame of candidates (or only `columns`)."""
        return cls.from_values(numeric_values(frame, columns))

    def n(self, name: str) -> int:
        """How many candidates have a known value of `name` (0 if none or not numeric)."""
        measure = self.measures.get(name)
        return measure.n if measure is not None else 0

    def place(self, name: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`Measure.place` of measure `name` (which must have known values)."""
        return self.measures[name].place(np.asarray(values, dtype=np.float64))


def numeric_values(frame: pd.DataFrame, columns: Iterable[str] | None = None
                   ) -> dict[str, np.ndarray]:
    """name -> float64 values (NaN unknown) of the numeric columns of `frame` among
    `columns` (default: all)."""
    names = frame.columns if columns is None else [c for c in columns if c in frame.columns]
    return {c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in names
            if pd.api.types.is_numeric_dtype(frame[c])}


def as_cohort(cohort: Cohort | pd.DataFrame | None,
              columns: Iterable[str] | None = None) -> Cohort | None:
    """A Cohort as is; a feature frame of candidates through `Cohort.from_frame` (of
    `columns` only, if given)."""
    if cohort is None or isinstance(cohort, Cohort):
        return cohort
    return Cohort.from_frame(cohort, columns)
