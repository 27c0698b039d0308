"""As-of candidate panel: who can be certified in year *t*, and whether they were.

Follows DATA_CONTRACT "What a prediction is": the candidates of a tier in as-of year *t* are
the firms founded before *t* that do not already hold a valid title excluding them at the
start of *t*; the label is a ``granted`` row of that tier announced in *t*. Only the
certifications of years < *t* decide candidacy (titles announced in *t* are not yet known
at its start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.domain import (
    EXCLUDING_TITLES,
    FEW_ROWS,
    candidate_mask,
    check_tier,
    due_for_review,
    holds_valid_title,
    no_financials_rejects,
    review_outcome,
    reviewed_years,
)


def as_arrow_strings(values) -> pa.Array | pa.ChunkedArray:
    """Any sequence of ids as an Arrow large_string array (zero-copy for pandas ``str``)."""
    if isinstance(values, (pd.Series, pd.Index)) and values.dtype != object:
        arr = pa.array(values.array) if isinstance(values, pd.Index) else pa.array(values)
    else:
        arr = pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True)
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def _few_ids(values, universe) -> tuple[list, list] | None:
    """Both id sequences as Python lists of str (None: missing), if both are short
    (FEW_ROWS): a one-firm request pays Arrow's fixed cost per call several times over the
    work. Missing ids are one key, as Arrow matches a null with a null."""
    if len(values) > FEW_ROWS or len(universe) > FEW_ROWS:
        return None

    def ids(seq) -> list:
        items = seq.tolist() if hasattr(seq, "tolist") else list(seq)
        return [None if pd.isna(v) else str(v) for v in items]

    return ids(values), ids(universe)


def positions_in(values, universe) -> np.ndarray:
    """Position of each of ``values`` in the unique ids ``universe`` (-1 where absent).

    Arrow hashing in C++: no Python string objects, which matters at millions of ids (a
    few ids are looked up in a dict: the same answer).
    """
    if (few := _few_ids(values, universe)) is not None:
        wanted, known = few
        position: dict = {}
        for i, firm in enumerate(known):
            position.setdefault(firm, i)  # the first, as Arrow's index_in
        return np.array([position.get(firm, -1) for firm in wanted], dtype=np.int64)
    universe = as_arrow_strings(universe)
    if len(values) > 4 * len(universe):
        # Long columns (patents, financials) repeat each id many times: hash the distinct
        # ids once and broadcast.
        codes, uniques = pd.factorize(pd.Series(values) if not isinstance(values, pd.Series)
                                      else values)
        return np.append(_index_in(uniques, universe), -1)[codes]
    return _index_in(values, universe)


def _index_in(values, universe: pa.Array) -> np.ndarray:
    found = pc.index_in(as_arrow_strings(values), value_set=universe)
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def is_in(values, universe) -> np.ndarray:
    """Bool array: which of ``values`` occur in ``universe``."""
    if (few := _few_ids(values, universe)) is not None:
        wanted, known = few
        known = set(known)
        return np.array([firm in known for firm in wanted], dtype=bool)
    hits = pc.is_in(as_arrow_strings(values), value_set=as_arrow_strings(universe))
    return np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool)


def candidate_panel(dataset, year: int, tier: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candidate firm-years of ``tier`` for as-of ``year`` with their labels.

    ``dataset`` is any object with ``firms``, ``financials`` and ``certifications`` frames in
    the normalised format. Candidates are firms founded before ``year`` without an excluding
    valid title (see EXCLUDING_TITLES); those without a financials row for ``year``-1 cannot
    be scored and are returned as rejects (counted, never dropped silently).

    Returns ``(keys, rejects)``: keys has columns firm_id (str), year (int64) and label
    (float64: 1.0 granted ``tier`` in ``year``, 0.0 not, NaN for every row when the tier has
    no granted row in ``year`` at all, i.e. the list is not (yet) in the data), sorted by
    firm_id with a RangeIndex. rejects has the loader's reject columns (table, row, column,
    rule, reason, record) plus firm_id, year, tier.
    """
    check_tier(tier)
    year = int(year)
    firms, fin, certs = dataset.firms, dataset.financials, dataset.certifications
    holds = {title: is_in(firms["firm_id"], held.index[held.to_numpy(dtype=bool)])
             for title in EXCLUDING_TITLES[tier]
             for held in [holds_valid_title(certs, year, title)]}
    candidate = candidate_mask(firms["founded_year"].to_numpy(), holds, year, tier)
    candidates = firms.loc[candidate, "firm_id"].sort_values(ignore_index=True)

    has_fin = is_in(candidates, fin.loc[fin["year"] == year - 1, "firm_id"])
    kept = candidates[has_fin].reset_index(drop=True)
    missing = candidates[~has_fin].reset_index(drop=True)

    this_year = certs[(certs["tier"] == tier) & (certs["year"] == year)]
    granted_ids = this_year.loc[this_year["event"] == "granted", "firm_id"]
    if len(granted_ids):
        label = is_in(kept, granted_ids).astype("float64")
    else:
        label = np.full(len(kept), np.nan)
    keys = pd.DataFrame(
        {"firm_id": kept, "year": np.full(len(kept), year, dtype="int64"), "label": label}
    )
    return keys, no_financials_rejects(missing, year, tier)


def review_panel(dataset, year: int, tier: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Firm-years of ``tier`` titles up for re-review in ``year``, with their outcomes.

    The rows are the firms whose title is due (features.domain.due_for_review, from the
    certifications announced before ``year``); those without a financials row for
    ``year``-1 are returned as rejects. Returns ``(keys, rejects)`` as `candidate_panel`
    does; label is 1.0 renewed in ``year``, 0.0 revoked or lapsed, NaN for every row when
    the year's re-reviews of the tier are not in the data (no renewed row at all).
    """
    check_tier(tier)
    year = int(year)
    certs, fin = dataset.certifications, dataset.financials
    due = due_for_review(certs, year, tier)
    reviewed = pd.Series(due.index[due.to_numpy(dtype=bool)], dtype="str")
    reviewed = reviewed[is_in(reviewed, dataset.firms["firm_id"])].sort_values(ignore_index=True)
    has_fin = is_in(reviewed, fin.loc[fin["year"] == year - 1, "firm_id"])
    kept = reviewed[has_fin].reset_index(drop=True)
    missing = reviewed[~has_fin].reset_index(drop=True)
    label = review_outcome(certs, year, tier, kept) if year in reviewed_years(certs, tier) \
        else np.full(len(kept), np.nan)
    keys = pd.DataFrame(
        {"firm_id": kept, "year": np.full(len(kept), year, dtype="int64"), "label": label})
    return keys, no_financials_rejects(missing, year, tier)
