"""The header row of a sheet, and what its header texts name: items, timestamp, e-mail.

Header texts are mapped to item codes, never by position: by code, by text or alias, or by the
row part of a Google Forms grid header, after folding; personal columns are recognised so they
are dropped. ``pick_table`` chooses the sheet of a workbook, ``find_header_row`` the row below
any title block.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from flows.parse.normalise import cell_text, fold, is_blank, loose, strip_numbering
from flows.privacy import mask_personal
from schemas.questionnaire import Item, Questionnaire
from schemas.records import Cell, Parsed, SourceError, Table

#: The header row is looked for in this many rows from the top (title blocks are short).
HEADER_SCAN_ROWS = 50

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
_GRID = re.compile(r"^(.*?)\s*\[(.+)\]\s*$", re.DOTALL)
_CODE_PREFIX = re.compile(r"^([A-Z][A-Z0-9_]*)(?:\s*[.:)\-–]\s*|\s+)")
_CODE_LIKE = re.compile(r"^[^\W\d_]{1,4}\d+[a-z]?\s*[.:)\-–]\s*(.+)$", re.DOTALL)


#: header_key and _Index.match run on every cell of the first HEADER_SCAN_ROWS rows of every
#: sheet, twice (pick_table, find_header_row); most of those cells repeat (labels, classes), so
#: both are memoised.
_MATCH_CACHE_SIZE = 65_536


@functools.lru_cache(maxsize=_MATCH_CACHE_SIZE)
def header_key(header: str) -> str:
    """A header as compared: numbering stripped, folded, trailing ".:?*" and "(*)" dropped."""
    key = fold(strip_numbering(fold(header)))
    key = key.removesuffix("(*)")
    return key.rstrip(" .:?*")


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
    #: column index of each ``unknown`` header, in the same order.
    unknown_cols: list[int] = field(default_factory=list)
    #: item code -> header text as found.
    headers: dict[str, str] = field(default_factory=dict)

    def score(self, questionnaire: Questionnaire) -> int:
        """How much this row looks like the questionnaire's header row: 0 unless it holds at
        least one scored item; else the items matched, plus one for a timestamp column."""
        scored = {i.code for i in questionnaire.scored_items}
        if not scored.intersection(self.items.values()):
            return 0
        return len(self.items) + (self.timestamp is not None)


def highest_score(questionnaire: Questionnaire) -> int:
    """The highest ``HeaderMatch.score`` a row can have: every item and the timestamp found.
    A row reaching it cannot be beaten (a tie goes to the first), so a search stops there."""
    return len(questionnaire.items) + 1


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
#: index and the cell texts it has learned.
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
            match.unknown_cols.append(col)
    return match


def find_header_row(table: Table, questionnaire: Questionnaire) -> int:
    """The 0-based index in ``table.rows`` of the header row: among the first
    ``HEADER_SCAN_ROWS`` rows, the one matching most items (the first on a tie), so title
    blocks ("SỞ GDĐT …", "TRƯỜNG …"), merged grid titles and blank rows above it are skipped.

    Raises ``SourceError`` naming the questionnaire expected and the first cells found.
    """
    best, _ = _best_row(table, questionnaire)
    if best < 0:
        raise SourceError(
            f"sheet {_sheet(table.name)}: no header row of {questionnaire.code} "
            f"({questionnaire.name}) in the first {HEADER_SCAN_ROWS} rows; expected headers "
            f"such as {_expected(questionnaire)}; found {_first_cells(table)}"
        )
    return best


def _best_row(table: Table, questionnaire: Questionnaire) -> tuple[int, int]:
    """(index, score) of the row of the first ``HEADER_SCAN_ROWS`` scoring highest (the first
    on a tie), or (-1, 0) when none scores."""
    index = _index(questionnaire)
    highest = highest_score(questionnaire)
    best, best_score = -1, 0
    for i, row in enumerate(table.rows[:HEADER_SCAN_ROWS]):
        if not index.may_score(row) or not any(isinstance(v, str) for v in row):
            continue  # scores 0: cannot be the best
        score = match_headers(row, questionnaire).score(questionnaire)
        if score > best_score:
            best, best_score = i, score
            if score == highest:  # no later row can beat it
                break
    return best, best_score


def _expected(questionnaire: Questionnaire) -> str:
    return ", ".join(repr(_short(i.text)) for i in questionnaire.scored_items[:3])


def _sheet(name: str) -> str:
    """A sheet's name quoted for a message, masked (a school names its tabs)."""
    return repr(mask_personal(name))


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _first_cells(table: Table, n: int = 5) -> str:
    """The first ``n`` non-blank cells, quoted for a message: masked, as a file with no header
    row often starts with a respondent's e-mail or phone number."""
    cells = [
        repr(_short(mask_personal(cell_text(v))))
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
    names = ", ".join(_sheet(table.name) for table in tables) or "none"
    if sheet is not None:
        for table in tables:
            if table.name == sheet:
                return table
        for table in tables:
            if fold(table.name) == fold(sheet):
                return table
        raise SourceError(f"sheet {_sheet(sheet)} not found; the file has sheets {names}")
    best: Table | None = None
    best_score = 0
    for table in tables:
        _, score = _best_row(table, questionnaire)
        if score > best_score:
            best, best_score = table, score
    if best is None:
        found = "; ".join(
            f"{_sheet(table.name)}: {_first_cells(table, 3)}" for table in tables if table.rows
        )
        raise SourceError(
            f"no sheet holds the headers of {questionnaire.code} ({questionnaire.name}); "
            f"expected headers such as {_expected(questionnaire)}; sheets {names}"
            + (f" (first cells: {found})" if found else "")
        )
    return best


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


#: How alike (difflib's ratio, 0–1, over folded, unaccented words) an unknown header and a
#: missing question's wording must be to be called a renamed column: an edited wording, a
#: dropped or added word, a number in front, a typo keep it above; another question of the
#: same form falls below.
RENAME_CUTOFF = 0.6


@dataclass(frozen=True)
class RenamedColumn:
    """A column whose header matched no question, paired with the missing question it most
    resembles: probably the same question, renamed."""

    #: column index (0-based) in the sheet.
    col: int
    header: str
    question_code: str
    #: the question's wording in the form.
    question_text: str
    similarity: float


def _similarity(header: str, item: Item) -> float:
    found = loose(header_key(header))
    wordings = [item.text, *item.aliases]
    if item.grid:
        wordings.append(f"{item.grid} [{item.text}]")
    return max(
        difflib.SequenceMatcher(None, found, loose(header_key(w)), autojunk=False).ratio()
        for w in wordings
    )


def pair_renamed_columns(
    unknown: Sequence[tuple[int, str]],
    missing: Sequence[str],
    questionnaire: Questionnaire,
    cutoff: float = RENAME_CUTOFF,
) -> list[RenamedColumn]:
    """Pair each unknown column ``(index, header)`` with the missing question it most resembles.

    Similarity is difflib's ratio between the header and the question's wording, each alias
    and its grid header, compared as matching compares (numbering stripped, case and accents
    folded). The most alike pairs are taken first, each column and each question at most once,
    and none below ``cutoff``. Returned in column order.
    """
    items = items_by_code(questionnaire)
    wanted = [items[code] for code in missing if code in items]
    scored = sorted(
        (
            (-_similarity(header, item), col, n, header, item)
            for col, header in unknown
            for n, item in enumerate(wanted)
        ),
        key=lambda t: t[:3],
    )
    used_cols: set[int] = set()
    used_codes: set[str] = set()
    pairs: list[RenamedColumn] = []
    for negative, col, _, header, item in scored:
        if -negative < cutoff:
            break
        if col in used_cols or item.code in used_codes:
            continue
        used_cols.add(col)
        used_codes.add(item.code)
        pairs.append(RenamedColumn(col, header, item.code, item.text, round(-negative, 3)))
    return sorted(pairs, key=lambda p: p.col)


def items_by_code(questionnaire: Questionnaire) -> dict[str, Item]:
    """The questionnaire's items by code, built once per questionnaire (``questionnaire.item``
    searches linearly)."""
    return _index(questionnaire).by_code
