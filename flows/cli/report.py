"""``khaosat report``: the draft báo cáo from the warehouse's marts as the last run left them."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.cli.common import ConfigOption, console, print_error, read_config
from flows.publish.report import write_report
from schemas import QuestionnaireError, load_questionnaires
from schemas.questionnaire import SCHEMAS_DIR
from warehouse import db
from warehouse.ledger import has_ledger, last_run


def report(config: ConfigOption = Path("khaosat.yaml")) -> None:
    """Write output/<campaign>_BAO_CAO.docx, the draft report, from the marts as they are.

    Fetches and rebuilds nothing (khaosat publish rebuilds the marts, and writes it too).
    Exit code 2 when the config or a questionnaire is unusable or the campaign never ran, 5
    when the output folder cannot be written.
    """
    settings = read_config(config)
    campaign = settings.campaign.id
    url = settings.warehouse_url
    again = f"run khaosat run --config {settings.config_path} first"
    if not db.exists(url):
        print_error(f"no warehouse at {db.safe_url(url)} yet: {again}")
        raise typer.Exit(2)
    engine = db.connect(url)
    try:
        if not has_ledger(engine) or last_run(engine, campaign) is None:
            print_error(f"campaign {campaign} has no run in {db.safe_url(url)}: {again}")
            raise typer.Exit(2)
        try:
            questionnaires = load_questionnaires(settings.schemas_dir or SCHEMAS_DIR)
        except QuestionnaireError as exc:
            print_error(exc)
            raise typer.Exit(2) from None
        try:
            path = write_report(
                engine,
                campaign,
                settings.output,
                questionnaires,
                thresholds=settings.thresholds,
                actions=settings.actions,
            )
        except OSError as exc:
            print_error(f"cannot write the report into {settings.output}: {exc.strerror or exc}")
            raise typer.Exit(5) from None
    finally:
        engine.dispose()
    console.print(f"Report: {path}")
