"""Sheet "Theo câu hỏi": mart_unit_question per level, items grouped by dimension."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    LEVEL_LABELS,
    LIKERT_LABELS,
    MIN_RESPONDENTS,
    QUESTION_SHEET,
    SUPPRESSED,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    dimension_key,
    dimension_label,
    group_key,
    is_small,
    questionnaire_label,
    shown_value,
)
from flows.publish.workbooks.sheet import (
    flag_rule,
    group_row,
    new_sheet,
    put,
    set_widths,
    tier_rules,
    write_empty,
    write_header,
)
from flows.publish.xlsx import (
    BOLD,
    INT_FORMAT,
    ITALIC,
    MEAN_FORMAT,
    PCT_FORMAT,
    column_range,
    merge_cells,
    print_setup,
    write_cell,
)
from schemas.questionnaire import Questionnaire
from warehouse.read_models import Row

_QUESTION_WIDTHS = (8, 44, *([7, 7] * 5), 9, 10, 10, 9)
#: The group of the items under no dimension of the questionnaire ("Khác").
_OTHER = "_OTHER"


def scope_questions(data: CampaignData, scope: Scope) -> dict[tuple[str, str], dict[str, Row]]:
    """(level, questionnaire) -> question_code -> counts and figures of the scope.

    A unit's rows are its mart_unit_question rows as they are; the province's are the units'
    counts summed, with mean and pct recomputed from the summed counts (the same pooling the
    marts use, so they equal what SQL would give over all answers)."""
    out: dict[tuple[str, str], dict[str, Row]] = defaultdict(dict)
    if not scope.is_province:
        for r in data.lookups.unit_question.get((scope.code,), []):
            out[(r["level"], r["questionnaire"])][r["question_code"]] = r
        return out
    for r in data.unit_question:
        group = out[(r["level"], r["questionnaire"])]
        acc = group.setdefault(
            r["question_code"], {"n_answers": 0, **{f"n_{k}": 0 for k in range(1, 6)}}
        )
        for k in ("n_answers", "n_1", "n_2", "n_3", "n_4", "n_5"):
            acc[k] += int(r[k] or 0)
    for group in out.values():
        for acc in group.values():
            n = acc["n_answers"]
            acc["mean_score"] = sum(k * acc[f"n_{k}"] for k in range(1, 6)) / n if n else None
            acc["pct_satisfied"] = 100.0 * (acc["n_4"] + acc["n_5"]) / n if n else None
    return out


def write_question_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Theo câu hỏi": per level and questionnaire, every Likert item grouped by dimension,
    with the count and % at each answer level, valid total, % satisfied, % dissatisfied, mean."""
    ws, top = new_sheet(
        wb,
        QUESTION_SHEET,
        data,
        scope,
        "SL: số ý kiến; %: tỷ lệ trên tổng số ý kiến hợp lệ của câu hỏi.",
    )
    thresholds = data.thresholds
    width = _write_question_headers(ws, top)
    questions = scope_questions(data, scope)
    row = top + 1
    first_data = row + 1
    for level, qcode in sorted(questions, key=lambda key: group_key(data, *key)):
        row = _write_question_group(ws, data, (level, qcode), questions[(level, qcode)], row, width)
    if row < first_data:
        write_empty(ws, first_data, "Chưa có số liệu theo câu hỏi.")
    else:
        tier_rules(ws, column_range(14, first_data, row), thresholds)
        flag_rule(
            ws,
            column_range(15, first_data, row),
            "{c}>=" + f"{thresholds['item_pct_dissatisfied_red']:g}",
        )
        flag_rule(
            ws, column_range(16, first_data, row), "{c}<" + f"{thresholds['mean_score_red']:g}"
        )
    print_setup(ws, (top, top + 1), f"C{top + 2}")
    return ws


def _write_question_headers(ws: Worksheet, top: int) -> int:
    """The two header rows from ``top`` (each answer level spans its SL and % columns) and the
    column widths; returns the table's width."""
    headers = ["Mã", "Nội dung câu hỏi"]
    for k, label in LIKERT_LABELS.items():
        headers += [f"{k}. {label}", ""]
    headers += ["Tổng số hợp lệ", "Tỷ lệ hài lòng (%)", "Tỷ lệ không hài lòng (%)", "Điểm TB"]
    write_header(ws, top, headers)
    sub = ["", ""] + ["SL", "%"] * 5 + ["", "", "", ""]
    write_header(ws, top + 1, sub)
    for k in range(5):
        merge_cells(ws, top, 3 + 2 * k, top, 4 + 2 * k)
    for col in (1, 2, 13, 14, 15, 16):
        merge_cells(ws, top, col, top + 1, col)
    set_widths(ws, _QUESTION_WIDTHS)
    return len(headers)


def _write_question_group(
    ws: Worksheet,
    data: CampaignData,
    key: tuple[str, str],
    found: dict[str, Row],
    row: int,
    width: int,
) -> int:
    """Below ``row``, one (level, questionnaire) group: its title row, then its items under
    their dimensions, or one line when every item is hidden; returns the last row written."""
    level, qcode = key
    questionnaire = data.questionnaires.get(qcode)
    row += 1
    title = f"{LEVEL_LABELS.get(level, level)} · {questionnaire_label(data, qcode)}"
    if questionnaire is not None:
        title += f" · {questionnaire.name} ({qcode})"
    group_row(ws, row, title, width)
    groups = _items_by_dimension(questionnaire, found)
    if all(is_small(found_row["n_answers"]) for found_row in found.values()):
        # A page of "<5" says less than one line.
        row += 1
        write_cell(
            ws,
            row,
            1,
            f"Dưới {MIN_RESPONDENTS} người trả lời: số liệu ẩn ({SUPPRESSED}).",
            font=ITALIC,
        )
        return row
    order = sorted(
        groups,
        key=lambda dim: dimension_key(dim, questionnaire) if dim != _OTHER else (99, dim),
    )
    for dim in order:
        row += 1
        label = "Khác" if dim == _OTHER else dimension_label(data, qcode, dim)
        write_cell(ws, row, 1, label, font=BOLD)
        for code, text in groups[dim]:
            row += 1
            put(ws, row, 1, code)
            put(ws, row, 2, text, wrap=True)
            for col, (value, fmt) in enumerate(_question_cells(found.get(code)), start=3):
                put(ws, row, col, value, fmt)
    return row


def _items_by_dimension(
    questionnaire: Questionnaire | None, found: dict[str, Row]
) -> dict[str, list[tuple[str, str]]]:
    """Dimension -> (code, text) of its Likert items, in the questionnaire's order; anything
    the mart has that the questionnaire no longer lists goes last under :data:`_OTHER`."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    listed = set()
    if questionnaire is not None:
        for item in questionnaire.items:
            if item.kind == "likert":
                groups[item.dimension or _OTHER].append((item.code, item.text))
                listed.add(item.code)
    for code in sorted(set(found) - listed):
        groups[_OTHER].append((code, code))
    return groups


def _question_cells(found: Row | None) -> list[tuple[Any, str]]:
    """One item's figures with their number formats: count and % at each answer level, valid
    total, % satisfied, % dissatisfied, mean (hidden under the minimum of respondents)."""
    n = found["n_answers"] if found else 0
    cells: list[tuple[Any, str]] = []
    for k in range(1, 6):
        count = found[f"n_{k}"] if found else None
        pct = 100.0 * count / n if count is not None and n else None
        cells += [
            (shown_value(count, n), INT_FORMAT),
            (shown_value(pct, n), PCT_FORMAT),
        ]
    dissatisfied = 100.0 * (found["n_1"] + found["n_2"]) / n if found and n else None
    return [
        *cells,
        (shown_value(n, n), INT_FORMAT),
        (shown_value(found["pct_satisfied"], n) if found else None, PCT_FORMAT),
        (shown_value(dissatisfied, n), PCT_FORMAT),
        (shown_value(found["mean_score"], n) if found else None, MEAN_FORMAT),
    ]
