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


def universe(root: Path, firms: int, seed: int) -> Path:
    """The generated universe of (firms, seed) under root, written on first use."""
    from training.synthetic import generate_universe, write_universe

    folder = root / f"firms-{firms}-seed-{seed}"
    if not (folder / "truth_candidates.parquet").exists():
        write_universe(generate_universe(n_firms=firms, seed=seed), folder)
    return folder


def main() -> None:
    from training.oracle import oracle_comparison

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11])
    parser.add_argument("--tiers", nargs="+", default=None)
    parser.add_argument("--model-seed", type=int, default=0, help="LightGBM's seed (train --seed)")
    parser.add_argument("--data-root", type=Path, default=Path("bench-data"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tables = []
    for seed in args.seeds:
        data = universe(args.data_root, args.firms, seed)
        kwargs = {"tiers": tuple(args.tiers)} if args.tiers else {}
        tables.append(oracle_comparison(data, seed=args.model_seed, **kwargs)
                      .assign(universe_seed=seed))
    table = pd.concat(tables, ignore_index=True)
    means = table[table["test_year"] == "mean"]
    rounds = (table[table["test_year"] != "mean"].groupby(["universe_seed", "tier"], sort=False)
              ["rounds"].agg(lambda r: " / ".join(str(int(v)) for v in r)))
    print(f"| universe ({args.firms:,} firms) | tier | ROC-AUC | oracle | ratio | PR-AUC | "
          "oracle | ratio | rounds per fold |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in means.itertuples(index=False):
        print(f"| seed {row.universe_seed} | {row.tier} | {row.roc_auc:.4f} | "
              f"{row.oracle_roc_auc:.4f} | {row.roc_auc_ratio:.4f} | {row.pr_auc:.3f} | "
              f"{row.oracle_pr_auc:.3f} | {row.pr_auc_ratio:.2f} | "
              f"{rounds[(row.universe_seed, row.tier)]} |")
    if args.json:
        for record in table.to_dict(orient="records"):
            print(json.dumps({"bench": "oracle", "firms": args.firms, **record}))


if __name__ == "__main__":
    main()
