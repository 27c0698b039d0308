"""How much of the oracle's average precision the observable data can reach: a supervised ceiling.

The audit ranks each selection (a certification ``granted`` event) by how likely it was not
a merit selection, without labels. This bench cheats with the generator's labels
(truth.parquet: channel != "merit") to estimate what any scorer of the contract data could
do (an estimate, not a bound: with a few hundred labelled selections the supervised scorer
is itself limited by their number): per tier, every selection's as-of feature row (features.pipeline.build_features, the
columns the models see) is scored by a LightGBM classifier trained on the selections of the
tier's other years (cross-fitted by year: no row is scored by a model that saw it, but later
years teach earlier ones, the most optimistic honest use of the labels), and, walk-forward,
by one trained only on earlier years (the years with at least MIN_EARLIER_YEARS earlier
selection years). It prints per tier the selections, the non-merit ones, the average
precision (sklearn's, as training.audit_run.evaluate_against_truth) of the oracle
(true_p_non_merit) and of the supervised scorer and their ratio, for each variant on its
own rows. ``--json`` adds one JSON line per tier and variant. A second table tells where
the gap lies: per tier and channel, the share of its selections among the k highest
scores (k = the non-merit selections) of the oracle and of each cross-fitted scorer.

A selection's feature row does not show the pool it was chosen from (how its merit ranks
among the year's candidates against the quota); the audit learns that from every candidate.
``--audit OUT`` (the folder of a `giantwatch audit` of the same universe) adds the audit's
label-free out-of-fold scores of each selection (AUDIT_COLUMNS) as features: two more sets
of rows, the features with them and them alone, with the audit's own p_non_merit AP on the
same rows beside them. ``--leaves``, ``--rounds``, ``--min-child-samples`` and
``--learning-rate`` change LightGBM's settings (a few hundred labelled rows overfit easily).

    nice .venv/bin/python bench/bench_observable_ceiling.py --data data/demo --audit out/audit
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
from training.audit_run import precision_at_k_ties

# Modest settings (the defaults of the command line): a few thousand selections per tier at
# most, so small trees and a fixed number of rounds (no early stopping, which would need a
# third split of few rows); row and column subsampling against overfitting them.
PARAMS = {"subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "n_jobs": 2,
          "verbose": -1}
# A walk-forward model needs a few years behind it (the first lists hold few selections).
MIN_EARLIER_YEARS = 3
# The audit's scores of a selection that need no labels: merit and full selection
# probabilities (out-of-fold), its merit rank against the year's quota, the non-merit SHAP
# share and isolation, and the channel posterior.
AUDIT_COLUMNS = ["merit_probability", "full_probability", "rank_over_quota",
                 "non_merit_share", "shap_isolation", "p_non_merit"]


def selections(truth: pd.DataFrame, tier: str) -> pd.DataFrame:
    """The tier's selections (``granted`` events), one per firm and year as
    evaluate_against_truth joins them: firm_id, year, channel, label (1 = not merit),
    oracle."""
    granted = truth[(truth["event"] == "granted") & (truth["tier"] == tier)]
    granted = granted.drop_duplicates(["firm_id", "tier", "year"])
    return pd.DataFrame({"firm_id": granted["firm_id"].to_numpy(),
                         "year": granted["year"].to_numpy(dtype=int),
                         "channel": granted["channel"].to_numpy(),
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


def audit_scores(folder: Path, tier: str, rows: pd.DataFrame) -> pd.DataFrame:
    """AUDIT_COLUMNS of each selection from the audit's anomalies.csv (index = rows.index;
    NaN where the audit did not score it)."""
    anomalies = pd.read_csv(folder / "anomalies.csv", dtype={"firm_id": str})
    anomalies = anomalies[anomalies["tier"] == tier]
    anomalies = anomalies.assign(rank_over_quota=anomalies["merit_rank"] / anomalies["quota"])
    joined = rows[["firm_id", "year"]].merge(anomalies[["firm_id", "year", *AUDIT_COLUMNS]],
                                             on=["firm_id", "year"], how="left")
    joined.index = rows.index  # a left merge on unique keys keeps the rows' order
    return joined[AUDIT_COLUMNS]


def cross_fitted(X: pd.DataFrame, rows: pd.DataFrame, params: dict,
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
        model = lgb.LGBMClassifier(**PARAMS, **params)
        model.fit(X[train], y)
        scores[test] = model.predict_proba(X[test])[:, 1]
    return scores


def summary(rows: pd.DataFrame, scores: pd.Series, audit: pd.Series | None) -> dict:
    """Selections, non-merit, AP of the oracle, of the scorer and (given) of the audit's
    p_non_merit on the rows the scorer scored."""
    scored = scores.notna()
    label = rows.loc[scored, "label"]
    k = int(label.sum())

    def ap(values: pd.Series) -> float:
        if not 0 < k < len(label) or values.isna().any():
            return float("nan")
        return float(average_precision_score(label, values))

    years = rows.loc[scored, "year"]
    result = {"selections": int(scored.sum()), "non_merit": k,
              "years": f"{years.min()}-{years.max()}" if len(years) else "",
              "ap_oracle": ap(rows.loc[scored, "oracle"]), "ap_supervised": ap(scores[scored])}
    result["of_oracle"] = result["ap_supervised"] / result["ap_oracle"]
    if audit is not None:
        result["ap_audit_p_non_merit"] = ap(audit[scored])
    return result


def channel_shares(rows: pd.DataFrame, scores: dict[str, pd.Series]) -> pd.DataFrame:
    """Per channel: selections and, per score, the share of them among the k highest
    scores (k = non-merit selections; ties at the cut shared out evenly, as the audit's
    precision at k)."""
    k = int(rows["label"].sum())
    table = rows.groupby("channel")["label"].size().rename("selections").to_frame()
    for name, score in scores.items():
        table[name] = [precision_at_k_ties(rows["channel"] == channel, score, k) * k / n
                       for channel, n in table["selections"].items()]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="a generated universe (with truth.parquet)")
    parser.add_argument("--tiers", nargs="+", default=["specialized", "little_giant"])
    parser.add_argument("--seed", type=int, default=0, help="LightGBM's seed")
    parser.add_argument("--audit", type=Path, default=None,
                        help="the folder of a `giantwatch audit` of the same universe")
    parser.add_argument("--leaves", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--min-child-samples", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    params = {"num_leaves": args.leaves, "n_estimators": args.rounds,
              "min_child_samples": args.min_child_samples,
              "learning_rate": args.learning_rate, "random_state": args.seed}
    start = time.perf_counter()
    dataset = load_dataset(args.data)
    truth = pd.read_parquet(args.data / "truth.parquet")
    print("| universe | tier | features | trained on | years | selections | non-merit | "
          "oracle AP | supervised AP | of oracle | audit p_non_merit AP |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    shares = {}
    for tier in args.tiers:
        rows = selections(truth, tier)
        shares[tier] = {"oracle": rows["oracle"]}
        feature_sets = {"features": feature_rows(dataset, rows)}
        audit = None
        if args.audit is not None:
            columns = audit_scores(args.audit, tier, rows)
            audit = shares[tier]["audit p_non_merit"] = columns["p_non_merit"]
            feature_sets["features + audit"] = pd.concat([feature_sets["features"], columns],
                                                         axis=1)
            feature_sets["audit"] = columns
        for features, X in feature_sets.items():
            for variant, walk_forward in (("other years", False), ("earlier years", True)):
                scores = cross_fitted(X, rows, params, walk_forward)
                if not walk_forward:
                    shares[tier][features] = scores
                result = summary(rows, scores, audit)
                print(f"| {args.data.name} | {tier} | {features} | {variant} | "
                      f"{result['years']} | {result['selections']:,} | "
                      f"{result['non_merit']:,} | {result['ap_oracle']:.3f} | "
                      f"{result['ap_supervised']:.3f} | {result['of_oracle']:.2f} | "
                      f"{result.get('ap_audit_p_non_merit', float('nan')):.3f} |", flush=True)
                if args.json:
                    print(json.dumps({"bench": "observable_ceiling", "data": str(args.data),
                                      "tier": tier, "features": features,
                                      "variant": variant, **params, **result}),
                          flush=True)
    names = list(next(iter(shares.values())))
    print("\n| universe | tier | channel | selections | "
          + " | ".join(f"{name} top-k share" for name in names) + " |")
    print("|---|---|---|---|" + "---|" * len(names))
    for tier, scores in shares.items():
        for channel, row in channel_shares(selections(truth, tier), scores).iterrows():
            print(f"| {args.data.name} | {tier} | {channel} | {int(row['selections']):,} | "
                  + " | ".join(f"{row[name]:.2f}" for name in names) + " |")
    print(f"wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
