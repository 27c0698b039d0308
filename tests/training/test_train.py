"""Training runs end to end on a small generated universe, tracked in a throwaway MLflow store."""

from __future__ import annotations

import functools
import inspect
import json
import socket
import subprocess
import time
import urllib.request

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.lgbm import TierModel
from tests.conftest import env_with_venv_path, isolated_mlflow
from training.evaluate import production_model
from training.tracking import PRODUCTION, promote_if_better, registered_name
from training.train import TrainingProblem, train

TIER = "little_giant"
QUICK_ROUNDS = 60
# Boosters capped at QUICK_ROUNDS trees: these tests check the training path, not the
# model's quality, and full boosting would dominate their time.
quick_model = functools.partial(TierModel, num_boost_round=QUICK_ROUNDS, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def trained(small_universe, tmp_path_factory):
    """Two runs with the same data and seed in one store."""
    home = tmp_path_factory.mktemp("mlflow")
    with isolated_mlflow(home) as uri:
        first = train(small_universe, tiers=(TIER,), seed=3, model_factory=quick_model)
        second = train(small_universe, tiers=(TIER,), seed=3, model_factory=quick_model)
        yield {"uri": uri, "first": first, "second": second, "home": home}


def test_same_data_and_seed_give_the_same_metrics(trained):
    a = trained["first"].tiers[TIER].evaluation.metrics
    b = trained["second"].tiers[TIER].evaluation.metrics
    pd.testing.assert_frame_equal(a, b)


def test_the_model_factory_builds_every_lightgbm_model(trained):
    final = trained["first"].tiers[TIER].final_model
    assert isinstance(final, TierModel) and final.seed == 3
    assert final.num_boost_round == QUICK_ROUNDS and final.best_iteration_ <= QUICK_ROUNDS
    mlflow.set_tracking_uri(trained["uri"])
    params = MlflowClient(trained["uri"]).get_run(trained["first"].tiers[TIER].run_id).data.params
    assert params["best_iteration"] == str(final.best_iteration_)
    # Without a factory, training builds the production model.
    assert inspect.signature(train).parameters["model_factory"].default is production_model
    assert production_model(3).get_params() == TierModel(seed=3).get_params()


def test_out_of_fold_rows_come_only_from_test_years(trained):
    evaluation = trained["first"].tiers[TIER].evaluation
    test_years = {f.test_year for f in evaluation.folds}
    assert set(evaluation.predictions["year"]) == test_years
    for fold in evaluation.folds:
        assert max(fold.train_years) < fold.test_year
    # every model was scored on the same rows of each fold
    assert evaluation.metrics.groupby("test_year")["n_test"].nunique().max() == 1


def test_run_is_tracked_with_metrics_artifacts_and_dataset(trained):
    mlflow.set_tracking_uri(trained["uri"])
    client = MlflowClient(trained["uri"])
    child_id = trained["first"].tiers[TIER].run_id
    run = client.get_run(child_id)
    assert run.data.tags["mlflow.parentRunId"] == trained["first"].parent_run_id
    for model in ("lightgbm", "logistic", "rules"):
        history = client.get_metric_history(child_id, f"{model}.pr_auc")
        assert len(history) == len(trained["first"].tiers[TIER].evaluation.folds)
    artifacts = {a.path for a in client.list_artifacts(child_id, "plots")}
    assert {"plots/roc_pr.png", "plots/reliability.png", "plots/feature_importance.png",
            "plots/shap_summary.png"} <= artifacts
    assert run.inputs.dataset_inputs, "the training panel is logged as an MLflow dataset input"
    offsets = mlflow.artifacts.load_dict(f"runs:/{child_id}/year_offsets.json")
    final = trained["first"].tiers[TIER].final_model
    assert offsets == {str(year): value for year, value in final.year_offsets_.items()}
    assert all(value < 0 for value in offsets.values()), "selection rates are below one half"
    parent = client.get_run(trained["first"].parent_run_id)
    assert len(parent.data.tags["data_fingerprint"]) == 16
    assert "version.lightgbm" in parent.data.tags


def test_registry_alias_gate(trained):
    client = MlflowClient(trained["uri"])
    name = registered_name(TIER)
    first, second = trained["first"].tiers[TIER], trained["second"].tiers[TIER]
    assert first.gate.promoted and first.gate.reason == "no production version yet"
    # identical metrics on the same folds: "at least as good" promotes
    assert second.gate.promoted
    assert str(client.get_model_version_by_alias(name, PRODUCTION).version) == second.model_version
    # a worse score on the same folds is held back, and the decision is recorded
    key = client.get_model_version(name, second.model_version).tags["comparable_key"]
    mlflow.set_tracking_uri(trained["uri"])
    decision = promote_if_better(name, first.model_version, score=-1.0, comparable_key=key)
    assert not decision.promoted
    assert str(client.get_model_version_by_alias(name, PRODUCTION).version) == second.model_version
    tags = client.get_model_version(name, first.model_version).tags
    assert tags["gate_decision"].startswith("held:")
    forced = promote_if_better(name, first.model_version, score=-1.0, comparable_key=key, force=True)
    assert forced.promoted
    promote_if_better(name, second.model_version, score=1.0, comparable_key=key, force=True)


def test_registered_pyfunc_returns_probabilities(trained):
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model(f"models:/{registered_name(TIER)}@{PRODUCTION}")
    example = model.input_example
    out = model.predict(example)
    assert list(out.columns) == ["probability"]
    assert out["probability"].between(0, 1).all()
    assert model.metadata.metadata["feature_pipeline_version"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_models_serve_returns_probabilities(trained, venv_bin):
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model(f"models:/{registered_name(TIER)}@{PRODUCTION}")
    example = model.input_example
    port = _free_port()
    env = env_with_venv_path(venv_bin, MLFLOW_TRACKING_URI=trained["uri"])
    server = subprocess.Popen(
        [str(venv_bin / "mlflow"), "models", "serve", "-m",
         f"models:/{registered_name(TIER)}@{PRODUCTION}", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.5)
        payload = {"dataframe_split": json.loads(example.to_json(orient="split", index=False))}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"})
        body = json.loads(urllib.request.urlopen(request, timeout=30).read())
        probabilities = [row["probability"] for row in body["predictions"]]
        assert len(probabilities) == len(example)
        np.testing.assert_allclose(probabilities, model.predict(example)["probability"], rtol=1e-9)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_too_few_labelled_years_is_a_clear_problem(small_universe, tracking_uri):
    with pytest.raises(TrainingProblem, match="at least 2 labelled years"):
        train(small_universe, tiers=(TIER,), until_year=2019)
