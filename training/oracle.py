"""How close the selection models come to the best ranking achievable (synthetic universes).

A generated universe knows each candidate's true probability of selection
(``truth_candidates.parquet``: every firm eligible for a tier's list in a year, with
``true_p_selected``). Ranking the walk-forward test rows by it is the best any model can
do on those rows: what remains is the committee's own noise. `oracle_comparison` scores
LightGBM walk-forward exactly as `giantwatch train` does and puts the oracle beside it
on the same rows, so "0.98 of the achievable ROC-AUC" is a measured ratio, not a guess.
The truth is read for this measurement only, never to fit or choose anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.domain import TIERS, labelled_years
from models.metrics import binary_metrics
from training.evaluate import ModelFactory, production_model, walk_forward
from training.splits import labelled_years as labelled_years_of
from training.splits import walk_forward_folds

TRUTH_CANDIDATES = "truth_candidates.parquet"
RANKING_METRICS = ("roc_auc", "pr_auc")
POOLED = "pooled"  # the test_year of the row over every test row of a tier at once


def oracle_probabilities(truth_candidates: pd.DataFrame, keys: pd.DataFrame,
                         tier: str) -> np.ndarray:
    """(n_rows,) the generator's true probability that each (firm_id, year) of ``keys``
    gets a new ``tier`` title; 0 where the firm was not eligible for that list (no report
    for the year before, a title that rules it out, up for re-review)."""
    truth = truth_candidates[truth_candidates["tier"] == tier]
    index = pd.MultiIndex.from_frame(truth[["firm_id", "year"]].astype({"firm_id": str,
                                                                        "year": "int64"}))
    p = pd.Series(truth["true_p_selected"].to_numpy(float), index=index)
    wanted = pd.MultiIndex.from_frame(keys[["firm_id", "year"]].astype({"firm_id": str,
                                                                       "year": "int64"}))
    return p.reindex(wanted).fillna(0.0).to_numpy()


def tier_comparison(X: pd.DataFrame, y, keys: pd.DataFrame, tier: str,
                    truth_candidates: pd.DataFrame, seed: int = 0, n_folds: int = 3,
                    model_factory: ModelFactory = production_model, progress=None) -> list[dict]:
    """One tier's rows of `oracle_comparison` (per test year) from its stacked panel:
    X (n_rows, n_features), y (n_rows,) labels, keys (firm_id, year) of each row."""
    keys = keys.reset_index(drop=True)
    y = np.asarray(y, dtype=float)
    folds = walk_forward_folds(labelled_years_of(keys["year"].to_numpy(), y), n_folds=n_folds)
    evaluation = walk_forward(X.reset_index(drop=True), y, keys, folds, tier, seed=seed,
                              model_factory=model_factory, progress=progress,
                              names=("lightgbm",))
    pred = evaluation.predictions
    pred["p_oracle"] = oracle_probabilities(truth_candidates, pred, tier)
    rows = []
    for fold in evaluation.metrics.query("test_year != 'mean'").itertuples(index=False):
        test = pred[pred["year"] == int(fold.test_year)]
        oracle = binary_metrics(test["label"].to_numpy(), test["p_oracle"].to_numpy())
        rows.append({"tier": tier, "test_year": fold.test_year, "n_test": fold.n_test,
                     "n_selected": fold.n_selected, "rounds": fold.rounds,
                     **{m: getattr(fold, m) for m in RANKING_METRICS},
                     **{f"oracle_{m}": oracle[m] for m in RANKING_METRICS}})
    # Every test row at once: the probabilities of different test years must also rank
    # against each other (each fold's calibration sets its year's scale).
    model = binary_metrics(pred["label"].to_numpy(), pred["p_lightgbm"].to_numpy())
    oracle = binary_metrics(pred["label"].to_numpy(), pred["p_oracle"].to_numpy())
    rows.append({"tier": tier, "test_year": POOLED, "n_test": len(pred),
                 "n_selected": int(pred["label"].sum()), "rounds": np.nan,
                 **{m: model[m] for m in RANKING_METRICS},
                 **{f"oracle_{m}": oracle[m] for m in RANKING_METRICS}})
    return rows


def oracle_comparison(data_dir: str | Path, tiers: tuple[str, ...] = TIERS, seed: int = 0,
                      n_folds: int = 3, model_factory: ModelFactory = production_model,
                      progress=None) -> pd.DataFrame:
    """LightGBM's walk-forward ranking against the oracle's on the same test rows.

    data_dir: a generated universe (with TRUTH_CANDIDATES). Returns one row per tier and
    test year and one per tier with test_year "mean" (the mean over folds, as `train`
    reports) and one with test_year POOLED (every test row of the tier at once: the
    years' probabilities ranked together): n_test, n_selected, rounds (LightGBM's boosting
    rounds), and for each of RANKING_METRICS the model's value, the oracle's
    (``oracle_<metric>``) and their ratio (``<metric>_ratio``; of the means on the mean row).
    """
    from features.contract import load_dataset
    from features.pipeline import stack_panels

    data_dir = Path(data_dir)
    truth = pd.read_parquet(data_dir / TRUTH_CANDIDATES)
    dataset = load_dataset(data_dir)
    rows = []
    for tier in tiers:
        years = labelled_years(dataset.certifications, tier)
        panel = stack_panels(dataset, years, tier)
        rows += tier_comparison(panel.X, panel.y, panel.keys, tier, truth, seed=seed,
                                n_folds=n_folds, model_factory=model_factory,
                                progress=progress)
    return comparison_table(rows)


def comparison_table(rows: list[dict]) -> pd.DataFrame:
    """The rows of `tier_comparison` with a mean row per tier and the ratios added."""
    table = pd.DataFrame(rows)
    tiers = list(dict.fromkeys(table["tier"]))
    folds = table[table["test_year"] != POOLED].drop(columns="test_year")
    means = folds.groupby("tier", sort=False).mean().reset_index()
    table = pd.concat([table, means.assign(test_year="mean")], ignore_index=True)
    for metric in RANKING_METRICS:
        table[f"{metric}_ratio"] = table[metric] / table[f"oracle_{metric}"]
    table["order"] = table["tier"].map({tier: i for i, tier in enumerate(tiers)})
    table = table.sort_values(["order", "test_year"], kind="stable", ignore_index=True)
    return table.drop(columns="order")
