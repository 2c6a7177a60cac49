"""Sheet "Ý kiến": what parents and students wrote, by theme (the comment mart).

Per questionnaire of the scope: the themes by number of comments with a bar chart, the "khác"
count last, then up to three quotes per theme. A scope without comments gets no sheet.
"""

from __future__ import annotations

from collections import defaultdict

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import COMMENT_SHEET, DIMENSION_SHORT
from flows.publish.workbooks.data import CampaignData, Scope
from flows.publish.workbooks.figures import questionnaire_label, shown_value
from flows.publish.workbooks.sheet import (
    group_row,
    new_sheet,
    put,
    set_widths,
    write_header,
    write_section,
)
from flows.publish.xlsx import INT_FORMAT, PCT_FORMAT, WRAP, merge_cells, print_setup, set_style
from schemas.comments import OTHER_THEME, Quote, ThemeCount

_HEADERS = ["Chủ đề", "Tiêu chí", "Số ý kiến", "Tỷ lệ trên số người trả lời (%)"]
_WIDTHS = [46, 18, 12, 16, 30, 30]
#: Columns a quote spans, and the rows of the sheet a chart covers per bar.
_QUOTE_COLUMNS = 6
_CHART_ROW_PER_BAR = 1.1


def write_comment_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet | None:
    """Sheet "Ý kiến" for ``scope``; None (no sheet) when nobody in it wrote a comment."""
    kind = "province" if scope.is_province else "unit"
    counts = [c for c in data.comment_themes if c.scope == kind and c.scope_code == scope.code]
    if not counts:
        return None
    quotes: dict[tuple[str, str], list[Quote]] = defaultdict(list)
    for q in data.comment_quotes:
        if q.scope == kind and q.scope_code == scope.code:
            quotes[(q.questionnaire, q.theme)].append(q)
    ws, row = new_sheet(
        wb,
        COMMENT_SHEET,
        data,
        scope,
        "Ý kiến, đề xuất của cha mẹ học sinh và học sinh, xếp theo chủ đề; một ý kiến có thể "
        "thuộc nhiều chủ đề. Trích dẫn đã che tên, số điện thoại, e-mail.",
    )
    by_questionnaire: dict[str, list[ThemeCount]] = defaultdict(list)
    for c in counts:
        by_questionnaire[c.questionnaire].append(c)
    for i, questionnaire in enumerate(sorted(by_questionnaire)):
        if i:  # each questionnaire starts a page: its chart is never cut by a page break
            ws.row_breaks.append(Break(id=row - 1))
        row = _write_questionnaire(
            ws, data, questionnaire, by_questionnaire[questionnaire], quotes, row
        )
        row += 2
    set_widths(ws, _WIDTHS)
    print_setup(ws, None, None)
    return ws


def _ordered(counts: list[ThemeCount]) -> list[ThemeCount]:
    """Themes by count, most first; "khác" last whatever its count."""
    themed = sorted(
        (c for c in counts if c.theme != OTHER_THEME), key=lambda c: (-c.n_comments, c.label)
    )
    return themed + [c for c in counts if c.theme == OTHER_THEME]


def _write_questionnaire(
    ws: Worksheet,
    data: CampaignData,
    questionnaire: str,
    counts: list[ThemeCount],
    quotes: dict[tuple[str, str], list[Quote]],
    row: int,
) -> int:
    """One questionnaire's table, chart and quotes from ``row``; returns the last row used."""
    ordered = _ordered(counts)
    n_respondents = ordered[0].n_respondents
    write_section(
        ws,
        row,
        f"{questionnaire_label(data, questionnaire)} ({questionnaire}): "
        f"{n_respondents:,} người trả lời".replace(",", "."),
    )
    header = row + 1
    write_header(ws, header, _HEADERS)
    for i, c in enumerate(ordered, start=1):
        share = None if c.share is None else 100 * c.share
        put(ws, header + i, 1, c.label)
        put(ws, header + i, 2, DIMENSION_SHORT.get(c.dimension or "", "—"))
        put(ws, header + i, 3, shown_value(c.n_comments, c.n_respondents), INT_FORMAT)
        put(ws, header + i, 4, shown_value(share, c.n_respondents), PCT_FORMAT)
    last = header + len(ordered)
    if not any(c.n_respondents < 5 for c in ordered):
        _chart(ws, header, last, questionnaire)
        row = max(last, header + 4 + int(len(ordered) * _CHART_ROW_PER_BAR) + 4)
    else:
        row = last
    return _write_quotes(ws, questionnaire, ordered, quotes, row + 2)


def _chart(ws: Worksheet, header: int, last: int, questionnaire: str) -> None:
    """A horizontal bar chart of the counts, beside the table (first theme on top)."""
    chart = BarChart()
    chart.type = "bar"
    chart.style = 10
    chart.title = f"Số ý kiến theo chủ đề ({questionnaire})"
    chart.legend = None
    chart.y_axis.title = "Số ý kiến"
    chart.x_axis.scaling.orientation = "maxMin"  # the most written-about theme on top
    chart.y_axis.delete = False
    chart.x_axis.delete = False
    chart.add_data(Reference(ws, min_col=3, min_row=header, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=header + 1, max_row=last))
    chart.width = 16
    chart.height = max(6.0, 0.6 * (last - header) + 2.5)
    ws.add_chart(chart, f"E{header}")


def _write_quotes(
    ws: Worksheet,
    questionnaire: str,
    ordered: list[ThemeCount],
    quotes: dict[tuple[str, str], list[Quote]],
    row: int,
) -> int:
    """Each theme's quotes under a theme row; returns the last row written."""
    shown = [c for c in ordered if quotes.get((questionnaire, c.theme))]
    if not shown:
        return row - 2
    write_section(ws, row, "Trích dẫn ý kiến tiêu biểu")
    for c in shown:
        row += 1
        group_row(ws, row, f"{c.label} ({c.n_comments} ý kiến)", _QUOTE_COLUMNS)
        for q in sorted(quotes[(questionnaire, c.theme)], key=lambda q: q.rank):
            row += 1
            cell = put(ws, row, 1, f"“{q.text}”", wrap=True)
            set_style(cell, alignment=WRAP)
            merge_cells(ws, row, 1, row, _QUOTE_COLUMNS)
            # A merged cell does not grow with its text: give it the lines it needs.
            ws.row_dimensions[row].height = 15 * (1 + len(q.text) // 150)
    return row
