"""The ``khaosat`` command line: run, rerun, status, publish, demo."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from flows.cli.alerts import alerts_app
from flows.cli.status import status
from flows.pipeline.deploy import serve_command
from flows.pipeline.prefect_api import start_temporary_api
from flows.pipeline.processes import long_lived_imports
from flows.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    help="Nightly consolidation of education satisfaction surveys.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Logs and CI capture output without a terminal: give tables room instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
app.add_typer(alerts_app, name="alerts")
app.command(name="status")(status)
app.command(name="serve")(serve_command)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Path to khaosat.yaml.", show_default=True)
]


def _settings(config: Path) -> Settings:
    try:
        return load_settings(config)
    except SettingsError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _run(settings: Settings, **params: object) -> int:
    api = start_temporary_api()  # it boots while the flow's code is imported
    with long_lived_imports():
        from flows.pipeline import (  # Prefect is imported only once its defaults are set
            nightly,
            progress,
        )
        from flows.registry import RegistryError
        from schemas import QuestionnaireError
        from warehouse.lock import LockHeld

    progress.use(progress.RichReporter(console))
    nightly.read_ahead(settings, **params)  # the parse processes start while the API boots
    try:
        with api.serving():
            summary = nightly.run(settings, **params)
    except (RegistryError, QuestionnaireError, SettingsError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    except LockHeld as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 4
    console.print(f"Warehouse: {summary.warehouse_url}")
    if not summary.published:
        console.print(
            "Nothing changed since the last publish: marts, alerts and workbooks left as they "
            "are (khaosat publish rebuilds them)"
        )
    for path in summary.workbooks:
        console.print(f"Workbook: {path}")
    if summary.feedback:
        folder = summary.feedback[0].parent
        console.print(f"Feedback for {len(summary.feedback)} school(s) in {folder}")
    return summary.exit_code


@app.command()
def run(config: ConfigOption = Path("khaosat.yaml"), force: bool = False) -> None:
    """Consolidate every source of the campaign, then rebuild marts and workbooks.

    Exit code 0 when every source loaded or was unchanged, 1 when a source failed (the others
    still loaded), 2 for an unusable config or registry, 3 when only registered files are absent,
    4 when another run of the campaign holds it.
    """
    raise typer.Exit(_run(_settings(config), force=force))


@app.command()
def rerun(
    config: ConfigOption = Path("khaosat.yaml"),
    failed: Annotated[
        bool, typer.Option("--failed", help="Sources whose last load failed.")
    ] = False,
    school: Annotated[str | None, typer.Option(help="Force one school's sources.")] = None,
    questionnaire: Annotated[str | None, typer.Option(help="With --school: only this one.")] = None,
) -> None:
    """Re-process what failed, or one school, then refresh marts and workbooks."""
    if failed == bool(school):
        console.print("[bold red]error:[/] give exactly one of --failed or --school CODE")
        raise typer.Exit(2)
    raise typer.Exit(
        _run(_settings(config), failed_only=failed, school=school, questionnaire=questionnaire)
    )


@app.command()
def publish(config: ConfigOption = Path("khaosat.yaml")) -> None:
    """Rebuild marts and workbooks from the warehouse, without fetching any source."""
    settings = _settings(config)
    api = start_temporary_api()
    from flows.pipeline import nightly
    from warehouse.lock import LockHeld

    try:
        with api.serving():
            workbooks, feedback = nightly.publish(str(settings.config_path))
    except LockHeld as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(4) from None
    for path in workbooks:
        console.print(f"Workbook: {path}")
    if feedback:
        console.print(f"Feedback for {len(feedback)} school(s) in {feedback[0].parent}")


@app.command()
def template(
    questionnaire: Annotated[str, typer.Argument(help="Questionnaire code, e.g. CMHS_TH.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="File to write (default: <CODE>.xlsx here)."),
    ] = None,
    rows: Annotated[int | None, typer.Option(help="Answer rows with dropdowns.")] = None,
    config: ConfigOption = Path("khaosat.yaml"),
) -> None:
    """Write the blank Excel form a school fills in for QUESTIONNAIRE.

    Uses the config's schemas_dir when a config is present, else the built-in questionnaires.
    """
    from flows.publish.template import write_template
    from schemas import QuestionnaireError, load_questionnaires
    from schemas.questionnaire import SCHEMAS_DIR

    folder = (_settings(config).schemas_dir if config.exists() else None) or SCHEMAS_DIR
    try:
        questionnaires = load_questionnaires(folder)
    except QuestionnaireError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    q = questionnaires.get(questionnaire.upper())
    if q is None:
        known = ", ".join(sorted(questionnaires))
        console.print(f"[bold red]error:[/] unknown questionnaire {questionnaire!r} ({known})")
        raise typer.Exit(2)
    path = write_template(q, output or Path(f"{q.code}.xlsx"), rows=rows)
    console.print(f"Template: {path}")


@app.command()
def demo(
    folder: Annotated[Path, typer.Argument(help="Where to write the demo province.")] = Path(
        "khaosat-demo"
    ),
    seed: int = 2024,
) -> None:
    """Generate a realistic synthetic province and run the nightly consolidation on it."""
    from flows.cli.demo import generate_province

    config = generate_province(folder, seed=seed)
    console.print(f"Demo province written to {folder.resolve()}")
    code = _run(_settings(config))
    console.print(
        f"\nConfig: {config.resolve()}\nRe-run with: khaosat run --config {config.resolve()}"
    )
    # The demo deliberately includes broken and absent files: that is its point, not a failure.
    raise typer.Exit(0 if code in (0, 1, 3) else code)


def main() -> NoReturn:
    """The ``khaosat`` console script: the command, then ``leave`` with its exit code. An
    exception the command did not handle ends the process as usual, with its traceback."""
    try:
        app()
    except SystemExit as exc:
        leave(exc.code)
    leave(0)  # pragma: no cover - click's standalone mode always ends in SystemExit


def leave(code: str | int | None) -> NoReturn:
    """Exit as the interpreter would, less its teardown.

    First what Python does at exit: wait for the threads (where concurrent.futures shuts its
    pools down, so no parse or load process outlives the command), run the atexit handlers
    (the temporary Prefect API, logging), flush output. Then ``os._exit``: the teardown would
    free, object by object, a heap holding Prefect, Great Expectations and pandas, ~1.2 s at
    the end of a run that the operating system does at once (benchmarks/README.md).
    """
    if isinstance(code, str):  # sys.exit("message"), as the interpreter would print it
        print(code, file=sys.stderr)
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
