"""`giantwatch train`: walk-forward evaluation, final models per tier, all tracked in MLflow."""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import warnings
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from features.domain import TIERS, labelled_years, reviewed_years
from models.lgbm import TierModel
from models.lgbm_dask import worker_count
from training.cluster import dask_client
from training.evaluate import (
    MODEL_NAMES,
    Evaluation,
    ModelFactory,
    production_model,
    walk_forward,
)
from training.model_card import CardFacts, model_card, thin_folds
from training.registration import describe, register
from training.review import review_folds, review_key, too_few_reviews
from training.run_artifacts import log_evaluation, log_final_plots, log_frame, log_summary
from training.sampling import CaseControl, WholeYears
from training.splits import walk_forward_folds
from training.tracking import (
    GATE_METRIC,
    GateDecision,
    fingerprint,
    promote_if_better,
    registered_name,
    setup_tracking,
    use_experiment,
)

log = logging.getLogger(__name__)

MODELLED_TIERS = TIERS
# MLflow hints about integer columns in inferred schemas; ours are declared optional doubles
# or are the panel's year keys, so the hint is noise in every run's output.
warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column",
                        category=UserWarning)
warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted",
                        category=UserWarning)
PACKAGES = ("giantwatch", "lightgbm", "scikit-learn", "pandas", "numpy", "mlflow", "shap",
            "pandera")
SUMMARY_METRICS = ("pr_auc", "roc_auc", "precision_at_k", "brier", "log_loss", "ece")


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
    experiment_id: str
    tracking_uri: str
    data_fingerprint: str
    tiers: dict[str, TierOutcome] = field(default_factory=dict)
    # Re-review models not trained, by review_key: why (training.review.too_few_reviews).
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean walk-forward metrics per tier and model (one row per tier x model)."""
        frames = []
        for tier, outcome in self.tiers.items():
            means = outcome.evaluation.metrics.query("test_year == 'mean'")
            frames.append(means.assign(tier=tier))
        return pd.concat(frames, ignore_index=True)[["tier", "model", *SUMMARY_METRICS]]

    def folds(self) -> pd.DataFrame:
        """One row per tier and walk-forward fold (training.model_card.fold_table)."""
        from training.model_card import fold_table

        return pd.concat([fold_table(o.evaluation).assign(tier=tier)
                          for tier, o in self.tiers.items()], ignore_index=True)

    def thin_folds(self) -> dict[str, list[int]]:
        """Per tier, the test years with too few selections for stable metrics."""
        return {tier: years for tier, o in self.tiers.items()
                if (years := thin_folds(o.evaluation))}


class _Steps:
    """Logs train's progress (INFO) with ``extra={"step": (done, total)}`` for progress bars;
    the total assumes every tier gets all n_folds folds (a bar may end short of it)."""

    def __init__(self, total: int):
        self.done, self.total = 0, total

    def __call__(self, message: str) -> None:
        self.done += 1
        log.info(message, extra={"step": (min(self.done, self.total), self.total)})


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
          model_factory: ModelFactory = production_model,
          experiment: str | None = None,
          reviews: tuple[str, ...] | None = None,
          sample_rate: float | None = None, dask=None) -> TrainingResult:
    """Train, evaluate and register one model per tier on the dataset in `data_dir`, and
    one re-review model per tier of `reviews` (default: `tiers`; see training.review) with
    enough re-reviews, keyed by review_key(tier) in the result.

    model_factory(seed=seed) builds every LightGBM model: the walk-forward folds' and the final
    one that is registered (default: the production TierModel; see
    `training.evaluate.ModelFactory`). Runs go to the MLflow experiment `experiment`
    (default: the GIANTWATCH_EXPERIMENT setting, "giantwatch"). Progress is logged (INFO).

    sample_rate: fraction of the non-selected candidate rows of each year the selection
    models train on (every selection is kept; training.sampling.CaseControl); None samples
    only years above training.sampling.MAX_OTHERS_PER_YEAR non-selected rows or
    MAX_SELECTED_PER_YEAR selections, 1.0 never.
    Walk-forward test years are scored on all their rows. Re-review models are not sampled.

    dask: "local:N" or "tcp://HOST:PORT" (training.cluster; or a distributed Client): the
    LightGBM fits (walk-forward folds and final models) run on that cluster through
    lightgbm.dask (models.lgbm_dask); None fits them in this process. Raises
    training.cluster.ClusterProblem for a malformed or unreachable address.
    """
    with nullcontext() if dask is None else dask_client(dask) as client:
        return _train(data_dir, tiers=tiers, until_year=until_year, seed=seed,
                      force_promote=force_promote, n_folds=n_folds, model_factory=model_factory,
                      experiment=experiment, reviews=reviews, sample_rate=sample_rate,
                      client=client)


def _train(data_dir: Path, *, tiers, until_year, seed, force_promote, n_folds, model_factory,
           experiment, reviews, sample_rate, client) -> TrainingResult:
    """`train` with `client` (a distributed Client or None) for the LightGBM fits."""
    from features.contract import load_dataset
    from features.pipeline import FEATURE_PIPELINE_VERSION

    reviews = tuple(tiers) if reviews is None else tuple(reviews)
    unknown = sorted(set(tiers + reviews) - set(MODELLED_TIERS))
    if unknown:
        raise TrainingProblem(f"unknown tier(s) {unknown}; choose from {', '.join(MODELLED_TIERS)}")
    # Per model: panels, each model on each fold, the final fit, registration.
    say = _Steps(1 + (len(tiers) + len(reviews)) * (3 + len(MODEL_NAMES) * n_folds))
    say("Loading and validating the dataset")
    dataset = load_dataset(data_dir)
    tables = {name: getattr(dataset, name)
              for name in ("firms", "financials", "patents", "certifications")}
    data_fp = fingerprint(tables)
    uri = setup_tracking()
    experiment = use_experiment(experiment)
    with mlflow.start_run(run_name=f"train {Path(data_dir).resolve().name} seed={seed}") as parent:
        mlflow.log_params({"tiers": ",".join(tiers), "until_year": until_year, "seed": seed,
                           "n_folds": n_folds, "sample_rate": sample_rate, "data_dir": str(Path(data_dir).resolve()),
                           "feature_pipeline_version": FEATURE_PIPELINE_VERSION,
                           "dask_workers": None if client is None else worker_count(client)})
        mlflow.set_tags({"data_fingerprint": data_fp,
                         **{f"version.{k}": v for k, v in package_versions().items()}})
        if len(dataset.rejects):
            log_frame(dataset.rejects, "rejects.csv")
        result = TrainingResult(parent.info.run_id, experiment, parent.info.experiment_id, uri,
                                data_fp)
        # A sampled panel holds only the sampled rows of every year; each walk-forward
        # test year is built whole when its fold is scored, its feature rows kept while a
        # later tier tests the same year.
        whole_years = WholeYears(dataset, Counter(
            fold.test_year for tier in tiers for fold in walk_forward_folds(
                _labelled(dataset, tier, until_year), n_folds=n_folds)))
        for tier in tiers:
            sampling = CaseControl(rate=sample_rate, seed=seed)
            years, panel = _panel(dataset, tier, until_year, say, sampling=sampling)
            folds = walk_forward_folds(years, n_folds=n_folds)
            test_year = partial(whole_years, tier) if sampling.sampled else None
            with mlflow.start_run(run_name=tier, nested=True) as child:
                mlflow.set_tags({"tier": tier, "data_fingerprint": data_fp})
                result.tiers[tier] = _train_tier(panel, years, tier, seed,
                                                 data_fp, force_promote, say, child.info.run_id,
                                                 data_dir, model_factory, folds=folds,
                                                 sampling=sampling, test_year=test_year,
                                                 client=client)
            whole_years.done(fold.test_year for fold in folds)
            del panel, test_year  # before the next tier's panels are built
        del whole_years
        for tier in reviews:
            key = review_key(tier)
            years, panel = _panel(dataset, tier, until_year, say, review=True)
            why = too_few_reviews(tier, years, [] if panel is None else panel.y)
            folds = None if why else review_folds(years, panel.keys["year"], panel.y, n_folds)
            if not why and not folds:
                why = (f"{tier} re-reviews are not modelled: no test year has enough earlier "
                       "re-reviews to train on")
            if why:
                log.warning(why)
                result.skipped[key] = why
                continue
            with mlflow.start_run(run_name=f"{tier} re-review", nested=True) as child:
                mlflow.set_tags({"tier": tier, "kind": "re-review", "data_fingerprint": data_fp})
                result.tiers[key] = _train_tier(panel, years, tier, seed, data_fp,
                                                force_promote, say, child.info.run_id, data_dir,
                                                model_factory, folds=folds, review=True,
                                                client=client)
            del panel
        log_summary(result.summary(), result.folds(), data_fp, ", ".join(
            f"{registered_name(t)} v{o.model_version}" for t, o in result.tiers.items()))
    return result


def _labelled(dataset, tier: str, until_year: int | None, review: bool = False) -> list[int]:
    """The years of a tier's selections (with ``review``, its re-reviews) up to until_year."""
    years = (reviewed_years if review else labelled_years)(dataset.certifications, tier)
    return [y for y in years if until_year is None or y <= until_year]


def _panel(dataset, tier: str, until_year: int | None, say: _Steps, review: bool = False,
           sampling: CaseControl | None = None):
    """(labelled years, stacked panel) of a tier's selections, or with ``review`` of its
    re-reviews (panel None when no year has one). A selection model needs 2 labelled years
    (TrainingProblem); a re-review model's needs are training.review.too_few_reviews.
    With ``sampling``, the selection panel holds only its sampled rows (the walk-forward
    test years too: training.sampling.WholeYears builds those whole); its rates_ are set per
    year."""
    from features.pipeline import stack_panels

    years = _labelled(dataset, tier, until_year, review)
    if len(years) < 2 and not review:
        raise TrainingProblem(
            f"tier {tier}: certifications table has grants in {len(years)} year(s) "
            f"({years}); training needs at least 2 labelled years")
    if not years:
        return years, None
    what = "re-review panels" if review else "as-of panels"
    say(f"{tier}: building {what} for {years[0]}-{years[-1]}")
    return years, stack_panels(dataset, years, tier, review=review, keep=sampling)


def _train_tier(panel, years: list[int], tier: str, seed: int, data_fp: str,
                force_promote: bool, say: _Steps, run_id: str, data_dir: Path,
                model_factory: ModelFactory, folds: list, sampling: CaseControl | None = None,
                review: bool = False, test_year=None, client=None) -> TierOutcome:
    """Evaluate, fit, register and gate the model of one stacked panel (a tier's
    selections, or with ``review`` its re-reviews) on its walk-forward ``folds``
    (training.splits.walk_forward_folds; re-reviews: training.review.review_folds).
    A sampled panel holds only its sampled rows; ``test_year`` then builds each test year
    whole (training.evaluate.walk_forward). ``client``: the Dask client of the LightGBM
    fits (None: this process)."""
    from features.pipeline import FEATURE_PIPELINE_VERSION

    key = review_key(tier) if review else tier
    X, y, keys = panel.X, np.asarray(panel.y, dtype=float), panel.keys
    if not isinstance(X.index, pd.RangeIndex) or X.index.start != 0:
        X, keys = X.reset_index(drop=True), keys.reset_index(drop=True)
    kept_rate = None if sampling is None or not sampling.sampled \
        else sampling.kept_rate(keys["year"], y)
    fit_rate = {} if kept_rate is None else {"kept_rate": kept_rate}
    mlflow.log_params({"labelled_years": f"{years[0]}-{years[-1]}", "rows": len(y),
                       "features": X.shape[1], "selected": int(y.sum()),
                       "fold_test_years": ",".join(str(f.test_year) for f in folds)})
    if sampling is not None:
        mlflow.log_params({"sampling": sampling.describe()[:6000]})
        mlflow.log_dict({"non_selected": {str(t): r for t, r in sorted(sampling.rates_.items())},
                         "selected": {str(t): r for t, r in
                                      sorted(sampling.selected_rates_.items())}},
                        "sampling_rates.json")
    mlflow.log_input(mlflow.data.from_pandas(
        keys.assign(label=y), source=str(Path(data_dir).resolve()), targets="label",
        name=f"{Path(data_dir).name}-{key}-panel"), context="training")

    evaluation = walk_forward(X, y, keys, folds, tier, seed=seed, model_factory=model_factory,
                              progress=say, kept_rate=kept_rate, test_year=test_year,
                              client=client)
    log_evaluation(evaluation, key)

    say(f"{key}: fitting the final model on {years[0]}-{years[-1]}")
    cluster = {} if client is None else {"client": client}
    final = model_factory(seed=seed).fit(X, y, years=keys["year"].to_numpy(), **fit_rate,
                                         **cluster)
    mlflow.log_params({"best_iteration": final.best_iteration_,
                       "calibration_folds": final.calibration_folds_,
                       **{f"lgbm.{k}": v for k, v in final._params(len(X)).items()}})
    # Each year's selection rate as the log-odds offset the trees started from.
    mlflow.log_dict({str(year): offset for year, offset in final.year_offsets_.items()},
                    "year_offsets.json")
    log_final_plots(final, X, keys, key, seed)

    say(f"{key}: registering the model")
    version = register(final, X, key, data_fp, evaluation, years[-1], FEATURE_PIPELINE_VERSION,
                       package_versions())
    card = model_card(CardFacts(
        tier=tier, registered_name=registered_name(key), version=version, review=review,
        data_fingerprint=data_fp, labelled_years=years, rows=len(X), selected=int(y.sum()),
        feature_pipeline_version=FEATURE_PIPELINE_VERSION,
        giantwatch_version=package_versions()["giantwatch"], evaluation=evaluation,
        importance=final.feature_importance(),
        sampling="" if sampling is None else sampling.describe()))
    describe(key, version, card)
    fold_key = ",".join(str(f.test_year) for f in folds)
    decision = promote_if_better(registered_name(key), version,
                                 evaluation.mean("lightgbm", GATE_METRIC),
                                 comparable_key=f"{data_fp}|{fold_key}", force=force_promote,
                                 baselines={"logistic": evaluation.mean("logistic", GATE_METRIC),
                                            "rulebook": evaluation.mean("rules", GATE_METRIC)})
    mlflow.set_tags({"gate.promoted": str(decision.promoted), "gate.reason": decision.reason,
                     "model_version": version})
    return TierOutcome(tier, evaluation, version, decision, run_id, rows=len(X), final_model=final)
