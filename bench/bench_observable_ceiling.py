"""How much of the oracle's average precision the observable data can reach: a supervised ceiling.

The audit ranks each selection (a certification ``granted`` event) by how likely it was not
a merit selection, without labels. This bench cheats with the generator's labels
(truth.parquet: channel != "merit") to bound what any scorer of the contract data could
do: per tier, every selection's as-of feature row (features.pipeline.build_features, the
columns the models see) is scored by a LightGBM classifier trained on the selections of the
tier's other years (cross-fitted by year: no row is scored by a model that saw it, but later
years teach earlier ones, the most optimistic honest use of the labels), and, walk-forward,
by one trained only on earlier years (the years with at least MIN_EARLIER_YEARS earlier
selection years). It prints per tier the selections, the non-merit ones, the average
precision (sklearn's, as training.audit_run.evaluate_against_truth) of the oracle
(true_p_non_merit) and of the supervised scorer and their ratio, for each variant on its
own rows. ``--json`` adds one JSON line per tier and variant.

    nice .venv/bin/python bench/bench_observable_ceiling.py --data data/demo
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from features.contract import load_dataset
from features.pipeline import build_features

# Modest settings: a few thousand selections per tier at most, so small trees and a fixed
# number of rounds (no early stopping, which would need a third split of few rows).
PARAMS = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15,
          "min_child_samples": 20, "subsample": 0.8, "subsample_freq": 1,
          "colsample_bytree": 0.8, "n_jobs": 2, "verbose": -1}
# A walk-forward model needs a few years behind it (the first lists hold few selections).
MIN_EARLIER_YEARS = 3


def selections(truth: pd.DataFrame, tier: str) -> pd.DataFrame:
    """The tier's selections (``granted`` events), one per firm and year as
    evaluate_against_truth joins them: firm_id, year, label (1 = not merit), oracle."""
    granted = truth[(truth["event"] == "granted") & (truth["tier"] == tier)]
    granted = granted.drop_duplicates(["firm_id", "tier", "year"])
    return pd.DataFrame({"firm_id": granted["firm_id"].to_numpy(),
                         "year": granted["year"].to_numpy(dtype=int),
                         "label": (granted["channel"] != "merit").to_numpy(dtype=int),
                         "oracle": granted["true_p_non_merit"].to_numpy(dtype=float)})


def feature_rows(dataset, rows: pd.DataFrame) -> pd.DataFrame:
    """Each selection's as-of feature row (index = rows.index), built one year at a time."""
    parts = []
    for year, part in rows.groupby("year", sort=True):
        X = build_features(dataset, int(year), firm_ids=part["firm_id"])
        X.index = part.index  # one row per firm of the year, in the order given
        parts.append(X)
    return pd.concat(parts).loc[rows.index]


def cross_fitted(X: pd.DataFrame, rows: pd.DataFrame, seed: int,
                 walk_forward: bool) -> pd.Series:
    """Out-of-year scores: each year scored by a model fitted on the other years (or, with
    walk_forward, the earlier years; years with too few behind them stay NaN)."""
    scores = pd.Series(np.nan, index=rows.index)
    years = sorted(rows["year"].unique())
    for i, year in enumerate(years):
        test = rows["year"] == year
        if walk_forward:
            if i < MIN_EARLIER_YEARS:
                continue
            train = rows["year"] < year
        else:
            train = ~test
        y = rows.loc[train, "label"]
        if y.nunique() < 2:
            continue  # nothing to learn from: the year stays unscored
        model = lgb.LGBMClassifier(random_state=seed, **PARAMS)
        model.fit(X[train], y)
        scores[test] = model.predict_proba(X[test])[:, 1]
    return scores


def summary(rows: pd.DataFrame, scores: pd.Series) -> dict:
    """Selections, non-merit, AP of the oracle and of the scorer on the rows it scored."""
    scored = scores.notna()
    label, oracle = rows.loc[scored, "label"], rows.loc[scored, "oracle"]
    k = int(label.sum())
    both = 0 < k < len(label)
    ap_oracle = float(average_precision_score(label, oracle)) if both else float("nan")
    ap = float(average_precision_score(label, scores[scored])) if both else float("nan")
    years = rows.loc[scored, "year"]
    return {"selections": int(scored.sum()), "non_merit": k,
            "years": f"{years.min()}-{years.max()}" if len(years) else "",
            "ap_oracle": ap_oracle, "ap_supervised": ap, "of_oracle": ap / ap_oracle}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="a generated universe (with truth.parquet)")
    parser.add_argument("--tiers", nargs="+", default=["specialized", "little_giant"])
    parser.add_argument("--seed", type=int, default=0, help="LightGBM's seed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    dataset = load_dataset(args.data)
    truth = pd.read_parquet(args.data / "truth.parquet")
    print("| universe | tier | variant | years | selections | non-merit | oracle AP | "
          "supervised AP | of oracle |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    for tier in args.tiers:
        rows = selections(truth, tier)
        X = feature_rows(dataset, rows)
        for variant, walk_forward in (("other years", False), ("earlier years", True)):
            result = summary(rows, cross_fitted(X, rows, args.seed, walk_forward))
            print(f"| {args.data.name} | {tier} | {variant} | {result['years']} | "
                  f"{result['selections']:,} | {result['non_merit']:,} | "
                  f"{result['ap_oracle']:.3f} | {result['ap_supervised']:.3f} | "
                  f"{result['of_oracle']:.2f} |", flush=True)
            if args.json:
                print(json.dumps({"bench": "observable_ceiling", "data": str(args.data),
                                  "tier": tier, "variant": variant, "seed": args.seed,
                                  **result}), flush=True)
    print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
