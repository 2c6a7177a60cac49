"""Answer values to numbers, one distinct value at a time: likert, yes/no, levels, percent.

The value functions return ``None`` for a value they cannot read; parse keeps such a value with
its raw text so validation can reject it alone and point at its cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from flows.parse.normalise import fold, loose, text_number
from schemas.records import Cell


def _whole(value: float) -> int | None:
    return int(value) if math.isfinite(value) and value == int(value) else None


_LIKERT_LABELS: dict[str, int] = {
    "rất không hài lòng": 1,
    "không hài lòng": 2,
    "chưa hài lòng": 2,
    "bình thường": 3,
    "phân vân": 3,
    "trung lập": 3,
    "tạm hài lòng": 3,
    "hài lòng": 4,
    "rất hài lòng": 5,
}
# No two labels collide once accents are dropped, so the accent-free fallback is unambiguous.
_LIKERT_LOOSE = {loose(k): v for k, v in _LIKERT_LABELS.items()}

# "1 - Rất không hài lòng", "(1)", "1.", "Mức 4: Hài lòng", "Hài lòng (4)", "Rất hài lòng - 5".
_LIKERT_NUMBER_FIRST = re.compile(
    r"^(?:mức\s*)?\(?\s*(\d+)\s*\)?\s*(?:[.:)\-–—/]\s*)?(.*)$", re.IGNORECASE
)
_LIKERT_NUMBER_LAST = re.compile(
    r"^(.*?)\s*(?:[:\-–—]\s*)?\(\s*(\d+)\s*\)$|^(.*?)\s*[:\-–—]\s*(\d+)$"
)


def _likert_label(text: str) -> int | None:
    key = fold(text).strip(" .")
    if key in _LIKERT_LABELS:
        return _LIKERT_LABELS[key]
    return _LIKERT_LOOSE.get(loose(key))


def _likert_number(n: int, rest: str) -> float | None:
    """A number found beside an optional label: valid when 1–5 and, if a label is there too,
    the label says the same (a "5 - Hài lòng" is a contradiction, not a 5)."""
    if not 1 <= n <= 5:
        return None
    if rest.strip(" .") and _likert_label(rest) != n:
        return None
    return float(n)


def likert_value(raw: Cell) -> float | None:
    """A Likert answer as 1.0–5.0, or None when it is not one.

    Accepts numbers 1–5 (int, whole float, or text "4", "4,0"), the canonical labels and the
    variants of DOMAIN.md ("Chưa hài lòng", "Phân vân", "Trung lập", "Tạm hài lòng"), numbered
    labels ("1 - Rất không hài lòng", "(1)", "Hài lòng (4)"), in any case, spacing or Unicode
    form. Everything else ("6", "0", "Không biết", "x", 4.5, booleans) is None.
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        n = _whole(float(raw))
        return float(n) if n is not None and 1 <= n <= 5 else None
    if not isinstance(raw, str):
        return None
    text = fold(raw)
    if not text:
        return None
    label = _likert_label(text)
    if label is not None:
        return float(label)
    number = text_number(text)
    if number is not None:
        n = _whole(number)
        return float(n) if n is not None and 1 <= n <= 5 else None
    m = _LIKERT_NUMBER_FIRST.match(text)
    if m:
        return _likert_number(int(m.group(1)), m.group(2))
    m = _LIKERT_NUMBER_LAST.match(text)
    if m:
        rest, digits = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
        return _likert_number(int(digits), rest)
    return None


_YES = {"có", "yes", "y", "x", "✓", "✔", "√", "đúng", "true"}
_NO = {"không", "no", "n", "sai", "false"}
_YES_LOOSE = {loose(w) for w in _YES}
_NO_LOOSE = {loose(w) for w in _NO}


def yesno_value(raw: Cell) -> float | None:
    """A yes/no answer as 1.0 (Có) or 0.0 (Không), or None.

    Accepts Có/Không, Yes/No, 1/0, TRUE/FALSE checkboxes, and "x" (or a tick), which paper
    forms typed into Excel use to mark "Có" (DOMAIN.md). "Có (1)" style labels are read too.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int | float):
        n = _whole(float(raw))
        return float(n) if n in (0, 1) else None
    if not isinstance(raw, str):
        return None
    text = fold(raw).strip(" .")
    # "Có (1)", "Không - 0": keep the word; the number must agree if present.
    m = re.fullmatch(r"(.*?)\s*(?:[\-–:]\s*)?\(?\s*([01])\s*\)?", text)
    if m and m.group(1):
        word = yesno_value(m.group(1))
        return word if word == float(m.group(2)) else None
    if text in _YES:
        return 1.0
    if text in _NO:
        return 0.0
    number = text_number(text)
    if number is not None:
        return number if number in (0.0, 1.0) else None
    key = loose(text)
    if key in _YES_LOOSE:
        return 1.0
    if key in _NO_LOOSE:
        return 0.0
    return None


LEVELS: dict[str, int] = {"tốt": 10, "khá": 7, "trung bình": 5, "yếu": 3, "kém": 0}
_LEVELS_LOOSE = {loose(k): v for k, v in LEVELS.items()}
_LEVEL_POINTS = frozenset(LEVELS.values())


def level_value(raw: Cell) -> float | None:
    """A service-review level as points: Tốt 10, Khá 7, Trung bình 5, Yếu 3, Kém 0.

    The points themselves (10, 7, 5, 3, 0) are accepted too, and "Tốt (10)" style labels
    when label and points agree; any other number is None (a level, not a score).
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        n = _whole(float(raw))
        return float(n) if n in _LEVEL_POINTS else None
    if not isinstance(raw, str):
        return None
    text = fold(raw).strip(" .")
    if text in LEVELS:
        return float(LEVELS[text])
    number = text_number(text)
    if number is not None:
        n = _whole(number)
        return float(n) if n in _LEVEL_POINTS else None
    m = re.fullmatch(r"(.*?)\s*(?:[\-–:]\s*)?\(?\s*(\d+)\s*(?:điểm)?\s*\)?", text)
    if m and m.group(1):
        word = level_value(m.group(1))
        return word if word == float(m.group(2)) else None
    key = loose(text)
    return float(_LEVELS_LOOSE[key]) if key in _LEVELS_LOOSE else None


_PERCENT_TEXT = re.compile(r"[^\d]*?(\d+(?:[.,]\d+)?)\s*%?[^\d]*")


def percent_value(raw: Cell) -> float | None:
    """An expectation share as 0–100: "80", "80 %", "80%", "khoảng 80%", 80.

    A numeric cell strictly between 0 and 1 is a percent-formatted cell (Excel stores 80% as
    0.8), so it is scaled to 80. Numbers outside 0–100 are returned unchanged so validation
    rejects them with their value; text holding no number, or two ("70-80%"), is None.
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
        if not math.isfinite(value):
            return None
        return value * 100 if 0 < value < 1 else value
    if not isinstance(raw, str):
        return None
    text = fold(raw)
    if not text:
        return None
    number = text_number(text.rstrip("% "))
    if number is not None:
        return number
    m = _PERCENT_TEXT.fullmatch(text)
    if m:
        return float(m.group(1).replace(",", "."))
    return None


NORMALISERS: dict[str, Callable[[Cell], float | None]] = {
    "likert": likert_value,
    "yesno": yesno_value,
    "level": level_value,
    "percent": percent_value,
}
