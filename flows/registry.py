"""The registry: schools.csv and sources.csv, read into records with clear errors.

Both are UTF-8 CSV files with a header row (a BOM is tolerated: Excel adds one).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from schemas.records import School, Source

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


def read_schools(path: Path) -> list[School]:
    """Read schools.csv (columns SCHOOL_COLUMNS; enrollment may be blank)."""
    schools: list[School] = []
    seen: set[str] = set()
    for line, row in _rows(path, SCHOOL_COLUMNS[:-1]):
        code = row["school_code"]
        if not code:
            raise RegistryError(f"{path}: line {line}: school_code is empty")
        if code in seen:
            raise RegistryError(f"{path}: line {line}: school_code {code} appears twice")
        seen.add(code)
        raw_enrollment = row.get("enrollment", "")
        try:
            enrollment = int(raw_enrollment) if raw_enrollment else None
        except ValueError:
            raise RegistryError(
                f"{path}: line {line}: enrollment {raw_enrollment!r} is not a whole number"
            ) from None
        schools.append(
            School(
                code=code,
                name=row["school_name"],
                level=row["level"].upper(),
                unit_code=row["unit_code"],
                unit_name=row["unit_name"],
                enrollment=enrollment,
            )
        )
    return schools


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
