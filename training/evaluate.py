"""Walk-forward evaluation of LightGBM against the rule and logistic baselines on the same folds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.baselines import LogisticBaseline, RuleBaseline
from models.lgbm import TierModel
from models.metrics import binary_metrics
from training.splits import Fold

MODEL_NAMES = ("lightgbm", "logistic", "rules")


@dataclass
class Evaluation:
    """metrics: one row per (model, test_year) plus the mean over folds (test_year = "mean").
    predictions: out-of-fold rows (firm_id, year, label, p_lightgbm, p_lightgbm_raw,
    p_logistic, p_rules) — every row was scored by models that never saw its year."""

    metrics: pd.DataFrame
    predictions: pd.DataFrame
    folds: list[Fold]

    def mean(self, model: str, metric: str) -> float:
        row = self.metrics[(self.metrics["model"] == model) & (self.metrics["test_year"] == "mean")]
        return float(row[metric].iloc[0])


ModelFactory = Callable[[int], TierModel]
"""Builds the (unfitted) LightGBM model of a fit from a seed, called as
``model_factory(seed=seed)`` (so ``functools.partial(TierModel, ...)`` is a factory).

The estimator must offer TierModel's interface (``fit(X, y, *, years)``, ``predict_proba``,
``decision_function``, ``probability_from_margin``, ``uncalibrated_from_margin``,
``predict_uncalibrated``; with a Dask client, also ``fit(..., client=...)``; the final
model of `training.train` also ``contributions``, ``feature_importance``,
``feature_names_in_``, ...). Tests pass small fast models, e.g.
``functools.partial(TierModel, num_boost_round=60, early_stopping_rounds=10)``.
"""


def production_model(seed: int) -> TierModel:
    """The default model factory: the production TierModel."""
    return TierModel(seed=seed)


def make_models(tier: str, seed: int, model_factory: ModelFactory = production_model,
                names: tuple[str, ...] = MODEL_NAMES) -> dict:
    builders = {"lightgbm": lambda: model_factory(seed=seed),
                "logistic": lambda: LogisticBaseline(seed=seed),
                "rules": lambda: RuleBaseline(tier=tier)}
    return {name: builders[name]() for name in names}


def walk_forward(X: pd.DataFrame, y, keys: pd.DataFrame, folds: list[Fold], tier: str,
                 seed: int = 0, model_factory: ModelFactory = production_model,
                 progress: Callable[[str], None] | None = None,
                 names: tuple[str, ...] = MODEL_NAMES, train_rows=None,
                 kept_rate=None, client=None,
                 test_year: Callable[[int], tuple[pd.DataFrame, np.ndarray, pd.DataFrame]]
                 | None = None) -> Evaluation:
    """Fit every model per fold on the training years, score the test year.

    model_factory(seed=seed) builds the LightGBM model of each fold (see `ModelFactory`);
    names: the models of MODEL_NAMES to evaluate (all by default). LightGBM's rows also
    carry its boosting rounds (``rounds``, the round count its early stopping found).
    Case-control sampling (training.sampling): train_rows, (n_rows,) bool, the rows models
    may train on (the sample; default every row), and kept_rate, (n_rows,) the fraction of
    each row's year's rows of its class in the sample (training.sampling.CaseControl.
    kept_rate), passed to every fit so probabilities are on the population scale. A test
    year is scored on all its rows, sampled or not.
    client: a distributed Client whose cluster fits LightGBM's boosters (TierModel.fit's
    ``client``; None = this process); the baselines are fitted here.
    test_year: year -> (X, y, keys) of every candidate of that year, built when its fold is
    scored and dropped after it, for a sample (X, y, keys) that holds only the sampled rows
    of the test years (default: the test rows are X's rows of the year).
    """
    years = keys["year"].to_numpy()
    y = np.asarray(y, dtype=float)
    rows, predictions = [], []
    for fold in folds:
        train = fold.train_mask(years)
        if train_rows is not None:
            train &= np.asarray(train_rows, dtype=bool)
        sampling = {} if kept_rate is None else {"kept_rate": np.asarray(kept_rate)[train]}
        if test_year is None:
            test = fold.test_mask(years)
            assert not np.any(train & test), "a fold's training and test rows overlap"
            X_test, y_test, keys_test = X[test], y[test], keys.loc[test]
        else:
            if progress:
                progress(f"{tier}: building the whole test year {fold.test_year}")
            X_test, y_test, keys_test = test_year(fold.test_year)
            y_test = np.asarray(y_test, dtype=float)
            assert (keys_test["year"] == fold.test_year).all(), "test rows of another year"
        fold_pred = keys_test[["firm_id", "year"]].reset_index(drop=True)
        fold_pred["label"] = y_test.astype(int)
        models = make_models(tier, seed, model_factory, names)
        for name in names:
            model = models.pop(name)
            if progress:
                progress(f"{tier}: {name} on test year {fold.test_year}")
            cluster = {"client": client} if client is not None and name == "lightgbm" else {}
            model.fit(X[train], y[train], years=years[train], **sampling, **cluster)
            if name == "lightgbm":  # one pass of the trees for both probabilities
                margin = model.decision_function(X_test)
                p = model.probability_from_margin(margin)
            else:
                p = model.predict_proba(X_test)[:, 1]
            fold_pred[f"p_{name}"] = p
            rows.append({"model": name, "test_year": str(fold.test_year),
                         "train_years": f"{min(fold.train_years)}-{max(fold.train_years)}",
                         "n_train": int(train.sum()), "n_test": len(y_test),
                         "n_selected": int(y_test.sum()),
                         **binary_metrics(y_test, p)})
            if name == "lightgbm":
                fold_pred["p_lightgbm_raw"] = model.uncalibrated_from_margin(margin)
                rows[-1]["ece_uncalibrated"] = binary_metrics(y_test, fold_pred["p_lightgbm_raw"])["ece"]
                rows[-1]["rounds"] = getattr(model, "best_iteration_", np.nan)
            del model  # its boosters and copies go before the next model is fitted
        predictions.append(fold_pred)
        del X_test, y_test, keys_test
    metrics = pd.DataFrame(rows)
    means = metrics.drop(columns=["test_year", "train_years"]).groupby("model", sort=False).mean()
    means = means.reset_index().assign(test_year="mean", train_years="")
    metrics = pd.concat([metrics, means[metrics.columns]], ignore_index=True)
    return Evaluation(metrics=metrics, predictions=pd.concat(predictions, ignore_index=True),
                      folds=folds)
