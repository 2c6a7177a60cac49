"""The comment mart: mart_comment_theme and mart_comment_quote.

What parents and students wrote in "Ý kiến, đề xuất khác", counted by the codebook's themes per
scope and questionnaire, with up to three masked quotes per unit and province. Comments are the
tables' contract as of this revision, copied from warehouse/tables.py.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _scope_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("scope", sa.String(), nullable=False, comment="school | unit | province."),
        sa.Column(
            "scope_code",
            sa.String(),
            nullable=False,
            comment="school_code, unit_code, or the campaign's province_code.",
        ),
        sa.Column("questionnaire", sa.String(), nullable=False, comment="Questionnaire code."),
    ]


def upgrade() -> None:
    """Create the comment mart's tables."""
    op.create_table(
        "mart_comment_theme",
        *_scope_columns(),
        sa.Column(
            "theme",
            sa.String(),
            nullable=False,
            comment="Codebook theme code; 'khac': matches none.",
        ),
        sa.Column(
            "label",
            sa.Text(),
            nullable=False,
            comment="The theme in Vietnamese, as the codebook names it.",
        ),
        sa.Column(
            "dimension",
            sa.String(),
            nullable=True,
            comment="Dimension (tiêu chí) the theme belongs to; NULL for a cross-cutting theme.",
        ),
        sa.Column(
            "n_comments",
            sa.Integer(),
            nullable=False,
            comment="Respondents whose comment is about the theme.",
        ),
        sa.Column(
            "n_respondents",
            sa.Integer(),
            nullable=False,
            comment="Responses of the scope and questionnaire, whether they commented or not.",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "scope",
            "scope_code",
            "questionnaire",
            "theme",
            name="pk_mart_comment_theme",
        ),
        comment="One row per (campaign, scope, scope_code, questionnaire, theme) with at least one comment; a comment about several themes counts in each.",
    )
    quote_scope = _scope_columns()
    quote_scope[1].comment = "unit | province."
    quote_scope[2].comment = "unit_code or the campaign's province_code."
    op.create_table(
        "mart_comment_quote",
        *quote_scope,
        sa.Column("theme", sa.String(), nullable=False, comment="Codebook theme code, or 'khac'."),
        sa.Column(
            "rank", sa.Integer(), nullable=False, comment="1..3: the order to show the quotes in."
        ),
        sa.Column(
            "text",
            sa.Text(),
            nullable=False,
            comment="The comment, e-mails, phone numbers and names masked (flows.privacy), cut at about 300 characters; only from scopes and schools of 10 respondents or more.",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "scope",
            "scope_code",
            "questionnaire",
            "theme",
            "rank",
            name="pk_mart_comment_quote",
        ),
        comment="One row per quote shown for a (campaign, scope, scope_code, questionnaire, theme): up to three, chosen for length and variety.",
    )


def downgrade() -> None:
    """Drop the comment mart's tables."""
    op.drop_table("mart_comment_quote")
    op.drop_table("mart_comment_theme")
