"""The domain's definitions, each in exactly one place.

Tiers and title events, when a title is valid, who is a candidate of a tier, what an SME
and a large group are, which rulebook lens the models see, and the reject written for a
candidate without financials for the as-of year. Every other module imports these; none
restates them. The rulebook in force for a tier and year lives with the rulebooks
(``features.rules.rulebook_in_force``), since it is read from their in-force dates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

# --- tiers and titles ---------------------------------------------------------------------

# The cultivation ladder, lowest first (DATA_CONTRACT certifications.tier).
TIER_ORDER: tuple[str, ...] = ("innovative", "specialized", "little_giant", "champion")
# Tiers whose entry is predicted: the provincial Specialized SME lists, the MIIT's Little
# Giant batches and the Single Champion lists.
TIERS: tuple[str, ...] = ("specialized", "little_giant", "champion")
TIER_NAMES: dict[str, tuple[str, str]] = {
    "innovative": ("Innovative SME", "创新型中小企业"),
    "specialized": ("Specialized SME", "专精特新中小企业"),
    "little_giant": ("Little Giant", "专精特新“小巨人”企业"),
    "champion": ("Manufacturing Single Champion", "制造业单项冠军企业"),
}
# Tiers whose lists provinces certify, each filling the places it is given (a province cannot
# raise its own count); Little Giants and Champions are national MIIT lists.
PROVINCIAL_LIST_TIERS: tuple[str, ...] = ("innovative", "specialized")
# Tiers whose titles are SME titles; a Single Champion may be any size.
SME_TIERS: tuple[str, ...] = ("innovative", "specialized", "little_giant")

EVENTS: tuple[str, ...] = ("granted", "renewed", "revoked")
TITLE_EVENTS: tuple[str, ...] = ("granted", "renewed")  # events that start a title's validity
TITLE_YEARS = 3  # a title announced in y is valid in y, y+1 and y+2

# A valid title of any of these tiers removes a firm from a tier's candidates. A Specialized
# SME candidate is any firm without a Specialized-or-higher title (a Little Giant is by rule
# already a Specialized SME); Little Giant and Champion candidates only lack that title.
EXCLUDING_TITLES: dict[str, tuple[str, ...]] = {
    "innovative": TIER_ORDER,
    "specialized": TIER_ORDER[1:],
    "little_giant": ("little_giant",),
    "champion": ("champion",),
}

# The rulebooks every as-of year is seen through by the models (rule-result features,
# the rulebook baseline, the audit's R&D and IP flags): one fixed lens, so a rule feature
# means the same thing in every training year. Eligibility shown to users uses the
# rulebook in force instead.
LENS_RULEBOOK_YEAR = "2022"


def check_tier(tier: str) -> None:
    """Raise ValueError for a tier that is not on the ladder."""
    if tier not in TIER_ORDER:
        raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIER_ORDER)}")


def holds_valid_title(
    certifications: pd.DataFrame, year: int, tier: str, key: str = "firm_id"
) -> pd.Series:
    """Whether each firm holds a valid ``tier`` title at the start of ``year``.

    Valid: the latest granted/renewed row of the tier is from the TITLE_YEARS - 1 years
    before ``year`` and no revoked row of the tier came after it. Rows of ``year`` and later
    are ignored (not yet announced). A revocation in the same year as the latest grant ends
    it: the order within a year is unknown, and a title cannot be revoked before it exists.

    Returns a bool Series indexed by firm_id (or by the column ``key``) over every firm in
    ``certifications`` (firms absent from it hold no title; reindex with
    ``fill_value=False``).
    """
    firm_ids, last_title, standing = _latest_title(certifications, year, tier, key)
    in_window = (last_title >= year - (TITLE_YEARS - 1)) & (last_title <= year - 1)
    return pd.Series(in_window & standing, index=firm_ids, name="holds_" + tier)


FEW_ROWS = 64  # a text column this short is compared as Python objects


def is_one_of(column: pd.Series, values: tuple[str, ...]) -> np.ndarray:
    """bool (n,): which cells of the text ``column`` are one of ``values`` (missing: no).
    A few rows (one firm's certifications) are compared as Python strings: pandas costs
    tens of microseconds per call whatever the length; many by pandas' vectorised isin."""
    if len(column) <= FEW_ROWS:
        # isinstance first: a missing cell (pd.NA) has no truth value to compare with.
        return np.array([isinstance(cell, str) and cell in values for cell in column.tolist()],
                        dtype=bool)
    return column.isin(values).to_numpy(dtype=bool, na_value=False)


def _latest_title(certifications: pd.DataFrame, year: int, tier: str,
                  key: str) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(every firm in ``certifications``, in order of appearance; the year of each one's
    latest granted/renewed ``tier`` row before ``year``, NaN if none; whether no revoked row
    of the tier came in or after that year). Rows of ``year`` and later are not yet
    announced."""
    check_tier(tier)
    # Latest year per firm by scatter-max over positions (-inf: none), on the columns'
    # arrays: the same answer without pandas' fixed cost per call (a one-firm request asks
    # four times).
    pos, firm_ids = pd.factorize(certifications[key], use_na_sentinel=False)
    firm_ids = pd.Index(firm_ids, name=key)
    years = certifications["year"].to_numpy(dtype=np.float64, na_value=np.nan)
    known = is_one_of(certifications["tier"], (tier,)) & (years < year)
    announced = known & is_one_of(certifications["event"], TITLE_EVENTS)
    revoked = known & is_one_of(certifications["event"], ("revoked",))

    def latest(rows: np.ndarray) -> np.ndarray:
        out = np.full(len(firm_ids), -np.inf)
        np.maximum.at(out, pos[rows], years[rows])
        return out

    last_title, last_revoked = latest(announced), latest(revoked)
    standing = ~(last_revoked >= last_title)  # -inf (never revoked) is before any title
    return firm_ids, np.where(np.isfinite(last_title), last_title, np.nan), standing


# --- re-reviews -----------------------------------------------------------------------------

RENEWED = "renewed"


def due_for_review(certifications: pd.DataFrame, year: int, tier: str,
                   key: str = "firm_id") -> pd.Series:
    """Whether each firm's ``tier`` title comes up for re-review in ``year``.

    Due: the latest granted/renewed row of the tier is from ``year`` - TITLE_YEARS (the
    title's three years end with ``year`` - 1) and no revoked row of the tier came in or
    after that year. Only rows announced before ``year`` are read, so the answer is known at
    the start of ``year``. Returns a bool Series indexed by firm_id (or the column ``key``)
    over every firm in ``certifications`` (reindex with ``fill_value=False``).
    """
    firm_ids, last_title, standing = _latest_title(certifications, year, tier, key)
    return pd.Series((last_title == year - TITLE_YEARS) & standing, index=firm_ids,
                     name="due_" + tier)


def review_outcome(certifications: pd.DataFrame, year: int, tier: str,
                   firm_ids) -> np.ndarray:
    """The re-review label of ``firm_ids`` (due in ``year``): 1.0 where a ``renewed`` row
    of the tier is announced in ``year``, 0.0 otherwise (revoked, or left to lapse).
    Shape (len(firm_ids),)."""
    check_tier(tier)
    rows = certifications[(certifications["tier"] == tier) & (certifications["year"] == year)
                          & (certifications["event"] == RENEWED)]
    return pd.Index(firm_ids).isin(rows["firm_id"]).astype("float64")


def reviewed_years(certifications: pd.DataFrame, tier: str) -> list[int]:
    """The years whose re-review outcomes of ``tier`` are in the data: years with a
    ``renewed`` row of the tier (the counterpart of `labelled_years`), sorted."""
    check_tier(tier)
    rows = certifications[(certifications["tier"] == tier)
                          & (certifications["event"] == RENEWED)]
    return sorted(int(y) for y in rows["year"].unique())


def labelled_years(certifications: pd.DataFrame, tier: str) -> list[int]:
    """The as-of years whose ``tier`` list is in the data: years with a ``granted`` row of
    the tier (the label of "What a prediction is"), sorted."""
    check_tier(tier)
    granted = certifications[(certifications["tier"] == tier)
                             & (certifications["event"] == "granted")]
    return sorted(int(y) for y in granted["year"].unique())


def founded_before(founded_year, year: int) -> np.ndarray:
    """Whether each firm was founded before ``year`` (NaN or missing founding: False); the
    founding part of candidacy, and who is owed a score (or a reject) as of ``year``."""
    founded = pd.to_numeric(pd.Series(np.asarray(founded_year, dtype=object)),
                            errors="coerce").to_numpy(dtype=np.float64)
    return founded < int(year)


def candidate_mask(founded_year, holds: Mapping[str, np.ndarray], year: int,
                   tier: str) -> np.ndarray:
    """Candidates of ``tier`` in as-of ``year`` (DATA_CONTRACT "What a prediction is").

    A candidate was founded before ``year`` and holds no valid title of EXCLUDING_TITLES
    [tier] at the start of ``year``. ``founded_year``: one value per firm (NaN or missing =
    unknown founding, not a candidate); ``holds``: title tier -> bool/0-1 array per firm,
    for at least the excluding tiers (NaN = no title known). Returns a bool array.
    """
    check_tier(tier)
    mask = founded_before(founded_year, year)
    for title in EXCLUDING_TITLES[tier]:
        held = np.asarray(holds[title], dtype=np.float64)
        mask &= ~(held == 1.0)
    return mask


# --- size -----------------------------------------------------------------------------------

# MIIT 2011 No. 300 (industry): a firm at or above both limits is large, not an SME.
SME_EMPLOYEES, SME_REVENUE = 1_000, 400e6


def is_large(employees, revenue) -> np.ndarray:
    """1.0 where a firm (or group) is at or above both 1,000 employees and 400M CNY revenue,
    0.0 where either figure is below its limit, NaN where the known figures cannot tell.

    This is the single definition of a large firm and of a large group (CRITERIA.md, SME
    size): the group of a subsidiary is large by the same rule, applied to the group.
    """
    emp = np.asarray(employees, dtype=np.float64)
    rev = np.asarray(revenue, dtype=np.float64)
    below = (emp < SME_EMPLOYEES) | (rev < SME_REVENUE)
    above = (emp >= SME_EMPLOYEES) & (rev >= SME_REVENUE)
    return np.where(below, 0.0, np.where(above, 1.0, np.nan))


def is_sme(employees, revenue) -> np.ndarray:
    """1.0 for an SME (below either limit), 0.0 for a large firm, NaN when undecided."""
    return 1.0 - is_large(employees, revenue)


# --- rejects -------------------------------------------------------------------------------

NO_FINANCIALS_TABLE, NO_FINANCIALS_COLUMN = "financials", "year"
NO_FINANCIALS_RULE = "financials_for_asof_year"
NO_FINANCIALS_REASON = "no financials for fiscal year {fy}"


def no_financials_rejects(firm_ids, year: int, tier: str | None = None) -> pd.DataFrame:
    """The reject rows of firms that cannot be scored as of ``year`` because they have no
    financials row for fiscal year ``year`` - 1 (counted, never dropped silently).

    One row per firm id: table "financials", column "year", row empty (the problem is a row
    that is missing, not a row of an input file), rule NO_FINANCIALS_RULE, the reason, the
    record as JSON, and firm_id, year and (when given) tier. Callers decide who is concerned
    (the candidates of a tier, or every firm founded before ``year``).
    """
    ids = pd.Series(np.asarray(firm_ids, dtype=object), dtype="str")
    n = len(ids)
    extra = {"year": int(year)} if tier is None else {"year": int(year), "tier": tier}
    # Vectorised JSON (a national run rejects hundreds of thousands of firms): escape the
    # two characters JSON requires inside strings, then concatenate.
    escaped = ids.str.replace("\\", "\\\\").str.replace('"', '\\"')
    records = '{"firm_id": "' + escaped + '", ' + json.dumps(extra, ensure_ascii=False)[1:]

    def text(value) -> pd.Series:
        return pd.Series(np.full(n, value, dtype=object), dtype="str")

    return pd.DataFrame({
        "table": text(NO_FINANCIALS_TABLE),
        "row": pd.Series(pd.NA, index=range(n), dtype="Int64"),
        "column": text(NO_FINANCIALS_COLUMN),
        "rule": text(NO_FINANCIALS_RULE),
        "reason": text(NO_FINANCIALS_REASON.format(fy=int(year) - 1)),
        "record": records.astype("str"),
        "firm_id": ids,
        "year": np.full(n, int(year), dtype="int64"),
        "tier": text(tier) if tier is not None else pd.Series(pd.NA, index=range(n), dtype="str"),
    })
