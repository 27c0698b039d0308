"""Rule results as features: the 2022 rulebooks evaluated on the base feature frame.

The models see, per criterion, pass (1.0), fail (0.0) or unknown (NaN), the Specialized
SME score and each tier's eligibility. The 2022 rulebooks serve as one fixed lens for every
as-of year, so a feature means the same thing in every training year; criteria resting
wholly on data outside the contract (always unknown) are left out.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from features.rules import evaluate, load_rulebook

PREFIX = "rule_"
RULEBOOK_YEAR = "2022"
TIERS = ("specialized", "little_giant", "champion")


@lru_cache(maxsize=1)
def _rulebooks() -> tuple:
    return tuple(load_rulebook(RULEBOOK_YEAR, tier=tier) for tier in TIERS)


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
