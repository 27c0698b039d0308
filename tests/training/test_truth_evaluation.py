"""The check against the generator's truth with a tier the channel model did not model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.audit_run import evaluate_against_truth


def test_a_tier_without_p_non_merit_is_evaluated_on_the_other_scores():
    rng = np.random.default_rng(0)
    n = 40
    anomalies = pd.DataFrame({
        "firm_id": [f"f{i}" for i in range(n)], "year": 2024,
        "tier": ["little_giant"] * 20 + ["champion"] * 20,
        "anomaly_score": rng.random(n), "rule_failures": rng.integers(0, 3, n),
        "full_probability": rng.random(n),
        "p_non_merit": np.r_[rng.random(20), np.full(20, np.nan)]})
    truth = anomalies[["firm_id", "tier", "year"]].assign(
        event="granted", channel=np.where(np.arange(n) % 4 == 0, "favour", "merit"),
        true_p_non_merit=rng.random(n))
    table = evaluate_against_truth(anomalies, truth)
    methods = table.groupby("tier")["method"].apply(set)
    assert "p_non_merit" in methods["little_giant"] and "p_non_merit" not in methods["champion"]
    assert {"audit", "oracle"} <= methods["champion"]
    assert table["average_precision"].notna().all()
