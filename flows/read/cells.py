"""What every reader shares: formula cells without a value, tidy rows, and the one-line
messages that name the limit (``limits.max_cells``) an administrator would raise.
"""

from __future__ import annotations

from flows.settings import Limits
from schemas.records import Cell, SourceError, cell_address


class FormulaWithoutValue(str):
    """A cell holding a formula whose result was never computed (no cached value).

    A ``str`` (the formula text, "=A2+B2") so it fits ``Cell`` and any code unaware of it sees
    an unreadable text rather than an empty cell; parse checks for this class first.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        """The formula, marked as one."""
        return f"FormulaWithoutValue({str.__repr__(self)})"


#: Formula cells without a value, per sheet name: (row, col) 0-based → the formula.
Formulas = dict[str, dict[tuple[int, int], FormulaWithoutValue]]


def tidy(rows: list[list[Cell]]) -> list[list[Cell]]:
    """Blank cells to None; trailing blank rows and columns dropped; rows of equal width."""
    width = 0
    last = -1
    for i, row in enumerate(rows):
        # One comprehension per row is about twice as fast as assigning cell by cell; the
        # class test leaves FormulaWithoutValue (a str subclass) alone.
        row = rows[i] = [None if (v.__class__ is str and not v.strip()) else v for v in row]
        j = len(row)
        while j and row[j - 1] is None:
            j -= 1
        if j:
            last = i
            width = max(width, j)
    out = rows[: last + 1]
    for i, row in enumerate(out):
        if len(row) > width:
            out[i] = row[:width]
        elif len(row) < width:
            row.extend([None] * (width - len(row)))
    return out


def rows_over_limit(filename: str, sheet: str, rows: int, limits: Limits) -> SourceError:
    """The error for a sheet with data below ``limits.max_rows``."""
    return SourceError(
        f"{filename}: sheet {sheet!r} has data down to row {rows:,}, more than the limit of "
        f"{limits.max_rows:,} rows{setting('max_rows')}"
    )


def area_over_limit(
    filename: str, sheet: str, height: int, width: int, limits: Limits
) -> SourceError:
    """The error for a sheet whose rectangle holds more than ``limits.max_cells``."""
    return SourceError(
        f"{filename}: sheet {sheet!r} spans {height:,} rows × {width:,} columns (to "
        f"{cell_address(height, width)}), more than the limit of {limits.max_cells:,} cells"
        f"{setting('max_cells')}"
    )


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, for a one-line SourceError."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def cut_spans(xml: bytes, spans: list[tuple[int, int]]) -> bytes:
    """``xml`` without the byte spans given (start, end), which do not overlap."""
    parts, pos = [], 0
    for start, end in sorted(spans):
        parts.append(xml[pos:start])
        pos = end
    parts.append(xml[pos:])
    return b"".join(parts)


def cut_off(content: bytes, filename: str) -> SourceError:
    """The error for a file holding only the first bytes of a workbook."""
    size = f"{len(content):,} byte" + ("s" if len(content) > 1 else "")
    return SourceError(f"{filename}: damaged file (only {size}: cut off?)")


def setting(name: str) -> str:
    """The setting a limit message names, so an administrator knows what to raise."""
    return f" (limits.{name})"
