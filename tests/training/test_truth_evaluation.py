"""The check against the generator's truth with a tier the channel model did not model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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


def test_province_agreement_compares_with_the_realised_effect_and_a_size_baseline():
    from types import SimpleNamespace

    from training.audit_run import province_effect_agreement

    provinces = ["11", "12", "13", "14", "15"]
    estimate = pd.DataFrame({"group": provinces, "excess": [0.1, 0.2, 0.3, 0.4, 0.5]})
    audits = {"specialized": SimpleNamespace(channels=SimpleNamespace(
        province_effects=estimate)), "champion": SimpleNamespace(channels=None)}
    interference = pd.Series([0.5, 0.4, 0.3, 0.2, 0.1], index=provinces)
    true = pd.DataFrame({"tier": "specialized", "province": provinces,
                         "candidates": [10, 20, 30, 40, 50],
                         "effect": [0.0, 0.1, 0.2, 0.3, float("nan")]})
    row = province_effect_agreement(audits, interference, true).set_index("tier")
    assert list(row.index) == ["specialized"]  # a tier not modelled has no effects
    row = row.loc["specialized"]
    assert row["with_interference"] == pytest.approx(-1.0)
    # The province whose candidates had no chance (NaN effect) is left out of the rest.
    assert row["with_true_effect"] == pytest.approx(1.0)
    assert row["ceiling"] == pytest.approx(-1.0)
    assert row["size_baseline"] == pytest.approx(-1.0)
    without = province_effect_agreement(audits, interference).set_index("tier")
    assert np.isnan(without.loc["specialized", "with_true_effect"])
