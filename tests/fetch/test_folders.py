"""Folder sources: placing found files with schools (pure), listing a local folder, and the
registry's folder and drive rows."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from flows.fetch.discover import expand, kind_of, list_local_folder, local_lister, place
from flows.registry import FolderRow, Registry, read_registry
from schemas.records import Found, School, SourceError

UTC = dt.UTC
SCHOOLS = [
    School("TH0101", "Trường Tiểu học Hòa Bình", "TH", "XA01", "Xã Một"),
    School("TH0102", "Trường Tiểu học Đống Đa", "TH", "XA01", "Xã Một"),
    School("TH01", "Trường Tiểu học Cũ", "TH", "XA02", "Xã Hai"),
    School("THCS0201", "Trường THCS Lê Lợi", "THCS", "XA02", "Xã Hai"),
    School("Đ05", "Trường Tiểu học Đồi", "TH", "XA02", "Xã Hai"),
]


def found(name: str, day: int = 1, kind: str = "excel") -> Found:
    return Found(name, f"nop/{name}", kind, dt.datetime(2024, 10, day, tzinfo=UTC))


def placed(files: list[Found], pattern: str | None = None) -> dict[str, str]:
    return {code: f.name for code, f in place(files, SCHOOLS, ("TH",), pattern).placed}


@pytest.mark.parametrize(
    ("name", "school"),
    [
        ("TH0101_CMHS.xlsx", "TH0101"),
        ("th0101-cmhs.XLSX", "TH0101"),  # any letter case
        ("Phiếu CMHS TH0102.csv", "TH0102"),
        ("TH01.xlsx", "TH01"),  # a whole word: TH01 is not in TH0101, nor TH0101 in TH01
        ("XA01/TH0101/phieu.xlsx", "TH0101"),  # a folder per school
        ("d05 bao cao.xlsx", "Đ05"),  # accents ignored
        ("TH0102/TH0102_CMHS.ods", "TH0102"),  # named twice, one school
    ],
)
def test_a_file_is_placed_with_the_school_its_name_names(name: str, school: str) -> None:
    assert placed([found(name)]) == {school: name}


def test_a_file_naming_no_school_or_two_is_unplaced_in_one_vietnamese_line() -> None:
    result = place([found("truong-hoa-binh.xlsx"), found("TH0101_TH0102.xlsx")], SCHOOLS, ("TH",))
    assert result.placed == []
    assert [why for _, why in result.unplaced] == [
        "tệp khớp hai trường: TH0101_TH0102.xlsx (TH0101, TH0102)",
        "tệp không khớp trường nào: truong-hoa-binh.xlsx",
    ]


def test_a_file_of_another_levels_school_is_another_questionnaires() -> None:
    result = place([found("THCS0201_CMHS.xlsx")], SCHOOLS, ("TH",))
    assert (result.placed, result.unplaced) == ([], [])
    assert placed([found("THCS0201_CMHS.xlsx")]) == {}


def test_the_newest_file_of_a_school_wins_and_the_other_is_named() -> None:
    old, new = found("TH0101_CMHS.xlsx", day=3), found("TH0101_CMHS (1).xlsx", day=9)
    result = place([old, new], SCHOOLS, ("TH",))
    assert result.placed == [("TH0101", new)]
    assert result.superseded == [
        (
            "TH0101",
            old,
            "tệp TH0101_CMHS.xlsx không dùng vì đã có tệp mới hơn TH0101_CMHS (1).xlsx",
        )
    ]


def test_other_files_lock_files_and_hidden_files_are_passed_over() -> None:
    files = [
        found("TH0101_CMHS.docx"),
        found("TH0101_CMHS.pdf"),
        found("~$TH0101_CMHS.xlsx"),
        found(".TH0102.xlsx"),
        found(".Trash/TH0102.xlsx"),
        found("huong-dan.txt"),
    ]
    result = place(files, SCHOOLS, ("TH",))
    assert (result.placed, result.unplaced, result.superseded) == ([], [], [])
    assert [kind_of(n) for n in ("a.xls", "a.ods", "a.CSV", "a.xlsm")] == [
        "excel",
        "excel",
        "csv",
        "excel",
    ]


def test_a_pattern_takes_the_code_from_its_place_and_selects_the_files() -> None:
    files = [found("TH0101_CMHS.xlsx"), found("TH0102_HS.xlsx"), found("TH9999_CMHS.xlsx")]
    result = place(files, SCHOOLS, ("TH",), "{school_code}_CMHS.xlsx")
    assert [(c, f.name) for c, f in result.placed] == [("TH0101", "TH0101_CMHS.xlsx")]
    # TH0102_HS.xlsx is another row's; TH9999 matches the pattern but is no school
    assert [why for _, why in result.unplaced] == ["tệp không khớp trường nào: TH9999_CMHS.xlsx"]
    assert placed([found("XA01/th0102_cmhs.xlsx")], "{school_code}_*.xlsx") == {
        "TH0102": "XA01/th0102_cmhs.xlsx"
    }


def write(path: Path, when: dt.datetime | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    if when is not None:
        os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def test_a_local_folder_is_listed_with_its_subfolders_inside_the_campaign(
    tmp_path: Path,
) -> None:
    nop = tmp_path / "nop"
    when = dt.datetime(2024, 10, 20, 8, 0, tzinfo=UTC)
    write(nop / "XA01" / "TH0101" / "phieu.xlsx", when)
    write(nop / "TH0102.csv", when)
    write(nop / "ghi-chu.docx")
    write(nop / ".hidden" / "TH01.xlsx")
    outside = write(tmp_path.parent / f"{tmp_path.name}-out" / "TH01.xlsx")
    (nop / "TH01.xlsx").symlink_to(outside)  # a link pointing out is not followed
    (nop / "elsewhere").symlink_to(outside.parent, target_is_directory=True)
    write(tmp_path / "other" / "TH0102_b.xlsx")
    (nop / "inside.xlsx").symlink_to(tmp_path / "other" / "TH0102_b.xlsx")

    got = list_local_folder(nop, tmp_path, [tmp_path])
    assert [(f.name, f.location, f.kind) for f in got] == [
        ("TH0102.csv", "nop/TH0102.csv", "csv"),
        ("inside.xlsx", "nop/inside.xlsx", "excel"),
        ("XA01/TH0101/phieu.xlsx", "nop/XA01/TH0101/phieu.xlsx", "excel"),
    ]
    assert got[0].modified == when


def test_a_folder_outside_or_absent_cannot_be_listed(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="outside the campaign folder"):
        list_local_folder(tmp_path.parent, tmp_path, [tmp_path])
    with pytest.raises(SourceError, match="No such file"):
        list_local_folder(tmp_path / "nope", tmp_path, [tmp_path])
    write(tmp_path / "file.xlsx")
    with pytest.raises(SourceError, match="is not a folder"):
        list_local_folder(tmp_path / "file.xlsx", tmp_path, [tmp_path])


SCHOOLS_CSV = """\
school_code,school_name,level,unit_code,unit_name
TH0101,Trường Tiểu học Hòa Bình,TH,XA01,Xã Một
TH0102,Trường Tiểu học Đống Đa,TH,XA01,Xã Một
"""


def registry_of(tmp_path: Path, sources: str) -> Registry:
    (tmp_path / "schools.csv").write_text(SCHOOLS_CSV, encoding="utf-8")
    (tmp_path / "sources.csv").write_text(
        "school_code,questionnaire,kind,location\n" + sources, encoding="utf-8"
    )
    return read_registry(tmp_path / "schools.csv", tmp_path / "sources.csv", ["CMHS_TH"])


def test_the_registry_takes_folder_and_drive_rows_and_fails_a_bad_one_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "nop").mkdir()
    found = registry_of(
        tmp_path,
        "*,CMHS_TH,folder,nop#{school_code}_*.xlsx\n"
        "*,cmhs_th,DRIVE,https://drive.google.com/drive/folders/1AbC#{school_code}_*\n"
        "*,CMHS_TH,folder,npo\n"
        "*,CMSH_TH,folder,nop\n"
        "*,CMHS_TH,foldr,nop\n"
        "TH0101,CMHS_TH,folder,nop\n"
        "*,CMHS_TH,excel,nop/TH0101.xlsx\n",
    )
    assert [(r.kind, r.target, r.pattern) for r in found.folders] == [
        ("folder", "nop", "{school_code}_*.xlsx"),
        ("drive", "https://drive.google.com/drive/folders/1AbC", "{school_code}_*"),
    ]
    messages = [r.message.split(": ", 1)[1] for r in found.refused]
    assert messages == [
        "line 4: location 'npo': folder npo does not exist (did you mean nop?)",
        "line 5: questionnaire 'CMSH_TH' is not one of CMHS_TH (did you mean CMHS_TH?)",
        "line 6: kind 'foldr' is not one of excel, csv, gsheet, folder, drive "
        "(did you mean folder?)",
        "line 7: a folder row names one folder for every school: its school_code is *",
        "line 8: school_code * is for folder and drive rows (kind excel names one file)",
    ]
    assert found.sources == []


def test_expanding_places_files_and_an_explicit_row_wins(tmp_path: Path) -> None:
    write(tmp_path / "nop" / "TH0101_CMHS.xlsx")
    write(tmp_path / "nop" / "TH0102_CMHS.xlsx")
    write(tmp_path / "nop" / "bao-cao.xlsx")
    write(tmp_path / "rieng" / "TH0102.xlsx")
    found = registry_of(tmp_path, "*,CMHS_TH,folder,nop\nTH0102,CMHS_TH,excel,rieng/TH0102.xlsx\n")
    listers = {"folder": local_lister(tmp_path, [tmp_path])}
    out = expand(found, {"CMHS_TH": ("TH",)}, listers, tmp_path)
    assert [(s.school_code, s.kind, s.location, s.found_in) for s in out.sources] == [
        ("TH0102", "excel", "rieng/TH0102.xlsx", None),
        ("TH0101", "excel", "nop/TH0101_CMHS.xlsx", "nop"),
    ]
    assert out.sources[1].path == tmp_path / "nop" / "TH0101_CMHS.xlsx"
    assert [(r.source.school_code, r.source.location) for r in out.refused] == [
        ("*", "nop/bao-cao.xlsx")
    ]
    assert out.refused[0].message.endswith("line 2: tệp không khớp trường nào: bao-cao.xlsx")


def test_a_drive_row_without_its_lister_and_a_vanished_folder_fail_alone(tmp_path: Path) -> None:
    (tmp_path / "nop").mkdir()
    found = registry_of(tmp_path, "*,CMHS_TH,drive,1AbC\n*,CMHS_TH,folder,nop\n")
    (tmp_path / "nop").rmdir()  # gone between reading sources.csv and listing it
    listers = {"folder": local_lister(tmp_path, [tmp_path])}
    out = expand(found, {"CMHS_TH": ("TH",)}, listers, tmp_path)
    assert out.sources == []
    assert [(r.source.school_code, r.source.kind, r.source.location) for r in out.refused] == [
        ("*", "drive", "1AbC"),
        ("*", "folder", "nop"),
    ]
    assert "No such file or directory" in out.refused[1].message


def test_a_drive_row_takes_its_lister_and_its_files_become_drive_and_gsheet_sources(
    tmp_path: Path,
) -> None:
    (tmp_path / "nop").mkdir()
    found = registry_of(tmp_path, "*,CMHS_TH,drive,1AbC#{school_code}_*\n")
    when = dt.datetime(2024, 10, 20, tzinfo=UTC)
    listed = [
        Found("TH0101_CMHS.xlsx", "1file", "excel", when, "9e107d9d372bb6826bd81d3542a419d6"),
        Found("TH0102_CMHS", "1sheet", "gsheet", when),
        Found("TH0199_CMHS.xlsx", "1typo", "excel", when),
    ]
    seen: list[str] = []

    def drive_lister(row: FolderRow) -> list[Found]:
        seen.append(row.target)
        return listed

    out = expand(found, {"CMHS_TH": ("TH",)}, {"drive": drive_lister}, tmp_path)
    assert seen == ["1AbC"]
    assert [(s.school_code, s.kind, s.location, s.path, s.found_in) for s in out.sources] == [
        ("TH0101", "drive", "1file", None, "1AbC#{school_code}_*"),
        ("TH0102", "gsheet", "1sheet", None, "1AbC#{school_code}_*"),
    ]
    assert [(r.source.school_code, r.source.kind, r.source.location) for r in out.refused] == [
        ("*", "drive", "1typo")
    ]
