"""The registry: schools.csv and sources.csv, read into records.

Both are UTF-8 CSV files with a header row (a BOM is tolerated: Excel adds one). A file that
cannot be read at all raises RegistryError; a bad row (an unknown level, questionnaire or
kind, a school code on two rows, a folder that does not exist) is refused with one line naming
the file, the line, the value and the nearest valid one, and fails only its own sources
(``read_registry``). ``pick`` checks the school and questionnaire a command names.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schemas.records import SCHOOL_LEVELS, School, Source
from warehouse.registry import SupersededFile

SCHOOL_COLUMNS = ("school_code", "school_name", "level", "unit_code", "unit_name", "enrollment")
SOURCE_COLUMNS = ("school_code", "questionnaire", "kind", "location")
#: Kinds of a row that names one file (or one Google Sheet, or one Drive file by its id).
SOURCE_KINDS = ("excel", "csv", "gsheet", "drive")
#: Kinds of a row that names a folder, not a file: ``*,QUESTIONNAIRE,folder,PATH[#PATTERN]``
#: (a folder beside sources.csv) or ``*,QUESTIONNAIRE,drive,FOLDER_ID_OR_URL[#PATTERN]`` (a
#: Google Drive folder: a drive row is a folder's when its school code is ``*``, a file's
#: otherwise). Each file in it becomes a source of the school its name names
#: (flows.fetch.discover).
FOLDER_KINDS = ("folder", "drive")
#: Every kind a sources.csv row may have.
ROW_KINDS = ("excel", "csv", "gsheet", "folder", "drive")
#: The school code of a folder or drive row: every school, each placed by its file's name.
ANY_SCHOOL = "*"


def is_folder_row(source: Source) -> bool:
    """Whether a sources.csv row names a folder (school ``*``) rather than one file."""
    return source.kind in FOLDER_KINDS and source.school_code == ANY_SCHOOL


class RegistryError(ValueError):
    """A registry file that cannot be used; the message names the file, line and column."""


class NotInRegistry(ValueError):
    """A command named a school or questionnaire the registry does not have; the message is
    one line with the nearest codes."""


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


@dataclass(frozen=True)
class Refused:
    """A source that a bad registry row fails: ``message`` is the one line naming the file,
    the line, the value and, where there is one, the nearest valid value."""

    source: Source
    message: str


@dataclass(frozen=True)
class FolderRow:
    """A sources.csv row naming a folder (kind ``folder`` or ``drive``) rather than a file.

    where: "sources.csv: line N", for messages. location: as written. target: the folder's
    path relative to sources.csv, or the Drive folder's id or URL. pattern: the file-name
    pattern after ``#`` (``{school_code}_*.xlsx``), None for none. path: the folder, absolute
    (``folder`` rows only).
    """

    where: str
    questionnaire: str
    kind: str
    location: str
    target: str
    pattern: str | None = None
    path: Path | None = None

    @property
    def source(self) -> Source:
        """The row as a Source of school ``*``: what its failure is recorded against."""
        return Source(ANY_SCHOOL, self.questionnaire, self.kind, self.location, path=self.path)


@dataclass
class Registry:
    """schools.csv and sources.csv as read: the rows accepted, and those that were not.

    schools: the schools accepted. sources: the sources accepted, each of an accepted school.
    refused: each source a bad row fails (a bad sources.csv row, or a source of a bad
    schools.csv row), in file order. notes: bad rows with no source to fail (a schools.csv row
    without a code, or whose school has no source; a source listed twice), one line each.
    """

    schools: list[School] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: every school code schools.csv has, its bad rows' included (a command may name them).
    school_codes: list[str] = field(default_factory=list)
    #: the folder and drive rows accepted, not listed yet (``flows.fetch.discover.expand``).
    folders: list[FolderRow] = field(default_factory=list)
    #: the files of folder rows not used: their school has a newer one (once listed).
    superseded: list[SupersededFile] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Every bad row's line: each refused source's, then the notes."""
        return [r.message for r in self.refused] + self.notes


def nearest(value: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice closest to ``value`` (letter case ignored), for a "did you mean …?"; None
    when nothing is close."""
    by_fold = {c.upper(): c for c in choices}
    found = difflib.get_close_matches(value.upper(), list(by_fold), n=1, cutoff=cutoff)
    return by_fold[found[0]] if found else None


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the choice closest to ``value``, or "" when none is close."""
    found = nearest(value, choices)
    return f" (did you mean {found}?)" if found else ""


def _school(where: str, row: Mapping[str, str]) -> School:
    """The School of one schools.csv row; RegistryError naming what is wrong with it."""
    return School(
        code=row["school_code"],
        name=row["school_name"],
        level=_level(where, row["level"]),
        unit_code=row["unit_code"],
        unit_name=row["unit_name"],
        enrollment=_enrollment(where, row.get("enrollment", "")),
    )


@dataclass
class _SchoolRows:
    """schools.csv read: schools by upper-case code, the bad rows' messages by upper-case
    code, and bad rows without a code."""

    good: dict[str, School] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: every code, by upper-case code, as its first row spells it.
    codes: dict[str, str] = field(default_factory=dict)


def _read_school_rows(path: Path) -> _SchoolRows:
    """Every row of schools.csv, accepted or with why not.

    A school code listed twice with the same details is one school (the repeat is noted); with
    different details neither row is taken: which one is right (or whether one is another
    school's code mistyped) only the officer can tell, and a school's answers published under
    the wrong name or unit would go unnoticed.
    """
    out = _SchoolRows()
    first: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in _rows(path, SCHOOL_COLUMNS[:-1]):
        where = f"{path}: line {line}"
        code = row["school_code"]
        if not code:
            out.notes.append(f"{where}: school_code is empty: the row is left out")
            continue
        key = code.upper()
        if key in first:
            seen_line, seen_row = first[key]
            if seen_row == row:
                out.notes.append(f"{where}: repeats line {seen_line} (school {code}): left out")
                continue
            out.good.pop(key, None)
            out.bad[key] = (
                f"{where}: school_code {code} is on line {seen_line} too, with other details: "
                "keep one row per school (is one of them another school's code?)"
            )
            continue
        first[key] = (line, row)
        out.codes[key] = code
        try:
            out.good[key] = _school(where, row)
        except RegistryError as exc:
            out.bad[key] = str(exc)
    return out


def read_schools(path: Path) -> list[School]:
    """Read schools.csv (columns SCHOOL_COLUMNS; level one of SCHOOL_LEVELS; enrollment may be
    blank or its column absent, see ``enrollment_warning``), strictly: RegistryError for the
    first bad row. A run uses ``read_registry``, where a bad row fails only its sources."""
    rows = _read_school_rows(path)
    problems = list(rows.bad.values()) + rows.notes
    if problems:
        raise RegistryError(min(problems, key=_line_of))
    return list(rows.good.values())


def _line_of(message: str) -> int:
    """The line number a registry message names (for ordering), 0 if none."""
    _, _, rest = message.partition(": line ")
    digits = rest.split(":", 1)[0]
    return int(digits) if digits.isdigit() else 0


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


def _folders(folder: Path) -> list[str]:
    """The names of ``folder``'s sub-folders, or none if it cannot be read."""
    try:
        return [p.name for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return []


def _missing_folder(base: Path, target: str) -> str | None:
    """Why the folder of ``target`` (relative to ``base``) cannot hold the file, with the
    nearest path that exists ("did you mean submissions/TH01.xlsx?"); None when the folder is
    there (the file itself may still be absent: pending or missing, not failed)."""
    if (base / target).parent.is_dir():
        return None
    parts = Path(target).parts
    absolute = Path(target).is_absolute()
    here = Path(parts[0]) if absolute else base
    fixed = [parts[0]] if absolute else []
    missing: str | None = None
    for i, part in enumerate(parts[1:] if absolute else parts, 1 if absolute else 0):
        last = i == len(parts) - 1
        # the file's own name is kept: TH02.xlsx is not TH01.xlsx mistyped, it is absent
        if last or part in (".", "..") or (here / part).is_dir():
            choice = part
        else:
            missing = missing or os.path.join(*parts[: i + 1])
            close = difflib.get_close_matches(part, _folders(here), n=1, cutoff=0.6)
            choice = close[0] if close else part
        here = here / choice
        fixed.append(choice)
    suggestion = os.path.join(*fixed)
    hint = f" (did you mean {suggestion}?)" if suggestion != target and here.parent.is_dir() else ""
    return f"folder {missing or Path(target).parent} does not exist{hint}"


def _source(
    where: str, row: Mapping[str, str], known_q: Iterable[str], folder: Path
) -> tuple[Source, str | None]:
    """The Source of one sources.csv row (school code as given) and what is wrong with the
    row apart from its school, if anything: questionnaire, kind, location."""
    code, q, kind, location = (row[c] for c in SOURCE_COLUMNS)
    q = next((k for k in known_q if k.upper() == q.upper()), q)
    kind = kind.lower() if kind.lower() in ROW_KINDS else kind
    target, _, worksheet = location.partition("#")
    # Absolute, ".." folded, symbolic links left as they are: fetch resolves them when it
    # reads, and reads only inside the campaign's folders (flows.fetch.files).
    remote = kind in ("gsheet", "drive")
    file_path = None if remote else Path(os.path.abspath(folder / target))
    source = Source(code, q, kind, location, path=file_path, worksheet=worksheet or None)
    if q not in known_q:
        valid = ", ".join(sorted(known_q))
        return (
            source,
            f"{where}: questionnaire {q!r} is not one of {valid}{did_you_mean(q, known_q)}",
        )
    if kind not in ROW_KINDS:
        valid = ", ".join(ROW_KINDS)
        return (
            source,
            f"{where}: kind {kind!r} is not one of {valid}{did_you_mean(kind, ROW_KINDS)}",
        )
    if kind == "folder" and code != ANY_SCHOOL:
        return (
            source,
            f"{where}: a folder row names one folder for every school: its school_code is *",
        )
    if code == ANY_SCHOOL and kind not in FOLDER_KINDS:
        return (
            source,
            f"{where}: school_code * is for folder and drive rows (kind {kind} names one file)",
        )
    if not target:
        return source, f"{where}: location is empty: give the file's path or the sheet's key"
    if kind == "folder":
        # the folder itself must exist: checked as the folder of a file in it
        why = _missing_folder(folder, os.path.join(target, "x"))
        if why:
            why = why.replace(f"{os.sep}x?)", "?)")
            return source, f"{where}: location {location!r}: {why}"
    elif not remote:
        why = _missing_folder(folder, target)
        if why:
            return source, f"{where}: location {location!r}: {why}"
    return source, None


def _folder_row(where: str, source: Source) -> FolderRow:
    """The FolderRow of an accepted folder or drive row (read as a Source)."""
    target, _, pattern = source.location.partition("#")
    return FolderRow(
        where=where,
        questionnaire=source.questionnaire,
        kind=source.kind,
        location=source.location,
        target=target.strip(),
        pattern=pattern.strip() or None,
        path=source.path,
    )


def read_registry(
    schools_path: Path, sources_path: Path, questionnaires: Iterable[str]
) -> Registry:
    """Read schools.csv and sources.csv: the rows that can be used, and each bad row as the
    sources it fails (``Registry``). RegistryError only for a file that cannot be read at all
    (not UTF-8, a column missing). File locations are made absolute relative to sources.csv's
    folder; codes are matched in any letter case and kept as schools.csv and the
    questionnaires spell them."""
    known_q = sorted(questionnaires)
    schools = _read_school_rows(schools_path)
    out = Registry(
        schools=list(schools.good.values()),
        notes=list(schools.notes),
        school_codes=sorted(schools.codes.values()),
    )
    spelling = {key: s.code for key, s in schools.good.items()}
    failed_schools: set[str] = set()
    seen: dict[str, int] = {}
    for line, row in _rows(sources_path, SOURCE_COLUMNS):
        where = f"{sources_path}: line {line}"
        source, problem = _source(where, row, known_q, sources_path.parent)
        code = source.school_code
        if code == ANY_SCHOOL:
            pass  # a folder row (or a file row wrongly given *: problem says so)
        elif code.upper() in spelling:
            source = dataclasses.replace(source, school_code=spelling[code.upper()])
        elif code.upper() in schools.bad:
            problem = schools.bad[code.upper()]
            failed_schools.add(code.upper())
        elif not code:
            problem = f"{where}: school_code is empty"
        else:
            known = [s.code for s in out.schools]
            problem = (
                f"{where}: school_code {code} is not in schools.csv{did_you_mean(code, known)}"
            )
        if source.key in seen:
            out.notes.append(f"{where}: the same source is on line {seen[source.key]}: left out")
            continue
        seen[source.key] = line
        if problem:
            out.refused.append(Refused(source, problem))
        elif is_folder_row(source):
            out.folders.append(_folder_row(where, source))
        else:
            out.sources.append(source)
    out.notes += [m for k, m in schools.bad.items() if k not in failed_schools]
    return out


def read_sources(
    path: Path, schools: Mapping[str, School], questionnaires: Iterable[str]
) -> list[Source]:
    """Read sources.csv against the schools given, strictly: RegistryError for the first bad
    row. A run uses ``read_registry``, where a bad row fails only its own source."""
    known_q = sorted(questionnaires)
    by_key = {code.upper(): school for code, school in schools.items()}
    sources: list[Source] = []
    seen: set[str] = set()
    for line, row in _rows(path, SOURCE_COLUMNS):
        where = f"{path}: line {line}"
        source, problem = _source(where, row, known_q, path.parent)
        school = by_key.get(source.school_code.upper())
        if problem is None and school is None:
            problem = f"{where}: school_code {source.school_code} is not in schools.csv"
        if problem is None and source.key in seen:
            problem = f"{where}: the same source is listed twice"
        if problem:
            raise RegistryError(problem)
        source = dataclasses.replace(source, school_code=school.code)  # type: ignore[union-attr]
        seen.add(source.key)
        sources.append(source)
    return sources


def _some(codes: Sequence[str], most: int = 8) -> str:
    """``codes`` for a message: all of them, or the first few and how many there are."""
    shown = ", ".join(codes[:most])
    return shown if len(codes) <= most else f"{shown}, … ({len(codes)} in all)"


def _hint(value: str, codes: Sequence[str], where: str) -> str:
    """`` (did you mean X?)``, or what ``where`` has when nothing is close."""
    return did_you_mean(value, codes) or (f" ({where} has {_some(codes)})" if codes else "")


def pick(
    found: Registry, school: str | None, questionnaire: str | None
) -> tuple[str | None, str | None]:
    """The school and questionnaire a command names, in any letter case, as the registry
    spells them; NotInRegistry for a school schools.csv and sources.csv do not have, or a
    questionnaire none of its (or, without a school, any) sources answers."""
    every = [*found.sources, *(r.source for r in found.refused)]
    codes = found.school_codes
    if school is not None:
        spelt = next((c for c in codes if c.upper() == school.strip().upper()), None)
        if spelt is None:
            raise NotInRegistry(
                f"school {school} is not in schools.csv{_hint(school, codes, 'it')}"
            )
        school = spelt
        every = [s for s in every if s.school_code.upper() == school.upper()]
    if questionnaire is not None:
        answered = sorted({s.questionnaire for s in every})
        spelt = next((q for q in answered if q.upper() == questionnaire.strip().upper()), None)
        if spelt is None:
            whose = f"school {school} has" if school else "there is"
            raise NotInRegistry(
                f"{whose} no {questionnaire} source in sources.csv"
                + (did_you_mean(questionnaire, answered) or f": only {_some(answered)}")
            )
        questionnaire = spelt
    return school, questionnaire
