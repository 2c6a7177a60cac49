"""The warehouse schema: SQLAlchemy Core tables, each with its contract beside it.

Every table carries its grain as the table comment ("one row per …") and a comment on every
column; both reach PostgreSQL as ``COMMENT ON`` (SQLite ignores comments), so the contract is
readable from the database itself. Columns holding personal data, or text a respondent typed that
may contain it, are marked ``[PII]`` in their comment and ``info={"pii": True}`` here, so code
that publishes or logs can check ``column.info.get("pii")``.

Changing a table here needs a new Alembic migration in ``warehouse/migrations/versions``; the
test suite compares the migrated database with this metadata.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from warehouse import columns

# Types are chosen to be portable between SQLite and PostgreSQL: ``String`` without a length for
# codes, ``Text`` for free text, ``Float`` (double precision) for scores, naive ``DateTime`` in
# the campaign's local time (``campaign.timezone``), ``Boolean`` without a CHECK constraint.
#
# Groups:
# - dimensions: campaign, campaign_questionnaire, unit, school, questionnaire, question, source;
# - facts: response, answer, answer_column (where each question's answers were read);
#   quarantine (rejected values, with where and why);
# - per-source figures (``warehouse.figures``): figure_source, figure_source_dimension,
#   figure_source_question, the sums the marts are rebuilt from;
# - operations: run, load_ledger, superseded_file, meta, run_lock;
# - marts (rebuilt by ``warehouse.marts``): mart_school_dimension, mart_unit_dimension,
#   mart_unit_question, mart_papi, mart_service_ranking, mart_completeness, and the comment
#   mart (``warehouse.comments``) mart_comment_theme, mart_comment_quote; and alerts (kept
#   across runs with a lifecycle, never rebuilt) with alert_event (each alert's history).
metadata = columns.metadata
LEDGER_STATUSES = columns.LEDGER_STATUSES
COMPLETENESS_STATUSES = columns.COMPLETENESS_STATUSES
SCOPES = columns.SCOPES
_col = columns.column
_campaign_fk = columns.campaign_fk

# --------------------------------------------------------------------------------------------
# Dimensions
# --------------------------------------------------------------------------------------------

campaign = sa.Table(
    "campaign",
    metadata,
    _col(
        "campaign_id", sa.String(), "Campaign id from khaosat.yaml (campaign.id).", primary_key=True
    ),
    _col("name", sa.Text(), "Campaign name as configured (Vietnamese)."),
    _col("school_year", sa.String(), "School year, e.g. '2024-2025'."),
    _col("opens", sa.Date(), "First day responses are accepted."),
    _col("closes", sa.Date(), "Last day responses are accepted."),
    _col(
        "deadline",
        sa.Date(),
        "Submission deadline; a submission after the end of this day is late.",
    ),
    _col(
        "previous_id",
        sa.String(),
        "campaign_id of the previous round for year-on-year figures; NULL if none. Not a foreign "
        "key: the previous round may not be in this warehouse.",
        nullable=True,
    ),
    _col("province_code", sa.String(), "Province code; scope_code of province-level figures."),
    _col(
        "timezone",
        sa.String(),
        "IANA time zone in which every naive datetime of this campaign is expressed.",
    ),
    comment="One row per campaign (one survey round of one province). Replaced by sync_registry.",
)

questionnaire = sa.Table(
    "questionnaire",
    metadata,
    _col("questionnaire_code", sa.String(), "Questionnaire code, e.g. CMHS_TH.", primary_key=True),
    _col("version", sa.String(), "Version of the YAML definition last synchronised."),
    _col("name", sa.Text(), "Questionnaire title (Vietnamese)."),
    _col("kind", sa.String(), "satisfaction | papi | service_review."),
    _col(
        "levels",
        sa.Text(),
        "School levels it is for, comma-separated without spaces (e.g. 'THPT,GDTX').",
    ),
    _col(
        "required", sa.Boolean(), "True if every school of those levels is expected to submit it."
    ),
    comment="One row per questionnaire code (the latest synchronised definition).",
)

campaign_questionnaire = sa.Table(
    "campaign_questionnaire",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk(), primary_key=True),
    _col(
        "questionnaire_code",
        sa.String(),
        "Questionnaire used in this campaign.",
        sa.ForeignKey("questionnaire.questionnaire_code"),
        primary_key=True,
    ),
    _col("version", sa.String(), "Questionnaire version the campaign was synchronised with."),
    comment="One row per questionnaire in use by a campaign; decides which required "
    "questionnaires a campaign's schools are expected to submit.",
)

question = sa.Table(
    "question",
    metadata,
    _col(
        "questionnaire_code",
        sa.String(),
        "Questionnaire the item belongs to.",
        sa.ForeignKey("questionnaire.questionnaire_code"),
        primary_key=True,
    ),
    _col(
        "question_code",
        sa.String(),
        "Item code, e.g. TC1, CHUNG, MONG_DOI, KIEN_CO, C1.",
        primary_key=True,
    ),
    _col(
        "dimension",
        sa.String(),
        "Dimension code (TIEP_CAN … PHAT_TRIEN, CHUNG) for scored Likert items; NULL otherwise.",
        nullable=True,
    ),
    _col("kind", sa.String(), "Answer kind: likert | yesno | level | percent | text."),
    _col("text", sa.Text(), "Item wording (Vietnamese)."),
    _col("position", sa.Integer(), "1-based order of the item in the questionnaire."),
    comment="One row per item of a questionnaire (the latest synchronised definition).",
)

unit = sa.Table(
    "unit",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk(), primary_key=True),
    _col("unit_code", sa.String(), "Reporting unit code from schools.csv.", primary_key=True),
    _col("unit_name", sa.Text(), "Reporting unit name."),
    comment="One row per reporting unit of a campaign, as held at the campaign's date.",
)

school = sa.Table(
    "school",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk(), primary_key=True),
    _col(
        "school_code", sa.String(), "School code from the registry (schools.csv).", primary_key=True
    ),
    _col("school_name", sa.Text(), "School name."),
    _col("level", sa.String(), "School level: MN, TH, THCS, THPT, GDTX."),
    _col("unit_code", sa.String(), "Reporting unit the school belonged to in this campaign."),
    _col(
        "enrollment",
        sa.Integer(),
        "Number of pupils, for sample targets and weighting.",
        nullable=True,
    ),
    sa.ForeignKeyConstraint(["campaign_id", "unit_code"], ["unit.campaign_id", "unit.unit_code"]),
    sa.Index(None, "campaign_id", "unit_code"),
    comment="One row per school registered in a campaign.",
)

source = sa.Table(
    "source",
    metadata,
    _col("source_id", sa.Integer(), "Surrogate key.", primary_key=True, autoincrement=True),
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk()),
    _col(
        "school_code",
        sa.String(),
        "School that submits through this source (not a foreign key: a failure must be "
        "recordable even for a school missing from the registry).",
    ),
    _col("questionnaire", sa.String(), "Questionnaire code answered in this source."),
    _col("kind", sa.String(), "excel | csv | gsheet."),
    _col("location", sa.Text(), "Location as written in sources.csv (path or spreadsheet key)."),
    _col(
        "is_active",
        sa.Boolean(),
        "False once the source left sources.csv: its rows are kept but count in no mart.",
        server_default=sa.true(),
    ),
    _col(
        "found_in",
        sa.Text(),
        "The location of the folder or drive row of sources.csv the source was discovered in; "
        "NULL for a source listed on a row of its own.",
        nullable=True,
    ),
    sa.UniqueConstraint("campaign_id", "school_code", "questionnaire", "location"),
    comment="One row per registered source (school, questionnaire, location) of a campaign.",
)

# --------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------

response = sa.Table(
    "response",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col(
        "source_id",
        sa.Integer(),
        "Source the row was read from.",
        sa.ForeignKey("source.source_id"),
        primary_key=True,
    ),
    _col(
        "response_no",
        sa.Integer(),
        "1-based number of the response in its sheet's order.",
        primary_key=True,
    ),
    _col("sheet", sa.Text(), "Sheet (worksheet) name the response was read from."),
    _col("row_number", sa.Integer(), "1-based row of the response in its sheet."),
    _col(
        "submitted_at",
        sa.DateTime(),
        "Form timestamp (campaign local time); NULL if absent.",
        nullable=True,
    ),
    _col(
        "respondent_hash",
        sa.String(),
        "Salted hash of the respondent's e-mail or name (salt in meta); the identity itself is "
        "never stored. Pseudonymous: do not publish.",
        nullable=True,
        pii=True,
    ),
    _col("service", sa.Text(), "Service name (service_review questionnaires only).", nullable=True),
    _col(
        "class_name",
        sa.String(),
        "Class or grade (LOP); a quasi-identifier.",
        nullable=True,
        pii=True,
    ),
    _col("gender", sa.String(), "Gender (GIOI_TINH); a quasi-identifier.", nullable=True, pii=True),
    _col(
        "area",
        sa.String(),
        "Area of residence (KHU_VUC); a quasi-identifier.",
        nullable=True,
        pii=True,
    ),
    _col(
        "comment",
        sa.Text(),
        "Free-text comment (Y_KIEN); may contain names or phone numbers.",
        nullable=True,
        pii=True,
    ),
    comment="One row per response (a data row of a sheet) kept from a source.",
)

# answer is the one table with millions of rows, so it holds only what a value needs, which
# makes a source's answers smaller and faster to insert (benchmarks/README.md). No campaign_id
# (source_id is unique across campaigns and the source row names the campaign); no cell (its
# row is the response's row_number, its column the same for every answer to a question, kept
# once in answer_column); no foreign key to response (checked on every row; replace_source
# writes a source's responses and answers in one transaction instead); WITHOUT ROWID on
# SQLite, so the primary key is the table's only b-tree.
answer = sa.Table(
    "answer",
    metadata,
    _col(
        "source_id",
        sa.Integer(),
        "Source (source.source_id, unique across campaigns; the source row names the campaign).",
        primary_key=True,
    ),
    _col(
        "response_no",
        sa.Integer(),
        "Response within the source (response.response_no).",
        primary_key=True,
    ),
    _col("question_code", sa.String(), "Item answered (question.question_code).", primary_key=True),
    _col(
        "value",
        sa.Float(),
        "Normalised value: likert 1–5, yesno 1/0, level 10/7/5/3/0, percent 0–100; NULL when the "
        "raw text could not be read (the raw text is in quarantine).",
        nullable=True,
    ),
    sqlite_with_rowid=False,
    comment="One row per non-empty scored cell: (source, response, question). An empty cell has "
    "no row. The cell a value was read from is answer_column.column_letter (same source_id and "
    "question_code) followed by response.row_number (same source_id and response_no), e.g. D12.",
)

answer_column = sa.Table(
    "answer_column",
    metadata,
    _col(
        "source_id",
        sa.Integer(),
        "Source.",
        sa.ForeignKey("source.source_id"),
        primary_key=True,
    ),
    _col("question_code", sa.String(), "Item answered in the source.", primary_key=True),
    _col(
        "column_letter",
        sa.String(),
        "Sheet column letters the item's answers were read from, e.g. D.",
    ),
    _col(
        "header",
        sa.Text(),
        "Header text of that column as found in the sheet; NULL for answers loaded before this "
        "table existed.",
        nullable=True,
    ),
    comment="One row per (source, question) with at least one answer: the sheet column its "
    "answers were read from; written and replaced with the source's answers.",
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    _col("quarantine_id", sa.Integer(), "Surrogate key.", primary_key=True, autoincrement=True),
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk()),
    _col("source_id", sa.Integer(), "Source.", sa.ForeignKey("source.source_id")),
    _col("school_code", sa.String(), "School of the source."),
    _col("questionnaire", sa.String(), "Questionnaire code of the source."),
    _col(
        "file", sa.Text(), "File name, or spreadsheet title, as shown to the school.", nullable=True
    ),
    _col("sheet", sa.Text(), "Sheet name; NULL for a problem with the whole file.", nullable=True),
    _col(
        "cell", sa.String(), "Cell address, e.g. D12; NULL for a whole row or file.", nullable=True
    ),
    _col("row_number", sa.Integer(), "1-based sheet row; NULL for a whole file.", nullable=True),
    _col("response_no", sa.Integer(), "Response concerned, if any.", nullable=True),
    _col("question_code", sa.String(), "Item concerned, if any.", nullable=True),
    _col(
        "raw_value",
        sa.Text(),
        "The value as found in the sheet; may be free text a respondent typed.",
        nullable=True,
        pii=True,
    ),
    _col("rule", sa.String(), "Machine name of the rule or expectation that rejected it."),
    _col("reason", sa.Text(), "Why, in words a data officer can act on."),
    _col(
        "scope",
        sa.String(),
        "value (one answer) | response (a whole row) | source (the whole file or sheet).",
    ),
    sa.Index(None, "campaign_id", "source_id"),
    sa.Index(None, "campaign_id", "school_code", "questionnaire"),
    comment="One row per rejected value, row or source, with where it was and why; replaced "
    "with its source's rows.",
)

# --------------------------------------------------------------------------------------------
# Per-source figures (warehouse.figures): the sums the marts are built from, replaced with their
# source's rows in the same transaction. Only valid answers count (see the marts' comment below).
# --------------------------------------------------------------------------------------------


def _source_key() -> list[sa.Column[Any]]:
    return [
        _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
        _col(
            "source_id",
            sa.Integer(),
            "Source.",
            sa.ForeignKey("source.source_id"),
            primary_key=True,
        ),
    ]


figure_source = sa.Table(
    "figure_source",
    metadata,
    *_source_key(),
    _col("n_valid_responses", sa.Integer(), "Responses with at least one valid answer."),
    comment="One row per loaded source: its figures are current (a source loaded before "
    "this table existed has none until they are computed from its answers).",
)

figure_source_dimension = sa.Table(
    "figure_source_dimension",
    metadata,
    *_source_key(),
    _col("dimension", sa.String(), "Dimension code, CHUNG or MONG_DOI.", primary_key=True),
    _col("n_respondents", sa.Integer(), "Responses with a valid answer in the dimension."),
    _col("n_answers", sa.Integer(), "Valid answers to the dimension's items."),
    _col("total", sa.Float(), "Sum of those answers' values."),
    _col("n_satisfied", sa.Integer(), "Answers of 4 or 5; NULL for MONG_DOI.", nullable=True),
    _col("n_dissatisfied", sa.Integer(), "Answers of 1 or 2; NULL for MONG_DOI.", nullable=True),
    comment="One row per (source, dimension) with a valid answer: the sums behind the "
    "dimension marts.",
)

figure_source_question = sa.Table(
    "figure_source_question",
    metadata,
    *_source_key(),
    _col("question_code", sa.String(), "Item (likert, yesno or level kind).", primary_key=True),
    _col(
        "service",
        sa.Text(),
        "Service named by the responses (service reviews); empty otherwise.",
        primary_key=True,
    ),
    _col("n_answers", sa.Integer(), "Valid answers."),
    *(_col(f"n_{k}", sa.Integer(), f"Answers equal to {k}.") for k in range(1, 6)),
    _col("total", sa.Float(), "Sum of the valid answers' values."),
    comment="One row per (source, question, service) with a valid answer: the sums behind the "
    "question, PAPI and service marts.",
)

#: The per-source figure tables, replaced with their source's rows.
FIGURE_TABLES = (figure_source, figure_source_dimension, figure_source_question)

# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------

run = sa.Table(
    "run",
    metadata,
    _col("run_id", sa.String(), "Run id (the flow run's id).", primary_key=True),
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk()),
    _col("started_at", sa.DateTime(), "Start, campaign local time."),
    _col(
        "finished_at", sa.DateTime(), "End, campaign local time; NULL while running.", nullable=True
    ),
    _col(
        "status",
        sa.String(),
        "running | succeeded | partial (some sources failed) | failed (aborted) | error (the "
        "machine stopped it: see message) | interrupted (SIGINT or SIGTERM).",
    ),
    _col("n_sources", sa.Integer(), "Sources with a ledger row in this run.", server_default="0"),
    _col("n_loaded", sa.Integer(), "Sources loaded.", server_default="0"),
    _col("n_unchanged", sa.Integer(), "Sources skipped as unchanged.", server_default="0"),
    _col("n_failed", sa.Integer(), "Sources that failed.", server_default="0"),
    _col("n_absent", sa.Integer(), "Sources with nothing to fetch yet.", server_default="0"),
    _col(
        "message",
        sa.Text(),
        "Why the run ended as error or interrupted, in one line; NULL otherwise.",
        nullable=True,
    ),
    sa.Index(None, "campaign_id", "started_at"),
    comment="One row per run of the nightly flow (or a rerun) for a campaign.",
)

load_ledger = sa.Table(
    "load_ledger",
    metadata,
    _col(
        "load_id",
        sa.Integer(),
        "Surrogate key, increasing in time order.",
        primary_key=True,
        autoincrement=True,
    ),
    _col("run_id", sa.String(), "Run.", sa.ForeignKey("run.run_id")),
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk()),
    _col("source_id", sa.Integer(), "Source.", sa.ForeignKey("source.source_id")),
    _col("school_code", sa.String(), "School of the source (copied for reading the ledger alone)."),
    _col("questionnaire", sa.String(), "Questionnaire code of the source."),
    _col("location", sa.Text(), "Location of the source as in sources.csv."),
    _col("status", sa.String(), "loaded | unchanged | failed | absent."),
    _col(
        "fingerprint",
        sa.String(),
        "SHA-256 of the fetched bytes; NULL if nothing was fetched.",
        nullable=True,
    ),
    _col("archive_path", sa.Text(), "Where the fetched bytes are archived.", nullable=True),
    _col(
        "modified_at",
        sa.DateTime(),
        "The file's or sheet's modified time, campaign local time.",
        nullable=True,
    ),
    _col("n_rows_read", sa.Integer(), "Data rows read from the sheet.", server_default="0"),
    _col("n_responses", sa.Integer(), "Responses loaded.", server_default="0"),
    _col("n_answers", sa.Integer(), "Answers loaded.", server_default="0"),
    _col("n_rejected", sa.Integer(), "Quarantine rows written.", server_default="0"),
    _col(
        "unknown_columns",
        sa.Text(),
        "JSON list of headers that matched no item.",
        server_default="[]",
    ),
    _col(
        "missing_questions",
        sa.Text(),
        "JSON list of item codes with no column.",
        server_default="[]",
    ),
    _col(
        "renamed_questions",
        sa.Text(),
        "JSON object: item code -> the header the sheet uses instead of the form's wording.",
        server_default="{}",
    ),
    _col(
        "revision",
        sa.String(),
        "Drive version of a gsheet source when fetched; NULL for files.",
        nullable=True,
    ),
    _col("message", sa.Text(), "Failure or information message, one line.", nullable=True),
    _col("started_at", sa.DateTime(), "When work on the source started, campaign local time."),
    _col("finished_at", sa.DateTime(), "When the row was written, campaign local time."),
    sa.Index(None, "campaign_id", "source_id", "load_id"),
    sa.Index(None, "run_id"),
    comment="One row per source per run: what happened to it. Append-only; the latest row per "
    "source is its current state.",
)

superseded_file = sa.Table(
    "superseded_file",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk(), primary_key=True),
    _col("school_code", sa.String(), "School the file's name names.", primary_key=True),
    _col("questionnaire", sa.String(), "Questionnaire of the folder row.", primary_key=True),
    _col("location", sa.Text(), "The file not used (path or Drive file id).", primary_key=True),
    _col("found_in", sa.Text(), "Location of the folder or drive row the file is in."),
    _col("used_location", sa.Text(), "The newer file used instead."),
    _col("message", sa.Text(), "The line the school and the officer read, in Vietnamese."),
    _col("run_id", sa.String(), "The run that last listed the folder."),
    comment="One row per file of a folder source that is not used because the same school has "
    "a newer file for the questionnaire, as the latest run found the folders; replaced whole "
    "by each run.",
)

meta = sa.Table(
    "meta",
    metadata,
    _col("key", sa.String(), "Setting name, e.g. respondent_salt.", primary_key=True),
    _col("value", sa.Text(), "Setting value; the salt is secret.", pii=True),
    comment="One row per warehouse-wide setting (the respondent-hash salt).",
)

# --------------------------------------------------------------------------------------------
# Marts (DESIGN.md). Percentages are 0–100 and unrounded; a "valid" answer is one whose value
# is in its kind's range (likert 1–5, yesno 0/1, level 0/3/5/7/10, percent 0–100). Only active
# sources and registered schools count.
# --------------------------------------------------------------------------------------------

_DIM_COMMENT = (
    "Dimension code (TIEP_CAN, CSVC, MOI_TRUONG, HOAT_DONG, PHAT_TRIEN), CHUNG (the overall "
    "item) or MONG_DOI (expectation met, 0–100)."
)
_MEAN_COMMENT = "Mean of the valid values: 1–5 for Likert dimensions, 0–100 for MONG_DOI."
_PCT_SAT_COMMENT = "100 × (#4 + #5) / #valid answers; NULL for MONG_DOI."
_PCT_DIS_COMMENT = "100 × (#1 + #2) / #valid answers; NULL for MONG_DOI."
_N_RESP_COMMENT = "Responses with at least one valid answer in this scope and dimension."
_N_ANS_COMMENT = "Valid answers pooled over the dimension's items."

mart_school_dimension = sa.Table(
    "mart_school_dimension",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("school_code", sa.String(), "School.", primary_key=True),
    _col("questionnaire", sa.String(), "Questionnaire code.", primary_key=True),
    _col("dimension", sa.String(), _DIM_COMMENT, primary_key=True),
    _col("n_respondents", sa.Integer(), _N_RESP_COMMENT),
    _col("n_answers", sa.Integer(), _N_ANS_COMMENT),
    _col("mean_score", sa.Float(), _MEAN_COMMENT),
    _col("pct_satisfied", sa.Float(), _PCT_SAT_COMMENT, nullable=True),
    _col("pct_dissatisfied", sa.Float(), _PCT_DIS_COMMENT, nullable=True),
    comment="One row per (campaign, school, questionnaire, dimension) with at least one valid "
    "answer; a dimension pools all answers to its items.",
)

mart_unit_dimension = sa.Table(
    "mart_unit_dimension",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("unit_code", sa.String(), "Reporting unit.", primary_key=True),
    _col("level", sa.String(), "School level (MN, TH, THCS, THPT, GDTX).", primary_key=True),
    _col("questionnaire", sa.String(), "Questionnaire code.", primary_key=True),
    _col("dimension", sa.String(), _DIM_COMMENT, primary_key=True),
    _col("n_schools", sa.Integer(), "Schools with at least one respondent in this row's scope."),
    _col("n_respondents", sa.Integer(), _N_RESP_COMMENT),
    _col("n_answers", sa.Integer(), _N_ANS_COMMENT),
    _col("mean_score", sa.Float(), _MEAN_COMMENT),
    _col("pct_satisfied", sa.Float(), _PCT_SAT_COMMENT, nullable=True),
    _col("pct_dissatisfied", sa.Float(), _PCT_DIS_COMMENT, nullable=True),
    comment="One row per (campaign, unit, level, questionnaire, dimension): answers of the "
    "unit's schools of that level pooled (unweighted).",
)

mart_unit_question = sa.Table(
    "mart_unit_question",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("unit_code", sa.String(), "Reporting unit.", primary_key=True),
    _col("level", sa.String(), "School level.", primary_key=True),
    _col("questionnaire", sa.String(), "Questionnaire code.", primary_key=True),
    _col("question_code", sa.String(), "Likert item, including CHUNG.", primary_key=True),
    _col("n_answers", sa.Integer(), "Valid answers (1–5)."),
    _col("n_1", sa.Integer(), "Answers 1 (Rất không hài lòng)."),
    _col("n_2", sa.Integer(), "Answers 2 (Không hài lòng)."),
    _col("n_3", sa.Integer(), "Answers 3 (Bình thường)."),
    _col("n_4", sa.Integer(), "Answers 4 (Hài lòng)."),
    _col("n_5", sa.Integer(), "Answers 5 (Rất hài lòng)."),
    _col("mean_score", sa.Float(), "Mean of the 1–5 answers."),
    _col("pct_satisfied", sa.Float(), "100 × (n_4 + n_5) / n_answers."),
    comment="One row per (campaign, unit, level, questionnaire, Likert item) with at least one "
    "valid answer.",
)

mart_papi = sa.Table(
    "mart_papi",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("scope", sa.String(), "school | unit | province.", primary_key=True),
    _col(
        "scope_code",
        sa.String(),
        "school_code, unit_code, or the campaign's province_code.",
        primary_key=True,
    ),
    _col(
        "indicator",
        sa.String(),
        "PAPI indicator (yes/no item code, e.g. KIEN_CO).",
        primary_key=True,
    ),
    _col("n_answers", sa.Integer(), "Valid answers (Có or Không)."),
    _col("pct_yes", sa.Float(), "100 × #Có / n_answers."),
    comment="One row per (campaign, scope, scope_code, indicator) of the papi questionnaires.",
)

mart_service_ranking = sa.Table(
    "mart_service_ranking",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("unit_code", sa.String(), "Reporting unit the ranking is within.", primary_key=True),
    _col(
        "service", sa.Text(), "Service name as submitted (normalised by parse).", primary_key=True
    ),
    _col("school_code", sa.String(), "School providing the service.", primary_key=True),
    _col(
        "total_points",
        sa.Float(),
        "Sum over criteria C1..C8 of the criterion's points (0–80); a criterion scored on "
        "several rows for the same service is averaged first.",
    ),
    _col("rank", sa.Integer(), "1 = highest total within (unit, service); ties share a rank."),
    comment="One row per (campaign, unit, service, school) of the service_review questionnaires.",
)

mart_completeness = sa.Table(
    "mart_completeness",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("school_code", sa.String(), "School.", primary_key=True),
    _col("questionnaire", sa.String(), "Questionnaire code.", primary_key=True),
    _col(
        "status",
        sa.String(),
        "failed (the latest ledger row of one of its sources failed) | submitted (valid data) | "
        "late (valid data, every contributing source modified after the deadline) | pending (no "
        "valid data, deadline not passed) | missing (no valid data, deadline passed).",
    ),
    _col("n_valid", sa.Integer(), "Responses with at least one valid answer."),
    _col("n_rejected", sa.Integer(), "Quarantine rows of its sources."),
    _col(
        "last_loaded_at",
        sa.DateTime(),
        "Latest successful load of one of its sources.",
        nullable=True,
    ),
    comment="One row per expected (campaign, school, questionnaire): every registered source's "
    "pair plus every school × required questionnaire of its level.",
)

alerts = sa.Table(
    "alerts",
    metadata,
    _col("alert_id", sa.Integer(), "Surrogate key.", primary_key=True, autoincrement=True),
    _col("campaign_id", sa.String(), "Campaign.", _campaign_fk()),
    _col("rule", sa.String(), "Rule name, e.g. pct_satisfied_red."),
    _col("severity", sa.String(), "red | amber | info."),
    _col("scope", sa.String(), "school | unit | province."),
    _col("scope_code", sa.String(), "school_code, unit_code or province_code."),
    _col(
        "subject",
        sa.String(),
        "What in the scope it concerns, e.g. 'CMHS_TH/CSVC'; '' if the whole scope.",
        server_default="",
    ),
    _col("value", sa.Float(), "Observed value when last evaluated.", nullable=True),
    _col("threshold", sa.Float(), "Threshold the value was compared with.", nullable=True),
    _col("status", sa.String(), "open | acknowledged | resolved."),
    _col("first_seen_at", sa.DateTime(), "First run that raised it, campaign local time."),
    _col("last_seen_at", sa.DateTime(), "Latest run in which the condition held."),
    _col(
        "note",
        sa.Text(),
        "The officer's latest note (acknowledging, resolving or noting); every note is kept in "
        "alert_event.",
        nullable=True,
    ),
    sa.UniqueConstraint("campaign_id", "rule", "scope", "scope_code", "subject"),
    comment="One row per alert condition (campaign, rule, scope, scope_code, subject), upserted "
    "by each run with its lifecycle; never duplicated across runs.",
)

#: alert_event.action values: an officer's (ack, resolve, note) and a night's (reopen: a
#: resolved alert's condition holds again; worsen: an acknowledged alert got more severe and is
#: open again; clear: the condition no longer holds and the alert is resolved).
ALERT_ACTIONS = ("ack", "resolve", "note", "reopen", "worsen", "clear")

alert_event = sa.Table(
    "alert_event",
    metadata,
    _col(
        "event_id",
        sa.Integer(),
        "Surrogate key; orders events of the same time.",
        primary_key=True,
        autoincrement=True,
    ),
    _col(
        "alert_id", sa.Integer(), "Alert the event happened to.", sa.ForeignKey("alerts.alert_id")
    ),
    _col("at", sa.DateTime(), "When, campaign local time (as every stored time of the campaign)."),
    _col(
        "action",
        sa.String(),
        "ack | resolve | note (an officer's) | reopen | worsen | clear (a night's).",
    ),
    _col(
        "actor",
        sa.String(),
        "Who: the officer's --by name or operating-system user; 'khaosat' for a night's run.",
        pii=True,
    ),
    _col(
        "note", sa.Text(), "The officer's note; for a night's event, what changed.", nullable=True
    ),
    sa.Index(None, "alert_id", "at"),
    comment="One row per change of an alert by an officer or a night, never updated or deleted: "
    "the alert's history. Alerts changed before this table existed have only their latest note "
    "(alerts.note).",
)

#: The mart tables rebuilt by warehouse.marts.rebuild_marts (alerts is not among them).
MART_TABLES = (
    mart_school_dimension,
    mart_unit_dimension,
    mart_unit_question,
    mart_papi,
    mart_service_ranking,
    mart_completeness,
)

# Comment mart (warehouse.comments), rebuilt by each publish from response.comment and the
# codebook (flows.comments), not by rebuild_marts.

mart_comment_theme = sa.Table(
    "mart_comment_theme",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("scope", sa.String(), "school | unit | province.", primary_key=True),
    _col(
        "scope_code",
        sa.String(),
        "school_code, unit_code, or the campaign's province_code.",
        primary_key=True,
    ),
    _col("questionnaire", sa.String(), "Questionnaire code.", primary_key=True),
    _col("theme", sa.String(), "Codebook theme code; 'khac': matches none.", primary_key=True),
    _col("label", sa.Text(), "The theme in Vietnamese, as the codebook names it."),
    _col(
        "dimension",
        sa.String(),
        "Dimension (tiêu chí) the theme belongs to; NULL for a cross-cutting theme.",
        nullable=True,
    ),
    _col("n_comments", sa.Integer(), "Respondents whose comment is about the theme."),
    _col(
        "n_respondents",
        sa.Integer(),
        "Responses of the scope and questionnaire, whether they commented or not.",
    ),
    comment="One row per (campaign, scope, scope_code, questionnaire, theme) with at least one "
    "comment; a comment about several themes counts in each.",
)

mart_comment_quote = sa.Table(
    "mart_comment_quote",
    metadata,
    _col("campaign_id", sa.String(), "Campaign.", primary_key=True),
    _col("scope", sa.String(), "unit | province.", primary_key=True),
    _col("scope_code", sa.String(), "unit_code or the campaign's province_code.", primary_key=True),
    _col("questionnaire", sa.String(), "Questionnaire code.", primary_key=True),
    _col("theme", sa.String(), "Codebook theme code, or 'khac'.", primary_key=True),
    _col("rank", sa.Integer(), "1..3: the order to show the quotes in.", primary_key=True),
    _col(
        "text",
        sa.Text(),
        "The comment, e-mails, phone numbers and names masked (flows.privacy), cut at about "
        "300 characters; only from scopes and schools of 10 respondents or more.",
    ),
    comment="One row per quote shown for a (campaign, scope, scope_code, questionnaire, theme): "
    "up to three, chosen for length and variety.",
)

#: The comment mart's tables (warehouse.comments), rebuilt together.
COMMENT_MART_TABLES = (mart_comment_theme, mart_comment_quote)

# --------------------------------------------------------------------------------------------
# Run lock (warehouse.lock): one run per campaign at a time, across processes and machines.
# --------------------------------------------------------------------------------------------

run_lock = sa.Table(
    "run_lock",
    metadata,
    _col(
        "campaign_id",
        sa.String(),
        "Campaign being consolidated (not a foreign key: a first run takes the lock before it "
        "registers the campaign).",
        primary_key=True,
    ),
    _col("run_id", sa.String(), "Run holding the lock (run.run_id)."),
    _col("holder", sa.String(), "host:pid of the process holding the lock."),
    _col("acquired_at", sa.DateTime(), "When the holder took the lock, campaign local time."),
    _col(
        "heartbeat_at",
        sa.DateTime(),
        "Last sign of life of the holder, campaign local time; a lock without one for longer "
        "than the stale timeout is taken over.",
    ),
    comment="One row per campaign with a run in progress: inserted when the run starts, deleted "
    "when it ends; a row left behind by a killed run is taken over by the next one.",
)
