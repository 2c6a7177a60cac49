"""Per-source figures: the sums the marts are rebuilt from (warehouse.figures).

Sources loaded before this revision have no figures yet; ``warehouse.marts`` computes them from
their answers the first time it rebuilds (``ensure_figures``), so nothing needs copying here.
Comments are the tables' contract as of this revision, copied from warehouse/tables.py.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _source_key(table: str) -> list[Any]:
    return [
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("source_id", sa.Integer(), nullable=False, comment="Source."),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["source.source_id"],
            name=op.f(f"fk_{table}_source_id_source"),
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "figure_source",
        *_source_key("figure_source"),
        sa.Column(
            "n_valid_responses",
            sa.Integer(),
            nullable=False,
            comment="Responses with at least one valid answer.",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "source_id", name=op.f("pk_figure_source")),
        comment="One row per loaded source: its figures are current (a source loaded before this table existed has none until they are computed from its answers).",
    )
    op.create_table(
        "figure_source_dimension",
        *_source_key("figure_source_dimension"),
        sa.Column(
            "dimension", sa.String(), nullable=False, comment="Dimension code, CHUNG or MONG_DOI."
        ),
        sa.Column(
            "n_respondents",
            sa.Integer(),
            nullable=False,
            comment="Responses with a valid answer in the dimension.",
        ),
        sa.Column(
            "n_answers",
            sa.Integer(),
            nullable=False,
            comment="Valid answers to the dimension's items.",
        ),
        sa.Column("total", sa.Float(), nullable=False, comment="Sum of those answers' values."),
        sa.Column(
            "n_satisfied",
            sa.Integer(),
            nullable=True,
            comment="Answers of 4 or 5; NULL for MONG_DOI.",
        ),
        sa.Column(
            "n_dissatisfied",
            sa.Integer(),
            nullable=True,
            comment="Answers of 1 or 2; NULL for MONG_DOI.",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "source_id", "dimension", name=op.f("pk_figure_source_dimension")
        ),
        comment="One row per (source, dimension) with a valid answer: the sums behind the dimension marts.",
    )
    op.create_table(
        "figure_source_question",
        *_source_key("figure_source_question"),
        sa.Column(
            "question_code",
            sa.String(),
            nullable=False,
            comment="Item (likert, yesno or level kind).",
        ),
        sa.Column(
            "service",
            sa.Text(),
            nullable=False,
            comment="Service named by the responses (service reviews); empty otherwise.",
        ),
        sa.Column("n_answers", sa.Integer(), nullable=False, comment="Valid answers."),
        *(
            sa.Column(f"n_{k}", sa.Integer(), nullable=False, comment=f"Answers equal to {k}.")
            for k in range(1, 6)
        ),
        sa.Column("total", sa.Float(), nullable=False, comment="Sum of the valid answers' values."),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "source_id",
            "question_code",
            "service",
            name=op.f("pk_figure_source_question"),
        ),
        comment="One row per (source, question, service) with a valid answer: the sums behind the question, PAPI and service marts.",
    )


def downgrade() -> None:
    for table in ("figure_source_question", "figure_source_dimension", "figure_source"):
        op.drop_table(table)
