"""LightGBM's walk-forward ranking against the best achievable, per tier and universe.

For each seed, generates a universe (or reuses ``--data-root/firms-<N>-seed-<S>``) and runs
`training.oracle.oracle_comparison`: per tier, the mean over the walk-forward test years of
LightGBM's ROC-AUC and PR-AUC, the same metrics of the generator's true selection
probabilities on the same rows (the oracle), their ratios, and the boosting rounds early
stopping kept in each fold. ``--json`` adds the per-fold rows as JSON lines.

    .venv/bin/python bench/bench_oracle.py --firms 20000 --seeds 7 11 3
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from training.oracle import POOLED, oracle_comparison


def universe(root: Path, firms: int, seed: int) -> Path:
    """The generated universe of (firms, seed) under root, written on first use."""
    from training.synthetic import generate_universe, write_universe

    folder = root / f"firms-{firms}-seed-{seed}"
    if not (folder / "truth_candidates.parquet").exists():
        write_universe(generate_universe(n_firms=firms, seed=seed), folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    parser.add_argument("--tiers", nargs="+", default=None)
    parser.add_argument("--model-seed", type=int, default=0, help="LightGBM's seed (train --seed)")
    parser.add_argument("--data-root", type=Path, default=Path("bench-data"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"| universe ({args.firms:,} firms) | tier | ROC-AUC | oracle | ratio | pooled ratio | "
          "PR-AUC | oracle | ratio | pooled ratio | rounds per fold |")
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for seed in args.seeds:
        data = universe(args.data_root, args.firms, seed)
        kwargs = {"tiers": tuple(args.tiers)} if args.tiers else {}
        table = oracle_comparison(data, seed=args.model_seed, **kwargs)
        for tier, rows in table.groupby("tier", sort=False):
            print(_line(seed, tier, rows), flush=True)
        if args.json:
            for record in table.to_dict(orient="records"):
                print(json.dumps({"bench": "oracle", "firms": args.firms, "universe_seed": seed,
                                  **record}), flush=True)


def _line(seed: int, tier: str, rows: pd.DataFrame) -> str:
    """One Markdown row of a tier: the mean over folds, the pooled ratios and the rounds."""
    mean = rows[rows["test_year"] == "mean"].iloc[0]
    pooled = rows[rows["test_year"] == POOLED].iloc[0]
    folds = rows[~rows["test_year"].isin(["mean", POOLED])]
    rounds = " / ".join(str(int(r)) for r in folds["rounds"])
    return (f"| seed {seed} | {tier} | {mean.roc_auc:.4f} | {mean.oracle_roc_auc:.4f} | "
            f"{mean.roc_auc_ratio:.4f} | {pooled.roc_auc_ratio:.4f} | {mean.pr_auc:.3f} | "
            f"{mean.oracle_pr_auc:.3f} | {mean.pr_auc_ratio:.2f} | {pooled.pr_auc_ratio:.2f} | "
            f"{rounds} |")


if __name__ == "__main__":
    main()
