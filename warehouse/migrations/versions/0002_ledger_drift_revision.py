"""Template drift and Drive revision per load.

load_ledger.renamed_questions keeps which questions a sheet headed with other words, so drift
is kept per load; load_ledger.revision keeps a Google Sheet's Drive version, so an unchanged
sheet is skipped without reading its values.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("load_ledger") as batch:
        batch.add_column(
            sa.Column(
                "renamed_questions",
                sa.Text(),
                nullable=False,
                server_default="{}",
                comment="JSON object: item code -> the header the sheet uses instead of the "
                "form's wording.",
            )
        )
        batch.add_column(
            sa.Column(
                "revision",
                sa.String(),
                nullable=True,
                comment="Drive version of a gsheet source when fetched; NULL for files.",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("load_ledger") as batch:
        batch.drop_column("revision")
        batch.drop_column("renamed_questions")
