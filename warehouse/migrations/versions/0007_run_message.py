"""run.message: why a run ended as 'error' or 'interrupted'.

A run the machine stopped (disk full, warehouse read-only or unreachable, output folder
unwritable, a worker process killed) or a signal interrupted records the one line the data
officer reads in ``khaosat status``; the run's status says which. Comments are the table's
contract as of this revision, copied from warehouse/tables.py.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_COMMENT = "running | succeeded | partial (some sources failed) | failed (aborted) | error (the machine stopped it: see message) | interrupted (SIGINT or SIGTERM)."
OLD_STATUS_COMMENT = "running | succeeded | partial (some sources failed) | failed (aborted)."


def upgrade() -> None:
    """Add run.message."""
    with op.batch_alter_table("run") as batch:
        batch.add_column(
            sa.Column(
                "message",
                sa.Text(),
                nullable=True,
                comment="Why the run ended as error or interrupted, in one line; NULL otherwise.",
            )
        )
        batch.alter_column(
            "status",
            existing_type=sa.String(),
            existing_nullable=False,
            comment=STATUS_COMMENT,
            existing_comment=OLD_STATUS_COMMENT,
        )


def downgrade() -> None:
    """Drop run.message."""
    with op.batch_alter_table("run") as batch:
        batch.drop_column("message")
        batch.alter_column(
            "status",
            existing_type=sa.String(),
            existing_nullable=False,
            comment=OLD_STATUS_COMMENT,
            existing_comment=STATUS_COMMENT,
        )
