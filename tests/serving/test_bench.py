"""The scoring benchmark measures every stage and the raw LightGBM engine in one run."""

from __future__ import annotations

import json

import pytest

from serving.bench import STAGES, format_bench, run_bench
from serving.score import load_models
from tests.conftest import tracking_env
from tests.serving.test_score import SCORE_YEAR, trained_store


@pytest.fixture(scope="module")
def result(small_universe, tmp_path_factory):
    with tracking_env(trained_store(small_universe, tmp_path_factory)):
        return run_bench(small_universe, SCORE_YEAR, repeats=1, models=load_models())


def test_bench_reports_stages_engine_and_memory(result):
    assert result["firms"] > 4_000
    assert set(result["stages"]) == set(STAGES)
    assert all(seconds >= 0 for seconds in result["stages"].values())
    assert result["stages"]["shap"] > 0 and result["raw_contrib_s"] > 0
    # the stages are parts of the end-to-end time
    assert sum(result["stages"].values()) <= result["end_to_end_s"] * 1.01
    assert result["ratio"] == pytest.approx(result["end_to_end_s"] / result["raw_contrib_s"])
    assert result["plain_path_s"] >= result["end_to_end_s"]
    assert result["shap_speedup"] == pytest.approx(result["raw_contrib_s"]
                                                   / result["stages"]["shap"])
    assert result["rows_per_s"] == pytest.approx(result["rows"] / result["end_to_end_s"])
    # the scorer's contributions are LightGBM's on the benchmark's own rows
    assert result["max_abs_difference"] < 1e-6
    assert result["peak_rss_mb"] > 50
    json.dumps(result)  # the CLI prints it as one JSON line
    assert "ratio" in format_bench(result)
