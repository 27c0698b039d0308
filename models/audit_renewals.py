"""Renewals that look anomalous: titles renewed at re-review although the firm fails the
criteria in force.

A re-review re-checks the criteria of the rulebook in force in its year; a renewal whose
firm fails one of them on its own data (fiscal *t−1*) was kept for another reason. Each
renewal of a re-review panel (features.pipeline.stack_panels(..., review=True), label 1 =
renewed) is judged by the tier's rulebook in force in its year, with the same MERICS flags
as the audited selections (models.audit_flags). The rulebook's title-status conditions
(pillar "status": hold a Specialized SME title, not already a Champion) are entry
conditions that a holder's own titles decide, not what a re-review re-checks, so they are
left aside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models import audit_flags as af

GAP_SEPARATOR = " | "
STATUS_PILLAR = "status"  # entry conditions on titles held, left aside at re-review
RENEWAL_COLUMNS = [
    "firm_id", "name", "province_en", "province_zh", "industry_code", "year", "tier",
    "fails_rules_in_force", "rulebook", "failed_criteria", "rule_failures", "gaps",
    *af.SHORTFALL_FLAGS, "falls_short",
]


def audit_renewals(X: pd.DataFrame, keys: pd.DataFrame, y, tier: str) -> pd.DataFrame:
    """The renewals among re-reviewed firm-years, each judged by the rulebook in force.

    X: feature frame (n, features) of the re-review panel; keys: firm_id and year (n rows);
    y: (n,) 1 renewed, 0 revoked or lapsed. Returns one row per renewal with firm_id, year,
    tier, fails_rules_in_force (1 where the firm fails a criterion of the rulebook in force
    on its data, title-status conditions left aside), rulebook (id), failed_criteria
    ("; "-joined ids of those criteria), rule_failures (their count), gaps ("id: gap text",
    " | "-joined), the SHORTFALL_FLAGS and falls_short (any flag); the failing renewals
    first, most failed criteria first.
    """
    renewed = np.flatnonzero(np.asarray(y, dtype=float) == 1)
    Xr = X.iloc[renewed]
    years = keys["year"].to_numpy()[renewed]
    verdicts = af.assessments_in_force(Xr, years, tier)
    flags = af.shortfall_flags(Xr, tier, af.rd_ip_failures(verdicts, len(renewed)))
    rulebook = np.empty(len(renewed), dtype=object)
    failed: list[list[str]] = [[] for _ in range(len(renewed))]
    gaps = np.full(len(renewed), "", dtype=object)
    for rows, verdict in verdicts.values():
        rulebook[rows] = verdict.rulebook.id
        status = {c.id for c in verdict.rulebook.criteria if c.pillar == STATUS_PILLAR}
        for row, ids, gap in zip(rows, verdict.failed, verdict.gaps):
            failed[row] = [c for c in ids if c not in status]
            gaps[row] = GAP_SEPARATOR.join(f"{k}: {v}" for k, v in gap.items()
                                           if k in failed[row])
    out = pd.DataFrame({
        "firm_id": keys["firm_id"].to_numpy()[renewed], "year": years, "tier": tier,
        "fails_rules_in_force": np.array([bool(f) for f in failed], dtype="int64"),
        "rulebook": rulebook,
        "failed_criteria": ["; ".join(f) for f in failed],
        "rule_failures": np.array([len(f) for f in failed], dtype="int64"),
        "gaps": gaps,
        **{c: flags[c].to_numpy() for c in af.SHORTFALL_FLAGS},
        "falls_short": flags[list(af.SHORTFALL_FLAGS)].max(axis=1).to_numpy(),
    })
    return out.sort_values(["fails_rules_in_force", "rule_failures", "year", "firm_id"],
                           ascending=[False, False, True, True], ignore_index=True)
