"""Sheet "Tổng hợp": where the scope stands on one page: submissions, alerts, the
satisfaction rate per level and questionnaire, a dimension × group matrix and its charts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
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

from flows.alerts import RULES
from flows.publish.labels import (
    ALERT_SHEET,
    DIMENSION_SHORT,
    FIVE_MEAN_LABEL,
    LEVEL_LABELS,
    MIN_RESPONDENTS,
    PAPI_SHEET,
    SERVICE_SHEET,
    SEVERITY_LABELS,
    SUMMARY_SHEET,
    SUPPRESSED,
)
from flows.publish.workbooks.alerts import (
    dimensions_text,
    items_text,
    scope_digest,
    scope_name,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.workbooks.figures import (
    GroupSummary,
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
    SEVERITY_STYLE,
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
from warehouse.read_models import Row

SUMMARY_HEADERS = (
    "Cấp học",
    "Đối tượng",
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
    thresholds = data.thresholds
    width = len(SUMMARY_HEADERS)
    groups = summarise(data, scope)
    for i, line in enumerate(_key_lines(data, scope, groups)):
        set_style(write_cell(ws, 4 + i, 1, line, font=BOLD if i < 3 else ITALIC), alignment=WRAP)

    header_row = SUMMARY_HEADER_ROW
    write_header(ws, header_row, SUMMARY_HEADERS)
    set_widths(ws, _SUMMARY_WIDTHS)
    row = header_row
    for group in groups:
        row += 1
        for col, (value, fmt) in enumerate(_summary_values(data, group), start=1):
            put(ws, row, col, value, fmt, wrap=col in (1, 2, width))
    if not groups:
        write_empty(ws, header_row + 1, "Chưa có số liệu trong đợt khảo sát này.")
        row = header_row + 1
    else:
        ws.auto_filter.ref = f"A{header_row}:{column_letter(width)}{row}"
        tier_rules(ws, f"I{header_row + 1}:J{row}", thresholds)
        flag_rule(
            ws,
            column_range(11, header_row + 1, row),
            "{c}<" + f"{thresholds['mean_score_red']:g}",
        )
        flag_rule(ws, column_range(6, header_row + 1, row), "{c}>0", "amber")
        flag_rule(ws, column_range(7, header_row + 1, row), "{c}>0", "red")
    for key_row in range(4, 8):  # key lines span the table's width
        merge_cells(ws, key_row, 1, key_row, width)
    follow_up = _write_follow_up(ws, row + 2, data, scope)
    page_top = 1
    if follow_up > row:
        # The first page holds the table and the schools to follow up; the matrix and its
        # charts start the next one rather than straddle two.
        ws.row_breaks.append(Break(id=follow_up + 1))
        row, page_top = follow_up, follow_up + 2
    _matrix_and_charts(ws, row + 2, data, scope, page_top=page_top)
    # No repeated header rows: later pages hold the matrix and charts, not the table.
    print_setup(ws, None, f"C{header_row + 1}")
    return ws


#: How many schools "Tổng hợp" names as most in need of follow-up.
FOLLOW_UP_SCHOOLS = 10
FOLLOW_UP_HEADERS = ("Trường", "Mức", "Số phiếu", "Thấp nhất (%)", "Vấn đề")


def _write_follow_up(ws: Worksheet, row: int, data: CampaignData, scope: Scope) -> int:
    """The schools most in need of follow-up (the first school lines of the digest on
    "Cảnh báo"), a line each; returns the last row written (``row - 2`` when no school has an
    alert)."""
    schools = [(line, n) for line, n in scope_digest(data, scope) if line.scope == "school"]
    if not schools:
        return row - 2
    shown = schools[:FOLLOW_UP_SCHOOLS]
    write_section(ws, row, f"{len(shown)} trường cần theo dõi trước tiên (xem trang {ALERT_SHEET})")
    row += 1
    last = len(SUMMARY_HEADERS)
    name, *others, issues_header = FOLLOW_UP_HEADERS
    write_header(ws, row, [name, "", *others, issues_header, *[""] * (last - 6)])
    for first, end in ((1, 2), (6, last)):
        merge_cells(ws, row, first, row, end)
    for line, n in shown:
        row += 1
        issues = [dimensions_text(data, line).replace("\n", "; ")]
        if line.items:
            issues.append("câu " + items_text(data, line).replace("\n", "; "))
        issues += [
            RULES[r].title if r in RULES else r for r in dict.fromkeys(r for r, _ in line.others)
        ]
        values: list[tuple[Any, str | None]] = [
            (f"{scope_name(data, line.scope, line.scope_code)} ({line.scope_code})", None),
            (None, None),
            (SEVERITY_LABELS.get(line.severity, line.severity), None),
            (n, INT_FORMAT),
            (line.lowest_pct, PCT_FORMAT),
            ("; ".join(i for i in issues if i), None),
        ]
        for col, (value, fmt) in enumerate(values, start=1):
            cell = put(ws, row, col, value, fmt, wrap=col == 6)
            if col == 3 and line.severity in ("red", "amber"):
                fill, font = SEVERITY_STYLE[line.severity]
                set_style(cell, fill=fill, font=font)
        for col in range(7, last + 1):
            set_style(ws.cell(row=row, column=col), border=BOX)
        for first, end in ((1, 2), (6, last)):
            merge_cells(ws, row, first, row, end)
    return row


def _key_lines(data: CampaignData, scope: Scope, groups: list[GroupSummary]) -> list[str]:
    """The four lines above the table: submissions, open alerts, groups at the target, and the
    key to the colours and hidden figures."""
    thresholds = data.thresholds
    expected = sum(group.n_expected for group in groups)
    submitted = sum(group.n_submitted for group in groups)
    active = [alert for alert in scope_alerts(data, scope) if alert["status"] != "resolved"]
    by_severity = Counter(alert["severity"] for alert in active)
    rated = [group for group in groups if isinstance(group.pct_five, int | float)]
    reached = sum(group.pct_five >= thresholds["pct_satisfied_amber"] for group in rated)
    amber, red = thresholds["pct_satisfied_amber"], thresholds["pct_satisfied_red"]
    return [
        f"Nộp tệp: {submitted}/{expected} tệp phải nộp đã nộp "
        f"({sum(group.n_late for group in groups)} nộp muộn); "
        f"{sum(group.n_not_submitted for group in groups)} chưa nộp; "
        f"{sum(group.n_failed for group in groups)} tệp lỗi chưa đọc được.",
        f"Cảnh báo chưa xử lý: {by_severity.get('red', 0)} mức đỏ, "
        f"{by_severity.get('amber', 0)} mức vàng, {by_severity.get('info', 0)} thông tin "
        f"(xem trang {ALERT_SHEET}).",
        f"Mục tiêu ≥ {amber:g}% hài lòng (QĐ 2034/QĐ-BGDĐT): "
        f"{reached}/{len(rated)} nhóm đạt (tỷ lệ bình quân 5 tiêu chí).",
        f"Màu: xanh ≥ {amber:g}%, vàng {red:g}–{amber:g}%, đỏ < {red:g}%. Số liệu của nhóm "
        f"dưới {MIN_RESPONDENTS} người trả lời được ẩn ({SUPPRESSED}).",
    ]


def _summary_verdict(data: CampaignData, group: GroupSummary) -> str:
    """The "Đánh giá" of a group: its tier, where to look for a non-satisfaction questionnaire,
    that its figures are hidden, or that its sample is small."""
    thresholds = data.thresholds
    if not is_satisfaction(data, group.questionnaire):
        kind = data.questionnaires[group.questionnaire].kind
        return f"Xem trang {PAPI_SHEET if kind == 'papi' else SERVICE_SHEET}"
    verdict = tier_text(group.pct_five, thresholds)
    if group.pct_five == SUPPRESSED:
        return f"Dưới {MIN_RESPONDENTS} người trả lời: số liệu ẩn"
    if group.n_responses and group.n_responses < thresholds["min_respondents"]:
        small = f"mẫu nhỏ (< {thresholds['min_respondents']:g})"
        return (verdict + "; " if verdict else "") + small
    return verdict


def _summary_values(data: CampaignData, group: GroupSummary) -> list[tuple[Any, str | None]]:
    """One group's row of the table: its cells with their number formats."""
    return [
        (LEVEL_LABELS.get(group.level, group.level), None),
        (questionnaire_label(data, group.questionnaire), None),
        (group.n_expected, INT_FORMAT),
        (group.n_submitted, INT_FORMAT),
        (group.n_late, INT_FORMAT),
        (group.n_not_submitted, INT_FORMAT),
        (group.n_failed, INT_FORMAT),
        (group.n_responses, INT_FORMAT),
        (group.pct_five, PCT_FORMAT),
        (group.pct_chung, PCT_FORMAT),
        (group.mean_five, MEAN_FORMAT),
        (group.expectation, PCT_FORMAT),
        (_summary_verdict(data, group), None),
    ]


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


def _matrix_and_charts(
    ws: Worksheet, row: int, data: CampaignData, scope: Scope, page_top: int = 1
) -> None:
    """Dimension × group matrix of pct_satisfied, and one bar chart per group under it;
    ``page_top`` is the first row of the printed page the matrix starts on."""
    groups = {
        key: by_dim
        for key, by_dim in by_group(scope_dims(data, scope)).items()
        if is_satisfaction(data, key[1])
    }
    keys = sorted(groups, key=lambda key: group_key(data, *key))
    if not keys:
        return
    write_section(ws, row, "Tỷ lệ hài lòng (%) theo tiêu chí")
    header_row = row + 1
    labels = [
        f"{LEVEL_LABELS.get(level, level)} – {questionnaire_label(data, questionnaire)}"
        for level, questionnaire in keys
    ]
    write_header(ws, header_row, ["Tiêu chí", "", *labels])
    merge_cells(ws, header_row, 1, header_row, 2)
    first = header_row + 1
    for i, dim in enumerate([*_CHART_DIMENSIONS, "FIVE"]):
        _write_matrix_row(ws, first + i, dim, [groups[key] for key in keys])
    last = first + len(_CHART_DIMENSIONS)
    tier_rules(ws, f"C{first}:{column_letter(2 + len(keys))}{last}", data.thresholds)
    columns = [(labels[j], groups[key]) for j, key in enumerate(keys)]
    _place_charts(ws, data, columns, first, page_top)


#: The bars of a group's chart, in the matrix's order (the five-dimension mean follows them).
_CHART_DIMENSIONS = (*DIMENSIONS, "CHUNG")


def _write_matrix_row(ws: Worksheet, row: int, dim: str, columns: list[dict[str, Row]]) -> None:
    """One dimension's (or the five-dimension mean's) row of the matrix, a cell per group."""
    label = FIVE_MEAN_LABEL if dim == "FIVE" else DIMENSION_SHORT[dim]
    set_style(write_cell(ws, row, 1, label, font=BOLD if dim == "FIVE" else None), border=BOX)
    merge_cells(ws, row, 1, row, 2)
    for offset, by_dim in enumerate(columns):
        if dim == "FIVE":
            value = five_mean(by_dim, "pct_satisfied")
        else:
            value = _shown_rate(by_dim, dim)
        put(ws, row, 3 + offset, value, PCT_FORMAT)


def _shown_rate(by_dim: dict[str, Row], dim: str) -> Any:
    """A group's pct_satisfied for ``dim`` as shown (hidden under the minimum), or None."""
    found = by_dim.get(dim)
    return None if found is None else shown_value(found["pct_satisfied"], found["n_respondents"])


def _place_charts(
    ws: Worksheet,
    data: CampaignData,
    columns: list[tuple[str, dict[str, Row]]],
    first: int,
    page_top: int = 1,
) -> None:
    """One chart per matrix column (group) under the matrix, three to a row.

    A printed chart must not straddle two pages: the charts start a new page when they would
    not fit under the tables, and each page holds three rows of them. A group whose every
    figure is suppressed gets no chart: it would be empty bars.
    """
    charted = [
        (offset, label, by_dim)
        for offset, (label, by_dim) in enumerate(columns)
        if any(isinstance(_shown_rate(by_dim, dim), int | float) for dim in _CHART_DIMENSIONS)
    ]
    anchor_row = first + len(_CHART_DIMENSIONS) + 2
    chart_rows = -(-len(charted) // _CHARTS_PER_ROW)
    if chart_rows and anchor_row - page_top + 1 + min(chart_rows, 3) * _CHART_ROWS > _PAGE_ROWS:
        ws.row_breaks.append(Break(id=anchor_row - 2))
    for k in range(3, chart_rows, 3):
        ws.row_breaks.append(Break(id=anchor_row + k * _CHART_ROWS - 1))
    for n, (offset, label, by_dim) in enumerate(charted):
        chart = _group_chart(ws, 3 + offset, first, label)
        _colour_bars(chart, by_dim, data.thresholds)
        column = _CHART_COLUMNS[n % _CHARTS_PER_ROW]
        ws.add_chart(chart, f"{column}{anchor_row + (n // _CHARTS_PER_ROW) * _CHART_ROWS}")


def _group_chart(ws: Worksheet, col: int, first: int, label: str) -> BarChart:
    """A column chart of the matrix column ``col`` (rows from ``first``, one bar per
    dimension and CHUNG) on a 0-100 axis, each bar labelled with its value."""
    last_bar = first + len(_CHART_DIMENSIONS) - 1
    chart = BarChart()
    chart.type = "col"
    chart.title = _chart_title(label)
    chart.legend = None
    chart.height = _CHART_HEIGHT_CM
    chart.width = _CHART_WIDTH_CM
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 100
    chart.y_axis.majorUnit = 20
    chart.y_axis.number_format = "0"
    chart.y_axis.delete = False
    chart.x_axis.delete = False
    chart.add_data(Reference(ws, min_col=col, min_row=first, max_row=last_bar))
    chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last_bar))
    series = chart.series[0]
    series.dLbls = DataLabelList()
    series.dLbls.showVal = True
    for flag in ("showSerName", "showCatName", "showLegendKey", "showPercent"):
        setattr(series.dLbls, flag, False)
    series.dLbls.numFmt = "0.0"
    return chart


def _colour_bars(chart: BarChart, by_dim: dict[str, Row], thresholds: Mapping[str, float]) -> None:
    """Each bar of the chart in its tier's colour; a bar with no tier keeps the default."""
    series = chart.series[0]
    for i, dim in enumerate(_CHART_DIMENSIONS):
        tier = tier_of(_shown_rate(by_dim, dim), thresholds)
        if tier is None:
            continue
        point = DataPoint(idx=i)
        colour = TIER_STYLE[tier][2]
        point.graphicalProperties.solidFill = colour
        point.graphicalProperties.line.solidFill = colour
        series.dPt.append(point)
