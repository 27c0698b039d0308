"""`giantwatch audit` on one universe: wall time of each stage, CPU time and peak memory.

Runs training.audit_run.run_audit as the CLI does (report included), stamps each progress
message, and prints the seconds between them summed per stage (panels, each tier's
out-of-fold folds, channels, scoring, overlooked, renewals, truth, report), the run's CPU
time and its peak resident memory. Tracking goes to MLFLOW_TRACKING_URI (set it to a
scratch store).

    MLFLOW_TRACKING_URI=sqlite:///$PWD/scratch/mlflow.db \\
        nice .venv/bin/python bench/bench_audit.py --data bench-data/u100k --out /tmp/audit
"""

from __future__ import annotations

import argparse
import re
import resource
import time
from collections import defaultdict

from serving.report import render_report
from training.audit_run import run_audit


def stage(message: str) -> str:
    """The stage a progress message opens: the message without its years and fold names."""
    message = re.sub(r"fold \d{4} \(.*\)", "out-of-fold folds", message)
    return re.sub(r" (for|of) \d{4}-\d{4}", "", message).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tiers", default="specialized,little_giant,champion")
    args = parser.parse_args()
    stamps: list[tuple[float, str]] = []
    start, cpu = time.perf_counter(), time.process_time()
    result = run_audit(args.data, args.out, tiers=tuple(args.tiers.split(",")),
                       progress=lambda m: stamps.append((time.perf_counter(), m)),
                       render_report=render_report)
    end = time.perf_counter()
    seconds: dict[str, float] = defaultdict(float)
    for (t, message), (t_next, _) in zip(stamps, [*stamps[1:], (end, "")]):
        seconds[stage(message)] += t_next - t
    for name, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{value:9.1f} s  {name}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"total {end - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, "
          f"peak memory {peak:.2f} GB")
    if result.truth_evaluation is not None:
        print(result.truth_evaluation.round(3).to_string(index=False))
    if result.province_agreement is not None:
        print(result.province_agreement.round(2).to_string(index=False))


if __name__ == "__main__":
    main()
