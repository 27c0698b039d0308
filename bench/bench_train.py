"""Wall time and peak memory of `giantwatch train` (all tiers) beside the raw LightGBM fit.

A fresh subprocess generates a universe, then runs the whole training path (as-of panels,
walk-forward evaluation of LightGBM and both baselines, final fits, plots, MLflow
registration) into a throwaway MLflow store. On the same stacked matrices it times
LightGBM's own `lightgbm.train` for the final models' round counts: the raw engine (one
served booster; each TierModel fit also runs an early-stopping probe and
`calibration_folds` out-of-fold boosters for its calibration).

    .venv/bin/python bench/bench_train.py --firms 60000   # about 1M firm-years
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(n_firms: int, seed: int) -> None:
    import lightgbm as lgb

    from features.contract import load_dataset
    from features.pipeline import stack_panels
    from training.synthetic import generate_universe, write_universe
    from training.train import train

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "universe"
        write_universe(generate_universe(n_firms=n_firms, seed=seed), data)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        os.chdir(tmp)
        start = time.perf_counter()
        result = train(data, seed=0)
        train_s = time.perf_counter() - start
        dataset = load_dataset(data)
        raw = {}
        for tier, outcome in result.tiers.items():
            years = sorted(int(f) for f in
                           outcome.evaluation.predictions["year"].unique())
            model = outcome.final_model
            certs = dataset.certifications
            labelled = sorted(certs.loc[(certs["tier"] == tier) & (certs["event"] == "granted"),
                                        "year"].unique())
            panel = stack_panels(dataset, labelled, tier)
            X = panel.X[list(model.feature_names_in_)]
            offset = model.row_offsets(panel.keys["year"])
            t0 = time.perf_counter()
            lgb.train(model._params(len(X)), lgb.Dataset(X, panel.y.to_numpy(), init_score=offset),
                      num_boost_round=model.best_iteration_)
            raw[tier] = {"raw_fit_s": time.perf_counter() - t0, "rows": len(panel.X),
                         "rounds": model.best_iteration_, "test_years": years}
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "firms": n_firms, "firm_years": sum(o.rows for o in result.tiers.values()),
        "train_s": train_s, "raw_final_fit_s": sum(r["raw_fit_s"] for r in raw.values()),
        "tiers": raw, "peak_rss_mb": peak_kib / 1024,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.firms, args.seed)
        return
    done = subprocess.run([sys.executable, __file__, "--child", "--firms", str(args.firms),
                           "--seed", str(args.seed)], check=False, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"firms {result['firms']:,}; firm-years (all tiers) {result['firm_years']:,}")
    print(f"giantwatch train: {result['train_s']:.1f} s (walk-forward x3 models + final fits "
          f"+ plots + registry); raw lightgbm.train of the final models: "
          f"{result['raw_final_fit_s']:.1f} s; peak RSS {result['peak_rss_mb']:,.0f} MB")
    print(json.dumps({"bench": "train", **result}))


if __name__ == "__main__":
    main()
