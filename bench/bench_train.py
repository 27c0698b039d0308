"""Wall time and peak memory of `giantwatch train` (all tiers) beside the raw LightGBM fit.

A fresh subprocess generates a universe (or reads one, ``--data``), then runs the whole
training path (as-of panels, walk-forward evaluation of LightGBM and both baselines, final
fits, plots, MLflow registration) into a throwaway MLflow store. Where the time went is read
from train's progress log (the time from one step to the next, summed by kind). On the same
training rows it times LightGBM's own `lightgbm.train` for the final models' round counts:
the raw engine (one served booster; each TierModel fit also runs an early-stopping probe
and `calibration_folds` out-of-fold boosters for its calibration).

``--sample-rate`` is train's (training.sampling): runs at 1 and at a lower rate on the same
universe and seed have the same folds and the same (whole) test years, so their
walk-forward means, printed per tier and model, give the cost of sampling.

    .venv/bin/python bench/bench_train.py --firms 60000 --sample-rate 1     # full data
    .venv/bin/python bench/bench_train.py --firms 60000 --sample-rate 0.1
    .venv/bin/python bench/bench_train.py --data /path/to/firms-1000000 --skip-raw
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# train's progress messages, by the stage whose time runs from one message to the next.
STAGES = (("panels", re.compile(r"building")), ("final fit", re.compile(r"fitting the final")),
          ("register", re.compile(r"registering")),
          ("lightgbm folds", re.compile(r": lightgbm on test year")),
          ("logistic folds", re.compile(r": logistic on test year")),
          ("rules folds", re.compile(r": rules on test year")),
          ("load", re.compile(r"Loading")))


def _cpu_s() -> float:
    """CPU seconds of this process so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Clock(logging.Handler):
    """Records (wall time, CPU time, message) of each of train's progress steps."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.steps: list[tuple[float, float, str]] = []

    def emit(self, record):
        if getattr(record, "step", None):
            self.steps.append((time.perf_counter(), _cpu_s(), record.getMessage()))
            print(time.strftime("%H:%M:%S"), f"cpu {_cpu_s():.0f}", record.getMessage(),
                  file=sys.stderr, flush=True)

    def stages(self, end: float, end_cpu: float) -> tuple[dict[str, float], dict[str, float]]:
        """(wall seconds, CPU seconds) per stage: from each step to the next, summed by kind
        (CPU time is the less load-sensitive of the two on a shared machine)."""
        wall: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for (t0, c0, message), (t1, c1, _) in zip(self.steps,
                                                  self.steps[1:] + [(end, end_cpu, "")]):
            stage = next((name for name, pattern in STAGES if pattern.search(message)), "other")
            wall[stage] = wall.get(stage, 0.0) + t1 - t0
            cpu[stage] = cpu.get(stage, 0.0) + c1 - c0
        return wall, cpu


def _child(n_firms: int, seed: int, data: str | None, sample_rate: float | None,
           skip_raw: bool, tiers: str | None) -> None:
    import lightgbm as lgb

    from features.contract import load_dataset
    from features.domain import labelled_years
    from features.pipeline import stack_panels
    from training.sampling import CaseControl
    from training.synthetic import generate_universe, write_universe
    from training.train import train

    clock = _Clock()
    logging.getLogger("training.train").addHandler(clock)
    logging.getLogger("training.train").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        if data is None:
            universe = Path(tmp) / "universe"
            write_universe(generate_universe(n_firms=n_firms, seed=seed), universe)
        else:
            universe = Path(data)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        os.chdir(tmp)
        start = time.perf_counter()
        chosen = {} if tiers is None else {"tiers": tuple(tiers.split(","))}
        result = train(universe, seed=0, sample_rate=sample_rate, **chosen)
        end, end_cpu = time.perf_counter(), _cpu_s()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peak_train_kib, cpu_s = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        raw = {}
        dataset = None if skip_raw else load_dataset(universe)
        for tier, outcome in result.tiers.items():
            model = outcome.final_model
            raw[tier] = {"rows": outcome.rows, "rounds": model.best_iteration_,
                         "sampling_offset": getattr(model, "sampling_offset_", 0.0)}
            if dataset is None or tier.endswith("review"):
                continue
            # The final model's training rows: the same sample (rates per year and seed).
            rule = CaseControl(rate=sample_rate, seed=0)
            panel = stack_panels(dataset, labelled_years(dataset.certifications, tier), tier,
                                 keep=rule)
            X = panel.X[list(model.feature_names_in_)]
            years = panel.keys["year"]
            t0 = time.perf_counter()
            lgb.train(model._params(len(X)),
                      lgb.Dataset(X, panel.y.to_numpy(), init_score=model.row_offsets(years)),
                      num_boost_round=model.best_iteration_)
            raw[tier]["raw_fit_s"] = time.perf_counter() - t0
    summary = result.summary()
    stages_s, stages_cpu_s = clock.stages(end, end_cpu)
    print(json.dumps({
        "firms": n_firms if data is None else data, "sample_rate": sample_rate,
        "training_rows": sum(o.rows for o in result.tiers.values()),
        "train_s": end - start, "cpu_s": cpu_s, "stages_s": stages_s,
        "stages_cpu_s": stages_cpu_s,
        "raw_final_fit_s": sum(r.get("raw_fit_s", 0.0) for r in raw.values()),
        "tiers": raw, "peak_rss_mb": peak_train_kib / 1024,
        "walk_forward": summary[["tier", "model", "pr_auc", "roc_auc", "brier", "ece"]]
        .to_dict("records"),
        "folds": result.folds()[["tier", "test year", "firms tested", "selections"]]
        .to_dict("records"),
    }, default=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--data", help="an existing universe folder (instead of generating)")
    parser.add_argument("--sample-rate", type=float, default=None,
                        help="train's --sample-rate (default: its automatic rule)")
    parser.add_argument("--skip-raw", action="store_true",
                        help="do not time the raw lightgbm.train of the final models")
    parser.add_argument("--tiers", help="comma-separated tiers (default: all)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.firms, args.seed, args.data, args.sample_rate, args.skip_raw, args.tiers)
        return
    command = [sys.executable, __file__, "--child", "--firms", str(args.firms),
               "--seed", str(args.seed)]
    for flag, value in (("--data", args.data), ("--sample-rate", args.sample_rate),
                        ("--tiers", args.tiers)):
        if value is not None:
            command += [flag, str(value)]
    if args.skip_raw:
        command.append("--skip-raw")
    # The child's progress and errors go to stderr as they come.
    done = subprocess.run(command, check=False, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"the benchmark's process failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"universe {result['firms']}; sample rate {result['sample_rate']}; training rows "
          f"(all models) {result['training_rows']:,}")
    stages = ", ".join(f"{k} {v:.0f}" for k, v in
                       sorted(result["stages_s"].items(), key=lambda kv: -kv[1]))
    cpu_stages = ", ".join(f"{k} {v:.0f}" for k, v in
                           sorted(result["stages_cpu_s"].items(), key=lambda kv: -kv[1]))
    print(f"giantwatch train: {result['train_s']:.1f} s ({stages}); CPU seconds by stage: "
          f"{cpu_stages}; CPU time of the process "
          f"(generation included) {result['cpu_s']:.0f} s; raw lightgbm.train of the "
          f"final models: {result['raw_final_fit_s']:.1f} s; peak RSS "
          f"{result['peak_rss_mb']:,.0f} MB")
    for row in result["walk_forward"]:
        print(f"  {row['tier']:<20} {row['model']:<9} PR AUC {row['pr_auc']:.4f}  "
              f"ROC AUC {row['roc_auc']:.4f}  Brier {row.get('brier', float('nan')):.4f}  "
              f"ECE {row.get('ece', float('nan')):.4f}")
    print(json.dumps({"bench": "train", **result}))


if __name__ == "__main__":
    main()
