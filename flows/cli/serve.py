"""``khaosat serve``: the nightly deployment on its schedule until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import print_error
from flows.pipeline.deploy import serve
from flows.settings import SettingsError, apply_prefect_defaults, load_settings


def serve_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Path to khaosat.yaml.", show_default=True)
    ] = Path("khaosat.yaml"),
) -> None:
    """Serve the nightly deployment: run the campaign on its cron schedule until Ctrl-C.

    Schedule from run.cron and run.timezone (default 01:30, Asia/Ho_Chi_Minh). Uses the Prefect
    server at PREFECT_API_URL, or starts a local one (UI on http://127.0.0.1:4200).
    """
    from flows.pipeline.context import check_inputs
    from flows.registry import RegistryError
    from schemas import QuestionnaireError

    try:
        settings = load_settings(config)
        apply_prefect_defaults()
        check_inputs(settings)  # said now, by the officer starting it, rather than at 01:30
        serve(settings)
    except (SettingsError, RegistryError, QuestionnaireError) as exc:
        print_error(exc)
        raise typer.Exit(2) from None
