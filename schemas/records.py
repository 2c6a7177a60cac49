"""Plain records passed between the steps of the nightly flow.

Each step takes and returns these, so steps can be tested alone with hand-made values and the
flow stays a short list of named steps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

#: A cell value as read from a workbook or CSV (calamine's Python types; CSV gives str).
Cell = str | int | float | bool | dt.datetime | dt.date | dt.time | dt.timedelta | None

#: Columns of every rejection frame (parse problems, validation failures, quarantine rows).
#: scope: "value" (one answer), "response" (a whole row), "source" (the whole file or sheet).
REJECTION_COLUMNS = [
    "scope",
    "sheet",
    "row",
    "col",
    "question_code",
    "raw_value",
    "rule",
    "reason",
    "response_no",
]


#: School levels (DOMAIN.md), the ``level`` of schools.csv and of questionnaires: Mầm non,
#: Tiểu học, THCS, THPT, and the GDTX centres (which use the THPT forms).
SCHOOL_LEVELS = ("MN", "TH", "THCS", "THPT", "GDTX")


@dataclass(frozen=True)
class School:
    """One row of schools.csv."""

    code: str
    name: str
    level: str
    unit_code: str
    unit_name: str
    enrollment: int | None = None


@dataclass(frozen=True)
class Source:
    """One row of sources.csv: where one school's answers to one questionnaire come from."""

    school_code: str
    questionnaire: str
    kind: str  # excel | csv | gsheet (folder | drive: a row that discovers sources)
    location: str  # as written in sources.csv, or the discovered file's path
    #: for excel/csv, the resolved file path; None for gsheet.
    path: Path | None = None
    #: the `#name` suffix of location: worksheet title (gsheet) or sheet name (excel).
    worksheet: str | None = None
    #: for a source discovered in a folder or drive row of sources.csv, that row's location
    #: (``submissions/#{school_code}_*.xlsx``); None for a source listed on its own row.
    found_in: str | None = None

    @property
    def key(self) -> str:
        """Natural key of the source within a campaign."""
        return f"{self.school_code}|{self.questionnaire}|{self.location}"

    @property
    def label(self) -> str:
        """How messages name the source: school and file or sheet."""
        return f"{self.school_code} {self.location}"


@dataclass(frozen=True)
class Found:
    """A file found in a folder source (a shared folder or a Google Drive folder), before it is
    placed with a school."""

    name: str  # its path under the folder, "/"-separated: what the officer sees
    location: str  # how to fetch it: a path relative to sources.csv, or a Drive file id
    kind: str  # excel | csv | gsheet: how it is read
    modified: dt.datetime | None  # time zone aware
    checksum: str | None = None  # Drive's md5Checksum; None for a local file or a Google Sheet


@dataclass(frozen=True)
class Fetched:
    """A submission as fetched and archived, before parsing."""

    source: Source
    content: bytes
    fingerprint: str  # sha256 hex of content
    archive_path: Path
    filename: str  # display name (file name, or spreadsheet title / worksheet)
    modified_at: dt.datetime | None = None  # naive, campaign local time
    revision: str | None = None


@dataclass(frozen=True)
class Table:
    """One sheet of a submission as read: its name and cell values, row-major, 0-based."""

    name: str
    rows: list[list[Cell]]
    #: what reading changed in a cell, to tell the school: (row, col) 0-based → what was done
    #: (control characters dropped from a CSV cell).
    notes: dict[tuple[int, int], str] = field(default_factory=dict)


@dataclass
class Parsed:
    """One sheet parsed against its questionnaire into tidy rows.

    responses: one row per data row kept: response_no (int, 1-based in the sheet's order),
        row (1-based sheet row), submitted_at (datetime64, NaT when absent), respondent_hash,
        service (service_review only), and background/comment columns by item code (text kind).
    answers: one row per non-empty scored cell: response_no, question_code, kind, value (float;
        NaN when the raw text could not be normalised), raw (str), row, col (1-based).
    rejections: REJECTION_COLUMNS rows found while parsing (duplicates, unreadable timestamps).
    """

    questionnaire: str
    sheet: str
    header_row: int
    #: question code -> header text as found in the sheet.
    columns: dict[str, str]
    unknown_columns: list[str]
    missing_questions: list[str]
    responses: pd.DataFrame
    answers: pd.DataFrame
    rejections: pd.DataFrame
    n_rows_read: int = 0
    #: header texts dropped because they hold personal data (name, phone, e-mail).
    personal_columns: list[str] = field(default_factory=list)
    #: template drift: question code -> the header the sheet uses instead of the form's words.
    renamed_questions: dict[str, str] = field(default_factory=dict)
    #: unknown columns that are probably a missing question renamed: column letter -> code.
    likely_renamed: dict[str, str] = field(default_factory=dict)


class SourceError(Exception):
    """A source that cannot be used at all; the message is one line naming what and where."""


@dataclass
class SourceOutcome:
    """What a run did with one source: what the per-source table and the ledger show.

    status: loaded | unchanged | failed | absent, or stopped: the process reading or loading
    it died (the machine's fault); it was not judged, has no ledger row for the run and is tried
    again on the next run.
    """

    source: Source
    status: str
    message: str = ""
    filename: str = ""
    n_rows_read: int = 0
    n_responses: int = 0
    n_rejected: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    missing_questions: list[str] = field(default_factory=list)
    #: question code -> the header the sheet uses instead of the form's wording.
    renamed_questions: dict[str, str] = field(default_factory=dict)
    #: unknown columns that are probably a missing question renamed: column letter -> code.
    likely_renamed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def drift(self) -> str:
        """Template drift in a few words: questions renamed, columns added, questions missing,
        and which added column is probably which missing question ("column E is probably
        TC1")."""
        parts = [
            f"{len(self.renamed_questions)} renamed" if self.renamed_questions else "",
            f"{len(self.unknown_columns)} added" if self.unknown_columns else "",
            f"{len(self.missing_questions)} missing" if self.missing_questions else "",
        ]
        text = ", ".join(p for p in parts if p)
        if self.likely_renamed:
            text += ": " + ", ".join(
                f"column {letter} is probably {code}"
                for letter, code in self.likely_renamed.items()
            )
        return text


@dataclass
class RunSummary:
    """What a run did: one outcome per source, and where its outputs are."""

    run_id: str
    campaign_id: str
    outcomes: list[SourceOutcome] = field(default_factory=list)
    workbooks: list[Path] = field(default_factory=list)
    #: one workbook per school with something to fix (output/feedback/<school>.xlsx).
    feedback: list[Path] = field(default_factory=list)
    #: False when nothing the outputs depend on changed, so marts, alerts and workbooks were
    #: left as the last run published them (workbooks and feedback are then empty).
    published: bool = True
    warehouse_url: str = ""

    def count(self, status: str) -> int:
        """How many sources ended with ``status``."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0: every source loaded or unchanged; 1: a source failed; 3: only absent files; 5: the
        machine stopped a source's process (whatever else happened)."""
        if self.count("stopped"):
            return 5
        if self.count("failed"):
            return 1
        if self.count("absent"):
            return 3
        return 0


@lru_cache(maxsize=1024)
def column_letter(col: int) -> str:
    """Spreadsheet column letters of a 1-based column number: 1 -> A, 27 -> AA."""
    letters = ""
    while col > 0:
        col, rem = divmod(col - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def cell_address(row: int | None, col: int | None) -> str | None:
    """A1-style address of a 1-based (row, col), e.g. (12, 4) -> 'D12'; None if either is."""
    if row is None or col is None:
        return None
    return f"{column_letter(col)}{row}"
