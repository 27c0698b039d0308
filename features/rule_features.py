"""Rule results as features: the lens rulebooks evaluated once on the base feature frame.

The models see, per criterion, pass (1.0), fail (0.0) or unknown (NaN), the Specialized
SME score and each tier's eligibility. The rulebooks of LENS_RULEBOOK_YEAR (2022) serve as
one fixed lens for every as-of year, so a feature means the same thing in every training
year; criteria resting wholly on data outside the contract (always unknown) are left out.

These columns are the only evaluation of the lens: the rulebook baseline and the audit's
flags read them back with :func:`lens_outcomes` instead of evaluating the rules again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from features.domain import LENS_RULEBOOK_YEAR, TIER_NAMES, TIERS
from features.rules import Rulebook, evaluate, load_rulebook

PREFIX = "rule_"


@lru_cache(maxsize=1)
def _rulebooks() -> tuple:
    return tuple(load_rulebook(LENS_RULEBOOK_YEAR, tier=tier) for tier in TIERS)


def lens_rulebook(tier: str) -> Rulebook:
    """The lens rulebook of ``tier`` (the one the rule-result features evaluate)."""
    for rulebook in _rulebooks():
        if rulebook.tier == tier:
            return rulebook
    raise KeyError(f"no lens rulebook for tier {tier!r}")


@dataclass
class LensOutcome:
    """The lens rulebook's on-data reading of one tier, read back from the feature frame.

    eligible: 1.0 pass / 0.0 fail / NaN unknown per row; criteria: rows x criterion ids,
    same coding (wholly qualitative criteria are NaN: no data can decide them).
    """

    rulebook: Rulebook
    eligible: np.ndarray
    criteria: pd.DataFrame


def lens_outcomes(X: pd.DataFrame, tier: str) -> LensOutcome:
    """The tier's lens verdicts of the rows of feature frame ``X`` (built by the pipeline,
    so its ``rule_`` columns hold them): no rule is evaluated again."""
    rulebook = lens_rulebook(tier)
    nan = np.full(len(X), np.nan)

    def column(name: str) -> np.ndarray:
        return X[name].to_numpy(dtype=np.float64, na_value=np.nan) if name in X.columns else nan

    criteria = {}
    for c in rulebook.criteria:
        on_data = f"{PREFIX}{c.id}__on_data"
        criteria[c.id] = column(on_data if on_data in X.columns else f"{PREFIX}{c.id}")
    return LensOutcome(rulebook, column(f"{PREFIX}{rulebook.code}_eligible_on_data"),
                       pd.DataFrame(criteria, index=X.index))


def _kept(rulebook, columns) -> list[str]:
    """Drop wholly qualitative criteria and score columns of unscored rulebooks (always NaN)."""
    dropped = {f"{PREFIX}{c.id}" for c in rulebook.criteria if c.qualitative}
    if rulebook.score is None:
        dropped |= {f"{PREFIX}{rulebook.code}_score", f"{PREFIX}{rulebook.code}_score_max_possible"}
    return [c for c in columns if c not in dropped]


def rule_feature_columns(base: pd.DataFrame) -> dict[str, np.ndarray]:
    """name -> float64 (n,) array per kept rule output, rows as in `base`, in catalogue
    order (the feature pipeline puts them into its frame without a frame of their own)."""
    columns: dict[str, np.ndarray] = {}
    for rulebook in _rulebooks():
        evaluated = evaluate(base, rulebook).feature_columns(PREFIX)
        columns.update((name, evaluated[name]) for name in _kept(rulebook, evaluated))
    return columns


# Rulebook pillar of a criterion -> explanation pillar (features.catalogue.PILLARS): growth
# is scored under 专 and the chain criteria sit with it; status criteria are title history.
_RULEBOOK_PILLAR = {"specialization": "specialization", "refinement": "refinement",
                    "distinctiveness": "distinctiveness", "innovation": "innovation",
                    "size": "size", "chain": "specialization", "sector": "sector",
                    "growth": "specialization", "status": "history", "score": "rules"}
# Rule outputs that are no criterion: suffix after the rulebook code -> (label_en, label_zh).
_OUTPUT_LABELS = {
    "score": ("score", "评分"),
    "score_max_possible": ("highest score possible", "最高可能得分"),
    "eligible": ("eligible", "符合认定条件"),
    "eligible_on_data": ("eligible on the data", "按现有数据符合认定条件"),
}
ON_DATA_LABELS = (", on the data", "（按现有数据）")


def rule_pillar(criterion) -> str:
    """Explanation pillar of a rulebook criterion (its rulebook pillar mapped)."""
    return _RULEBOOK_PILLAR.get(criterion.pillar, "rules")


def _rulebook_labels(rulebook) -> tuple[str, str]:
    en, zh = TIER_NAMES.get(rulebook.tier, (rulebook.name_en, rulebook.name_zh))
    return f"{en} {rulebook.year}", f"{zh}（{rulebook.year}）"


def rule_feature_catalogue() -> pd.DataFrame:
    """Catalogue rows (name, group, pillar, label_en, label_zh, meaning, unit, kind, source,
    criterion) of rule features: pillar and labels from their criterion (rulebook outputs
    that are no criterion, such as the score and eligibility, are pillar "rules")."""
    rows = []
    for rulebook in _rulebooks():
        columns = evaluate(pd.DataFrame(index=pd.Index([], name="firm_id")), rulebook) \
            .as_features(PREFIX).columns
        by_id = {f"{PREFIX}{c.id}": c for c in rulebook.criteria}
        book_en, book_zh = _rulebook_labels(rulebook)
        for name in _kept(rulebook, columns):
            base_name = name.removesuffix("__on_data")
            criterion = by_id.get(base_name)
            if criterion is not None:
                meaning = f"{rulebook.id}: {criterion.name_en} ({criterion.name_zh})"
                label_en = f"{book_en}: {criterion.name_en}"
                label_zh = f"{book_zh}：{criterion.name_zh}"
                if name.endswith("__on_data"):
                    meaning += ", undocumented alternatives assumed absent"
                    label_en += ON_DATA_LABELS[0]
                    label_zh += ON_DATA_LABELS[1]
                source = ", ".join(criterion.features)
                reflects = f"{criterion.id} ({criterion.pillar_zh})"
                pillar = rule_pillar(criterion)
            else:
                suffix = name.removeprefix(f"{PREFIX}{rulebook.code}_")
                what = suffix.replace("_", " ")
                meaning = f"{rulebook.id}: {what}"
                what_en, what_zh = _OUTPUT_LABELS.get(suffix, (what, suffix))
                label_en, label_zh = f"{book_en}: {what_en}", f"{book_zh}：{what_zh}"
                source, reflects, pillar = "rule results", rulebook.id, "rules"
            unit = "points" if "score" in name and criterion is None else "1 pass / 0 fail / NaN unknown"
            rows.append({"name": name, "group": "rules", "pillar": pillar, "label_en": label_en,
                         "label_zh": label_zh, "meaning": meaning, "unit": unit,
                         "kind": "float", "source": source, "criterion": reflects})
    return pd.DataFrame(rows)
