"""A scoring run into a file: every chunk of `serving.score.iter_scored` written atomically
(Parquet or CSV, a second thread writing each chunk while the next is scored), the rejects
beside it, the year's ranks over every chunk, and the summary `giantwatch score` prints.

    summary = score_to_file("data/demo", 2026, "scores.parquet")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from models.scoring import no_timer
from serving.output import candidate_ranks, output_schema
from serving.registry import RegisteredModel, ScoringProblem
from serving.score import iter_scored, prepare_run
from serving.writer import AtomicTableWriter
from training.review import review_key


def describe_rulebooks(rulebooks: dict, year: int) -> dict[str, str]:
    """tier -> why its rulebook applies (id, in-force dates, source), for summaries."""
    from features.rules import in_force_note

    return {tier: in_force_note(rb, year) for tier, rb in rulebooks.items()}


@dataclass
class ScoreSummary:
    """What `score_to_file` did: counts, files, models and wall seconds."""

    out_file: Path
    rejects_file: Path
    year: int
    firms_scored: int
    rejected: int
    seconds: float
    candidates: dict[str, int] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    rulebooks: dict[str, str] = field(default_factory=dict)
    expected: dict[str, float] = field(default_factory=dict)
    eligible: dict[str, dict[str, int]] = field(default_factory=dict)
    # tier -> (titles up for re-review, expected renewals: the sum of p_renewal_<tier>)
    renewals: dict[str, tuple[int, float]] = field(default_factory=dict)

    def __str__(self) -> str:
        used = ", ".join(f"{t} v{v}" for t, v in self.models.items())
        lines = [(f"Scored {self.firms_scored:,} firms as of {self.year} in "
                  f"{self.seconds:.1f} s (models: {used}) -> {self.out_file}")]
        for tier, n in self.candidates.items():
            counts = sorted(self.eligible.get(tier, {}).items())
            verdicts = ", ".join(f"{k} {v:,}" for k, v in counts)
            lines.append(f"  {tier}: {n:,} candidates, about {self.expected.get(tier, 0):,.0f} "
                         f"expected selections (sum of the probabilities); eligible: {verdicts}")
        for tier, (due, renewed) in self.renewals.items():
            lines.append(f"  {tier} re-reviews: {due:,} titles up for re-review, about "
                         f"{renewed:,.0f} expected renewals (sum of the probabilities)")
        lines.append("Eligibility, gaps and reasons use these rulebooks:")
        lines += [f"  {t}: {note}" for t, note in self.rulebooks.items()]
        lines.append(f"{self.rejected:,} rejected rows -> {self.rejects_file}")
        return "\n".join(lines)


OUTPUT_SUFFIXES = (".parquet", ".csv")


def rejects_path(out_file: Path) -> Path:
    """`scores.parquet` -> `scores.rejects.csv`, beside the output."""
    out_file = Path(out_file)
    return out_file.with_name(f"{out_file.stem}.rejects.csv")


def score_to_file(data_dir, year: int, out_file, model_alias: str = "production",
                  reasons: int = 3, rulebook: str | None = None, chunk_size: int = 100_000,
                  progress: Callable[[int, int], None] | None = None, dask=None, *,
                  models: dict[str, RegisteredModel] | None = None,
                  timer=None, reviews: dict[str, RegisteredModel] | None = None) -> ScoreSummary:
    """Score the dataset folder `data_dir` (or a loaded Dataset) as of `year` into
    `out_file` (.parquet or .csv), chunk by chunk, atomically; rejects go to
    `rejects_path(out_file)`. A fatal problem (invalid data, missing model) raises before
    anything is written."""
    from features.contract import write_rejects

    start = time.perf_counter()
    year, out_file = int(year), Path(out_file)
    if out_file.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ScoringProblem(f"output file must end in .parquet or .csv, got {out_file.name}")
    timer = timer or no_timer
    chunks, models, reviews, rulebooks, firm_ids, rejects = prepare_run(
        data_dir, year, model_alias, rulebook, models, dask, timer, reviews, chunk_size)
    writer = AtomicTableWriter(out_file, output_schema(tuple(models), tuple(reviews)))
    up_for_review = dict.fromkeys(reviews, 0)
    expected_renewals = dict.fromkeys(reviews, 0.0)
    candidates = dict.fromkeys(models, 0)
    expected = dict.fromkeys(models, 0.0)
    eligible: dict[str, dict[str, int]] = {tier: {} for tier in models}

    def write(frame: pd.DataFrame) -> None:
        with timer("write"):
            writer.write(frame)

    try:
        # Each chunk is written by a second thread while the next one is scored (Arrow and
        # Parquet encode without the GIL), one chunk at a time and in order; leaving the
        # `with` waits for the last write, also on an error, before the file is aborted.
        with ThreadPoolExecutor(1) as background:
            pending = None
            for frame in iter_scored(chunks, year, firm_ids, models, rulebooks, reasons,
                                     chunk_size, dask, timer, reviews=reviews):
                if pending is not None:
                    pending.result()
                pending = background.submit(write, frame)
                _count(frame, models, reviews, candidates, expected, eligible, up_for_review,
                       expected_renewals)
                if progress:
                    progress(len(frame), len(firm_ids))
            if pending is not None:
                pending.result()
        with timer("write"):
            if len(firm_ids) > chunk_size:
                # Each chunk ranked its own candidates; the file ranks the year's.
                writer.rewrite(_global_ranks(writer, tuple(models)))
            writer.commit()
            written = write_rejects(rejects, rejects_path(out_file))
    except BaseException:
        writer.abort()
        raise
    return ScoreSummary(out_file, written, year, len(firm_ids), len(rejects),
                        time.perf_counter() - start, candidates,
                        {**{t: m.version for t, m in models.items()},
                         **{review_key(t): m.version for t, m in reviews.items()}},
                        describe_rulebooks(rulebooks, year), expected, eligible,
                        {t: (up_for_review[t], expected_renewals[t]) for t in reviews})


def _count(frame: pd.DataFrame, models, reviews, candidates: dict, expected: dict,
           eligible: dict, up_for_review: dict, expected_renewals: dict) -> None:
    """Add one chunk's output rows to the summary's counts (in place)."""
    for tier in models:
        candidates[tier] += int(frame[f"p_{tier}"].notna().sum())
        expected[tier] += float(frame[f"p_{tier}"].sum())
        for verdict, count in frame[f"eligible_{tier}"].value_counts().items():
            eligible[tier][verdict] = eligible[tier].get(verdict, 0) + int(count)
    for tier in reviews:
        up_for_review[tier] += int(frame[f"p_renewal_{tier}"].notna().sum())
        expected_renewals[tier] += float(frame[f"p_renewal_{tier}"].sum())


def _global_ranks(writer: AtomicTableWriter, tiers: tuple[str, ...]):
    """A batch transform replacing each rank_<tier> by the rank among every candidate in
    the written file (read back column by column, before the file is published)."""
    p = writer.read_columns([f"p_{t}" for t in tiers])
    ranks = {t: candidate_ranks(p[f"p_{t}"].to_numpy(dtype=float, na_value=np.nan))
             for t in tiers}

    def transform(batch: pa.Table, offset: int) -> pa.Table:
        for t in tiers:
            at = batch.schema.get_field_index(f"rank_{t}")
            values = ranks[t][offset:offset + batch.num_rows]
            batch = batch.set_column(at, f"rank_{t}", pa.array(values, type=pa.int64()))
        return batch

    return transform
