"""Batch scoring: every firm with financials for year t-1, every tier, with reasons and rules.

    frame, rejects = score_firms(load_dataset("data/demo"), 2026)

(`serving.score_file.score_to_file` writes a run into a file.)

One output row per firm (sorted by firm_id): ``p_<tier>`` is the calibrated probability of
being selected in year t, empty where the firm is not a candidate of the tier (DATA_CONTRACT
"What a prediction is": it already holds a valid title of the tier, or of a higher one for
``specialized``, or was founded in t or later). Per tier, for candidates: ``rulebook_<tier>``
(the id of the rulebook behind the next four columns: the one in force for the year unless
``--rulebook`` says otherwise), ``eligible_<tier>`` (pass / fail / unknown under that
rulebook on the firm's data), ``failed_<tier>`` (ids of failed criteria, "; "-joined),
``gaps_<tier>`` ("id: gap text", " | "-joined) and ``reasons_<tier>_for`` /
``reasons_<tier>_against`` (the strongest SHAP contributions in words, quoting the same
rulebook). Per tier with a re-review model in production: ``p_renewal_<tier>``, the
probability that a title of the tier up for re-review in t is renewed (empty where the firm
has none up for re-review), and ``reasons_renewal_<tier>_for`` / ``_against``. Each chunk
goes through the scoring core, ``models.scoring.score_frame``.

Memory stays bounded: the tables are split by firm into chunks of ``chunk_size`` firms and
each chunk is featurised, scored and written before the next one (features are per firm, so
a chunk needs only its own firms' rows). Only the rows and columns that scoring as of the
year reads are kept (`serving.partitions.Chunks`: the scored firms, the fiscal years the
features look back on, patents filed before the year without their ids); a dataset folder's
whole tables are freed once validated and rejected from. Chunks run in this process or on a
Dask cluster, behind one executor interface (`serving.executors`). Reasons place a firm's
measures among the year's candidates of the tier, whatever the chunking: over more than one
chunk, a first pass collects the candidates' measures of every chunk into one small
`models.cohort.Cohort` per tier, which every chunk then reads (in this process the first
pass runs last chunk first and hands chunk 0's features to the second pass). A file is
written by a second thread, each chunk while the next one is scored.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from features.contract import TABLES
from features.domain import TIERS
from features.identity import firm_identity
from models.cohort import Cohort
from models.scoring import ScoredFrame, candidate_values, no_timer, score_frame
from serving.executors import LocalExecutor, executor_for
from serving.output import output_columns_of
from serving.partitions import Chunks, chunks_of, missing_financials, scored_firm_ids
from serving.registry import (  # noqa: F401  (re-exported: the scoring API in one place)
    RegisteredModel,
    ScoringProblem,
    load_models,
    registered_versions,
)


class StageTimer:
    """Wall seconds per stage, summed over chunks (`with timer("features"): ...`)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


def rulebooks_for(rulebook: str | None, year: int, tiers: tuple[str, ...] = TIERS,
                  files: bool = True) -> dict:
    """The rulebook of each tier (features.rules.resolve_rulebooks), or a ScoringProblem."""
    from features.rules import resolve_rulebooks

    try:
        return resolve_rulebooks(rulebook, year, tiers, files=files)
    except KeyError as exc:
        raise ScoringProblem(exc.args[0]) from None


# ---------------------------------------------------------------------------------------
# Scoring one chunk

def score_chunk(part, year: int, firm_ids: np.ndarray, models: dict, rulebooks: dict,
                reasons: int = 3, threads: int | None = None, timer=None,
                structured: bool = False, ranks: bool = True,
                population: pd.DataFrame | dict | None = None,
                review_models: dict | None = None,
                features: pd.DataFrame | None = None) -> tuple[dict, ScoredFrame]:
    """Score the firms `firm_ids` of the dataset `part` (it may hold only their rows).

    Returns (the output rows as columns: name -> one value per firm in `firm_ids` order, in
    the order of `output_columns`, not yet a frame, which is what a one-firm answer reads;
    the scoring core's ScoredFrame with the feature frame as its ``X`` attribute).
    `structured=True` keeps failed criteria as lists and gaps as dicts (for JSON answers);
    ranks / population: where reasons place a firm's measures among the year's candidates
    (see models.scoring.score_frame: every firm's feature frame, or tier -> Cohort; by
    default among this chunk's candidates);
    review_models: tier -> re-review TierModel, for the renewal columns;
    features: the feature frame of `firm_ids` when already built (else built here).
    """
    from features.pipeline import build_features

    timer = timer or no_timer
    X = features
    if X is None:
        with timer("features"):
            X = build_features(part, year, firm_ids=firm_ids)
    scored = score_frame(X, year, models, rulebooks, reasons=reasons, threads=threads,
                         timer=timer, ranks=ranks, population=population,
                         review_models=review_models, certifications=part.certifications)
    scored.X = X
    with timer("output"):
        identity = firm_identity(part.firms, firm_ids)
        columns = output_columns_of(scored, tuple(models), structured, identity)
    return columns, scored


# ---------------------------------------------------------------------------------------
# Whole runs

def iter_scored(dataset, year: int, firm_ids: np.ndarray, models: dict[str, RegisteredModel],
                rulebooks: dict, reasons: int = 3, chunk_size: int = 100_000, dask=None,
                timer=None, structured: bool = False,
                reviews: dict[str, RegisteredModel] | None = None) -> Iterator[pd.DataFrame]:
    """Scored chunks of `firm_ids` (sorted) in order; `dataset`: a loaded Dataset or its
    `serving.partitions.Chunks` of these firms. With `dask` ("local:N",
    "tcp://HOST:PORT" or a distributed Client) the chunks are scored on a Dask cluster, with
    identical results. reviews: the re-review models (load_models(..., review=True))."""
    timer = timer or no_timer
    tier_models = {t: m.model for t, m in models.items()}
    review_models = {t: m.model for t, m in (reviews or {}).items()}
    chunks = dataset
    if not isinstance(chunks, Chunks):
        with timer("partition"):
            chunks = chunks_of(dataset, year, firm_ids, chunk_size)
    with executor_for(dask, timer) as executor:
        cohorts, first = None, None
        if reasons > 0 and len(chunks) > 1:
            # Reasons place a firm among the year's candidates, not its chunk's: a first pass
            # collects the candidates' measures of every chunk (features built twice, but
            # for the chunk the first pass ends with, whose features are kept for the second).
            values = defaultdict(lambda: defaultdict(list))
            if isinstance(executor, LocalExecutor):
                first, parts = _first_pass(chunks, year, tuple(tier_models), timer)
            else:
                parts = executor.map_chunks(candidate_chunk_values, chunks, year,
                                            tuple(tier_models))
            for part in parts:
                for tier, measures in part.items():
                    for name, column in measures.items():
                        values[tier][name].append(column)
            with timer("reasons"):  # the summaries are the reasons' work
                cohorts = {tier: Cohort.from_values(measures) for tier, measures in values.items()}
            del values, parts
        options = {"structured": structured, "review_models": review_models,
                   "population": cohorts}
        start = 0
        if first is not None:
            firm_ids_0, part, X = first
            del first
            yield score_chunk_rows(part, year, firm_ids_0, tier_models, rulebooks, reasons,
                                   timer=timer, features=X, **options)
            del part, X
            start = 1
        yield from executor.map_chunks(score_chunk_rows, chunks.starting(start), year,
                                       tier_models, rulebooks, reasons, **options)


def _first_pass(chunks: Chunks, year: int, tiers: tuple[str, ...], timer):
    """The first pass in this process, last chunk first: ((firm_ids, part, feature frame)
    of chunk 0, kept for the second pass to start with; [per chunk, tier -> the candidates'
    values of the placed measures])."""
    from features.pipeline import build_features

    values = []
    for i in reversed(range(len(chunks))):
        with timer("partition"):
            firm_ids, part = chunks.chunk(i)
        with timer("features"):
            X = build_features(part, year, firm_ids=firm_ids)
        values.append(candidate_values(X, year, tiers))
        if i > 0:
            del X, part
    return (firm_ids, part, X), values


def candidate_chunk_values(part, year: int, firm_ids: np.ndarray, tiers: tuple[str, ...],
                           threads: int | None = None, timer=None) -> dict:
    """The first pass of a run over many chunks: per tier the chunk's candidates' values of
    the measures reasons place (models.scoring.candidate_values)."""
    from features.pipeline import build_features

    with (timer or no_timer)("features"):
        X = build_features(part, year, firm_ids=firm_ids)
    return candidate_values(X, year, tiers)


def score_chunk_rows(part, year: int, firm_ids: np.ndarray, models: dict, rulebooks: dict,
                     reasons: int = 3, threads: int | None = None, timer=None,
                     structured: bool = False, review_models: dict | None = None,
                     population: dict | None = None,
                     features: pd.DataFrame | None = None) -> pd.DataFrame:
    """`score_chunk`'s output rows alone, as a frame (what crosses a process boundary)."""
    columns, _ = score_chunk(part, year, firm_ids, models, rulebooks, reasons, threads, timer,
                             structured, population=population, review_models=review_models,
                             features=features)
    with (timer or no_timer)("output"):
        return pd.DataFrame(columns, copy=False)


def prepare_run(dataset, year: int, model_alias: str, rulebook: str | None, models, dask,
                timer, reviews=None, chunk_size: int = 100_000):
    """Everything a run needs, checked before any scoring: models, re-review models,
    rulebooks, the firms to score, the rejects and the chunks of the rows scoring reads
    (`serving.partitions.Chunks`). A dataset folder is loaded here and its whole tables
    are freed once the chunks hold their rows; a loaded Dataset is left as it is."""
    from features.contract import Dataset, load_dataset

    timer = timer or no_timer
    if isinstance(dask, str):
        from serving.executors import parse_address

        parse_address(dask)  # a typo should not wait for the data to load
    models = models or load_models(model_alias)
    reviews = load_models(model_alias, review=True) if reviews is None else reviews
    rulebooks = rulebooks_for(rulebook, year, tuple(dict.fromkeys([*models, *reviews])))
    if not isinstance(dataset, Dataset):
        dataset = load_dataset(dataset, timer=timer)
    with timer("partition"):
        firm_ids = scored_firm_ids(dataset, year)
    if len(firm_ids) == 0:
        years = dataset.financials["year"]
        have = f"{years.min()}-{years.max()}" if len(years) else "none"
        raise ScoringProblem(f"no firm has financials for fiscal year {year - 1}, so nothing "
                             f"can be scored as of {year} (financial years in the data: {have})")
    rejects = pd.concat([dataset.rejects, missing_financials(dataset, year, firm_ids)],
                        ignore_index=True)
    with timer("partition"):
        tables = {t: getattr(dataset, t) for t in TABLES}
        del dataset  # loaded here: `tables` holds its only references, which Chunks drops
        chunks = Chunks.of(tables, year, firm_ids, chunk_size)
    return chunks, models, reviews, rulebooks, firm_ids, rejects


def score_firms(dataset, year: int, model_alias: str = "production", reasons: int = 3,
                rulebook: str | None = None, chunk_size: int = 100_000,
                progress: Callable[[int, int], None] | None = None, dask=None, *,
                models: dict[str, RegisteredModel] | None = None, timer=None,
                structured: bool = False,
                reviews: dict[str, RegisteredModel] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every firm with financials for `year`-1 with each tier's `model_alias` model.

    dataset: a features.contract.Dataset or a dataset folder. rulebook: rulebook years or
    ids for the eligibility columns (default: the one in force for `year`, see
    features.rules.resolve_rulebooks). progress(advance, total)
    is called after each chunk with the number of firms done. models: already loaded models
    (`load_models`), to skip the registry; reviews: already loaded re-review models
    (default: the registry's, ``load_models(model_alias, review=True)``; {} for none).
    Returns (scores, rejects): scores as described in
    the module docstring (RangeIndex); rejects in the loader's layout (table, row, column,
    rule, reason, record): the dataset's row-level rejects plus firms without financials.
    """
    year = int(year)
    chunks, models, reviews, rulebooks, firm_ids, rejects = prepare_run(
        dataset, year, model_alias, rulebook, models, dask, timer, reviews, chunk_size)
    frames = []
    for frame in iter_scored(chunks, year, firm_ids, models, rulebooks, reasons, chunk_size,
                             dask, timer, structured, reviews):
        frames.append(frame)
        if progress:
            progress(len(frame), len(firm_ids))
    return pd.concat(frames, ignore_index=True), rejects
