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
from warehouse.read_models import Row

_QUESTION_WIDTHS = (8, 44, *([7, 7] * 5), 9, 10, 10, 9)


def _scope_questions(data: CampaignData, scope: Scope) -> dict[tuple[str, str], dict[str, Row]]:
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
    th = data.thresholds
    headers = ["Mã", "Nội dung câu hỏi"]
    for k, label in LIKERT_LABELS.items():
        headers += [f"{k}. {label}", ""]
    headers += ["Tổng số hợp lệ", "Tỷ lệ hài lòng (%)", "Tỷ lệ không hài lòng (%)", "Điểm TB"]
    write_header(ws, top, headers)
    sub = ["", ""] + ["SL", "%"] * 5 + ["", "", "", ""]
    write_header(ws, top + 1, sub)
    for k in range(5):  # each answer level spans its SL and % columns
        merge_cells(ws, top, 3 + 2 * k, top, 4 + 2 * k)
    for col in (1, 2, 13, 14, 15, 16):
        merge_cells(ws, top, col, top + 1, col)
    set_widths(ws, _QUESTION_WIDTHS)
    width = len(headers)
    questions = _scope_questions(data, scope)
    r = top + 1
    first_data = r + 1
    for level, qcode in sorted(questions, key=lambda k: group_key(data, *k)):
        found = questions[(level, qcode)]
        q = data.questionnaires.get(qcode)
        r += 1
        title = f"{LEVEL_LABELS.get(level, level)} · {questionnaire_label(data, qcode)}"
        if q is not None:
            title += f" · {q.name} ({qcode})"
        group_row(ws, r, title, width)
        # Items in the questionnaire's order grouped by its dimensions; anything the mart has
        # that the questionnaire no longer lists goes last under "Khác".
        groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
        listed = set()
        if q is not None:
            for item in q.items:
                if item.kind == "likert":
                    groups[item.dimension or "_OTHER"].append((item.code, item.text))
                    listed.add(item.code)
        for code in sorted(set(found) - listed):
            groups["_OTHER"].append((code, code))
        if all(is_small(row["n_answers"]) for row in found.values()):
            # A page of "<5" says less than one line.
            r += 1
            write_cell(
                ws,
                r,
                1,
                f"Dưới {MIN_RESPONDENTS} người trả lời: số liệu ẩn ({SUPPRESSED}).",
                font=ITALIC,
            )
            continue
        order = sorted(groups, key=lambda d: dimension_key(d, q) if d != "_OTHER" else (99, d))
        for dim in order:
            r += 1
            label = "Khác" if dim == "_OTHER" else dimension_label(data, qcode, dim)
            write_cell(ws, r, 1, label, font=BOLD)
            for code, text in groups[dim]:
                r += 1
                row = found.get(code)
                put(ws, r, 1, code)
                put(ws, r, 2, text, wrap=True)
                n = row["n_answers"] if row else 0
                cells: list[tuple[Any, str]] = []
                for k in range(1, 6):
                    count = row[f"n_{k}"] if row else None
                    pct = 100.0 * count / n if count is not None and n else None
                    cells += [
                        (shown_value(count, n), INT_FORMAT),
                        (shown_value(pct, n), PCT_FORMAT),
                    ]
                dissatisfied = 100.0 * (row["n_1"] + row["n_2"]) / n if row and n else None
                cells += [
                    (shown_value(n, n), INT_FORMAT),
                    (shown_value(row["pct_satisfied"], n) if row else None, PCT_FORMAT),
                    (shown_value(dissatisfied, n), PCT_FORMAT),
                    (shown_value(row["mean_score"], n) if row else None, MEAN_FORMAT),
                ]
                for col, (value, fmt) in enumerate(cells, start=3):
                    put(ws, r, col, value, fmt)
    if r < first_data:
        write_empty(ws, first_data, "Chưa có số liệu theo câu hỏi.")
    else:
        tier_rules(ws, column_range(14, first_data, r), th)
        flag_rule(
            ws, column_range(15, first_data, r), "{c}>=" + f"{th['item_pct_dissatisfied_red']:g}"
        )
        flag_rule(ws, column_range(16, first_data, r), "{c}<" + f"{th['mean_score_red']:g}")
    print_setup(ws, (top, top + 1), f"C{top + 2}")
    return ws
