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

from features.domain import LENS_RULEBOOK_YEAR, TIERS
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


def _kept(rulebook, columns: pd.Index) -> list[str]:
    """Drop wholly qualitative criteria and score columns of unscored rulebooks (always NaN)."""
    dropped = {f"{PREFIX}{c.id}" for c in rulebook.criteria if c.qualitative}
    if rulebook.score is None:
        dropped |= {f"{PREFIX}{rulebook.code}_score", f"{PREFIX}{rulebook.code}_score_max_possible"}
    return [c for c in columns if c not in dropped]


def rule_features(base: pd.DataFrame) -> pd.DataFrame:
    """float64 frame indexed like `base`, one column per kept rule output."""
    parts = []
    for rulebook in _rulebooks():
        frame = evaluate(base, rulebook).as_features(PREFIX)
        parts.append(frame[_kept(rulebook, frame.columns)])
    return pd.concat(parts, axis=1)


def rule_feature_catalogue() -> pd.DataFrame:
    """Catalogue rows (name, group, meaning, unit, kind, source, criterion) of rule features."""
    rows = []
    for rulebook in _rulebooks():
        columns = evaluate(pd.DataFrame(index=pd.Index([], name="firm_id")), rulebook) \
            .as_features(PREFIX).columns
        by_id = {f"{PREFIX}{c.id}": c for c in rulebook.criteria}
        for name in _kept(rulebook, columns):
            base_name = name.removesuffix("__on_data")
            criterion = by_id.get(base_name)
            if criterion is not None:
                meaning = f"{rulebook.id}: {criterion.name_en} ({criterion.name_zh})"
                if name.endswith("__on_data"):
                    meaning += ", undocumented alternatives assumed absent"
                source = ", ".join(criterion.features)
                reflects = f"{criterion.id} ({criterion.pillar_zh})"
            else:
                what = name.removeprefix(f"{PREFIX}{rulebook.code}_").replace("_", " ")
                meaning = f"{rulebook.id}: {what}"
                source, reflects = "rule results", rulebook.id
            unit = "points" if "score" in name and criterion is None else "1 pass / 0 fail / NaN unknown"
            rows.append({"name": name, "group": "rules", "meaning": meaning, "unit": unit,
                         "kind": "float", "source": source, "criterion": reflects})
    return pd.DataFrame(rows)
