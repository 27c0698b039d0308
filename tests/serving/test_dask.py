"""Scoring on a Dask LocalCluster gives exactly the single-process output."""

from __future__ import annotations

import pandas as pd
import pytest

from serving.executors import parse_address
from serving.score import ScoringProblem, load_models
from serving.score_file import score_to_file
from tests.conftest import tracking_env
from tests.serving.test_score import SCORE_YEAR, trained_store


@pytest.fixture(scope="module")
def models(small_universe, tmp_path_factory):
    with tracking_env(trained_store(small_universe, tmp_path_factory)):
        yield load_models()


def test_local_cluster_output_equals_single_process(small_universe, models, tmp_path):
    # Several partitions, so that order and concatenation are exercised.
    single = score_to_file(small_universe, SCORE_YEAR, tmp_path / "single.parquet",
                           models=models, chunk_size=1_000)
    spread = score_to_file(small_universe, SCORE_YEAR, tmp_path / "dask.parquet",
                           models=models, chunk_size=1_000, dask="local:2")
    a, b = pd.read_parquet(single.out_file), pd.read_parquet(spread.out_file)
    assert len(a) > 4 * 1_000
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (tmp_path / "single.rejects.csv").read_bytes() == \
        (tmp_path / "dask.rejects.csv").read_bytes()


@pytest.mark.parametrize("spec", ["local:0", "local:x", "tcp://", "127.0.0.1:8786", ""])
def test_bad_cluster_addresses_are_refused(spec):
    with pytest.raises(ScoringProblem, match="local:N"):
        parse_address(spec)


def test_addresses_are_parsed():
    assert parse_address("local:3") == ("local", 3)
    assert parse_address("tcp://10.0.0.5:8786") == ("tcp", "tcp://10.0.0.5:8786")


def test_an_existing_scheduler_is_joined_by_address(small_universe, models):
    from distributed import LocalCluster

    from features.contract import load_dataset
    from serving.score import score_firms

    dataset = load_dataset(small_universe)
    single, _ = score_firms(dataset, SCORE_YEAR, models=models, chunk_size=2_000)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        joined, _ = score_firms(dataset, SCORE_YEAR, models=models, chunk_size=2_000,
                                dask=cluster.scheduler_address)
    pd.testing.assert_frame_equal(single, joined, check_exact=True)
