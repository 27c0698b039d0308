"""LightGBM fits on a Dask cluster (`giantwatch train --dask`): lightgbm.dask fits the
boosters, everything else (round count, calibration, registry, model format) as locally."""

from __future__ import annotations

import lightgbm as lgb
import mlflow
import numpy as np
import pytest
from scipy.stats import pearsonr

from features.contract import load_dataset
from features.domain import labelled_years
from features.pipeline import stack_panels
from models.lgbm_dask import dask_booster, lightgbm_logs_to_logging
from models.metrics import binary_metrics
from tests.conftest import tracking_env
from tests.serving.test_score import QUICK_MODEL, SCORE_YEAR, TRAIN_UNTIL
from training.cluster import ClusterProblem, dask_client
from training.train import train

TIER = "little_giant"


@pytest.fixture(scope="module")
def client():
    with dask_client("local:2") as client:
        yield client


@pytest.fixture(scope="module")
def panel(small_universe):
    """(X, y, years) of the tier's as-of panels up to TRAIN_UNTIL."""
    dataset = load_dataset(small_universe)
    years = [t for t in labelled_years(dataset.certifications, TIER) if t <= TRAIN_UNTIL]
    stacked = stack_panels(dataset, years, TIER)
    return (stacked.X.reset_index(drop=True), np.asarray(stacked.y, dtype=float),
            stacked.keys["year"].to_numpy())


def test_the_dask_fit_agrees_with_the_local_fit_on_a_held_out_year(panel, client):
    X, y, years = panel
    test = years == years.max()
    local = QUICK_MODEL(seed=0).fit(X[~test], y[~test], years=years[~test])
    spread = QUICK_MODEL(seed=0).fit(X[~test], y[~test], years=years[~test], client=client)
    # The round count comes from the same early-stopped probes, run as tasks on the workers.
    assert spread.best_iteration_ == local.best_iteration_
    assert spread.booster_.current_iteration() == spread.best_iteration_
    # An ordinary booster: the local fit's columns, categories and parameters, no trace of
    # the cluster's network in the model text.
    assert isinstance(spread.booster_, lgb.Booster)
    assert spread.booster_.feature_name() == local.booster_.feature_name()
    assert spread.booster_.pandas_categorical == local.booster_.pandas_categorical
    # (lgb.train adds its bookkeeping, num_iterations and categorical_column, to its params.)
    assert spread.booster_.params == {k: v for k, v in local.booster_.params.items()
                                      if k not in ("num_iterations", "categorical_column")}
    section = [_parameters(m.booster_) for m in (local, spread)]
    assert section[0] == section[1], set(section[0]) ^ set(section[1])
    # The trees differ (each worker bins its share of the rows, extra_trees draws its
    # thresholds on the workers' feature shares): the held-out year is compared, not the
    # bits. Measured: margins correlate 0.996, PR-AUC 0.2747 against 0.2453, the top 21
    # overlap by 81%; two local fits with seeds 0 and 1 differ as much (0.9925, 0.2453
    # against 0.2151, 71%): README, "Training on a Dask cluster".
    m_local, m_dask = local.decision_function(X[test]), spread.decision_function(X[test])
    assert not np.array_equal(m_local, m_dask)
    assert pearsonr(m_local, m_dask).statistic > 0.98
    pr_local = binary_metrics(y[test], local.predict_proba(X[test])[:, 1])["pr_auc"]
    pr_dask = binary_metrics(y[test], spread.predict_proba(X[test])[:, 1])["pr_auc"]
    assert abs(pr_local - pr_dask) < 0.05
    k = int(y[test].sum())
    top = np.intersect1d(np.argsort(-m_local)[:k], np.argsort(-m_dask)[:k])
    assert len(top) >= 0.5 * k


def _parameters(booster: lgb.Booster) -> list[str]:
    text = booster.model_to_string()
    return text[text.index("\nparameters:"):text.index("end of parameters")].splitlines()


def test_a_model_trained_on_dask_is_registered_and_scored(small_universe, client, tmp_path):
    """Trained on a running cluster joined by its scheduler's address (`--dask tcp://...`):
    a new Client over TCP, not the fixture's."""
    from serving.score import load_models, score_firms

    address = client.scheduler.address
    assert address.startswith("tcp://")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with tracking_env(uri, cwd=tmp_path):
        mlflow.set_tracking_uri(uri)
        result = train(small_universe, tiers=(TIER,), reviews=(), n_folds=1,
                       until_year=TRAIN_UNTIL, seed=0, model_factory=QUICK_MODEL,
                       force_promote=True, dask=address)
        run = mlflow.get_run(result.parent_run_id)
        loaded = load_models(tiers=(TIER,))
    assert run.data.params["dask_workers"] == "2"
    assert result.tiers[TIER].evaluation.mean("lightgbm", "pr_auc") > 0
    trained = result.tiers[TIER].final_model
    served = loaded[TIER].model
    assert type(served) is type(trained)
    assert served.booster_.model_to_string() == trained.booster_.model_to_string()
    scores, _ = score_firms(load_dataset(small_universe), SCORE_YEAR, models=loaded,
                            reviews={}, reasons=0)
    p = scores[f"p_{TIER}"].dropna()
    assert len(p) > 100 and p.between(0, 1).all()


def _lightgbm_logs_routed() -> bool:
    """In this process: LightGBM logs through the "lightgbm" logger, with its filter."""
    import logging

    import lightgbm.basic

    from models.lgbm_dask import _ExpectedNotice

    logger = logging.getLogger("lightgbm")
    return lightgbm.basic._LOGGER is logger and any(isinstance(f, _ExpectedNotice)
                                                    for f in logger.filters)


def test_lightgbm_logs_are_routed_once_per_client_not_per_fit(panel, client, monkeypatch):
    assert _lightgbm_logs_routed()
    assert list(client.run(_lightgbm_logs_routed).values()) == [True, True]
    sent = []
    run = client.run
    monkeypatch.setattr(client, "run", lambda f, *a, **k: sent.append(f) or run(f, *a, **k))
    X, y, _ = panel
    booster = dask_booster(client, {"objective": "binary", "verbose": -1, "seed": 0},
                           X[:3000], y[:3000], np.zeros(3000), rounds=3)
    assert booster.current_iteration() == 3
    assert lightgbm_logs_to_logging not in sent


def test_a_worker_that_joins_later_routes_its_lightgbm_logs_too():
    with dask_client("local:1") as client:
        client.cluster.scale(2)
        client.wait_for_workers(2, timeout=60)
        assert list(client.run(_lightgbm_logs_routed).values()) == [True, True]


def test_an_unreachable_scheduler_is_one_problem():
    with (pytest.raises(ClusterProblem, match="cannot reach the Dask scheduler at tcp://"),
          dask_client("tcp://127.0.0.1:9", timeout="1s")):
        pass


def test_a_bad_address_is_one_message_without_traceback(small_universe):
    from typer.testing import CliRunner

    from serving.cli import app

    result = CliRunner().invoke(app, ["train", "--data", str(small_universe),
                                      "--dask", "local:0"])
    assert result.exit_code == 2
    assert "--dask takes local:N" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
