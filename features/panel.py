"""As-of candidate panel: who can be certified in year *t*, and whether they were.

Follows DATA_CONTRACT "What a prediction is": the candidates of a tier in as-of year *t* are
the firms founded before *t* that do not already hold a valid title excluding them at the
start of *t*; the label is a ``granted`` row of that tier announced in *t*. Only the
certifications of years < *t* decide candidacy (titles announced in *t* are not yet known
at its start).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TIER_ORDER: tuple[str, ...] = ("innovative", "specialized", "little_giant", "champion")
# Tiers whose entry is predicted (the lists announced by the MIIT and the provinces).
TIERS: tuple[str, ...] = ("specialized", "little_giant", "champion")

# A valid title of any of these tiers removes a firm from a tier's candidates. A Specialized
# SME candidate is any firm without a Specialized-or-higher title (a Little Giant is by rule
# already a Specialized SME); Little Giant and Champion candidates only lack that title.
EXCLUDING_TITLES: dict[str, tuple[str, ...]] = {
    "innovative": TIER_ORDER,
    "specialized": TIER_ORDER[1:],
    "little_giant": ("little_giant",),
    "champion": ("champion",),
}

NO_FINANCIALS_REASON = "no financials for fiscal year {fy}"
REJECT_COLUMNS = ["table", "row", "column", "rule", "reason", "record", "firm_id", "year", "tier"]


def as_arrow_strings(values) -> pa.Array | pa.ChunkedArray:
    """Any sequence of ids as an Arrow large_string array (zero-copy for pandas ``str``)."""
    if isinstance(values, (pd.Series, pd.Index)) and values.dtype != object:
        arr = pa.array(values.array) if isinstance(values, pd.Index) else pa.array(values)
    else:
        arr = pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True)
    return arr if arr.type == pa.large_string() else arr.cast(pa.large_string())


def positions_in(values, universe) -> np.ndarray:
    """Position of each of ``values`` in the unique ids ``universe`` (-1 where absent).

    Arrow hashing in C++: no Python string objects, which matters at millions of ids.
    """
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
    hits = pc.is_in(as_arrow_strings(values), value_set=as_arrow_strings(universe))
    return np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool)


def _check_tier(tier: str) -> None:
    if tier not in EXCLUDING_TITLES:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIER_ORDER)}")


def holds_valid_title(
    certifications: pd.DataFrame, year: int, tier: str, key: str = "firm_id"
) -> pd.Series:
    """Whether each firm holds a valid ``tier`` title at the start of ``year``.

    Valid: the latest granted/renewed row of the tier is from year-2 or year-1 and no
    revoked row of the tier came after it. Rows of ``year`` and later are ignored (not yet
    announced). A revocation in the same year as the latest grant ends it: the order within a
    year is unknown, and a title cannot be revoked before it exists.

    Returns a bool Series indexed by firm_id (or by the column ``key``) over every firm in
    ``certifications`` (firms absent from it hold no title; reindex with
    ``fill_value=False``).
    """
    _check_tier(tier)
    firm_ids = pd.Index(certifications[key].unique(), name=key)
    known = certifications[(certifications["tier"] == tier) & (certifications["year"] < year)]
    announced = known["event"].isin(["granted", "renewed"])
    last_title = known.loc[announced].groupby(key)["year"].max()
    last_revoked = known.loc[known["event"] == "revoked"].groupby(key)["year"].max()
    last_title = last_title.reindex(firm_ids)
    last_revoked = last_revoked.reindex(firm_ids)
    in_window = last_title.between(year - 2, year - 1)
    revoked_after = last_revoked.notna() & (last_revoked >= last_title)
    return (in_window & ~revoked_after).astype(bool).rename("holds_" + tier)


def _any_title(certifications: pd.DataFrame, year: int, tiers: tuple[str, ...]) -> pd.Series:
    held = [holds_valid_title(certifications, year, t) for t in tiers]
    return pd.concat(held, axis=1).any(axis=1) if held else pd.Series(dtype=bool)


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
    _check_tier(tier)
    year = int(year)
    firms, fin, certs = dataset.firms, dataset.financials, dataset.certifications
    founded = firms.loc[firms["founded_year"] < year, "firm_id"]
    excluded = _any_title(certs, year, EXCLUDING_TITLES[tier])
    excluded_ids = excluded.index[excluded.to_numpy(dtype=bool)]
    candidates = founded[~is_in(founded, excluded_ids)].sort_values(ignore_index=True)

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
    return keys, _missing_financials_rejects(missing, year, tier)


def _missing_financials_rejects(firm_ids: pd.Series, year: int, tier: str) -> pd.DataFrame:
    n = len(firm_ids)
    reason = NO_FINANCIALS_REASON.format(fy=year - 1)
    # Vectorised JSON: escape the two characters JSON requires inside strings for ids.
    escaped = firm_ids.astype("str").str.replace("\\", "\\\\").str.replace('"', '\\"')
    tail = ", " + json.dumps({"year": year, "tier": tier})[1:]
    records = ('{"firm_id": "' + escaped + '"' + tail).to_numpy(dtype=object)
    def text(value) -> pd.Series:
        return pd.Series(np.full(n, value, dtype=object), dtype="str")

    return pd.DataFrame(
        {
            "table": text("financials"),
            # Not a row of an input file: the firm is missing a row.
            "row": pd.Series(pd.NA, index=range(n), dtype="Int64"),
            "column": text("year"),
            "rule": text("financials_for_asof_year"),
            "reason": text(reason),
            "record": pd.Series(records, dtype="str"),
            "firm_id": pd.Series(firm_ids.to_numpy(dtype=object), dtype="str"),
            "year": np.full(n, year, dtype="int64"),
            "tier": text(tier),
        },
        columns=REJECT_COLUMNS,
    )
