"""Batch scoring at scale: time per firm, ratio to LightGBM's own pred_contrib, peak memory.

    .venv/bin/python bench/bench_scoring.py --firms 200000 1000000 --repeats 3 1

For each size it generates a synthetic universe (once, kept under --data-root), then runs
`serving.bench.run_bench` in a fresh process, so that the peak resident set size belongs to
that size alone. Models come from the MLflow store MLFLOW_TRACKING_URI (default: a SQLite
store under --store); if it has no production models, they are trained first on a universe
of --train-firms firms (training on the benchmark sizes themselves would take hours; the
scoring cost depends on the models' trees, not on how many firms trained them).

Targets: end to end at most 0.5x the raw pred_contrib time on the same rows at 200,000
firms; 1,000,000 firms x 3 tiers with reasons and eligibility in at most 2 minutes and 6 GB
peak memory; time per firm about flat from 200k to 1M. Prints a table and, as the last
line, one JSON object.

    .venv/bin/python bench/bench_scoring.py --firms 200000 1000000 --repeats 3 1 --skip-raw 1000000
    .venv/bin/python bench/bench_scoring.py --firms 200000 --model-alias all   # 3 tiers
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _universe(n_firms: int, seed: int, root: Path) -> Path:
    folder = root / f"firms-{n_firms}-seed-{seed}"
    if not (folder / "firms.parquet").is_file():
        from training.synthetic import generate_universe, write_universe

        write_universe(generate_universe(n_firms=n_firms, seed=seed), folder, fmt="parquet")
    return folder


def _child(args) -> None:
    if args.generate:
        print(json.dumps({"data": str(_universe(args.firms[0], args.seed, args.data_root))}))
        return
    from serving.bench import run_bench

    result = run_bench(args.data, args.year, repeats=args.repeats[0], chunk_size=args.chunk_size,
                       model_alias=args.model_alias, raw_engine=args.firms[0] not in args.skip_raw)
    print(json.dumps(result))


def _run_child(*extra: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *extra], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ensure_models(args) -> None:
    from serving.score import ScoringProblem, load_models

    try:
        load_models(args.model_alias)
        return
    except ScoringProblem as exc:
        print(f"{exc}\ntraining on {args.train_firms:,} firms first...", file=sys.stderr)
    from training.train import train

    data = Path(_run_child("--generate", "--firms", str(args.train_firms), "--seed",
                           str(args.seed), "--data-root", str(args.data_root))["data"])
    start = time.perf_counter()
    train(data, n_folds=args.folds, seed=0, force_promote=True)  # speed, not quality
    print(f"trained in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, nargs="+", default=[3, 1],
                        help="runs per size (one value for all sizes, or one per size)")
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--chunk-size", type=int, default=100_000)
    parser.add_argument("--model-alias", default="production",
                        help="registry alias of the scored models (e.g. all: every tier's "
                             "version 1, Specialized included)")
    parser.add_argument("--data-root", type=Path, default=Path("bench-data"))
    parser.add_argument("--store", type=Path, default=Path("bench-mlruns"))
    parser.add_argument("--train-firms", type=int, default=20_000)
    parser.add_argument("--folds", type=int, default=1, help="walk-forward folds when training")
    parser.add_argument("--skip-raw", type=int, nargs="*", default=[],
                        help="sizes measured without the raw engine (pred_contrib alone "
                             "takes several times the scoring run at 1M firms)")
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        args.store.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{args.store.resolve() / 'mlflow.db'}"
    if args.child:
        _child(args)
        return
    _ensure_models(args)
    repeats = args.repeats * len(args.firms) if len(args.repeats) == 1 else args.repeats
    results = []
    for n_firms, runs in zip(args.firms, repeats):
        data = _run_child("--generate", "--firms", str(n_firms), "--seed", str(args.seed),
                          "--data-root", str(args.data_root))["data"]
        result = _run_child("--data", data, "--year", str(args.year), "--repeats", str(runs),
                            "--chunk-size", str(args.chunk_size), "--firms", str(n_firms),
                            "--model-alias", args.model_alias,
                            "--skip-raw", *map(str, args.skip_raw))
        result["universe_firms"] = n_firms
        results.append(result)
        print(f"{n_firms:,} firms done: {json.dumps(result)}", file=sys.stderr, flush=True)
    print(f"{'firms':>10} {'scored':>10} {'e2e s':>8} {'ms/firm':>8} {'raw s':>8} "
          f"{'ratio':>6} {'peak MB':>8}  top stages")
    for r in results:
        top = sorted(r["stages"].items(), key=lambda kv: -kv[1])[:4]
        print(f"{r['universe_firms']:>10,} {r['firms']:>10,} {r['end_to_end_s']:>8.1f} "
              f"{r['per_firm_ms']:>8.3f} {r['raw_contrib_s']:>8.1f} {r['ratio']:>6.2f} "
              f"{r['peak_rss_mb']:>8.0f}  " + ", ".join(f"{k} {v:.0f}s" for k, v in top))
    if len(results) > 1:
        growth = results[-1]["per_firm_ms"] / results[0]["per_firm_ms"]
        print(f"time per firm, largest / smallest size: {growth:.2f}")
    print(json.dumps({"bench": "scoring", "year": args.year, "results": results}))


if __name__ == "__main__":
    main()
