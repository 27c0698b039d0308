"""The `giantwatch` command line: a thin edge that parses, calls one function and prints.

All logic lives in the packages; heavy imports happen inside the commands so that
`giantwatch --help` stays instant. The module is longer than the others because it declares
the options of eleven commands (typer reads them from the signatures); each body is a call
and a print.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from serving.logs import STDERR, progress_bar, with_logging

app = typer.Typer(
    name="giantwatch",
    help=(
        "Predict, explain and audit China's tiered SME certifications "
        "(Specialized SMEs, Little Giants, Manufacturing Single Champions)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables of metrics are wide: without a terminal (logs, CI) do not squeeze them into 80 columns.
out = Console() if Console().is_terminal else Console(width=160)
err = STDERR


def user_errors(command: Callable) -> Callable:
    """Turn known user-facing errors into one clear message and exit code 2, no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from features.contract import ContractError

        try:
            return command(*args, **kwargs)
        except ContractError as exc:
            err.print(f"[bold red]Invalid input data[/]\n{exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except UsageProblem as exc:
            err.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except (typer.Exit, typer.Abort, click.ClickException):
            raise  # already said (a bad setting, a usage error): click ends the command
        except OSError as exc:  # an output under a file, a folder that cannot be written...
            err.print(f"[bold red]Error:[/] {_os_problem(exc)}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(code=2) from None
        except Exception as exc:
            if os.environ.get("GIANTWATCH_TRACEBACK"):
                raise
            err.print(f"[bold red]Error:[/] giantwatch stopped on an unexpected "
                      f"{type(exc).__name__}: {exc} (set GIANTWATCH_TRACEBACK=1 to see where)",
                      highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper


def _os_problem(exc: OSError) -> str:
    """One sentence for a file-system error, naming the path."""
    where = exc.filename or "a file"
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return (f"cannot write under {where}: a file is in the way where a folder is needed "
                "(choose another --out or --rejects path)")
    if isinstance(exc, IsADirectoryError):
        return f"{where} is a folder where a file is needed"
    return f"{where}: {exc.strerror or exc}"


class UsageProblem(Exception):
    """A problem with the command's arguments or environment that the user can fix."""


MoneyUnit = Annotated[
    str | None,
    typer.Option(help="Unit of the money columns if not yuan: thousand (千元) or wan (万元); "
                      "they are converted to yuan."),
]

DataDir = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Dataset folder with firms, financials, patents and certifications (.csv or .parquet).",
        file_okay=False,
    ),
]
# Options shared by the commands that score with the registered models.
AsOfYear = Annotated[
    int, typer.Option("--year", help="As-of year t: features use data known by the end of t-1.")
]
ModelAlias = Annotated[str, typer.Option(help="Registry alias of the models.")]


@app.command()
@user_errors
@with_logging
def generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the dataset into.")],
    firms: Annotated[int, typer.Option(help="Number of firms in the universe.", min=100)] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 7,
    fmt: Annotated[
        str, typer.Option("--format", help="File format of the four tables: parquet or csv.")
    ] = "parquet",
    calibration: Annotated[
        bool, typer.Option(help="Print the calibration check against published figures.")
    ] = True,
    mechanism: Annotated[
        str, typer.Option(help="How non-merit channels fill the lists: additive (favours add "
                          "to the committee score) or separate (a favour channel fills part "
                          "of each list independently of merit).")
    ] = "additive",
) -> None:
    """Write a synthetic firm universe (fiscal years 2013-2025) in the data-contract format.

    Besides the four contract tables it writes truth.parquet: the channel (merit or a
    non-merit channel) behind every certification event and its true probabilities; and
    truth_candidates.parquet: every firm eligible for a list with its true probability of
    selection. No loader reads them.
    """
    from training.synthetic import generate_universe, write_universe
    from training.synthetic.calibration import calibration_report

    if fmt not in ("parquet", "csv"):
        raise UsageProblem(f"--format must be parquet or csv, got {fmt!r}")
    if mechanism not in ("additive", "separate"):
        raise UsageProblem(f"--mechanism must be additive or separate, got {mechanism!r}")
    with err.status("Generating the firm universe...") as status:
        tables = generate_universe(
            n_firms=firms, seed=seed, progress=lambda stage: status.update(f"{stage}..."),
            mechanism=mechanism,
        )
        status.update("Writing tables...")
        write_universe(tables, out_dir, fmt=fmt)
    counts = ", ".join(f"{len(tables[name]):,} {name}" for name in ("firms", "financials",
                                                                       "patents", "certifications"))
    out.print(f"Wrote {counts} to {out_dir}")
    if calibration:
        report = calibration_report(tables)
        _print_frame(report, title="Calibration against published figures")
        if not report["ok"].all():
            err.print("[yellow]Some calibration figures fall outside their published range.[/]")


@app.command()
@user_errors
@with_logging
def validate(
    data: DataDir,
    rejects: Annotated[
        Path | None,
        typer.Option(help="Where to write row-level problems (default: DATA/rejects.csv)."),
    ] = None,
    money_unit: MoneyUnit = None,
) -> None:
    """Check a dataset against the data contract and summarise it.

    Fatal problems (missing column, wrong type, duplicate key, value out of range) stop
    with one message naming table, column, row and rule, and exit code 2. Row-level
    problems (e.g. a patent of an unknown firm) are counted and written to a rejects file.
    """
    from features.contract import load_dataset, summarize, write_rejects

    dataset = load_dataset(data, money_unit=money_unit)
    for note in dataset.notes:
        err.print(f"Read {note}", highlight=False, soft_wrap=True)
    for warning in dataset.warnings:
        err.print(f"[yellow]Warning: {warning}[/]", highlight=False, soft_wrap=True)
    summary = summarize(dataset)
    _print_summary(summary)
    if len(dataset.rejects):
        path = write_rejects(dataset.rejects, rejects or data / "rejects.csv")
        err.print(f"[yellow]{len(dataset.rejects):,} row-level problems written to {path}[/]")
    else:
        out.print("[green]No problems found.[/]")


@app.command("import")
@user_errors
@with_logging
def import_(
    src: Annotated[Path, typer.Option("--from", help="Folder of exports: CSV (any common "
                                      "encoding and delimiter), .xlsx or .parquet files.")],
    out_dir: Annotated[Path, typer.Option("--out", help="New or empty folder for the "
                                          "contract dataset.")],
    profile: Annotated[
        Path | None, typer.Option(help="Your import profile (TOML), in front of the shipped "
                                       "one: headers, file names, money unit per table.")
    ] = None,
    lists: Annotated[
        list[Path] | None, typer.Option("--lists", help="A name-only list (name, tier, year, "
                                        "optional batch and province); repeat for several.")
    ] = None,
    money_unit: MoneyUnit = None,
) -> None:
    """Turn real exports (Chinese or English headers, money in 元/千元/万元) and name-only
    MIIT lists into a contract dataset that every command reads.

    List names are matched to firms.name (exact, normalised, fuzzy); OUT/match_report.csv
    lists every row with how it matched, and unmatched or ambiguous rows go to
    OUT/rejects.csv. Nothing is written if the result breaks the data contract.
    """
    from features.importing import ImportProblem, import_exports

    try:
        summary = import_exports(src, out_dir, profile, lists or (), money_unit)
    except ImportProblem as exc:
        raise UsageProblem(str(exc)) from None
    for line in summary.notes():
        err.print(line, highlight=False, soft_wrap=True)
    if summary.matches is not None:
        _print_frame(summary.matches, title="List names matched to firms")
    for warning in summary.warnings:
        err.print(f"[yellow]Warning: {warning}[/]", highlight=False, soft_wrap=True)
    out.print("Wrote " + ", ".join(f"{n:,} {t}" for t, n in summary.rows.items())
              + f" to {summary.out_dir}")
    if summary.rejected:
        err.print(f"[yellow]{summary.rejected:,} rows not imported, with reasons: "
                  f"{summary.out_dir / 'rejects.csv'}[/]")


@app.command()
@user_errors
@with_logging
def train(
    data: DataDir,
    tiers: Annotated[
        str, typer.Option(help="Comma-separated tiers to model: specialized, little_giant, champion.")
    ] = "specialized,little_giant,champion",
    until_year: Annotated[
        int | None, typer.Option(help="Ignore certifications announced after this year.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for LightGBM and the baselines.")] = 0,
    force_promote: Annotated[
        bool, typer.Option(help="Give the new models the production alias even if not better.")
    ] = False,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment of the runs (default: "
                                      "GIANTWATCH_EXPERIMENT, else 'giantwatch').")
    ] = None,
    sample_rate: Annotated[
        float | None, typer.Option(help="Fraction of each year's non-selected candidates the "
                                        "selection models train on (every selection is kept; "
                                        "test years are scored whole). Default: a year "
                                        "with more than 20,000 of them is sampled down to "
                                        "about 20,000, and one with more than 10,000 "
                                        "selections down to about 10,000 selections; "
                                        "1: never sample.")
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(help="Fit the LightGBM models on Dask (lightgbm.dask): local:N (N local "
                          "workers) or tcp://HOST:PORT (a running scheduler).")
    ] = None,
) -> None:
    """Train a LightGBM model per tier, evaluated walk-forward, and register it in MLflow;
    likewise a re-review model per tier (`<tier>-review`: is a title renewed when its three
    years end?) where the data hold enough re-reviews.

    Each tier's model is compared with the 2022 rulebook and a logistic regression on the
    same folds (train on years before the test year). A new model version gets the
    `production` alias only if it is at least as good as the current one.

    Tracking goes to MLFLOW_TRACKING_URI, or to sqlite:///mlruns/mlflow.db by default.
    """
    import shlex

    from training.cluster import ClusterProblem
    from training.model_card import FEW_SELECTIONS, formatted
    from training.tracking import ui_runs_url
    from training.train import TrainingProblem
    from training.train import train as run_training

    tier_list = tuple(t.strip() for t in tiers.split(",") if t.strip())
    try:
        with progress_bar("Training"):
            result = run_training(data, tiers=tier_list, until_year=until_year, seed=seed,
                                  force_promote=force_promote, experiment=experiment,
                                  sample_rate=sample_rate, dask=dask)
    except (TrainingProblem, ClusterProblem) as exc:
        raise UsageProblem(str(exc)) from None
    _print_frame(formatted(result.summary()), title="Walk-forward metrics, mean over test years")
    _print_frame(formatted(result.folds()[["tier", "test year", "trained on", "firms tested",
                                           "selections", "PR AUC", "precision@k"]]),
                 title="Walk-forward folds (LightGBM)")
    for tier, years in result.thin_folds().items():
        err.print(f"[yellow]{tier}: test year(s) {', '.join(map(str, years))} had fewer than "
                  f"{FEW_SELECTIONS} selections; their metrics are noisy.[/]")
    for tier, outcome in result.tiers.items():
        verdict = "is production" if outcome.gate.promoted else "stays out of production"
        out.print(f"{tier} v{outcome.model_version} {verdict}: {outcome.gate.reason}")
    for why in result.skipped.values():
        out.print(why)
    out.print(f"MLflow run {result.parent_run_id} in experiment {result.experiment!r} "
              f"({result.tracking_uri}).")
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    out.print("Open the MLflow UI with: "
              f"{shlex.quote(str(mlflow_cli))} ui --backend-store-uri "
              f"{shlex.quote(result.tracking_uri)}", highlight=False, soft_wrap=True)
    out.print(f"and go to {ui_runs_url(result.experiment_id)} (the runs, in the UI's model "
              "training view)", highlight=False, soft_wrap=True)


@app.command()
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


@app.command()
@user_errors
@with_logging
def audit(
    data: DataDir,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for anomalies.csv, overlooked.csv and report.html.",
                           file_okay=False)
    ],
    tiers: Annotated[
        str, typer.Option(help="Comma-separated tiers to audit: specialized, little_giant, champion.")
    ] = "specialized,little_giant,champion",
    seed: Annotated[int, typer.Option(help="Seed for the out-of-fold models.")] = 0,
) -> None:
    """Audit every certified firm-year and rank the selections that look anomalous.

    A merit model (published criteria and the firm's own performance only) and a full model
    score every firm-year out of fold. Each certified firm-year gets an anomaly score, MERICS
    flags (too large for an SME, weak performance, subsidiary of a large group, failed R&D/IP
    criteria) and reasons; high-merit candidates that were not selected are listed too.
    Writes OUT/anomalies.csv, OUT/overlooked.csv and OUT/report.html, all or nothing, and
    logs them to an MLflow run named "audit". With DATA/truth.parquet (the synthetic
    universe) it also prints how well the ranking finds the non-merit selections.
    """
    from serving.report import render_report
    from training.audit_run import AuditProblem, run_audit

    tier_list = tuple(t.strip() for t in tiers.split(",") if t.strip())
    try:
        with progress_bar("Auditing"):
            result = run_audit(data, out_dir, tiers=tier_list, seed=seed,
                               progress=logging.getLogger("training.audit_run").info,
                               render_report=render_report)
    except AuditProblem as exc:
        raise UsageProblem(str(exc)) from None
    for tier, why in result.skipped.items():
        err.print(f"[yellow]{tier} not audited: {why}[/]")
    summary = result.anomalies.groupby("tier", sort=False).agg(
        certified=("falls_short", "size"), falls_short=("falls_short", "sum"),
        share=("falls_short", "mean"))
    _print_frame(summary, title="Certified firm-years falling short of the published criteria")
    if result.truth_evaluation is not None:
        _print_frame(result.truth_evaluation.drop(columns=["k"]),
                     title="Finding the non-merit selections (truth.parquet; k = non_merit)")
    if result.province_agreement is not None and len(result.province_agreement):
        _print_frame(result.province_agreement.set_index("tier"),
                     title="Province effects against the truth (Spearman; ceiling = the "
                           "realised effect against the interference; size_baseline = "
                           "provinces by fewest candidates against the realised effect)")
        if result.province_agreement["with_true_effect"].isna().all():
            err.print("[yellow]n/a: this universe's truth_candidates.parquet has no "
                      "true_p_no_province (generated by an earlier version); generate it "
                      "again to compare with the realised province effects[/]")
    out.print(f"{len(result.anomalies):,} ranked selections: {result.out_dir / 'anomalies.csv'}")
    out.print(f"{len(result.overlooked):,} overlooked candidates: "
              f"{result.out_dir / 'overlooked.csv'}")
    if result.renewals is not None and len(result.renewals):
        failing = int(result.renewals["fails_rules_in_force"].sum())
        out.print(f"{len(result.renewals):,} renewals at re-review, {failing:,} failing the "
                  f"criteria in force: {result.out_dir / 'renewals.csv'}")
    out.print(f"Report: {result.report_path}")
    out.print(f"MLflow run {result.run_id} in experiment {result.experiment!r}.")


@app.command()
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
    from serving.score import ScoringProblem, rich_progress, score_to_file

    try:
        with rich_progress(f"Scoring {year}") as progress:
            summary = score_to_file(data, year, out_file, model_alias=model_alias,
                                    reasons=reasons, rulebook=rulebook, chunk_size=chunk_size,
                                    progress=progress, dask=dask)
    except ScoringProblem as exc:
        raise UsageProblem(str(exc)) from None
    out.print(str(summary), highlight=False, soft_wrap=True)


@app.command()
@user_errors
@with_logging
def explain(
    data: DataDir,
    year: AsOfYear,
    firm: Annotated[str, typer.Option(help="firm_id of the firm to explain.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML page to write (default: FIRM-YEAR.html).",
                                  dir_okay=False)
    ] = None,
    model_alias: ModelAlias = "production",
    rulebook: Annotated[
        str | None, typer.Option(help="Rulebook years or ids (default: the one in force).")
    ] = None,
    whatif: Annotated[
        list[str] | None, typer.Option(help="Add the what-if plan of this tier (repeatable; "
                                       "as `giantwatch whatif`, to the quota line).")
    ] = None,
) -> None:
    """One firm on one page: per tier its probability and rank, the rulebook checklist with
    gaps, the reasons and a SHAP waterfall, similar title holders, and its history."""
    from serving.firm_page import FirmPageProblem, write_firm_page
    from serving.score import ScoringProblem

    out_file = out_file or Path(f"{firm}-{year}.html")
    if out_file.suffix.lower() != ".html":
        raise UsageProblem(f"--out must end in .html, got {out_file.name!r}")
    try:
        with err.status(f"Explaining {firm} as of {year}..."):
            path = write_firm_page(data, year, firm, out_file, model_alias, rulebook,
                                   tuple(whatif or ()))
    except (FirmPageProblem, ScoringProblem) as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"Firm page: {path}")


@app.command()
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


@app.command()
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


@app.command()
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


def _print_summary(summary: dict) -> None:
    import pandas as pd

    for key, value in summary.items():
        if isinstance(value, pd.DataFrame):
            _print_frame(value, title=key.replace("_", " "))
        elif isinstance(value, dict) and not value:
            out.print(f"{key.replace('_', ' ')}: none")
        elif isinstance(value, dict):
            _print_frame(
                pd.DataFrame({"item": list(value), "value": list(value.values())}),
                title=key.replace("_", " "),
            )
        else:
            out.print(f"{key.replace('_', ' ')}: {value}")


def _print_frame(frame, title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    shown = frame.reset_index() if frame.index.name or any(frame.index.names) else frame
    for column in shown.columns:
        table.add_column(str(column))
    years = [("year" in str(c).lower()) for c in shown.columns]
    for row in shown.itertuples(index=False):
        table.add_row(*(str(v) if is_year else _cell(v) for v, is_year in zip(row, years)))
    out.print(table)


def _cell(value) -> str:
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="giantwatch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
