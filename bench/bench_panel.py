"""Benchmark: as-of panel (candidates + features) of one year over N generated firms.

    .venv/bin/python bench/bench_panel.py --firms 100000 --runs 3
    .venv/bin/python bench/bench_panel.py --data path/to/dataset --year 2024

Prints a human summary on stderr and one JSON line on stdout: median wall time over the
runs, every run's time, peak RSS of the process, and the panel's shape.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

TABLES = ("firms", "financials", "patents", "certifications")


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load(args):
    if args.data:
        from features.contract import load_dataset

        return load_dataset(args.data)
    from features.contract import Dataset
    from training.synthetic import generate_universe  # generator lives with training

    tables = generate_universe(args.firms, args.seed)
    return Dataset(**{name: tables[name] for name in TABLES})


def _default_year(dataset, tier: str) -> int:
    certs = dataset.certifications
    granted = certs[(certs["tier"] == tier) & (certs["event"] == "granted")]
    if len(granted):
        return int(granted["year"].max())
    return int(dataset.financials["year"].max()) + 1


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firms", type=int, default=100_000, help="generated firms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="a dataset folder instead of the generator")
    parser.add_argument("--year", type=int, help="as-of year (default: latest labelled)")
    parser.add_argument("--tier", default="little_giant",
                        choices=["specialized", "little_giant", "champion"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    from features.pipeline import asof_panel

    started = time.perf_counter()
    dataset = _load(args)
    load_s = time.perf_counter() - started
    rss_loaded = _peak_rss_mb()
    year = args.year or _default_year(dataset, args.tier)

    times, panel = [], None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        panel = asof_panel(dataset, year, args.tier)
        times.append(time.perf_counter() - t0)

    result = {
        "bench": "panel",
        "firms": len(dataset.firms),
        "financial_rows": len(dataset.financials),
        "patent_rows": len(dataset.patents),
        "year": year,
        "tier": args.tier,
        "runs": args.runs,
        "median_s": round(statistics.median(times), 3),
        "times_s": [round(t, 3) for t in times],
        "data_s": round(load_s, 3),
        "rows": len(panel.keys),
        "features": int(panel.X.shape[1]),
        "positives": None if panel.y is None else int(panel.y.sum()),
        "rejects": len(panel.rejects),
        "rss_after_data_mb": round(rss_loaded, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }
    print(
        f"panel {args.tier} {year}: {result['rows']} rows x {result['features']} features, "
        f"median {result['median_s']} s over {args.runs} runs, peak RSS "
        f"{result['peak_rss_mb']} MB",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
