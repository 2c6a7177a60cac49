"""Sheets read with python-calamine, once the container has passed its guards.

calamine's errors, and a panic inside it (seen on damaged xls, arriving as pyo3's
PanicException, a BaseException), become one-line SourceErrors, so one file fails alone.
``without_merge_scan`` spares calamine a second pass over each xlsx sheet.
"""

from __future__ import annotations

import io
import re
from typing import cast

from python_calamine import (
    CalamineError,
    CalamineSheet,
    CalamineWorkbook,
    PasswordError,
    SheetTypeEnum,
)

from flows.read.cells import Formulas, FormulaWithoutValue, one_line, rows_over_limit, setting, tidy
from flows.settings import Limits
from schemas.records import Cell, SourceError, Table, cell_address

#: The start of a sheet's cells, prefixed or not.
_SHEET_DATA = re.compile(rb"<(?:[\w.-]+:)?sheetData[\s/>]")


def without_merge_scan(xml: bytes) -> bytes:
    """An xlsx sheet's XML with an empty ``<mergeCells>`` placed before its cells.

    For each sheet, python-calamine reads the cells and then the whole part once more, to its
    end, for the merged cells it hands back beside them (which no reader here uses); that
    search stops at the first ``<mergeCells>``. calamine's cell reader passes over any element
    before ``<sheetData>``, so the cells read are the same, and the second pass ends at once
    (benchmarks/README.md has the gain). A part without ``<sheetData>`` is left as it is.
    """
    m = _SHEET_DATA.search(xml)
    if m is None:
        return xml
    return b"".join((xml[: m.start()], b"<mergeCells></mergeCells>", xml[m.start() :]))


def read_calamine(content: bytes, filename: str, limits: Limits, formulas: Formulas) -> list[Table]:
    """Every worksheet of a workbook calamine can open, as tidy Tables (``formulas`` marks the
    cells holding a formula without a value). Raises SourceError for anything unreadable."""
    try:
        return _read_sheets(content, filename, limits, formulas)
    except BaseException as exc:
        # pyo3 turns a panic inside calamine (seen on damaged xls) into PanicException, a
        # BaseException that "except Exception" in the flow would let through: one file must
        # still fail alone, as a SourceError.
        if type(exc).__name__ != "PanicException":
            raise
        raise SourceError(
            f"{filename}: damaged or unsupported spreadsheet (the reader failed: {one_line(exc)})"
        ) from None


def _open(content: bytes, filename: str) -> CalamineWorkbook:
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(content))
    except PasswordError:
        raise SourceError(f"{filename}: the file is password-protected") from None
    except CalamineError as exc:
        raise SourceError(
            f"{filename}: damaged or unsupported spreadsheet ({one_line(exc)})"
        ) from None
    except Exception as exc:  # calamine raises plain errors for some damage
        raise SourceError(f"{filename}: cannot read the spreadsheet ({one_line(exc)})") from None


def _read_sheets(content: bytes, filename: str, limits: Limits, formulas: Formulas) -> list[Table]:
    tables: list[Table] = []
    cells = 0
    with _open(content, filename) as workbook:
        for meta in workbook.sheets_metadata:
            if meta.typ != SheetTypeEnum.WorkSheet:
                continue  # chart and dialog sheets hold no answers
            sheet = _sheet(workbook, meta.name, filename)
            raw: list[list[Cell]] = []
            end = sheet.end
            if end is not None:
                # Rows are padded from A1 (skip_empty_area=False), so count from there; the
                # limit is per file, as is every limit.
                cells += (end[0] + 1) * (end[1] + 1)
                if cells > limits.max_cells:
                    raise _cells_over_limit(filename, meta.name, end, limits)
                # calamine's row lists are fresh and ours to edit in place; only the element
                # type differs (Cell also allows None, which tidy writes).
                raw = cast("list[list[Cell]]", sheet.to_python(skip_empty_area=False))
            _mark_formulas(raw, formulas.get(meta.name, {}))
            rows = tidy(raw)
            if len(rows) > limits.max_rows:
                raise rows_over_limit(filename, meta.name, len(rows), limits)
            tables.append(Table(meta.name, rows))
    return tables


def _sheet(workbook: CalamineWorkbook, name: str, filename: str) -> CalamineSheet:
    try:
        return workbook.get_sheet_by_name(name)
    except PasswordError:
        raise SourceError(f"{filename}: the file is password-protected") from None
    except Exception as exc:  # as when opening: not every failure is a CalamineError
        raise SourceError(f"{filename}: sheet {name!r} cannot be read ({one_line(exc)})") from None


def _cells_over_limit(
    filename: str, sheet: str, end: tuple[int, int], limits: Limits
) -> SourceError:
    return SourceError(
        f"{filename}: more than the limit of {limits.max_cells:,} cells (reached in sheet "
        f"{sheet!r}, which ends at {cell_address(end[0] + 1, end[1] + 1)}){setting('max_cells')}"
    )


def _mark_formulas(
    rows: list[list[Cell]], marks: dict[tuple[int, int], FormulaWithoutValue]
) -> None:
    for (r, c), formula in marks.items():
        # calamine may not extend its range to a cell it read as empty; grow to reach it.
        while len(rows) <= r:
            rows.append([])
        row = rows[r]
        if len(row) <= c:
            row.extend([None] * (c + 1 - len(row)))
        if row[c] is None or row[c] == "":
            row[c] = formula
