"""Where batch scoring spends its time, against LightGBM's own SHAP engine on the same data.

    result = run_bench("data/demo", 2025, repeats=3)
    result["end_to_end_s"], result["raw_contrib_s"], result["stages"]

One run goes through the real scoring path (read, validate, features, contributions,
calibrated probabilities, reasons, rule eligibility, write) with a `StageTimer`; then, in
the same process and outside that path, the benchmark rebuilds each chunk's feature matrix
(untimed) and times LightGBM's `booster.predict(X, pred_contrib=True)` alone on each tier's
candidate rows (the raw engine, with as many threads as the scorer uses) and the separate
probability pass a plain scorer would add; on the same matrices it checks that the scorer's
contributions (models.treeshap) equal the raw engine's (largest absolute difference).
The end-to-end time is what `giantwatch score` takes. Peak memory is the process's peak
resident set size (run a fresh process per size to measure one size alone).
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from serving.score import StageTimer, load_models
from serving.score_file import score_to_file

# Stages reported, in pipeline order; "shap" is the scorer's single contributions pass
# (models.treeshap), "predict" the calibration of their sums, "output" the assembly of
# each chunk's output rows (texts into columns, identity); "write" runs on a second thread
# while the next chunk is scored, so the stages can add up to more than the end-to-end time.
STAGES = ("load", "validate", "partition", "features", "shap", "predict", "reasons",
          "rules", "output", "write")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_once(data_dir: Path, year: int, models: dict, reasons: int = 3,
               chunk_size: int = 100_000, out_suffix: str = ".parquet",
               raw_engine: bool = True, reviews: dict | None = None) -> dict:
    """One timed scoring run; seconds per stage, end to end, raw engine (NaN without
    `raw_engine`), firms. The folder goes to the scorer as `giantwatch score` gives it
    (loaded, validated and freed there); the raw engine loads it again, untimed. reviews:
    the re-review models scored beside `models` (loaded once by the caller, under the same
    alias; None: none)."""
    from features.contract import load_dataset

    timer = StageTimer()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = score_to_file(Path(data_dir), year, Path(tmp) / f"scores{out_suffix}",
                                reasons=reasons, chunk_size=chunk_size, models=models,
                                reviews=reviews or {}, timer=timer)
    wall = time.perf_counter() - start
    nan = float("nan")
    raw, plain, difference = raw_engine_seconds(load_dataset(data_dir), year, models,
                                                chunk_size) if raw_engine else (nan, nan, nan)
    return {
        "firms": summary.firms_scored,
        "candidates": summary.candidates,
        "end_to_end_s": wall,
        "raw_contrib_s": raw,
        "plain_predict_s": plain,
        "max_abs_difference": difference,
        "stages": {s: timer.seconds.get(s, 0.0) for s in STAGES},
    }


def raw_engine_seconds(dataset, year: int, models: dict,
                       chunk_size: int) -> tuple[float, float, float]:
    """Seconds of LightGBM's bare pred_contrib on every tier's candidate rows (as many
    threads as the scorer's contributions use), and of the separate probability pass a plain
    scorer would add, chunk by chunk as the scorer goes (the feature matrices are rebuilt
    untimed); and the largest absolute difference between the scorer's contributions and
    pred_contrib's on those rows."""
    from features.pipeline import build_features
    from models.scoring import candidates
    from serving.partitions import chunks_of, scored_firm_ids

    raw = plain = difference = 0.0
    for firm_ids, part in chunks_of(dataset, year, scored_firm_ids(dataset, year), chunk_size):
        X = build_features(part, year, firm_ids=firm_ids)
        for tier, registered in models.items():
            model = registered.model
            Xt = X[candidates(X, year, tier)]
            if not len(Xt):
                continue
            matrix = model.prepare(Xt)
            start = time.perf_counter()
            reference = model.booster_.predict(matrix, pred_contrib=True,
                                               num_threads=scorer_threads())
            raw += time.perf_counter() - start
            start = time.perf_counter()
            model.predict_proba(Xt)
            plain += time.perf_counter() - start
            ours = model.contributions(Xt).to_numpy()
            difference = max(difference, float(abs(ours - reference).max()))
    return raw, plain, difference


def scorer_threads() -> int:
    """Threads the scorer's contributions use in this process (models.treeshap's default)."""
    return os.cpu_count() or 1


def run_bench(data_dir, year: int, repeats: int = 3, reasons: int = 3,
              chunk_size: int = 100_000, model_alias: str = "production",
              models: dict | None = None, raw_engine: bool = True) -> dict:
    """Time the scoring path on the dataset `data_dir` as of `year`, `repeats` times.

    Returns medians over the repeats: firms (scored), rows (candidate rows over all tiers),
    end_to_end_s (read to written file), raw_contrib_s (LightGBM pred_contrib alone on the
    same matrices, same thread count), ratio = end_to_end_s / raw_contrib_s, shap_speedup =
    raw_contrib_s / the scorer's "shap" stage, plain_path_s (end-to-end plus the separate
    probability pass that the single contributions pass saves), per_firm_ms, firms_per_s,
    rows_per_s, stages (seconds per stage), max_abs_difference (scorer's contributions
    against pred_contrib, largest over the runs), threads, peak_rss_mb and model versions.
    raw_engine=False skips the raw engine (its figures are NaN): at a million firms
    pred_contrib alone takes several times the whole scoring run.
    """
    models = models or load_models(model_alias)
    # The renewal columns are part of a scoring run: the re-review models under the same
    # alias as the selection models, loaded once like them.
    reviews = load_models(model_alias, tiers=tuple(models), review=True)
    runs = [bench_once(Path(data_dir), int(year), models, reasons, chunk_size,
                       raw_engine=raw_engine, reviews=reviews)
            for _ in range(max(1, int(repeats)))]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    end_to_end, raw = median("end_to_end_s"), median("raw_contrib_s")
    stages = {s: statistics.median(r["stages"][s] for r in runs) for s in STAGES}
    rows = sum(runs[0]["candidates"].values())
    return {
        "firms": runs[0]["firms"],
        "year": int(year),
        "rows": rows,
        "candidates": runs[0]["candidates"],
        "repeats": len(runs),
        "chunk_size": chunk_size,
        "end_to_end_s": end_to_end,
        "raw_contrib_s": raw,
        "ratio": end_to_end / raw if raw > 0 else float("nan"),
        "shap_speedup": raw / stages["shap"] if stages["shap"] > 0 else float("nan"),
        "plain_path_s": end_to_end + median("plain_predict_s"),
        "per_firm_ms": 1000 * end_to_end / max(1, runs[0]["firms"]),
        "firms_per_s": runs[0]["firms"] / end_to_end if end_to_end > 0 else float("nan"),
        "rows_per_s": rows / end_to_end if end_to_end > 0 else float("nan"),
        "stages": stages,
        "max_abs_difference": max(r["max_abs_difference"] for r in runs),
        "threads": scorer_threads(),
        "peak_rss_mb": peak_rss_mb(),
        "models": {t: m.version for t, m in models.items()},
    }


def format_bench(result: dict) -> str:
    """A few human lines: totals, ratio, the stages by time."""
    stages = sorted(result["stages"].items(), key=lambda kv: -kv[1])
    lines = [
        (f"{result['firms']:,} firms ({result['rows']:,} firm-tier rows) as of "
         f"{result['year']}, median of {result['repeats']}"),
        (f"end to end {result['end_to_end_s']:.2f} s ({result['per_firm_ms']:.3f} ms per "
         f"firm, {result['firms_per_s']:,.0f} firms/s, {result['rows_per_s']:,.0f} "
         f"firm-tier rows/s); raw pred_contrib {result['raw_contrib_s']:.2f} s "
         f"({result['threads']} threads); ratio {result['ratio']:.2f}"),
        (f"contributions {result['stages']['shap']:.2f} s: {result['shap_speedup']:.1f}x "
         f"faster than pred_contrib, largest difference {result['max_abs_difference']:.1e}"),
        (f"plain path (separate predict + contributions) {result['plain_path_s']:.2f} s; "
         f"peak RSS {result['peak_rss_mb']:,.0f} MiB"),
        "stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages),
    ]
    return "\n".join(lines)
