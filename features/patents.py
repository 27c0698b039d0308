"""Patent features as of t-1-12-31 (as-of year t).

Row-level inputs, one entry per patent right of a scored firm, filed before t-01-01:
``patent_owner`` (int positions into ``firm_index``), ``patent_kind`` (Categorical over
KINDS), ``patent_filed``/``patent_granted``/``patent_lapsed`` (datetime64 arrays, NaT =
empty), ``patent_ipc`` (Categorical of the raw IPC strings). ``cutoff`` is t-01-01: a date counts only if it is before it,
so a patent filed in t-1 but granted in t is pending, and a lapse in t has not happened.
Counts are float64 and 0 for firms without patents (known); shares are NaN there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalogue import feature, node
from features.sectors import strategic_ipc_prefixes

GROUP = "patents"
KINDS = ["invention", "utility", "design", "software"]
CLASS2_KINDS = ("utility", "design", "software")
# Knowledge stock loses ~15% of its value a year: the depreciation rate conventional in
# patent-stock and R&D-capital studies (Griliches; Hall, Jaffe & Trajtenberg 2005), so an
# old right weighs less than a recent one of the same kind.
PATENT_DEPRECIATION = 0.85
PENDING_WINDOW_YEARS = 3
DAYS_PER_YEAR = 365.25


def _count(owner: np.ndarray, mask: np.ndarray, firm_index: pd.Index) -> pd.Series:
    counts = np.bincount(owner[mask], minlength=len(firm_index)).astype("float64")
    return pd.Series(counts, index=firm_index)


def _weighted(owner: np.ndarray, weights: np.ndarray, firm_index: pd.Index) -> pd.Series:
    sums = np.bincount(owner, weights=weights, minlength=len(firm_index)).astype("float64")
    return pd.Series(sums, index=firm_index)


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    return part / whole.where(whole > 0)


# --- row-level nodes --------------------------------------------------------------------

@node
def patent_is_granted(patent_granted: np.ndarray, cutoff: np.datetime64) -> np.ndarray:
    return patent_granted < cutoff


@node
def patent_is_lapsed(patent_lapsed: np.ndarray, cutoff: np.datetime64) -> np.ndarray:
    return patent_lapsed < cutoff


@node
def patent_is_valid(patent_is_granted: np.ndarray, patent_is_lapsed: np.ndarray) -> np.ndarray:
    return patent_is_granted & ~patent_is_lapsed


@node
def patent_is_pending(
    patent_filed: np.ndarray, patent_is_granted: np.ndarray, patent_is_lapsed: np.ndarray,
    cutoff: np.datetime64, year: int,
) -> np.ndarray:
    # Applications older than the window without a grant are most likely refused or
    # withdrawn (examination rarely takes longer), so they do not count as pending.
    window_start = np.datetime64(f"{year - PENDING_WINDOW_YEARS}-01-01")
    return (
        (patent_filed < cutoff) & (patent_filed >= window_start)
        & ~patent_is_granted & ~patent_is_lapsed
    )


@node
def patent_ipc_subclass(patent_ipc: pd.Categorical) -> tuple[np.ndarray, np.ndarray]:
    """(per-row code into the subclass list or -1, subclass list): IPC cut to 4 characters."""
    # Normalise the few distinct codes, not the millions of rows.
    codes, uniques = patent_ipc.codes, patent_ipc.categories
    subclass = pd.Series(uniques).astype("str").str.strip().str.upper().str.slice(0, 4)
    subclass = subclass.where(subclass.str.len() > 0)
    sub_codes, sub_uniques = pd.factorize(subclass)
    lookup = np.append(sub_codes, -1)  # codes == -1 (missing IPC) picks the trailing -1
    return lookup[codes], np.asarray(sub_uniques, dtype=object)


def _granted_since(patent_granted: np.ndarray, patent_is_granted: np.ndarray, year: int,
                   years: int) -> np.ndarray:
    return patent_is_granted & (patent_granted >= np.datetime64(f"{year - years}-01-01"))


# --- stock of valid rights --------------------------------------------------------------

def _valid_of_kind(kind: str, owner, valid, kinds, firm_index) -> pd.Series:
    return _count(owner, valid & (kinds == kind), firm_index)


@feature(GROUP, "count", "新 Class I IP", pillar="innovation",
         label_en="valid invention patents", label_zh="有效发明专利数")
def valid_invention_patents(patent_owner, patent_is_valid, patent_kind, firm_index):
    """invention patents granted by t-1-12-31 and not lapsed by then"""
    return _valid_of_kind("invention", patent_owner, patent_is_valid, patent_kind, firm_index)


@feature(GROUP, "count", "新 Class II IP", pillar="innovation",
         label_en="valid utility models", label_zh="有效实用新型专利数")
def valid_utility_patents(patent_owner, patent_is_valid, patent_kind, firm_index):
    """utility models granted by t-1-12-31 and not lapsed by then"""
    return _valid_of_kind("utility", patent_owner, patent_is_valid, patent_kind, firm_index)


@feature(GROUP, "count", "新 Class II IP; 2018 little giant design patents", pillar="innovation",
         label_en="valid design patents", label_zh="有效外观设计专利数")
def valid_design_patents(patent_owner, patent_is_valid, patent_kind, firm_index):
    """design patents granted by t-1-12-31 and not lapsed by then"""
    return _valid_of_kind("design", patent_owner, patent_is_valid, patent_kind, firm_index)


@feature(GROUP, "count", "新 Class II IP", pillar="innovation",
         label_en="software copyrights", label_zh="软件著作权数")
def valid_software_copyrights(patent_owner, patent_is_valid, patent_kind, firm_index):
    """software copyrights registered by t-1-12-31 and not lapsed by then"""
    return _valid_of_kind("software", patent_owner, patent_is_valid, patent_kind, firm_index)


@feature(GROUP, "count", "新 Class I IP", pillar="innovation",
         label_en="Class I IP", label_zh="I类知识产权数")
def class1_ip(valid_invention_patents: pd.Series) -> pd.Series:
    """Class I IP rights: valid invention patents"""
    return valid_invention_patents


@feature(GROUP, "count", "新 Class II IP", pillar="innovation",
         label_en="Class II IP", label_zh="II类知识产权数")
def class2_ip(valid_utility_patents, valid_design_patents, valid_software_copyrights):
    """Class II IP rights: valid utility models + designs + software copyrights"""
    return valid_utility_patents + valid_design_patents + valid_software_copyrights


@feature(GROUP, "count", "新 IP", pillar="innovation",
         label_en="valid IP rights", label_zh="有效知识产权总数")
def valid_ip_total(class1_ip: pd.Series, class2_ip: pd.Series) -> pd.Series:
    """all valid IP rights at t-1-12-31"""
    return class1_ip + class2_ip


@feature(GROUP, "weighted count", "新 IP", pillar="innovation",
         label_en="depreciated patent stock", label_zh="折旧后知识产权存量")
def patent_stock_depreciated(patent_owner, patent_is_valid, patent_filed, cutoff, firm_index):
    """valid rights weighted by 0.85 ** (years since filing at t-1-12-31)"""
    age_days = (cutoff - patent_filed[patent_is_valid]) / np.timedelta64(1, "D")
    weights = PATENT_DEPRECIATION ** (age_days / DAYS_PER_YEAR)
    return _weighted(patent_owner[patent_is_valid], weights, firm_index)


@feature(GROUP, "fraction", "新 Class I IP", pillar="innovation",
         label_en="invention patent share", label_zh="发明专利占比")
def invention_share(valid_invention_patents: pd.Series, valid_ip_total: pd.Series) -> pd.Series:
    """valid invention patents / all valid rights (NaN without valid rights)"""
    return _share(valid_invention_patents, valid_ip_total)


# --- flows ------------------------------------------------------------------------------

@feature(GROUP, "count", "", pillar="innovation",
         label_en="IP rights granted in 1 year", label_zh="近1年新授权知识产权数")
def new_grants_1y(patent_owner, patent_granted, patent_is_granted, year, firm_index):
    """rights granted in t-1"""
    return _count(patent_owner, _granted_since(patent_granted, patent_is_granted, year, 1),
                  firm_index)


@feature(GROUP, "count", "", pillar="innovation",
         label_en="IP rights granted in 2 years", label_zh="近2年新授权知识产权数")
def new_grants_2y(patent_owner, patent_granted, patent_is_granted, year, firm_index):
    """rights granted in t-2 .. t-1"""
    return _count(patent_owner, _granted_since(patent_granted, patent_is_granted, year, 2),
                  firm_index)


@feature(GROUP, "count", "", pillar="innovation",
         label_en="IP rights granted in 3 years", label_zh="近3年新授权知识产权数")
def new_grants_3y(patent_owner, patent_granted, patent_is_granted, year, firm_index):
    """rights granted in t-3 .. t-1"""
    return _count(patent_owner, _granted_since(patent_granted, patent_is_granted, year, 3),
                  firm_index)


@feature(GROUP, "count", "", pillar="innovation",
         label_en="invention patents granted in 3 years", label_zh="近3年新授权发明专利数")
def new_invention_grants_3y(
    patent_owner, patent_granted, patent_is_granted, patent_kind, year, firm_index
):
    """invention patents granted in t-3 .. t-1"""
    recent = _granted_since(patent_granted, patent_is_granted, year, 3)
    return _count(patent_owner, recent & (patent_kind == "invention"), firm_index)


@feature(GROUP, "count", "", pillar="innovation",
         label_en="pending applications", label_zh="在审专利申请数")
def pending_applications(patent_owner, patent_is_pending, firm_index):
    """applications filed in t-3 .. t-1 and not granted by t-1-12-31"""
    return _count(patent_owner, patent_is_pending, firm_index)


@feature(GROUP, "count", "", pillar="innovation",
         label_en="pending invention applications", label_zh="在审发明专利申请数")
def pending_invention_applications(patent_owner, patent_is_pending, patent_kind, firm_index):
    """invention applications filed in t-3 .. t-1 and not granted by t-1-12-31"""
    return _count(patent_owner, patent_is_pending & (patent_kind == "invention"), firm_index)


@feature(GROUP, "fraction", "", pillar="innovation",
         label_en="IP lapse rate", label_zh="知识产权失效率")
def lapse_rate(patent_owner, patent_is_granted, patent_is_lapsed, firm_index):
    """rights lapsed by t-1-12-31 / rights ever granted by then"""
    granted = _count(patent_owner, patent_is_granted, firm_index)
    lapsed = _count(patent_owner, patent_is_granted & patent_is_lapsed, firm_index)
    return _share(lapsed, granted)


# --- technology profile -----------------------------------------------------------------

@feature(GROUP, "count", "", pillar="innovation",
         label_en="IPC subclass diversity", label_zh="专利IPC小类数")
def ipc_diversity(patent_owner, patent_is_valid, patent_ipc_subclass, firm_index):
    """distinct IPC subclasses (4 characters) among valid rights"""
    codes, subclasses = patent_ipc_subclass
    has_ipc = patent_is_valid & (codes >= 0)
    width = max(len(subclasses), 1)
    pairs = np.sort(patent_owner[has_ipc].astype(np.int64) * width + codes[has_ipc])
    first = np.ones(len(pairs), dtype=bool)
    first[1:] = pairs[1:] != pairs[:-1]
    return pd.Series(np.bincount(pairs[first] // width, minlength=len(firm_index))
                     .astype("float64"), index=firm_index)


@feature(GROUP, "fraction", "品 strategic technology", pillar="sector",
         label_en="strategic technology share", label_zh="战略性技术领域专利占比")
def strategic_ipc_share(patent_owner, patent_is_valid, patent_ipc_subclass, firm_index):
    """share of valid rights with an IPC code that fall in a strategic IPC class"""
    codes, subclasses = patent_ipc_subclass
    has_ipc = patent_is_valid & (codes >= 0)
    prefixes = strategic_ipc_prefixes()
    strategic_code = np.array([str(u).startswith(prefixes) for u in subclasses] + [False])
    owner = patent_owner[has_ipc]
    strategic = strategic_code[codes[has_ipc]]
    with_ipc = _count(owner, np.ones(len(owner), dtype=bool), firm_index)
    return _share(_count(owner, strategic, firm_index), with_ipc)
