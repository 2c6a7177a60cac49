"""``khaosat run``, ``rerun``, ``publish`` and ``demo``: the commands that run a flow once.

Each starts Prefect's temporary API first (``start_temporary_api``), so that it boots while
the flow's code is imported, and prints where the warehouse, workbooks, feedback and report are.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.console import Console

from flows.cli.common import ConfigOption, console, print_error, read_config
from flows.pipeline.prefect_api import start_temporary_api
from flows.pipeline.processes import long_lived_imports
from flows.settings import Settings, SettingsError

if TYPE_CHECKING:
    from flows.pipeline.progress import RichReporter


def run_flow(settings: Settings, *, before: Settings | None = None, **params: object) -> int:
    """Run the nightly flow with a progress bar and report it; returns the exit code.

    ``before`` is a campaign run first, on the same temporary API and without a report (the
    demo's previous campaign); a failure that stops it is reported like this one's."""
    api = start_temporary_api()  # it boots while the flow's code is imported
    with long_lived_imports():
        from flows.pipeline import (  # Prefect is imported only once its defaults are set
            context,
            faults,
            nightly,
            notify,
            progress,
        )
        from flows.registry import NotInRegistry, RegistryError, pick
        from schemas import QuestionnaireError
        from warehouse.lock import LockHeld

    try:  # a user's mistake is one line, before the flow, not a failed flow's traceback
        found = context.check_inputs(settings)[1]
    except (RegistryError, QuestionnaireError, SettingsError) as exc:
        api.stop()
        run_id = str(uuid.uuid4())
        faults.record_stop(settings, run_id, exc)  # the night is on record, and told
        notify.notify_run_stopped(settings, run_id, str(exc))
        print_error(exc)
        return 2
    try:  # a command naming what the registry does not have is refused: nothing is recorded
        school, questionnaire = pick(
            found,
            cast(str | None, params.get("school")),
            cast(str | None, params.get("questionnaire")),
        )
    except NotInRegistry as exc:
        api.stop()
        print_error(exc)
        return 2
    if school is not None or questionnaire is not None:
        params = {**params, "school": school, "questionnaire": questionnaire}
    reporter = progress.RichReporter(console)
    faults.quiet_prefect_logs(settings)
    try:
        with faults.stopped_by_signals():
            # the parse processes start reading while the API boots
            context.read_ahead(before or settings, **({} if before else params))
            with api.serving():
                if before is not None:
                    progress.use(progress.RichReporter(Console(file=io.StringIO())))
                    nightly.run(before)
                progress.use(reporter)
                summary = nightly.run(settings, **params)
    except (RegistryError, QuestionnaireError, SettingsError) as exc:
        return _stopped(reporter, str(exc), 2)
    except LockHeld as exc:
        return _stopped(reporter, str(exc), 4)
    except faults.RunFault as exc:
        return _stopped(reporter, f"{exc}; fix this, then run again", faults.EXIT_ERROR)
    except faults.Interrupted as exc:
        return _stopped(reporter, f"{exc}: the run is recorded as interrupted", exc.exit_code)
    console.print(f"Warehouse: {summary.warehouse_url}")
    if not summary.published:
        console.print(
            "Nothing changed since the last publish: marts, alerts and workbooks left as they "
            "are (khaosat publish rebuilds them)"
        )
    if summary.published:
        print_outputs(summary.workbooks, summary.feedback, settings)
    return summary.exit_code


def _stopped(reporter: RichReporter, line: str, code: int) -> int:
    """Print why the command stopped, in one line, and give its exit code."""
    reporter.progress.stop()
    print_error(line)
    return code


def run(config: ConfigOption = Path("khaosat.yaml"), force: bool = False) -> None:
    """Consolidate every source of the campaign, then rebuild marts and workbooks.

    Exit code 0 when every source loaded or was unchanged, 1 when a source failed (the others
    still loaded), 2 for an unusable config or registry, 3 when only registered files are absent,
    4 when another run of the campaign holds it, 5 when the machine stopped the run or a
    source's process, 130 or 143 when SIGINT or SIGTERM stopped it.
    """
    raise typer.Exit(run_flow(read_config(config), force=force))


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
        print_error("give exactly one of --failed or --school CODE")
        raise typer.Exit(2)
    raise typer.Exit(
        run_flow(
            read_config(config), failed_only=failed, school=school, questionnaire=questionnaire
        )
    )


def publish(config: ConfigOption = Path("khaosat.yaml")) -> None:
    """Rebuild marts and workbooks from the warehouse, without fetching any source."""
    settings = read_config(config)
    api = start_temporary_api()
    from flows.pipeline import context, faults, nightly
    from flows.registry import RegistryError
    from schemas import QuestionnaireError
    from warehouse.lock import LockHeld

    faults.quiet_prefect_logs(settings)
    try:
        context.check_inputs(settings)
        with faults.stopped_by_signals(), api.serving():
            workbooks, feedback = nightly.publish(str(settings.config_path))
    except (RegistryError, QuestionnaireError, SettingsError) as exc:
        api.stop()  # stopped already if the flow ran
        print_error(exc)
        raise typer.Exit(2) from None
    except LockHeld as exc:
        print_error(exc)
        raise typer.Exit(4) from None
    except faults.RunFault as exc:
        print_error(f"{exc}; fix this, then run again")
        raise typer.Exit(faults.EXIT_ERROR) from None
    except faults.Interrupted as exc:
        print_error(f"{exc}: the workbooks already written are whole; the others are as before")
        raise typer.Exit(exc.exit_code) from None
    print_outputs(workbooks, feedback, settings)


def print_outputs(workbooks: Sequence[Path], feedback: Sequence[Path], settings: Settings) -> None:
    """Say where a publish's workbooks, the schools' feedback and the draft report are (the
    report if it was written)."""
    from flows.publish.report import report_path

    for path in workbooks:
        console.print(f"Workbook: {path}")
    if feedback:
        console.print(f"Feedback for {len(feedback)} school(s) in {feedback[0].parent}")
    report = report_path(settings.output, settings.campaign.id)
    if report.exists():
        console.print(f"Report: {report}")


def demo(
    folder: Annotated[Path, typer.Argument(help="Where to write the demo province.")] = Path(
        "khaosat-demo"
    ),
    seed: int = 2024,
) -> None:
    """Generate a realistic synthetic province and run the nightly consolidation on it."""
    from flows.cli.demo import generate_province
    from flows.cli.demo.province import PREVIOUS_FOLDER

    config = generate_province(folder, seed=seed, previous=True)
    console.print(f"Demo province written to {folder.resolve()}")
    before = read_config(config.parent / PREVIOUS_FOLDER / "khaosat.yaml")
    console.print(
        f"Previous campaign {before.campaign.id} ({before.campaign.school_year}) loaded first, "
        "for the year-on-year page"
    )
    settings = read_config(config)
    code = run_flow(settings, before=before)
    console.print(
        f"\nConfig: {config.resolve()}\nRe-run with: khaosat run --config {config.resolve()}"
    )
    # The demo deliberately includes broken and absent files: that is its point, not a failure.
    raise typer.Exit(0 if code in (0, 1, 3) else code)
