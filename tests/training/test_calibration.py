"""Calibration of the synthetic universe against published figures (50,000 firms, seed 11)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.synthetic import generate_universe
from training.synthetic.calibration import TARGETS, calibration_report


@pytest.fixture(scope="module")
def universe() -> dict[str, pd.DataFrame]:
    return generate_universe(n_firms=50_000, seed=11)


@pytest.fixture(scope="module")
def report(universe) -> pd.DataFrame:
    return calibration_report(universe)


def test_report_has_one_row_per_metric(report):
    assert list(report.columns) == ["metric", "value", "low", "high", "ok"]
    assert report["metric"].tolist() == list(TARGETS)
    assert report["ok"].dtype == bool


def test_every_metric_is_within_its_published_range(report):
    failing = report.loc[~report["ok"]]
    assert failing.empty, f"\n{failing.to_string()}"


def test_non_merit_share_needs_truth(universe):
    without = calibration_report({k: v for k, v in universe.items() if k != "truth"})
    row = without.set_index("metric").loc["lg_non_merit_share"]
    assert np.isnan(row["value"]) and not row["ok"]


def _tiny_dataset() -> dict[str, pd.DataFrame]:
    firms = pd.DataFrame({"firm_id": ["A", "B"], "province": ["32", "62"],
                          "state_share": [0.0, 0.8]})
    financials = pd.DataFrame({"firm_id": ["A", "A", "B"], "year": [2021, 2022, 2021],
                               "revenue": [100.0, 200.0, 100.0], "rd_expense": [6.0, 1.0, 10.0],
                               "employees": [100, 900, 300]})
    day = pd.to_datetime
    patents = pd.DataFrame({
        "patent_id": list("pqrstu"), "firm_id": ["A"] * 5 + ["B"],
        "kind": ["invention", "invention", "invention", "invention", "utility", "invention"],
        "filed": day(["2018-01-01"] * 6),
        "granted": day(["2020-05-01", "2021-12-31", "2022-01-05", "2020-01-01", "2020-01-01",
                        None]),
        "lapsed": day([None, None, None, "2021-06-01", None, None]),
    })
    cert = pd.DataFrame({
        "firm_id": ["A", "B", "A", "B", "A", "B", "A"],
        "tier": ["specialized", "specialized", "little_giant", "little_giant", "specialized",
                 "specialized", "champion"],
        "year": [2020, 2020, 2022, 2022, 2023, 2023, 2024],
        "batch": [np.nan] * 7,
        "event": ["granted", "granted", "granted", "granted", "renewed", "revoked", "granted"],
    })
    truth = cert.assign(channel=["merit", "merit", "merit", "provincial", "merit", "merit",
                                 "merit"]).drop(columns="batch")
    return {"firms": firms, "financials": financials, "patents": patents,
            "certifications": cert, "truth": truth}


def test_metrics_on_a_hand_made_dataset():
    values = calibration_report(_tiny_dataset()).set_index("metric")["value"]
    # A: report of 2021 (R&D 6%), 2 inventions in force at 2021-12-31; B: 10%, none
    assert values["lg_median_rd_intensity"] == pytest.approx(0.08)
    assert values["lg_mean_valid_invention_patents"] == pytest.approx(1.0)
    assert values["lg_mean_employees"] == pytest.approx(200)
    assert values["lg_state_controlled_share"] == pytest.approx(0.5)
    assert values["lg_top6_province_share"] == pytest.approx(0.5)
    assert values["lg_non_merit_share"] == pytest.approx(0.5)
    # last year 2022: specialized A (2023 renewal is after the last fiscal year but counts
    # as announced >= 2020) and B revoked in 2023; little giants A and B
    assert values["specialized_to_lg_valid_ratio"] == pytest.approx(0.5)
    assert values["champion_from_lg_share"] == pytest.approx(1.0)
    assert values["lg_renewed_count"] == 0 and values["lg_revoked_count"] == 0
    # Specialized titles of 2020 re-reviewed in 2023: A renewed, B revoked.
    assert values["re_review_pass_rate"] == pytest.approx(0.5)
