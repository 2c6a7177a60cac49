"""``khaosat alerts``: list the campaign's alerts, acknowledge or resolve one.

Mounted by flows/cli/app.py as ``app.add_typer(alerts_app, name="alerts")``. Each command reads
khaosat.yaml (``--config/-c``), opens and upgrades the warehouse, and works on the configured
campaign's alerts only. Alerts are raised and cleared by the nightly run; an officer only
acknowledges (known, being handled: stays so while the condition holds) or resolves (fixed: the
next run reopens it if the condition still holds).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from flows.alerts import action_for, format_value, rule_title
from flows.cli.common import ConfigOption, console, print_error, read_config
from flows.privacy import mask_personal
from flows.settings import Settings
from warehouse import db
from warehouse.alerts import (
    ACTIVE_STATUSES,
    Alert,
    AlertError,
    acknowledge,
    list_alerts,
    resolve,
)

alerts_app = typer.Typer(
    help="Alerts of the campaign: list, acknowledge, resolve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
NoteOption = Annotated[
    str, typer.Option("--note", "-n", help="Why (kept with the alert, shown by list).")
]


class StatusChoice(StrEnum):
    """--status of ``alerts list``; 'active' (the default) is open plus acknowledged."""

    active = "active"
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"
    all = "all"


class SeverityChoice(StrEnum):
    """--severity of ``alerts list``."""

    red = "red"
    amber = "amber"
    info = "info"


SEVERITY_STYLE = {"red": "bold red", "amber": "yellow", "info": "dim"}


def _engine(settings: Settings) -> Engine:
    engine = db.connect(settings.warehouse_url)
    db.migrate(engine)
    return engine


def _statuses(choice: StatusChoice) -> tuple[str, ...] | None:
    if choice is StatusChoice.all:
        return None
    if choice is StatusChoice.active:
        return ACTIVE_STATUSES
    return (choice.value,)


def alerts_table(alerts: list[Alert], actions: dict[str, str], title: str | None = None) -> Table:
    """One row per alert: what, where, how far from its threshold, and what to do about it."""
    table = Table(title=title, header_style="bold", show_lines=False)
    for name, justify in [
        ("id", "right"),
        ("severity", "left"),
        ("status", "left"),
        ("scope", "left"),
        ("where", "left"),
        ("alert", "left"),
        ("value", "right"),
        ("threshold", "right"),
        ("first seen", "left"),
        ("last seen", "left"),
        ("follow-up", "left"),
        ("note", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for a in alerts:
        where = a.scope_code if not a.scope_name else f"{a.scope_code} {a.scope_name}"
        what = rule_title(a.rule) + (f": {a.subject}" if a.subject else "")
        table.add_row(
            str(a.alert_id),
            a.severity,
            a.status,
            a.scope,
            where,
            # a subject may be a service name a respondent typed, a note anything: masked, and
            # as plain text so that a placeholder such as "[email]" is shown as it is
            Text(mask_personal(what)),
            format_value(a.rule, a.value),
            format_value(a.rule, a.threshold),
            f"{a.first_seen_at:%Y-%m-%d %H:%M}",
            f"{a.last_seen_at:%Y-%m-%d %H:%M}",
            Text(mask_personal(action_for(a.rule, a.subject, actions))),
            Text(mask_personal(a.note or "")),
            style=SEVERITY_STYLE.get(a.severity, ""),
        )
    return table


@alerts_app.command("list")
def list_command(
    config: ConfigOption = Path("khaosat.yaml"),
    status: Annotated[
        StatusChoice, typer.Option(help="Which statuses; 'active' is open and acknowledged.")
    ] = StatusChoice.active,
    severity: Annotated[SeverityChoice | None, typer.Option(help="Only this severity.")] = None,
    unit: Annotated[
        str | None, typer.Option(help="Only this reporting unit and its schools.")
    ] = None,
) -> None:
    """List the campaign's alerts, most severe first, with the suggested follow-up."""
    settings = read_config(config)
    engine = _engine(settings)
    try:
        found = list_alerts(
            engine,
            settings.campaign.id,
            statuses=_statuses(status),
            severity=severity.value if severity else None,
            unit=unit,
        )
    finally:
        engine.dispose()
    if not found:
        console.print("No alerts match.")
        return
    title = f"{settings.campaign.id}: {len(found)} alert(s)"
    console.print(alerts_table(found, settings.actions, title=title))


def _change(config: Path, alert_id: int, note: str, *, resolve_it: bool) -> None:
    settings = read_config(config)
    engine = _engine(settings)
    try:
        change = resolve if resolve_it else acknowledge
        alert = change(engine, settings.campaign.id, alert_id, note)
    except AlertError as exc:
        print_error(exc)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(alerts_table([alert], settings.actions))


@alerts_app.command("ack")
def ack_command(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id, as listed.")],
    note: NoteOption,
    config: ConfigOption = Path("khaosat.yaml"),
) -> None:
    """Acknowledge an alert: known and being handled. It stays acknowledged while its condition
    holds, opens again if it gets worse (amber to red), is resolved when it clears, and opens
    again if it returns."""
    _change(config, alert_id, note, resolve_it=False)


@alerts_app.command("resolve")
def resolve_command(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="Alert id, as listed.")],
    note: NoteOption,
    config: ConfigOption = Path("khaosat.yaml"),
) -> None:
    """Resolve an alert by hand: fixed. The next run reopens it if the condition still holds."""
    _change(config, alert_id, note, resolve_it=True)
