"""Wall time and peak memory of generating and writing the synthetic universe.

Each run is a fresh subprocess, so the peak resident set size (ru_maxrss of the process
and any children it waited for) belongs to that size alone. Prints a table and one JSON
line.

    .venv/bin/python bench/bench_generate.py --firms 50000 1000000 --repeats 3 1
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _child(n_firms: int, seed: int, fmt: str) -> None:
    """Generate and write one universe; print a JSON line with timings and peak RSS."""
    from training.synthetic import generate_universe, write_universe

    start = time.perf_counter()
    tables = generate_universe(n_firms=n_firms, seed=seed)
    generated = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_universe(tables, Path(tmp) / "universe", fmt=fmt)
        written = time.perf_counter()
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({
        "firms": n_firms, "generate_s": generated - start, "write_s": written - generated,
        "total_s": written - start, "peak_rss_mb": peak_kib / 1024,
        "rows": {k: len(v) for k, v in tables.items()},
    }))


def _run(n_firms: int, seed: int, fmt: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--firms", str(n_firms), "--seed", str(seed),
           "--fmt", fmt]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, nargs="+", default=[50_000])
    parser.add_argument("--repeats", type=int, nargs="+", default=[3],
                        help="runs per size (one value for all sizes, or one per size)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--fmt", choices=["parquet", "csv"], default="parquet")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.firms[0], args.seed, args.fmt)
        return

    repeats = args.repeats * len(args.firms) if len(args.repeats) == 1 else args.repeats
    results = []
    for n_firms, runs in zip(args.firms, repeats):
        rows = [_run(n_firms, args.seed, args.fmt) for _ in range(runs)]
        results.append({
            "firms": n_firms, "runs": runs,
            "median_total_s": statistics.median(r["total_s"] for r in rows),
            "median_generate_s": statistics.median(r["generate_s"] for r in rows),
            "median_write_s": statistics.median(r["write_s"] for r in rows),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
            "rows": rows[0]["rows"],
        })
    print(f"{'firms':>10} {'runs':>4} {'generate s':>11} {'write s':>8} {'total s':>8} "
          f"{'peak MB':>8} {'patents':>10}")
    for r in results:
        print(f"{r['firms']:>10,} {r['runs']:>4} {r['median_generate_s']:>11.2f} "
              f"{r['median_write_s']:>8.2f} {r['median_total_s']:>8.2f} "
              f"{r['peak_rss_mb']:>8.0f} {r['rows']['patents']:>10,}")
    print(json.dumps({"bench": "generate", "fmt": args.fmt, "seed": args.seed,
                      "results": results}))


if __name__ == "__main__":
    main()
