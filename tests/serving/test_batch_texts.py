"""The columns a national run writes, built per distinct text and joined by Arrow, are the
per-firm definitions: failed ids and gap texts joined firm by firm from the assessment's
per-firm lists and dicts, reasons joined firm by firm from their per-reason table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.domain import TIERS
from features.rules import assess, rulebook_in_force
from models.reasons import SEPARATOR, reason_codes, reason_groups, reason_table
from serving.output import CRITERIA_SEPARATOR, GAP_SEPARATOR, assessment_columns

YEAR = 2025


@pytest.fixture(scope="module")
def features(small_universe) -> pd.DataFrame:
    from features.contract import load_dataset
    from features.pipeline import build_features

    return build_features(load_dataset(small_universe), YEAR)


@pytest.mark.parametrize("tier", TIERS)
def test_failed_and_gap_columns_are_the_per_firm_joins(features, tier):
    verdict = assess(features, rulebook_in_force(tier, YEAR))
    expected_failed = [CRITERIA_SEPARATOR.join(f) for f in verdict.failed]
    expected_gaps = [GAP_SEPARATOR.join(f"{k}: {v}" for k, v in g.items()) for g in verdict.gaps]
    assert sum(map(len, verdict.gaps)) > len(features)  # firms fail in many ways
    for arrow in (False, True):
        columns = assessment_columns(tier, verdict, arrow=arrow)
        failed, gaps = columns[f"failed_{tier}"], columns[f"gaps_{tier}"]
        if arrow:
            failed, gaps = failed.to_pylist(), gaps.to_pylist()
        assert list(failed) == expected_failed
        assert list(gaps) == expected_gaps
        assert all(type(t) is str for t in gaps)


@pytest.mark.parametrize("tier", TIERS)
def test_joined_reasons_are_the_per_firm_joins_of_the_reason_table(features, tier):
    """Contributions drawn at random (a few measures dominate, as in a model): the joined
    columns are each firm's reasons of `reason_table`, strongest first, "; "-joined."""
    verdict = assess(features, rulebook_in_force(tier, YEAR))
    measures = [c for c in features.columns if pd.api.types.is_float_dtype(features[c])]
    rng = np.random.default_rng(3)
    contributions = pd.DataFrame(
        rng.standard_normal((len(features), len(measures))) * rng.random(len(measures)) ** 3,
        index=features.index, columns=measures)
    contributions.iloc[:5] = 0.0  # nothing pushes either way: empty reasons
    assert len(reason_groups(tuple(measures), verdict.rulebook)) > 6
    joined = reason_codes(features, contributions, 3, verdict, features)
    table = reason_table(features, contributions, 3, verdict, features)
    for side in ("for", "against"):
        rows = table[table["side"] == side].sort_values(["row", "order"])
        per_firm = [""] * len(features)
        for row, texts in rows.groupby("row")["text"]:
            per_firm[row] = SEPARATOR.join(t for t in texts if t)
        assert joined[f"reasons_{side}"].tolist() == per_firm
        assert joined[f"reasons_{side}"].iloc[:5].tolist() == [""] * 5
