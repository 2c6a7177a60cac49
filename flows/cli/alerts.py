"""``khaosat alerts``: list the campaign's alerts, show one with its history, acknowledge,
resolve or annotate one.

Mounted by flows/cli/app.py as ``app.add_typer(alerts_app, name="alerts")``. Each command reads
khaosat.yaml (``--config/-c``), opens and upgrades the warehouse, and works on the configured
campaign's alerts only. Alerts are raised and cleared by the nightly run; an officer only
acknowledges (known, being handled: stays so while the condition holds), resolves (fixed: the
next run reopens it if the condition still holds) or adds a note. Each of those is kept, with
who (``--by``, default the operating-system user) and when, and ``show`` prints them.

An alert id or unit the campaign does not have is a mistake in the command: one line with the
nearest ids or units, exit code 2. A change the alert's status does not allow (acknowledging a
resolved alert) is refused with exit code 1.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine

from flows.alerts import (
    DigestLine,
    Thresholds,
    action_for,
    digest,
    format_value,
    rule_title,
    sample_size,
)
from flows.cli.common import ConfigOption, console, print_error, read_config
from flows.privacy import mask_personal
from flows.settings import Settings
from warehouse import db
from warehouse.alert_actions import (
    AlertEvent,
    acknowledge,
    add_note,
    alert_history,
    resolve,
    unit_codes,
)
from warehouse.alerts import (
    ACTIVE_STATUSES,
    Alert,
    AlertError,
    UnknownAlert,
    get_alert,
    list_alerts,
)
from warehouse.read_models import response_counts

alerts_app = typer.Typer(
    help="Alerts of the campaign: list, show with history, acknowledge, resolve, note.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
NoteOption = Annotated[
    str,
    typer.Option("--note", "-n", help="Why (kept in the alert's history, shown by list and show)."),
]
ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who, as kept in the history (default: the operating-system user)."),
]
IdArgument = Annotated[int, typer.Argument(metavar="ID", help="Alert id, as listed.")]


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


def _grouped(codes: Sequence[tuple[str, ...]]) -> str:
    """("CMHS_TH", "CSVC"), ("CMHS_TH", "HOAT_DONG") → "CMHS_TH CSVC HOAT_DONG": the last
    part of each, after the questionnaire they share."""
    out: dict[str, list[str]] = {}
    for code in codes:
        out.setdefault(code[0], []).append(code[-1])
    return "; ".join(f"{q} {' '.join(parts)}" for q, parts in out.items())


def _others(line: DigestLine) -> str:
    """The rules of a line's other alerts, each with the subjects it was raised on."""
    by_rule: dict[str, list[str]] = {}
    for rule, subject in line.others:
        by_rule.setdefault(rule, []).append(subject)
    return "; ".join(
        rule + (f" {', '.join(s for s in subjects if s)}" if any(subjects) else "")
        for rule, subjects in by_rule.items()
    )


def digest_table(
    lines: list[DigestLine],
    names: dict[tuple[str, str], str],
    samples: dict[DigestLine, int],
    title: str | None = None,
) -> Table:
    """One row per school or unit: worst severity, where, responses, the lowest satisfaction
    rate, how many alerts, and what they are (dimensions below target and items with too
    many dissatisfied, by questionnaire, then its other alerts by rule)."""
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("sev", no_wrap=True)
    table.add_column("school or unit", width=20)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("low %", justify="right", no_wrap=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("below target; other alerts", ratio=3)
    for line in lines:
        key = (line.scope, line.scope_code)
        what = []
        if line.dimensions:
            what.append(_grouped(line.dimensions))
        if line.items:
            what.append("items " + _grouped(line.items))
        if line.others:
            what.append(_others(line))
        table.add_row(
            line.severity,
            Text(mask_personal(f"{line.scope_code} {names.get(key, '')}".strip())),
            str(samples.get(line, "")),
            f"{line.lowest_pct:.1f}" if line.lowest_pct is not None else "",
            str(line.n_alerts),
            Text(mask_personal("\n".join(what))),
            style=SEVERITY_STYLE.get(line.severity, ""),
        )
    return table


def digest_json(
    lines: list[DigestLine], names: dict[tuple[str, str], str], samples: dict[DigestLine, int]
) -> list[dict[str, Any]]:
    """The digest as JSON-ready dicts, one per school or unit, in the digest's order."""
    return [
        {
            "scope": line.scope,
            "scope_code": line.scope_code,
            "name": names.get((line.scope, line.scope_code)),
            "severity": line.severity,
            "n_alerts": line.n_alerts,
            "n_red": line.n_red,
            "n_responses": samples.get(line),
            "lowest_pct_satisfied": line.lowest_pct,
            "dimensions_below_target": [list(d) for d in line.dimensions],
            "items_dissatisfied": [list(i) for i in line.items],
            "other_alerts": [{"rule": r, "subject": mask_personal(s)} for r, s in line.others],
            "alert_ids": list(line.alert_ids),
        }
        for line in lines
    ]


def alert_json(alert: Alert) -> dict[str, Any]:
    """One alert as a JSON-ready dict (times as ISO 8601, campaign local time)."""
    out = dataclasses.asdict(alert)
    for key in ("first_seen_at", "last_seen_at"):
        out[key] = out[key].isoformat(timespec="seconds")
    for key in ("subject", "note", "scope_name"):
        out[key] = mask_personal(out[key]) if out[key] else out[key]
    return out


@alerts_app.command("list")
def list_command(
    config: ConfigOption = Path("khaosat.yaml"),
    status: Annotated[
        StatusChoice, typer.Option(help="Which statuses; 'active' is open and acknowledged.")
    ] = StatusChoice.active,
    severity: Annotated[SeverityChoice | None, typer.Option(help="Only this severity.")] = None,
    unit: Annotated[
        str | None,
        typer.Option(help="Only this reporting unit and its schools (any letter case)."),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every alert on its own line, with its id and note.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the campaign's alerts: one line per school or unit (the worst first, then the
    furthest below target), or with --all every alert with its suggested follow-up."""
    settings = read_config(config)
    engine = _engine(settings)
    try:
        if unit is not None:
            unit = _known_unit(unit, unit_codes(engine, settings.campaign.id), settings)
        found = list_alerts(
            engine,
            settings.campaign.id,
            statuses=_statuses(status),
            severity=severity.value if severity else None,
            unit=unit,
        )
        counts = response_counts(engine, settings.campaign.id) if found and not every else []
    finally:
        engine.dispose()
    if every:
        if as_json:
            typer.echo(json.dumps([alert_json(a) for a in found], ensure_ascii=False, indent=2))
        elif found:
            title = f"{settings.campaign.id}: {len(found)} alert(s)"
            console.print(alerts_table(found, settings.actions, title=title))
        else:
            console.print("No alerts match.")
        return
    _print_digest(settings, found, counts, as_json)


def _print_digest(
    settings: Settings, found: list[Alert], counts: list[dict[str, Any]], as_json: bool
) -> None:
    """The digest of ``found``: a table, or JSON."""
    questionnaires = {r["questionnaire"] for r in counts}
    target = Thresholds.from_mapping(settings.thresholds).pct_satisfied_amber
    lines = digest([dataclasses.asdict(a) for a in found], questionnaires, target)
    names = {(a.scope, a.scope_code): a.scope_name or "" for a in found}
    samples = {line: sample_size(line, counts) for line in lines}
    if as_json:
        typer.echo(json.dumps(digest_json(lines, names, samples), ensure_ascii=False, indent=2))
        return
    if not found:
        console.print("No alerts match.")
        return
    title = f"{settings.campaign.id}: {len(found)} alert(s) at {len(lines)} school(s) or unit(s)"
    console.print(digest_table(lines, names, samples, title=title))
    console.print(
        "n: valid responses; low %: lowest satisfaction rate. Every alert with its id: "
        "khaosat alerts list --all"
    )


def _fail(message: str, code: int) -> typer.Exit:
    """Print ``message`` as one error line (never wrapped) and give the Exit to raise."""
    print_error(message)
    return typer.Exit(code)


def _known_unit(unit: str, known: Sequence[str], settings: Settings) -> str:
    """The registered unit code ``unit`` names, in any letter case; exit 2 with the nearest
    codes when there is none."""
    by_upper = {code.upper(): code for code in known}
    if unit.upper() in by_upper:
        return by_upper[unit.upper()]
    campaign = settings.campaign.id
    if not known:
        raise _fail(
            f"unknown unit {unit}: campaign {campaign} has no units in the warehouse yet "
            f"(khaosat run --config {settings.config_path} registers them)",
            2,
        )
    close = difflib.get_close_matches(unit.upper(), list(by_upper), n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + " or ".join(by_upper[c] for c in close) + "?"
    else:
        shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
        hint = f"its units: {shown}"
    raise _fail(f"unknown unit {unit} in campaign {campaign}; {hint}", 2)


def nearest_ids(alert_id: int, known: Sequence[int], n: int = 3) -> list[int]:
    """The ``n`` ids of ``known`` nearest to ``alert_id``, in ascending order."""
    return sorted(sorted(known, key=lambda i: (abs(i - alert_id), i))[:n])


def _unknown_alert(exc: UnknownAlert) -> str:
    """One line for an id the campaign does not have: the nearest ones, or where to look."""
    if not exc.known:
        return f"{exc}: the campaign has no alerts yet"
    near = ", ".join(str(i) for i in nearest_ids(exc.alert_id, exc.known))
    return f"{exc}; nearest: {near} (all: khaosat alerts list --status all)"


def _change(config: Path, alert_id: int, note: str, by: str | None, action: str) -> None:
    settings = read_config(config)
    engine = _engine(settings)
    change = {"ack": acknowledge, "resolve": resolve, "note": add_note}[action]
    try:
        alert = change(engine, settings.campaign.id, alert_id, note, by=by)
    except UnknownAlert as exc:
        raise _fail(_unknown_alert(exc), 2) from None
    except AlertError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        engine.dispose()
    console.print(alerts_table([alert], settings.actions))


@alerts_app.command("ack")
def ack_command(
    alert_id: IdArgument,
    note: NoteOption,
    config: ConfigOption = Path("khaosat.yaml"),
    by: ByOption = None,
) -> None:
    """Acknowledge an alert: known and being handled. It stays acknowledged while its condition
    holds, opens again if it gets worse (amber to red), is resolved when it clears, and opens
    again if it returns. Acknowledging again adds to the history."""
    _change(config, alert_id, note, by, "ack")


@alerts_app.command("resolve")
def resolve_command(
    alert_id: IdArgument,
    note: NoteOption,
    config: ConfigOption = Path("khaosat.yaml"),
    by: ByOption = None,
) -> None:
    """Resolve an alert by hand: fixed. The next run reopens it if the condition still holds."""
    _change(config, alert_id, note, by, "resolve")


@alerts_app.command("note")
def note_command(
    alert_id: IdArgument,
    note: NoteOption,
    config: ConfigOption = Path("khaosat.yaml"),
    by: ByOption = None,
) -> None:
    """Add a note to an alert without changing its status (it becomes the alert's latest note;
    the history keeps every one)."""
    _change(config, alert_id, note, by, "note")


#: How ``show`` words each alert_event.action.
ACTION_LABELS = {
    "ack": "acknowledged",
    "resolve": "resolved",
    "note": "note",
    "reopen": "reopened: the condition holds again",
    "worsen": "open again: got worse",
    "clear": "resolved: the condition cleared",
}


def alert_card(alert: Alert, actions: dict[str, str]) -> Table:
    """One alert, one field a line: what, where, how far from its threshold, since when."""
    card = Table.grid(padding=(0, 2))
    card.add_column(style="bold", no_wrap=True)
    card.add_column(overflow="fold")
    where = alert.scope_code if not alert.scope_name else f"{alert.scope_code} {alert.scope_name}"
    rows = [
        ("alert", f"{alert.alert_id}: {rule_title(alert.rule)} ({alert.rule})"),
        ("severity", alert.severity),
        ("status", alert.status),
        ("scope", f"{alert.scope} {where}"),
        ("subject", alert.subject or "—"),
        (
            "value",
            f"{format_value(alert.rule, alert.value)} "
            f"(threshold {format_value(alert.rule, alert.threshold)})",
        ),
        ("first seen", f"{alert.first_seen_at:%Y-%m-%d %H:%M}"),
        ("last seen", f"{alert.last_seen_at:%Y-%m-%d %H:%M}"),
        ("follow-up", action_for(alert.rule, alert.subject, actions)),
        ("note", alert.note or "—"),
    ]
    for name, value in rows:
        card.add_row(name, value)
    return card


def history_table(events: list[AlertEvent]) -> Table:
    """An alert's history, oldest first: when, what, who, and the note."""
    table = Table(title="History", title_justify="left", header_style="bold")
    table.add_column("when", no_wrap=True)
    table.add_column("what")
    table.add_column("by")
    table.add_column("note", ratio=1)
    for e in events:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M}", ACTION_LABELS.get(e.action, e.action), e.actor, e.note or ""
        )
    return table


@alerts_app.command("show")
def show_command(alert_id: IdArgument, config: ConfigOption = Path("khaosat.yaml")) -> None:
    """Show one alert and its history: every acknowledgement, note and resolution (who, when,
    why) and what the nights changed, oldest first. Times are campaign local time."""
    settings = read_config(config)
    engine = _engine(settings)
    try:
        alert = get_alert(engine, settings.campaign.id, alert_id)
        events = alert_history(engine, settings.campaign.id, alert_id)
    except UnknownAlert as exc:
        raise _fail(_unknown_alert(exc), 2) from None
    finally:
        engine.dispose()
    console.print(alert_card(alert, settings.actions))
    if events:
        console.print(history_table(events))
    else:
        console.print(
            "No history yet: nobody has acknowledged, resolved or annotated it, and no night "
            "has reopened or cleared it since the history was kept."
        )
