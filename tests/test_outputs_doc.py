"""Every column a command writes is documented in docs/OUTPUTS.md, and nothing more."""

from __future__ import annotations

import pandas as pd

from features.contract import REJECT_COLUMNS
from features.domain import no_financials_rejects
from serving.check import check_to_file
from serving.output import output_columns
from tests.outputs_doc import documented, generic
from training.audit_run import ANOMALY_COLUMNS


def test_score_columns():
    assert generic(output_columns()) == documented("giantwatch score")


def test_check_columns(small_universe, tmp_path):
    summary = check_to_file(small_universe, 2024, tmp_path / "check.csv")
    assert generic(pd.read_csv(summary.out_file, nrows=1).columns) == documented("giantwatch check")


def test_reject_columns():
    tiered = no_financials_rejects(["a"], 2025, "little_giant").columns
    assert set(REJECT_COLUMNS) | set(tiered) == documented("Rejects")


def test_anomaly_columns():
    assert set(ANOMALY_COLUMNS) == documented("anomalies.csv")


def test_api_result_fields():
    from serving.api import _results

    row = {c: None for c in output_columns()} | {"firm_id": "a"}
    [result] = _results(pd.DataFrame([row]), ("specialized", "little_giant", "champion"))
    assert generic(result) == documented("POST /score")
