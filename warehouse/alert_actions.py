"""The officer's side of alerts: acknowledge, resolve or annotate one, and read its history.

Each change is one transaction: the alert's status and latest note, and one ``alert_event`` row
saying who (``by``: a name the officer gives, or the operating-system user) did what, when
(campaign local time) and why. ``alert_history`` reads those rows, with the changes the nights
made (``warehouse.alerts.sync_alerts`` writes them), oldest first.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from warehouse import tables as t
from warehouse.alerts import (
    ACTIVE_STATUSES,
    STATUSES,
    Alert,
    AlertError,
    UnknownAlert,
    alert_ids,
    event_row,
    get_alert,
    record_events,
)
from warehouse.db import local_now


@dataclass(frozen=True)
class AlertEvent:
    """One row of ``alert_event``: who did what to an alert, when (campaign local time)."""

    at: dt.datetime
    action: str
    actor: str
    note: str | None


def unit_codes(engine: Engine, campaign_id: str) -> list[str]:
    """The reporting units registered in the campaign, by code."""
    un = t.unit
    stmt = sa.select(un.c.unit_code).where(un.c.campaign_id == campaign_id).order_by(un.c.unit_code)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def alert_history(engine: Engine, campaign_id: str, alert_id: int) -> list[AlertEvent]:
    """The alert's events in the order they happened; UnknownAlert if the campaign has no such
    alert. Empty for an alert nobody and no night has changed since history was kept."""
    get_alert(engine, campaign_id, alert_id)
    ev = t.alert_event
    stmt = sa.select(ev).where(ev.c.alert_id == alert_id).order_by(ev.c.at, ev.c.event_id)
    with engine.connect() as conn:
        return [AlertEvent(r.at, r.action, r.actor, r.note) for r in conn.execute(stmt)]


def os_user() -> str:
    """Who is at the keyboard, as the operating system knows them ('unknown' if it does not)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        return "unknown"


def _change(
    engine: Engine,
    campaign_id: str,
    alert_id: int,
    action: str,
    note: str,
    by: str | None,
    *,
    status: str | None = None,
    allowed: Sequence[str] = STATUSES,
) -> Alert:
    """Record an officer's ``action`` as an alert_event and on the alert (its note, and its new
    ``status`` if given), in one transaction."""
    al = t.alerts
    with engine.begin() as conn:
        current = conn.execute(
            sa.select(al.c.status).where(al.c.alert_id == alert_id, al.c.campaign_id == campaign_id)
        ).scalar()
        if current in allowed:
            values: dict[str, Any] = {"note": note}
            if status is not None:
                values["status"] = status
            conn.execute(sa.update(al).where(al.c.alert_id == alert_id).values(**values))
            when = local_now(conn, campaign_id)
            record_events(conn, [event_row(alert_id, when, action, by or os_user(), note)])
    # Raised once the transaction is over: the message reads the campaign's ids.
    if current is None:
        raise UnknownAlert(campaign_id, alert_id, alert_ids(engine, campaign_id))
    if current not in allowed:
        raise AlertError(f"alert {alert_id} is {current}: it cannot become {status}")
    return get_alert(engine, campaign_id, alert_id)


def acknowledge(
    engine: Engine, campaign_id: str, alert_id: int, note: str, *, by: str | None = None
) -> Alert:
    """Mark an open (or already acknowledged) alert acknowledged, with the officer's note.

    It stays acknowledged across evaluations while its condition holds at the same severity or
    a milder one; it opens again if it gets worse (amber to red). If the condition clears it is
    resolved, and if it then returns it opens again. A resolved alert cannot be
    acknowledged (AlertError): there is nothing left to acknowledge. ``by``: who (default the
    operating-system user); the acknowledgement is an ``ack`` row of the alert's history.
    """
    return _change(
        engine,
        campaign_id,
        alert_id,
        "ack",
        note,
        by,
        status="acknowledged",
        allowed=ACTIVE_STATUSES,
    )


def resolve(
    engine: Engine, campaign_id: str, alert_id: int, note: str, *, by: str | None = None
) -> Alert:
    """Mark an alert resolved by hand, with the officer's note (a ``resolve`` row of its history).

    If its condition still holds at the next evaluation, the alert is reopened: resolving says
    "fixed", and the next night checks it. To keep a known condition quiet, acknowledge it.
    """
    return _change(engine, campaign_id, alert_id, "resolve", note, by, status="resolved")


def add_note(
    engine: Engine, campaign_id: str, alert_id: int, note: str, *, by: str | None = None
) -> Alert:
    """Add a note to an alert in any status without changing it (a ``note`` row of its
    history); the note becomes the alert's latest."""
    return _change(engine, campaign_id, alert_id, "note", note, by)
