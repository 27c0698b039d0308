"""Logging for the command line: rich's handler on a terminal, timestamped lines elsewhere.

The packages log with ``logging.getLogger(__name__)`` and never configure logging; the CLI
does it once per command through `with_logging`, which also gives every command its
``--verbose`` / ``--quiet`` options.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
from typing import Annotated

import typer
from rich.console import Console

# Standard error, shared by the CLI's messages, its spinners and the log handler: rich keeps
# a live spinner below the log lines only when both go through one Console.
STDERR = Console(stderr=True)
PACKAGES = ("features", "models", "training", "serving")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "giantwatch"


def log_level(verbose: bool = False, quiet: bool = False) -> int:
    if verbose and quiet:
        raise typer.BadParameter("--verbose and --quiet exclude each other")
    return logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO


def configure_logging(verbose: bool = False, quiet: bool = False,
                      console: Console | None = None) -> logging.Handler:
    """Send the packages' log records at the chosen level to standard error: through rich's
    handler when it is a terminal, else as plain ``date time LEVEL logger: message`` lines
    (logs, CI, pipes). MLflow's own INFO chatter shows only with --verbose."""
    from rich.logging import RichHandler

    console = console or STDERR
    level = log_level(verbose, quiet)
    if console.is_terminal:
        handler: logging.Handler = RichHandler(console=console, show_path=False,
                                               markup=False, log_time_format="[%X]")
    else:
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    for package in PACKAGES:
        logging.getLogger(package).setLevel(level)
    mlflow_level = "DEBUG" if verbose else "WARNING"
    # MLflow configures its logger when first imported, from this variable.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", mlflow_level)
    # MLflow draws a download bar for every artifact it reads back (e.g. to check an input
    # example); in a log, each is a line of noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true" if verbose else "false")
    if "mlflow" in sys.modules:
        logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"])
    return handler


VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log debugging detail.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Log only warnings and errors.")]


def with_logging(command):
    """Give a Typer command the --verbose / --quiet options, configure logging and check the
    settings before it runs (the options are added to the command's signature, which Typer
    reads)."""
    signature = inspect.signature(command, eval_str=True)
    extra = [inspect.Parameter("verbose", inspect.Parameter.KEYWORD_ONLY, default=False,
                               annotation=VerboseOption),
             inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False,
                               annotation=QuietOption)]

    @functools.wraps(command)
    def wrapper(*args, verbose: bool = False, quiet: bool = False, **kwargs):
        from training.settings import SettingsProblem, get_settings

        configure_logging(verbose=verbose, quiet=quiet)
        try:  # a bad environment variable stops every command before it starts, in one line
            get_settings()
        except SettingsProblem as exc:
            STDERR.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        return command(*args, **kwargs)

    wrapper.__signature__ = signature.replace(
        parameters=[*signature.parameters.values(), *extra])
    wrapper.__annotations__ = {**command.__annotations__, "verbose": VerboseOption,
                               "quiet": QuietOption}
    return wrapper


class _BarHandler(logging.Handler):
    """Moves a rich progress bar along with the INFO records of long commands: the record's
    message becomes the bar's text, and ``extra={"step": (done, total)}`` its position."""

    def __init__(self, progress, task):
        super().__init__(logging.INFO)
        self.progress, self.task = progress, task

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "step", None)
        update = {"description": record.getMessage()}
        if step is not None:
            update.update(completed=step[0], total=step[1])
        self.progress.update(self.task, **update)


@contextlib.contextmanager
def progress_bar(description: str, console: Console | None = None):
    """A progress bar on standard error for the duration of the block, driven by the log
    records (see _BarHandler); outside a terminal nothing is drawn: the log lines are the
    progress."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = console or STDERR
    if not console.is_terminal:
        yield
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        handler = _BarHandler(progress, progress.add_task(description, total=None))
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)


@contextlib.contextmanager
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
