"""Alert history: one alert_event row per acknowledgement, note, resolution and night's change.

Until now an alert kept only its latest note (alerts.note), overwritten by each acknowledgement
or resolution, without who or when. alert_event keeps each of them, and the changes a night
makes (reopen, worsen, clear). Existing alerts get no invented history: their latest note stays
on the alert. Comments are the tables' contract as of this revision, copied from
warehouse/tables.py.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOTE_BEFORE = "Officer's note when acknowledging or resolving."
_NOTE_NOW = "The officer's latest note (acknowledging, resolving or noting); every note is kept in alert_event."


def _note_comment(comment: str, existing: str) -> None:
    # SQLite keeps no comments; PostgreSQL holds the contract as COMMENT ON.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "alerts",
            "note",
            existing_type=sa.Text(),
            existing_nullable=True,
            comment=comment,
            existing_comment=existing,
        )


def upgrade() -> None:
    op.create_table(
        "alert_event",
        sa.Column(
            "event_id",
            sa.Integer(),
            autoincrement=True,
            nullable=False,
            comment="Surrogate key; orders events of the same time.",
        ),
        sa.Column("alert_id", sa.Integer(), nullable=False, comment="Alert the event happened to."),
        sa.Column(
            "at",
            sa.DateTime(),
            nullable=False,
            comment="When, campaign local time (as every stored time of the campaign).",
        ),
        sa.Column(
            "action",
            sa.String(),
            nullable=False,
            comment="ack | resolve | note (an officer's) | reopen | worsen | clear (a night's).",
        ),
        sa.Column(
            "actor",
            sa.String(),
            nullable=False,
            comment="[PII] Who: the officer's --by name or operating-system user; 'khaosat' for a night's run.",
        ),
        sa.Column(
            "note",
            sa.Text(),
            nullable=True,
            comment="The officer's note; for a night's event, what changed.",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.alert_id"], name=op.f("fk_alert_event_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_alert_event")),
        comment="One row per change of an alert by an officer or a night, never updated or deleted: the alert's history. Alerts changed before this table existed have only their latest note (alerts.note).",
    )
    op.create_index(
        op.f("ix_alert_event_alert_id_at"), "alert_event", ["alert_id", "at"], unique=False
    )
    _note_comment(_NOTE_NOW, _NOTE_BEFORE)


def downgrade() -> None:
    _note_comment(_NOTE_BEFORE, _NOTE_NOW)
    op.drop_index(op.f("ix_alert_event_alert_id_at"), table_name="alert_event")
    op.drop_table("alert_event")
