"""The commands that make, check and import datasets: `generate`, `validate`, `import`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from serving.cli_base import DataDir, MoneyUnit, UsageProblem, err, out, print_frame, user_errors
from serving.logs import with_logging


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
        print_frame(report, title="Calibration against published figures")
        if not report["ok"].all():
            err.print("[yellow]Some calibration figures fall outside their published range.[/]")


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
    print_summary(summary)
    if len(dataset.rejects):
        path = write_rejects(dataset.rejects, rejects or data / "rejects.csv")
        err.print(f"[yellow]{len(dataset.rejects):,} row-level problems written to {path}[/]")
    else:
        out.print("[green]No problems found.[/]")


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
        print_frame(summary.matches, title="List names matched to firms")
    for warning in summary.warnings:
        err.print(f"[yellow]Warning: {warning}[/]", highlight=False, soft_wrap=True)
    out.print("Wrote " + ", ".join(f"{n:,} {t}" for t, n in summary.rows.items())
              + f" to {summary.out_dir}")
    if summary.rejected:
        err.print(f"[yellow]{summary.rejected:,} rows not imported, with reasons: "
                  f"{summary.out_dir / 'rejects.csv'}[/]")


def print_summary(summary: dict) -> None:
    import pandas as pd

    for key, value in summary.items():
        if isinstance(value, pd.DataFrame):
            print_frame(value, title=key.replace("_", " "))
        elif isinstance(value, dict) and not value:
            out.print(f"{key.replace('_', ' ')}: none")
        elif isinstance(value, dict):
            print_frame(
                pd.DataFrame({"item": list(value), "value": list(value.values())}),
                title=key.replace("_", " "),
            )
        else:
            out.print(f"{key.replace('_', ' ')}: {value}")
