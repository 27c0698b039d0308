"""`giantwatch train`: walk-forward evaluation, final models per tier, all tracked in MLflow."""

from __future__ import annotations

import importlib.metadata
import platform
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from features.domain import TIERS, labelled_years
from models.lgbm import TierModel
from models.pyfunc import OUTPUT_COLUMN, TierProbabilityModel, signature_frame
from training import plots
from training.evaluate import Evaluation, ModelFactory, production_model, walk_forward
from training.splits import walk_forward_folds
from training.tracking import (
    GATE_METRIC,
    GateDecision,
    experiment_for_dataset,
    fingerprint,
    promote_if_better,
    registered_name,
    setup_tracking,
)

MODELLED_TIERS = TIERS
# MLflow hints about integer columns in inferred schemas; ours are declared optional doubles
# or are the panel's year keys, so the hint is noise in every run's output.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column",
                        category=UserWarning)
warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted",
                        category=UserWarning)
PACKAGES = ("lightgbm", "scikit-learn", "pandas", "numpy", "mlflow", "shap", "pandera")
SHAP_SAMPLE = 2_000


class TrainingProblem(Exception):
    """The data cannot support training (e.g. a tier with too few labelled years)."""


@dataclass
class TierOutcome:
    tier: str
    evaluation: Evaluation
    model_version: str
    gate: GateDecision
    run_id: str
    rows: int = 0
    final_model: TierModel | None = None


@dataclass
class TrainingResult:
    parent_run_id: str
    experiment: str
    tracking_uri: str
    data_fingerprint: str
    tiers: dict[str, TierOutcome] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean walk-forward metrics per tier and model (one row per tier x model)."""
        frames = []
        for tier, outcome in self.tiers.items():
            means = outcome.evaluation.metrics.query("test_year == 'mean'")
            frames.append(means.assign(tier=tier))
        columns = ["tier", "model", "roc_auc", "pr_auc", "precision_at_k", "brier", "log_loss",
                   "ece"]
        return pd.concat(frames, ignore_index=True)[columns]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def train(data_dir: Path, tiers: tuple[str, ...] = MODELLED_TIERS, until_year: int | None = None,
          seed: int = 0, force_promote: bool = False, n_folds: int = 3,
          progress: Callable[[str], None] | None = None,
          model_factory: ModelFactory = production_model) -> TrainingResult:
    """Train, evaluate and register one model per tier on the dataset in `data_dir`.

    model_factory(seed=seed) builds every LightGBM model: the walk-forward folds' and the final
    one that is registered (default: the production TierModel; see
    `training.evaluate.ModelFactory`).
    """
    from features.contract import load_dataset
    from features.pipeline import FEATURE_PIPELINE_VERSION

    say = progress or (lambda message: None)
    unknown = sorted(set(tiers) - set(MODELLED_TIERS))
    if unknown:
        raise TrainingProblem(f"unknown tier(s) {unknown}; choose from {', '.join(MODELLED_TIERS)}")
    say("Loading and validating the dataset")
    dataset = load_dataset(data_dir)
    tables = {name: getattr(dataset, name)
              for name in ("firms", "financials", "patents", "certifications")}
    data_fp = fingerprint(tables)
    uri = setup_tracking()
    experiment = experiment_for_dataset(data_dir)
    with mlflow.start_run(run_name=f"train seed={seed}") as parent:
        mlflow.log_params({"tiers": ",".join(tiers), "until_year": until_year, "seed": seed,
                           "n_folds": n_folds, "data_dir": str(Path(data_dir).resolve()),
                           "feature_pipeline_version": FEATURE_PIPELINE_VERSION})
        mlflow.set_tags({"data_fingerprint": data_fp,
                         **{f"version.{k}": v for k, v in package_versions().items()}})
        if len(dataset.rejects):
            _log_frame(dataset.rejects, "rejects.csv")
        result = TrainingResult(parent.info.run_id, experiment, uri, data_fp)
        for tier in tiers:
            with mlflow.start_run(run_name=tier, nested=True) as child:
                mlflow.set_tags({"tier": tier, "data_fingerprint": data_fp})
                result.tiers[tier] = _train_tier(dataset, tier, until_year, seed, n_folds,
                                                 data_fp, force_promote, say, child.info.run_id,
                                                 data_dir, model_factory)
        _log_frame(result.summary(), "metrics_summary.csv")
    return result


def _train_tier(dataset, tier: str, until_year: int | None, seed: int, n_folds: int,
                data_fp: str, force_promote: bool, say, run_id: str, data_dir: Path,
                model_factory: ModelFactory = production_model) -> TierOutcome:
    from features.pipeline import FEATURE_PIPELINE_VERSION, stack_panels

    certs = dataset.certifications
    years = labelled_years(certs, tier)
    if until_year is not None:
        years = [y for y in years if y <= until_year]
    if len(years) < 2:
        raise TrainingProblem(
            f"tier {tier}: certifications table has grants in {len(years)} year(s) "
            f"({years}); training needs at least 2 labelled years")
    say(f"{tier}: building as-of panels for {years[0]}-{years[-1]}")
    panel = stack_panels(dataset, years, tier)
    X, y, keys = panel.X, np.asarray(panel.y, dtype=float), panel.keys.reset_index(drop=True)
    X = X.reset_index(drop=True)
    folds = walk_forward_folds(years, n_folds=n_folds)
    mlflow.log_params({"labelled_years": f"{years[0]}-{years[-1]}", "rows": len(X),
                       "features": X.shape[1], "selected": int(y.sum()),
                       "fold_test_years": ",".join(str(f.test_year) for f in folds)})
    mlflow.log_input(mlflow.data.from_pandas(
        keys.assign(label=y), source=str(Path(data_dir).resolve()), targets="label",
        name=f"{Path(data_dir).name}-{tier}-panel"), context="training")

    evaluation = walk_forward(X, y, keys, folds, tier, seed=seed, model_factory=model_factory,
                              progress=say)
    _log_evaluation(evaluation, tier)

    say(f"{tier}: fitting the final model on {years[0]}-{years[-1]}")
    final = model_factory(seed=seed).fit(X, y, years=keys["year"].to_numpy())
    mlflow.log_params({"best_iteration": final.best_iteration_,
                       "calibration_folds": final.calibration_folds,
                       **{f"lgbm.{k}": v for k, v in final._params(len(X)).items()}})
    # Each year's selection rate as the log-odds offset the trees started from.
    mlflow.log_dict({str(year): offset for year, offset in final.year_offsets_.items()},
                    "year_offsets.json")
    _log_final_plots(final, X, keys, tier, seed)

    say(f"{tier}: registering the model")
    version = _register(final, X, tier, data_fp, evaluation, years[-1], FEATURE_PIPELINE_VERSION)
    fold_key = ",".join(str(f.test_year) for f in folds)
    decision = promote_if_better(registered_name(tier), version,
                                 evaluation.mean("lightgbm", GATE_METRIC),
                                 comparable_key=f"{data_fp}|{fold_key}", force=force_promote)
    mlflow.set_tags({"gate.promoted": str(decision.promoted), "gate.reason": decision.reason,
                     "model_version": version})
    return TierOutcome(tier, evaluation, version, decision, run_id, rows=len(X), final_model=final)


def _log_evaluation(evaluation: Evaluation, tier: str) -> None:
    metrics = evaluation.metrics
    numeric = [c for c in metrics.columns if c not in ("model", "test_year", "train_years")]
    for row in metrics.itertuples(index=False):
        row = row._asdict()
        for metric in numeric:
            value = row[metric]
            if value is None or not np.isfinite(value):
                continue
            if row["test_year"] == "mean":
                mlflow.log_metric(f"{row['model']}.{metric}.mean", float(value))
            else:
                mlflow.log_metric(f"{row['model']}.{metric}", float(value),
                                  step=int(row["test_year"]))
    for baseline in ("logistic", "rules"):
        for metric in ("pr_auc", "roc_auc"):
            lift = evaluation.mean("lightgbm", metric) - evaluation.mean(baseline, metric)
            mlflow.log_metric(f"lift_over_{baseline}.{metric}", lift)
    _log_frame(metrics, "walk_forward_metrics.csv")
    _log_frame(evaluation.predictions, "out_of_fold_predictions.parquet")
    _log_figure(plots.roc_pr_curves(evaluation.predictions, tier), "plots/roc_pr.png")
    _log_figure(plots.reliability_curve(evaluation.predictions, tier), "plots/reliability.png")


def _log_final_plots(model: TierModel, X: pd.DataFrame, keys: pd.DataFrame, tier: str,
                     seed: int) -> None:
    _log_figure(plots.feature_importance(model.feature_importance(), tier),
                "plots/feature_importance.png")
    _log_frame(model.feature_importance(), "feature_importance.csv")
    latest = X[keys["year"].to_numpy() == keys["year"].max()]
    sample = latest.sample(min(SHAP_SAMPLE, len(latest)), random_state=seed)
    _log_figure(plots.shap_summary(model.contributions(sample), sample, tier),
                "plots/shap_summary.png")


def _register(model: TierModel, X: pd.DataFrame, tier: str, data_fp: str,
              evaluation: Evaluation, trained_until: int, pipeline_version: str) -> str:
    example = signature_frame(X.head(5), model)
    output = pd.DataFrame({OUTPUT_COLUMN: model.predict_proba(X.head(5))[:, 1]})
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=TierProbabilityModel(model, tier, pipeline_version),
        signature=_optional_inputs(infer_signature(signature_frame(X.head(500), model), output)),
        input_example=example,
        registered_model_name=registered_name(tier),
        # Pinned to what trained the model; skips MLflow's slow requirement inference.
        pip_requirements=[f"{p}=={v}" for p, v in package_versions().items()
                          if p not in ("python", "shap", "pandera") and v != "not installed"],
        metadata={"tier": tier, "feature_pipeline_version": pipeline_version},
    )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient()
    folds = ",".join(str(f.test_year) for f in evaluation.folds)
    tags = {"tier": tier, "feature_pipeline_version": pipeline_version,
            "data_fingerprint": data_fp, "fold_test_years": folds, "trained_until": trained_until,
            "comparable_key": f"{data_fp}|{folds}",
            **{f"cv_{m}": repr(evaluation.mean("lightgbm", m))
               for m in ("pr_auc", "roc_auc", "brier", "ece", "precision_at_k")}}
    for key, value in tags.items():
        client.set_model_version_tag(registered_name(tier), version, key, str(value))
    return version


def _optional_inputs(signature):
    """Mark every input column optional: any feature may be missing for a firm (NaN / null),
    whether or not the sample the signature was inferred from happened to show it."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema([ColSpec(c.type, c.name, required=False) for c in signature.inputs.inputs])
    return ModelSignature(inputs=inputs, outputs=signature.outputs)


def _log_frame(frame: pd.DataFrame, artifact: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        folder = str(Path(artifact).parent)
        mlflow.log_artifact(str(path), artifact_path=None if folder == "." else folder)


def _log_figure(fig: plt.Figure, artifact: str) -> None:
    mlflow.log_figure(fig, artifact)
    plt.close(fig)
