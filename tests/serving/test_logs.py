"""Logging: rich on a terminal, plain timestamped lines elsewhere, levels from the options."""

from __future__ import annotations

import io
import logging
import re

import pytest
import typer
from rich.console import Console

from serving.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_root_handlers():
    root = logging.getLogger()
    handlers, levels = list(root.handlers), {p: logging.getLogger(p).level
                                             for p in ("features", "models", "training", "serving")}
    yield
    root.handlers = handlers
    for package, level in levels.items():
        logging.getLogger(package).setLevel(level)


def test_plain_lines_outside_a_terminal():
    stream = io.StringIO()
    configure_logging(console=Console(file=stream, force_terminal=False))
    logging.getLogger("training.train").info("champion: fitting the final model")
    logging.getLogger("training.train").debug("not shown without --verbose")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO training\.train: champion: "
                        r"fitting the final model\n", stream.getvalue())


def test_rich_on_a_terminal_and_the_levels_of_the_options():
    stream = io.StringIO()
    configure_logging(verbose=True, console=Console(file=stream, force_terminal=True, width=100))
    logging.getLogger("models.audit").debug("fold 2024")
    text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
    assert text.startswith("[") and "DEBUG" in text and "fold 2024" in text and "models.audit:" not in text
    quiet = io.StringIO()
    configure_logging(quiet=True, console=Console(file=quiet, force_terminal=False))
    logging.getLogger("training.train").info("progress")
    logging.getLogger("training.train").warning("a fold with 3 selections")
    assert "progress" not in quiet.getvalue() and "a fold with 3 selections" in quiet.getvalue()
    # each command replaces the handler, never stacks a second one
    assert sum(h.get_name() == "giantwatch" for h in logging.getLogger().handlers) == 1
    with pytest.raises(typer.BadParameter):
        configure_logging(verbose=True, quiet=True)


def test_the_progress_bar_follows_the_log_records():
    from rich.progress import Progress

    from serving.logs import _BarHandler, progress_bar

    progress = Progress(console=Console(file=io.StringIO()))
    handler = _BarHandler(progress, progress.add_task("Training", total=None))
    logger = logging.getLogger("training.train")
    record = logger.makeRecord("training.train", logging.INFO, __file__, 0,
                               "%s: fitting the final model", ("champion",), None,
                               extra={"step": (3, 12)})
    handler.emit(record)
    task = progress.tasks[0]
    assert (task.completed, task.total) == (3, 12)
    assert task.description == "champion: fitting the final model"
    # Outside a terminal no bar and no extra handler: the log lines are the progress.
    before = list(logging.getLogger().handlers)
    with progress_bar("Training", console=Console(file=io.StringIO(), force_terminal=False)):
        assert logging.getLogger().handlers == before
