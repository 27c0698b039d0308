"""Training runs end to end on a small generated universe, tracked in a throwaway MLflow store."""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.lgbm import TierModel
from tests.conftest import env_with_venv_path, isolated_mlflow
from training.evaluate import production_model
from training.review import review_key
from training.tracking import PRODUCTION, promote_if_better, registered_name
from training.train import TrainingProblem, train

TIER = "little_giant"
REVIEWED = "specialized"  # the tier with enough re-reviews to model in the small universe
QUICK_ROUNDS = 60
# Boosters capped at QUICK_ROUNDS trees: these tests check the training path, not the
# model's quality, and full boosting would dominate their time.
quick_model = functools.partial(TierModel, num_boost_round=QUICK_ROUNDS, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def trained(small_universe, tmp_path_factory):
    """Two runs with the same data and seed in one store."""
    home = tmp_path_factory.mktemp("mlflow")
    with isolated_mlflow(home) as uri:
        # The first run is forced into production (the later tests load it); the second
        # meets the gate as `giantwatch train` does.
        first = train(small_universe, tiers=(TIER,), seed=3, model_factory=quick_model,
                      force_promote=True, reviews=(TIER, REVIEWED))
        second = train(small_universe, tiers=(TIER,), seed=3, model_factory=quick_model)
        yield {"uri": uri, "first": first, "second": second, "home": home,
               "universe": small_universe}


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
    evaluation = trained["first"].tiers[TIER].evaluation
    for model in ("lightgbm", "logistic", "rules"):
        history = client.get_metric_history(child_id, f"fold.{model}.pr_auc")
        assert [m.step for m in history] == [f.test_year for f in evaluation.folds]
        # the plain name is the walk-forward mean, as in the registry's cv_ tags
        assert run.data.metrics[f"{model}.pr_auc"] == pytest.approx(
            evaluation.mean(model, "pr_auc"))
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
    # The parent run carries the means per tier and model, and the summary as a table.
    for model in ("lightgbm", "logistic", "rules"):
        assert parent.data.metrics[f"{TIER}.{model}.pr_auc"] == pytest.approx(
            evaluation.mean(model, "pr_auc"))
    summary = pd.read_csv(mlflow.artifacts.download_artifacts(
        f"runs:/{parent.info.run_id}/metrics_summary.csv"))
    assert len(summary) == 6 and set(summary["tier"]) == {TIER, review_key(REVIEWED)}
    assert "| little_giant | lightgbm |" in parent.data.tags["mlflow.note.content"]
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "giantwatch"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_each_registered_version_has_its_model_card(trained):
    client = MlflowClient(trained["uri"])
    outcome = trained["first"].tiers[TIER]
    card = client.get_model_version(registered_name(TIER), outcome.model_version).description
    assert card.startswith(f"# giantwatch-{TIER} v{outcome.model_version}")
    assert trained["first"].data_fingerprint in card
    for fold, selected in zip(outcome.evaluation.folds,
                              outcome.evaluation.metrics.query(
                                  "model == 'lightgbm' and test_year != 'mean'")["n_selected"]):
        assert f"| {fold.test_year} | " in card and f" | {int(selected)} | " in card
    for heading in ("## Walk-forward folds", "## Against the baselines", "## Features by pillar",
                    "## Known limits"):
        assert heading in card
    assert "| PR AUC | higher |" in card and "新 innovation" in card
    latest = trained["second"].tiers[TIER].model_version
    assert client.get_registered_model(registered_name(TIER)).description.startswith(
        f"# giantwatch-{TIER} v{latest}")


def test_registry_alias_gate(trained):
    """Production only for a version that beats the logistic baseline and the rulebook on
    PR-AUC on the same folds and is at least as good as the current one; the refusal and
    --force-promote are recorded in words."""
    client = MlflowClient(trained["uri"])
    name = registered_name(TIER)
    first, second = trained["first"].tiers[TIER], trained["second"].tiers[TIER]
    assert first.gate.promoted and first.gate.reason.startswith("forced by --force-promote")
    evaluation = second.evaluation
    score = evaluation.mean("lightgbm", "pr_auc")
    beats = score > max(evaluation.mean("logistic", "pr_auc"), evaluation.mean("rules", "pr_auc"))
    # identical metrics on the same folds: promoted exactly when it beats both baselines
    assert second.gate.promoted == beats
    assert f"PR-AUC {score:.3f} " in second.gate.reason and "logistic" in second.gate.reason
    production = second if beats else first
    assert str(client.get_model_version_by_alias(name, PRODUCTION).version) == \
        production.model_version
    key = client.get_model_version(name, second.model_version).tags["comparable_key"]
    mlflow.set_tracking_uri(trained["uri"])
    # A version that loses to its baseline stays out of production, said in words...
    lost = promote_if_better(name, second.model_version, score=0.5, comparable_key=key,
                             baselines={"logistic": 0.635, "rulebook": 0.32})
    assert not lost.promoted
    assert lost.reason.startswith("PR-AUC 0.500 does not beat logistic 0.635 on the same folds")
    assert str(client.get_model_version_by_alias(name, PRODUCTION).version) == \
        production.model_version
    assert client.get_model_version(name, second.model_version).tags[
        "gate_decision"].startswith("held: PR-AUC 0.500 does not beat logistic 0.635")
    # ... and a worse score than production's on the same folds is held back too...
    worse = promote_if_better(name, first.model_version, score=-1.0, comparable_key=key)
    assert not worse.promoted
    # ... unless --force-promote.
    forced = promote_if_better(name, second.model_version, score=0.5, comparable_key=key,
                               force=True, baselines={"logistic": 0.635})
    assert forced.promoted and "vs logistic 0.635" in forced.reason
    assert str(client.get_model_version_by_alias(name, PRODUCTION).version) == \
        second.model_version
    promote_if_better(name, production.model_version, score=1.0, comparable_key=key, force=True)


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


def _python_without_giantwatch(folder) -> Path:
    """A virtual environment with this one's third-party packages but not giantwatch: the
    packages' folder is added by a .pth line, and .pth files inside a folder added that way
    (here the editable install's hook) are not run. Console scripts as pip would write them."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True)
    Path(site.stdout.strip(), "project_packages.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    for script, module, function in (("mlflow", "mlflow.cli", "cli"),
                                      ("uvicorn", "uvicorn.main", "main")):
        path = folder / "bin" / script
        path.write_text(f"#!{python}\nimport sys\nfrom {module} import {function}\n"
                        f"sys.exit({function}())\n")
        path.chmod(0o755)
    return python


def test_the_registered_model_loads_and_serves_outside_the_repository(trained, tmp_path):
    """Where giantwatch is not installed, the registered model loads with the code it
    carries, predicts as in training, and `mlflow models serve` serves it."""
    mlflow.set_tracking_uri(trained["uri"])
    uri = f"models:/{registered_name(TIER)}@{PRODUCTION}"
    model = mlflow.pyfunc.load_model(uri)
    example = model.input_example
    expected = model.predict(example)["probability"].to_numpy()
    python = _python_without_giantwatch(tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(MLFLOW_TRACKING_URI=trained["uri"],
               PATH=f"{python.parent}{os.pathsep}{env.get('PATH', '')}")
    script = (
        "import importlib.util, json, mlflow\n"
        "assert importlib.util.find_spec('features') is None, 'giantwatch is importable'\n"
        f"model = mlflow.pyfunc.load_model({uri!r})\n"
        "import models.lgbm\n"
        "print(json.dumps({'code': models.lgbm.__file__, 'p': model.predict("
        "model.input_example)['probability'].tolist()}))\n")
    done = subprocess.run([str(python), "-c", script], cwd=elsewhere, env=env, text=True,
                          capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    repository = Path(__file__).resolve().parents[2]
    assert loaded["code"].endswith("/code/models/lgbm.py")
    assert not loaded["code"].startswith(str(repository))
    np.testing.assert_allclose(loaded["p"], expected, rtol=1e-9)
    assert "CloudPickle" not in done.stderr

    port = _free_port()
    server = subprocess.Popen(
        [str(python.parent / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=elsewhere, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(f"http://127.0.0.1:{port}/ping", server)
        payload = {"dataframe_split": json.loads(example.to_json(orient="split", index=False))}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"})
        body = json.loads(urllib.request.urlopen(request, timeout=30).read())
        probabilities = [row["probability"] for row in body["predictions"]]
        np.testing.assert_allclose(probabilities, expected, rtol=1e-9)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str, server: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_the_mlflow_ui_shows_the_runs_and_the_model_card(trained, venv_bin, tmp_path):
    """MLflow's own UI, in headless Chromium, on the store `train` wrote: the experiment's
    run list (not the GenAI overview) and the registered model with its card."""
    from playwright import sync_api

    from tests.serving.browser import CHROMIUM_ARGS, chromium
    from training.tracking import ui_runs_url

    client = MlflowClient(trained["uri"])
    run = client.get_run(trained["first"].parent_run_id)
    port = _free_port()
    # The server's background job workers serve GenAI features only; in a session of its own
    # so that everything it starts ends with it.
    server = subprocess.Popen(
        [str(venv_bin / "mlflow"), "ui", "--backend-store-uri", trained["uri"], "-h",
         "127.0.0.1", "-p", str(port), "--workers", "1"],
        cwd=tmp_path, env=env_with_venv_path(venv_bin, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    executable = chromium()
    try:
        _wait_for(f"{base}/health", server)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(executable),
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(ui_runs_url(run.info.experiment_id, base))
            page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "runs.png"))
            text = page.inner_text("body")
            assert "Run Name" in text and "Token Usage" not in text
            page.goto(f"{base}/#/models/{registered_name(TIER)}")
            page.get_by_text("Walk-forward folds (LightGBM)").first.wait_for(timeout=60_000)
            text = page.inner_text("body")
            assert trained["first"].data_fingerprint in text and "Known limits" in text
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_too_few_labelled_years_is_a_clear_problem(small_universe, tracking_uri):
    with pytest.raises(TrainingProblem, match="at least 2 labelled years"):
        train(small_universe, tiers=(TIER,), until_year=2019)


def test_re_review_models_are_trained_registered_and_gated(trained):
    """A tier with enough re-reviews gets giantwatch-<tier>-review, evaluated walk-forward
    on re-reviewed firms only against both baselines and gated; one with too few is skipped
    with the counts in words."""
    result = trained["first"]
    client = MlflowClient(trained["uri"], registry_uri=trained["uri"])
    key = review_key(REVIEWED)
    outcome = result.tiers[key]
    evaluation = outcome.evaluation
    assert registered_name(key) == "giantwatch-specialized-review"
    assert {"lightgbm", "logistic", "rules"} == set(evaluation.metrics["model"])
    # Every row is a re-review: its title was granted or renewed three years before.
    from features.contract import load_dataset
    from features.domain import due_for_review

    certs = load_dataset(trained["universe"]).certifications
    for year, rows in evaluation.predictions.groupby("year"):
        due = due_for_review(certs, int(year), REVIEWED)
        assert due.reindex(rows["firm_id"], fill_value=False).all()
    assert 0.5 < evaluation.predictions["label"].mean() < 1
    card = client.get_model_version(registered_name(key), outcome.model_version).description
    assert card.startswith(f"# giantwatch-specialized-review v{outcome.model_version}")
    assert "comes up for re-review" in card and "renewed" in card
    assert client.get_run(outcome.run_id).data.tags["kind"] == "re-review"
    version = client.get_model_version(registered_name(key), outcome.model_version)
    assert version.tags["gate_decision"].startswith("promoted: forced by --force-promote")
    # Too few Little Giant re-reviews in 6,000 firms: said, not modelled.
    assert review_key(TIER) not in result.tiers
    assert "re-reviews are too few to model" in result.skipped[review_key(TIER)]
    assert "not renewed" in result.skipped[review_key(TIER)]


def test_the_scorer_loads_the_re_review_models_in_production(trained):
    from serving.registry import load_models
    from tests.conftest import tracking_env

    with tracking_env(trained["uri"], cwd=trained["home"]):
        reviews = load_models(review=True)
    outcome = trained["first"].tiers[review_key(REVIEWED)]
    # Keyed by tier; the Little Giant re-reviews were never modelled, so only one loads.
    assert set(reviews) == {REVIEWED}
    loaded = reviews[REVIEWED]
    assert loaded.name == "giantwatch-specialized-review"
    assert loaded.version == outcome.model_version
    final = outcome.final_model
    assert list(loaded.model.feature_names_in_) == list(final.feature_names_in_)
