"""``khaosat template``: the blank Excel form a school fills in for one questionnaire."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import ConfigOption, console, print_error, read_config


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

    folder = (read_config(config).schemas_dir if config.exists() else None) or SCHEMAS_DIR
    try:
        questionnaires = load_questionnaires(folder)
    except QuestionnaireError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    chosen = questionnaires.get(questionnaire.upper())
    if chosen is None:
        known = ", ".join(sorted(questionnaires))
        print_error(f"unknown questionnaire {questionnaire!r} ({known})")
        raise typer.Exit(2)
    path = write_template(chosen, output or Path(f"{chosen.code}.xlsx"), rows=rows)
    console.print(f"Template: {path}")
