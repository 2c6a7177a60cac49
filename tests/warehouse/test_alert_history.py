"""Alert history (alert_event) on SQLite and PostgreSQL.

Alerts are raised by ``sync_alerts`` from hand-made candidates, as the nightly evaluation raises
them, and changed by the officer's functions ``khaosat alerts`` calls. Each acknowledgement,
note and resolution is a row with who and when; so is each change a night makes. A warehouse
left at revision 0005 (before the history existed) is upgraded and keeps working.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine

from schemas.records import School
from tests.factories import SAT, make_campaign
from warehouse import tables as t
from warehouse.alert_actions import acknowledge, add_note, alert_history, resolve
from warehouse.alerts import (
    NIGHT,
    AlertCandidate,
    AlertError,
    UnknownAlert,
    get_alert,
    list_alerts,
    sync_alerts,
)
from warehouse.db import alembic_config, connect, has_table, migrate
from warehouse.registry import sync_registry

C = "HCM-2024"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SCHOOLS = [
    School(code="S1", name="Trường Tiểu học An Phú", level="TH", unit_code="XP01", unit_name="P1"),
    School(
        code="S2", name="Trường Tiểu học Bình Minh", level="TH", unit_code="XP02", unit_name="P2"
    ),
]
LOW = AlertCandidate("pct_satisfied_low", "amber", "school", "S1", "SAT/CSVC", 80.0, 85.0)
LOWER = AlertCandidate("pct_satisfied_low", "red", "school", "S1", "SAT/CSVC", 60.0, 70.0)
MISSING = AlertCandidate("submission_missing", "amber", "school", "S2", "SAT", 0.0)


def _local_now() -> dt.datetime:
    return dt.datetime.now(ZONE).replace(tzinfo=None)


def _events(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.alert_event)).scalar_one())


def _id(engine: Engine, candidate: AlertCandidate) -> int:
    for alert in list_alerts(engine, C):
        if (alert.rule, alert.scope, alert.scope_code, alert.subject) == candidate.key:
            return alert.alert_id
    raise AssertionError(f"no alert {candidate.key}")


@pytest.fixture
def raised(engine: Engine) -> Engine:
    """A campaign with two open alerts (LOW on S1, MISSING on S2)."""
    sync_registry(engine, make_campaign(), SCHOOLS, {"SAT": SAT})
    sync_alerts(engine, C, [LOW, MISSING])
    return engine


def test_acknowledging_twice_keeps_both_with_who_and_when(raised: Engine) -> None:
    alert_id = _id(raised, LOW)
    before = _local_now()
    acknowledge(raised, C, alert_id, "Đã gọi hiệu trưởng", by="lan")
    acked = acknowledge(raised, C, alert_id, "Trường hẹn sửa trong tuần", by="minh")
    after = _local_now()

    assert (acked.status, acked.note) == ("acknowledged", "Trường hẹn sửa trong tuần")
    history = alert_history(raised, C, alert_id)
    assert [(e.action, e.actor, e.note) for e in history] == [
        ("ack", "lan", "Đã gọi hiệu trưởng"),
        ("ack", "minh", "Trường hẹn sửa trong tuần"),
    ]
    for event in history:  # naive campaign local time, like every stored time
        assert event.at.tzinfo is None
        assert before - dt.timedelta(seconds=1) <= event.at <= after + dt.timedelta(seconds=1)
    assert alert_history(raised, C, _id(raised, MISSING)) == []  # nothing happened to it


def test_without_by_the_operating_system_user_is_kept(raised: Engine) -> None:
    alert_id = _id(raised, MISSING)
    resolve(raised, C, alert_id, "Trường đã nộp bản giấy")
    (event,) = alert_history(raised, C, alert_id)
    assert (event.action, event.actor) == ("resolve", getpass.getuser())


def test_a_note_changes_no_status_and_becomes_the_latest(raised: Engine) -> None:
    alert_id = _id(raised, LOW)
    noted = add_note(raised, C, alert_id, "Chờ số liệu đợt 2", by="lan")
    assert (noted.status, noted.note) == ("open", "Chờ số liệu đợt 2")
    resolve(raised, C, alert_id, "Đã sửa", by="lan")
    noted = add_note(raised, C, alert_id, "Kiểm tra lại tháng sau", by="minh")
    assert (noted.status, noted.note) == ("resolved", "Kiểm tra lại tháng sau")
    assert [(e.action, e.note) for e in alert_history(raised, C, alert_id)] == [
        ("note", "Chờ số liệu đợt 2"),
        ("resolve", "Đã sửa"),
        ("note", "Kiểm tra lại tháng sau"),
    ]


def test_what_the_nights_change_is_history_too(raised: Engine) -> None:
    alert_id = _id(raised, LOW)
    acknowledge(raised, C, alert_id, "Đang xử lý", by="lan")
    sync_alerts(raised, C, [LOW, MISSING])  # holds as acknowledged: no event
    sync_alerts(raised, C, [LOWER, MISSING])  # worse: open again
    resolve(raised, C, alert_id, "Đã sửa phòng học", by="lan")
    sync_alerts(raised, C, [LOWER, MISSING])  # still holds: reopened
    sync_alerts(raised, C, [MISSING])  # cleared

    history = alert_history(raised, C, alert_id)
    assert [(e.action, e.actor, e.note) for e in history] == [
        ("ack", "lan", "Đang xử lý"),
        ("worsen", NIGHT, "amber → red"),
        ("resolve", "lan", "Đã sửa phòng học"),
        ("reopen", NIGHT, None),
        ("clear", NIGHT, None),
    ]
    assert [e.at for e in history] == sorted(e.at for e in history)
    alert = get_alert(raised, C, alert_id)
    assert (alert.status, alert.note) == ("resolved", "Đã sửa phòng học")


def test_a_night_stamps_its_events_with_its_own_time(raised: Engine) -> None:
    night = dt.datetime(2024, 11, 6, 1, 30)
    sync_alerts(raised, C, [LOW], now=night)  # MISSING cleared
    (event,) = alert_history(raised, C, _id(raised, MISSING))
    assert (event.action, event.at) == ("clear", night)


def test_unknown_and_foreign_ids_name_the_campaigns_ids(raised: Engine) -> None:
    known = sorted(a.alert_id for a in list_alerts(raised, C))
    for call in (
        lambda: get_alert(raised, C, 999999),
        lambda: alert_history(raised, C, 999999),
        lambda: acknowledge(raised, C, 999999, "x", by="lan"),
        lambda: add_note(raised, C, 999999, "x", by="lan"),
    ):
        with pytest.raises(UnknownAlert, match=f"no alert 999999 in campaign {C}") as caught:
            call()
        assert caught.value.known == known and caught.value.alert_id == 999999
    with pytest.raises(UnknownAlert) as foreign:
        resolve(raised, "HCM-2023", known[0], "x", by="lan")
    assert foreign.value.known == []
    assert _events(raised) == 0  # nothing was recorded for a refused change


def test_a_refused_change_records_nothing(raised: Engine) -> None:
    alert_id = _id(raised, LOW)
    resolve(raised, C, alert_id, "Đã sửa", by="lan")
    with pytest.raises(AlertError, match="is resolved"):
        acknowledge(raised, C, alert_id, "muộn", by="lan")
    assert [e.action for e in alert_history(raised, C, alert_id)] == ["resolve"]


# -- a warehouse from before the history --------------------------------------------------------


@pytest.fixture
def old_warehouse(warehouse_url: str) -> Iterator[Engine]:
    """A warehouse at revision 0005 whose S1 alert was acknowledged the old way (its note on the
    alert row, nothing else), on each backend."""
    engine = connect(warehouse_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0005")
    sync_registry(engine, make_campaign(), SCHOOLS, {"SAT": SAT})
    seen = dt.datetime(2024, 11, 5, 1, 30)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(t.alerts),
            [
                {
                    "campaign_id": C,
                    "rule": LOW.rule,
                    "severity": LOW.severity,
                    "scope": LOW.scope,
                    "scope_code": LOW.scope_code,
                    "subject": LOW.subject,
                    "value": LOW.value,
                    "threshold": LOW.threshold,
                    "status": "acknowledged",
                    "first_seen_at": seen,
                    "last_seen_at": seen,
                    "note": "Ghi nhận trước khi có lịch sử",
                }
            ],
        )
    try:
        yield engine
    finally:
        engine.dispose()


def test_an_older_warehouse_is_upgraded_and_keeps_its_alerts(old_warehouse: Engine) -> None:
    assert not has_table(old_warehouse, "alert_event")
    migrate(old_warehouse)
    assert has_table(old_warehouse, "alert_event")

    alert_id = _id(old_warehouse, LOW)
    alert = get_alert(old_warehouse, C, alert_id)
    assert (alert.status, alert.note) == ("acknowledged", "Ghi nhận trước khi có lịch sử")
    assert alert_history(old_warehouse, C, alert_id) == []  # no invented history

    acknowledge(old_warehouse, C, alert_id, "Ghi nhận lại", by="lan")
    sync_alerts(old_warehouse, C, [LOW])  # a night on the upgraded warehouse
    assert [(e.action, e.actor) for e in alert_history(old_warehouse, C, alert_id)] == [
        ("ack", "lan")
    ]


def test_downgrade_drops_only_the_history(old_warehouse: Engine) -> None:
    migrate(old_warehouse)
    acknowledge(old_warehouse, C, _id(old_warehouse, LOW), "Ghi nhận lại", by="lan")
    with old_warehouse.begin() as conn:
        command.downgrade(alembic_config(conn), "0005")
    assert not has_table(old_warehouse, "alert_event")
    with old_warehouse.connect() as conn:
        notes = conn.execute(sa.select(t.alerts.c.note)).scalars().all()
    assert notes == ["Ghi nhận lại"]
