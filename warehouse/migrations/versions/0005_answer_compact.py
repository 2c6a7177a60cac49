"""A compact answer table; each question's sheet column in answer_column.

answer loses campaign_id (source_id is unique across campaigns), cell (the row is the
response's row_number, the column the same for every answer to a question) and its foreign key
to response, and becomes WITHOUT ROWID on SQLite: loading a source's answers costs about half.
answer_column keeps, per source and question, the column letters its answers were read from,
so every cell address stays findable. Existing rows are copied; their columns come from their
cells (the header found in the sheet was never stored, so it is NULL). Downgrade rebuilds the
old table, cell = column letters || row_number. Comments are the tables' contract as of this
revision, copied from warehouse/tables.py.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VALUE_COMMENT = "Normalised value: likert 1–5, yesno 1/0, level 10/7/5/3/0, percent 0–100; NULL when the raw text could not be read (the raw text is in quarantine)."
#: The statements renaming the primary key of the answer table once it is renamed (below).
_RENAME_PK = {
    "answer_old": "ALTER TABLE answer_old RENAME CONSTRAINT pk_answer TO pk_answer_old",
    "answer_compact": "ALTER TABLE answer_compact RENAME CONSTRAINT pk_answer TO pk_answer_compact",
}


def _rename_answer(new_name: str) -> None:
    """Rename the answer table out of the way of the one that replaces it.

    PostgreSQL names the primary key's index like a table, in the schema, so it is renamed too:
    the replacement's own pk_answer would clash with it otherwise. SQLite has no such names.
    """
    op.rename_table("answer", new_name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_RENAME_PK[new_name])


def upgrade() -> None:
    bind = op.get_bind()
    old = sa.table(
        "answer_old",
        sa.column("source_id", sa.Integer()),
        sa.column("response_no", sa.Integer()),
        sa.column("question_code", sa.String()),
        sa.column("value", sa.Float()),
        sa.column("cell", sa.String()),
    )
    _rename_answer("answer_old")
    # A cell's column is its letters: the cell without its row digits. The digits are a literal,
    # not a parameter, so that PostgreSQL sees the same expression in SELECT and GROUP BY.
    letters = sa.func.rtrim(old.c.cell, sa.literal_column("'0123456789'"))
    pairs = (
        sa.select(old.c.source_id, old.c.question_code, letters.label("column_letter"))
        .group_by(old.c.source_id, old.c.question_code, letters)
        .subquery()
    )
    several = bind.execute(
        sa.select(pairs.c.source_id, pairs.c.question_code, sa.func.count())
        .group_by(pairs.c.source_id, pairs.c.question_code)
        .having(sa.func.count() > 1)
        .order_by(pairs.c.source_id, pairs.c.question_code)
        .limit(10)
    ).all()
    if several:
        # One column per (source, question) is all answer_column can hold; keeping one would
        # point the other answers at the wrong cell. The load never wrote such rows (parse
        # reads one column per question); reloading these sources fixes them.
        listed = ", ".join(f"source {s} question {q} ({n} columns)" for s, q, n in several)
        raise RuntimeError(
            f"cannot migrate answer: answers to one question of a source were read from more "
            f"than one column: {listed}. Reload those sources (or delete their answer rows) "
            "with the previous khaosat version, then run again."
        )

    op.create_table(
        "answer",
        sa.Column(
            "source_id",
            sa.Integer(),
            nullable=False,
            comment="Source (source.source_id, unique across campaigns; the source row names the campaign).",
        ),
        sa.Column(
            "response_no",
            sa.Integer(),
            nullable=False,
            comment="Response within the source (response.response_no).",
        ),
        sa.Column(
            "question_code",
            sa.String(),
            nullable=False,
            comment="Item answered (question.question_code).",
        ),
        sa.Column("value", sa.Float(), nullable=True, comment=_VALUE_COMMENT),
        sa.PrimaryKeyConstraint(
            "source_id", "response_no", "question_code", name=op.f("pk_answer")
        ),
        sqlite_with_rowid=False,
        comment="One row per non-empty scored cell: (source, response, question). An empty cell has no row. The cell a value was read from is answer_column.column_letter (same source_id and question_code) followed by response.row_number (same source_id and response_no), e.g. D12.",
    )
    op.create_table(
        "answer_column",
        sa.Column("source_id", sa.Integer(), nullable=False, comment="Source."),
        sa.Column(
            "question_code",
            sa.String(),
            nullable=False,
            comment="Item answered in the source.",
        ),
        sa.Column(
            "column_letter",
            sa.String(),
            nullable=False,
            comment="Sheet column letters the item's answers were read from, e.g. D.",
        ),
        sa.Column(
            "header",
            sa.Text(),
            nullable=True,
            comment="Header text of that column as found in the sheet; NULL for answers loaded before this table existed.",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.source_id"], name=op.f("fk_answer_column_source_id_source")
        ),
        sa.PrimaryKeyConstraint("source_id", "question_code", name=op.f("pk_answer_column")),
        comment="One row per (source, question) with at least one answer: the sheet column its answers were read from; written and replaced with the source's answers.",
    )
    new = sa.table(
        "answer",
        sa.column("source_id"),
        sa.column("response_no"),
        sa.column("question_code"),
        sa.column("value"),
    )
    bind.execute(
        new.insert().from_select(
            ["source_id", "response_no", "question_code", "value"],
            sa.select(old.c.source_id, old.c.response_no, old.c.question_code, old.c.value),
        )
    )
    columns = sa.table(
        "answer_column",
        sa.column("source_id"),
        sa.column("question_code"),
        sa.column("column_letter"),
    )
    bind.execute(
        columns.insert().from_select(
            ["source_id", "question_code", "column_letter"],
            sa.select(pairs.c.source_id, pairs.c.question_code, pairs.c.column_letter),
        )
    )
    op.drop_table("answer_old")


def downgrade() -> None:
    bind = op.get_bind()
    _rename_answer("answer_compact")
    op.create_table(
        "answer",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("source_id", sa.Integer(), nullable=False, comment="Source."),
        sa.Column(
            "response_no", sa.Integer(), nullable=False, comment="Response within the source."
        ),
        sa.Column(
            "question_code",
            sa.String(),
            nullable=False,
            comment="Item answered (question.question_code).",
        ),
        sa.Column("value", sa.Float(), nullable=True, comment=_VALUE_COMMENT),
        sa.Column(
            "cell",
            sa.String(),
            nullable=False,
            comment="Sheet cell address the value was read from, e.g. D12.",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id", "source_id", "response_no"],
            ["response.campaign_id", "response.source_id", "response.response_no"],
            name=op.f("fk_answer_campaign_id_source_id_response_no_response"),
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "source_id", "response_no", "question_code", name=op.f("pk_answer")
        ),
        comment="One row per non-empty scored cell: (source, response, question). An empty cell has no row.",
    )
    a = sa.table(
        "answer_compact",
        sa.column("source_id"),
        sa.column("response_no"),
        sa.column("question_code"),
        sa.column("value"),
    )
    ac = sa.table(
        "answer_column",
        sa.column("source_id"),
        sa.column("question_code"),
        sa.column("column_letter", sa.String()),
    )
    s = sa.table("source", sa.column("source_id"), sa.column("campaign_id"))
    r = sa.table(
        "response",
        sa.column("campaign_id"),
        sa.column("source_id"),
        sa.column("response_no"),
        sa.column("row_number", sa.Integer()),
    )
    old = sa.table(
        "answer",
        *(
            sa.column(c)
            for c in ("campaign_id", "source_id", "response_no", "question_code", "value", "cell")
        ),
    )
    # Outer joins: an answer missing its source, response or column gets a NULL campaign_id or
    # cell, which the NOT NULL columns refuse, so the downgrade fails rather than drop it.
    cell = ac.c.column_letter + sa.cast(r.c.row_number, sa.String())
    bind.execute(
        old.insert().from_select(
            ["campaign_id", "source_id", "response_no", "question_code", "value", "cell"],
            sa.select(
                s.c.campaign_id, a.c.source_id, a.c.response_no, a.c.question_code, a.c.value, cell
            )
            .select_from(a)
            .outerjoin(s, s.c.source_id == a.c.source_id)
            .outerjoin(
                r,
                sa.and_(
                    r.c.campaign_id == s.c.campaign_id,
                    r.c.source_id == a.c.source_id,
                    r.c.response_no == a.c.response_no,
                ),
            )
            .outerjoin(
                ac,
                sa.and_(ac.c.source_id == a.c.source_id, ac.c.question_code == a.c.question_code),
            ),
        )
    )
    op.drop_table("answer_compact")
    op.drop_table("answer_column")
