"""Batch scoring: every firm with financials for year t-1, every tier, with reasons and rules.

    frame, rejects = score_firms(load_dataset("data/demo"), 2026)
    summary = score_to_file("data/demo", 2026, "scores.parquet")

One output row per firm (sorted by firm_id): ``p_<tier>`` is the calibrated probability of
being selected in year t, empty where the firm is not a candidate of the tier (DATA_CONTRACT
"What a prediction is": it already holds a valid title of the tier, or of a higher one for
``specialized``, or was founded in t or later). Per tier, for candidates: ``eligible_<tier>``
(pass / fail / unknown under the rulebook on the firm's data), ``failed_<tier>`` (ids of
failed criteria, "; "-joined), ``gaps_<tier>`` ("id: gap text", " | "-joined) and
``reasons_<tier>_for`` / ``reasons_<tier>_against`` (the strongest SHAP contributions in words).

Memory stays bounded: the tables are split by firm into chunks of ``chunk_size`` firms and
each chunk is featurised, scored and written before the next one (features are per firm, so
a chunk needs only its own firms' rows). Scores come from one LightGBM ``pred_contrib`` pass
per tier: the contributions sum to the raw margin, so a separate predict would repeat work.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.lgbm import TierModel, align_categories
from serving.registry import (  # noqa: F401  (re-exported: the scoring API in one place)
    TIERS,
    RegisteredModel,
    ScoringProblem,
    load_models,
    registered_versions,
)
from serving.writer import AtomicTableWriter

GAP_SEPARATOR = " | "
CRITERIA_SEPARATOR = "; "
NO_FINANCIALS_RULE = "financials_for_asof_year"


class StageTimer:
    """Wall seconds per stage, summed over chunks (`with timer("features"): ...`).

    With ``raw_engine=True`` the scorer also times, on each tier's feature matrix and for
    benchmarks only, LightGBM's bare ``pred_contrib`` again (stage ``raw_contrib``) and the
    separate probability pass a plain scorer would add (stage ``plain_predict``).
    """

    def __init__(self, raw_engine: bool = False):
        self.seconds: dict[str, float] = defaultdict(float)
        self.raw_engine = raw_engine

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


def _no_timer(stage: str):
    return nullcontext()


def default_rulebook(year: int) -> str:
    """Rulebook in force for the lists of as-of year `year`: the 2022 rules until
    2026-03-31, the 2026 rules after (lists are announced from spring on)."""
    return "2026" if int(year) >= 2026 else "2022"


def tier_rulebooks(rulebook: str, tiers: tuple[str, ...] = TIERS) -> dict:
    """The rulebook of each tier: by id/code/path, or by year, in which case a tier without
    a rulebook of that year gets its newest one from before (champion has none for 2026)."""
    from features.rules import available_rulebooks, load_rulebook

    books = {}
    table = available_rulebooks()
    for tier in tiers:
        try:
            books[tier] = load_rulebook(rulebook, tier=tier)
            continue
        except KeyError:
            pass
        of_tier = table[table["tier"] == tier]
        if str(rulebook).isdigit():
            older = of_tier[of_tier["year"].astype(int) <= int(rulebook)]
            if len(older):
                books[tier] = load_rulebook(older.sort_values("year")["path"].iloc[-1])
                continue
        raise ScoringProblem(f"no {tier} rulebook matches {rulebook!r}; available: "
                             f"{', '.join(of_tier['id'])}")
    return books


# ---------------------------------------------------------------------------------------
# Partitioning by firm

def scored_firm_ids(dataset, year: int) -> np.ndarray:
    """Sorted firm_ids with a financials row for fiscal year `year`-1 (object array)."""
    fin = dataset.financials
    ids = fin.loc[fin["year"].to_numpy() == year - 1, "firm_id"].unique()
    return np.sort(np.asarray(ids, dtype=object))


def _positions(ids: pd.Series, scored: pa.Array) -> np.ndarray:
    """Position of each id in `scored` (-1 if absent), hashed by Arrow in C++."""
    values = pa.array(np.asarray(ids, dtype=object), type=pa.string())
    return pc.index_in(values, value_set=scored).fill_null(-1).to_numpy().astype(np.int64)


def partitions(dataset, firm_ids: np.ndarray, chunk_size: int) -> Iterator[tuple[np.ndarray, object]]:
    """(chunk firm_ids, Dataset holding only those firms' rows) per chunk of `chunk_size`
    consecutive `firm_ids`; built lazily, so only one chunk's copy exists at a time."""
    from features.contract import Dataset

    n_chunks = max(1, -(-len(firm_ids) // chunk_size))
    scored = pa.array(firm_ids, type=pa.string())
    layout = {}
    for table in ("firms", "financials", "patents", "certifications"):
        frame = getattr(dataset, table)
        pos = _positions(frame["firm_id"], scored)
        chunk = np.where(pos >= 0, pos // chunk_size, n_chunks)
        order = np.argsort(chunk, kind="stable")
        bounds = np.searchsorted(chunk[order], np.arange(n_chunks + 1))
        layout[table] = (frame, order, bounds)
    for i in range(n_chunks):
        parts = {t: f.iloc[o[b[i]:b[i + 1]]].reset_index(drop=True)
                 for t, (f, o, b) in layout.items()}
        yield firm_ids[i * chunk_size:(i + 1) * chunk_size], Dataset(**parts)


def no_financials_rejects(dataset, year: int, firm_ids: np.ndarray,
                          row_base: int = 1) -> pd.DataFrame:
    """Rejects rows for firms founded before `year` without financials for `year`-1; `row`
    is the firm's row in the firms table counted from `row_base` (1: data rows of a file,
    0: records of a request)."""
    from features.contract import REJECT_COLUMNS
    from features.panel import NO_FINANCIALS_REASON

    firms = dataset.firms
    founded = firms["founded_year"].to_numpy() < year
    missing = founded & (_positions(firms["firm_id"], pa.array(firm_ids, type=pa.string())) < 0)
    rows = np.flatnonzero(missing)
    ids = firms["firm_id"].to_numpy(dtype=object)[rows]
    return pd.DataFrame({
        "table": "firms", "row": rows + row_base, "column": "firm_id", "rule": NO_FINANCIALS_RULE,
        "reason": NO_FINANCIALS_REASON.format(fy=year - 1),
        "record": [json.dumps({"firm_id": f, "year": year}, ensure_ascii=False) for f in ids],
    }, columns=REJECT_COLUMNS).astype({"row": "int64"})


# ---------------------------------------------------------------------------------------
# Scoring one chunk

def candidate_mask(X: pd.DataFrame, tier: str) -> np.ndarray:
    """Candidates of `tier` among the featurised firms: founded before t (firm_age > 0) and
    without a valid excluding title (features holds_<tier>, DATA_CONTRACT validity)."""
    from features.panel import EXCLUDING_TITLES

    mask = X["firm_age"].to_numpy(dtype=np.float64, na_value=np.nan) > 0
    for title in EXCLUDING_TITLES[tier]:
        column = f"holds_{title}"
        if column in X.columns:
            mask &= X[column].to_numpy(dtype=np.float64, na_value=0.0) != 1.0
    return mask


def _shared_categories(models: dict[str, TierModel]) -> dict | None:
    """The models' category lists merged, or None if two models disagree on a column (then
    each model's frame is aligned on its own)."""
    merged: dict[str, list] = {}
    for model in models.values():
        for column, categories in model.categories.items():
            if merged.setdefault(column, categories) != categories:
                return None
    return merged


def _contributions(model: TierModel, X: pd.DataFrame, aligned: pd.DataFrame | None,
                   threads: int, timer) -> np.ndarray:
    """SHAP values (rows x features + bias) of X's rows; `aligned`: the same rows with
    categories already aligned to the model's, if the caller has them."""
    with timer("prepare"):
        if aligned is None:
            frame = align_categories(X[model.feature_names], model.categories)
        else:
            frame = aligned[model.feature_names]
    with timer("shap"):
        values = model.booster.predict(frame, pred_contrib=True, num_threads=threads)
    if getattr(timer, "raw_engine", False):
        with timer("raw_contrib"):
            model.booster.predict(frame, pred_contrib=True, num_threads=threads)
        with timer("plain_predict"):
            model.predict_proba(X)
    return values


def _eligibility(X: pd.DataFrame, rulebook, structured: bool) -> dict[str, list]:
    from features.rules import evaluate, explain_failures

    result = evaluate(X, rulebook)
    explained = explain_failures(X, rulebook, result)
    failed = [a + b for a, b in zip(explained["failed"], explained["failed_on_data"])]
    gaps = list(explained["gaps"])
    if not structured:
        failed = [CRITERIA_SEPARATOR.join(f) for f in failed]
        gaps = [GAP_SEPARATOR.join(f"{k}: {v}" for k, v in g.items()) for g in gaps]
    return {"eligible": list(result.eligible_on_data.astype(str)), "failed": failed,
            "gaps": gaps}


def score_chunk(part, year: int, firm_ids: np.ndarray, models: dict[str, TierModel],
                rulebooks: dict, reasons: int = 3, threads: int = 2, timer=None,
                structured: bool = False, keep: dict | None = None) -> pd.DataFrame:
    """Score the firms `firm_ids` of the dataset `part` (it may hold only their rows).

    Returns one row per firm in `firm_ids` order with the columns of `output_columns`.
    `structured=True` keeps failed criteria as lists and gaps as dicts (for JSON answers).
    `keep`, if given, receives the feature frame and each tier's contributions.
    """
    from features.pipeline import build_features
    from models.reasons import reason_codes

    timer = timer or _no_timer
    with timer("features"):
        X = build_features(part, year, firm_ids=firm_ids)
    n = len(X)
    out: dict[str, object] = {"firm_id": pd.array(X.index.to_numpy(dtype=object), dtype="str"),
                              "year": np.full(n, year, dtype=np.int64)}
    text_columns: dict[str, np.ndarray] = {}
    if keep is not None:
        keep["X"] = X
    with timer("prepare"):
        # One alignment for all tiers when their category lists agree (they normally do).
        shared = _shared_categories(models)
        aligned = None if shared is None else align_categories(X, shared)
    for tier, model in models.items():
        mask = candidate_mask(X, tier)
        rows = np.flatnonzero(mask)
        p = np.full(n, np.nan)
        texts = {c: np.full(n, None, dtype=object) for c in tier_text_columns(tier)}
        if len(rows):
            Xt = X.iloc[rows]
            values = _contributions(model, Xt, None if aligned is None else aligned.iloc[rows],
                                    threads, timer)
            with timer("predict"):
                margin = values.sum(axis=1)
                p[rows] = model.calibrator.predict_proba(margin.reshape(-1, 1))[:, 1]
            contributions = pd.DataFrame(values, index=Xt.index,
                                         columns=[*model.feature_names, "bias"])
            if keep is not None:
                keep[tier] = contributions
            if reasons > 0:
                with timer("reasons"):
                    why = reason_codes(Xt, contributions, n=reasons, tier=tier)
                texts[f"reasons_{tier}_for"][rows] = why["reasons_for"].to_numpy(dtype=object)
                texts[f"reasons_{tier}_against"][rows] = why["reasons_against"].to_numpy(
                    dtype=object)
            with timer("rules"):
                eligibility = _eligibility(Xt, rulebooks[tier], structured)
            for key, values_ in eligibility.items():
                column = f"{key}_{tier}"
                texts[column][rows] = np.asarray(values_ + [None], dtype=object)[:-1]
        out[f"p_{tier}"] = p
        text_columns.update(texts)
    frame = pd.DataFrame(out)
    for column, values in text_columns.items():
        frame[column] = values if structured else pd.array(values, dtype="str")
    return frame[output_columns(tuple(models))]


def tier_text_columns(tier: str) -> list[str]:
    return [f"eligible_{tier}", f"failed_{tier}", f"gaps_{tier}", f"reasons_{tier}_for",
            f"reasons_{tier}_against"]


def output_columns(tiers: tuple[str, ...] = TIERS) -> list[str]:
    return (["firm_id", "year"] + [f"p_{t}" for t in tiers]
            + [c for t in tiers for c in tier_text_columns(t)])


def output_schema(tiers: tuple[str, ...] = TIERS) -> pa.Schema:
    """Arrow schema of the output file: fixed, so every chunk writes the same columns."""
    types = {"firm_id": pa.string(), "year": pa.int64(), **{f"p_{t}": pa.float64() for t in tiers}}
    return pa.schema([(c, types.get(c, pa.string())) for c in output_columns(tiers)])


# ---------------------------------------------------------------------------------------
# Whole runs

def iter_scored(dataset, year: int, firm_ids: np.ndarray, models: dict[str, RegisteredModel],
                rulebooks: dict, reasons: int = 3, chunk_size: int = 100_000, dask=None,
                timer=None, structured: bool = False) -> Iterator[pd.DataFrame]:
    """Scored chunks of `firm_ids` (sorted) in order; with `dask` ("local:N",
    "tcp://HOST:PORT" or a distributed Client) the chunks are scored on a Dask cluster, with
    identical results."""
    timer = timer or _no_timer
    chunks = partitions(dataset, firm_ids, chunk_size)
    tier_models = {t: m.model for t, m in models.items()}
    if dask is not None:
        from serving.dask_score import score_partitions

        yield from score_partitions(chunks, year, tier_models, rulebooks, reasons, dask,
                                    structured=structured)
        return
    while True:
        with timer("partition"):
            item = next(chunks, None)
        if item is None:
            return
        ids, part = item
        yield score_chunk(part, year, ids, tier_models, rulebooks, reasons, timer=timer,
                          structured=structured)


def _start(dataset, year: int, model_alias: str, rulebook: str | None, models, dask, timer):
    """Everything a run needs, checked before any scoring: models, rulebooks, the loaded
    dataset, the firms to score and the rejects."""
    from features.contract import Dataset, load_dataset

    if isinstance(dask, str):
        from serving.dask_score import parse_address

        parse_address(dask)  # a typo should not wait for the data to load
    models = models or load_models(model_alias)
    rulebooks = tier_rulebooks(rulebook or default_rulebook(year), tuple(models))
    if not isinstance(dataset, Dataset):
        with (timer or _no_timer)("load_validate"):
            dataset = load_dataset(dataset)
    with (timer or _no_timer)("partition"):
        firm_ids = scored_firm_ids(dataset, year)
    if len(firm_ids) == 0:
        years = dataset.financials["year"]
        have = f"{years.min()}-{years.max()}" if len(years) else "none"
        raise ScoringProblem(f"no firm has financials for fiscal year {year - 1}, so nothing "
                             f"can be scored as of {year} (financial years in the data: {have})")
    rejects = pd.concat([dataset.rejects, no_financials_rejects(dataset, year, firm_ids)],
                        ignore_index=True)
    return dataset, models, rulebooks, firm_ids, rejects


def score_firms(dataset, year: int, model_alias: str = "production", reasons: int = 3,
                rulebook: str | None = None, chunk_size: int = 100_000,
                progress: Callable[[int, int], None] | None = None, dask=None, *,
                models: dict[str, RegisteredModel] | None = None, timer=None,
                structured: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every firm with financials for `year`-1 with each tier's `model_alias` model.

    dataset: a features.contract.Dataset or a dataset folder. rulebook: rulebook year or id
    for the eligibility columns (default: `default_rulebook(year)`). progress(advance, total)
    is called after each chunk with the number of firms done. models: already loaded models
    (`load_models`), to skip the registry. Returns (scores, rejects): scores as described in
    the module docstring (RangeIndex); rejects in the loader's layout (table, row, column,
    rule, reason, record): the dataset's row-level rejects plus firms without financials.
    """
    year = int(year)
    dataset, models, rulebooks, firm_ids, rejects = _start(dataset, year, model_alias,
                                                           rulebook, models, dask, timer)
    frames = []
    for frame in iter_scored(dataset, year, firm_ids, models, rulebooks, reasons, chunk_size,
                             dask, timer, structured):
        frames.append(frame)
        if progress:
            progress(len(frame), len(firm_ids))
    return pd.concat(frames, ignore_index=True), rejects


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

    def __str__(self) -> str:
        per_tier = ", ".join(f"{t} {n:,}" for t, n in self.candidates.items())
        used = ", ".join(f"{t} v{v}" for t, v in self.models.items())
        return (f"Scored {self.firms_scored:,} firms as of {self.year} in {self.seconds:.1f} s "
                f"(candidates: {per_tier}; models: {used}) -> {self.out_file}\n"
                f"{self.rejected:,} rejected rows -> {self.rejects_file}")


OUTPUT_SUFFIXES = (".parquet", ".csv")


def rejects_path(out_file: Path) -> Path:
    """`scores.parquet` -> `scores.rejects.csv`, beside the output."""
    out_file = Path(out_file)
    return out_file.with_name(f"{out_file.stem}.rejects.csv")


def score_to_file(data_dir, year: int, out_file, model_alias: str = "production",
                  reasons: int = 3, rulebook: str | None = None, chunk_size: int = 100_000,
                  progress: Callable[[int, int], None] | None = None, dask=None, *,
                  models: dict[str, RegisteredModel] | None = None,
                  timer=None) -> ScoreSummary:
    """Score the dataset folder `data_dir` (or a loaded Dataset) as of `year` into
    `out_file` (.parquet or .csv), chunk by chunk, atomically; rejects go to
    `rejects_path(out_file)`. A fatal problem (invalid data, missing model) raises before
    anything is written."""
    from features.contract import write_rejects

    start = time.perf_counter()
    year, out_file = int(year), Path(out_file)
    if out_file.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ScoringProblem(f"output file must end in .parquet or .csv, got {out_file.name}")
    timer = timer or _no_timer
    dataset, models, rulebooks, firm_ids, rejects = _start(data_dir, year, model_alias,
                                                           rulebook, models, dask, timer)
    writer = AtomicTableWriter(out_file, output_schema(tuple(models)))
    candidates = dict.fromkeys(models, 0)
    try:
        for frame in iter_scored(dataset, year, firm_ids, models, rulebooks, reasons,
                                 chunk_size, dask, timer):
            with timer("write"):
                writer.write(frame)
            for tier in models:
                candidates[tier] += int(frame[f"p_{tier}"].notna().sum())
            if progress:
                progress(len(frame), len(firm_ids))
        with timer("write"):
            writer.commit()
            written = write_rejects(rejects, rejects_path(out_file))
    except BaseException:
        writer.abort()
        raise
    return ScoreSummary(out_file, written, year, len(firm_ids), len(rejects),
                        time.perf_counter() - start, candidates,
                        {t: m.version for t, m in models.items()})


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
