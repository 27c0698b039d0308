"""The `giantwatch` command line: a thin edge that parses, calls one function and prints.

All logic lives in the packages; each command's body is a call and a print. The commands are
declared by what they serve (typer reads their options from the signatures): datasets in
serving.cli_data, training in serving.cli_training, scoring in serving.cli_scoring, reports
in serving.cli_reports, with what they share in serving.cli_base. Heavy imports happen
inside the commands so that `giantwatch --help` stays instant.
"""

from __future__ import annotations

import sys

import typer

from serving import cli_data, cli_reports, cli_scoring, cli_training

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
# In the order `giantwatch --help` lists them: from data to models to their uses.
app.command()(cli_data.generate)
app.command()(cli_data.validate)
app.command("import")(cli_data.import_)
app.command()(cli_training.train)
app.command()(cli_scoring.check)
app.command()(cli_reports.audit)
app.command()(cli_scoring.score)
app.command()(cli_reports.explain)
app.command()(cli_scoring.whatif)
app.command()(cli_scoring.serve)
app.command()(cli_scoring.bench)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="giantwatch")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
