"""Reason codes: the criteria and measures that pushed each firm's score up or down, in words.

    reasons = reason_codes(X, model.contributions(X), n=3, assessment=assess(X, rulebook))
    reasons.loc[firm, "reasons_for"]
    # "R&D intensity 7.2%: above the 6% bar for its revenue band, higher than 91% of
    #  candidates; subsidiary of a large group (5,200 employees); ..."

Contributions (SHAP values, additive) are first summed per **reason group**, so one fact
is one reason:

- a measure and the model's rule results on it (``rule_lg22_main_share`` onto
  ``main_share``), and the measures that state the same fact (``log_revenue`` with
  ``revenue``);
- all measures of a criterion of the assessed rulebook that reads several
  (``domestic_share`` and ``domestic_rank`` under "domestic niche market share at least
  10%, or top 3 in China"), with the model's rule result on that criterion;
- the model's overall rule results (scores, eligibility) into one verdict reason.

Groups are ranked by their summed contribution; the n strongest each way are rendered.
The words of a measure are its value, its criterion's bar and its rank among the rows of X
(the cohort: models.reason_text). Every text that states a criterion's
outcome is checked against the assessment passed in (the same evaluation as the
eligibility and failed-criteria columns beside it); where the measure's own comparison
would read otherwise, the criterion's outcome is written instead. The verdict reason lists
only the failed criteria that no other reason of the firm already names.

Built for batch scoring (a million firms per tier): groups are chosen with one
`np.argpartition` over the group matrix, texts rendered per group (not per firm) and the
verdict per distinct set of failed criteria.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numba
import numpy as np
import pandas as pd

from features.rules.engine import FAIL, PASS
from models.cohort import as_cohort
from models.explain import RULE_PREFIX, rule_criterion
from models.reason_text import (
    NO_CLAIM,
    Home,
    criterion_homes,
    criterion_name,
    display_names,
    render,
    rulebook_thresholds,
    template,
)
from models.values import STRING, format_values, join_per_row

__all__ = ["VERDICT", "ReasonGroup", "criterion_texts", "display_names", "format_values",
           "reason_codes", "reason_groups", "reason_table", "rulebook_thresholds", "template"]

VERDICT = "rulebook_verdict"  # the group of the model's overall rule results
SEPARATOR = "; "
MAX_VALUES = 3  # measures quoted in one criterion's reason
MAX_LISTED = 2  # failed criteria listed by name in the verdict before "and N more"
_OUTCOME = {FAIL: "not met", PASS: "met"}


@dataclass(frozen=True)
class ReasonGroup:
    """Contribution columns read as one reason.

    key: a measure's name, ``criterion:<id>`` or VERDICT; kind: "measure", "criterion" or
    "verdict"; measure: the measure a "measure" group renders; home: the measure's criterion
    in the assessed rulebook, or the criterion of a "criterion" group (None: none);
    columns: the contribution columns summed into the group.
    """

    key: str
    kind: str
    measure: str | None
    home: Home | None
    columns: tuple[str, ...]

    @property
    def criterion(self):
        return self.home.criterion if self.home is not None else None


def _representatives(measures: list[str]) -> dict[str, str]:
    """measure -> the measure its fact is told by: measures with the same label state the
    same fact (``log_revenue`` and ``revenue``); the one not on a log scale tells it."""
    by_label: dict[str, list[str]] = {}
    for m in measures:
        by_label.setdefault(template(m)["label"], []).append(m)
    out = {}
    for same in by_label.values():
        teller = min(same, key=lambda m: template(m)["format"].endswith("_log"))
        out.update(dict.fromkeys(same, teller))
    return out


@cache
def reason_groups(columns: tuple[str, ...], rulebook=None) -> tuple[ReasonGroup, ...]:
    """The reason groups of contribution `columns` (``bias`` excluded by the caller) under
    `rulebook` (a features.rules.Rulebook; None: no criteria, measures only)."""
    homes = criterion_homes(rulebook) if rulebook is not None else {}
    teller = _representatives([c for c in columns if not c.startswith(RULE_PREFIX)])

    def key_of(measure: str) -> tuple[str, str, str | None, Home | None]:
        measure = teller.get(measure, measure)
        home = homes.get(measure)
        if home is not None and not home.single:
            return f"criterion:{home.criterion.id}", "criterion", None, home
        return measure, "measure", measure, home if home is not None and home.single else None

    members: dict[str, list[str]] = {}
    spec: dict[str, tuple] = {}
    for column in columns:
        if column.startswith(RULE_PREFIX):
            lens = rule_criterion(column)
            keys = {key_of(m) for m in lens.features} if lens is not None else set()
            found = keys.pop() if len(keys) == 1 else (VERDICT, "verdict", None, None)
        else:
            found = key_of(column)
        spec.setdefault(found[0], found)
        members.setdefault(found[0], []).append(column)
    return tuple(ReasonGroup(*spec[k], columns=tuple(members[k])) for k in members)


# ---------------------------------------------------------------------------------------
# Texts of the three kinds of group

def _statuses(assessment) -> tuple[np.ndarray, list]:
    """(rows x criteria int8 on-data statuses, criteria) of the assessed rulebook."""
    criteria = list(assessment.rulebook.criteria)
    codes = assessment.result.codes_on_data  # the statuses' codes, no frame of them
    if not criteria:
        return np.zeros((len(assessment.result.index), 0), dtype=np.int8), criteria
    return np.column_stack([codes[c.id] for c in criteria]).astype(np.int8), criteria


def criterion_texts(criterion, X: pd.DataFrame, rows: np.ndarray,
                    status: np.ndarray) -> np.ndarray:
    """"domestic niche market share at least 10%, or top 3 in China: not met (national niche
    market share 0.9%; number 20 in its niche in China)" for the firms at `rows`, `status`
    being the criterion's on-data status of each (FAIL / UNKNOWN / PASS)."""
    n = len(rows)
    words = np.full(n, "undecided on its data", dtype=STRING)
    for code, word in _OUTCOME.items():
        words[status == code] = word
    out = np.strings.add(np.full(n, criterion_name(criterion) + ": ", dtype=STRING), words)
    for measures, at in _quoted_measures(criterion, X, rows):
        values = [render(m, X, rows[at])[0] for m in measures[:MAX_VALUES]]
        if values:
            joined = values[0]
            for v in values[1:]:
                joined = np.strings.add(np.strings.add(joined, ", "), v)
            out[at] = np.strings.add(np.strings.add(np.strings.add(out[at], " ("), joined), ")")
    return out


def _quoted_measures(criterion, X: pd.DataFrame, rows: np.ndarray):
    """[(measures, positions in rows)]: the measures a criterion reads for each firm; of a
    criterion by cases (R&D input by revenue band), those of the case that applies."""
    from features.rules.engine import Columns, NodeEvaluator
    from features.rules.types import AllOf, AnyOf, Cases, Leaf, iter_nodes

    cases = [node for node in iter_nodes(criterion.node) if isinstance(node, Cases)]
    which = np.zeros((len(rows), len(cases)), dtype=np.int64)
    if cases:
        evaluator = NodeEvaluator(Columns(X.iloc[rows]), None)
        for j, node in enumerate(cases):
            column = np.full(len(rows), -1)
            for i, case in enumerate(node.cases):
                column[(column < 0) & (evaluator.codes(case.when) == PASS)] = i
            which[:, j] = column
    signatures, inverse = np.unique(which, axis=0, return_inverse=True)

    def measures(node, chosen: dict) -> list[str]:
        if isinstance(node, Leaf):
            return list(node.features)
        if isinstance(node, (AllOf, AnyOf)):
            return [m for child in node.children for m in measures(child, chosen)]
        if isinstance(node, Cases):
            picked = chosen[id(node)]
            found = [m for case in node.cases for m in measures(case.when, chosen)]
            return found + (measures(node.cases[picked].then, chosen) if picked >= 0 else [])
        return []

    out = []
    for k, signature in enumerate(signatures):
        chosen = {id(node): int(i) for node, i in zip(cases, signature)}
        out.append((list(dict.fromkeys(measures(criterion.node, chosen))),
                    np.flatnonzero(inverse.ravel() == k)))
    return out


def _verdict_texts(assessment, rows: np.ndarray, named: np.ndarray, statuses: np.ndarray,
                   criteria: list) -> np.ndarray:
    """The assessed rulebook's overall verdict on the firms at `rows`; a failing firm's
    failed criteria are listed except those `named` (rows x criteria) by its other reasons."""
    out = np.full(len(rows), "", dtype=STRING)
    if assessment is None:
        out[:] = "overall rule outcome"
        return out
    name = assessment.rulebook.name_en
    overall = assessment.eligible.cat.codes.to_numpy()[rows]
    out[:] = f"{name}: undecided on its data"
    out[overall == PASS] = f"meets every criterion of the {name} that its data decides"
    fails = np.flatnonzero(overall == FAIL)
    if not len(fails) or not criteria:
        return out
    listed = (statuses[rows[fails]] == FAIL) & ~named[fails]
    bits = listed @ (1 << np.arange(len(criteria), dtype=np.int64))
    patterns, inverse = np.unique(bits, return_inverse=True)
    texts = []
    for pattern in patterns:
        names = [criterion_name(c) for j, c in enumerate(criteria) if pattern >> j & 1]
        if not names:
            texts.append(f"fails the {name} on the criteria named in these reasons")
            continue
        more = len(names) - MAX_LISTED
        texts.append(f"fails the {name}: " + ", ".join(names[:MAX_LISTED])
                     + (f" and {more} more" if more > 0 else ""))
    out[fails] = np.array(texts, dtype=STRING)[inverse.ravel()]
    return out


# ---------------------------------------------------------------------------------------
# Ranking and assembly

def _group_matrix(contributions: pd.DataFrame, groups) -> np.ndarray:
    """rows x groups: each group's summed contribution (SHAP values add up exactly); the
    columns no group names (the bias) are not read."""
    position = {c: i for i, c in enumerate(contributions.columns)}
    # Column-major, as pandas holds the frame: each group adds whole contiguous columns, in
    # column order (what numpy's row sum of a column-major selection does, to the bit).
    C = np.asfortranarray(contributions.to_numpy(dtype=np.float64))
    out = np.empty((len(C), len(groups)), order="F")
    for j, g in enumerate(groups):
        idx = [position[c] for c in g.columns]
        total = out[:, j]
        total[:] = C[:, idx[0]]
        for i in idx[1:]:
            total += C[:, i]
    out[np.isnan(out)] = 0.0
    return out


@numba.njit(cache=True, nogil=True)
def _strongest(C: np.ndarray, k: int) -> np.ndarray:
    """rows x 2k group indices: per row the k largest strictly positive entries of C
    (largest first), then the k most negative (most negative first); -1 fills the slots
    left when fewer push that way. Ties go to the lower column. One pass over each row
    keeping the k best so far: no sort of the whole row."""
    n, n_groups = C.shape
    out = np.full((n, 2 * k), -1, dtype=np.int64)
    best = np.empty(k)
    for i in range(n):
        for side in range(2):
            sign = 1.0 if side == 0 else -1.0
            found = 0
            for j in range(n_groups):
                v = sign * C[i, j]
                if v <= 0.0 or (found == k and v <= best[k - 1]):
                    continue
                at = min(found, k - 1)
                while at > 0 and best[at - 1] < v:
                    best[at] = best[at - 1]
                    out[i, side * k + at] = out[i, side * k + at - 1]
                    at -= 1
                best[at] = v
                out[i, side * k + at] = j
                found = min(found + 1, k)
    return out


def _arrow_texts(texts: np.ndarray):
    """StringDType texts as an Arrow large_string array."""
    import pyarrow as pa

    return pa.array(texts.astype(object), type=pa.large_string())


def _join(rows: np.ndarray, slots: np.ndarray, texts, n: int):
    """Per row of n, its non-empty `texts` (an Arrow large_string array; entries at `rows`,
    `slots`) "; "-joined in slot order, "" where none (a pandas ``str`` array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = pc.binary_length(texts).to_numpy() > 0
    joined = join_per_row(rows[keep], texts.filter(keep), n, SEPARATOR, within=slots[keep])
    return pd.array(pa.chunked_array([joined]), dtype="str")


def _slots(X: pd.DataFrame, contributions: pd.DataFrame, n: int, assessment, cohort):
    """((rows, slots, texts) of the chosen reasons, chosen group rows x 2k (-1: empty),
    groups, k): the k = min(n, groups) reasons for (slots 0..k-1), then the k against
    (slots k..2k-1), of every row of X; texts are an Arrow large_string array, one per
    (row, slot) entry (each group's StringDType texts converted once, then concatenated
    by Arrow)."""
    rulebook = assessment.rulebook if assessment is not None else None
    if not contributions.index.equals(X.index):
        contributions = contributions.reindex(X.index)
    # The bias column is in no group: the groups name the feature columns, the matrix reads
    # them by position (no copy of the frame without it).
    groups = reason_groups(tuple(c for c in contributions.columns if c != "bias"), rulebook)
    C = _group_matrix(contributions, groups)
    k = min(n, len(groups))
    chosen = _strongest(C, k) if k else np.zeros((len(C), 0), dtype=np.int64)
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if assessment is not None:
        statuses, criteria = _statuses(assessment)
    else:
        statuses, criteria = np.zeros((len(X), 0), dtype=np.int8), []
    column_of = {c.id: j for j, c in enumerate(criteria)}
    named = np.zeros((len(X), len(criteria)), dtype=bool)
    rows_all, slot_all = np.nonzero(chosen >= 0)
    group_all = chosen[rows_all, slot_all]
    # The (row, slot) entries of each chosen group, by one sort (not a mask per group).
    by_group = np.argsort(group_all, kind="stable")
    present, starts = np.unique(group_all[by_group], return_index=True)
    # A frame cohort is summarised once, for the measures the chosen reasons quote.
    cohort = as_cohort(cohort, [groups[g].measure for g in present if groups[g].kind == "measure"])
    verdict_at = None
    for g, at in zip(present, np.split(by_group, starts[1:])):
        rows, slot = rows_all[at], slot_all[at]
        group = groups[g]
        if group.kind == "verdict":
            verdict_at = (rows, slot)
            continue
        j = column_of.get(group.criterion.id) if group.criterion is not None else None
        status = statuses[rows, j] if j is not None else None
        if group.kind == "criterion":
            out = (criterion_texts(group.criterion, X, rows, status) if status is not None
                   else render(group.columns[0], X, rows)[0])
            claims = np.full(len(rows), status is not None)
        else:
            out, implied = render(group.measure, X, rows, group.home if j is not None else None,
                                  cohort)
            claims = implied != NO_CLAIM
            if status is not None:
                # The measure's own comparison never contradicts its criterion's outcome.
                differs = claims & (implied != status)
                if differs.any():
                    out[differs] = criterion_texts(group.criterion, X, rows[differs],
                                                   status[differs])
        entries.append((rows, slot, out))
        if j is not None:
            named[rows[claims], j] = True
    if verdict_at is not None:
        rows, slot = verdict_at
        entries.append((rows, slot, _verdict_texts(assessment, rows, named[rows], statuses,
                                                   criteria)))
    if not entries:
        entries.append((np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp),
                        np.zeros(0, dtype=STRING)))
    import pyarrow as pa

    rows, slot, texts = zip(*entries)
    texts = pa.concat_arrays([_arrow_texts(t) for t in texts])
    return (np.concatenate(rows), np.concatenate(slot), texts), chosen, groups, k


def reason_codes(X: pd.DataFrame, contributions: pd.DataFrame, n: int = 3,
                 assessment=None, cohort: pd.DataFrame | None = None) -> pd.DataFrame:
    """The n reasons pushing each firm's score up and the n pushing it down, as text.

    X: feature frame (rows x features); contributions: SHAP values of the same rows (same index; a ``bias``
    column is ignored), e.g. `TierModel.contributions(X)`; assessment: the
    `features.rules.Assessment` of the same rows under the rulebook shown to the user, whose
    bars, outcomes and verdict are quoted (None: no bars, a neutral verdict label);
    cohort: the year's candidates of the tier (a models.cohort.Cohort or their feature
    frame), among whom each measure is
    placed ("higher than 80% of candidates"; None: not placed). Returns a frame indexed like X with str columns ``reasons_for`` and
    ``reasons_against``: "; "-joined reasons, strongest first, empty when nothing pushes
    that way.
    """
    (rows, slot, texts), _, _, k = _slots(X, contributions, n, assessment, cohort)
    up = slot < k
    return pd.DataFrame({
        "reasons_for": _join(rows[up], slot[up], texts.filter(up), len(X)),
        "reasons_against": _join(rows[~up], slot[~up], texts.filter(~up), len(X)),
    }, index=X.index)


def reason_table(X: pd.DataFrame, contributions: pd.DataFrame, n: int = 3,
                 assessment=None, cohort: pd.DataFrame | None = None) -> pd.DataFrame:
    """The reasons of `reason_codes` one per row: ``row`` (position in X), ``side`` ("for" /
    "against"), ``order`` (0 = strongest), ``group`` (key), ``kind``, ``criterion`` (id of
    the assessed rulebook's criterion the group belongs to, "" if none) and ``text``."""
    entries, chosen, groups, k = _slots(X, contributions, n, assessment, cohort)
    texts = np.full(chosen.shape, "", dtype=STRING)
    texts[entries[0], entries[1]] = entries[2].to_numpy(zero_copy_only=False)
    rows, slot = np.nonzero(chosen >= 0)
    picked = [groups[g] for g in chosen[rows, slot]]
    return pd.DataFrame({
        "row": rows, "side": np.where(slot < k, "for", "against"), "order": slot % max(k, 1),
        "group": [g.key for g in picked], "kind": [g.kind for g in picked],
        "criterion": [g.criterion.id if g.criterion is not None else "" for g in picked],
        "text": texts[rows, slot].astype(object),
    })
