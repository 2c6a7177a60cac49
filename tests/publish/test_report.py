"""The draft báo cáo: every figure it shows is the marts', read back from the DOCX.

The warehouse is the workbook tests' (tests/factories.load_both_campaigns: campaign HN-2025
with HN-2024 before it; MN1's 4 respondents make the whole Mầm non level too small to show,
TH2's 3 a small school; TH3's services include one under 40 points and one whose name carries
a phone number), on SQLite and PostgreSQL, with alerts as the rules write them. Expected
figures are computed here with SQL over the mart tables (``tests.factories.rows``), never
through the report's own code; only the way a figure is written (decimal comma) is shared.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph
from sqlalchemy.engine import Engine

from flows.alerts import wilson_interval
from flows.publish.labels import LEVEL_LABELS, SUPPRESSED
from flows.publish.report import report_path, write_report
from flows.publish.report.blocks import Chart, Heading, Para, mean, number, pct
from flows.publish.report.blocks import Table as TableBlock
from flows.publish.report.comments import comment_section
from schemas import load_questionnaires
from schemas.comments import OTHER_THEME, Quote, ThemeCount
from schemas.questionnaire import DIMENSIONS
from tests.factories import (
    CAMPAIGN,
    PREVIOUS,
    khaosat,
    load_both_campaigns,
    make_province,
    rows,
    to_pdf,
    tool,
)
from warehouse import tables as t

# Each test loads campaigns into both warehouses and writes a whole report.
pytestmark = pytest.mark.slow

QS = load_questionnaires()
C, P = CAMPAIGN.id, PREVIOUS.id
#: khaosat.yaml ``actions:`` of the test: the province's own follow-up for CSVC alerts.
ACTIONS = {"CSVC": "Rà soát phòng học, lập kế hoạch sửa chữa trong học kỳ II"}

#: rule, severity, scope, scope_code, subject, value, threshold, status, note
ALERTS = [
    ("pct_satisfied_low", "red", "unit", "U2", "TH/CMHS_TH/CSVC", 55.5, 70.0, "open", None),
    (
        "pct_satisfied_low",
        "amber",
        "school",
        "TH1",
        "CMHS_TH/TIEP_CAN",
        80.25,
        85.0,
        "acknowledged",
        "gọi cô Lan 0912 345 678",
    ),
    ("insufficient_sample", "info", "school", "TH2", "CMHS_TH", 3.0, 30.0, "open", None),
    # A small-sample alert (raised on a Wilson bound): a figure of 3 respondents, hidden.
    ("pct_satisfied_low", "amber", "school", "TH2", "CMHS_TH/CSVC", 33.3, 85.0, "open", None),
    ("papi_low", "amber", "province", "01", "HOC_THEM", 62.3, 80.0, "resolved", "đã xử lý"),
    ("service_total_low", "amber", "school", "TH3", "Bán trú", 24.0, 40.0, "open", None),
    ("pct_satisfied_low", "red", "school", "TH3", "CMHS_TH/CHUNG", 40.0, 70.0, "open", None),
]


@pytest.fixture
def warehouse(engine: Engine) -> Engine:
    """Both campaigns loaded, marts built, the alerts above stored."""
    load_both_campaigns(engine)
    columns = ("rule", "severity", "scope", "scope_code", "subject", "value", "threshold")
    with engine.begin() as conn:
        for *values, status, note in ALERTS:
            conn.execute(
                t.alerts.insert().values(
                    campaign_id=C,
                    status=status,
                    note=note,
                    first_seen_at=dt.datetime(2025, 12, 1, 1, 35),
                    last_seen_at=dt.datetime(2025, 12, 1, 1, 35),
                    **dict(zip(columns, values, strict=True)),
                )
            )
    return engine


@pytest.fixture
def report(warehouse: Engine, tmp_path: Path) -> Path:
    """Run-1's report."""
    return write_report(warehouse, C, tmp_path / "out", QS, run_id="run-1", actions=ACTIONS)


# ---------------------------------------------------------------------------------------------
# Reading the DOCX back


def _blocks(doc: Document) -> list[Paragraph | Table]:
    """The body's paragraphs and tables in document order."""
    out: list[Paragraph | Table] = []
    for child in doc.element.body.iterchildren():
        if child.tag.endswith("}p"):
            out.append(Paragraph(child, doc))
        elif child.tag.endswith("}tbl"):
            out.append(Table(child, doc))
    return out


def _tables(path: Path) -> dict[str, list[list[str]]]:
    """Numbered tables by title (without "Bảng N. "), each as rows of cell texts, header
    first; checks that the numbers run 1, 2, 3 …"""
    found: dict[str, list[list[str]]] = {}
    caption = None
    numbers = []
    for block in _blocks(docx.Document(str(path))):
        if isinstance(block, Paragraph):
            m = re.fullmatch(r"Bảng (\d+)\. (.+)", block.text)
            caption = m if m else (caption if not block.text else None)
        elif caption is not None:
            numbers.append(int(caption.group(1)))
            found[caption.group(2)] = [[c.text for c in r.cells] for r in block.rows]
            caption = None
    assert numbers == list(range(1, len(numbers) + 1))
    return found


def _body(path: Path) -> list[str]:
    return [b.text for b in _blocks(docx.Document(str(path))) if isinstance(b, Paragraph)]


def _level(code: str) -> str:
    return LEVEL_LABELS[code]


def _who(code: str) -> str:
    q = QS[code]
    return {"papi": f"{q.respondent} (PAPI)", "service_review": "Dịch vụ giáo dục"}.get(
        q.kind, q.respondent
    )


def _shown(value: Any, n: Any, fmt: Any = pct) -> str:
    return SUPPRESSED if n is not None and n < 5 else fmt(value)


# ---------------------------------------------------------------------------------------------
# Mart figures, by SQL


def _province_dims(engine: Engine, campaign: str = C) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(level, questionnaire, dimension) -> the units' mart rows pooled: respondents added,
    mean and % weighted by answers (each unit's answers are its figures' denominators)."""
    found = rows(
        engine,
        "SELECT level, questionnaire, dimension, SUM(n_respondents) AS n, "
        "SUM(n_answers) AS answers, SUM(n_answers * mean_score) / SUM(n_answers) AS mean_score, "
        "SUM(n_answers * pct_satisfied) / SUM(n_answers) AS pct_satisfied "
        "FROM mart_unit_dimension WHERE campaign_id = :c GROUP BY level, questionnaire, dimension",
        c=campaign,
    )
    return {(r["level"], r["questionnaire"], r["dimension"]): r for r in found}


def test_section_one_equals_the_marts(warehouse: Engine, report: Path) -> None:
    tables = _tables(report)
    completeness = rows(
        warehouse,
        "SELECT s.level, m.questionnaire, COUNT(*) AS expected, "
        "SUM(CASE WHEN m.status IN ('submitted', 'late') THEN 1 ELSE 0 END) AS submitted, "
        "SUM(CASE WHEN m.status = 'late' THEN 1 ELSE 0 END) AS late, "
        "SUM(CASE WHEN m.status IN ('pending', 'missing') THEN 1 ELSE 0 END) AS absent, "
        "SUM(CASE WHEN m.status = 'failed' THEN 1 ELSE 0 END) AS failed, "
        "SUM(COALESCE(m.n_valid, 0)) AS responses, SUM(s.enrollment) AS pupils "
        "FROM mart_completeness m JOIN school s "
        "ON s.campaign_id = m.campaign_id AND s.school_code = m.school_code "
        "WHERE m.campaign_id = :c GROUP BY s.level, m.questionnaire",
        c=C,
    )
    expected = {
        (
            _level(r["level"]),
            _who(r["questionnaire"]),
            *(number(int(r[k])) for k in ("expected", "submitted", "late", "absent", "failed")),
            number(int(r["responses"])),
        )
        for r in completeness
    }
    shown = tables["Số trường phải nộp, đã nộp và số phiếu hợp lệ theo cấp học"]
    assert shown[0][0] == "Cấp học"
    assert {tuple(r) for r in shown[1:]} == expected
    assert len(shown) - 1 == len(expected)

    by_who: dict[str, int] = defaultdict(int)
    for r in completeness:
        by_who[_who(r["questionnaire"])] += int(r["responses"])
    respondents = tables["Số phiếu hợp lệ theo đối tượng khảo sát"][1:]
    assert {tuple(r) for r in respondents} == {(k, number(v)) for k, v in by_who.items()}

    rates = {
        (_level(r["level"]), _who(r["questionnaire"])): (
            number(int(r["pupils"])),
            number(int(r["responses"])),
            pct(100.0 * int(r["responses"]) / int(r["pupils"])),
        )
        for r in completeness
        if QS[r["questionnaire"]].kind == "satisfaction"
    }
    shown_rates = tables["Tỷ lệ phản hồi so với số học sinh của các trường phải nộp"][1:]
    assert {(r[0], r[1]): tuple(r[2:]) for r in shown_rates} == rates

    body = "\n".join(_body(report))
    assert f"(mã {C})" in body
    schools = rows(warehouse, "SELECT COUNT(*) AS n FROM school WHERE campaign_id = :c", c=C)
    assert f"Toàn tỉnh có {schools[0]['n']} trường thuộc diện khảo sát" in body


def test_results_per_level_and_dimension_equal_the_marts(warehouse: Engine, report: Path) -> None:
    tables = _tables(report)
    dims = _province_dims(warehouse)
    groups = sorted({(lv, q) for lv, q, _ in dims if QS[q].kind == "satisfaction"})
    assert ("MN", "CMHS_MN") in groups and ("TH", "CMHS_TH") in groups
    for level, q in groups:
        title = f"Kết quả theo tiêu chí: {_level(level)} – {_who(q)}"
        shown = {r[0]: r[1:] for r in tables[title][1:]}
        assert len(shown) == len([d for (lv, qq, d) in dims if (lv, qq) == (level, q)]) - 1
        for dim in (*DIMENSIONS, "CHUNG"):
            r = dims[(level, q, dim)]
            n = int(r["n"])
            low, high = wilson_interval(r["pct_satisfied"], n, 1.96)
            assert shown[QS[q].dimensions.get(dim, "Hài lòng chung")] == [
                _shown(n, n, number),
                _shown(r["mean_score"], n, mean),
                _shown(r["pct_satisfied"], n),
                SUPPRESSED if n < 5 else f"{pct(low)}–{pct(high)}",
            ], (level, q, dim)

    headline = {(r[0], r[1]): r[2:] for r in tables["Kết quả chung theo cấp học"][1:]}
    th = [dims[("TH", "CMHS_TH", d)] for d in DIMENSIONS]
    n_th = rows(
        warehouse,
        "SELECT SUM(n_valid) AS n FROM mart_completeness WHERE campaign_id = :c "
        "AND questionnaire = 'CMHS_TH'",
        c=C,
    )[0]["n"]
    assert headline[(_level("TH"), _who("CMHS_TH"))] == [
        number(int(n_th)),
        pct(sum(r["pct_satisfied"] for r in th) / 5),
        mean(sum(r["mean_score"] for r in th) / 5),
        pct(dims[("TH", "CMHS_TH", "CHUNG")]["pct_satisfied"]),
        pct(dims[("TH", "CMHS_TH", "MONG_DOI")]["mean_score"]),
    ]
    # Mầm non has 4 respondents: every figure of it is hidden, in every table.
    assert headline[(_level("MN"), _who("CMHS_MN"))][1:] == [SUPPRESSED] * 4
    mn = tables[f"Kết quả theo tiêu chí: {_level('MN')} – {_who('CMHS_MN')}"][1:]
    assert mn and all(cell == SUPPRESSED for r in mn for cell in r[1:])


def test_year_on_year_and_unit_ranking_equal_the_marts(warehouse: Engine, report: Path) -> None:
    tables = _tables(report)
    now, before = _province_dims(warehouse), _province_dims(warehouse, P)
    yoy = {(r[0], r[1]): r[2:] for r in tables[f"Tỷ lệ hài lòng so với đợt {P}"][1:]}
    for dim in (*DIMENSIONS, "CHUNG"):
        a, b = now[("TH", "CMHS_TH", dim)], before[("TH", "CMHS_TH", dim)]
        change = a["pct_satisfied"] - b["pct_satisfied"]
        name = QS["CMHS_TH"].dimensions.get(dim, "Hài lòng chung")
        assert yoy[(f"{_level('TH')} – {_who('CMHS_TH')}", name)] == [
            pct(b["pct_satisfied"]),
            pct(a["pct_satisfied"]),
            ("+" if change > 0 else "") + pct(change),
        ]
        # MN had 10 respondents last year and 4 now: this year's figure is hidden, no change.
        mn = yoy[
            (
                f"{_level('MN')} – {_who('CMHS_MN')}",
                QS["CMHS_MN"].dimensions.get(dim, "Hài lòng chung"),
            )
        ]
        assert mn[1:] == [SUPPRESSED, "—"]

    units = rows(
        warehouse,
        "SELECT unit_code, level, questionnaire, AVG(pct_satisfied) AS five, "
        "AVG(mean_score) AS score, MAX(n_respondents) AS n FROM mart_unit_dimension "
        "WHERE campaign_id = :c AND dimension IN ('TIEP_CAN', 'CSVC', 'MOI_TRUONG', "
        "'HOAT_DONG', 'PHAT_TRIEN') GROUP BY unit_code, level, questionnaire",
        c=C,
    )
    names = {r["unit_code"]: r["unit_name"] for r in rows(warehouse, "SELECT * FROM unit")}
    th = sorted((r for r in units if r["questionnaire"] == "CMHS_TH"), key=lambda r: -r["five"])
    shown = [
        r[1:]
        for r in tables["Xếp hạng đơn vị theo tỷ lệ hài lòng bình quân 5 tiêu chí"][1:]
        if r[0] == f"{_level('TH')} – {_who('CMHS_TH')}"
    ]
    assert shown == [
        [str(i), names[r["unit_code"]], number(int(r["n"])), pct(r["five"]), mean(r["score"])]
        for i, r in enumerate(th, start=1)
    ]
    mn = [
        r
        for r in tables["Xếp hạng đơn vị theo tỷ lệ hài lòng bình quân 5 tiêu chí"]
        if r[0].startswith(_level("MN"))
    ]
    assert [r[1:] for r in mn] == [["—", names["U1"], SUPPRESSED, SUPPRESSED, SUPPRESSED]]


def test_papi_and_services_equal_the_marts(warehouse: Engine, report: Path) -> None:
    tables = _tables(report)
    papi = rows(
        warehouse,
        "SELECT indicator, n_answers, pct_yes FROM mart_papi WHERE campaign_id = :c "
        "AND scope = 'province'",
        c=C,
    )
    assert papi
    shown = {r[0]: r[2:] for r in tables["Tỷ lệ trả lời “Có” theo chỉ số PAPI"][1:]}
    assert shown == {r["indicator"]: [number(r["n_answers"]), pct(r["pct_yes"])] for r in papi}

    services = rows(
        warehouse,
        "SELECT m.service, s.school_name, m.total_points, m.rank FROM mart_service_ranking m "
        "JOIN school s ON s.campaign_id = m.campaign_id AND s.school_code = m.school_code "
        "WHERE m.campaign_id = :c",
        c=C,
    )
    shown_services = tables["Tổng điểm rà soát dịch vụ giáo dục (tối đa 80 điểm)"][1:]
    assert sorted((r[1], r[3], r[4], r[5]) for r in shown_services) == sorted(
        (
            r["school_name"],
            number(r["total_points"], 0),
            str(r["rank"]),
            "Cần rà soát" if r["total_points"] < 40 else "",
        )
        for r in services
    )
    text = repr(shown_services)
    assert "0912" not in text and "[số điện thoại]" in text


def test_concerns_list_open_red_and_amber_alerts_by_school_with_the_follow_up(report: Path) -> None:
    body = _body(report)
    start = body.index("IV. NHỮNG VẤN ĐỀ CẦN QUAN TÂM VÀ KIẾN NGHỊ")
    section = body[start : body.index("2. Kiến nghị", start)]
    text = "\n".join(section)
    assert "Có 2 cảnh báo mức đỏ và 3 cảnh báo mức vàng" in text
    # grouped: the unit's alert under the unit, each school's under the school
    heads = [
        line for line in section if re.search(r"\((TH\d|U\d)\)", line) and not line.startswith("[")
    ]
    assert [re.findall(r"\((\w+)\)", h)[0] for h in heads] == ["U2", "TH1", "TH2", "TH3"]
    assert "[Đỏ] Tỷ lệ hài lòng" in text and ": 55,5% (ngưỡng 70,0%)." in text
    assert f"Đề xuất: {ACTIONS['CSVC']}." in text
    # the small school's figure is hidden; the acknowledged one says so, its note masked
    assert f": {SUPPRESSED} (ngưỡng 85,0%)." in text and "33,3" not in text
    assert (
        "Đã ghi nhận: gọi cô [tên] [số điện thoại]." in text
        and "0912" not in text
        and "Lan" not in text
    )
    # resolved and information alerts are not listed
    assert "HOC_THEM" not in text and "62,3" not in text and "(ngưỡng 30" not in text
    assert ": 24 (ngưỡng 40)." in text
    recommendations = body[body.index("2. Kiến nghị", start) + 1 :]
    assert any(
        line.startswith(ACTIONS["CSVC"]) and "(2 cảnh báo)" in line for line in recommendations
    )


def test_appendix_per_question_equals_the_marts(warehouse: Engine, report: Path) -> None:
    tables = _tables(report)
    found = rows(
        warehouse,
        "SELECT level, questionnaire, question_code, SUM(n_answers) AS n, SUM(n_1) AS n_1, "
        "SUM(n_2) AS n_2, SUM(n_3) AS n_3, SUM(n_4) AS n_4, SUM(n_5) AS n_5, "
        "SUM(n_answers * mean_score) / SUM(n_answers) AS mean_score, "
        "SUM(n_answers * pct_satisfied) / SUM(n_answers) AS pct_satisfied "
        "FROM mart_unit_question WHERE campaign_id = :c "
        "GROUP BY level, questionnaire, question_code",
        c=C,
    )
    assert {r["level"] for r in found} == {"MN", "TH"}
    checked = 0
    for r in found:
        title = f"Kết quả từng câu hỏi: {_level(r['level'])} – {_who(r['questionnaire'])}"
        shown = {row[0]: row[2:] for row in tables[title][1:]}
        n = int(r["n"])
        levels = [
            SUPPRESSED
            if n < 5
            else f"{number(int(r[f'n_{k}']))} ({pct(100.0 * int(r[f'n_{k}']) / n)}%)"
            for k in range(1, 6)
        ]
        assert shown[r["question_code"]] == [
            *levels,
            _shown(n, n, number),
            _shown(r["pct_satisfied"], n),
            _shown(r["mean_score"], n, mean),
        ], r
        checked += 1
    assert checked == len(found)


def test_last_page_states_the_run_the_cut_off_and_the_method(
    warehouse: Engine, report: Path
) -> None:
    body = _body(report)
    last = body[body.index("THÔNG TIN VỀ SỐ LIỆU VÀ PHƯƠNG PHÁP") :]
    text = "\n".join(last)
    newest = rows(
        warehouse,
        "SELECT MAX(last_loaded_at) AS at FROM mart_completeness WHERE campaign_id = :c",
        c=C,
    )[0]["at"]
    if isinstance(newest, str):  # SQLite hands DATETIME back as text through sa.text
        newest = dt.datetime.fromisoformat(newest)
    assert "Lần chạy (run id): run-1" in text
    assert "Bắt đầu lần chạy: 01/12/2025 01:30" in text
    assert f"Số liệu tính đến (lần nạp mới nhất): {newest:%d/%m/%Y %H:%M}" in text
    assert "Wilson" in text and f"ít hơn 5 người trả lời được ẩn ({SUPPRESSED})" in text


def test_the_document_is_an_a4_draft_of_a_so(report: Path) -> None:
    doc = docx.Document(str(report))
    first = doc.sections[0]
    assert (round(first.page_width.mm), round(first.page_height.mm)) == (210, 297)
    assert (round(first.left_margin.mm), round(first.right_margin.mm)) == (30, 15)
    assert (round(first.top_margin.mm), round(first.bottom_margin.mm)) == (20, 20)
    assert doc.styles["Normal"].font.name == "Times New Roman"
    assert doc.styles["Normal"].font.size.pt == 13
    head = doc.tables[0]
    assert "SỞ GIÁO DỤC VÀ ĐÀO TẠO" in head.cell(0, 0).text
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in head.cell(0, 1).text
    assert "Độc lập - Tự do - Hạnh phúc" in head.cell(0, 1).text
    body = _body(report)
    assert body.index("DỰ THẢO") < body.index("BÁO CÁO") < body.index("I. TÌNH HÌNH CHUNG")
    outline = [
        "I. TÌNH HÌNH CHUNG",
        "II. KẾT QUẢ KHẢO SÁT",
        "III. Ý KIẾN CỦA CHA MẸ HỌC SINH VÀ HỌC SINH",
        "IV. NHỮNG VẤN ĐỀ CẦN QUAN TÂM VÀ KIẾN NGHỊ",
        "PHỤ LỤC: KẾT QUẢ THEO TỪNG CÂU HỎI",
        "THÔNG TIN VỀ SỐ LIỆU VÀ PHƯƠNG PHÁP",
    ]
    assert [line for line in body if line in outline] == outline
    # the Phụ lục is on landscape pages, the last page portrait again
    assert [s.orientation for s in doc.sections][-2:] == [1, 0]
    assert report == report_path(report.parent, C)


def test_comment_section_shows_themes_by_count_and_their_quotes() -> None:
    def count(theme: str, label: str, n: int) -> ThemeCount:
        return ThemeCount(C, "province", "01", "CMHS_TH", theme, label, None, n, 200)

    themes = [
        count("nha_ve_sinh", "Nhà vệ sinh", 12),
        count(OTHER_THEME, "Khác", 30),
        count("khoan_thu", "Khoản thu và đóng góp", 25),
        count("khen", "Khen ngợi", 12),
    ]
    quotes = [
        Quote(C, "province", "01", "CMHS_TH", "khoan_thu", rank, f"Ý kiến {rank}")
        for rank in (3, 1, 2, 4)
    ] + [Quote(C, "province", "01", "CMHS_TH", OTHER_THEME, 1, "không rõ chủ đề")]
    blocks = comment_section(themes, quotes, {"CMHS_TH": "Cha mẹ học sinh tiểu học"})
    assert blocks[0] == Heading("III. Ý KIẾN CỦA CHA MẸ HỌC SINH VÀ HỌC SINH")
    table = next(b for b in blocks if isinstance(b, TableBlock))
    assert table.rows == [
        ["Khoản thu và đóng góp", "25", "12,5"],
        ["Khen ngợi", "12", "6,0"],
        ["Nhà vệ sinh", "12", "6,0"],
        ["Khác", "30", "15,0"],
    ]
    assert [b.title for b in blocks if isinstance(b, Chart)] == [
        "Số ý kiến theo chủ đề: Cha mẹ học sinh tiểu học"
    ]
    said = [b.text for b in blocks if isinstance(b, Para) and b.italic]
    assert said == ["“Ý kiến 1”", "“Ý kiến 2”", "“Ý kiến 3”"]
    assert comment_section([], [])[1] == Para(
        "Chưa có số liệu tổng hợp ý kiến, đề xuất của người trả lời."
    )


def test_comment_section_equals_the_comment_mart(warehouse: Engine, tmp_path: Path) -> None:
    from flows.comments import build_comment_mart, load_codebook

    with warehouse.begin() as conn:  # comments on two known themes beside the formula-like ones
        r = t.response
        conn.execute(
            r.update()
            .where(r.c.campaign_id == C, r.c.response_no % 3 == 0)
            .values(comment="Nhà vệ sinh bẩn quá, cần sửa")
        )
        conn.execute(
            r.update()
            .where(r.c.campaign_id == C, r.c.response_no % 3 == 1)
            .values(comment="cac khoan thu dau nam qua nhieu")
        )
    build_comment_mart(warehouse, C, load_codebook())
    path = write_report(warehouse, C, tmp_path / "out", QS, run_id="run-1", actions=ACTIONS)
    tables = _tables(path)
    mart = rows(
        warehouse,
        "SELECT questionnaire, label, n_comments, n_respondents FROM mart_comment_theme "
        "WHERE campaign_id = :c AND scope = 'province'",
        c=C,
    )
    assert {m["label"] for m in mart} >= {"Nhà vệ sinh và nước uống", "Khoản thu và đóng góp"}
    by_q: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for m in mart:
        share = 100 * m["n_comments"] / m["n_respondents"]
        by_q[m["questionnaire"]][m["label"]] = [number(m["n_comments"]), pct(share)]
    for code, expected in by_q.items():
        shown = tables[f"Chủ đề ý kiến: {QS[code].name}"]
        assert {row[0]: row[1:] for row in shown[1:]} == expected


# ---------------------------------------------------------------------------------------------
# Rendering, the command, the night


@pytest.mark.soffice
@pytest.mark.slow
def test_it_converts_to_pdf_with_its_captions_and_charts(report: Path, tmp_path: Path) -> None:
    [pdf] = to_pdf([report], tmp_path)
    text = subprocess.run(
        [tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    captions = [b.text for b in _blocks(docx.Document(str(report))) if isinstance(b, Paragraph)]
    charts = [c for c in captions if re.match(r"Biểu đồ \d+\. ", c)]
    tables = [c for c in captions if re.match(r"Bảng \d+\. ", c)]
    assert len(charts) == 3 and len(tables) > 10
    flat = re.sub(r"\s+", " ", text)
    for caption in charts + tables:
        assert caption in flat, caption
    listed = subprocess.run(
        [tool("pdfimages"), "-list", str(pdf)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    images = [line.split() for line in listed if line.split()[2] == "image"]
    assert len(images) == len(charts)
    pages = {int(line[0]) for line in images}
    assert len(pages) >= 2  # the charts sit on the pages of their sections
    assert "Liberation Serif" in subprocess.run(
        [tool("pdffonts"), str(pdf)], capture_output=True, text=True, check=True
    ).stdout.replace("LiberationSerif", "Liberation Serif")


@pytest.mark.slow
def test_khaosat_report_and_every_night_write_it(tmp_path: Path, prefect_harness: None) -> None:
    config = make_province(tmp_path)
    first = khaosat("report", "--config", str(config))
    assert first.returncode == 2, first.stdout + first.stderr
    assert "khaosat run" in first.stdout and "Traceback" not in first.stdout + first.stderr

    night = khaosat("run", "--config", str(config))
    path = tmp_path / "output" / "T-2024_BAO_CAO.docx"
    assert night.returncode == 1, night.stdout + night.stderr  # S6 never submitted, S3 late
    assert path.exists() and f"Report: {path}" in night.stdout
    written = path.stat().st_mtime_ns
    again = khaosat("report", "--config", str(config))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Report: {path}" in again.stdout
    assert path.stat().st_mtime_ns > written
    assert "Bảng 1. " in "\n".join(_body(path))


@pytest.mark.slow
def test_a_report_that_cannot_be_written_loses_no_workbook(
    tmp_path: Path, prefect_harness: None
) -> None:
    config = make_province(tmp_path)
    blocked = tmp_path / "output" / "T-2024_BAO_CAO.docx"
    blocked.mkdir(parents=True)  # a folder where the file goes: it cannot be replaced
    night = khaosat("run", "--config", str(config))
    console = night.stdout + night.stderr
    assert night.returncode == 1, console
    assert "the draft report was not written" in console and "Traceback" not in console
    assert sorted(p.name for p in (tmp_path / "output").glob("*.xlsx")) == [
        "T-2024_TM.xlsx",
        "T-2024_U1.xlsx",
        "T-2024_U2.xlsx",
    ]


def test_the_report_is_readable_as_the_workbooks_beside_it_are(tmp_path: Path) -> None:
    """The report takes the permissions the umask gives any new file (the workbooks'), not
    the owner-only ones of a temporary file: leadership reads it from a shared folder."""
    import os

    from docx import Document

    from flows.publish.report.document import save_document

    before = os.umask(0o022)
    try:
        path = save_document(Document(), tmp_path / "out" / "C_BAO_CAO.docx")
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["C_BAO_CAO.docx"]  # no temporary left


@pytest.mark.slow
def test_khaosat_demo_says_where_the_report_is(tmp_path: Path, prefect_harness: None) -> None:
    demo = khaosat("demo", str(tmp_path / "demo"))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    path = tmp_path / "demo" / "output" / "HN-2024_BAO_CAO.docx"
    assert f"Report: {path}" in demo.stdout
    assert "IV. NHỮNG VẤN ĐỀ CẦN QUAN TÂM VÀ KIẾN NGHỊ" in _body(path)


def test_a_long_ranking_is_charted_in_parts_that_each_fit_a_page() -> None:
    """A province of ninety-one units ranked: four charts of at most thirty bars, each no
    taller than a page's text area at the report's width (160 mm wide, ≤ 230 mm tall)."""
    import io

    from PIL import Image

    from flows.publish.report.charts import MAX_BARS, horizontal_bars
    from flows.publish.report.sections import split_bars

    bars = [(f"Xã {i:02d} · TH (CMHS)", 80.0 + i % 20) for i in range(91)]
    parts = split_bars("Xếp hạng", bars)
    assert [len(p) for _, p in parts] == [30, 30, 30, 1]
    assert [t for t, _ in parts][0] == "Xếp hạng (phần 1/4)"
    assert [b for _, p in parts for b in p] == bars
    assert split_bars("Xếp hạng", bars[:MAX_BARS]) == [("Xếp hạng", bars[:MAX_BARS])]
    for count in (1, MAX_BARS, 91):
        png = horizontal_bars([b[0] for b in bars[:count]], [b[1] for b in bars[:count]])
        width, height = Image.open(io.BytesIO(png)).size
        assert 160 * height / width <= 230, (count, width, height)
