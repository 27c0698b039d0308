"""Re-review models against the rulebook: LightGBM settings over several LightGBM seeds.

For each universe (``--data``), builds a tier's re-review panel and runs the walk-forward
folds of `training.train` (`training.review.review_folds`): the rulebook and the logistic
regression once, and each LightGBM setting of SETTINGS once per LightGBM seed (mean, min and
max of ROC-AUC and PR-AUC over the seeds, and the rounds early stopping kept), so a setting is
judged on more than one draw of its bagging and split thresholds. Then a paired bootstrap of
the test titles: the 90% interval of ROC-AUC and PR-AUC, production LightGBM (seed 0) minus
the rulebook, i.e. how far one test year can tell the two apart.

    .venv/bin/python bench/bench_review.py --data data/demo U3 U11 --tier little_giant
"""

from __future__ import annotations

import argparse
import functools
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from features.contract import load_dataset
from features.domain import reviewed_years
from features.pipeline import stack_panels
from models.lgbm import EXCLUDED_FEATURES, TierModel
from training.evaluate import walk_forward
from training.review import review_folds


def _rule_monotone(columns) -> list[int]:
    """+1 on every rule result (passing a criterion never lowers the chance of renewal)."""
    return [int(c.startswith("rule_") and not c.endswith("_max_possible"))
            for c in columns if c not in EXCLUDED_FEATURES]


# name -> LightGBM parameters over DEFAULT_PARAMS (a callable gets the panel's columns).
SETTINGS = {
    "production": {},
    "10 rows per leaf": {"min_data_in_leaf": 10},
    "5 rows per leaf": {"min_data_in_leaf": 5},
    "5 rows per leaf, rules monotone, lambda_l2 10": lambda columns: {
        "min_data_in_leaf": 5, "lambda_l2": 10.0, "monotone_constraints": _rule_monotone(columns)},
}


def _bootstrap(y: np.ndarray, p: np.ndarray, q: np.ndarray, n: int = 2000) -> dict:
    """90% intervals of metric(p) - metric(q) over n resamples of the rows."""
    rng = np.random.default_rng(0)
    out = {"roc": [], "pr": []}
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue
        out["roc"].append(roc_auc_score(y[i], p[i]) - roc_auc_score(y[i], q[i]))
        out["pr"].append(average_precision_score(y[i], p[i]) - average_precision_score(y[i], q[i]))
    return {k: np.quantile(v, [0.05, 0.95]) for k, v in out.items()}


def bench(data: Path, tier: str, model_seeds: int) -> None:
    dataset = load_dataset(data)
    years = reviewed_years(dataset.certifications, tier)
    panel = stack_panels(dataset, years, tier, review=True)
    X, y = panel.X.reset_index(drop=True), np.asarray(panel.y, dtype=float)
    keys = panel.keys.reset_index(drop=True)
    folds = review_folds(years, keys["year"], y)
    base = walk_forward(X, y, keys, folds, tier, seed=0)
    means = base.metrics.query("test_year == 'mean'").set_index("model")
    test = base.metrics.query("test_year != 'mean' and model == 'rules'")
    print(f"{data} {tier}: test years {', '.join(test['test_year'])} "
          f"({int(test['n_test'].sum())} re-reviews, "
          f"{int((test['n_test'] - test['n_selected']).sum())} not renewed)")
    for name in ("rules", "logistic"):
        print(f"  {name:48s} ROC-AUC {means.loc[name, 'roc_auc']:.3f}  "
              f"PR-AUC {means.loc[name, 'pr_auc']:.4f}")
    for name, params in SETTINGS.items():
        params = params(X.columns) if callable(params) else params
        rows = []
        for seed in range(model_seeds):
            ev = walk_forward(X, y, keys, folds, tier, seed=seed, names=("lightgbm",),
                              model_factory=functools.partial(TierModel, params=params))
            m = ev.metrics.query("test_year != 'mean'")
            rows.append((m["roc_auc"].mean(), m["pr_auc"].mean(),
                         "/".join(str(int(r)) for r in m["rounds"])))
        roc = np.array([r[0] for r in rows])
        pr = np.array([r[1] for r in rows])
        print(f"  {name:48s} ROC-AUC {roc.mean():.3f} ({roc.min():.3f}-{roc.max():.3f})  "
              f"PR-AUC {pr.mean():.4f} ({pr.min():.4f}-{pr.max():.4f})  "
              f"rounds {', '.join(r[2] for r in rows)}", flush=True)
    pred = base.predictions
    ci = _bootstrap(pred["label"].to_numpy(), pred["p_lightgbm"].to_numpy(),
                    pred["p_rules"].to_numpy())
    print(f"  production (seed 0) minus rules, 90% bootstrap interval: ROC-AUC "
          f"{ci['roc'][0]:+.3f} to {ci['roc'][1]:+.3f}, PR-AUC "
          f"{ci['pr'][0]:+.4f} to {ci['pr'][1]:+.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--tier", default="little_giant")
    parser.add_argument("--model-seeds", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    for data in args.data:
        bench(data, args.tier, args.model_seeds)


if __name__ == "__main__":
    main()
