"""Batch scoring: every firm with financials for year t-1, every tier, with reasons and rules.

    frame, rejects = score_firms(load_dataset("data/demo"), 2026)
    summary = score_to_file("data/demo", 2026, "scores.parquet")

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
a chunk needs only its own firms' rows). Chunks run in this process or on a Dask cluster,
behind one executor interface (`serving.executors`). Reasons place a firm's measures among
the year's candidates of the tier, whatever the chunking: over more than one chunk, a first
pass collects the candidates' measures of every chunk into one small `models.cohort.Cohort`
per tier, which every chunk then reads.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.domain import TIERS
from features.identity import IDENTITY_COLUMNS, firm_identity
from models.cohort import Cohort
from models.scoring import ScoredFrame, candidate_values, no_timer, score_frame
from models.values import str_array
from serving.executors import executor_for
from serving.partitions import missing_financials, partitions, scored_firm_ids
from serving.registry import (  # noqa: F401  (re-exported: the scoring API in one place)
    RegisteredModel,
    ScoringProblem,
    load_models,
    registered_versions,
)
from serving.writer import AtomicTableWriter
from training.review import review_key

GAP_SEPARATOR = " | "
CRITERIA_SEPARATOR = "; "


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
                review_models: dict | None = None) -> tuple[pd.DataFrame, ScoredFrame]:
    """Score the firms `firm_ids` of the dataset `part` (it may hold only their rows).

    Returns (output rows in `firm_ids` order with the columns of `output_columns`, the
    scoring core's ScoredFrame with the feature frame as its ``X`` attribute).
    `structured=True` keeps failed criteria as lists and gaps as dicts (for JSON answers);
    ranks / population: where reasons place a firm's measures among the year's candidates
    (see models.scoring.score_frame: every firm's feature frame, or tier -> Cohort; by
    default among this chunk's candidates);
    review_models: tier -> re-review TierModel, for the renewal columns.
    """
    from features.pipeline import build_features

    timer = timer or no_timer
    with timer("features"):
        X = build_features(part, year, firm_ids=firm_ids)
    scored = score_frame(X, year, models, rulebooks, reasons=reasons, threads=threads,
                         timer=timer, ranks=ranks, population=population,
                         review_models=review_models, certifications=part.certifications)
    scored.X = X
    with timer("output"):
        identity = firm_identity(part.firms, firm_ids)
        frame = output_frame(scored, tuple(models), structured, identity)
    return frame, scored


def output_frame(scored: ScoredFrame, tiers: tuple[str, ...], structured: bool = False,
                 identity: pd.DataFrame | None = None) -> pd.DataFrame:
    """The output rows of a ScoredFrame: one per firm, columns of `output_columns`;
    `identity`: features.identity.firm_identity of the same firms, in the same order."""
    n = len(scored.index)
    frame = pd.DataFrame({"firm_id": str_array(scored.index.to_numpy(dtype=object))})
    for column in IDENTITY_COLUMNS:
        values = identity[column].to_numpy(dtype=object) if identity is not None \
            else np.full(n, None, dtype=object)
        frame[column] = values if structured else str_array(values)
    frame["year"] = np.full(n, scored.year, dtype=np.int64)
    texts: dict[str, object] = {}
    for tier in tiers:
        tier_score = scored.tiers[tier]
        frame[f"p_{tier}"] = tier_score.probability
        frame[f"rank_{tier}"] = candidate_ranks(tier_score.probability)
        columns: dict[str, object] = dict.fromkeys(tier_text_columns(tier))
        verdict = tier_score.assessment
        if verdict is not None:
            columns.update(assessment_columns(tier, verdict, structured, arrow=not structured))
        if tier_score.reasons is not None:
            for side in ("for", "against"):
                columns[f"reasons_{tier}_{side}"] = tier_score.reasons[f"reasons_{side}"]
        texts.update({c: _spread(v, tier_score.rows, n, structured) for c, v in columns.items()})
    for tier, review in scored.reviews.items():
        frame[f"p_renewal_{tier}"] = review.probability
        for side in ("for", "against"):
            values = review.reasons[f"reasons_{side}"] if review.reasons is not None else None
            texts[f"reasons_renewal_{tier}_{side}"] = _spread(values, review.rows, n, structured)
    for column, values in texts.items():
        frame[column] = values
    return frame[output_columns(tiers, tuple(scored.reviews))]


def _spread(values, rows: np.ndarray, n: int, structured: bool):
    """A text column of n firms from the `values` of the firms at `rows` (None: no values),
    empty elsewhere: an object array when `structured` (values may be lists and dicts),
    else a pandas str column moved by Arrow, without a Python str per firm."""
    if structured:
        out = np.full(n, None, dtype=object)
        if values is not None:
            out[rows] = np.asarray(values, dtype=object)
        return out
    if values is None:
        return str_array(np.full(n, None, dtype=object))
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.large_string(), from_pandas=True)
    source = np.full(n, -1, dtype=np.int64)
    source[rows] = np.arange(len(rows))
    spread = values.take(pa.array(source, mask=source < 0))
    return pd.array(pa.chunked_array([spread]), dtype="str")


def candidate_ranks(probability: np.ndarray) -> pd.arrays.IntegerArray:
    """Rank of each probability among the candidates' (1 = the highest; ties share the
    best rank); <NA> where the firm is not a candidate (NaN)."""
    ranks = pd.Series(probability).rank(ascending=False, method="min")
    return pd.array(ranks.to_numpy(), dtype="Int64")


def assessment_columns(tier: str, verdict, structured: bool = False,
                       arrow: bool = False) -> dict[str, np.ndarray]:
    """The eligibility columns of one tier's assessment (features.rules.Assessment), one
    value per assessed row: ``rulebook_<tier>``, ``eligible_<tier>`` (on the firm's data),
    ``failed_<tier>`` ("; "-joined ids, or lists when `structured`) and ``gaps_<tier>``
    ("id: text", " | "-joined, or dicts). `score`, `check` and the API all write these.
    Object arrays, or Arrow large_string arrays with `arrow` (not with `structured`)."""
    n = len(verdict.eligible)
    if structured:
        failed = np.asarray(verdict.failed + [None], dtype=object)[:-1]
        gaps = np.asarray(verdict.gaps + [None], dtype=object)[:-1]
    elif arrow:
        eligible, text = verdict.eligible.array, pa.large_string()
        distinct, inverse = _failure_patterns(verdict)
        return {
            f"rulebook_{tier}": pa.array([verdict.rulebook.id], text).take(np.zeros(n, int)),
            f"eligible_{tier}": pa.array(np.asarray(eligible.categories, dtype=object),
                                         text).take(eligible.codes),
            f"failed_{tier}": pa.array(distinct, text).take(inverse),
            f"gaps_{tier}": gap_texts(verdict),
        }
    else:
        failed = failed_texts(verdict)
        gaps = gap_texts(verdict).to_numpy(zero_copy_only=False)
    return {
        f"rulebook_{tier}": np.full(n, verdict.rulebook.id, dtype=object),
        f"eligible_{tier}": verdict.eligible.astype(str).to_numpy(dtype=object),
        f"failed_{tier}": failed,
        f"gaps_{tier}": gaps,
    }


def failed_texts(verdict) -> np.ndarray:
    """Per assessed row, the ids of its failed criteria "; "-joined (the order of
    `verdict.failed`), object array of str."""
    distinct, inverse = _failure_patterns(verdict)
    return distinct[inverse]


def _failure_patterns(verdict) -> tuple[np.ndarray, np.ndarray]:
    """(the "; "-joined failed ids of each distinct failure pattern, object array; each
    row's pattern): firms fail in a few typical ways, so ids are joined once per pattern."""
    mask, ids = verdict.failed_mask, verdict.failed_ids
    if mask.shape[1] == 0:
        return np.array([""], dtype=object), np.zeros(len(mask), dtype=np.intp)
    if mask.shape[1] < 63:  # each row's bits as one integer: a 1-d unique is fast
        _, first, inverse = np.unique(mask.astype(np.int64) @ (1 << np.arange(mask.shape[1])),
                                      return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(mask, axis=0, return_index=True, return_inverse=True)
    distinct = np.array([CRITERIA_SEPARATOR.join(ids[mask[row]]) for row in first] + [None],
                        dtype=object)[:-1]
    return distinct, inverse.reshape(-1)


def gap_texts(verdict) -> pa.Array:
    """Per assessed row, "id: gap text" of each failed criterion " | "-joined in rulebook
    order (the order of `verdict.gaps`), "" where none (large_string array). Gap texts are
    written once per distinct rounded value, so a criterion's column holds few distinct
    texts: each is prefixed and converted to Arrow once, then the rows are joined by Arrow."""
    n = len(verdict.eligible)
    rows, texts = [np.zeros(0, dtype=np.int64)], [pa.array([], type=pa.large_string())]
    for criterion, column in verdict.gap_columns.items():
        at = np.flatnonzero(np.not_equal(column, None))
        codes, distinct = pd.factorize(column[at])
        rows.append(at)
        texts.append(pa.array(f"{criterion}: " + distinct, type=pa.large_string()).take(codes))
    at = np.concatenate(rows)
    order = np.argsort(at, kind="stable")  # by row, each row's criteria in rulebook order
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(at, minlength=n), out=offsets[1:])
    values = pa.concat_arrays(texts).take(order)
    return pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), values),
                          pa.scalar(GAP_SEPARATOR, pa.large_string()))


def tier_text_columns(tier: str) -> list[str]:
    return [f"rulebook_{tier}", f"eligible_{tier}", f"failed_{tier}", f"gaps_{tier}",
            f"reasons_{tier}_for", f"reasons_{tier}_against"]


def output_columns(tiers: tuple[str, ...] = TIERS,
                   reviews: tuple[str, ...] = TIERS) -> list[str]:
    """The output columns for the selection models of ``tiers`` and the re-review models
    of ``reviews`` (default: every tier of both)."""
    return (["firm_id", *IDENTITY_COLUMNS, "year"] + [f"p_{t}" for t in tiers]
            + [f"rank_{t}" for t in tiers] + [c for t in tiers for c in tier_text_columns(t)]
            + [f"p_renewal_{t}" for t in reviews]
            + [f"reasons_renewal_{t}_{side}" for t in reviews for side in ("for", "against")])


def output_schema(tiers: tuple[str, ...] = TIERS, reviews: tuple[str, ...] = ()) -> pa.Schema:
    """Arrow schema of the output file: fixed, so every chunk writes the same columns."""
    types = {"firm_id": pa.string(), "year": pa.int64(), **{f"p_{t}": pa.float64() for t in tiers},
             **{f"rank_{t}": pa.int64() for t in tiers},
             **{f"p_renewal_{t}": pa.float64() for t in reviews}}
    return pa.schema([(c, types.get(c, pa.string())) for c in output_columns(tiers, reviews)])


# ---------------------------------------------------------------------------------------
# Whole runs

def iter_scored(dataset, year: int, firm_ids: np.ndarray, models: dict[str, RegisteredModel],
                rulebooks: dict, reasons: int = 3, chunk_size: int = 100_000, dask=None,
                timer=None, structured: bool = False,
                reviews: dict[str, RegisteredModel] | None = None) -> Iterator[pd.DataFrame]:
    """Scored chunks of `firm_ids` (sorted) in order; with `dask` ("local:N",
    "tcp://HOST:PORT" or a distributed Client) the chunks are scored on a Dask cluster, with
    identical results. reviews: the re-review models (load_models(..., review=True))."""
    timer = timer or no_timer
    tier_models = {t: m.model for t, m in models.items()}
    review_models = {t: m.model for t, m in (reviews or {}).items()}
    with executor_for(dask, timer) as executor:
        cohorts = None
        if reasons > 0 and len(firm_ids) > chunk_size:
            # Reasons place a firm among the year's candidates, not its chunk's: a first pass
            # collects the candidates' measures of every chunk (features built twice).
            values = defaultdict(lambda: defaultdict(list))
            for part in executor.map_chunks(candidate_chunk_values,
                                            partitions(dataset, firm_ids, chunk_size),
                                            year, tuple(tier_models)):
                for tier, measures in part.items():
                    for name, column in measures.items():
                        values[tier][name].append(column)
            with timer("reasons"):  # the summaries are the reasons' work
                cohorts = {tier: Cohort.from_values(measures) for tier, measures in values.items()}
            del values
        yield from executor.map_chunks(score_chunk_rows, partitions(dataset, firm_ids, chunk_size),
                                       year, tier_models, rulebooks, reasons,
                                       structured=structured, review_models=review_models,
                                       population=cohorts)


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
                     population: dict | None = None) -> pd.DataFrame:
    """`score_chunk`'s output rows alone (what crosses a process boundary)."""
    return score_chunk(part, year, firm_ids, models, rulebooks, reasons, threads, timer,
                       structured, population=population, review_models=review_models)[0]


def _start(dataset, year: int, model_alias: str, rulebook: str | None, models, dask, timer,
           reviews=None):
    """Everything a run needs, checked before any scoring: models, re-review models,
    rulebooks, the loaded dataset, the firms to score and the rejects."""
    from features.contract import Dataset, load_dataset

    if isinstance(dask, str):
        from serving.executors import parse_address

        parse_address(dask)  # a typo should not wait for the data to load
    models = models or load_models(model_alias)
    reviews = load_models(model_alias, review=True) if reviews is None else reviews
    rulebooks = rulebooks_for(rulebook, year, tuple(dict.fromkeys([*models, *reviews])))
    if not isinstance(dataset, Dataset):
        with (timer or no_timer)("load_validate"):
            dataset = load_dataset(dataset)
    with (timer or no_timer)("partition"):
        firm_ids = scored_firm_ids(dataset, year)
    if len(firm_ids) == 0:
        years = dataset.financials["year"]
        have = f"{years.min()}-{years.max()}" if len(years) else "none"
        raise ScoringProblem(f"no firm has financials for fiscal year {year - 1}, so nothing "
                             f"can be scored as of {year} (financial years in the data: {have})")
    rejects = pd.concat([dataset.rejects, missing_financials(dataset, year, firm_ids)],
                        ignore_index=True)
    return dataset, models, reviews, rulebooks, firm_ids, rejects


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
    dataset, models, reviews, rulebooks, firm_ids, rejects = _start(
        dataset, year, model_alias, rulebook, models, dask, timer, reviews)
    frames = []
    for frame in iter_scored(dataset, year, firm_ids, models, rulebooks, reasons, chunk_size,
                             dask, timer, structured, reviews):
        frames.append(frame)
        if progress:
            progress(len(frame), len(firm_ids))
    return pd.concat(frames, ignore_index=True), rejects


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
    dataset, models, reviews, rulebooks, firm_ids, rejects = _start(
        data_dir, year, model_alias, rulebook, models, dask, timer, reviews)
    writer = AtomicTableWriter(out_file, output_schema(tuple(models), tuple(reviews)))
    up_for_review = dict.fromkeys(reviews, 0)
    expected_renewals = dict.fromkeys(reviews, 0.0)
    candidates = dict.fromkeys(models, 0)
    expected = dict.fromkeys(models, 0.0)
    eligible: dict[str, dict[str, int]] = {tier: {} for tier in models}
    try:
        for frame in iter_scored(dataset, year, firm_ids, models, rulebooks, reasons,
                                 chunk_size, dask, timer, reviews=reviews):
            with timer("write"):
                writer.write(frame)
            for tier in models:
                candidates[tier] += int(frame[f"p_{tier}"].notna().sum())
                expected[tier] += float(frame[f"p_{tier}"].sum())
                for verdict, count in frame[f"eligible_{tier}"].value_counts().items():
                    eligible[tier][verdict] = eligible[tier].get(verdict, 0) + int(count)
            for tier in reviews:
                up_for_review[tier] += int(frame[f"p_renewal_{tier}"].notna().sum())
                expected_renewals[tier] += float(frame[f"p_renewal_{tier}"].sum())
            if progress:
                progress(len(frame), len(firm_ids))
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


@contextmanager
def rich_progress(description: str = "Scoring"):
    """A progress callback (advance, total) drawing a rich bar on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, total=total, advance=done)

        yield advance
