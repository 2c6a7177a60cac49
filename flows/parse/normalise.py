"""Text normalisation of headers and cells, and timestamps: pure functions, no IO.

Parse maps each *distinct* raw value of a sheet through these once, so they favour clarity
over micro-speed. The exception is ``parse_timestamps``, a whole column at once: submission
times are nearly all distinct, so a column is read in one pass rather than value by value.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from schemas.records import Cell


def fold(text: str) -> str:
    """Compare-ready text: NFC, casefolded, whitespace runs collapsed to one space, stripped.

    Vietnamese arrives both precomposed (NFC) and decomposed (NFD, from macOS and some
    keyboards); NFC first makes "Hài lòng" typed either way the same string.
    """
    text = unicodedata.normalize("NFC", text).casefold()
    # str.split() without arguments also splits on NBSP and other Unicode spaces, which
    # spreadsheets pasted from web pages are full of; zero-width spaces are not whitespace.
    return " ".join(text.replace("\u200b", "").replace("\ufeff", "").split())


def loose(text: str) -> str:
    """``fold`` without diacritics (đ → d): a fallback key for text typed without accents or
    with the old tone placement ("khoá" vs "khóa"), used only when the exact key finds nothing."""
    folded = fold(text)
    if folded.isascii():
        return folded  # nothing to decompose, no "đ": skips a Python loop over the characters
    decomposed = unicodedata.normalize("NFD", folded)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.replace("đ", "d")


# Numbering that schools put in front of question texts. Each alternative ends in a separator,
# so a header that merely starts with a number or letter ("80% ...", "Lớp") is left alone.
_NUMBERING = re.compile(
    r"""^\s*(?:
        (?:câu(?:\s*hỏi)?|tiêu\s*chí|mục)\s*(?:số\s*)?\d+[a-zđ]?\s*[.:)/\-–]?
                                                # Câu 5.  Câu 12:  Câu hỏi 3  Tiêu chí 1:
      | \(\s*(?:\d+|[a-zđ]|[ivxlc]+)\s*\)                     # (5)  (a)  (iv)
      | \d+(?:\.\d+)+\.?(?=\s)                                # 1.2 text  1.2. text
      | (?:\d+(?:\.\d+)*|[a-zđ]|[ivxlc]+)\s*[.):/]           # 5.  1)  a/  I.
      | (?:\d+|[ivxlc]+)\s*[\-–]\s                              # 5 - text  II- text
    )\s*""",
    re.IGNORECASE | re.VERBOSE,
)


def strip_numbering(header: str) -> str:
    """Remove leading question numbering ("Câu 5.", "1)", "(5)", "a/", "5.", "I.", "Câu 12:",
    "Tiêu chí 1:").

    Applied twice so "I. 1. Text" and "Câu 2. a) Text" lose both levels; the text after the
    numbering is returned unchanged (not folded).
    """
    for _ in range(2):
        stripped = _NUMBERING.sub("", header, count=1)
        if stripped == header or not stripped.strip():
            break
        header = stripped
    return header.strip()


def cell_text(value: Cell) -> str:
    """A cell as the text a person would see: whole floats without ".0", datetimes ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def is_blank(value: object) -> bool:
    """True for an empty cell: None, "", whitespace only, or a float NaN (pandas' empty)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


def text_number(text: str) -> float | None:
    """A number written as text, accepting the Vietnamese decimal comma ("4,0")."""
    t = text.strip()
    if not _NUMBER.fullmatch(t):
        return None
    return float(t.replace(",", "."))


class UnreadableTimestamp(ValueError):
    """A timestamp cell holding text that is not a date (parse turns it into a rejection)."""


#: Excel's day 0 (the 1900 leap-year bug makes serials from 61 on count from 1899-12-30).
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
#: Serial numbers accepted as dates: 1982-01-06 .. 2119-03-13, far wider than any survey,
#: narrow enough that an answer like "4" in the wrong column is not read as 1900-01-03.
_SERIAL_RANGE = (30_000.0, 80_000.0)

_DMY = re.compile(
    r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})"
    r"(?:[ ,t]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?\s*(sa|ch|am|pm)?)?"
)


def _from_serial(value: float) -> dt.datetime:
    # Round to the millisecond: serials carry float noise (45594.378831018 -> ...:59.9999).
    return _EXCEL_EPOCH + dt.timedelta(milliseconds=round(value * 86_400_000))


def _hour(hour: int, meridiem: str | None) -> int:
    if meridiem in ("ch", "pm") and hour < 12:
        return hour + 12
    if meridiem in ("sa", "am") and hour == 12:
        return 0
    return hour


def _from_text(text: str, dayfirst: bool) -> dt.datetime:
    m = _DMY.fullmatch(text)
    if m:
        a, b, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        day, month = (a, b) if dayfirst else (b, a)
        if year < 100:
            year += 2000
        hour = _hour(int(m.group(4) or 0), m.group(8))
        frac = (m.group(7) or "0").ljust(6, "0")
        return dt.datetime(
            year, month, day, hour, int(m.group(5) or 0), int(m.group(6) or 0), int(frac)
        )
    iso = text.upper().replace(" ", "T", 1).replace("Z", "+00:00")
    return _local(dt.datetime.fromisoformat(iso))


def _local(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    # Campaign local time is UTC+7 all year (Vietnam has no daylight saving).
    return value.astimezone(dt.timezone(dt.timedelta(hours=7))).replace(tzinfo=None)


def parse_timestamp(cell: Cell, dayfirst: bool = True) -> dt.datetime | None:
    """A submission time as a naive local datetime; None for an empty cell.

    Reads datetimes, dates (midnight), Excel serial numbers (as numbers or numeric text),
    day-first text as Vietnamese Google Sheets write it ("29/10/2024 9:05:31", "29/10/2024",
    "29-10-2024 09:05", with SA/CH or AM/PM), and ISO 8601 (an offset is converted to UTC+7).
    ``dayfirst=False`` reads "10/29/2024" (a sheet kept in a US locale); parse decides it per
    column. Raises ``UnreadableTimestamp`` for anything else, including a time without a date.
    """
    if cell is None:
        return None
    if isinstance(cell, dt.datetime):
        return _local(cell)
    if isinstance(cell, dt.date):
        return dt.datetime(cell.year, cell.month, cell.day)
    if isinstance(cell, bool) or not isinstance(cell, int | float | str):
        raise UnreadableTimestamp(f"not a date: {cell_text(cell)!r}")
    if isinstance(cell, int | float):
        if _SERIAL_RANGE[0] <= cell <= _SERIAL_RANGE[1]:
            return _from_serial(float(cell))
        raise UnreadableTimestamp(f"number {cell_text(cell)} is not a date serial")
    text = fold(cell)
    if not text:
        return None
    number = text_number(text)
    if number is not None:
        return parse_timestamp(number, dayfirst)
    try:
        return _from_text(text, dayfirst)
    except ValueError:
        raise UnreadableTimestamp(f"not a date: {cell!r}") from None


def day_month_order(texts: list[str]) -> bool:
    """Whether a column of text dates is day-first (True, the default) or month-first.

    Month-first only when some value can only be month-first ("10/29/2024") and none can only
    be day-first ("29/10/2024"); one column is read one way, never value by value.
    """
    first_over_12, second_over_12 = _over_12(texts)
    return not (second_over_12 and not first_over_12)


def _over_12(texts: Sequence[str]) -> tuple[bool, bool]:
    """Whether the first, and the second, number of some text date is over 12."""
    first_over_12 = second_over_12 = False
    for text in texts:
        m = _DMY.match(fold(text))
        if not m:
            continue
        first_over_12 |= int(m.group(1)) > 12
        second_over_12 |= int(m.group(2)) > 12
    return first_over_12, second_over_12


#: The submission time as Google Forms writes it ("21/10/2024 6:07:21", "21/10/2024"): ASCII,
#: so already folded, and a case of _DMY read the same way. parse_timestamps reads these with
#: numpy and leaves every other value (and any invalid date among these) to parse_timestamp.
_FORMS_STAMP = re.compile(
    r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})(?: ([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?"
)
_NAT = np.datetime64("NaT", "us")


def parse_timestamps(
    values: Sequence[Cell],
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.intp]]:
    """A column of submission times, each read as ``parse_timestamp`` reads it, in the order
    ``day_month_order`` decides for the column's text values.

    Returns the times as datetime64[us] (NaT for an empty value or an unreadable one) and the
    indexes of the unreadable values (those ``parse_timestamp`` raises UnreadableTimestamp for).
    """
    out = np.full(len(values), _NAT)
    matches = [_FORMS_STAMP.fullmatch(v) if isinstance(v, str) else None for v in values]
    fast = np.array([i for i, m in enumerate(matches) if m is not None], dtype=np.intp)
    slow = [i for i, m in enumerate(matches) if m is None]
    numbers = _stamp_numbers([m.groups("0") for m in matches if m is not None])
    first_over_12, second_over_12 = _over_12([v for i in slow if isinstance(v := values[i], str)])
    first_over_12 |= bool((numbers[:, 0] > 12).any())
    second_over_12 |= bool((numbers[:, 1] > 12).any())
    dayfirst = not (second_over_12 and not first_over_12)
    stamps, valid = _stamps(numbers, dayfirst)
    out[fast[valid]] = stamps[valid]
    slow.extend(fast[~valid].tolist())

    unreadable: list[int] = []
    for i in sorted(slow):
        try:
            when = parse_timestamp(values[i], dayfirst)
        except UnreadableTimestamp:
            unreadable.append(i)
            continue
        if when is not None:
            out[i] = when
    return out, np.array(unreadable, dtype=np.intp)


def _stamp_numbers(groups: list[tuple[str, ...]]) -> npt.NDArray[np.int64]:
    """The six numbers (day or month, month or day, year, hour, minute, second) of each Forms
    timestamp, one row each.

    Read as code points (left-aligned, NUL-padded to 4) with array arithmetic: numpy's own
    str-to-int conversion costs more than all the rest. A missing time of day reads "0":
    midnight, as ``_from_text`` reads it.
    """
    digits = np.array(groups, dtype="U4").view(np.uint32).reshape(len(groups), 6, 4)
    numbers = np.zeros((len(groups), 6), dtype=np.int64)
    for k in range(4):
        ch = digits[:, :, k].astype(np.int64)
        numbers = np.where(ch > 0, numbers * 10 + ch - 48, numbers)
    return numbers


def _stamps(
    numbers: npt.NDArray[np.int64], dayfirst: bool
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.bool_]]:
    """The times of ``_stamp_numbers`` rows as datetime64[us], and which are valid dates and
    times (what dt.datetime accepts; the rest go to parse_timestamp, which rejects them)."""
    day, month = (numbers[:, 0], numbers[:, 1]) if dayfirst else (numbers[:, 1], numbers[:, 0])
    hour, minute, second = numbers[:, 3], numbers[:, 4], numbers[:, 5]
    year = np.where(numbers[:, 2] < 100, numbers[:, 2] + 2000, numbers[:, 2])  # "0024" is 2024
    start = ((year - 1970) * 12 + np.clip(month, 1, 12) - 1).astype("datetime64[M]")
    first_day = start.astype("datetime64[D]")
    days_in_month = ((start + 1).astype("datetime64[D]") - first_day).astype(np.int64)
    valid = (
        (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= days_in_month)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
    )
    seconds = (day - 1) * 86_400 + hour * 3_600 + minute * 60 + second
    stamps = first_day.astype("datetime64[us]") + (seconds * 1_000_000).astype("timedelta64[us]")
    return stamps, valid
