"""Initial warehouse schema: dimensions, facts, quarantine, ledger, marts and alerts.

Written out table by table (not metadata.create_all) so that this revision stays what it was
when later revisions build on it. Comments are the tables' contracts as of this revision,
copied from warehouse/tables.py.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

# ruff: noqa: E501  (contract comments are kept verbatim, one string each)

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column(
            "campaign_id",
            sa.String(),
            nullable=False,
            comment="Campaign id from khaosat.yaml (campaign.id).",
        ),
        sa.Column(
            "name", sa.Text(), nullable=False, comment="Campaign name as configured (Vietnamese)."
        ),
        sa.Column(
            "school_year", sa.String(), nullable=False, comment="School year, e.g. '2024-2025'."
        ),
        sa.Column("opens", sa.Date(), nullable=False, comment="First day responses are accepted."),
        sa.Column("closes", sa.Date(), nullable=False, comment="Last day responses are accepted."),
        sa.Column(
            "deadline",
            sa.Date(),
            nullable=False,
            comment="Submission deadline; a submission after the end of this day is late.",
        ),
        sa.Column(
            "previous_id",
            sa.String(),
            nullable=True,
            comment="campaign_id of the previous round for year-on-year figures; NULL if none. Not a foreign key: the previous round may not be in this warehouse.",
        ),
        sa.Column(
            "province_code",
            sa.String(),
            nullable=False,
            comment="Province code; scope_code of province-level figures.",
        ),
        sa.Column(
            "timezone",
            sa.String(),
            nullable=False,
            comment="IANA time zone in which every naive datetime of this campaign is expressed.",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaign")),
        comment="One row per campaign (one survey round of one province). Replaced by sync_registry.",
    )
    op.create_table(
        "mart_completeness",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("school_code", sa.String(), nullable=False, comment="School."),
        sa.Column("questionnaire", sa.String(), nullable=False, comment="Questionnaire code."),
        sa.Column(
            "status",
            sa.String(),
            nullable=False,
            comment="failed (the latest ledger row of one of its sources failed) | submitted (valid data) | late (valid data, every contributing source modified after the deadline) | pending (no valid data, deadline not passed) | missing (no valid data, deadline passed).",
        ),
        sa.Column(
            "n_valid",
            sa.Integer(),
            nullable=False,
            comment="Responses with at least one valid answer.",
        ),
        sa.Column(
            "n_rejected", sa.Integer(), nullable=False, comment="Quarantine rows of its sources."
        ),
        sa.Column(
            "last_loaded_at",
            sa.DateTime(),
            nullable=True,
            comment="Latest successful load of one of its sources.",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "school_code", "questionnaire", name=op.f("pk_mart_completeness")
        ),
        comment="One row per expected (campaign, school, questionnaire): every registered source's pair plus every school × required questionnaire of its level.",
    )
    op.create_table(
        "mart_papi",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("scope", sa.String(), nullable=False, comment="school | unit | province."),
        sa.Column(
            "scope_code",
            sa.String(),
            nullable=False,
            comment="school_code, unit_code, or the campaign's province_code.",
        ),
        sa.Column(
            "indicator",
            sa.String(),
            nullable=False,
            comment="PAPI indicator (yes/no item code, e.g. KIEN_CO).",
        ),
        sa.Column(
            "n_answers", sa.Integer(), nullable=False, comment="Valid answers (Có or Không)."
        ),
        sa.Column("pct_yes", sa.Float(), nullable=False, comment="100 × #Có / n_answers."),
        sa.PrimaryKeyConstraint(
            "campaign_id", "scope", "scope_code", "indicator", name=op.f("pk_mart_papi")
        ),
        comment="One row per (campaign, scope, scope_code, indicator) of the papi questionnaires.",
    )
    op.create_table(
        "mart_school_dimension",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("school_code", sa.String(), nullable=False, comment="School."),
        sa.Column("questionnaire", sa.String(), nullable=False, comment="Questionnaire code."),
        sa.Column(
            "dimension",
            sa.String(),
            nullable=False,
            comment="Dimension code (TIEP_CAN, CSVC, MOI_TRUONG, HOAT_DONG, PHAT_TRIEN), CHUNG (the overall item) or MONG_DOI (expectation met, 0–100).",
        ),
        sa.Column(
            "n_respondents",
            sa.Integer(),
            nullable=False,
            comment="Responses with at least one valid answer in this scope and dimension.",
        ),
        sa.Column(
            "n_answers",
            sa.Integer(),
            nullable=False,
            comment="Valid answers pooled over the dimension's items.",
        ),
        sa.Column(
            "mean_score",
            sa.Float(),
            nullable=False,
            comment="Mean of the valid values: 1–5 for Likert dimensions, 0–100 for MONG_DOI.",
        ),
        sa.Column(
            "pct_satisfied",
            sa.Float(),
            nullable=True,
            comment="100 × (#4 + #5) / #valid answers; NULL for MONG_DOI.",
        ),
        sa.Column(
            "pct_dissatisfied",
            sa.Float(),
            nullable=True,
            comment="100 × (#1 + #2) / #valid answers; NULL for MONG_DOI.",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "school_code",
            "questionnaire",
            "dimension",
            name=op.f("pk_mart_school_dimension"),
        ),
        comment="One row per (campaign, school, questionnaire, dimension) with at least one valid answer; a dimension pools all answers to its items.",
    )
    op.create_table(
        "mart_service_ranking",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "unit_code",
            sa.String(),
            nullable=False,
            comment="Reporting unit the ranking is within.",
        ),
        sa.Column(
            "service",
            sa.Text(),
            nullable=False,
            comment="Service name as submitted (normalised by parse).",
        ),
        sa.Column(
            "school_code", sa.String(), nullable=False, comment="School providing the service."
        ),
        sa.Column(
            "total_points",
            sa.Float(),
            nullable=False,
            comment="Sum over criteria C1..C8 of the criterion's points (0–80); a criterion scored on several rows for the same service is averaged first.",
        ),
        sa.Column(
            "rank",
            sa.Integer(),
            nullable=False,
            comment="1 = highest total within (unit, service); ties share a rank.",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "unit_code",
            "service",
            "school_code",
            name=op.f("pk_mart_service_ranking"),
        ),
        comment="One row per (campaign, unit, service, school) of the service_review questionnaires.",
    )
    op.create_table(
        "mart_unit_dimension",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("unit_code", sa.String(), nullable=False, comment="Reporting unit."),
        sa.Column(
            "level", sa.String(), nullable=False, comment="School level (MN, TH, THCS, THPT, GDTX)."
        ),
        sa.Column("questionnaire", sa.String(), nullable=False, comment="Questionnaire code."),
        sa.Column(
            "dimension",
            sa.String(),
            nullable=False,
            comment="Dimension code (TIEP_CAN, CSVC, MOI_TRUONG, HOAT_DONG, PHAT_TRIEN), CHUNG (the overall item) or MONG_DOI (expectation met, 0–100).",
        ),
        sa.Column(
            "n_schools",
            sa.Integer(),
            nullable=False,
            comment="Schools with at least one respondent in this row's scope.",
        ),
        sa.Column(
            "n_respondents",
            sa.Integer(),
            nullable=False,
            comment="Responses with at least one valid answer in this scope and dimension.",
        ),
        sa.Column(
            "n_answers",
            sa.Integer(),
            nullable=False,
            comment="Valid answers pooled over the dimension's items.",
        ),
        sa.Column(
            "mean_score",
            sa.Float(),
            nullable=False,
            comment="Mean of the valid values: 1–5 for Likert dimensions, 0–100 for MONG_DOI.",
        ),
        sa.Column(
            "pct_satisfied",
            sa.Float(),
            nullable=True,
            comment="100 × (#4 + #5) / #valid answers; NULL for MONG_DOI.",
        ),
        sa.Column(
            "pct_dissatisfied",
            sa.Float(),
            nullable=True,
            comment="100 × (#1 + #2) / #valid answers; NULL for MONG_DOI.",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "unit_code",
            "level",
            "questionnaire",
            "dimension",
            name=op.f("pk_mart_unit_dimension"),
        ),
        comment="One row per (campaign, unit, level, questionnaire, dimension): answers of the unit's schools of that level pooled (unweighted).",
    )
    op.create_table(
        "mart_unit_question",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("unit_code", sa.String(), nullable=False, comment="Reporting unit."),
        sa.Column("level", sa.String(), nullable=False, comment="School level."),
        sa.Column("questionnaire", sa.String(), nullable=False, comment="Questionnaire code."),
        sa.Column(
            "question_code", sa.String(), nullable=False, comment="Likert item, including CHUNG."
        ),
        sa.Column("n_answers", sa.Integer(), nullable=False, comment="Valid answers (1–5)."),
        sa.Column("n_1", sa.Integer(), nullable=False, comment="Answers 1 (Rất không hài lòng)."),
        sa.Column("n_2", sa.Integer(), nullable=False, comment="Answers 2 (Không hài lòng)."),
        sa.Column("n_3", sa.Integer(), nullable=False, comment="Answers 3 (Bình thường)."),
        sa.Column("n_4", sa.Integer(), nullable=False, comment="Answers 4 (Hài lòng)."),
        sa.Column("n_5", sa.Integer(), nullable=False, comment="Answers 5 (Rất hài lòng)."),
        sa.Column("mean_score", sa.Float(), nullable=False, comment="Mean of the 1–5 answers."),
        sa.Column(
            "pct_satisfied", sa.Float(), nullable=False, comment="100 × (n_4 + n_5) / n_answers."
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id",
            "unit_code",
            "level",
            "questionnaire",
            "question_code",
            name=op.f("pk_mart_unit_question"),
        ),
        comment="One row per (campaign, unit, level, questionnaire, Likert item) with at least one valid answer.",
    )
    op.create_table(
        "meta",
        sa.Column(
            "key", sa.String(), nullable=False, comment="Setting name, e.g. respondent_salt."
        ),
        sa.Column(
            "value", sa.Text(), nullable=False, comment="[PII] Setting value; the salt is secret."
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
        comment="One row per warehouse-wide setting (the respondent-hash salt).",
    )
    op.create_table(
        "questionnaire",
        sa.Column(
            "questionnaire_code",
            sa.String(),
            nullable=False,
            comment="Questionnaire code, e.g. CMHS_TH.",
        ),
        sa.Column(
            "version",
            sa.String(),
            nullable=False,
            comment="Version of the YAML definition last synchronised.",
        ),
        sa.Column("name", sa.Text(), nullable=False, comment="Questionnaire title (Vietnamese)."),
        sa.Column(
            "kind", sa.String(), nullable=False, comment="satisfaction | papi | service_review."
        ),
        sa.Column(
            "levels",
            sa.Text(),
            nullable=False,
            comment="School levels it is for, comma-separated without spaces (e.g. 'THPT,GDTX').",
        ),
        sa.Column(
            "required",
            sa.Boolean(),
            nullable=False,
            comment="True if every school of those levels is expected to submit it.",
        ),
        sa.PrimaryKeyConstraint("questionnaire_code", name=op.f("pk_questionnaire")),
        comment="One row per questionnaire code (the latest synchronised definition).",
    )
    op.create_table(
        "alerts",
        sa.Column(
            "alert_id", sa.Integer(), autoincrement=True, nullable=False, comment="Surrogate key."
        ),
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "rule", sa.String(), nullable=False, comment="Rule name, e.g. pct_satisfied_red."
        ),
        sa.Column("severity", sa.String(), nullable=False, comment="red | amber | info."),
        sa.Column("scope", sa.String(), nullable=False, comment="school | unit | province."),
        sa.Column(
            "scope_code",
            sa.String(),
            nullable=False,
            comment="school_code, unit_code or province_code.",
        ),
        sa.Column(
            "subject",
            sa.String(),
            server_default="",
            nullable=False,
            comment="What in the scope it concerns, e.g. 'CMHS_TH/CSVC'; '' if the whole scope.",
        ),
        sa.Column(
            "value", sa.Float(), nullable=True, comment="Observed value when last evaluated."
        ),
        sa.Column(
            "threshold", sa.Float(), nullable=True, comment="Threshold the value was compared with."
        ),
        sa.Column("status", sa.String(), nullable=False, comment="open | acknowledged | resolved."),
        sa.Column(
            "first_seen_at",
            sa.DateTime(),
            nullable=False,
            comment="First run that raised it, campaign local time.",
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(),
            nullable=False,
            comment="Latest run in which the condition held.",
        ),
        sa.Column(
            "note",
            sa.Text(),
            nullable=True,
            comment="Officer's note when acknowledging or resolving.",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.campaign_id"], name=op.f("fk_alerts_campaign_id_campaign")
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "campaign_id",
            "rule",
            "scope",
            "scope_code",
            "subject",
            name=op.f("uq_alerts_campaign_id_rule_scope_scope_code_subject"),
        ),
        comment="One row per alert condition (campaign, rule, scope, scope_code, subject), upserted by each run with its lifecycle; never duplicated across runs.",
    )
    op.create_table(
        "campaign_questionnaire",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "questionnaire_code",
            sa.String(),
            nullable=False,
            comment="Questionnaire used in this campaign.",
        ),
        sa.Column(
            "version",
            sa.String(),
            nullable=False,
            comment="Questionnaire version the campaign was synchronised with.",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.campaign_id"],
            name=op.f("fk_campaign_questionnaire_campaign_id_campaign"),
        ),
        sa.ForeignKeyConstraint(
            ["questionnaire_code"],
            ["questionnaire.questionnaire_code"],
            name=op.f("fk_campaign_questionnaire_questionnaire_code_questionnaire"),
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "questionnaire_code", name=op.f("pk_campaign_questionnaire")
        ),
        comment="One row per questionnaire in use by a campaign; decides which required questionnaires a campaign's schools are expected to submit.",
    )
    op.create_table(
        "question",
        sa.Column(
            "questionnaire_code",
            sa.String(),
            nullable=False,
            comment="Questionnaire the item belongs to.",
        ),
        sa.Column(
            "question_code",
            sa.String(),
            nullable=False,
            comment="Item code, e.g. TC1, CHUNG, MONG_DOI, KIEN_CO, C1.",
        ),
        sa.Column(
            "dimension",
            sa.String(),
            nullable=True,
            comment="Dimension code (TIEP_CAN … PHAT_TRIEN, CHUNG) for scored Likert items; NULL otherwise.",
        ),
        sa.Column(
            "kind",
            sa.String(),
            nullable=False,
            comment="Answer kind: likert | yesno | level | percent | text.",
        ),
        sa.Column("text", sa.Text(), nullable=False, comment="Item wording (Vietnamese)."),
        sa.Column(
            "position",
            sa.Integer(),
            nullable=False,
            comment="1-based order of the item in the questionnaire.",
        ),
        sa.ForeignKeyConstraint(
            ["questionnaire_code"],
            ["questionnaire.questionnaire_code"],
            name=op.f("fk_question_questionnaire_code_questionnaire"),
        ),
        sa.PrimaryKeyConstraint("questionnaire_code", "question_code", name=op.f("pk_question")),
        comment="One row per item of a questionnaire (the latest synchronised definition).",
    )
    op.create_table(
        "run",
        sa.Column("run_id", sa.String(), nullable=False, comment="Run id (the flow run's id)."),
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "started_at", sa.DateTime(), nullable=False, comment="Start, campaign local time."
        ),
        sa.Column(
            "finished_at",
            sa.DateTime(),
            nullable=True,
            comment="End, campaign local time; NULL while running.",
        ),
        sa.Column(
            "status",
            sa.String(),
            nullable=False,
            comment="running | succeeded | partial (some sources failed) | failed (aborted).",
        ),
        sa.Column(
            "n_sources",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Sources with a ledger row in this run.",
        ),
        sa.Column(
            "n_loaded", sa.Integer(), server_default="0", nullable=False, comment="Sources loaded."
        ),
        sa.Column(
            "n_unchanged",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Sources skipped as unchanged.",
        ),
        sa.Column(
            "n_failed",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Sources that failed.",
        ),
        sa.Column(
            "n_absent",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Sources with nothing to fetch yet.",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.campaign_id"], name=op.f("fk_run_campaign_id_campaign")
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run")),
        comment="One row per run of the nightly flow (or a rerun) for a campaign.",
    )
    op.create_index(
        op.f("ix_run_campaign_id_started_at"), "run", ["campaign_id", "started_at"], unique=False
    )

    op.create_table(
        "source",
        sa.Column(
            "source_id", sa.Integer(), autoincrement=True, nullable=False, comment="Surrogate key."
        ),
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "school_code",
            sa.String(),
            nullable=False,
            comment="School that submits through this source (not a foreign key: a failure must be recordable even for a school missing from the registry).",
        ),
        sa.Column(
            "questionnaire",
            sa.String(),
            nullable=False,
            comment="Questionnaire code answered in this source.",
        ),
        sa.Column("kind", sa.String(), nullable=False, comment="excel | csv | gsheet."),
        sa.Column(
            "location",
            sa.Text(),
            nullable=False,
            comment="Location as written in sources.csv (path or spreadsheet key).",
        ),
        sa.Column(
            "is_active",
            sa.Boolean(),
            server_default=sa.true(),
            nullable=False,
            comment="False once the source left sources.csv: its rows are kept but count in no mart.",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.campaign_id"], name=op.f("fk_source_campaign_id_campaign")
        ),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_source")),
        sa.UniqueConstraint(
            "campaign_id",
            "school_code",
            "questionnaire",
            "location",
            name=op.f("uq_source_campaign_id_school_code_questionnaire_location"),
        ),
        comment="One row per registered source (school, questionnaire, location) of a campaign.",
    )
    op.create_table(
        "unit",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "unit_code",
            sa.String(),
            nullable=False,
            comment="Reporting unit code from schools.csv.",
        ),
        sa.Column("unit_name", sa.Text(), nullable=False, comment="Reporting unit name."),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.campaign_id"], name=op.f("fk_unit_campaign_id_campaign")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "unit_code", name=op.f("pk_unit")),
        comment="One row per reporting unit of a campaign, as held at the campaign's date.",
    )
    op.create_table(
        "load_ledger",
        sa.Column(
            "load_id",
            sa.Integer(),
            autoincrement=True,
            nullable=False,
            comment="Surrogate key, increasing in time order.",
        ),
        sa.Column("run_id", sa.String(), nullable=False, comment="Run."),
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("source_id", sa.Integer(), nullable=False, comment="Source."),
        sa.Column(
            "school_code",
            sa.String(),
            nullable=False,
            comment="School of the source (copied for reading the ledger alone).",
        ),
        sa.Column(
            "questionnaire",
            sa.String(),
            nullable=False,
            comment="Questionnaire code of the source.",
        ),
        sa.Column(
            "location",
            sa.Text(),
            nullable=False,
            comment="Location of the source as in sources.csv.",
        ),
        sa.Column(
            "status", sa.String(), nullable=False, comment="loaded | unchanged | failed | absent."
        ),
        sa.Column(
            "fingerprint",
            sa.String(),
            nullable=True,
            comment="SHA-256 of the fetched bytes; NULL if nothing was fetched.",
        ),
        sa.Column(
            "archive_path",
            sa.Text(),
            nullable=True,
            comment="Where the fetched bytes are archived.",
        ),
        sa.Column(
            "modified_at",
            sa.DateTime(),
            nullable=True,
            comment="The file's or sheet's modified time, campaign local time.",
        ),
        sa.Column(
            "n_rows_read",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Data rows read from the sheet.",
        ),
        sa.Column(
            "n_responses",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Responses loaded.",
        ),
        sa.Column(
            "n_answers", sa.Integer(), server_default="0", nullable=False, comment="Answers loaded."
        ),
        sa.Column(
            "n_rejected",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Quarantine rows written.",
        ),
        sa.Column(
            "unknown_columns",
            sa.Text(),
            server_default="[]",
            nullable=False,
            comment="JSON list of headers that matched no item.",
        ),
        sa.Column(
            "missing_questions",
            sa.Text(),
            server_default="[]",
            nullable=False,
            comment="JSON list of item codes with no column.",
        ),
        sa.Column(
            "message", sa.Text(), nullable=True, comment="Failure or information message, one line."
        ),
        sa.Column(
            "started_at",
            sa.DateTime(),
            nullable=False,
            comment="When work on the source started, campaign local time.",
        ),
        sa.Column(
            "finished_at",
            sa.DateTime(),
            nullable=False,
            comment="When the row was written, campaign local time.",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.campaign_id"],
            name=op.f("fk_load_ledger_campaign_id_campaign"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["run.run_id"], name=op.f("fk_load_ledger_run_id_run")),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.source_id"], name=op.f("fk_load_ledger_source_id_source")
        ),
        sa.PrimaryKeyConstraint("load_id", name=op.f("pk_load_ledger")),
        comment="One row per source per run: what happened to it. Append-only; the latest row per source is its current state.",
    )
    op.create_index(
        op.f("ix_load_ledger_campaign_id_source_id_load_id"),
        "load_ledger",
        ["campaign_id", "source_id", "load_id"],
        unique=False,
    )
    op.create_index(op.f("ix_load_ledger_run_id"), "load_ledger", ["run_id"], unique=False)

    op.create_table(
        "quarantine",
        sa.Column(
            "quarantine_id",
            sa.Integer(),
            autoincrement=True,
            nullable=False,
            comment="Surrogate key.",
        ),
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column("source_id", sa.Integer(), nullable=False, comment="Source."),
        sa.Column("school_code", sa.String(), nullable=False, comment="School of the source."),
        sa.Column(
            "questionnaire",
            sa.String(),
            nullable=False,
            comment="Questionnaire code of the source.",
        ),
        sa.Column(
            "file",
            sa.Text(),
            nullable=True,
            comment="File name, or spreadsheet title, as shown to the school.",
        ),
        sa.Column(
            "sheet",
            sa.Text(),
            nullable=True,
            comment="Sheet name; NULL for a problem with the whole file.",
        ),
        sa.Column(
            "cell",
            sa.String(),
            nullable=True,
            comment="Cell address, e.g. D12; NULL for a whole row or file.",
        ),
        sa.Column(
            "row_number",
            sa.Integer(),
            nullable=True,
            comment="1-based sheet row; NULL for a whole file.",
        ),
        sa.Column(
            "response_no", sa.Integer(), nullable=True, comment="Response concerned, if any."
        ),
        sa.Column("question_code", sa.String(), nullable=True, comment="Item concerned, if any."),
        sa.Column(
            "raw_value",
            sa.Text(),
            nullable=True,
            comment="[PII] The value as found in the sheet; may be free text a respondent typed.",
        ),
        sa.Column(
            "rule",
            sa.String(),
            nullable=False,
            comment="Machine name of the rule or expectation that rejected it.",
        ),
        sa.Column(
            "reason", sa.Text(), nullable=False, comment="Why, in words a data officer can act on."
        ),
        sa.Column(
            "scope",
            sa.String(),
            nullable=False,
            comment="value (one answer) | response (a whole row) | source (the whole file or sheet).",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.campaign_id"],
            name=op.f("fk_quarantine_campaign_id_campaign"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.source_id"], name=op.f("fk_quarantine_source_id_source")
        ),
        sa.PrimaryKeyConstraint("quarantine_id", name=op.f("pk_quarantine")),
        comment="One row per rejected value, row or source, with where it was and why; replaced with its source's rows.",
    )
    op.create_index(
        op.f("ix_quarantine_campaign_id_school_code_questionnaire"),
        "quarantine",
        ["campaign_id", "school_code", "questionnaire"],
        unique=False,
    )
    op.create_index(
        op.f("ix_quarantine_campaign_id_source_id"),
        "quarantine",
        ["campaign_id", "source_id"],
        unique=False,
    )

    op.create_table(
        "response",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "source_id", sa.Integer(), nullable=False, comment="Source the row was read from."
        ),
        sa.Column(
            "response_no",
            sa.Integer(),
            nullable=False,
            comment="1-based number of the response in its sheet's order.",
        ),
        sa.Column(
            "sheet",
            sa.Text(),
            nullable=False,
            comment="Sheet (worksheet) name the response was read from.",
        ),
        sa.Column(
            "row_number",
            sa.Integer(),
            nullable=False,
            comment="1-based row of the response in its sheet.",
        ),
        sa.Column(
            "submitted_at",
            sa.DateTime(),
            nullable=True,
            comment="Form timestamp (campaign local time); NULL if absent.",
        ),
        sa.Column(
            "respondent_hash",
            sa.String(),
            nullable=True,
            comment="[PII] Salted hash of the respondent's e-mail or name (salt in meta); the identity itself is never stored. Pseudonymous: do not publish.",
        ),
        sa.Column(
            "service",
            sa.Text(),
            nullable=True,
            comment="Service name (service_review questionnaires only).",
        ),
        sa.Column(
            "class_name",
            sa.String(),
            nullable=True,
            comment="[PII] Class or grade (LOP); a quasi-identifier.",
        ),
        sa.Column(
            "gender",
            sa.String(),
            nullable=True,
            comment="[PII] Gender (GIOI_TINH); a quasi-identifier.",
        ),
        sa.Column(
            "area",
            sa.String(),
            nullable=True,
            comment="[PII] Area of residence (KHU_VUC); a quasi-identifier.",
        ),
        sa.Column(
            "comment",
            sa.Text(),
            nullable=True,
            comment="[PII] Free-text comment (Y_KIEN); may contain names or phone numbers.",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"], ["source.source_id"], name=op.f("fk_response_source_id_source")
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "source_id", "response_no", name=op.f("pk_response")
        ),
        comment="One row per response (a data row of a sheet) kept from a source.",
    )
    op.create_table(
        "school",
        sa.Column("campaign_id", sa.String(), nullable=False, comment="Campaign."),
        sa.Column(
            "school_code",
            sa.String(),
            nullable=False,
            comment="School code from the registry (schools.csv).",
        ),
        sa.Column("school_name", sa.Text(), nullable=False, comment="School name."),
        sa.Column(
            "level", sa.String(), nullable=False, comment="School level: MN, TH, THCS, THPT, GDTX."
        ),
        sa.Column(
            "unit_code",
            sa.String(),
            nullable=False,
            comment="Reporting unit the school belonged to in this campaign.",
        ),
        sa.Column(
            "enrollment",
            sa.Integer(),
            nullable=True,
            comment="Number of pupils, for sample targets and weighting.",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id", "unit_code"],
            ["unit.campaign_id", "unit.unit_code"],
            name=op.f("fk_school_campaign_id_unit_code_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaign.campaign_id"], name=op.f("fk_school_campaign_id_campaign")
        ),
        sa.PrimaryKeyConstraint("campaign_id", "school_code", name=op.f("pk_school")),
        comment="One row per school registered in a campaign.",
    )
    op.create_index(
        op.f("ix_school_campaign_id_unit_code"),
        "school",
        ["campaign_id", "unit_code"],
        unique=False,
    )

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
        sa.Column(
            "value",
            sa.Float(),
            nullable=True,
            comment="Normalised value: likert 1–5, yesno 1/0, level 10/7/5/3/0, percent 0–100; NULL when the raw text could not be read (the raw text is in quarantine).",
        ),
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


def downgrade() -> None:
    op.drop_table("answer")
    op.drop_table("school")
    op.drop_table("response")
    op.drop_table("quarantine")
    op.drop_table("load_ledger")
    op.drop_table("unit")
    op.drop_table("source")
    op.drop_table("run")
    op.drop_table("question")
    op.drop_table("campaign_questionnaire")
    op.drop_table("alerts")
    op.drop_table("questionnaire")
    op.drop_table("meta")
    op.drop_table("mart_unit_question")
    op.drop_table("mart_unit_dimension")
    op.drop_table("mart_service_ranking")
    op.drop_table("mart_school_dimension")
    op.drop_table("mart_papi")
    op.drop_table("mart_completeness")
    op.drop_table("campaign")
