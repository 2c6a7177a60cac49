"""Folder sources: source.found_in, and superseded_file.

A sources.csv row ``*,QUESTIONNAIRE,folder|drive,LOCATION`` discovers one source per file it
places with a school: ``source.found_in`` says which row found it (NULL for a source listed on
its own row, as every source before this revision). ``superseded_file`` holds the files not
used because their school has a newer one for the questionnaire, as the latest run found
them. Comments are the tables' contract as of this revision, copied from warehouse/tables.py.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add source.found_in and the superseded_file table."""
    with op.batch_alter_table("source") as batch:
        batch.add_column(
            sa.Column(
                "found_in",
                sa.Text(),
                nullable=True,
                comment="The location of the folder or drive row of sources.csv the source was discovered in; NULL for a source listed on a row of its own.",
            )
        )
    op.create_table(
        "superseded_file",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "school_code", sa.String(), nullable=False, comment="School the file's name names."
        ),
        sa.Column(
            "questionnaire", sa.String(), nullable=False, comment="Questionnaire of the folder row."
        ),
        sa.Column(
            "location",
            sa.Text(),
            nullable=False,
            comment="The file not used (path or Drive file id).",
        ),
        sa.Column(
            "found_in",
            sa.Text(),
            nullable=False,
            comment="Location of the folder or drive row the file is in.",
        ),
        sa.Column(
            "used_location", sa.Text(), nullable=False, comment="The newer file used instead."
        ),
        sa.Column(
            "message",
            sa.Text(),
            nullable=False,
            comment="The line the school and the officer read, in Vietnamese.",
        ),
        sa.Column(
            "run_id", sa.String(), nullable=False, comment="The run that last listed the folder."
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.campaign_id"],
            name=op.f("fk_superseded_file_campaign_id_campaign"),
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "school_code",
            "questionnaire",
            "location",
            name=op.f("pk_superseded_file"),
        ),
        comment="One row per file of a folder source that is not used because the same school has a newer file for the questionnaire, as the latest run found the folders; replaced whole by each run.",
    )


def downgrade() -> None:
    """Drop superseded_file and source.found_in."""
    op.drop_table("superseded_file")
    # Not a batch: SQLite would copy ``source`` and drop the old one, which the answers and
    # responses that reference it forbid; it drops a plain column in place (SQLite 3.35+).
    op.drop_column("source", "found_in")
