"""The ``khaosat`` command line: the typer app, each command group from its own module."""

from __future__ import annotations

from typing import NoReturn

import typer

from flows.cli import report, run, serve, template
from flows.cli.alerts import alerts_app
from flows.cli.status import status
from flows.pipeline.processes import leave

app = typer.Typer(
    help="Nightly consolidation of education satisfaction surveys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(alerts_app, name="alerts")
app.command(name="status")(status)
app.command(name="serve")(serve.serve_command)
app.command()(run.run)
app.command()(run.rerun)
app.command()(run.publish)
app.command()(report.report)
app.command()(template.template)
app.command()(run.demo)


def main() -> NoReturn:
    """The ``khaosat`` console script: the command, then ``leave`` with its exit code. An
    exception the command did not handle ends the process as usual, with its traceback."""
    try:
        app()
    except SystemExit as exc:
        leave(exc.code)
    leave(0)  # pragma: no cover - click's standalone mode always ends in SystemExit
