"""The blank Excel form a school fills in: ``khaosat template QUESTIONNAIRE``.

One data-entry sheet ("Nhập phiếu") whose header row holds each item's canonical wording, so
``flows.parse`` maps every column without guessing, and a "Hướng dẫn" sheet explaining how to fill
it. Every answer cell of a scored item has a dropdown (data validation) with the canonical
labels: the five Likert labels, Có/Không, or the review levels Tốt/Khá/Trung bình/Yếu/Kém; the
0–100 expectation item accepts a number from 0 to 100. The service review form (DVGD_8TC) is one
row per service.

Only the questionnaire's own items are columns: no name, phone or e-mail column is offered, and
the form has no timestamp column, since typed-in paper forms have none (parse then never treats
two identical forms as duplicates, which is right for paper).
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from flows.parse.header import match_headers
from flows.publish.labels import LIKERT_LABELS
from flows.publish.xlsx import (
    BOLD,
    BOX,
    GROUP_FILL,
    HEADER_FILL,
    TITLE,
    WRAP,
    WRAP_CENTER,
    print_setup,
    save_workbook,
    write_cell,
)
from schemas.questionnaire import Item, Questionnaire
from schemas.records import column_letter

FORM_SHEET = "Nhập phiếu"
GUIDE_SHEET = "Hướng dẫn"
#: 1-based row of the header (item wording); rows above are the title block and the dimension
#: group titles, which parse skips as it looks for the row that matches the most items.
HEADER_ROW = 6
#: Rows offered for answers: a school's forms (hundreds of parents) or its services (a dozen).
DEFAULT_ROWS = {"satisfaction": 500, "papi": 500, "service_review": 50}

YESNO_LABELS = ("Có", "Không")
#: Service review levels and their points (DOMAIN.md).
REVIEW_LEVELS: dict[str, int] = {"Tốt": 10, "Khá": 7, "Trung bình": 5, "Yếu": 3, "Kém": 0}

#: Dropdown choices per answer kind (percent is a number rule, text is free).
CHOICES: dict[str, tuple[str, ...]] = {
    "likert": tuple(LIKERT_LABELS.values()),
    "yesno": YESNO_LABELS,
    "level": tuple(REVIEW_LEVELS),
}
KIND_LABELS = {
    "likert": "Chọn một mức trong danh sách",
    "yesno": "Chọn Có hoặc Không",
    "level": "Chọn một mức trong danh sách",
    "percent": "Nhập một số từ 0 đến 100",
    "text": "Ghi chữ (không bắt buộc)",
}
#: Service groups named in DOMAIN.md, shown as examples in the instructions.
SERVICE_EXAMPLES = (
    ("Theo quy định", "học phí, trông giữ xe, bảo hiểm y tế, học nghề"),
    (
        "Theo thỏa thuận",
        "bán trú, câu lạc bộ, dạy tăng cường ngoại ngữ, đồng phục, nước uống",
    ),
    ("Tự nguyện", "tài trợ, quỹ Đoàn/Đội, quỹ Ban đại diện cha mẹ học sinh"),
)


def form_items(questionnaire: Questionnaire) -> list[Item]:
    """The items that are columns of the form, in order: the service first on a service review
    (its rows are services), then the questionnaire's order."""
    items = list(questionnaire.items)
    if questionnaire.service_item:
        service = questionnaire.item(questionnaire.service_item)
        items = [service, *(i for i in items if i is not service)]
    return items


def form_headers(questionnaire: Questionnaire) -> list[str]:
    """The header texts: each item's wording, checked against ``flows.parse``'s own header
    matching; an item whose wording alone would be read as another item (or none) is headed
    "CODE. wording", which parse reads by its code."""
    items = form_items(questionnaire)
    headers = [i.text for i in items]
    matched = match_headers(headers, questionnaire).items
    for col, item in enumerate(items):
        if matched.get(col) != item.code:
            headers[col] = f"{item.code}. {item.text}"
    return headers


def write_template(questionnaire: Questionnaire, path: Path, *, rows: int | None = None) -> Path:
    """Write the blank form of ``questionnaire`` to ``path`` (xlsx) and return the path.

    ``rows`` is the number of answer rows with dropdowns (default per questionnaire kind:
    :data:`DEFAULT_ROWS`). The same questionnaire always gives the same bytes.
    """
    n_rows = rows if rows is not None else DEFAULT_ROWS.get(questionnaire.kind, 500)
    wb = Workbook()
    ws = wb.worksheets[0]
    ws.title = FORM_SHEET
    _write_form(ws, questionnaire, n_rows)
    _write_guide(wb.create_sheet(GUIDE_SHEET), questionnaire, n_rows)
    wb.active = 0
    wb.properties.title = f"{questionnaire.name} ({questionnaire.code})"
    return save_workbook(wb, path)


def _write_form(ws: Worksheet, questionnaire: Questionnaire, n_rows: int) -> None:
    """The data-entry sheet: title block, dimension row, header row, numbered answer rows."""
    items = form_items(questionnaire)
    width = 1 + len(items)
    _write_form_title(ws, questionnaire, width)
    _write_dimension_row(ws, questionnaire, items, width)
    first, last = HEADER_ROW + 1, HEADER_ROW + n_rows
    _write_header_and_numbers(ws, form_headers(questionnaire), first, last)
    _write_answer_columns(ws, items, first, last)
    ws.freeze_panes = ws.cell(row=first, column=2)
    _form_page_setup(ws)


def _write_form_title(ws: Worksheet, questionnaire: Questionnaire, width: int) -> None:
    """Rows 1-4: the questionnaire's name, code and version, the school, the instruction."""
    unit = "dịch vụ" if questionnaire.kind == "service_review" else "phiếu"
    write_cell(ws, 1, 1, questionnaire.name.upper(), font=TITLE)
    write_cell(
        ws,
        2,
        1,
        f"Mẫu phiếu: {questionnaire.code} · phiên bản {questionnaire.version} · "
        f"người trả lời: {questionnaire.respondent}",
    )
    write_cell(ws, 3, 1, "Trường: ……………………………………    Mã trường: ……………", font=BOLD)
    write_cell(
        ws,
        4,
        1,
        f"Mỗi {unit} ghi một dòng; chọn câu trả lời trong danh sách; không ghi họ tên, số điện "
        f"thoại, thư điện tử. Xem trang “{GUIDE_SHEET}”.",
    )
    for row in range(1, 5):
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=min(width, 12))
    # A merged row does not grow for its font: room for the marks above Vietnamese capitals.
    ws.row_dimensions[1].height = 24


def _write_dimension_row(
    ws: Worksheet, questionnaire: Questionnaire, items: list[Item], width: int
) -> None:
    """The row above the header: the dimension each run of Likert columns belongs to, as on
    the paper form."""
    group_row = HEADER_ROW - 1
    col = 2
    while col <= width:
        item = items[col - 2]
        end = col
        if item.dimension is not None:
            while end + 1 <= width and items[end - 1].dimension == item.dimension:
                end += 1
            title = questionnaire.dimensions.get(item.dimension, item.dimension)
            cell = write_cell(ws, group_row, col, title, font=BOLD)
            cell.alignment = WRAP_CENTER
            for group_col in range(col, end + 1):
                ws.cell(row=group_row, column=group_col).fill = GROUP_FILL
                ws.cell(row=group_row, column=group_col).border = BOX
            if end > col:
                ws.merge_cells(
                    start_row=group_row, start_column=col, end_row=group_row, end_column=end
                )
        col = end + 1
    ws.row_dimensions[group_row].height = 30


def _write_header_and_numbers(ws: Worksheet, headers: list[str], first: int, last: int) -> None:
    """The header row (STT, then each item's header) and the numbered answer rows."""
    for col, text in enumerate(["STT", *headers], start=1):
        cell = write_cell(ws, HEADER_ROW, col, text, font=BOLD)
        cell.fill = HEADER_FILL
        cell.alignment = WRAP_CENTER
        cell.border = BOX
    ws.row_dimensions[HEADER_ROW].height = 120
    ws.column_dimensions["A"].width = 6
    for row in range(first, last + 1):
        # A numbered row holds no answer until someone types one: parse skips it ("STT" is a
        # column it knows to ignore), so unused rows cost nothing.
        write_cell(ws, row, 1, row - HEADER_ROW).border = BOX


def _write_answer_columns(ws: Worksheet, items: list[Item], first: int, last: int) -> None:
    """Each item's answer column: its width, its dropdown or number rule, borders and format."""
    validations: dict[str, DataValidation] = {}
    for col, item in enumerate(items, start=2):
        letter = column_letter(col)
        ws.column_dimensions[letter].width = _width(item)
        validation = validations.get(item.kind)
        if validation is None and item.kind != "text":
            validation = validations[item.kind] = _validation(item.kind)
            ws.add_data_validation(validation)
        if validation is not None:
            validation.add(f"{letter}{first}:{letter}{last}")
        for row in range(first, last + 1):
            cell = ws.cell(row=row, column=col)
            cell.border = BOX
            # Text answers stay text ("6A", "01"), never a number or a date.
            cell.number_format = "@" if item.kind == "text" else "General"


def _form_page_setup(ws: Worksheet) -> None:
    """Print setup of the form: one A4 landscape page wide (answers are short: the columns are
    narrow and the question headers wrap), the header rows on every page."""
    print_setup(ws, (HEADER_ROW - 1, HEADER_ROW), None, landscape=True)


def _width(item: Item) -> float:
    if item.kind == "text":
        return 24 if item.code in ("Y_KIEN", "DICH_VU") or "DICH_VU" in item.code else 12
    return 12


def _validation(kind: str) -> DataValidation:
    """The rule every answer cell of ``kind`` gets; blank is always allowed (no answer)."""
    if kind == "percent":
        dv = DataValidation(type="decimal", operator="between", formula1="0", formula2="100")
        dv.error = "Nhập một số từ 0 đến 100."
        dv.prompt = "Nhà trường đáp ứng khoảng bao nhiêu % mong đợi (0–100)"
    else:
        choices = CHOICES[kind]
        # An inline list: no helper sheet to hide, and the labels hold no commas.
        dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"')
        dv.error = "Chọn một câu trả lời trong danh sách: " + ", ".join(choices) + "."
        dv.prompt = "Chọn trong danh sách"
    dv.allow_blank = True
    dv.showErrorMessage = True
    dv.showInputMessage = False
    dv.errorTitle = "Câu trả lời không hợp lệ"
    dv.errorStyle = "stop"
    return dv


def _write_guide(ws: Worksheet, questionnaire: Questionnaire, n_rows: int) -> None:
    """The instructions sheet: numbered steps, the review levels' points and service examples
    on a service review, then a table of the form's columns."""
    review = questionnaire.kind == "service_review"
    write_cell(ws, 1, 1, f"HƯỚNG DẪN NHẬP {questionnaire.name.upper()}", font=TITLE)
    ws.row_dimensions[1].height = 24
    row = 2
    for number, text in enumerate(_guide_steps(review, n_rows), start=1):
        row += 1
        write_cell(ws, row, 1, f"{number}. {text}")
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=5)
        ws.cell(row=row, column=1).alignment = WRAP
        ws.row_dimensions[row].height = 30
    if review:
        row = _write_review_help(ws, row)
    _write_column_table(ws, questionnaire, row + 2)
    for letter, column_width in zip("ABCDE", (8, 14, 60, 28, 78), strict=True):
        ws.column_dimensions[letter].width = column_width
    print_setup(ws, None, None)


def _guide_steps(review: bool, n_rows: int) -> list[str]:
    """The numbered instructions of the guide."""
    return [
        f"Nhập trên trang “{FORM_SHEET}”; không sửa, không xóa, không đổi thứ tự dòng tiêu đề "
        f"(dòng {HEADER_ROW}). Có thể thêm cột ghi chú của trường ở bên phải.",
        (
            "Mỗi dịch vụ nhà trường đang thực hiện ghi một dòng: tên dịch vụ, nhóm dịch vụ và "
            "mức đánh giá của 8 tiêu chí."
            if review
            else "Mỗi phiếu trả lời ghi một dòng, theo đúng thứ tự câu hỏi trên phiếu giấy."
        ),
        "Chọn câu trả lời trong danh sách thả xuống của ô; ô để trống nghĩa là không trả lời.",
        f"Biểu mẫu có sẵn {n_rows} dòng; cần thêm thì sao chép một dòng có sẵn xuống dưới để giữ "
        "danh sách chọn.",
        "Không ghi họ tên, số điện thoại, thư điện tử hay địa chỉ của người trả lời: phiếu khảo "
        "sát là ẩn danh.",
        "Lưu tệp dạng Excel (.xlsx) và nộp theo hướng dẫn của Sở/Phòng GDĐT.",
    ]


def _write_review_help(ws: Worksheet, row: int) -> int:
    """Below ``row``: the points of each review level and the service groups' examples;
    returns the last row written."""
    row += 2
    write_cell(ws, row, 1, "Điểm của mỗi mức", font=BOLD)
    for label, points in REVIEW_LEVELS.items():
        row += 1
        write_cell(ws, row, 1, label)
        write_cell(ws, row, 2, points)
    row += 2
    write_cell(ws, row, 1, "Ví dụ dịch vụ theo nhóm", font=BOLD)
    for group, examples in SERVICE_EXAMPLES:
        row += 1
        write_cell(ws, row, 1, group)
        write_cell(ws, row, 2, examples)
    return row


def _write_column_table(ws: Worksheet, questionnaire: Questionnaire, row: int) -> None:
    """From ``row`` on: each form column's letter, code, wording, how to answer, valid values."""
    write_cell(ws, row, 1, "Các cột của biểu mẫu", font=BOLD)
    row += 1
    for col, text in enumerate(
        ("Cột", "Mã", "Nội dung", "Cách trả lời", "Giá trị hợp lệ"), start=1
    ):
        cell = write_cell(ws, row, col, text, font=BOLD)
        cell.fill = HEADER_FILL
        cell.border = BOX
    for form_col, item in enumerate(form_items(questionnaire), start=2):
        row += 1
        choices = CHOICES.get(item.kind)
        valid = "; ".join(choices) if choices else ("0–100" if item.kind == "percent" else "")
        if item.kind == "likert":
            valid = "; ".join(f"{k} {label}" for k, label in LIKERT_LABELS.items())
        values = (column_letter(form_col), item.code, item.text, KIND_LABELS[item.kind], valid)
        for col, value in enumerate(values, start=1):
            cell = write_cell(ws, row, col, value)
            cell.border = BOX
            cell.alignment = WRAP
