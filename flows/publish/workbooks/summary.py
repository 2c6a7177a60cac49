"""Sheet "Tổng hợp": where the scope stands on one page: submissions, alerts, the
satisfaction rate per level and questionnaire, a dimension × group matrix and its charts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.label import DataLabelList
from openpyxl.chart.marker import DataPoint
from openpyxl.chart.text import RichText, Text
from openpyxl.chart.title import Title
from openpyxl.drawing.text import (
    CharacterProperties,
    Paragraph,
    ParagraphProperties,
    RegularTextRun,
)
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    ALERT_SHEET,
    DIMENSION_SHORT,
    FIVE_MEAN_LABEL,
    LEVEL_LABELS,
    MIN_RESPONDENTS,
    PAPI_SHEET,
    SERVICE_SHEET,
    SUMMARY_SHEET,
    SUPPRESSED,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    by_group,
    five_mean,
    group_key,
    is_satisfaction,
    questionnaire_label,
    scope_alerts,
    scope_dims,
    shown_value,
    summarise,
    tier_of,
    tier_text,
)
from flows.publish.workbooks.sheet import (
    flag_rule,
    new_sheet,
    put,
    set_widths,
    tier_rules,
    write_empty,
    write_header,
    write_section,
)
from flows.publish.xlsx import (
    BOLD,
    BOX,
    INT_FORMAT,
    ITALIC,
    MEAN_FORMAT,
    PCT_FORMAT,
    TIER_STYLE,
    WRAP,
    column_range,
    merge_cells,
    print_setup,
    set_style,
    write_cell,
)
from schemas.questionnaire import DIMENSIONS
from schemas.records import column_letter

SUMMARY_HEADERS = (
    "Cấp học",
    "Phiếu",
    "Số trường phải nộp",
    "Đã nộp",
    "Trong đó nộp muộn",
    "Chưa nộp",
    "Lỗi tệp",
    "Số phiếu hợp lệ",
    "Tỷ lệ hài lòng (%) bình quân 5 tiêu chí",
    "Tỷ lệ hài lòng chung (%) (câu hỏi chung)",
    "Điểm trung bình bình quân 5 tiêu chí",
    "Mức đáp ứng mong đợi (%)",
    "Đánh giá",
)
_SUMMARY_WIDTHS = (20, 20, 10, 9, 10, 9, 8, 10, 13, 13, 12, 12, 26)
#: Row of the summary table's header (rows above: title block and key lines).
SUMMARY_HEADER_ROW = 9


def write_summary_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Tổng hợp": the scope's state at a glance, for leadership."""
    ws, _ = new_sheet(wb, SUMMARY_SHEET, data, scope)
    th = data.thresholds
    width = len(SUMMARY_HEADERS)
    groups = summarise(data, scope)

    expected = sum(g.n_expected for g in groups)
    submitted = sum(g.n_submitted for g in groups)
    lines = [
        f"Nộp phiếu: {submitted}/{expected} phiếu phải nộp đã nộp "
        f"({sum(g.n_late for g in groups)} nộp muộn); "
        f"{sum(g.n_not_submitted for g in groups)} chưa nộp; "
        f"{sum(g.n_failed for g in groups)} tệp lỗi chưa đọc được.",
    ]
    active = [a for a in scope_alerts(data, scope) if a["status"] != "resolved"]
    by_severity = Counter(a["severity"] for a in active)
    lines.append(
        f"Cảnh báo chưa xử lý: {by_severity.get('red', 0)} mức đỏ, "
        f"{by_severity.get('amber', 0)} mức vàng, {by_severity.get('info', 0)} thông tin "
        f"(xem trang {ALERT_SHEET})."
    )
    rated = [g for g in groups if isinstance(g.pct_five, int | float)]
    reached = sum(g.pct_five >= th["pct_satisfied_amber"] for g in rated)
    lines.append(
        f"Mục tiêu ≥ {th['pct_satisfied_amber']:g}% hài lòng (QĐ 2034/QĐ-BGDĐT): "
        f"{reached}/{len(rated)} nhóm đạt (tỷ lệ bình quân 5 tiêu chí)."
    )
    lines.append(
        f"Màu: xanh ≥ {th['pct_satisfied_amber']:g}%, vàng {th['pct_satisfied_red']:g}–"
        f"{th['pct_satisfied_amber']:g}%, đỏ < {th['pct_satisfied_red']:g}%. Số liệu của nhóm "
        f"dưới {MIN_RESPONDENTS} người trả lời được ẩn ({SUPPRESSED})."
    )
    for i, line in enumerate(lines):
        set_style(write_cell(ws, 4 + i, 1, line, font=BOLD if i < 3 else ITALIC), alignment=WRAP)

    hr = SUMMARY_HEADER_ROW
    write_header(ws, hr, SUMMARY_HEADERS)
    set_widths(ws, _SUMMARY_WIDTHS)
    r = hr
    for g in groups:
        r += 1
        satisfaction = is_satisfaction(data, g.questionnaire)
        verdict = tier_text(g.pct_five, th) if satisfaction else ""
        if not satisfaction:
            kind = data.questionnaires[g.questionnaire].kind
            verdict = f"Xem trang {PAPI_SHEET if kind == 'papi' else SERVICE_SHEET}"
        elif g.pct_five == SUPPRESSED:
            verdict = f"Dưới {MIN_RESPONDENTS} người trả lời: số liệu ẩn"
        elif g.n_responses and g.n_responses < th["min_respondents"]:
            verdict = (verdict + "; " if verdict else "") + f"mẫu nhỏ (< {th['min_respondents']:g})"
        values: list[tuple[Any, str | None]] = [
            (LEVEL_LABELS.get(g.level, g.level), None),
            (questionnaire_label(data, g.questionnaire), None),
            (g.n_expected, INT_FORMAT),
            (g.n_submitted, INT_FORMAT),
            (g.n_late, INT_FORMAT),
            (g.n_not_submitted, INT_FORMAT),
            (g.n_failed, INT_FORMAT),
            (g.n_responses, INT_FORMAT),
            (g.pct_five, PCT_FORMAT),
            (g.pct_chung, PCT_FORMAT),
            (g.mean_five, MEAN_FORMAT),
            (g.expectation, PCT_FORMAT),
            (verdict, None),
        ]
        for col, (value, fmt) in enumerate(values, start=1):
            put(ws, r, col, value, fmt, wrap=col in (1, 2, width))
    if not groups:
        write_empty(ws, hr + 1, "Chưa có số liệu trong đợt khảo sát này.")
        r = hr + 1
    else:
        ws.auto_filter.ref = f"A{hr}:{column_letter(width)}{r}"
        tier_rules(ws, f"I{hr + 1}:J{r}", th)
        flag_rule(ws, column_range(11, hr + 1, r), "{c}<" + f"{th['mean_score_red']:g}")
        flag_rule(ws, column_range(6, hr + 1, r), "{c}>0", "amber")
        flag_rule(ws, column_range(7, hr + 1, r), "{c}>0", "red")
    for i in range(4, 8):  # key lines span the table's width
        merge_cells(ws, i, 1, i, width)
    _matrix_and_charts(ws, r + 2, data, scope)
    # No repeated header rows: later pages hold the matrix and charts, not the table.
    print_setup(ws, None, f"C{hr + 1}")
    return ws


#: Chart grid on "Tổng hợp": columns where each chart of a row starts (about 11 cm apart with
#: the summary's column widths), chart size, sheet rows per chart row, and the rows an A4
#: landscape page holds at the scale that fits the summary's width.
_CHART_COLUMNS = ("A", "E", "K")
_CHARTS_PER_ROW = len(_CHART_COLUMNS)
_CHART_WIDTH_CM = 11.5
_CHART_HEIGHT_CM = 6.5
_CHART_ROWS = 14
_PAGE_ROWS = 44


def _chart_title(text: str) -> Title:
    """A chart title at 11 pt: the default (18 pt in LibreOffice) crowds a small chart."""
    font = CharacterProperties(sz=1100, b=True)
    paragraph = Paragraph(
        pPr=ParagraphProperties(defRPr=font), r=[RegularTextRun(rPr=font, t=text)]
    )
    return Title(tx=Text(rich=RichText(p=[paragraph])), overlay=False)


def _matrix_and_charts(ws: Worksheet, row: int, data: CampaignData, scope: Scope) -> None:
    """Dimension × group matrix of pct_satisfied, and one bar chart per group under it."""
    th = data.thresholds
    groups = {
        k: v for k, v in by_group(scope_dims(data, scope)).items() if is_satisfaction(data, k[1])
    }
    keys = sorted(groups, key=lambda k: group_key(data, *k))
    if not keys:
        return
    write_section(ws, row, "Tỷ lệ hài lòng (%) theo tiêu chí")
    hr = row + 1
    labels = [f"{LEVEL_LABELS.get(lv, lv)} – {questionnaire_label(data, q)}" for lv, q in keys]
    write_header(ws, hr, ["Tiêu chí", "", *labels])
    merge_cells(ws, hr, 1, hr, 2)
    dims = [*DIMENSIONS, "CHUNG"]
    first = hr + 1
    for i, dim in enumerate([*dims, "FIVE"]):
        r = first + i
        label = FIVE_MEAN_LABEL if dim == "FIVE" else DIMENSION_SHORT[dim]
        set_style(write_cell(ws, r, 1, label, font=BOLD if dim == "FIVE" else None), border=BOX)
        merge_cells(ws, r, 1, r, 2)
        for j, key in enumerate(keys):
            by_dim = groups[key]
            if dim == "FIVE":
                value = five_mean(by_dim, "pct_satisfied")
            else:
                d = by_dim.get(dim)
                value = None if d is None else shown_value(d["pct_satisfied"], d["n_respondents"])
            put(ws, r, 3 + j, value, PCT_FORMAT)
    last = first + len(dims)
    tier_rules(ws, f"C{first}:{column_letter(2 + len(keys))}{last}", th)

    # One chart per group: bars for the five dimensions and CHUNG, coloured by tier, three
    # to a row. A printed chart must not straddle two pages: the charts start a new page when
    # they would not fit under the tables, and each page holds three rows of them.
    # A group whose every figure is suppressed gets no chart: it would be empty bars.
    def shown_at(key: tuple[str, str], dim: str) -> Any:
        d = groups[key].get(dim)
        return None if d is None else shown_value(d["pct_satisfied"], d["n_respondents"])

    charted = [
        (j, key)
        for j, key in enumerate(keys)
        if any(isinstance(shown_at(key, dim), int | float) for dim in dims)
    ]
    anchor_row = last + 2
    chart_rows = -(-len(charted) // _CHARTS_PER_ROW)
    if chart_rows and anchor_row + min(chart_rows, 3) * _CHART_ROWS > _PAGE_ROWS:
        ws.row_breaks.append(Break(id=anchor_row - 2))
    for k in range(3, chart_rows, 3):
        ws.row_breaks.append(Break(id=anchor_row + k * _CHART_ROWS - 1))
    for n, (j, key) in enumerate(charted):
        col = 3 + j
        chart = BarChart()
        chart.type = "col"
        chart.title = _chart_title(labels[j])
        chart.legend = None
        chart.height = _CHART_HEIGHT_CM
        chart.width = _CHART_WIDTH_CM
        chart.y_axis.scaling.min = 0
        chart.y_axis.scaling.max = 100
        chart.y_axis.majorUnit = 20
        chart.y_axis.number_format = "0"
        chart.y_axis.delete = False
        chart.x_axis.delete = False
        chart.add_data(Reference(ws, min_col=col, min_row=first, max_row=first + len(dims) - 1))
        chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=first + len(dims) - 1))
        series = chart.series[0]
        series.dLbls = DataLabelList()
        series.dLbls.showVal = True
        for flag in ("showSerName", "showCatName", "showLegendKey", "showPercent"):
            setattr(series.dLbls, flag, False)
        series.dLbls.numFmt = "0.0"
        for i, dim in enumerate(dims):
            tier = tier_of(shown_at(key, dim), th)
            if tier is None:
                continue
            point = DataPoint(idx=i)
            colour = TIER_STYLE[tier][2]
            point.graphicalProperties.solidFill = colour
            point.graphicalProperties.line.solidFill = colour
            series.dPt.append(point)
        column = _CHART_COLUMNS[n % _CHARTS_PER_ROW]
        at = f"{column}{anchor_row + (n // _CHARTS_PER_ROW) * _CHART_ROWS}"
        ws.add_chart(chart, at)
