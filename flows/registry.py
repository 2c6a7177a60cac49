"""The registry: schools.csv and sources.csv, read into records with clear errors.

Both are UTF-8 CSV files with a header row (a BOM is tolerated: Excel adds one).
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from schemas.records import SCHOOL_LEVELS, School, Source

SCHOOL_COLUMNS = ("school_code", "school_name", "level", "unit_code", "unit_name", "enrollment")
SOURCE_COLUMNS = ("school_code", "questionnaire", "kind", "location")
SOURCE_KINDS = ("excel", "csv", "gsheet")


class RegistryError(ValueError):
    """A registry file that cannot be used; the message names the file, line and column."""


def _rows(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 (save it as 'CSV UTF-8')") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise RegistryError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    out = []
    for line, row in enumerate(reader, start=2):
        clean = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if any(clean.values()):
            out.append((line, clean))
    return out


#: What schools.csv may say instead of a level code (folded: no accents, spaces or dashes),
#: for the suggestion only: the registry is a contract, and one spelling of it is kept.
_LEVEL_NAMES = {
    "MG": "MN",
    "MAUGIAO": "MN",
    "MAMNON": "MN",
    "TIEUHOC": "TH",
    "TRUNGHOCCOSO": "THCS",
    "PTCS": "THCS",
    "TRUNGHOCPHOTHONG": "THPT",
    "PTTH": "THPT",
    "GIAODUCTHUONGXUYEN": "GDTX",
    "TTGDTX": "GDTX",
    "GDNNGDTX": "GDTX",
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if c.isalnum() and c.isascii()).upper()


def _level(where: str, raw: str) -> str:
    """The level code of ``raw`` (any case); RegistryError naming the nearest valid one."""
    level = raw.upper()
    if level in SCHOOL_LEVELS:
        return level
    folded = _fold(raw)
    nearest = _LEVEL_NAMES.get(folded) or next(
        iter(difflib.get_close_matches(folded, SCHOOL_LEVELS, n=1, cutoff=0.4)), None
    )
    hint = f" (did you mean {nearest}?)" if nearest else ""
    raise RegistryError(f"{where}: level {raw!r} is not one of {', '.join(SCHOOL_LEVELS)}{hint}")


def _enrollment(where: str, raw: str) -> int | None:
    """The enrolment of a row: a whole number of pupils 0 or more, or None when blank."""
    if not raw:
        return None
    try:
        enrollment = int(raw)
    except ValueError:
        raise RegistryError(f"{where}: enrollment {raw!r} is not a whole number") from None
    if enrollment < 0:
        raise RegistryError(
            f"{where}: enrollment {raw!r} is negative: give the number of pupils, or leave it blank"
        )
    return enrollment


def read_schools(path: Path) -> list[School]:
    """Read schools.csv (columns SCHOOL_COLUMNS; level one of SCHOOL_LEVELS; enrollment may be
    blank or its column absent, see ``enrollment_warning``)."""
    schools: list[School] = []
    seen: set[str] = set()
    for line, row in _rows(path, SCHOOL_COLUMNS[:-1]):
        where = f"{path}: line {line}"
        code = row["school_code"]
        if not code:
            raise RegistryError(f"{where}: school_code is empty")
        if code in seen:
            raise RegistryError(f"{where}: school_code {code} appears twice")
        seen.add(code)
        schools.append(
            School(
                code=code,
                name=row["school_name"],
                level=_level(where, row["level"]),
                unit_code=row["unit_code"],
                unit_name=row["unit_name"],
                enrollment=_enrollment(where, row.get("enrollment", "")),
            )
        )
    return schools


def enrollment_warning(path: Path, schools: Sequence[School]) -> str | None:
    """The one line a run says when no school of schools.csv has an enrolment (the column is
    absent or empty): what waits for it. None when any school has one (those without get an
    ``enrollment_unknown`` alert each)."""
    if not schools or any(s.enrollment is not None for s in schools):
        return None
    return (
        f"{path}: no enrollment (column absent or empty): response rates and low_response "
        "alerts wait for it; each school with responses gets a 'chưa có sĩ số' alert"
    )


def read_sources(
    path: Path, schools: Mapping[str, School], questionnaires: Iterable[str]
) -> list[Source]:
    """Read sources.csv; file locations are made absolute relative to the file's folder."""
    known_q = set(questionnaires)
    sources: list[Source] = []
    seen: set[str] = set()
    for line, row in _rows(path, SOURCE_COLUMNS):
        where = f"{path}: line {line}"
        code, q, kind, location = (row[c] for c in SOURCE_COLUMNS)
        if code not in schools:
            raise RegistryError(f"{where}: school_code {code} is not in schools.csv")
        if q not in known_q:
            raise RegistryError(
                f"{where}: questionnaire {q!r} is not one of {', '.join(sorted(known_q))}"
            )
        if kind not in SOURCE_KINDS:
            raise RegistryError(f"{where}: kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        if not location:
            raise RegistryError(f"{where}: location is empty")
        target, _, worksheet = location.partition("#")
        # Absolute, ".." folded, symbolic links left as they are: fetch resolves them when it
        # reads, and reads only inside the campaign's folders (flows.fetch.files).
        file_path = None if kind == "gsheet" else Path(os.path.abspath(path.parent / target))
        source = Source(
            school_code=code,
            questionnaire=q,
            kind=kind,
            location=location,
            path=file_path,
            worksheet=worksheet or None,
        )
        if source.key in seen:
            raise RegistryError(f"{where}: the same source is listed twice")
        seen.add(source.key)
        sources.append(source)
    return sources
