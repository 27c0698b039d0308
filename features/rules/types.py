"""Types of the rulebook model: condition trees, criteria, banded scores, rulebooks.

All are frozen and compare by identity, so evaluators can memoise per node object.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.domain import TIER_ORDER

RULEBOOK_DIR = Path(__file__).parent / "rulebooks"

PILLARS = {
    "specialization": "专",
    "refinement": "精",
    "distinctiveness": "特",
    "innovation": "新",
    "size": "规模",
    "chain": "链",
    "sector": "品",
    "growth": "成长",
    "status": "资格",
    "score": "评价",
}
OPS = (">=", ">", "<=", "<", "==", "!=")
UNITS = ("fraction", "CNY", "count", "years", "flag", "rank")
TIERS = TIER_ORDER  # a rulebook may be of any tier of the ladder


@dataclass(frozen=True, eq=False)
class Gap:
    """How to express a failed ratio in the denominator's unit (CNY or count)."""

    numerator: str | None = None
    denominator: str | None = None
    noun: str = ""
    unit: str = "CNY"


@dataclass(frozen=True, eq=False)
class Leaf:
    """``sum(features) op threshold``; unknown where any feature is missing."""

    features: tuple[str, ...]
    op: str
    threshold: float
    unit: str
    label: str
    decimals: int = 1
    gap: Gap | None = None
    fail_text: str | None = None


@dataclass(frozen=True, eq=False)
class Qualitative:
    """A condition whose data is not in the feature contract: always unknown."""

    label: str
    data: str


@dataclass(frozen=True, eq=False)
class ScorePass:
    label: str


@dataclass(frozen=True, eq=False)
class AllOf:
    children: tuple


@dataclass(frozen=True, eq=False)
class AnyOf:
    children: tuple


@dataclass(frozen=True, eq=False)
class Case:
    label: str
    when: Any
    then: Any


@dataclass(frozen=True, eq=False)
class Cases:
    cases: tuple[Case, ...]


def iter_nodes(node):
    """Yield the node and all nodes below it, depth first."""
    yield node
    if isinstance(node, (AllOf, AnyOf)):
        for child in node.children:
            yield from iter_nodes(child)
    elif isinstance(node, Cases):
        for case in node.cases:
            yield from iter_nodes(case.when)
            yield from iter_nodes(case.then)


@dataclass(frozen=True, eq=False)
class Criterion:
    id: str
    tier: str
    pillar: str
    pillar_zh: str
    name_zh: str
    name_en: str
    node: Any
    source: str
    confirmed: bool
    note: str
    required: bool

    @property
    def qualitative(self) -> bool:
        """True when the whole criterion rests on data outside the contract."""
        return isinstance(self.node, Qualitative)

    @property
    def leaves(self) -> list[Leaf]:
        return [n for n in iter_nodes(self.node) if isinstance(n, Leaf)]

    @property
    def qualitative_parts(self) -> list[Qualitative]:
        return [n for n in iter_nodes(self.node) if isinstance(n, Qualitative)]

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for leaf in self.leaves for f in leaf.features))

    @property
    def unit(self) -> str:
        return "/".join(dict.fromkeys(leaf.unit for leaf in self.leaves)) or "qualitative"


@dataclass(frozen=True, eq=False)
class BandTable:
    """Points by bands of one feature; ``lo``/``hi`` hold one entry per band plus the else entry.

    ``bounds`` ascend. For >= / > the highest bound reached wins; for <= / < the lowest.
    A qualitative input has no feature and scores ``lo[-1]..hi[-1]``.
    """

    feature: str | None
    op: str
    bounds: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    data: str | None = None


@dataclass(frozen=True, eq=False)
class ScoreItem:
    id: str
    pillar: str
    pillar_zh: str
    name_zh: str
    name_en: str
    max: float
    combine: str
    cap: float | None
    inputs: tuple[BandTable, ...]


@dataclass(frozen=True, eq=False)
class Score:
    id: str
    name_zh: str
    name_en: str
    max: float
    threshold: float
    threshold_by_province: dict
    pillar_min: dict
    items: tuple[ScoreItem, ...]
    source: str
    confirmed: bool
    note: str


@dataclass(frozen=True, eq=False)
class Rulebook:
    id: str
    code: str
    year: str
    tier: str
    name_zh: str
    name_en: str
    source: str
    confirmed: bool
    note: str
    in_force_from: dt.date | None
    in_force_to: dt.date | None
    criteria: tuple[Criterion, ...]
    score: Score | None
    path: Path

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(f"{self.id} has no criterion {criterion_id!r}")


# The direction in which each comparison rewards its feature: ``x >= bar`` rewards more.
_DIRECTION = {">=": 1, ">": 1, "<=": -1, "<": -1}


def feature_directions(rulebooks) -> dict[str, int]:
    """{feature: +1 / -1 / 0}: the direction in which the published criteria and score items
    of ``rulebooks`` (their non-status criteria) reward each feature they read: +1 when every
    bar asks for more, -1 when every bar asks for less, 0 when bars disagree (a revenue band
    both from and below). ``x == 1`` of a 0/1 flag asks for more, ``x == 0`` for less."""
    seen: dict[str, set[int]] = {}
    for rb in rulebooks:
        for criterion in rb.criteria:
            if criterion.pillar == "status":
                continue
            for leaf in criterion.leaves:
                direction = _DIRECTION.get(leaf.op, 1 if leaf.threshold >= 1 else -1)
                for feature in leaf.features:
                    seen.setdefault(feature, set()).add(direction)
        for item in rb.score.items if rb.score is not None else ():
            for table in item.inputs:
                if table.feature:
                    seen.setdefault(table.feature, set()).add(_DIRECTION.get(table.op, 1))
    return {f: next(iter(d)) if len(d) == 1 else 0 for f, d in seen.items()}
