"""One sheet parsed against its questionnaire into tidy rows (``parse_table``): pure.

Every non-empty answer cell becomes one ``answers`` row keeping its sheet row and column.
Values are normalised per *distinct* raw value (a sheet has thousands of cells and a few dozen
distinct labels), with numpy doing the per-cell work. What parse rejects itself (rows of
``Parsed.rejections``): unreadable timestamps, formulas without a cached value, and exact
duplicate responses. An answer it cannot read stays in ``answers`` with value NaN and its raw
text, so validation rejects that one value with the rule that explains it. Personal data never
leaves this module: e-mails only as a salted hash, names and phones not at all.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from flows.parse.answers import NORMALISERS
from flows.parse.header import (
    HeaderMatch,
    find_header_row,
    items_by_code,
    match_headers,
    pair_renamed_columns,
    renamed_questions,
)
from flows.parse.normalise import cell_text, fold, is_blank, parse_timestamps
from flows.privacy import mask_personal
from flows.read.cells import FormulaWithoutValue
from schemas.questionnaire import Questionnaire
from schemas.records import REJECTION_COLUMNS, Cell, Parsed, Table, column_letter

#: question_code of rejections about the timestamp column.
TIMESTAMP = "TIMESTAMP"
RULE_UNREADABLE_TIMESTAMP = "unreadable_timestamp"
RULE_FORMULA = "formula_without_value"
RULE_DUPLICATE = "duplicate_response"
#: A cell whose control characters reading dropped (``Table.notes``): kept, and told.
RULE_CONTROL = "control_characters"
REASON_CONTROL = (
    "Ô có ký tự điều khiển (không in được); đã bỏ các ký tự đó, giá trị còn lại được dùng"
)
REASON_UNREADABLE_TIMESTAMP = "Không đọc được dấu thời gian"
REASON_FORMULA = "công thức không có giá trị"
#: An unknown column paired with the missing question it most resembles (pair_renamed_columns):
#: one rejection at its header cell, so the school is pointed at the cell to rename.
RULE_RENAMED_COLUMN = "renamed_column"
REASON_RENAMED_COLUMN = (
    "Tiêu đề cột {column} không khớp câu hỏi nào; có lẽ là câu hỏi {code} đã bị đổi tiêu đề. "
    "Câu trả lời trong cột chưa được tổng hợp"
)


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
    kept_idx, response_no = _kept(cells, match, considered, rejections)
    _reject_formulas(cells, match, kept_idx, response_no, rejections)
    _note_cells(table, header_idx, match, response_no, rejections)
    missing = _missing(questionnaire, match)
    renamed_columns = pair_renamed_columns(
        list(zip(match.unknown_cols, match.unknown, strict=True)), missing, questionnaire
    )
    for pair in renamed_columns:
        letter = column_letter(pair.col + 1)
        rejections.add(
            "column",
            -1,  # the header row
            pair.col,
            pair.question_code,
            mask_personal(pair.header),
            RULE_RENAMED_COLUMN,
            REASON_RENAMED_COLUMN.format(column=letter, code=pair.question_code),
            None,
        )
    parsed = Parsed(
        questionnaire=questionnaire.code,
        sheet=table.name,
        header_row=header_idx + 1,
        columns=dict(match.headers),
        # quoted in the ledger, status and feedback: an e-mail typed as a header is masked
        unknown_columns=[mask_personal(text) for text in match.unknown],
        missing_questions=missing,
        likely_renamed={column_letter(p.col + 1): p.question_code for p in renamed_columns},
        responses=_responses(cells, match, questionnaire, kept_idx, response_no, salt, rejections),
        answers=_answers(cells, match, questionnaire, kept_idx, response_no, first_row),
        rejections=rejections.frame(),
        n_rows_read=int(has_item.sum()),
        personal_columns=match.personal,
    )
    parsed.renamed_questions = {
        code: mask_personal(header)
        for code, header in renamed_questions(parsed, questionnaire).items()
    }
    return parsed


def _kept(
    cells: _Cells, match: HeaderMatch, considered: npt.NDArray[np.bool_], rejections: _Rejections
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int64]]:
    """(indexes of the rows kept, response number of each row: 1.. for kept rows, else 0);
    each exact duplicate of an earlier row is a rejection and not kept."""
    duplicate_of = _duplicates(cells, match, considered)
    kept_idx = np.flatnonzero(considered & (duplicate_of < 0))
    response_no = np.zeros(len(considered), dtype=np.int64)
    response_no[kept_idx] = np.arange(1, len(kept_idx) + 1)
    for i in np.flatnonzero(duplicate_of >= 0):
        reason = f"Trùng lặp với dòng {rejections.first_row + int(duplicate_of[i])}"
        rejections.add("response", int(i), None, None, None, RULE_DUPLICATE, reason, None)
    return kept_idx, response_no


def _reject_formulas(
    cells: _Cells,
    match: HeaderMatch,
    kept_idx: npt.NDArray[np.intp],
    response_no: npt.NDArray[np.int64],
    rejections: _Rejections,
) -> None:
    """A rejection, and no answer, for each formula without a value in an item column (looked
    for column by column only in the few sheets holding one)."""
    for col in sorted(match.items) if cells.formula.any() else []:
        col_codes = cells.column(col)
        for i in kept_idx[cells.formula[col_codes[kept_idx]]]:
            raw = cells.raw(int(col_codes[i]))
            code, no = match.items[col], int(response_no[i])
            rejections.add("value", int(i), col, code, raw, RULE_FORMULA, REASON_FORMULA, no)


def _note_cells(
    table: Table,
    header_idx: int,
    match: HeaderMatch,
    response_no: npt.NDArray[np.int64],
    rejections: _Rejections,
) -> None:
    """A row of scope "cell" for each cell reading changed (``Table.notes``): the value as
    kept is used, and the school is told what was dropped from it."""
    for (r, c), _ in sorted(table.notes.items()):
        i = r - header_idx - 1  # data row index; negative above the data
        row = table.rows[r] if r < len(table.rows) else []
        raw = row[c] if c < len(row) else None
        text = None if raw is None else str(raw)[:200]
        in_data = 0 <= i < len(response_no)
        code = match.items.get(c) if in_data else None
        no = int(response_no[i]) if in_data and response_no[i] else None
        rejections.add("cell", i, c, code, text, RULE_CONTROL, REASON_CONTROL, no)


def _responses(
    cells: _Cells,
    match: HeaderMatch,
    questionnaire: Questionnaire,
    kept_idx: npt.NDArray[np.intp],
    response_no: npt.NDArray[np.int64],
    salt: str,
    rejections: _Rejections,
) -> pd.DataFrame:
    """One row per kept response: number, sheet row, submitted_at, hash, service, texts."""
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
    responses.insert(0, "row", (rejections.first_row + kept_idx).astype(np.int64))
    responses.insert(0, "response_no", response_no[kept_idx])
    return responses


def _missing(questionnaire: Questionnaire, match: HeaderMatch) -> list[str]:
    """Codes of the scored items (and the service item) no column was matched to."""
    found = set(match.items.values())
    missing = [i.code for i in questionnaire.scored_items if i.code not in found]
    if questionnaire.service_item and questionnaire.service_item not in found:
        missing.append(questionnaire.service_item)
    return missing


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
    by_code = items_by_code(questionnaire)  # questionnaire.item(), without its linear search
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
    by_code = items_by_code(questionnaire)  # questionnaire.item(), without its linear search
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
