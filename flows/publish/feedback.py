"""Feedback to schools: one workbook per school that has something to fix in its submissions.

``output/feedback/<school_code>.xlsx`` lists each rejected value or row, each column that
matched no question, each question with no column and each file that could not be used: file,
sheet, cell, the value as found, the reason and how to fix it (``flows.validate.fix_hint`` for
the suites' rules, ``FIX_HINTS`` here for parse and load). A second sheet gives the school's
submission status per questionnaire. Headers are Vietnamese, for the school's data officer.

Raw values and sheet names that look like an e-mail or a phone number are masked
(``flows.privacy``; messages and unknown headers were masked before they were stored); a school
with nothing left to fix loses its old file, so the folder always says what is wrong now.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.utils import column_index_from_string
from openpyxl.worksheet.worksheet import Worksheet

from flows.privacy import mask_personal
from flows.publish.labels import COLUMN_LABELS, reason_label, rule_label
from flows.publish.xlsx import (
    BOLD,
    BOX,
    DATETIME_FORMAT,
    FEEDBACK_HEADER_FILL,
    INT_FORMAT,
    PLAIN,
    TITLE,
    WRAP,
    WRAP_CENTER,
    WRAP_MIDDLE,
    merge_cells,
    print_setup,
    safe_file_part,
    save_workbook,
    set_style,
    write_cell,
)
from flows.validate import fix_hint
from schemas.records import column_letter
from warehouse.read_models import Row, read_feedback_rows, read_feedback_schools
from warehouse.registry import SupersededFile, superseded_files

#: Folder under the output folder that holds the feedback workbooks.
FEEDBACK_DIR = "feedback"

#: Rules that are not in any expectation suite (parse, load, and this module's own rows).
RULE_UNKNOWN_COLUMN = "unknown_column"
RULE_MISSING_QUESTION = "missing_question"
#: A column parse paired with a missing question (flows.parse.header.pair_renamed_columns).
RULE_RENAMED_COLUMN = "renamed_column"
#: A file of a folder source not used: the school has a newer one for the questionnaire.
RULE_SUPERSEDED_FILE = "superseded_file"
FIX_HINTS: dict[str, str] = {
    "source_unusable": "Mở tệp bằng Excel hoặc Google Trang tính để kiểm tra tệp đọc được và "
    "có dữ liệu; lưu đúng định dạng (.xlsx, .xls, .ods hoặc .csv UTF-8) rồi nộp lại.",
    "duplicate_response": "Xóa dòng trùng lặp, chỉ giữ lại một phiếu cho mỗi người trả lời.",
    "unreadable_timestamp": "Sửa ô dấu thời gian thành ngày giờ dạng ngày/tháng/năm giờ:phút "
    "(ví dụ 29/10/2024 9:05), hoặc để trống nếu không có.",
    "control_characters": "Xóa ký tự lạ trong ô (thường do dán từ phần mềm khác) rồi lưu lại "
    "tệp; giá trị đã được dùng sau khi bỏ các ký tự đó.",
    "formula_without_value": "Ô chứa công thức chưa có giá trị: mở tệp bằng Excel, tính lại "
    "(Ctrl+Alt+F9) rồi lưu, hoặc thay công thức bằng giá trị.",
    RULE_UNKNOWN_COLUMN: "Đổi tiêu đề cột cho đúng nội dung câu hỏi trong mẫu phiếu của Sở; nếu "
    "là câu hỏi riêng của trường thì xóa cột trước khi nộp. Không để cột họ tên, email, số "
    "điện thoại trong tệp nộp.",
    RULE_MISSING_QUESTION: "Bổ sung câu hỏi này vào biểu mẫu theo đúng mẫu phiếu của Sở, hoặc "
    "sửa tiêu đề cột cho khớp với nội dung câu hỏi.",
    RULE_SUPERSEDED_FILE: "Mỗi phiếu chỉ để một tệp của trường trong thư mục nộp bài: tệp mới "
    "nhất được dùng. Xóa tệp cũ; nếu tệp cũ mới là tệp đúng, nộp lại tệp đó.",
}
REASON_UNKNOWN_COLUMN = (
    "Cột không khớp với câu hỏi nào của mẫu phiếu; dữ liệu trong cột không được tổng hợp"
)
REASON_MISSING_QUESTION = "Không tìm thấy cột của câu hỏi này trong tệp"

ISSUES_SHEET = "Lỗi cần sửa"
#: The issues table, narrow enough to print one A4 landscape page wide at a readable size:
#: the long texts wrap; the rule's code sits last, narrow, for the data officer.
ISSUES_HEADERS = (
    "STT",
    "Mẫu phiếu",
    "Tệp",
    "Trang tính",
    "Ô",
    "Câu hỏi",
    "Giá trị trong tệp",
    "Lý do",
    "Cách sửa",
    "Loại lỗi (mã)",
)
_ISSUES_WIDTHS = (5, 11, 22, 14, 8, 20, 18, 28, 34, 16)

STATUS_SHEET = "Tình trạng nộp"
STATUS_HEADERS = (
    "Mẫu phiếu",
    "Tên mẫu phiếu",
    "Tình trạng",
    "Số phiếu hợp lệ",
    "Số giá trị bị loại",
    "Lần nạp thành công gần nhất",
)
_STATUS_WIDTHS = (11, 32, 20, 10, 10, 17)
#: A question's wording in the "Câu hỏi" column is cut to this many characters.
_QUESTION_CHARS = 70

#: mart_completeness.status as a school reads it.
STATUS_LABELS = {
    "submitted": "Đã nộp",
    "late": "Nộp sau hạn",
    "pending": "Chưa nộp (còn hạn)",
    "missing": "Chưa nộp (đã hết hạn)",
    "failed": "Tệp lỗi, cần nộp lại",
}


@dataclass(frozen=True)
class Issue:
    """One thing a school must fix: where it is, what was found, why, and how to fix it."""

    questionnaire: str
    file: str
    sheet: str | None
    cell: str | None
    row_number: int | None
    question_code: str | None
    raw_value: str | None
    rule: str
    reason: str
    #: the question's wording in the form, when the issue is about a question.
    question_text: str | None = None

    @property
    def hint(self) -> str:
        """How to fix it (Vietnamese): a renamed column's new header, else the suite's hint for
        its rule, else FIX_HINTS'."""
        if self.rule == RULE_RENAMED_COLUMN and self.cell and self.question_text:
            letters = "".join(ch for ch in self.cell if ch.isalpha())
            return (
                f"Đổi tiêu đề cột {letters} thành «{self.question_text}» (đúng như mẫu phiếu "
                "của Sở) rồi nộp lại; câu trả lời trong cột sẽ được tổng hợp."
            )
        return fix_hint(self.rule) or FIX_HINTS.get(self.rule, "")

    @property
    def place(self) -> str:
        """Where in the sheet: the cell, else the row, else "" (the whole file)."""
        if self.cell and any(ch.isalpha() for ch in self.cell):
            return self.cell
        return f"Dòng {self.row_number}" if self.row_number is not None else ""

    @property
    def question(self) -> str:
        """The question as the school knows it: its code and the start of its wording, or the
        name of a column that is not a question (Dấu thời gian)."""
        code = self.question_code
        if not code:
            return ""
        if code in COLUMN_LABELS:
            return COLUMN_LABELS[code]
        if not self.question_text:
            return code
        text = self.question_text
        if len(text) > _QUESTION_CHARS:
            text = text[: _QUESTION_CHARS - 1].rstrip() + "…"
        return f"{code}: {text}"

    def sort_key(self) -> tuple[Any, ...]:
        """Where the school meets the issue in its file."""
        # Sheet order, as the school will walk through its file: rows, then columns; rows of
        # the whole file (unknown or missing columns, unusable file) after the cells.
        column = _column_number(self.cell)
        return (
            self.questionnaire,
            self.file,
            self.sheet or "",
            self.row_number is None,
            self.row_number or 0,
            column is None,
            column or 0,
            self.rule,
            self.question_code or "",
            self.raw_value or "",
        )


@dataclass(frozen=True)
class Submission:
    """One row of mart_completeness for the school."""

    questionnaire: str
    questionnaire_name: str
    status: str
    n_valid: int
    n_rejected: int
    last_loaded_at: dt.datetime | None


@dataclass
class SchoolFeedback:
    """Everything one school's feedback workbook shows."""

    school_code: str
    school_name: str
    campaign_id: str
    campaign_name: str
    issues: list[Issue] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)


def _column_number(cell: str | None) -> int | None:
    if not cell:
        return None
    letters = "".join(ch for ch in cell if ch.isalpha())
    try:
        return column_index_from_string(letters.upper()) if letters else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Reading


def _file_name(kind: str, location: str) -> str:
    # The name the school knows: a file's own name; a Google Sheet by what sources.csv says.
    return location if kind == "gsheet" else PurePath(location).name


def _json_list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except json.JSONDecodeError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def read_feedback(engine: sa.Engine, campaign_id: str) -> list[SchoolFeedback]:
    """One SchoolFeedback per school with at least one issue in an active source, by code.

    Issues: every quarantine row (values, rows, unusable files) and, from each source's latest
    successful load, its unknown columns and missing questions.
    """
    rows = read_feedback_rows(engine, campaign_id)
    texts = rows.question_texts
    issues: dict[str, list[Issue]] = defaultdict(list)
    renamed: set[tuple[str, str, str]] = set()
    for r in rows.quarantine:
        issue = _rejected_issue(r, texts)
        issues[r["school_code"]].append(issue)
        if issue.rule == RULE_RENAMED_COLUMN:
            # The column and the question it pairs are told once, by this row.
            renamed.add((r["school_code"], issue.questionnaire, issue.raw_value or ""))
            renamed.add((r["school_code"], issue.questionnaire, issue.question_code or ""))
    for r in rows.loads:
        found = [
            issue
            for issue in _load_issues(r, texts)
            if (r["school_code"], issue.questionnaire, issue.raw_value or issue.question_code)
            not in renamed
        ]
        if found:  # a school with nothing to fix gets no workbook
            issues[r["school_code"]].extend(found)
    for f in superseded_files(engine, campaign_id):
        issues[f.school_code].append(_superseded_issue(f))
    if not issues:
        return []
    schools = read_feedback_schools(engine, campaign_id, list(issues))
    submissions: dict[str, list[Submission]] = defaultdict(list)
    for r in schools.completeness:
        submissions[r["school_code"]].append(
            Submission(
                questionnaire=r["questionnaire"],
                questionnaire_name=r["questionnaire_name"] or r["questionnaire"],
                status=r["status"],
                n_valid=int(r["n_valid"]),
                n_rejected=int(r["n_rejected"]),
                last_loaded_at=r["last_loaded_at"],
            )
        )
    return [
        SchoolFeedback(
            school_code=code,
            school_name=schools.school_names.get(code) or code,
            campaign_id=campaign_id,
            campaign_name=schools.campaign_name or campaign_id,
            issues=sorted(issues[code], key=Issue.sort_key),
            submissions=sorted(submissions.get(code, []), key=lambda x: x.questionnaire),
        )
        for code in sorted(issues)
    ]


def _rejected_issue(r: Row, texts: dict[tuple[str, str], str]) -> Issue:
    """A quarantine row as an issue."""
    # A failure's message starts with "<school> <location>: " for the run log; the workbook
    # has its own columns for those.
    return Issue(
        questionnaire=r["questionnaire"],
        file=r["file"] or "",
        sheet=mask_personal(r["sheet"]),
        cell=r["cell"],
        row_number=r["row_number"],
        question_code=r["question_code"],
        raw_value=mask_personal(r["raw_value"]),
        rule=r["rule"],
        reason=r["reason"].removeprefix(f"{r['school_code']} {r['location']}: "),
        question_text=texts.get((r["questionnaire"], r["question_code"] or "")),
    )


def _superseded_issue(f: SupersededFile) -> Issue:
    """A file of a folder source not used, its school having a newer one, as an issue."""
    return Issue(
        questionnaire=f.questionnaire,
        file=PurePath(f.location).name,
        sheet=None,
        cell=None,
        row_number=None,
        question_code=None,
        raw_value=None,
        rule=RULE_SUPERSEDED_FILE,
        reason=f.message,
    )


def _load_issues(r: Row, texts: dict[tuple[str, str], str]) -> list[Issue]:
    """The unknown columns and missing questions of a source's latest successful load."""
    name = _file_name(r["kind"], r["location"])
    found = [
        Issue(
            questionnaire=r["questionnaire"],
            file=name,
            sheet=mask_personal(r["sheet"]),
            cell=None,
            row_number=None,
            question_code=None,
            raw_value=mask_personal(header),
            rule=RULE_UNKNOWN_COLUMN,
            reason=REASON_UNKNOWN_COLUMN,
        )
        for header in _json_list(r["unknown_columns"])
    ]
    found += [
        Issue(
            questionnaire=r["questionnaire"],
            file=name,
            sheet=mask_personal(r["sheet"]),
            cell=None,
            row_number=None,
            question_code=code,
            raw_value=None,
            rule=RULE_MISSING_QUESTION,
            reason=REASON_MISSING_QUESTION,
            question_text=texts.get((r["questionnaire"], code)),
        )
        for code in _json_list(r["missing_questions"])
    ]
    return found


# ---------------------------------------------------------------------------------------------
# Writing


def _title(ws: Worksheet, feedback: SchoolFeedback, subtitle: str, width: int) -> int:
    """Title block; returns the header row."""
    write_cell(ws, 1, 1, f"{feedback.school_name} ({feedback.school_code})", font=TITLE)
    ws.row_dimensions[1].height = 22  # room for the marks above Vietnamese capitals
    write_cell(ws, 2, 1, feedback.campaign_name, font=BOLD)
    set_style(write_cell(ws, 3, 1, subtitle, font=PLAIN), alignment=WRAP)
    for r in (1, 2, 3):
        merge_cells(ws, r, 1, r, width)
    return 5


def _header(ws: Worksheet, row: int, headers: Sequence[str], widths: Sequence[int]) -> None:
    for col, (text, width) in enumerate(zip(headers, widths, strict=True), start=1):
        cell = write_cell(ws, row, col, text, font=BOLD)
        set_style(cell, fill=FEEDBACK_HEADER_FILL, alignment=WRAP_CENTER, border=BOX)
        ws.column_dimensions[column_letter(col)].width = width


def write_issues_sheet(wb: Workbook, feedback: SchoolFeedback) -> Worksheet:
    """Sheet "Lỗi cần sửa": one row per issue, in the order the school meets them in its file."""
    ws = wb.create_sheet(ISSUES_SHEET)
    header_row = _title(
        ws,
        feedback,
        "Các giá trị, dòng, cột hoặc tệp dưới đây chưa được tổng hợp. Vui lòng sửa trong tệp "
        'gốc theo cột "Cách sửa" rồi nộp lại.',
        len(ISSUES_HEADERS),
    )
    _header(ws, header_row, ISSUES_HEADERS, _ISSUES_WIDTHS)
    row = header_row
    for n, issue in enumerate(feedback.issues, start=1):
        row += 1
        values = (
            n,
            issue.questionnaire,
            issue.file,
            issue.sheet,
            issue.place,
            issue.question,
            issue.raw_value,
            reason_label(issue.rule, issue.reason),
            issue.hint,
            # the rule's name, and its code for the data officer
            f"{rule_label(issue.rule)}\n({issue.rule})",
        )
        for col, value in enumerate(values, start=1):
            set_style(write_cell(ws, row, col, value, font=PLAIN), border=BOX, alignment=WRAP)
    if feedback.issues:
        ws.auto_filter.ref = f"A{header_row}:{column_letter(len(ISSUES_HEADERS))}{row}"
    print_setup(ws, (header_row, header_row), f"A{header_row + 1}", landscape=True)
    return ws


def write_status_sheet(wb: Workbook, feedback: SchoolFeedback) -> Worksheet:
    """Sheet "Tình trạng nộp": the school's submission status per questionnaire."""
    ws = wb.create_sheet(STATUS_SHEET)
    header_row = _title(
        ws, feedback, "Tình trạng nộp dữ liệu theo từng mẫu phiếu", len(STATUS_HEADERS)
    )
    _header(ws, header_row, STATUS_HEADERS, _STATUS_WIDTHS)
    row = header_row
    for sub in feedback.submissions:
        row += 1
        values: tuple[tuple[Any, str | None], ...] = (
            (sub.questionnaire, None),
            (sub.questionnaire_name, None),
            (STATUS_LABELS.get(sub.status, sub.status), None),
            (sub.n_valid, INT_FORMAT),
            (sub.n_rejected, INT_FORMAT),
            (sub.last_loaded_at, DATETIME_FORMAT),
        )
        for col, (value, fmt) in enumerate(values, start=1):
            cell = write_cell(ws, row, col, value, number_format=fmt, font=PLAIN)
            set_style(cell, border=BOX, alignment=WRAP_MIDDLE)
    if not feedback.submissions:
        write_cell(ws, header_row + 1, 1, "Chưa có thông tin nộp của trường trong đợt này.")
    print_setup(ws, (header_row, header_row), f"A{header_row + 1}")
    return ws


def build_feedback_workbook(feedback: SchoolFeedback) -> Workbook:
    """The feedback workbook of one school, in memory."""
    wb = Workbook()
    default = wb.active
    write_issues_sheet(wb, feedback)
    write_status_sheet(wb, feedback)
    if default is not None:
        wb.remove(default)
    wb.properties.title = f"Phản hồi dữ liệu khảo sát · {feedback.school_name}"
    return wb


def feedback_path(output_dir: Path, school_code: str) -> Path:
    """``output_dir/feedback/<school_code>.xlsx`` with the code made safe for a file name."""
    return output_dir / FEEDBACK_DIR / f"{safe_file_part(school_code)}.xlsx"


def write_feedback(engine: sa.Engine, campaign_id: str, output_dir: Path) -> list[Path]:
    """Write one feedback workbook per school with something to fix; return their paths.

    Workbooks of schools that now have nothing to fix are deleted from ``output_dir/feedback``
    (every ``*.xlsx`` there that this call did not write: the folder is this step's alone).
    """
    paths = [
        save_workbook(build_feedback_workbook(fb), feedback_path(output_dir, fb.school_code))
        for fb in read_feedback(engine, campaign_id)
    ]
    folder = output_dir / FEEDBACK_DIR
    if folder.is_dir():
        keep = {p.resolve() for p in paths}
        for old in sorted(folder.glob("*.xlsx")):
            if old.resolve() not in keep:
                old.unlink()
    return paths
