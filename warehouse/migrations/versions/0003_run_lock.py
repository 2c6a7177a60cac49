"""Run lock: one run per campaign at a time (warehouse.lock).

A row is inserted in its own committed transaction when a run starts (a unique violation on
campaign_id means another run holds it) and deleted when the run ends; the holder refreshes
heartbeat_at while it runs, so a row left by a killed run can be recognised and taken over.
Comments are the table's contract as of this revision, copied from warehouse/tables.py.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_lock",
        sa.Column(
            "campaign_id",
            sa.String(),
            nullable=False,
            comment="Campaign being consolidated (not a foreign key: a first run takes the lock before it registers the campaign).",
        ),
        sa.Column(
            "run_id", sa.String(), nullable=False, comment="Run holding the lock (run.run_id)."
        ),
        sa.Column(
            "holder",
            sa.String(),
            nullable=False,
            comment="host:pid of the process holding the lock.",
        ),
        sa.Column(
            "acquired_at",
            sa.DateTime(),
            nullable=False,
            comment="When the holder took the lock, campaign local time.",
        ),
        sa.Column(
            "heartbeat_at",
            sa.DateTime(),
            nullable=False,
            comment="Last sign of life of the holder, campaign local time; a lock without one for longer than the stale timeout is taken over.",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_run_lock")),
        comment="One row per campaign with a run in progress: inserted when the run starts, deleted when it ends; a row left behind by a killed run is taken over by the next one.",
    )


def downgrade() -> None:
    op.drop_table("run_lock")
