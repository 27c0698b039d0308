"""Feature pipeline: as-of inputs -> registered feature functions -> feature frame.

``build_features(dataset, t)`` first censors the data to what was known by the end of t-1
(financials of fiscal years t-4 .. t-1, patents filed before t-01-01 with grant and lapse
dates from t on blanked, certifications announced before t), then evaluates every
registered feature function, resolving each parameter by name to a raw input or another
function (a small Hamilton-style dataflow). Censoring at the source makes a leak impossible
whatever a feature function does.

Features come from the registry of :mod:`features.catalogue`; FEATURE_PIPELINE_VERSION is a
hash of the sources that compute them (:func:`pipeline_version`), and
:func:`feature_catalogue` / :func:`feature_label` give each feature's pillar and labels.
The version is computed in :mod:`features.version`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.internals import create_dataframe_from_blocks
from sklearn.base import BaseEstimator, TransformerMixin

from features import patents
from features.catalogue import FEATURES, NODES
from features.domain import labelled_years, reviewed_years
from features.panel import candidate_panel, positions_in, review_panel
from features.rule_features import rule_feature_catalogue, rule_feature_columns
from features.version import pipeline_version, version_sources

FEATURE_PIPELINE_VERSION = pipeline_version(version_sources())

LAGS: dict[str, int] = {"_prev3": 4, "_prev2": 3, "_prev": 2, "": 1}
FINANCIAL_BOOLEANS = ("high_tech", "quality_cert", "own_brand")
FINANCIAL_TEXT = ("rd_institution",)
FIRM_INPUTS = {
    "firm_province": "province", "firm_industry_code": "industry_code",
    "firm_founded_year": "founded_year", "firm_niche_entry_year": "niche_entry_year",
    "firm_parent_id": "parent_id", "firm_parent_employees": "parent_employees",
    "firm_parent_revenue": "parent_revenue", "firm_state_share": "state_share",
    "firm_listed_board": "listed_board",
}
PATENT_INPUTS = {"patent_owner": "firm_id", "patent_kind": "kind", "patent_filed": "filed",
                 "patent_granted": "granted", "patent_lapsed": "lapsed", "patent_ipc": "ipc"}
FINANCIAL_COLUMNS = (
    "revenue", "main_revenue", "net_profit", "total_assets", "total_liabilities", "rd_expense",
    "export_revenue", "equity_raised", "subsidies", "domestic_share", "employees", "rd_staff",
    "domestic_rank", "global_rank", "rd_institution", *FINANCIAL_BOOLEANS,
)
FUNCTIONS: dict[str, Callable] = {
    **NODES, **{n: s.function for n, s in FEATURES.items() if s.function is not None}
}
PARAMS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(fn).parameters) for name, fn in FUNCTIONS.items()
}


def feature_names() -> list[str]:
    """Names of all features: registered ones in registry order, then rule results."""
    return [*FEATURES, *rule_feature_catalogue()["name"]]


def split_lag(name: str) -> tuple[str, int]:
    for suffix, lag in LAGS.items():
        if suffix and name.endswith(suffix):
            return name[: -len(suffix)], lag
    return name, 1


def as_of_cutoff(year: int) -> np.datetime64:
    """t-01-01: features as of ``year`` know only what happened before it."""
    return np.datetime64(f"{int(year)}-01-01")


def fiscal_years_read(years: np.ndarray, year: int) -> np.ndarray:
    """(n,) bool: which financials rows (fiscal ``years``) the features as of ``year`` read,
    the fiscal years t-4 .. t-1 of LAGS."""
    return (years >= year - max(LAGS.values())) & (years <= year - 1)


def patents_read(filed: np.ndarray, cutoff: np.datetime64) -> np.ndarray:
    """(n,) bool: which patents (``filed`` dates) the features as of ``cutoff`` read, those
    filed before it."""
    return filed < cutoff


class _FinancialInputs:
    """Lazily scatters one financials column of one fiscal year onto the scored firms."""

    def __init__(self, fin: pd.DataFrame, year: int, firm_ids: pd.Index):
        years = fin["year"].to_numpy()
        rows = np.flatnonzero(fiscal_years_read(years, year))
        pos = positions_in(fin["firm_id"].iloc[rows], firm_ids)
        keep = pos >= 0
        self.fin, self.index = fin, pd.RangeIndex(len(firm_ids))
        self.rows, self.pos, self.lag = rows[keep], pos[keep], year - years[rows[keep]]

    def has(self, name: str) -> bool:
        return split_lag(name)[0] in FINANCIAL_COLUMNS

    def get(self, name: str) -> pd.Series:
        column, lag = split_lag(name)
        sel = self.lag == lag
        rows, pos = self.rows[sel], self.pos[sel]
        n = len(self.index)
        if column not in self.fin.columns:  # an optional column the source did not have
            values = pd.Series(np.nan, index=self.index)
            return values.astype("category") if column in FINANCIAL_TEXT else values
        source = self.fin[column]
        if column in FINANCIAL_TEXT:
            # Categorical: a few distinct labels, mapped once instead of per firm.
            codes, labels = pd.factorize(source.array.take(rows))
            out = np.full(n, -1, dtype=np.int64)
            out[pos] = codes
            return pd.Series(pd.Categorical.from_codes(out, categories=labels), index=self.index)
        out = np.full(n, np.nan)
        if isinstance(source.dtype, np.dtype):
            out[pos] = source.to_numpy()[rows]
        else:
            out[pos] = source.array.take(rows).to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(out, index=self.index)


def _categorical_rows(column: pd.Series, rows: np.ndarray, categories=None) -> pd.Categorical:
    """``column[rows]`` as a Categorical, factorising the whole column (no string copies)."""
    codes, uniques = pd.factorize(column)
    if categories is None:
        return pd.Categorical.from_codes(codes[rows], categories=uniques)
    lookup = np.append(pd.Index(categories).get_indexer(np.asarray(uniques, dtype=object)), -1)
    return pd.Categorical.from_codes(lookup[codes[rows]], categories=categories)


def _patent_inputs(pat: pd.DataFrame, cutoff: np.datetime64, firm_ids: pd.Index) -> dict:
    filed = pat["filed"].to_numpy()
    owner = positions_in(pat["firm_id"], firm_ids)
    rows = np.flatnonzero(patents_read(filed, cutoff) & (owner >= 0))

    def dates(column: str) -> np.ndarray:
        values = pat[column].to_numpy()[rows]
        # Blank every date from the as-of year on: not known at t-1-12-31.
        return np.where(values < cutoff, values, np.datetime64("NaT"))

    return {
        "patent_owner": owner[rows],
        "patent_kind": _categorical_rows(pat["kind"], rows, patents.KINDS),
        "patent_filed": filed[rows],
        "patent_granted": dates("granted"),
        "patent_lapsed": dates("lapsed"),
        "patent_ipc": _categorical_rows(pat["ipc"], rows),
    }


def _firm_inputs(firms: pd.DataFrame, firm_ids: pd.Index) -> dict:
    pos = positions_in(firms["firm_id"], firm_ids)
    source_row = np.full(len(firm_ids), -1, dtype=np.int64)
    found = np.flatnonzero(pos >= 0)
    source_row[pos[found]] = found
    index = pd.RangeIndex(len(firm_ids))
    inputs = {
        name: pd.Series(firms[col].array.take(source_row, allow_fill=True), index=index)
        for name, col in FIRM_INPUTS.items() if col in firms.columns
    }
    inputs["firm_known"] = pd.Series(source_row >= 0, index=index)
    return inputs


def _certification_inputs(certs: pd.DataFrame, year: int, firm_ids: pd.Index) -> pd.DataFrame:
    known = certs[certs["year"] < year]
    pos = positions_in(known["firm_id"], firm_ids)
    return known.assign(pos=pos)[pos >= 0]


def _firm_id_index(fin: pd.DataFrame, year: int, firm_ids) -> pd.Index:
    if firm_ids is None:
        ids = fin.loc[fin["year"] == year - 1, "firm_id"].drop_duplicates().sort_values()
    else:
        ids = firm_ids if isinstance(firm_ids, (pd.Series, pd.Index)) else list(firm_ids)
        ids = pd.Series(ids, dtype=getattr(ids, "dtype", "str")).drop_duplicates()
    return pd.Index(ids.to_numpy() if ids.dtype == object else ids.array, name="firm_id")


# A few firms (an API request): a node whose inputs are all per-firm labels (text, codes,
# flags: a province, an industry code, a listing board) is answered from a memo of its
# outputs per distinct input values, kept for the life of the process. Every node is a
# pure per-firm function, so equal inputs give equal outputs; labels come back from request
# to request (34 provinces, a few hundred industry codes), while on one firm pandas costs
# tens of microseconds per call whatever the size, most of what such a node spends.
# Numbers (float inputs) are not memoised: they rarely repeat.
FEW_FIRMS = 16
_MEMO_SIZE = 50_000
_NODE_MEMO: dict[tuple, Any] = {}


def _label_key(value: Any) -> tuple | None:
    """A memo key of one input of a node on a few firms, or None if it is not labels: the
    as-of year, the firms' positions, a Series of labels, or the few firms' titles (a small
    frame: most firms hold none; a missing number in it only makes the key never match)."""
    if isinstance(value, int):  # the as-of year
        return (value,)
    if isinstance(value, pd.RangeIndex):  # the firms' positions
        return ("positions", len(value))
    if isinstance(value, pd.DataFrame):
        if len(value) > FEW_FIRMS:
            return None
        return (tuple(value.columns), tuple(map(str, value.dtypes)),
                tuple(value.itertuples(index=False, name=None)))
    if not isinstance(value, pd.Series) or value.dtype.kind == "f":
        return None
    return (value.dtype, tuple(value.tolist()))


class _Resolver:
    """Evaluates nodes by name: cached, each parameter resolved recursively."""

    def __init__(self, inputs: dict[str, Any], financial: _FinancialInputs, n_firms: int):
        self.values: dict[str, Any] = dict(inputs)
        self.financial = financial
        self.few = n_firms <= FEW_FIRMS
        # id of an input -> (the input, kept alive so that its id is not reused; its key)
        self.keys: dict[int, tuple[Any, tuple | None]] = {}

    def _key(self, value: Any) -> tuple | None:
        """`_label_key` of an input, once per input object (several nodes read the same)."""
        if id(value) not in self.keys:
            self.keys[id(value)] = (value, _label_key(value))
        return self.keys[id(value)][1]

    def __call__(self, name: str, stack: tuple[str, ...] = ()) -> Any:
        if name in self.values:
            return self.values[name]
        if name in stack:
            raise ValueError(f"cycle in feature graph: {' -> '.join(stack + (name,))}")
        fn = FUNCTIONS.get(name)
        if fn is not None:
            kwargs = {p: self(p, stack + (name,)) for p in PARAMS[name]}
            value = self._memoised(name, fn, kwargs) if self.few else fn(**kwargs)
        elif self.financial.has(name):
            value = self.financial.get(name)
        else:
            raise KeyError(f"no input or feature function named {name!r}")
        self.values[name] = value
        return value

    def _memoised(self, name: str, fn: Callable, kwargs: dict[str, Any]) -> Any:
        """fn(**kwargs), from the memo when every input is labels (a copy: callers may
        write into what they get)."""
        keys = [self._key(v) for v in kwargs.values()]
        if not keys or any(k is None for k in keys):
            return fn(**kwargs)
        key = (name, *keys)
        value = _NODE_MEMO.get(key)  # one lookup: another request's thread may clear it
        if value is None:
            value = fn(**kwargs)
            if not isinstance(value, (pd.Series, np.ndarray)):
                return value
            if len(_NODE_MEMO) >= _MEMO_SIZE:
                _NODE_MEMO.clear()
            _NODE_MEMO[key] = value
        return value.copy()


def build_features(dataset, year: int, firm_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Feature frame of as-of year ``year`` from data known by the end of ``year``-1.

    ``dataset``: any object with firms, financials, patents, certifications frames in the
    normalised format. ``firm_ids``: firms to score, in the order given, duplicates dropped
    (default: every firm with a financials row for ``year``-1, sorted). Returns one row per
    firm, index ``firm_id``, columns in :func:`feature_names` order: float64 (NaN =
    unknown) and fixed-category ``category``. Internally features are computed on positional
    arrays (firm row i = i-th firm id), so no step hashes firm ids more than once.
    """
    year = int(year)
    fin = dataset.financials
    firm_ids = _firm_id_index(fin, year, firm_ids)
    cutoff = as_of_cutoff(year)
    inputs: dict[str, Any] = {
        "year": year,
        "cutoff": cutoff,
        "firm_index": pd.RangeIndex(len(firm_ids)),
        "certifications_known": _certification_inputs(dataset.certifications, year, firm_ids),
        **_firm_inputs(dataset.firms, firm_ids),
        **_patent_inputs(dataset.patents, cutoff, firm_ids),
    }
    resolve = _Resolver(inputs, _FinancialInputs(fin, year, firm_ids), len(firm_ids))
    columns: dict[str, Any] = {}
    for name, spec in FEATURES.items():
        value = resolve(name)
        if spec.kind == "category":
            columns[name] = value.array if isinstance(value, pd.Series) else value
        else:
            columns[name] = np.asarray(value, dtype="float64")
    base = _frame_of(columns, firm_ids)
    # One frame of the base and rule columns (no concat of two frames).
    return _frame_of({**columns, **rule_feature_columns(base)}, firm_ids)


def _frame_of(columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """The frame of `columns` (name -> float64 (n,) array or Categorical) as the frame
    constructor makes it (the floats in one block, each Categorical in its own), built from
    those blocks: the constructor checks and infers each of 130 columns, about a
    millisecond for a one-firm request."""
    values = list(columns.values())
    numeric = [i for i, v in enumerate(values) if isinstance(v, np.ndarray)]
    blocks = []
    if numeric:
        matrix = np.empty((len(numeric), len(index)), dtype=np.float64)
        for row, i in enumerate(numeric):
            matrix[row] = values[i]
        blocks.append((matrix, np.array(numeric, dtype=np.intp)))
    blocks += [(v, np.array([i], dtype=np.intp)) for i, v in enumerate(values)
               if not isinstance(v, np.ndarray)]
    return create_dataframe_from_blocks(blocks, index=index, columns=pd.Index(list(columns)))


@dataclass
class Panel:
    """Training or scoring panel of one tier.

    X: features (index aligned with keys); y: label Series (int64 0/1) when every year is
    labelled, float64 with NaN for unlabelled years when mixed, None when none is labelled;
    keys: firm_id, year; rejects: candidates that could not be scored.
    """

    X: pd.DataFrame
    y: pd.Series | None
    keys: pd.DataFrame
    rejects: pd.DataFrame
    tier: str = ""


def _labels(label: pd.Series) -> pd.Series | None:
    if len(label) and label.isna().all():
        return None
    if label.notna().all():
        return label.astype("int64").rename("label")
    return label.rename("label")


def asof_panel(dataset, year: int, tier: str, review: bool = False,
               keep: Callable[[pd.DataFrame], Any] | None = None) -> Panel:
    """Candidates of ``tier`` for as-of ``year`` with their features and labels; with
    ``review``, the holders whose ``tier`` title is up for re-review in ``year`` instead
    (features.panel.review_panel; label 1 = renewed). ``keep(keys)``: (n_rows,) bool mask
    of the keys (firm_id, year, label) to build, e.g. a training sample; the others' features
    are never computed (default: every row)."""
    keys, rejects = (review_panel if review else candidate_panel)(dataset, year, tier)
    if keep is not None:
        keys = keys[np.asarray(keep(keys), dtype=bool)].reset_index(drop=True)
    # keys hold each firm once, so the frame comes back in keys order.
    X = build_features(dataset, year, firm_ids=keys["firm_id"])
    X.index = keys.index
    years = (reviewed_years if review else labelled_years)(dataset.certifications, tier)
    y = _labels(keys["label"]) if int(year) in years else None
    return Panel(X, y, keys[["firm_id", "year"]].copy(), rejects, tier)


def stack_panels(dataset, years: Iterable[int], tier: str,
                 progress: Callable[[int, int], Any] | None = None,
                 review: bool = False,
                 keep: Callable[[pd.DataFrame], Any] | None = None) -> Panel:
    """As-of panels of ``years`` concatenated (for training; ``review``: the re-review
    panels, ``keep``: the rows of each year to build, see `asof_panel`);
    ``progress(year, n_rows)`` is called after each year."""
    panels = []
    for year in years:
        panel = asof_panel(dataset, year, tier, review=review, keep=keep)
        panels.append(panel)
        if progress is not None:
            progress(int(year), len(panel.keys))
    if not panels:
        raise ValueError("stack_panels needs at least one year")
    X = pd.concat([p.X for p in panels], ignore_index=True)
    keys = pd.concat([p.keys for p in panels], ignore_index=True)
    rejects = pd.concat([p.rejects for p in panels], ignore_index=True)
    if all(p.y is None for p in panels):
        y = None
    else:
        parts = [p.y.astype("float64") if p.y is not None
                 else pd.Series(np.nan, index=p.keys.index) for p in panels]
        y = _labels(pd.concat(parts, ignore_index=True))
    return Panel(X, y, keys, rejects, tier)


class AsOfFeatures(TransformerMixin, BaseEstimator):
    """sklearn transformer: keys (firm_id, year) -> as-of feature frame.

    Stateless (features depend only on the dataset and the as-of year), so ``fit`` only
    records the output names. ``transform(keys)`` returns the features of each key's firm
    as of the key's year, index = ``keys.index``.
    """

    def __init__(self, dataset=None):
        self.dataset = dataset

    def fit(self, X: pd.DataFrame, y=None) -> AsOfFeatures:
        self.feature_names_in_ = np.asarray(["firm_id", "year"], dtype=object)
        self.n_features_in_ = 2
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for year, rows in X.groupby("year", sort=True):
            codes, unique_ids = pd.factorize(rows["firm_id"])
            frame = build_features(self.dataset, int(year), firm_ids=unique_ids)
            part = frame.iloc[codes]
            part.index = rows.index
            parts.append(part)
        if not parts:
            return build_features(self.dataset, 2000, firm_ids=[]).set_axis(X.index[:0])
        return pd.concat(parts).reindex(X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(feature_names(), dtype=object)
