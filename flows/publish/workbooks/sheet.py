"""Sheet scaffolding shared by the leadership workbooks' sheets: the title block, section
titles, table headers and cells, group rows, and the conditional fills by tier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.labels import (
    SUPPRESSED,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
)
from flows.publish.xlsx import (
    BOLD,
    BOX,
    GROUP_FILL,
    HEADER_FILL,
    ITALIC,
    MIDDLE,
    SECTION,
    SUPPRESSED_ALIGN,
    TIER_STYLE,
    TITLE,
    WRAP_CENTER,
    WRAP_MIDDLE,
    merge_cells,
    set_style,
    write_cell,
)
from schemas.records import column_letter


def new_sheet(
    wb: Workbook, title: str, data: CampaignData, scope: Scope, note: str | None = None
) -> tuple[Worksheet, int]:
    """A sheet with its title block (sheet name and scope, campaign, note); returns the sheet
    and the first free row."""
    ws = wb.create_sheet(title)
    where = scope.name if scope.is_province else f"{scope.name} ({scope.code})"
    write_cell(ws, 1, 1, f"{title.upper()} · {where}", font=TITLE)
    ws.row_dimensions[1].height = 22  # room for the marks above Vietnamese capitals
    detail = data.name
    if data.school_year and data.school_year not in data.name:
        detail += f" · năm học {data.school_year}"
    write_cell(ws, 2, 1, f"{detail} · đợt {data.campaign_id}", font=BOLD)
    if note:
        write_cell(ws, 3, 1, note, font=ITALIC)
    return ws, 5


def write_section(ws: Worksheet, row: int, text: str) -> None:
    """A section title in column A."""
    write_cell(ws, row, 1, text, font=SECTION)


def write_header(ws: Worksheet, row: int, headers: Sequence[str], start: int = 1) -> None:
    """A row of table headers: bold, filled, bordered, wrapped."""
    for col, text in enumerate(headers, start=start):
        cell = write_cell(ws, row, col, text, font=BOLD)
        set_style(cell, fill=HEADER_FILL, alignment=WRAP_CENTER, border=BOX)


def set_widths(ws: Worksheet, widths: Sequence[float]) -> None:
    """Column widths from column A on."""
    for col, w in enumerate(widths, start=1):
        ws.column_dimensions[column_letter(col)].width = w


def put(
    ws: Worksheet, row: int, col: int, value: Any, fmt: str | None = None, *, wrap: bool = False
) -> Cell:
    """A bordered table cell; text figures (SUPPRESSED) are right-aligned like numbers."""
    cell = write_cell(ws, row, col, value, number_format=fmt)
    if value == SUPPRESSED:
        alignment = SUPPRESSED_ALIGN
    elif wrap:
        alignment = WRAP_MIDDLE
    else:
        alignment = MIDDLE
    return set_style(cell, border=BOX, alignment=alignment)


def group_row(ws: Worksheet, row: int, text: str, width: int) -> None:
    """A filled row spanning ``width`` columns that titles the rows below it."""
    # Only the first cell is styled: merging replaces the others, and gives the range's edges
    # the first cell's border.
    set_style(ws.cell(row=row, column=1), fill=GROUP_FILL, border=BOX)
    write_cell(ws, row, 1, text, font=BOLD)
    merge_cells(ws, row, 1, row, width)


def tier_rules(ws: Worksheet, ref: str, th: Mapping[str, float]) -> None:
    """Conditional fills on a range of pct_satisfied cells (numbers only: "<5" stays plain)."""
    top_left = ref.split(":")[0]
    red, target = th["pct_satisfied_red"], th["pct_satisfied_amber"]
    conditions = {
        "red": f"AND(ISNUMBER({top_left}),{top_left}<{red:g})",
        "amber": f"AND(ISNUMBER({top_left}),{top_left}>={red:g},{top_left}<{target:g})",
        "green": f"AND(ISNUMBER({top_left}),{top_left}>={target:g})",
    }
    for tier, formula in conditions.items():
        fill, font, _ = TIER_STYLE[tier]
        ws.conditional_formatting.add(
            ref,
            FormulaRule(
                formula=[formula],
                fill=PatternFill("solid", start_color=fill, end_color=fill),
                font=Font(color=font),
                stopIfTrue=True,
            ),
        )


def flag_rule(ws: Worksheet, ref: str, condition: str, tier: str = "red") -> None:
    """A conditional fill where ``condition`` (written for the range's top-left cell as
    ``{c}``) holds on a number."""
    top_left = ref.split(":")[0]
    fill, font, _ = TIER_STYLE[tier]
    ws.conditional_formatting.add(
        ref,
        FormulaRule(
            formula=[f"AND(ISNUMBER({top_left}),{condition.format(c=top_left)})"],
            fill=PatternFill("solid", start_color=fill, end_color=fill),
            font=Font(color=font),
            stopIfTrue=True,
        ),
    )


def write_empty(ws: Worksheet, row: int, text: str) -> None:
    """An italic note where a table has no rows."""
    write_cell(ws, row, 1, text, font=ITALIC)
