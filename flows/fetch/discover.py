"""Folder sources: the files of a folder row of sources.csv, each placed with its school.

A row ``*,QUESTIONNAIRE,folder,PATH[#PATTERN]`` (or ``drive,FOLDER_ID_OR_URL[#PATTERN]``) names a
folder every school puts its files in. ``expand`` lists each such row (a lister per kind:
``list_local_folder`` for ``folder``) and turns every file it can place into an ordinary source
(kind excel or csv, location the file's path), so fetching, the unchanged-skip, the archive,
the ledger and lateness work on it as on a listed file. ``place`` is the pure part: which
school a file's name names, and which of a school's files wins.

A file that names no school (of the questionnaire's levels) or two schools is *unplaced*: it
fails alone, recorded against school ``*`` with one Vietnamese line, and the night goes on. Of
two files for one school and questionnaire the newest wins; the other is *superseded*, named in
one line for the school. Files of other types, lock files (``~$…``) and hidden files are not
submissions and are passed over silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import stat as st
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from flows.registry import ANY_SCHOOL, FolderRow, Refused, Registry
from schemas.records import Found, School, Source, SourceError
from warehouse.registry import SupersededFile

#: File endings read as a workbook (python-calamine: xlsx, xls, ods) or as CSV; any other file
#: in a folder source (.docx, .pdf, pictures) is not a submission.
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
CSV_SUFFIXES = (".csv",)
#: The part of a pattern that stands for the school code.
CODE_FIELD = "{school_code}"

#: Lists one folder row's files; raises SourceError (one line) when the folder cannot be listed.
Lister = Callable[[FolderRow], list[Found]]


def kind_of(name: str) -> str | None:
    """How a file found in a folder is read (excel, csv), or None when it is no submission:
    another type, an Office lock file (``~$…``), or hidden (a name or folder starting ``.``)."""
    parts = PurePosixPath(name).parts
    if not parts or any(p.startswith(".") for p in parts) or parts[-1].startswith("~$"):
        return None
    suffix = PurePosixPath(parts[-1]).suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        return "excel"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return None


def fold(text: str) -> str:
    """``text`` for matching names: accents dropped (đ as d), upper case, NFC otherwise."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


@dataclass
class Placement:
    """The files of one folder row, placed.

    placed: (school code, file) of each file used. unplaced: (file, the Vietnamese line why).
    superseded: (school code, file, the line naming the newer file used instead).
    """

    placed: list[tuple[str, Found]] = field(default_factory=list)
    unplaced: list[tuple[Found, str]] = field(default_factory=list)
    superseded: list[tuple[str, Found, str]] = field(default_factory=list)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A file-name pattern (``{school_code}_*.xlsx``: ``*`` any characters but ``/``, ``?``
    one, ``{school_code}`` the code) as a regular expression over folded names; a pattern
    without ``/`` is matched against the file's own name, else against its path in the folder."""
    pieces = []
    for i, part in enumerate(fold(pattern).split(fold(CODE_FIELD))):
        if i:
            pieces.append("(?P<code>[^/]+?)" if i == 1 else "(?P=code)")
        pieces.append(
            "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        )
    return re.compile("".join(pieces))


class _Names:
    """What one folder row tells schools by: the school codes (folded -> as registered), as
    whole words, and the row's pattern, if any."""

    def __init__(self, codes: Mapping[str, str], pattern: str | None) -> None:
        self.codes = codes
        alternatives = "|".join(re.escape(c) for c in sorted(codes, key=len, reverse=True))
        # a code as a whole word: TH01 is not in TH0101, and "_" or "-" separate words
        self.word = re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])") if codes else None
        self.pattern = pattern_regex(pattern) if pattern else None
        self.on_path = pattern is not None and "/" in pattern

    def named_in(self, name: str) -> set[str]:
        """The codes ``name`` names anywhere, as whole words."""
        if self.word is None:
            return set()
        return {self.codes[m.group(0)] for m in self.word.finditer(fold(name))}

    def named_by(self, name: str) -> set[str] | None:
        """The codes the file ``name`` names; None when it does not match the pattern."""
        if self.pattern is None:
            return self.named_in(name)
        # a pattern is matched against the file's own name, or its path if it has a folder
        match = self.pattern.fullmatch(fold(name if self.on_path else PurePosixPath(name).name))
        if match is None:
            return None
        if "code" not in match.groupdict():
            return self.named_in(name)
        code = self.codes.get(match.group("code"))
        return {code} if code else set()


def _school_of(
    file: Found, names: _Names, answering: Collection[str]
) -> tuple[str | None, str | None] | None:
    """(school code, None) for the school ``file``'s name names, (None, why not) when it
    names none or two; None when it is not this row's: it does not match the row's pattern,
    or it names one school that is not ``answering`` (of another level: another
    questionnaire's file)."""
    named = names.named_by(file.name)
    if named is None:
        return None
    if not named:
        return None, f"tệp không khớp trường nào: {file.name}"
    if len(named) > 1:
        return None, f"tệp khớp hai trường: {file.name} ({', '.join(sorted(named))})"
    code = next(iter(named))
    return (code, None) if code in answering else None


def _newest_first(file: Found) -> tuple[float, str]:
    # A file without a modified time counts as the oldest; equal times: by name, for a
    # decision that is the same every night.
    modified = file.modified.timestamp() if file.modified else float("-inf")
    return (-modified, file.name)


def place(
    files: Iterable[Found],
    schools: Iterable[School],
    levels: Collection[str],
    pattern: str | None = None,
) -> Placement:
    """Place each file with the school its name names, among the schools of ``levels`` (the
    row's questionnaire's): a file naming one school of another level is another
    questionnaire's and not this row's; one naming no registered school, or two, is unplaced.

    With ``pattern``
    the code is the ``{school_code}`` part of a name that matches it, and a name that does not
    match is not this row's (two questionnaires may share a folder); a pattern without
    ``{school_code}`` only selects the files. Otherwise the code is a school code appearing
    anywhere in the file's path (a folder per school counts), as a whole word, letter case
    and accents ignored. Files that are no submission (``kind_of``) are passed over.
    """
    every = list(schools)
    names = _Names({fold(s.code): s.code for s in every}, pattern)
    answering = {s.code for s in every if s.level in levels}
    out = Placement()
    by_school: dict[str, list[Found]] = {}
    for file in sorted(files, key=lambda f: f.name):
        if kind_of(file.name) is None and file.kind != "gsheet":
            continue
        found = _school_of(file, names, answering)
        if found is None:
            continue
        code, why = found
        if code is None:
            out.unplaced.append((file, why or ""))
        else:
            by_school.setdefault(code, []).append(file)
    for code, candidates in by_school.items():
        newest, *older = sorted(candidates, key=_newest_first)
        out.placed.append((code, newest))
        out.superseded += [
            (code, f, f"tệp {f.name} không dùng vì đã có tệp mới hơn {newest.name}") for f in older
        ]
    return out


def _inside(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def list_local_folder(folder: Path, base: Path, confined: Sequence[Path]) -> list[Found]:
    """Every file under ``folder`` (sub-folders followed, hidden ones not) that could be a
    submission, as Found: ``name`` its path under the folder, ``location`` its path relative
    to ``base`` (the folder of sources.csv), ``modified`` its modified time (UTC).

    Only what lies inside ``confined`` (the folders file sources may be read from, real paths)
    is listed: a folder that resolves outside raises SourceError, and a symbolic link (to a
    folder or a file) is followed only where it stays inside. Raises SourceError, one line,
    for a folder that does not exist or cannot be read.
    """
    real = Path(os.path.realpath(folder))
    if not _inside(real, confined):
        raise SourceError(
            f"folder {folder} is outside the campaign folder (symbolic links followed): move it "
            "into the campaign folder, or add it to registry.allowed_folders in khaosat.yaml"
        )
    try:
        top = os.stat(real)
    except OSError as exc:
        raise SourceError(f"folder {folder}: {exc.strerror}") from None
    if not st.S_ISDIR(top.st_mode):
        raise SourceError(f"{folder} is not a folder")
    errors: list[OSError] = []
    found: list[Found] = []
    for here, dirs, names in os.walk(real, onerror=errors.append, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        # a linked folder is walked only if it leads to a folder inside: os.walk lists it
        # among dirs but does not enter it
        for d in list(dirs):
            if os.path.islink(os.path.join(here, d)):
                dirs.remove(d)
        for name in sorted(names):
            path = Path(here, name)
            under = path.relative_to(real).as_posix()
            kind = kind_of(under)
            if kind is None or not _inside(Path(os.path.realpath(path)), confined):
                continue
            try:
                seen = os.stat(path)
            except OSError:
                continue  # gone since it was listed, or a link to nothing
            if not st.S_ISREG(seen.st_mode):
                continue
            location = Path(os.path.relpath(Path(folder) / under, base)).as_posix()
            modified = dt.datetime.fromtimestamp(seen.st_mtime, dt.UTC)
            found.append(Found(under, location, kind, modified))
    if errors and errors[0].filename in (str(real), real):
        raise SourceError(f"folder {folder}: {errors[0].strerror}")
    return found


def local_lister(base: Path, confined: Sequence[Path]) -> Lister:
    """The lister of ``folder`` rows: ``list_local_folder`` of the row's folder."""

    def lister(row: FolderRow) -> list[Found]:
        assert row.path is not None  # noqa: S101 - a folder row always has its path
        return list_local_folder(row.path, base, confined)

    return lister


def source_of(row: FolderRow, file: Found, school_code: str, base: Path | None) -> Source:
    """The ordinary source a placed ``file`` of ``row`` becomes: a local file an excel or csv
    source at its path; a Drive file a ``drive`` source (a Google Sheet a ``gsheet`` one)
    whose location is the Drive file's id."""
    if row.kind == "folder" and base is not None:
        path = Path(os.path.abspath(base / file.location))
        kind = file.kind
    else:
        path, kind = None, "gsheet" if file.kind == "gsheet" else "drive"
    return Source(
        school_code, row.questionnaire, kind, file.location, path=path, found_in=row.location
    )


def expand(
    registry: Registry,
    levels: Mapping[str, Sequence[str]],
    listers: Mapping[str, Lister],
    base: Path | None = None,
) -> Registry:
    """The registry with each folder row listed and its files placed: the sources it
    discovers added, each unplaced file a refused source of school ``*`` with its line, each
    superseded file in ``superseded``. A row whose folder cannot be listed (or whose kind has
    no lister) is refused alone. A school and questionnaire that sources.csv lists on a row
    of its own take nothing from a folder. ``levels``: the levels of each questionnaire;
    ``base``: the folder of sources.csv."""
    if not registry.folders:
        return registry
    listed = [*registry.sources, *(r.source for r in registry.refused)]
    explicit = {(s.school_code.upper(), s.questionnaire) for s in listed}
    seen = {s.key for s in listed}
    unplaced: set[str] = set()
    sources, refused = list(registry.sources), list(registry.refused)
    superseded: list[SupersededFile] = []
    for row in registry.folders:
        lister = listers.get(row.kind)
        if lister is None:
            refused.append(
                Refused(
                    row.source,
                    f"{row.where}: {row.kind} folders are not listed by this installation",
                )
            )
            continue
        try:
            files = lister(row)
        except SourceError as exc:
            refused.append(Refused(row.source, f"{row.where}: location {row.location!r}: {exc}"))
            continue
        placement = place(files, registry.schools, levels.get(row.questionnaire, ()), row.pattern)
        for code, file in placement.placed:
            source = source_of(row, file, code, base)
            if (code.upper(), row.questionnaire) in explicit or source.key in seen:
                continue
            seen.add(source.key)
            sources.append(source)
        for file, why in placement.unplaced:
            # a folder several rows share: its unplaced file is said once, by the first
            if file.location not in unplaced:
                unplaced.add(file.location)
                source = source_of(row, file, ANY_SCHOOL, base)
                refused.append(Refused(source, f"{row.where}: {why}"))
        used = {code: file.location for code, file in placement.placed}
        superseded += [
            SupersededFile(code, row.questionnaire, file.location, row.location, used[code], why)
            for code, file, why in placement.superseded
            if (code.upper(), row.questionnaire) not in explicit
        ]
    return dataclasses.replace(registry, sources=sources, refused=refused, superseded=superseded)
