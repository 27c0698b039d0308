"""Evaluating a rulebook over a feature frame: statuses, scores, eligibility and gaps.

Missing data and criteria on data outside the contract are ``unknown``, never ``fail``; see
features/rules/engine.py for the strict vs on-data readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from features.rules.engine import (
    FAIL,
    PASS,
    STATUSES,
    UNKNOWN,
    Columns,
    NodeEvaluator,
    ScoreResult,
    evaluate_score,
)
from features.rules.gaps import GapWriter
from features.rules.registry import load_rulebook
from features.rules.types import Criterion, Rulebook, ScorePass, iter_nodes

_STATUS_VALUE = np.array([0.0, np.nan, 1.0])  # fail, unknown, pass as model features


# One dtype for every status column: from_codes with categories would validate them again
# for each of the ~50 columns of a rulebook (most of a one-firm evaluation).
STATUS_DTYPE = pd.CategoricalDtype(STATUSES, ordered=True)


def _status(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, dtype=STATUS_DTYPE)


@dataclass
class RuleResult:
    """Outcome of one rulebook over many firms; every frame is indexed like the input.

    criteria / criteria_on_data: one categorical column per criterion id.
    pillars: ``<pillar>_pass_share`` (share of the pillar's criteria passed, 0..1) and, where
      scored, ``<pillar>_points`` / ``<pillar>_points_max``.
    score: ``score`` (points certain from known data), ``score_max_possible`` (plus the most
      unknown items could add), ``score_threshold`` and categorical ``score_status``; NaN when
      the rulebook has no score.
    eligible: strict overall status; eligible_on_data: undocumented alternatives assumed absent
      and wholly qualitative criteria left aside.

    The evaluation keeps the int8 status codes (fail 0 < unknown 1 < pass 2) per criterion
    id (``codes``, ``codes_on_data``) and builds each frame above on first use: the rule
    features and the failure lists read the codes, so a one-firm evaluation builds no frame
    it does not need (pandas costs tens of microseconds per column, whatever the rows).
    """

    rulebook: Rulebook
    index: pd.Index
    codes: dict[str, np.ndarray]
    codes_on_data: dict[str, np.ndarray]
    pillar_values: dict[str, np.ndarray]
    score_result: ScoreResult | None
    eligible_codes: np.ndarray
    eligible_on_data_codes: np.ndarray
    # The memoised node evaluations behind the statuses, reused for the gap texts so a
    # frame's rules are evaluated once.
    evaluator: NodeEvaluator | None = field(default=None, repr=False, compare=False)

    @cached_property
    def criteria(self) -> pd.DataFrame:
        return _frame(self.codes, self.index)

    @cached_property
    def criteria_on_data(self) -> pd.DataFrame:
        return _frame(self.codes_on_data, self.index)

    @cached_property
    def pillars(self) -> pd.DataFrame:
        return pd.DataFrame(self.pillar_values, index=self.index)

    @cached_property
    def score(self) -> pd.DataFrame:
        return _score_frame(self.rulebook, self.score_result, self.index)

    @cached_property
    def eligible(self) -> pd.Series:
        return pd.Series(_status(self.eligible_codes), index=self.index, name="eligible")

    @cached_property
    def eligible_on_data(self) -> pd.Series:
        return pd.Series(_status(self.eligible_on_data_codes), index=self.index,
                         name="eligible_on_data")

    def as_features(self, prefix: str = "") -> pd.DataFrame:
        """float64 frame: 1.0 pass / 0.0 fail / NaN unknown per criterion (plus ``__on_data``
        twins for criteria with undocumented alternatives), score, score_max_possible and the
        two eligibility statuses, columns named ``{prefix}{criterion id}`` / ``{prefix}{code}_*``."""
        return pd.DataFrame(self.feature_columns(prefix), index=self.index)

    def feature_columns(self, prefix: str = "") -> dict[str, np.ndarray]:
        """`as_features`' columns as name -> float64 (n,) array, in its order."""
        code = self.rulebook.code
        cols: dict[str, np.ndarray] = {}
        for c in self.rulebook.criteria:
            cols[f"{prefix}{c.id}"] = _STATUS_VALUE[self.codes[c.id]]
            if _differs_on_data(c):
                cols[f"{prefix}{c.id}__on_data"] = _STATUS_VALUE[self.codes_on_data[c.id]]
        s, nan = self.score_result, np.full(len(self.index), np.nan)
        cols[f"{prefix}{code}_score"] = nan if s is None else np.asarray(s.lo)
        cols[f"{prefix}{code}_score_max_possible"] = nan.copy() if s is None else np.asarray(s.hi)
        cols[f"{prefix}{code}_eligible"] = _STATUS_VALUE[self.eligible_codes]
        cols[f"{prefix}{code}_eligible_on_data"] = _STATUS_VALUE[self.eligible_on_data_codes]
        return cols


def _differs_on_data(c: Criterion) -> bool:
    return bool(c.qualitative_parts) and not c.qualitative


def _frame(codes: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame({k: _status(v) for k, v in codes.items()}, index=index)


def _score_frame(rb: Rulebook, s: ScoreResult | None, index: pd.Index) -> pd.DataFrame:
    n = len(index)
    if s is None:
        nan = np.full(n, np.nan)
        return pd.DataFrame(
            {
                "score": nan,
                "score_max_possible": nan,
                "score_threshold": nan,
                "score_status": pd.Categorical([np.nan] * n, dtype=STATUS_DTYPE),
            },
            index=index,
        )
    # The threshold is NaN where it depends on an unknown province.
    threshold = np.where(s.threshold_lo == s.threshold_hi, s.threshold_lo, np.nan)
    return pd.DataFrame(
        {
            "score": s.lo,
            "score_max_possible": s.hi,
            "score_threshold": threshold,
            "score_status": _status(s.status),
        },
        index=index,
    )


def _evaluator(features: pd.DataFrame, rb: Rulebook) -> NodeEvaluator:
    cols = Columns(features)
    score = evaluate_score(rb.score, cols) if rb.score is not None else None
    return NodeEvaluator(cols, score)


def evaluate(features: pd.DataFrame, rulebook: Rulebook | str) -> RuleResult:
    """Evaluate every criterion of ``rulebook`` for every row of ``features`` (vectorised).

    features: one row per firm with the columns of the feature contract (float64, NaN =
    unknown; ``province`` as a 2-digit string); absent columns count as unknown.
    """
    rb = load_rulebook(rulebook) if not isinstance(rulebook, Rulebook) else rulebook
    ev = _evaluator(features, rb)
    n = len(features)
    strict = {c.id: ev.codes(c.node) for c in rb.criteria}
    # Wholly qualitative criteria stay unknown in the on-data reading (nothing to assume away).
    on_data = {
        c.id: strict[c.id] if c.qualitative else ev.codes(c.node, on_data=True) for c in rb.criteria
    }

    def overall(codes: dict[str, np.ndarray], skip_qualitative: bool) -> np.ndarray:
        use = [
            codes[c.id]
            for c in rb.criteria
            if c.required and not (skip_qualitative and c.qualitative)
        ]
        return np.minimum.reduce(use) if use else np.full(n, PASS, dtype=np.int8)

    pillar_cols: dict[str, np.ndarray] = {}
    for pillar in dict.fromkeys(c.pillar for c in rb.criteria):
        members = [strict[c.id] == PASS for c in rb.criteria if c.pillar == pillar]
        pillar_cols[f"{pillar}_pass_share"] = np.mean(members, axis=0) if n else np.zeros(0)
    if ev.score is not None:
        for pillar in ev.score.pillar_lo:
            pillar_cols[f"{pillar}_points"] = ev.score.pillar_lo[pillar]
            pillar_cols[f"{pillar}_points_max"] = ev.score.pillar_hi[pillar]

    return RuleResult(
        rulebook=rb,
        index=features.index,
        codes=strict,
        codes_on_data=on_data,
        pillar_values=pillar_cols,
        score_result=ev.score,
        eligible_codes=overall(strict, False),
        eligible_on_data_codes=overall(on_data, True),
        evaluator=ev,
    )


def _ids_per_row(mask: np.ndarray, ids: np.ndarray) -> list[list[str]]:
    """Per row of the (n, criteria) mask, the ids where it is set: a list per distinct row
    of the mask (few: firms fail in a few typical ways), copied for each row."""
    if mask.shape[0] == 0:
        return []
    if mask.shape[1] == 0:
        return [[] for _ in range(mask.shape[0])]
    if mask.shape[1] < 63:  # each row's bits as one integer: a 1-d unique is fast
        _, first, inverse = np.unique(mask.astype(np.int64) @ (1 << np.arange(mask.shape[1])),
                                      return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(mask, axis=0, return_index=True, return_inverse=True)
    lists = [ids[mask[row]].tolist() for row in first]
    return [lists[k].copy() for k in inverse.reshape(-1).tolist()]


def explain_failures(
    features: pd.DataFrame, rulebook: Rulebook | str, result: RuleResult | None = None
) -> pd.DataFrame:
    """Per firm (index of ``features``): ``eligible``, ``failed`` (ids of failed criteria),
    ``unknown`` (ids undecided), ``failed_on_data`` (undecided ids that only an undocumented
    alternative such as an award could still pass) and ``gaps``: a dict criterion id -> text for
    each id in failed + failed_on_data, in the firm's own units (CNY, years, counts, %)."""
    rb = load_rulebook(rulebook) if not isinstance(rulebook, Rulebook) else rulebook
    result = result if result is not None else evaluate(features, rb)
    strict, only_on_data = _failure_codes(result, rb, len(features))
    ids = np.array([c.id for c in rb.criteria], dtype=object)
    return pd.DataFrame(
        {
            "eligible": result.eligible.to_numpy(),
            "failed": _ids_per_row(strict == FAIL, ids),
            "unknown": _ids_per_row(strict == UNKNOWN, ids),
            "failed_on_data": _ids_per_row(only_on_data, ids),
            "gaps": _gaps(features, rb, result, strict, only_on_data),
        },
        index=features.index,
    )


def _failure_codes(result: RuleResult, rb: Rulebook, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, criteria) strict status codes, and the (n, criteria) mask of criteria undecided
    that fail on the data alone (only an undocumented alternative could pass them)."""
    if not rb.criteria:
        return np.zeros((n, 0), dtype=np.int8), np.zeros((n, 0), dtype=bool)
    strict = np.column_stack([result.codes[c.id] for c in rb.criteria])
    loose = np.column_stack([result.codes_on_data[c.id] for c in rb.criteria])
    only_on_data = (strict == UNKNOWN) & (loose == FAIL)
    only_on_data[:, [c.qualitative for c in rb.criteria]] = False
    return strict, only_on_data


def gap_columns(features: pd.DataFrame, rb: Rulebook, result: RuleResult, strict: np.ndarray,
                only_on_data: np.ndarray) -> dict[str, np.ndarray]:
    """criterion id -> object (n,) array: the gap text of each firm failing the criterion
    (strictly or on data), None elsewhere; only criteria some firm fails, in rulebook order."""
    ev = result.evaluator if result.evaluator is not None else _evaluator(features, rb)
    columns: dict[str, np.ndarray] = {}
    for j, c in enumerate(rb.criteria):
        for mask, on_data in ((strict[:, j] == FAIL, False), (only_on_data[:, j], True)):
            rows = np.flatnonzero(mask)
            if not len(rows):
                continue
            texts = GapWriter(ev, rb.score, on_data).texts(c.node, rows)
            if on_data:
                unless = ", ".join(q.label for q in c.qualitative_parts)
                texts = texts + f" (unless: {unless})"
            column = columns.setdefault(c.id, np.full(len(features), None, dtype=object))
            column[rows] = texts
    return columns


def gaps_per_row(columns: dict[str, np.ndarray], n: int) -> list[dict[str, str]]:
    """`gap_columns` as one dict per firm (criterion id -> text, in rulebook order)."""
    gaps: list[dict[str, str]] = [{} for _ in range(n)]
    for cid, column in columns.items():
        rows = np.flatnonzero(np.not_equal(column, None))
        for r, t in zip(rows.tolist(), column[rows].tolist()):
            gaps[r][cid] = t
    return gaps


def _gaps(features: pd.DataFrame, rb: Rulebook, result: RuleResult, strict: np.ndarray,
          only_on_data: np.ndarray) -> list[dict[str, str]]:
    """Per firm, criterion id -> gap text of each criterion failed (strictly or on data)."""
    return gaps_per_row(gap_columns(features, rb, result, strict, only_on_data), len(features))


@dataclass
class Assessment:
    """A tier's verdict under one rulebook for many firms, from one evaluation: what users
    read as eligibility, failed criteria and gaps (and what reasons quote).

    eligible: on-data eligibility (pass / fail / unknown; undocumented alternatives assumed
    absent, wholly qualitative criteria left aside), indexed like the features; result: the
    full RuleResult. Failures are kept by column (a national run reads them as columns):
    failed_mask, bool (n, 2 x criteria): criteria failed strictly, then those failed on the
    data alone; gap_columns: criterion id -> object (n,) gap texts (None: not failed). Per
    firm, built on first use: failed (ids of the criteria failed on the data, strict ones
    first) and gaps (criterion id -> gap text in the firm's units).
    """

    rulebook: Rulebook
    result: RuleResult
    eligible: pd.Series
    failed_mask: np.ndarray
    gap_columns: dict[str, np.ndarray]

    @property
    def failed_ids(self) -> np.ndarray:
        """The criterion id of each column of `failed_mask`."""
        ids = np.array([c.id for c in self.rulebook.criteria], dtype=object)
        return np.concatenate([ids, ids])

    @cached_property
    def failed(self) -> list[list[str]]:
        return _ids_per_row(self.failed_mask, self.failed_ids)

    @cached_property
    def gaps(self) -> list[dict[str, str]]:
        return gaps_per_row(self.gap_columns, len(self.eligible))


def assess(features: pd.DataFrame, rulebook: Rulebook | str) -> Assessment:
    """Evaluate ``rulebook`` once on ``features`` and explain the failures from the same
    evaluation (see :func:`evaluate`, :func:`explain_failures`)."""
    rb = load_rulebook(rulebook) if not isinstance(rulebook, Rulebook) else rulebook
    result = evaluate(features, rb)
    strict, only_on_data = _failure_codes(result, rb, len(features))
    # explain_failures' failed + failed_on_data, as one mask.
    failed = np.hstack([strict == FAIL, only_on_data])
    gaps = gap_columns(features, rb, result, strict, only_on_data)
    return Assessment(rb, result, result.eligible_on_data, failed, gaps)


def criteria_table(rulebook: Rulebook | str) -> pd.DataFrame:
    """The rulebook's criteria as rows (id, pillar, names, features, units, confirmed, source)."""
    rb = load_rulebook(rulebook) if not isinstance(rulebook, Rulebook) else rulebook
    return pd.DataFrame(
        [
            {
                "id": c.id,
                "tier": c.tier,
                "pillar": c.pillar,
                "pillar_zh": c.pillar_zh,
                "name_zh": c.name_zh,
                "name_en": c.name_en,
                "features": ", ".join(c.features),
                "unit": c.unit,
                "uses_score": any(isinstance(x, ScorePass) for x in iter_nodes(c.node)),
                "qualitative": c.qualitative,
                "required": c.required,
                "confirmed": c.confirmed,
                "note": c.note,
                "source": c.source,
            }
            for c in rb.criteria
        ]
    )
