"""What every `giantwatch` command shares: the two consoles, the wrapper that turns the
user's mistakes into one message and exit code 2, the common options and table printing."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from serving.logs import STDERR

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


def print_frame(frame, title: str) -> None:
    """`frame` as a table on standard output (its named index as columns; see `cell`)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    shown = frame.reset_index() if frame.index.name or any(frame.index.names) else frame
    for column in shown.columns:
        table.add_column(str(column))
    years = [("year" in str(c).lower()) for c in shown.columns]
    for row in shown.itertuples(index=False):
        table.add_row(*(str(v) if is_year else cell(v) for v, is_year in zip(row, years)))
    out.print(table)


def cell(value) -> str:
    """A table cell as people read it: yes / NO, n/a for a missing figure, thousands
    separated, four significant digits."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return "n/a" if np.isnan(value) else f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
