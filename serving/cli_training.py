"""`giantwatch train`: the models, walk-forward evaluated and registered in MLflow."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from serving.cli_base import DataDir, UsageProblem, err, out, print_frame, user_errors
from serving.logs import progress_bar, with_logging


@user_errors
@with_logging
def train(
    data: DataDir,
    tiers: Annotated[
        str, typer.Option(help="Comma-separated tiers to model: specialized, little_giant, champion.")
    ] = "specialized,little_giant,champion",
    until_year: Annotated[
        int | None, typer.Option(help="Ignore certifications announced after this year.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for LightGBM and the baselines.")] = 0,
    force_promote: Annotated[
        bool, typer.Option(help="Give the new models the production alias even if not better.")
    ] = False,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment of the runs (default: "
                                      "GIANTWATCH_EXPERIMENT, else 'giantwatch').")
    ] = None,
    sample_rate: Annotated[
        float | None, typer.Option(help="Fraction of each year's non-selected candidates the "
                                        "selection models train on (every selection is kept; "
                                        "test years are scored whole). Default: a year "
                                        "with more than 20,000 of them is sampled down to "
                                        "about 20,000, and one with more than 10,000 "
                                        "selections down to about 10,000 selections; "
                                        "1: never sample.")
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(help="Fit the LightGBM models on Dask (lightgbm.dask): local:N (N local "
                          "workers) or tcp://HOST:PORT (a running scheduler).")
    ] = None,
) -> None:
    """Train a LightGBM model per tier, evaluated walk-forward, and register it in MLflow;
    likewise a re-review model per tier (`<tier>-review`: is a title renewed when its three
    years end?) where the data hold enough re-reviews.

    Each tier's model is compared with the 2022 rulebook and a logistic regression on the
    same folds (train on years before the test year). A new model version gets the
    `production` alias only if it is at least as good as the current one.

    Tracking goes to MLFLOW_TRACKING_URI, or to sqlite:///mlruns/mlflow.db by default.
    """
    import shlex

    from training.cluster import ClusterProblem
    from training.model_card import FEW_SELECTIONS, formatted
    from training.tracking import ui_runs_url
    from training.train import TrainingProblem
    from training.train import train as run_training

    tier_list = tuple(t.strip() for t in tiers.split(",") if t.strip())
    try:
        with progress_bar("Training"):
            result = run_training(data, tiers=tier_list, until_year=until_year, seed=seed,
                                  force_promote=force_promote, experiment=experiment,
                                  sample_rate=sample_rate, dask=dask)
    except (TrainingProblem, ClusterProblem) as exc:
        raise UsageProblem(str(exc)) from None
    print_frame(formatted(result.summary()), title="Walk-forward metrics, mean over test years")
    print_frame(formatted(result.folds()[["tier", "test year", "trained on", "firms tested",
                                           "selections", "PR AUC", "precision@k"]]),
                 title="Walk-forward folds (LightGBM)")
    for tier, years in result.thin_folds().items():
        err.print(f"[yellow]{tier}: test year(s) {', '.join(map(str, years))} had fewer than "
                  f"{FEW_SELECTIONS} selections; their metrics are noisy.[/]")
    for tier, outcome in result.tiers.items():
        verdict = "is production" if outcome.gate.promoted else "stays out of production"
        out.print(f"{tier} v{outcome.model_version} {verdict}: {outcome.gate.reason}")
    for why in result.skipped.values():
        out.print(why)
    out.print(f"MLflow run {result.parent_run_id} in experiment {result.experiment!r} "
              f"({result.tracking_uri}).")
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    out.print("Open the MLflow UI with: "
              f"{shlex.quote(str(mlflow_cli))} ui --backend-store-uri "
              f"{shlex.quote(result.tracking_uri)}", highlight=False, soft_wrap=True)
    out.print(f"and go to {ui_runs_url(result.experiment_id)} (the runs, in the UI's model "
              "training view)", highlight=False, soft_wrap=True)
