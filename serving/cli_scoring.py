"""The commands that score with the registered models or the rulebooks: `check`, `score`, `whatif`,
`serve` (the HTTP API) and `bench`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from serving.cli_base import AsOfYear, DataDir, ModelAlias, UsageProblem, err, out, user_errors
from serving.logs import with_logging


@user_errors
@with_logging
def check(
    data: DataDir,
    year: Annotated[int, typer.Option(help="As-of year: firms are checked on fiscal year YEAR-1.")],
    out_file: Annotated[
        Path, typer.Option("--out", help="Output table, .csv or .parquet.", dir_okay=False)
    ],
    rulebook: Annotated[
        str | None,
        typer.Option(help="Rulebook years or ids, comma-separated, e.g. 2022 or lg22 "
                          "(default: the rulebook in force for the year, per tier)."),
    ] = None,
) -> None:
    """Check every firm against the official criteria, with the gap to each failed bar.

    Per firm and tier: the rulebook used, eligibility (pass / fail / unknown — missing data
    is unknown, never fail), failed and unknown criteria, and each gap in the firm's own
    units, e.g. "R&D intensity 2.1% < 3.0%: about 1.1M CNY more R&D".
    """
    from serving.check import check_to_file
    from serving.score import ScoringProblem

    if out_file.suffix not in (".csv", ".parquet"):
        raise UsageProblem(f"--out must end in .csv or .parquet, got {out_file.name!r}")
    try:
        with err.status(f"Checking firms as of {year}..."):
            summary = check_to_file(data, year, out_file, rulebook)
    except ScoringProblem as exc:
        raise UsageProblem(str(exc)) from None
    out.print(str(summary), highlight=False, soft_wrap=True)
    if summary.rejects_file is not None:
        err.print(f"[yellow]{summary.rejected:,} rows not checked, with reasons: "
                  f"{summary.rejects_file}[/]")


@user_errors
@with_logging
def score(
    data: DataDir,
    year: AsOfYear,
    out_file: Annotated[
        Path,
        typer.Option("--out", help="Output file, .parquet or .csv; rejects go beside it "
                                   "(NAME.rejects.csv)."),
    ],
    model_alias: ModelAlias = "production",
    reasons: Annotated[
        int, typer.Option(help="Reasons per direction and tier (0: none).", min=0, max=10)
    ] = 3,
    rulebook: Annotated[
        str | None,
        typer.Option(help="Rulebook years or ids for eligibility, gaps and reasons, "
                          "comma-separated (default: the one in force for the year)."),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option(help="Firms per chunk; bounds memory.", min=100)
    ] = 100_000,
    dask: Annotated[
        str | None,
        typer.Option(help="Score on Dask: local:N (N local workers) or tcp://HOST:PORT "
                          "(a running scheduler)."),
    ] = None,
) -> None:
    """Score every firm with financials for YEAR-1 with each tier's production model.

    Writes one row per firm: probability per tier (empty where the firm is not a candidate),
    rulebook eligibility with failed criteria and gaps, and the top reasons for and against.
    The output is written atomically; firms without financials go to the rejects file.
    """
    from serving.logs import rich_progress
    from serving.score import ScoringProblem
    from serving.score_file import score_to_file

    try:
        with rich_progress(f"Scoring {year}") as progress:
            summary = score_to_file(data, year, out_file, model_alias=model_alias,
                                    reasons=reasons, rulebook=rulebook, chunk_size=chunk_size,
                                    progress=progress, dask=dask)
    except ScoringProblem as exc:
        raise UsageProblem(str(exc)) from None
    out.print(str(summary), highlight=False, soft_wrap=True)


@user_errors
@with_logging
def whatif(
    data: DataDir,
    year: AsOfYear,
    firm: Annotated[str, typer.Option(help="firm_id of the firm to plan for.")],
    tier: Annotated[str, typer.Option(help="specialized, little_giant or champion.")],
    target_probability: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Probability to reach (default: the "
                                   "probability of the last firm inside the year's expected "
                                   "quota).")
    ] = None,
    model_alias: ModelAlias = "production",
    rulebook: Annotated[
        str | None, typer.Option(help="Rulebook year or id (default: the one in force).")
    ] = None,
) -> None:
    """What it would take: the smallest changes to the firm's R&D expense, R&D staff,
    invention patents, main-business revenue, liabilities and certification that make it
    eligible under the rulebook in force and raise its probability to the target, each
    step rescored by the production models."""
    from features.contract import load_dataset
    from serving.score import ScoringProblem, load_models
    from serving.whatif_run import WhatIfProblem, describe, plan_firm

    try:
        with err.status(f"Planning for {firm} as of {year}..."):
            result = plan_firm(load_dataset(data), year, firm, tier, load_models(model_alias),
                               target_probability, rulebook)
    except (WhatIfProblem, ScoringProblem) as exc:
        raise UsageProblem(str(exc)) from None
    for line in describe(result):
        out.print(line, highlight=False)


@user_errors
@with_logging
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model_alias: Annotated[
        str | None, typer.Option(help="Registry alias of the models to serve "
                                      "[default: GIANTWATCH_MODEL_ALIAS or production].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes, each loads the models "
                                      "[default: GIANTWATCH_WORKERS or 1].", min=1)
    ] = None,
    max_body_mb: Annotated[
        float | None, typer.Option(help="Largest accepted request body, MiB "
                                        "[default: GIANTWATCH_MAX_BODY_BYTES or 10 MiB].")
    ] = None,
) -> None:
    """Serve the scoring API (POST /score, POST /explain, GET /model, GET /health, docs at /docs).

    If GIANTWATCH_API_KEY is set, requests need the header X-API-Key (GET /health and the
    docs stay open).
    """
    from serving.api import serve as run_server
    from serving.score import ScoringProblem
    from training.settings import get_settings

    settings = get_settings()  # checked by with_logging
    model_alias = model_alias or settings.model_alias
    workers = workers or settings.workers
    max_body = int(max_body_mb * 2**20) if max_body_mb is not None else settings.max_body_bytes
    try:
        run_server(host, port, model_alias, max_body, workers)
    except ScoringProblem as exc:
        raise UsageProblem(str(exc)) from None


@user_errors
@with_logging
def bench(
    data: DataDir,
    year: AsOfYear,
    repeats: Annotated[int, typer.Option(help="Runs; the medians are reported.", min=1)] = 3,
    chunk_size: Annotated[int, typer.Option(help="Firms per chunk.", min=100)] = 100_000,
    model_alias: ModelAlias = "production",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object as the last line.")
    ] = False,
) -> None:
    """Time each stage of batch scoring against LightGBM's own pred_contrib on the same data."""
    import json

    from serving.bench import format_bench, run_bench
    from serving.score import ScoringProblem

    try:
        result = run_bench(data, year, repeats=repeats, chunk_size=chunk_size,
                           model_alias=model_alias)
    except ScoringProblem as exc:
        raise UsageProblem(str(exc)) from None
    (err if as_json else out).print(format_bench(result), highlight=False, soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
