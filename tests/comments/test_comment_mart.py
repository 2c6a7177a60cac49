"""The comment mart on a province of our own, run by ``khaosat run`` on SQLite and PostgreSQL.

S1 (12 respondents) and S2 (4) answer CMHS_TH in unit U1, S3 (3) answers HS_THPT in U2; their
comments are written to hit known themes: accented, unaccented, misspelt ("Sỉ số"), with a
phone number, an e-mail and a teacher's name, and blanks and "no comment" answers. The counts
below are worked out by hand from COMMENTS.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from flows.cli.app import app
from tests.factories import khaosat, make_province, stamp
from warehouse.comments import built_with, read_quotes, read_theme_counts
from warehouse.db import connect

COMMENT_HEADER = "Ý kiến, đề xuất khác"

#: Each school's comments, one respondent each.
COMMENTS = {
    ("S1", "CMHS_TH"): [
        "nha ve sinh ban qua, can don dep thuong xuyen",  # nha_ve_sinh (unaccented)
        "Nhà vệ sinh bẩn, các con không dám đi. Gọi tôi: 0912 345 678",  # nha_ve_sinh
        "Các khoản thu đầu năm quá nhiều. Email: phu.huynh@gmail.com",  # khoan_thu
        "cac khoan dong gop dau nam nhieu qua",  # khoan_thu (unaccented)
        "Cô Lan dạy thêm ở nhà, các cháu phải đi học thêm",  # day_them, a name
        "bữa ăn bán trú còn ít, con về kêu đói",  # ban_tru
        "Không có ý kiến",
        "ko",
        "",
        "Cảm ơn thầy cô đã tận tâm với các con",  # khen_ngoi
        "Trường nên trồng thêm hoa",  # khac
        "ok",
    ],
    ("S2", "CMHS_TH"): [
        "Sỉ số lớp đông quá, 45 cháu một lớp",  # si_so (misspelt)
        "Nha ve sinh ban",  # nha_ve_sinh
        "Không có ý kiến.",
        "Con bị bạn bắt nạt, gọi 0987.654.321",  # an_toan
    ],
    ("S3", "HS_THPT"): [
        "Muốn có thêm câu lạc bộ bóng rổ",  # hoat_dong
        "Bài tập về nhà nhiều quá",  # phuong_phap
        "",
    ],
}

CMHS_TH = {
    "nha_ve_sinh": 3,
    "khoan_thu": 2,
    "day_them": 1,
    "ban_tru": 1,
    "khen_ngoi": 1,
    "khac": 1,
    "si_so": 1,
    "an_toan": 1,
}
EXPECTED = {
    ("school", "S1", "CMHS_TH"): (
        12,
        {"nha_ve_sinh": 2, "khoan_thu": 2, "day_them": 1, "ban_tru": 1, "khen_ngoi": 1, "khac": 1},
    ),
    ("school", "S2", "CMHS_TH"): (4, {"si_so": 1, "nha_ve_sinh": 1, "an_toan": 1}),
    ("school", "S3", "HS_THPT"): (3, {"hoat_dong": 1, "phuong_phap": 1}),
    ("unit", "U1", "CMHS_TH"): (16, CMHS_TH),
    ("unit", "U2", "HS_THPT"): (3, {"hoat_dong": 1, "phuong_phap": 1}),
    ("province", "TM", "CMHS_TH"): (16, CMHS_TH),
    ("province", "TM", "HS_THPT"): (3, {"hoat_dong": 1, "phuong_phap": 1}),
}

PERSONAL = re.compile(r"\d{3}[ .]?\d{3}[ .]?\d{3}|@|\bLan\b")


def commented_province(folder: Path, warehouse_url: str) -> Path:
    """The test province with COMMENTS as its only submissions (CSV, as Google Forms exports
    them); its config."""
    config = make_province(folder, warehouse_url)
    lines = ["school_code,questionnaire,kind,location"]
    for (school, questionnaire), comments in COMMENTS.items():
        path = folder / "submissions" / f"{school}_{questionnaire}_y_kien.csv"
        with path.open("w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(["Dấu thời gian", "TC1", "CHUNG", COMMENT_HEADER])
            for i, comment in enumerate(comments):
                out.writerow([f"2{i % 9}/10/2024 08:0{i % 10}:00", 4, 5, comment])
        stamp(path, dt.datetime(2024, 10, 24, 17, 0))
        lines.append(f"{school},{questionnaire},csv,submissions/{path.name}")
    (folder / "sources.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def _run(config: Path) -> None:
    done = khaosat("run", "--config", str(config), KHAOSAT_RUN__PARSE_PROCESSES="0")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_comment_mart_counts_each_theme_and_quotes_only_masked_text_of_large_scopes(
    tmp_path: Path, warehouse_url: str, prefect_harness: None
) -> None:
    config = commented_province(tmp_path, warehouse_url)
    _run(config)
    engine = connect(warehouse_url)
    try:
        counts = read_theme_counts(engine, "T-2024")
        found: dict[tuple[str, str, str], tuple[set[int], dict[str, int]]] = {}
        for c in counts:
            n, themes = found.setdefault((c.scope, c.scope_code, c.questionnaire), (set(), {}))
            n.add(c.n_respondents)
            themes[c.theme] = c.n_comments
        assert {k: (n.pop(), themes) for k, (n, themes) in found.items()} == EXPECTED
        assert read_theme_counts(engine, "T-2024", "unit", "U1")[0].theme == "nha_ve_sinh"
        labels = {c.theme: (c.label, c.dimension) for c in counts}
        assert labels["nha_ve_sinh"] == ("Nhà vệ sinh và nước uống", "CSVC")
        assert labels["khac"] == ("Ý kiến khác", None)

        quotes = read_quotes(engine, "T-2024")
        # Only U1 and the province's CMHS_TH have 10 respondents; only S1's comments are quoted.
        assert {(q.scope, q.scope_code, q.questionnaire) for q in quotes} == {
            ("unit", "U1", "CMHS_TH"),
            ("province", "TM", "CMHS_TH"),
        }
        unit = {(q.theme, q.rank): q.text for q in quotes if q.scope == "unit"}
        assert set(unit) == {
            ("nha_ve_sinh", 1),
            ("nha_ve_sinh", 2),
            ("khoan_thu", 1),
            ("khoan_thu", 2),
            ("day_them", 1),
            ("ban_tru", 1),
            ("khen_ngoi", 1),
            ("khac", 1),
        }
        assert "Nha ve sinh ban" not in unit.values()  # S2 has 4 respondents
        for q in quotes:
            assert not PERSONAL.search(q.text), q.text
        texts = set(unit.values())
        assert "Nhà vệ sinh bẩn, các con không dám đi. Gọi tôi: [số điện thoại]" in texts
        assert "Các khoản thu đầu năm quá nhiều. Email: [email]" in texts
        assert "Cô [tên] dạy thêm ở nhà, các cháu phải đi học thêm" in texts
        assert built_with(engine, "T-2024")["version"] == "2026.1"
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_night_rebuilds_the_comment_mart_when_the_officers_codebook_changes(
    tmp_path: Path, prefect_harness: None
) -> None:
    url = f"sqlite:///{tmp_path / 'khaosat.sqlite'}"
    config = commented_province(tmp_path, url)
    own = tmp_path / "chu-de"
    own.mkdir()
    (own / "so.yaml").write_text("version: so-1\nthemes: []\n", encoding="utf-8")
    config.write_text(
        config.read_text(encoding="utf-8") + "codebook_dir: chu-de\n", encoding="utf-8"
    )
    _run(config)
    engine = connect(url)
    try:
        first = built_with(engine, "T-2024")
        s1 = {c.theme for c in read_theme_counts(engine, "T-2024", "school", "S1")}
        assert "khac" in s1 and "canh_quan" not in s1

        # Nothing submitted changes; the officer adds a theme for what "khác" held.
        (own / "so.yaml").write_text(
            "version: so-2\nthemes:\n  - code: canh_quan\n    label: Cảnh quan\n"
            "    phrases: [trồng thêm hoa]\n",
            encoding="utf-8",
        )
        _run(config)
        s1 = {c.theme: c.n_comments for c in read_theme_counts(engine, "T-2024", "school", "S1")}
        assert s1["canh_quan"] == 1 and "khac" not in s1
        now = built_with(engine, "T-2024")
        assert now["version"] == "2026.1+so-2" and now["fingerprint"] != first["fingerprint"]
        workbook = tmp_path / "output" / "T-2024_U1.xlsx"
        assert "Cảnh quan" in {c.value for row in load_workbook(workbook)["Ý kiến"] for c in row}
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", ["run", "publish"])
def test_an_officers_codebook_that_cannot_be_used_stops_the_command_in_one_line(
    tmp_path: Path, own_environment: None, command: str
) -> None:
    config = make_province(tmp_path)
    (tmp_path / "chu-de").mkdir()
    bad = tmp_path / "chu-de" / "so.yaml"
    bad.write_text("version: 1\nthemes:\n  - code: Nha VS\n    label: X\n", encoding="utf-8")
    config.write_text(
        config.read_text(encoding="utf-8") + "codebook_dir: chu-de\n", encoding="utf-8"
    )
    env = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # never reached: nothing starts
    done = CliRunner().invoke(app, [command, "--config", str(config)], env=env)
    assert done.exit_code == 2, done.output
    assert done.output.strip().splitlines() == [
        f"error: {config}: {bad}: themes[0]: code 'Nha VS' must be lower-case letters, digits "
        "and _ (and not 'khac', the theme of what matches nothing)"
    ]
