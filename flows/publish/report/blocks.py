"""What the draft báo cáo is made of, as plain values: headings, paragraphs, numbered tables
and charts; and how its figures are written (Vietnamese: decimal comma, thousands point).

The section builders (``sections.py``, ``comments.py``) return lists of these blocks from the
mart rows; ``document.py`` lays them out with python-docx. Nothing here does IO.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flows.publish.labels import SUPPRESSED

#: What a cell shows where the mart has no figure.
NO_FIGURE = "—"


@dataclass(frozen=True)
class Heading:
    """A section (level 1) or subsection (level 2) title."""

    text: str
    level: int = 1


@dataclass(frozen=True)
class Para:
    """A paragraph of body text; ``bullet`` for a list item."""

    text: str
    bold: bool = False
    italic: bool = False
    bullet: bool = False


@dataclass(frozen=True)
class Table:
    """A numbered table ("Bảng N. title" above it): header row, then rows of text cells.

    ``widths`` are relative column widths (the document scales them to the text width)."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    widths: list[float] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """A numbered chart ("Biểu đồ N. title" below it): a PNG image."""

    title: str
    png: bytes


@dataclass(frozen=True)
class PageBreak:
    """Start the next block on a new page; ``landscape`` turns the pages from here on."""

    landscape: bool = False


def number(value: Any, digits: int = 1) -> str:
    """A figure as a Vietnamese report writes it: ``85,3``; ``1.234`` for a count; SUPPRESSED
    as it is; NO_FIGURE for none."""
    if value is None:
        return NO_FIGURE
    if isinstance(value, str):
        return value
    if isinstance(value, int) or digits == 0:
        return f"{round(value):,}".replace(",", ".")
    text = f"{value:,.{digits}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def pct(value: Any) -> str:
    """A percentage 0–100 with one decimal: ``85,3`` (the % sign is in the header)."""
    return number(value, 1)


def plain(value: float) -> str:
    """A threshold as few digits as it needs, with a decimal comma: ``3,5``, ``85``."""
    return f"{value:g}".replace(".", ",")


def mean(value: Any) -> str:
    """A mean score 1–5 with two decimals: ``4,59``."""
    return number(value, 2)


def interval(low: float | None, high: float | None) -> str:
    """A confidence interval of percentages: ``80,1–89,2``."""
    if low is None or high is None:
        return NO_FIGURE
    return f"{pct(low)}–{pct(high)}"


def date(value: Any) -> str:
    """A date or time as dd/mm/yyyy (and HH:MM for a time)."""
    if isinstance(value, dt.datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return NO_FIGURE if value is None else str(value)


def is_suppressed(text: str) -> bool:
    """True for a cell hidden by the privacy rule."""
    return text == SUPPRESSED


@dataclass(frozen=True)
class Signature:
    """The closing block of an administrative report: "Nơi nhận" and the signer's title."""

    recipients: list[str]
    signer: str


Block = Heading | Para | Table | Chart | PageBreak | Signature
