"""The demo province: reproducible, within the registry contract, and every trap really there."""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import make_url

from flows.cli import demo
from flows.cli.demo import answers as demo_answers
from flows.cli.demo import province as demo_province
from flows.pipeline.context import read_registry
from flows.registry import SCHOOL_COLUMNS, SOURCE_COLUMNS, read_schools, read_sources
from flows.settings import load_settings
from schemas import load_questionnaires

QS = load_questionnaires()
LIKERT_TEXT = set(demo_answers.LIKERT_LABELS.values())


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default province (seed 2024), generated once for the module."""
    return demo.generate_province(tmp_path_factory.mktemp("a") / "hn").parent


@pytest.fixture(scope="module")
def traps() -> dict[str, list[tuple[str, str]]]:
    return demo_province.trap_locations()


def _files(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file())


def _rows(path: Path) -> list[list[Any]]:
    """A submission's cells as Python values (openpyxl for xlsx, csv for CSV)."""
    if path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as f:
            return [list(r) for r in csv.reader(f)]
    ws = load_workbook(path).worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _header_index(rows: list[list[Any]]) -> int:
    """Index of the header row: the first row whose first cell names a column we know."""
    for i, row in enumerate(rows):
        if row and row[0] in ("Dấu thời gian", "Timestamp", "STT"):
            return i
    raise AssertionError("no header row")


def _column(rows: list[list[Any]], header: str) -> list[Any]:
    h = _header_index(rows)
    j = rows[h].index(header)
    return [r[j] for r in rows[h + 1 :] if any(v not in (None, "") for v in r)]


def _serial(day: dt.date) -> int:
    """Excel's day number (1900 system), computed here independently of the generator."""
    return (day - dt.date(1899, 12, 30)).days


def _cells(rows: list[list[Any]]) -> list[Any]:
    return [v for r in rows for v in r]


def _one(traps: dict[str, list[tuple[str, str]]], name: str, province: Path) -> Path:
    locations = [loc for _, loc in traps[name] if loc]
    assert locations, f"trap {name} is placed nowhere"
    return province / locations[0]


# ---------------------------------------------------------------------------------------------
# Reproducible


@pytest.mark.slow
def test_same_seed_gives_identical_files(province: Path, tmp_path: Path) -> None:
    again = demo.generate_province(tmp_path / "hn").parent
    names = [p.relative_to(province) for p in _files(province)]
    assert names == [p.relative_to(again) for p in _files(again)]
    for name in names:
        a, b = province / name, again / name
        if name.suffix in (".csv", ".yaml"):
            assert a.read_bytes() == b.read_bytes(), name
        if name.suffix == ".xlsx" and zipfile.is_zipfile(a):
            assert _rows(a) == _rows(b), name
            assert a.read_bytes() == b.read_bytes(), name  # fixed properties and zip times
        if name.parts[0] == "submissions":
            assert a.stat().st_mtime == b.stat().st_mtime, name


@pytest.mark.slow
def test_another_seed_changes_answers_but_not_trap_places(province: Path, tmp_path: Path) -> None:
    other = demo.generate_province(tmp_path / "x", seed=7).parent
    assert (other / "sources.csv").read_bytes() == (province / "sources.csv").read_bytes()
    a, b = (p / "submissions" / "TH015_CMHS_TH.xlsx" for p in (province, other))
    assert _rows(a) != _rows(b)


# ---------------------------------------------------------------------------------------------
# Contract


def test_registry_and_config_follow_the_contract(province: Path) -> None:
    for name, columns in (("schools.csv", SCHOOL_COLUMNS), ("sources.csv", SOURCE_COLUMNS)):
        with (province / name).open(encoding="utf-8", newline="") as f:
            assert next(csv.reader(f)) == list(columns)
    settings = load_settings(province / "khaosat.yaml", env={})
    c = settings.campaign
    assert (c.id, c.school_year, c.province_code) == ("HN-2024", "2024-2025", "01")
    assert c.opens < c.closes < c.deadline
    assert settings.registry.schools == (province / "schools.csv").resolve()
    schools = read_schools(settings.registry.schools)
    sources = read_registry(settings)[1].sources
    assert len(schools) == 20
    assert {s.level for s in schools} == {"MN", "TH", "THCS", "THPT", "GDTX"}
    assert {s.questionnaire for s in sources} == set(QS)
    assert all(s.kind in ("excel", "csv") and not Path(s.location).is_absolute() for s in sources)


def test_units_follow_the_2025_organisation(province: Path) -> None:
    schools = read_schools(province / "schools.csv")
    for s in schools:
        if s.level in ("THPT", "GDTX"):
            assert (s.unit_code, s.unit_name) == ("SGD", "Sở Giáo dục và Đào tạo Hà Nội")
        else:
            assert s.unit_name.startswith(("Xã ", "Phường "))
    assert len({s.unit_code for s in schools}) == 4
    assert all(s.name.startswith(("Trường ", "Trung tâm ")) for s in schools)


def test_every_required_questionnaire_has_a_source_except_the_traps(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    schools = read_schools(province / "schools.csv")
    found = read_registry(load_settings(province / "khaosat.yaml", env={}))[1]
    # the PAPI_TH files are found in their folder, but for the one misnamed
    assert [(r.source.school_code, r.source.location) for r in found.refused] == [
        ("*", loc) for _, loc in traps["misnamed"]
    ]
    assert found.refused[0].message.endswith("tệp không khớp trường nào: TH02_PAPI_TH.csv")
    have = {(s.school_code, s.questionnaire) for s in found.sources}
    no_source = {code for code, _ in traps["no_source"]}
    for s in schools:
        for q in QS.values():
            if q.required and s.level in q.levels and s.code not in no_source:
                assert (s.code, q.code) in have
    # PAPI_TH for some TH schools, DVGD_8TC with several services at several schools.
    assert 0 < len({c for c, q in have if q == "PAPI_TH"}) < sum(s.level == "TH" for s in schools)
    assert len({c for c, q in have if q == "DVGD_8TC"}) >= 6


def test_every_trap_is_placed(traps: dict[str, list[tuple[str, str]]]) -> None:
    assert set(traps) == set(demo_province.TRAPS)
    assert [t for t, where in traps.items() if not where] == []


def test_a_province_too_small_for_the_traps_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small"):
        demo.generate_province(tmp_path, n_units=2, schools_per_unit=3)


@pytest.mark.slow
def test_a_larger_province_keeps_the_traps(tmp_path: Path) -> None:
    config = demo.generate_province(tmp_path, n_units=6, schools_per_unit=7, respondents=(8, 10))
    schools = read_schools(config.parent / "schools.csv")
    assert len(schools) == 42
    where = demo_province.trap_locations(n_units=6, schools_per_unit=7)
    assert [t for t, w in where.items() if not w] == []
    assert where["corrupt"] == demo_province.trap_locations()["corrupt"]


# ---------------------------------------------------------------------------------------------
# Each trap, concretely


@pytest.mark.slow
def test_forms_timestamps_text_and_datetime(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    text = _column(_rows(_one(traps, "timestamp_text", province)), "Dấu thời gian")
    assert all(re.fullmatch(r"\d{2}/\d{2}/2024 \d{1,2}:\d{2}:\d{2}", v) for v in text)
    assert any(re.match(r"\d{2}/\d{2}/2024 \d:", v) for v in text)  # hour without a zero
    for _, loc in traps["timestamp_datetime"]:
        rows = _rows(province / loc)
        real = _column(rows, rows[0][0])
        assert real and all(isinstance(v, dt.datetime) for v in real)


def test_forms_timestamps_as_serial_numbers(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    serials = _column(_rows(_one(traps, "serial_timestamps", province)), "Dấu thời gian")
    first = float(_serial(demo_province.OPENS))
    assert all(isinstance(v, float) and first <= v < first + 40 for v in serials)
    assert any(v != int(v) for v in serials)  # the time of day is the fraction


def test_english_headers_and_emails(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    rows = _rows(_one(traps, "english_headers", province))
    assert rows[0][:2] == ["Timestamp", "Email Address"]
    vi = _rows(_one(traps, "email", province))
    emails = _column(vi, "Địa chỉ email")
    assert emails and all(re.fullmatch(r"[a-z._]+\d*@example\.(com|org)", e) for e in emails)


def test_grid_headers_and_labels(province: Path, traps: dict[str, list[tuple[str, str]]]) -> None:
    path = _one(traps, "grid_headers", province)
    q = QS[path.stem.split("_", 1)[1]]
    rows = _rows(path)
    tc1 = q.item("TC1")
    assert f"{tc1.grid} [{tc1.text}]" in rows[0]
    assert LIKERT_TEXT <= set(_cells(_rows(_one(traps, "labels_text", province)))) | LIKERT_TEXT
    assert set(_column(rows, f"{tc1.grid} [{tc1.text}]")) <= LIKERT_TEXT
    linear = _rows(_one(traps, "linear_scale", province))
    tc1 = QS["HS_THPT"].item("TC1")
    assert set(_column(linear, f"{tc1.grid} [{tc1.text}]")) <= {1, 2, 3, 4, 5}


def test_csv_with_and_without_bom(province: Path, traps: dict[str, list[tuple[str, str]]]) -> None:
    assert _one(traps, "csv_bom", province).read_bytes().startswith(b"\xef\xbb\xbfD")
    plain = _one(traps, "csv_no_bom", province).read_bytes()
    assert plain.startswith("Dấu thời gian".encode())


def test_typed_paper_workbook(province: Path, traps: dict[str, list[tuple[str, str]]]) -> None:
    path = _one(traps, "formula_totals", province)
    for trap in (
        "paper_xlsx",
        "title_block",
        "numbered_headers",
        "blank_rows",
        "totals_row",
        "serial_dates",
        "label_variants",
        "invalid_answers",
    ):
        assert path.relative_to(province).as_posix() in [loc for _, loc in traps[trap]], trap
    ws = load_workbook(path).worksheets[0]
    assert ws["A1"].value == "SỞ GIÁO DỤC VÀ ĐÀO TẠO HÀ NỘI"
    assert ws["A2"].value.startswith("TRƯỜNG TIỂU HỌC ")
    assert "A1:F1" in {str(r) for r in ws.merged_cells.ranges}
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    h = _header_index(rows)
    assert h == 6 and rows[h][:2] == ["STT", "Ngày khảo sát"]
    assert any(str(v).startswith("Câu 5. ") for v in rows[h])
    body = rows[h + 1 :]
    assert any(all(v is None for v in r) for r in body[:-1])  # blank rows between forms
    totals = body[-1]
    assert totals[0] == "Tổng cộng"
    assert any(isinstance(v, str) and v.startswith("=COUNTA(") for v in totals)
    dates = _column(rows, "Ngày khảo sát")[:-1]
    window = range(_serial(demo_province.OPENS), _serial(demo_province.CLOSES) + 1)
    assert all(isinstance(d, int) and d in window for d in dates)
    cells = set(_cells(body))
    assert {"Chưa hài lòng", "Phân vân", "4 - Hài lòng", "(5)"} <= cells
    assert {"6", "Không biết"} <= cells


def test_numeric_totals_and_parenthesised_numbering(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    paths = {loc for _, loc in traps["totals_row"]} - {loc for _, loc in traps["formula_totals"]}
    rows = _rows(province / paths.pop())
    h = _header_index(rows)
    assert any(re.match(r"\d+\) ", str(v)) for v in rows[h])
    assert rows[-1][0] == "Tổng cộng"
    assert any(isinstance(v, int) and v > 5 for v in rows[-1])  # counts, not answers


def test_nfd_text(province: Path, traps: dict[str, list[tuple[str, str]]]) -> None:
    rows = _rows(_one(traps, "nfd", province))
    texts = [v for v in _cells(rows) if isinstance(v, str) and v.isascii() is False]
    assert texts and all(unicodedata.is_normalized("NFD", t) for t in texts)
    assert not any(unicodedata.is_normalized("NFC", t) for t in texts if "ư" in t.lower())
    nfc = {unicodedata.normalize("NFC", t) for t in texts}
    assert "Phân vân" in nfc and "Phân vân" not in texts


def test_renamed_reordered_extra_and_personal_columns(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    path = _one(traps, "renamed", province)
    for trap in ("reordered", "extra_question", "personal_data", "missing_question"):
        assert path.relative_to(province).as_posix() in [loc for _, loc in traps[trap]]
    q = QS["CMHS_TH"]
    rows = _rows(path)
    header = [str(h) for h in rows[0]]
    assert "Con học lớp" in header and "Lớp" not in header
    assert any(h.strip().endswith("Mức độ hài lòng chung") for h in header)
    pos = {
        code: next(i for i, h in enumerate(header) if q.item(code).text in h)
        for code in ("TC1", "PT3")
    }
    assert pos["PT3"] < pos["TC1"]
    assert "Ông/Bà biết đến cuộc khảo sát này qua kênh nào?" in header
    assert not any(h.strip() in ("Khu vực", *q.item("KHU_VUC").aliases) for h in header)
    names = _column(rows, "Họ và tên")
    phones = _column(rows, "Số điện thoại")
    assert all(len(n.split()) == 3 for n in names)
    assert all(re.fullmatch(r"0\d{9}", p) for p in phones)
    assert any("  " in h or h.endswith(" ") for h in header)  # stray spaces in headers


def test_formula_like_comments(province: Path, traps: dict[str, list[tuple[str, str]]]) -> None:
    kinds = set()
    for _, loc in traps["formula_like_text"]:
        path = province / loc
        kinds.add(path.suffix)
        comments = _column(_rows(path), "Ý kiến, đề xuất khác")
        assert {c[:1] for c in comments if c} >= {"=", "-", "+"}
        if path.suffix == ".xlsx":
            ws = load_workbook(path).worksheets[0]
            cells = [c for r in ws.iter_rows() for c in r if str(c.value).startswith("=")]
            assert cells and all(c.data_type == "s" for c in cells)
    assert kinds == {".csv", ".xlsx"}


def test_response_before_opens_and_exact_duplicate(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    stamps = _column(_rows(_one(traps, "before_opens", province)), "Dấu thời gian")
    days = [dt.datetime.strptime(s, "%d/%m/%Y %H:%M:%S").date() for s in stamps]
    assert sum(d < demo_province.OPENS for d in days) == 1
    lines = _one(traps, "duplicate", province).read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) - len(set(lines)) == 1


def test_broken_files(province: Path, traps: dict[str, list[tuple[str, str]]]) -> None:
    corrupt = _one(traps, "corrupt", province)
    assert corrupt.stat().st_size > 1000 and not zipfile.is_zipfile(corrupt)
    assert _one(traps, "empty", province).stat().st_size == 0
    absent = _one(traps, "absent", province)
    assert not absent.exists()
    registered = (province / "sources.csv").read_text(encoding="utf-8")
    assert absent.relative_to(province).as_posix() in registered
    [(school, _)] = traps["no_source"]
    assert f"\n{school}," in (province / "schools.csv").read_text(encoding="utf-8")
    assert f"\n{school}," not in registered


def test_only_the_late_file_is_modified_after_the_deadline(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    deadline = dt.datetime.combine(
        demo_province.DEADLINE, dt.time.max, ZoneInfo("Asia/Ho_Chi_Minh")
    )
    late = {province / loc for _, loc in traps["late"]}
    for path in (province / "submissions").iterdir():
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime, ZoneInfo("Asia/Ho_Chi_Minh"))
        assert (modified > deadline) == (path in late), path.name
        assert modified.date() >= demo_province.OPENS


def _pct_satisfied(path: Path) -> float:
    answers = [v for v in _cells(_rows(path)) if v in LIKERT_TEXT]
    good = sum(v in ("Hài lòng", "Rất hài lòng") for v in answers)
    return 100 * good / len(answers)


@pytest.mark.slow
def test_low_satisfaction_schools_stand_out(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    low = {province / loc for _, loc in traps["low_satisfaction"]}
    assert len({code for code, _ in traps["low_satisfaction"]}) >= 2
    assert all(_pct_satisfied(p) < 60 for p in low)
    normal = [province / loc for _, loc in traps["labels_text"] if province / loc not in low]
    normal = [p for p in normal if "PAPI" not in p.name]
    assert sum(_pct_satisfied(p) for p in normal) / len(normal) > 80


def test_papi_indicator_and_service_below_thresholds(
    province: Path, traps: dict[str, list[tuple[str, str]]]
) -> None:
    rows = _rows(_one(traps, "papi_low", province))
    hoc_them = _column(rows, QS["PAPI_TH"].item("HOC_THEM").text)
    assert set(hoc_them) == {"Có", "Không"}
    assert hoc_them.count("Có") / len(hoc_them) < 0.8
    points = {v: k for k, v in demo_answers.LEVEL_LABELS.items()}
    review = _rows(_one(traps, "service_low", province))
    services = review[_header_index(review) + 1 :]
    totals = [sum(points[v] for v in r if v in points) for r in services]
    assert min(totals) < 40 and max(totals) >= 40
    assert any("Kém" in r for r in services)
    assert len(services) >= 3


@pytest.mark.slow
def test_the_previous_campaign_is_the_same_province_a_year_earlier(
    province: Path, tmp_path: Path
) -> None:
    config = demo.generate_province(tmp_path / "hn", previous=True)
    current = load_settings(config, env={})
    before = load_settings(config.parent / demo_province.PREVIOUS_FOLDER / "khaosat.yaml", env={})
    assert current.campaign.previous == before.campaign.id == demo_province.PREVIOUS_ID
    # one warehouse holds both years
    files = [Path(str(make_url(s.warehouse_url).database)).resolve() for s in (before, current)]
    assert files[0] == files[1] == (config.parent / "khaosat.sqlite").resolve()
    assert before.campaign.opens.year == current.campaign.opens.year - 1
    # the current campaign's files are those of a demo without the previous one
    for name in ("schools.csv", "sources.csv", "submissions/TH002_CMHS_TH.xlsx"):
        assert (config.parent / name).read_bytes() == (province / name).read_bytes(), name
    schools = read_schools(config.parent / "schools.csv")
    previous_root = config.parent / demo_province.PREVIOUS_FOLDER
    sources = read_sources(previous_root / "sources.csv", {s.code: s for s in schools}, QS)
    assert {s.school_code for s in sources} == {s.code for s in schools}  # every school answered
    for source in sources:
        assert QS[source.questionnaire].kind == "satisfaction"
        stamps = _column(_rows(previous_root / source.location), "Dấu thời gian")
        assert stamps, source.location
        for stamp in stamps:
            when = stamp if isinstance(stamp, dt.datetime) else dt.datetime.fromisoformat(stamp)
            assert before.campaign.opens <= when.date() <= before.campaign.closes, source
