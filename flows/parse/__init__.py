"""Parse one sheet against its questionnaire into tidy rows: pure functions of plain values.

Steps: find the header row (below title blocks), map header texts to item codes (never by
position), then turn every non-empty answer cell into one ``answers`` row keeping its sheet row
and column. Values are normalised per *distinct* raw value (a sheet has thousands of cells and
a few dozen distinct labels), with numpy doing the per-cell work, because a province sends
millions of answers a night.

What parse rejects itself (rows of ``Parsed.rejections``): unreadable timestamps, formulas
without a cached value, and exact duplicate responses. An answer it cannot read stays in
``answers`` with value NaN and its raw text, so validation rejects that one value with the rule
that explains it. Personal data (names, phones, e-mails) never leaves this module: e-mails only
as a salted hash, the other columns not at all.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from flows.fetch.gsheets import tables_from_content
from flows.parse.normalise import (
    cell_text,
    fold,
    is_blank,
    level_value,
    likert_value,
    loose,
    parse_timestamps,
    percent_value,
    strip_numbering,
    yesno_value,
)
from flows.read import FormulaWithoutValue, read_tables
from flows.settings import Limits
from schemas.questionnaire import Item, Questionnaire
from schemas.records import REJECTION_COLUMNS, Cell, Parsed, SourceError, Table

#: question_code of rejections about the timestamp column.
TIMESTAMP = "TIMESTAMP"
#: The header row is looked for in this many rows from the top (title blocks are short).
HEADER_SCAN_ROWS = 50

RULE_UNREADABLE_TIMESTAMP = "unreadable_timestamp"
RULE_FORMULA = "formula_without_value"
RULE_DUPLICATE = "duplicate_response"
REASON_UNREADABLE_TIMESTAMP = "Không đọc được dấu thời gian"
REASON_FORMULA = "công thức không có giá trị"

NORMALISERS: dict[str, Callable[[Cell], float | None]] = {
    "likert": likert_value,
    "yesno": yesno_value,
    "level": level_value,
    "percent": percent_value,
}

# "ngày khảo sát" heads the date column of typed-in paper forms.
_TIMESTAMP_HEADERS = {
    "dấu thời gian",
    "timestamp",
    "thời gian",
    "thời gian gửi",
    "thời điểm gửi",
    "ngày khảo sát",
    "ngày",
}
_EMAIL_HEADERS = {
    "địa chỉ email",
    "email address",
    "email",
    "e-mail",
    "địa chỉ e-mail",
    "địa chỉ thư điện tử",
    "thư điện tử",
}
#: Header beginnings of columns holding personal data: dropped, never returned.
_PERSONAL_PREFIXES = (
    "họ và tên",
    "họ tên",
    "tên học sinh",
    "tên phụ huynh",
    "tên cha mẹ",
    "tên con",
    "số điện thoại",
    "điện thoại",
    "sđt",
    "sdt",
    "địa chỉ nhà",
    "địa chỉ liên hệ",
    "số cmnd",
    "số cccd",
    "căn cước",
    "mã định danh",
)
#: Serial-number columns of typed-in paper forms: expected noise, not "unknown".
_IGNORED_HEADERS = {"stt", "tt", "số tt", "số thứ tự"}
_TOTALS = {"tổng", "tổng cộng", "cộng", "tổng số", "total"}
_SUMMARY_PREFIXES = (
    "tổng cộng",
    "tổng số",
    "người lập",
    "người tổng hợp",
    "hiệu trưởng",
    "phó hiệu trưởng",
    "kt. hiệu trưởng",
    "thủ trưởng",
    "xác nhận",
    "ký tên",
)
_SIGNATURE_DATE = re.compile(r"ngày\s*\S*\s*tháng\s*\S*\s*năm")
_GRID = re.compile(r"^(.*?)\s*\[(.+)\]\s*$", re.DOTALL)
_CODE_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*)(?:\s*[.:)\-–]\s*|\s+)")
_CODE_LIKE = re.compile(r"^[^\W\d_]{1,4}\d+[a-z]?\s*[.:)\-–]\s*(.+)$", re.DOTALL)


#: header_key and _Index.match run on every cell of the first HEADER_SCAN_ROWS rows of every
#: sheet, twice (pick_table, find_header_row); most of those cells repeat (labels, classes), so
#: both are memoised. Profiled: 100 ms a sheet before, the most expensive part of parsing.
_MATCH_CACHE_SIZE = 65_536


@functools.lru_cache(maxsize=_MATCH_CACHE_SIZE)
def header_key(header: str) -> str:
    """A header as compared: numbering stripped, folded, trailing ".:?*" and "(*)" dropped."""
    key = fold(strip_numbering(fold(header)))
    key = key.removesuffix("(*)")
    return key.rstrip(" .:?*")


# --------------------------------------------------------------------------------------------
# Header matching


@dataclass
class HeaderMatch:
    """How one header row maps to a questionnaire (column indexes 0-based)."""

    #: column index -> item code, for every matched item column.
    items: dict[int, str] = field(default_factory=dict)
    timestamp: int | None = None
    email: int | None = None
    #: header texts of dropped personal columns (the e-mail column included).
    personal: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    #: item code -> header text as found.
    headers: dict[str, str] = field(default_factory=dict)

    def score(self, questionnaire: Questionnaire) -> int:
        """How much this row looks like the questionnaire's header row: 0 unless it holds at
        least one scored item; else the items matched, plus one for a timestamp column."""
        scored = {i.code for i in questionnaire.scored_items}
        if not scored.intersection(self.items.values()):
            return 0
        return len(self.items) + (self.timestamp is not None)


class _Index:
    """Lookup of header keys to items for one questionnaire."""

    def __init__(self, questionnaire: Questionnaire) -> None:
        self.by_code = {i.code: i for i in questionnaire.items}
        self.scored = frozenset(i.code for i in questionnaire.scored_items)
        #: Cell strings known to name no scored item. Nearly every cell of the rows scanned for
        #: the header is an answer, an e-mail or a timestamp; a row made only of such cells is
        #: settled by one C-speed set test instead of a match_headers call (see may_score).
        self._inert: set[Cell] = {None}
        #: header text -> match (a pure function of the text and the questionnaire).
        self._matched: dict[str, Item | None] = {}
        self.exact: dict[str, list[Item]] = {}
        self.loose: dict[str, list[Item]] = {}
        for item in questionnaire.items:
            for text in (item.code, item.text, *item.aliases):
                self._add(header_key(text), item)

    def _add(self, key: str, item: Item) -> None:
        for table, k in ((self.exact, key), (self.loose, loose(key))):
            bucket = table.setdefault(k, [])
            if item not in bucket:
                bucket.append(item)

    def find(self, text: str, grid: str | None = None) -> Item | None:
        """The item a text names; a grid title decides between items sharing a row text.
        Accent-free keys are tried only when the exact key names nothing."""
        key = header_key(text)
        for table, k in ((self.exact, key), (self.loose, loose(key))):
            found = table.get(k, [])
            if len(found) > 1 and grid is not None:
                gk = header_key(grid)
                found = [i for i in found if i.grid and header_key(i.grid) == gk] or found
            if len(found) == 1:
                return found[0]
        return None

    def match(self, header: str) -> Item | None:
        """The item a header names: whole text, grid row, or a leading item code."""
        try:
            return self._matched[header]
        except KeyError:
            pass
        if len(self._matched) >= _MATCH_CACHE_SIZE:
            self._matched.clear()
        item = self._matched[header] = self._match(header)
        return item

    def may_score(self, row: Sequence[Cell]) -> bool:
        """Whether ``match_headers(row)`` can score above 0: some cell names a scored item.

        A row failing this scores 0 whatever else it holds (``HeaderMatch.score`` needs a
        scored item, and items only come from ``match``), so the header search runs
        match_headers only on the rows passing it: the header row and its repeats.
        """
        inert = self._inert
        if inert.issuperset(row):
            return False
        for cell in row:
            if cell in inert or is_blank(cell):
                continue
            item = self.match(cell_text(cell).strip())
            if item is not None and item.code in self.scored:
                return True
            # Only plain strings are remembered: 1 == 1.0 == True in a set, yet their texts
            # ("1", "TRUE") differ; a str subclass equal to a remembered string has its text.
            if cell.__class__ is str:
                if len(inert) >= _MATCH_CACHE_SIZE:
                    inert.clear()
                    inert.add(None)
                inert.add(cell)
        return False

    def _match(self, header: str) -> Item | None:
        item = self.find(header)
        if item is not None:
            return item
        m = _GRID.match(header)
        if m:
            item = self.find(m.group(2), grid=m.group(1))
            if item is not None:
                return item
        m = _CODE_PREFIX.match(header.strip())
        if m and m.group(1) in self.by_code:
            return self.by_code[m.group(1)]
        # A label that is not one of our codes ("TC3. Tính kịp thời" where TC means tiêu chí):
        # numbering of the school's own, so the text after it decides.
        m = _CODE_LIKE.match(header.strip())
        return self.find(m.group(1)) if m else None


#: Indexes by questionnaire code; each entry holds the questionnaire it was built from and
#: serves that object or an equal one. Header rows are matched many times per sheet (every
#: candidate row, every sheet of a workbook), the index is built once; and a parse process
#: receives each job's questionnaire as a fresh (unpickled) copy, which must not cost a new
#: index (0.4 ms) and the cell texts it has learned.
_INDEXES: dict[str, tuple[Questionnaire, _Index]] = {}


def _index(questionnaire: Questionnaire) -> _Index:
    hit = _INDEXES.get(questionnaire.code)
    if hit is not None and (hit[0] is questionnaire or hit[0] == questionnaire):
        return hit[1]
    if len(_INDEXES) > 64:
        _INDEXES.clear()
    index = _Index(questionnaire)
    _INDEXES[questionnaire.code] = (questionnaire, index)
    return index


def match_headers(headers: Sequence[Cell], questionnaire: Questionnaire) -> HeaderMatch:
    """Map one row of header cells to item codes, the timestamp and e-mail columns.

    Matching is by item code ("TC1", "TC1. …"), by item text or alias, or by the row part of
    a Google Forms grid header "Title [Row]" (the title decides when two grids share a row
    text), after folding case, Unicode form and spaces and stripping numbering ("Câu 5.",
    "1)"); accents are ignored only when that still names one item. Personal columns (names,
    phone numbers, e-mail) are listed in ``personal`` and never mapped; a second column for
    the same item, and anything else unrecognised, is listed in ``unknown``.
    """
    index = _index(questionnaire)
    match = HeaderMatch()
    for col, cell in enumerate(headers):
        if is_blank(cell):
            continue
        text = cell_text(cell).strip()
        key = header_key(text)
        if key in _TIMESTAMP_HEADERS and match.timestamp is None:
            match.timestamp = col
            continue
        if key in _EMAIL_HEADERS:
            if match.email is None:
                match.email = col
            match.personal.append(text)
            continue
        item = index.match(text)
        if item is not None and item.code not in match.headers:
            match.items[col] = item.code
            match.headers[item.code] = text
        elif key.startswith(_PERSONAL_PREFIXES):
            match.personal.append(text)
        elif key not in _IGNORED_HEADERS:
            match.unknown.append(text)
    return match


def find_header_row(table: Table, questionnaire: Questionnaire) -> int:
    """The 0-based index in ``table.rows`` of the header row: among the first
    ``HEADER_SCAN_ROWS`` rows, the one matching most items (the first on a tie), so title
    blocks ("SỞ GDĐT …", "TRƯỜNG …"), merged grid titles and blank rows above it are skipped.

    Raises ``SourceError`` naming the questionnaire expected and the first cells found.
    """
    index = _index(questionnaire)
    best, best_score = -1, 0
    for i, row in enumerate(table.rows[:HEADER_SCAN_ROWS]):
        if not index.may_score(row) or not any(isinstance(v, str) for v in row):
            continue  # scores 0: cannot be the best
        score = match_headers(row, questionnaire).score(questionnaire)
        if score > best_score:
            best, best_score = i, score
    if best < 0:
        raise SourceError(
            f"sheet {table.name!r}: no header row of {questionnaire.code} "
            f"({questionnaire.name}) in the first {HEADER_SCAN_ROWS} rows; expected headers "
            f"such as {_expected(questionnaire)}; found {_first_cells(table)}"
        )
    return best


def _expected(questionnaire: Questionnaire) -> str:
    return ", ".join(repr(_short(i.text)) for i in questionnaire.scored_items[:3])


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _first_cells(table: Table, n: int = 5) -> str:
    cells = [
        repr(_short(cell_text(v)))
        for row in table.rows[:HEADER_SCAN_ROWS]
        for v in row
        if not is_blank(v)
    ][:n]
    return ", ".join(cells) if cells else "no text at all"


def pick_table(
    tables: Sequence[Table], questionnaire: Questionnaire, sheet: str | None = None
) -> Table:
    """The sheet to parse: the configured one (by name, then case-insensitively), else the
    sheet whose headers match the questionnaire best (the first on a tie).

    Raises ``SourceError`` listing the sheet names when the configured sheet is absent or no
    sheet holds the questionnaire's headers.
    """
    names = ", ".join(repr(t.name) for t in tables) or "none"
    if sheet is not None:
        for t in tables:
            if t.name == sheet:
                return t
        for t in tables:
            if fold(t.name) == fold(sheet):
                return t
        raise SourceError(f"sheet {sheet!r} not found; the file has sheets {names}")
    index = _index(questionnaire)
    best: Table | None = None
    best_score = 0
    for t in tables:
        score = max(
            (
                match_headers(r, questionnaire).score(questionnaire)
                for r in t.rows[:HEADER_SCAN_ROWS]
                if index.may_score(r)  # the others score 0
            ),
            default=0,
        )
        if score > best_score:
            best, best_score = t, score
    if best is None:
        found = "; ".join(f"{t.name!r}: {_first_cells(t, 3)}" for t in tables if t.rows)
        raise SourceError(
            f"no sheet holds the headers of {questionnaire.code} ({questionnaire.name}); "
            f"expected headers such as {_expected(questionnaire)}; sheets {names}"
            + (f" (first cells: {found})" if found else "")
        )
    return best


# --------------------------------------------------------------------------------------------
# Parsing a sheet


def _is_totals(row: Sequence[Cell]) -> bool:
    """A row that is the report's, not a respondent's: its first non-empty cell says "Tổng",
    "Tổng cộng", "Cộng"… (totals) or starts a printed report's signature block ("Người lập
    biểu", "Hiệu trưởng", "…, ngày 5 tháng 11 năm 2024")."""
    for v in row:
        if v is None:
            continue
        if not isinstance(v, str):
            return False
        text = v.lstrip()
        if not text:
            continue
        # Called for every row: most start with a timestamp or a number, settled at once.
        if text[0].isdigit() or len(text) > 80:
            return False
        key = fold(text).rstrip(" :.")
        return (
            key in _TOTALS
            or key.startswith(_SUMMARY_PREFIXES)
            or _SIGNATURE_DATE.search(key) is not None
        )
    return False


def _hash(salt: str, email: Cell) -> str | None:
    # Called for every distinct e-mail, nearly all plain text: that case first, in few calls.
    if email.__class__ is str:
        if not email.strip():
            return None
        text = fold(email)
    elif is_blank(email) or isinstance(email, FormulaWithoutValue):
        return None
    else:
        text = fold(cell_text(email))
    return hashlib.sha256((salt + text).encode("utf-8")).hexdigest()


def _text(value: Cell) -> str | None:
    """A text answer as stored: NFC (so "5Ạ" typed either way groups as one class), spaces
    trimmed, case kept."""
    if is_blank(value) or isinstance(value, FormulaWithoutValue):
        return None
    return unicodedata.normalize("NFC", cell_text(value)).strip()


def _rectangle(rows: Sequence[Sequence[Cell]], width: int) -> npt.NDArray[np.object_]:
    """Rows as a 2-D object array (ragged rows, as the Sheets API sends them, padded)."""
    arr = np.empty((len(rows), width), dtype=object)
    if rows and width:
        arr[:, :] = [
            r if len(r) == width else [*r[:width], *([None] * (width - len(r)))] for r in rows
        ]
    return arr


@dataclass
class _Cells:
    """The recognised columns of the data rows, as codes into the distinct raw values.

    ``codes[i, p]`` is the index in ``uniques`` of row i's value in column ``used[p]``, or -1
    for an empty cell; every per-value table built from ``uniques`` gets one extra last entry
    so it can be indexed with -1 directly.
    """

    used: list[int]
    codes: npt.NDArray[np.int64]
    uniques: list[Cell]
    formula: npt.NDArray[np.bool_]

    @classmethod
    def build(cls, data: Sequence[Sequence[Cell]], width: int, used: list[int]) -> _Cells:
        arr = _rectangle(data, width)[:, used]
        flat, uniques_arr = pd.factorize(arr.ravel(), use_na_sentinel=True)
        uniques: list[Cell] = list(uniques_arr)
        codes = np.asarray(flat, dtype=np.int64).reshape(len(data), len(used))
        # (factorize already made None and NaN -1: only blank text is left to find.)
        blank = np.array(
            [(not v.strip()) if v.__class__ is str else is_blank(v) for v in uniques] + [True],
            dtype=bool,
        )
        # "", " " and None become one "empty" (-1), so duplicates compare what a person sees.
        codes = np.where(blank[codes], -1, codes)
        return cls(
            used=used,
            codes=codes,
            uniques=uniques,
            formula=np.array([isinstance(v, FormulaWithoutValue) for v in uniques] + [False]),
        )

    def raw(self, code: int) -> str:
        """The text of a distinct value as a person sees it (computed on demand: most
        distinct values are e-mails and timestamps, whose text only a rejection shows)."""
        return cell_text(self.uniques[code]) if code >= 0 else ""

    def column(self, col: int) -> npt.NDArray[np.int64]:
        return self.codes[:, self.used.index(col)]

    def table(self, fn: Callable[[Cell], object], cols: Sequence[int]) -> npt.NDArray[np.object_]:
        """``fn`` of the distinct values found in columns ``cols`` (None elsewhere and for the
        empty sentinel), as an object array indexed by code."""
        out = np.full(len(self.uniques) + 1, None, dtype=object)
        for c in self.distinct(cols):
            out[c] = fn(self.uniques[c])
        return out

    def distinct(self, cols: Sequence[int]) -> list[int]:
        """Codes of the distinct non-empty values in columns ``cols``."""
        if not cols:
            return []
        return _present(self.codes[:, [self.used.index(c) for c in cols]], len(self.uniques))


def _present(codes: npt.NDArray[np.int64], n_uniques: int) -> list[int]:
    """The distinct non-negative codes among ``codes``, ascending: marked in a table of all
    codes, in linear time, rather than sorted (np.unique) as thousands of cells would be."""
    seen = np.zeros(n_uniques + 1, dtype=bool)
    seen[codes.ravel()] = True
    seen[-1] = False  # the empty sentinel -1
    return np.flatnonzero(seen).tolist()


class _Rejections:
    def __init__(self, sheet: str, first_row: int) -> None:
        self.sheet = sheet
        self.first_row = first_row
        self.rows: list[dict[str, object]] = []

    def add(
        self,
        scope: str,
        i: int,
        col: int | None,
        code: str | None,
        raw: str | None,
        rule: str,
        reason: str,
        response_no: int | None,
    ) -> None:
        self.rows.append(
            {
                "scope": scope,
                "sheet": self.sheet,
                "row": self.first_row + i,
                "col": None if col is None else col + 1,
                "question_code": code,
                "raw_value": raw,
                "rule": rule,
                "reason": reason,
                "response_no": response_no,
            }
        )

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            # Most sheets have no rejection; building the empty frame (astype, sort) cost more
            # than a millisecond a sheet, a copy of the one built once costs nothing.
            return _empty_rejections().copy(deep=False)  # copy-on-write: safe to share
        return self._build(self.rows)

    @staticmethod
    def _build(rows: list[dict[str, object]]) -> pd.DataFrame:
        df = pd.DataFrame(rows, columns=REJECTION_COLUMNS)
        df = df.astype({"row": "Int64", "col": "Int64", "response_no": "Int64"})
        return df.sort_values(["row", "col"], na_position="first", kind="stable").reset_index(
            drop=True
        )


@functools.cache
def _empty_rejections() -> pd.DataFrame:
    """The rejections frame of a sheet without any, built the same way as any other; callers
    copy it (frames are mutable)."""
    return _Rejections._build([])


def parse_table(table: Table, questionnaire: Questionnaire, salt: str) -> Parsed:
    """Parse one sheet against one questionnaire (see ``Parsed`` for the frames' columns).

    - the header row is found by ``find_header_row`` (SourceError when there is none);
      ``Parsed.header_row`` is its 1-based sheet row;
    - blank rows (no value in any item column), totals and signature rows, and repeats of
      the header row are skipped;
    - an empty cell is no answer (no row); an unreadable one is an answer with value NaN;
    - an unreadable timestamp is a rejection (question_code TIMESTAMP) and the response is
      kept with NaT; a formula without a cached value is a rejection and no answer;
    - an exact duplicate (same timestamp cell, same answers, same e-mail) of an earlier row is
      rejected ("Trùng lặp với dòng N") and not kept; rows without a timestamp are never
      duplicates, as identical paper forms are legitimate;
    - respondent_hash is sha256(salt + folded e-mail); the e-mail itself is not returned;
    - ``n_rows_read`` counts the rows holding any item value (totals and duplicates included).
    """
    header_idx = find_header_row(table, questionnaire)
    headers = table.rows[header_idx]
    match = match_headers(headers, questionnaire)
    first_row = header_idx + 2  # sheet row (1-based) of the first data row
    data = table.rows[header_idx + 1 :]
    width = max([len(headers), *(len(r) for r in data)])
    item_cols = sorted(match.items)
    extra = [c for c in (match.timestamp, match.email) if c is not None]
    cells = _Cells.build(data, width, item_cols + extra)
    rejections = _Rejections(table.name, first_row)

    item_codes = cells.codes[:, : len(item_cols)]
    has_item: npt.NDArray[np.bool_] = np.asarray((item_codes >= 0).any(axis=1), dtype=bool)
    totals = np.array(
        [h and _is_totals(row) for h, row in zip(has_item.tolist(), data, strict=True)],
        dtype=bool,
    )
    considered = has_item & ~totals & ~_repeated_header(cells, headers, item_cols)

    duplicate_of = _duplicates(cells, match, considered)
    kept_idx = np.flatnonzero(considered & (duplicate_of < 0))
    response_no = np.zeros(len(data), dtype=np.int64)
    response_no[kept_idx] = np.arange(1, len(kept_idx) + 1)
    for i in np.flatnonzero(duplicate_of >= 0):
        reason = f"Trùng lặp với dòng {first_row + int(duplicate_of[i])}"
        rejections.add("response", int(i), None, None, None, RULE_DUPLICATE, reason, None)

    # Formulas without values: a rejection each, and no answer (looked for column by column
    # only in the few sheets holding one).
    for col in item_cols if cells.formula.any() else []:
        col_codes = cells.column(col)
        for i in kept_idx[cells.formula[col_codes[kept_idx]]]:
            raw = cells.raw(int(col_codes[i]))
            code, no = match.items[col], int(response_no[i])
            rejections.add("value", int(i), col, code, raw, RULE_FORMULA, REASON_FORMULA, no)

    submitted_at = _timestamps(cells, match, kept_idx, response_no, rejections)
    texts = {
        "respondent_hash": _hashes(cells, match, kept_idx, salt),
        **_text_columns(cells, match, questionnaire, kept_idx),
    }
    # The object columns as one 2-D block, then the typed ones in front: a frame of one
    # object block costs a third of one built from a Series per column.
    block = np.empty((len(kept_idx), len(texts)), dtype=object)
    for j, values in enumerate(texts.values()):
        block[:, j] = values
    responses = pd.DataFrame(block, columns=list(texts), dtype=object, copy=False)
    responses.insert(0, "submitted_at", submitted_at)
    responses.insert(0, "row", (first_row + kept_idx).astype(np.int64))
    responses.insert(0, "response_no", response_no[kept_idx])

    found = set(match.items.values())
    missing = [i.code for i in questionnaire.scored_items if i.code not in found]
    if questionnaire.service_item and questionnaire.service_item not in found:
        missing.append(questionnaire.service_item)
    parsed = Parsed(
        questionnaire=questionnaire.code,
        sheet=table.name,
        header_row=header_idx + 1,
        columns=dict(match.headers),
        unknown_columns=match.unknown,
        missing_questions=missing,
        responses=responses,
        answers=_answers(cells, match, questionnaire, kept_idx, response_no, first_row),
        rejections=rejections.frame(),
        n_rows_read=int(has_item.sum()),
        personal_columns=match.personal,
    )
    parsed.renamed_questions = renamed_questions(parsed, questionnaire)
    return parsed


def _repeated_header(
    cells: _Cells, headers: Sequence[Cell], item_cols: list[int]
) -> npt.NDArray[np.bool_]:
    """Rows repeating the header row (a printed sheet repeats it on every page): more than half
    of the item cells hold the header's own text."""
    # Only text is looked up, and only text equals text; built in C, not a Python loop.
    code_of = dict(zip(cells.uniques, range(len(cells.uniques)), strict=True))
    header_codes = np.array(
        [code_of.get(h, -2) if isinstance(h := headers[c], str) else -2 for c in item_cols],
        dtype=np.int64,
    )
    same = (cells.codes[:, : len(item_cols)] == header_codes).sum(axis=1)
    return np.asarray(same * 2 > len(item_cols), dtype=bool)


def _duplicates(
    cells: _Cells, match: HeaderMatch, considered: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """For each row, the index of the earlier row it exactly repeats, else -1."""
    duplicate_of = np.full(len(considered), -1, dtype=np.int64)
    if match.timestamp is None:
        return duplicate_of
    cand = np.flatnonzero(considered & (cells.column(match.timestamp) >= 0))
    if len(cand) < 2:
        return duplicate_of
    # Same code = same raw value, so equal rows of codes are exact duplicates. Each row's
    # codes as bytes are an exact key (no hash collision can reject a response), and a dict
    # of a few hundred keys is cheaper than hashing a DataFrame.
    rows = np.ascontiguousarray(cells.codes[cand])
    data = rows.tobytes()
    size = rows.shape[1] * rows.itemsize
    first_of: dict[bytes, int] = {}
    keys = (data[k : k + size] for k in range(0, len(data), size))
    first = np.array([first_of.setdefault(key, n) for n, key in enumerate(keys)], dtype=np.intp)
    dup = first != np.arange(len(cand))
    duplicate_of[cand[dup]] = cand[first[dup]]
    return duplicate_of


def _timestamps(
    cells: _Cells,
    match: HeaderMatch,
    kept_idx: npt.NDArray[np.intp],
    response_no: npt.NDArray[np.int64],
    rejections: _Rejections,
) -> npt.NDArray[np.datetime64]:
    """submitted_at of the kept rows; unreadable ones become NaT and a rejection."""
    if match.timestamp is None:
        return np.full(len(kept_idx), np.datetime64("NaT", "us"))
    col_codes = cells.column(match.timestamp)[kept_idx]
    wanted = np.unique(col_codes)
    wanted = wanted[wanted >= 0]
    is_formula = cells.formula[wanted]
    readable = wanted[~is_formula]
    # One day/month order for the whole column, never decided value by value (a formula's
    # text never reads as a date, so leaving formulas out does not change the order).
    stamps, unreadable = parse_timestamps([cells.uniques[c] for c in readable.tolist()])
    # Per code (plus the empty sentinel -1 last): the time, and why it failed (0: it did not).
    by_code = np.full(len(cells.uniques) + 1, np.datetime64("NaT", "us"))
    by_code[readable] = stamps
    failed = np.zeros(len(cells.uniques) + 1, dtype=np.int8)
    failed[wanted[is_formula]] = 1
    failed[readable[unreadable]] = 2
    for j in np.flatnonzero(failed[col_codes]).tolist():
        c = int(col_codes[j])
        i = int(kept_idx[j])
        rule, reason = (
            (RULE_FORMULA, REASON_FORMULA)
            if failed[c] == 1
            else (RULE_UNREADABLE_TIMESTAMP, REASON_UNREADABLE_TIMESTAMP)
        )
        raw = cells.raw(c)
        rejections.add(
            "value", i, match.timestamp, TIMESTAMP, raw, rule, reason, int(response_no[i])
        )
    return by_code[col_codes]


def _hashes(
    cells: _Cells, match: HeaderMatch, kept_idx: npt.NDArray[np.intp], salt: str
) -> npt.NDArray[np.object_]:
    if match.email is None:
        return np.full(len(kept_idx), None, dtype=object)
    table = cells.table(lambda v: _hash(salt, v), [match.email])
    return table[cells.column(match.email)[kept_idx]]


def _text_columns(
    cells: _Cells,
    match: HeaderMatch,
    questionnaire: Questionnaire,
    kept_idx: npt.NDArray[np.intp],
) -> dict[str, npt.NDArray[np.object_]]:
    """``service``, then one column per text item (every text item, found or not, so the
    frame's columns depend on the questionnaire only)."""
    col_of = {code: c for c, code in match.items.items()}
    by_code = _index(questionnaire).by_code  # questionnaire.item(), without its linear search
    text_cols = [c for c, code in match.items.items() if by_code[code].kind == "text"]
    texts = cells.table(_text, text_cols)
    service = np.full(len(kept_idx), None, dtype=object)
    columns: dict[str, npt.NDArray[np.object_]] = {}
    for item in questionnaire.items:
        if item.kind != "text":
            continue
        values = np.full(len(kept_idx), None, dtype=object)
        if item.code in col_of:
            values = texts[cells.column(col_of[item.code])[kept_idx]]
        columns[item.code] = values
        if item.code == questionnaire.service_item:
            service = values
    return {"service": service, **columns}


def _answers(
    cells: _Cells,
    match: HeaderMatch,
    questionnaire: Questionnaire,
    kept_idx: npt.NDArray[np.intp],
    response_no: npt.NDArray[np.int64],
    first_row: int,
) -> pd.DataFrame:
    """One row per non-empty scored cell of the kept rows, in sheet order (row, then column)."""
    by_code = _index(questionnaire).by_code  # questionnaire.item(), without its linear search
    scored = [c for c in sorted(match.items) if by_code[match.items[c]].kind != "text"]
    kinds: list[str] = [by_code[match.items[c]].kind for c in scored]
    kind_names = sorted(set(kinds))
    # values[k, u]: distinct value u normalised as kind k, each computed once, and only for
    # values that occur in a column of that kind.
    values = np.full((len(kind_names), len(cells.uniques) + 1), np.nan)
    for k, kind in enumerate(kind_names):
        normalise = NORMALISERS[kind]
        for j in cells.distinct([c for c, ck in zip(scored, kinds, strict=True) if ck == kind]):
            got = normalise(cells.uniques[j])
            if got is not None:
                values[k, j] = got
    positions = [cells.used.index(c) for c in scored]
    sub = cells.codes[np.ix_(kept_idx, np.array(positions, dtype=np.intp))]
    ri, ci = np.nonzero((sub >= 0) & ~cells.formula[sub])
    cell_codes = sub[ri, ci]
    rows = kept_idx[ri]
    col_kind = np.array([kind_names.index(k) for k in kinds], dtype=np.int64)
    codes_of_col = [match.items[c] for c in scored]
    # The raw text of the distinct values of these cells only, each at its place in ``present``.
    present = _present(cell_codes, len(cells.uniques))
    place = np.zeros(len(cells.uniques) + 1, dtype=np.intp)
    place[present] = np.arange(len(present))
    raw = [cells.raw(c) for c in present]
    # Every column is a fresh array nobody else holds, so the frame may keep it (copy=False):
    # copying 7 columns of thousands of rows was a third of the cost of building the frame.
    return pd.DataFrame(
        {
            "response_no": response_no[rows].astype(np.int64),
            "question_code": _take_str(codes_of_col, ci),
            "kind": _take_str(kinds, ci),
            "value": values[col_kind[ci], cell_codes].astype(float),
            "raw": _take_str(raw, place[cell_codes]),
            "row": (first_row + rows).astype(np.int64),
            "col": (np.array(scored, dtype=np.int64)[ci] + 1).astype(np.int64),
        },
        copy=False,
    )


def _take_str(
    values: list[str], idx: npt.NDArray[np.int64] | npt.NDArray[np.intp]
) -> pd.api.extensions.ExtensionArray:
    """A str column of ``values[idx]``: taken from the few distinct strings (a C loop), not
    converted one by one from millions of objects."""
    return pd.array(values, dtype="str").take(idx)


def renamed_questions(parsed: Parsed, questionnaire: Questionnaire) -> dict[str, str]:
    """Questions the sheet heads with other words than the form's: code -> header found.

    Template drift for the data officer: a matched alias, a reworded grid title or an edited
    question text still loads, but the department should know the school's form has drifted.
    """
    renamed: dict[str, str] = {}
    for code, header in parsed.columns.items():
        try:
            item = questionnaire.item(code)
        except KeyError:
            continue
        canonical = {header_key(item.text), header_key(code)}
        if item.grid:
            canonical.add(header_key(f"{item.grid} [{item.text}]"))
        if header_key(header) not in canonical:
            renamed[code] = header
    return renamed


@dataclass(frozen=True)
class ParseJob:
    """One fetched submission to parse: plain values, so it can travel to a parse process."""

    content: bytes
    filename: str
    kind: str  # excel | csv | gsheet (the source's kind)
    worksheet: str | None  # the sheet named in sources.csv, if any
    questionnaire: Questionnaire
    salt: str
    limits: Limits
    timezone: str


def parse_fetched(job: ParseJob) -> Parsed | SourceError:
    """Read a fetched submission's sheets and parse the right one against its questionnaire.

    A source that cannot be used comes back as its SourceError (an outcome to report in one
    line, not a crash). A Google Sheet was fetched as the worksheet the registry names, so its
    one table is parsed as it is.
    """
    try:
        if job.kind == "gsheet":
            tables = tables_from_content(job.content, timezone=job.timezone)
            table = pick_table(tables, job.questionnaire, None)
        else:
            tables = _tables(job.content, job.filename, job.limits)
            table = pick_table(tables, job.questionnaire, job.worksheet)
        return parse_table(table, job.questionnaire, job.salt)
    except SourceError as exc:
        return exc


#: Files this process read ahead (``read_tables_ahead``), by bytes and file name, with the
#: limits they were read under: each is used by the one parse job that asks for the same.
_READ_AHEAD: dict[tuple[bytes, str], tuple[Limits, list[Table]]] = {}


def read_tables_ahead(content: bytes, filename: str, limits: Limits) -> None:
    """Read a file's sheets now, for a parse job of the same bytes expected in this process
    soon (the flow's first batch, read while the command waits for its Prefect API).

    A file that cannot be read is not kept: its parse job reads it again and reports why.
    """
    try:
        tables = read_tables(content, filename, limits)
    except Exception:  # noqa: BLE001 - the parse job meets the same problem and reports it
        return
    # Most cells hold one of a few answer labels, each its own str from calamine: one copy of
    # each text makes a batch of files held ahead a fraction of the memory.
    texts: dict[str, str] = {}
    for table in tables:
        for row in table.rows:
            row[:] = [texts.setdefault(v, v) if v.__class__ is str else v for v in row]
    _READ_AHEAD[content, filename] = (limits, tables)


def _tables(content: bytes, filename: str, limits: Limits) -> list[Table]:
    """``read_tables``, or what ``read_tables_ahead`` read of these bytes under these limits."""
    ahead = _READ_AHEAD.pop((content, filename), None)
    if ahead is None:
        # Files are read ahead in the order the flow asks for them: once one is not there,
        # those left were fetched with other bytes or by another process. Free them.
        _READ_AHEAD.clear()
    elif ahead[0] == limits:
        return ahead[1]
    return read_tables(content, filename, limits)
