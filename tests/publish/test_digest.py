"""The alert digest: one line per school or unit, worst first, then furthest below target.

The grouping is a pure function (``flows.alerts.digest``), tested on alert rows written here.
The demo province is then run with the real ``khaosat`` command, and what an officer and a
director read is checked on it: ``khaosat alerts list`` in an 80-column terminal, ``--all`` and
``--json``, and each workbook's "Cảnh báo" sheet rendered by LibreOffice on one A4 page, its
"Cảnh báo chi tiết" listing every alert and "Tổng hợp" naming the schools to follow up first.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from flows.alerts import digest, sample_size
from flows.publish.labels import ALERT_SHEET, SEVERITY_LABELS, SUMMARY_SHEET
from flows.publish.workbooks.alerts import ALERT_DETAIL_SHEET
from tests.factories import ROOT, cli_env, pdf_pages, to_pdf

QUESTIONNAIRES = {"CMHS_TH", "PAPI_TH"}


def alert(
    alert_id: int,
    rule: str,
    severity: str,
    code: str,
    subject: str,
    value: float | None = None,
    scope: str = "school",
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "rule": rule,
        "severity": severity,
        "scope": scope,
        "scope_code": code,
        "subject": subject,
        "value": value,
        "threshold": None,
        "status": "open",
    }


ALERTS = [
    alert(1, "pct_satisfied_low", "amber", "A", "CMHS_TH/CSVC", 80.0),
    alert(2, "low_response", "amber", "A", "CMHS_TH", 0.05),
    alert(3, "pct_satisfied_low", "amber", "B", "CMHS_TH/HOAT_DONG", 72.0),
    alert(4, "pct_satisfied_low", "amber", "B", "CMHS_TH/CHUNG", 75.0),
    alert(5, "submission_missing", "amber", "C", "CMHS_TH", 0.0),
    alert(6, "item_dissatisfied_high", "red", "D", "CMHS_TH/TIEP_CAN/TC2", 25.0),
    alert(7, "pct_satisfied_low", "red", "D", "CMHS_TH/TIEP_CAN", 60.0),
    alert(8, "papi_low", "amber", "D", "HOC_THEM", 70.0),
    alert(9, "pct_satisfied_low", "red", "U1", "TH/CMHS_TH/TIEP_CAN", 65.0, scope="unit"),
    alert(10, "submission_late", "info", "E", "CMHS_TH", 12.0),
]


def test_digest_groups_by_school_worst_first_then_furthest_below_target() -> None:
    lines = digest(ALERTS, QUESTIONNAIRES, target=85.0)
    assert [(line.scope_code, line.severity) for line in lines] == [
        ("D", "red"),  # 60%: 25 points below the target
        ("U1", "red"),  # 65%
        ("B", "amber"),  # 72%
        ("A", "amber"),  # 80%
        ("C", "amber"),  # nothing below target to measure
        ("E", "info"),
    ]
    d = lines[0]
    assert d.n_alerts == 3 and d.n_red == 2
    assert d.dimensions == (("CMHS_TH", "TIEP_CAN"),)
    assert d.items == (("CMHS_TH", "TIEP_CAN", "TC2"),)
    assert d.others == (("papi_low", "HOC_THEM"),)
    assert d.lowest_pct == 60.0 and d.shortfall == 25.0
    assert d.alert_ids == (6, 7, 8)
    b = lines[2]
    # the overall item first, then the five in their order, whatever order the alerts came in
    assert b.dimensions == (("CMHS_TH", "CHUNG"), ("CMHS_TH", "HOAT_DONG"))
    assert lines[1].dimensions == (("CMHS_TH", "TIEP_CAN"),)  # the unit's level set aside
    assert lines[4].others == (("submission_missing", "CMHS_TH"),) and lines[4].shortfall == 0


def test_sample_size_counts_the_questionnaires_the_alerts_name() -> None:
    counts = [
        {"school_code": "D", "unit_code": "U1", "questionnaire": "CMHS_TH", "n_valid": 40},
        {"school_code": "D", "unit_code": "U1", "questionnaire": "PAPI_TH", "n_valid": 30},
        {"school_code": "A", "unit_code": "U1", "questionnaire": "CMHS_TH", "n_valid": 50},
        {"school_code": "B", "unit_code": "U2", "questionnaire": "CMHS_TH", "n_valid": 7},
    ]
    by_code = {line.scope_code: line for line in digest(ALERTS, QUESTIONNAIRES)}
    assert sample_size(by_code["D"], counts) == 40  # its alerts name CMHS_TH only
    assert sample_size(by_code["U1"], counts) == 90  # the unit's schools, CMHS_TH
    assert sample_size(by_code["C"], counts) == 0  # nothing submitted


# ---------------------------------------------------------------------------------------------
# The demo, as an officer and a director read it

_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def khaosat(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``khaosat ARGS`` in a process of its own (its temporary Prefect API when it runs a flow)."""
    return subprocess.run(
        [sys.executable, "-c", "from flows.cli.app import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=cli_env(api=False, **env),
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo province, run once: its khaosat.yaml."""
    folder = tmp_path_factory.mktemp("digest") / "demo"
    done = khaosat("demo", str(folder))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return folder / "khaosat.yaml"


def every_alert(config: Path, *args: str) -> list[dict[str, Any]]:
    done = khaosat("alerts", "list", "--all", "--json", "-c", str(config), *args)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


@pytest.mark.slow
def test_alerts_list_is_a_line_per_school_in_80_columns(demo: Path) -> None:
    alerts = every_alert(demo)
    places = {(a["scope"], a["scope_code"]) for a in alerts}
    assert len(alerts) > 2 * len(places)  # the digest has something to gather

    done = khaosat("alerts", "list", "-c", str(demo), COLUMNS="80")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line.split() for line in lines if re.match(r"^ ?(red|amber|info) ", line)]
    assert sorted(r[1] for r in rows) == sorted(code for _, code in places)
    severities = [r[0] for r in rows]
    assert severities == sorted(severities, key=["red", "amber", "info"].index)
    assert len(lines) < len(alerts)  # shorter than one line per alert, even wrapped

    digested = json.loads(khaosat("alerts", "list", "--json", "-c", str(demo)).stdout)
    assert [d["scope_code"] for d in digested] == [r[1] for r in rows]
    assert sum(d["n_alerts"] for d in digested) == len(alerts)
    assert sorted(i for d in digested for i in d["alert_ids"]) == sorted(
        a["alert_id"] for a in alerts
    )
    # within a severity, the furthest below target first
    for severity in ("red", "amber"):
        lows = [d["lowest_pct_satisfied"] for d in digested if d["severity"] == severity]
        measured = [v for v in lows if v is not None]
        assert measured == sorted(measured)
        assert lows[: len(measured)] == measured  # the unmeasured after the measured

    unit = every_alert(demo, "--unit", "xp03")
    assert unit and {a["scope_code"] for a in unit} < {code for _, code in places}
    wide = khaosat("alerts", "list", "--all", "-c", str(demo), COLUMNS="400")
    assert all(str(a["alert_id"]) in wide.stdout for a in alerts)


def sheet_pages(path: Path, sheet: str, out: Path) -> int:
    """How many pages LibreOffice prints ``sheet`` of the workbook ``path`` on."""
    wb = load_workbook(path)
    for ws in list(wb.worksheets):
        if ws.title != sheet:
            wb.remove(ws)
    single = out / f"{path.stem}.xlsx"
    wb.save(single)
    [pdf] = to_pdf([single], out)
    return len(_PAGE.findall(pdf.read_bytes()))


def table(path: Path, sheet: str, first_header: str) -> list[tuple[Any, ...]]:
    """The rows under the header row that starts with ``first_header``, up to a blank row."""
    ws = load_workbook(path)[sheet]
    rows = [tuple(r) for r in ws.iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r[0] == first_header) + 1
    out = []
    for r in rows[start:]:
        if r[0] is None:
            break
        out.append(r)
    return out


@pytest.mark.slow
@pytest.mark.soffice
def test_every_workbook_digest_prints_on_one_page(demo: Path, tmp_path: Path) -> None:
    units = {a["scope_code"] for a in every_alert(demo) if a["scope"] != "school"}
    books = sorted((demo.parent / "output").glob("*.xlsx"))
    assert len(books) >= 3
    for book in books:
        digest_rows = table(book, ALERT_SHEET, "Mức")
        detail_rows = table(book, ALERT_DETAIL_SHEET, "Mức")
        if digest_rows[0][0].startswith("Không có cảnh báo"):
            assert detail_rows[0][0].startswith("Không có cảnh báo")
            continue
        codes = [r[1] for r in digest_rows]
        assert len(codes) == len(set(codes)), book.name  # one line per school or unit
        assert sum(r[8] for r in digest_rows) == len(detail_rows), book.name
        assert {r[3] for r in detail_rows} == set(codes), book.name
        order = list(SEVERITY_LABELS.values())
        assert [order.index(r[0]) for r in digest_rows] == sorted(
            order.index(r[0]) for r in digest_rows
        )
        assert sheet_pages(book, ALERT_SHEET, tmp_path) == 1, book.name

        follow_up = table(book, SUMMARY_SHEET, "Trường")
        schools = [r for r in digest_rows if r[1] not in units]
        assert [r[0].rsplit("(", 1)[1].rstrip(")") for r in follow_up] == [
            r[1] for r in schools[:10]
        ], book.name


def pdf_pages_text(path: Path, out: Path) -> list[str]:
    """The text of each page LibreOffice prints the workbook ``path`` on."""
    [pdf] = to_pdf([path], out)
    return [page for page in pdf_pages(pdf) if page.strip()]


@pytest.mark.slow
@pytest.mark.soffice
def test_the_sos_own_workbook(demo: Path, tmp_path: Path) -> None:
    """The Sở's THPT/GDTX unit: no comparison with itself, no PAPI, no page without figures,
    and last year's figures beside this year's."""
    output = demo.parent / "output"
    so = load_workbook(output / "HN-2024_SGD.xlsx")
    commune = load_workbook(output / "HN-2024_XP01.xlsx")
    assert "PAPI" not in so.sheetnames and "PAPI" in commune.sheetnames

    def headers(wb: Any) -> list[Any]:
        ws = wb["Theo tiêu chí"]
        return [c for row in ws.iter_rows(max_row=8, values_only=True) for c in row if c]

    assert not any("Chênh lệch với toàn tỉnh" in str(h) for h in headers(so))
    assert any("Chênh lệch với toàn tỉnh" in str(h) for h in headers(commune))
    texts = [str(v) for ws in so.worksheets for row in ws.iter_rows(values_only=True) for v in row]
    assert not any(t.startswith(("Chưa có số liệu PAPI", "Không có đợt khảo sát")) for t in texts)

    yoy = table(output / "HN-2024_SGD.xlsx", "So sánh năm trước", "Cấp học")
    changes = [r[5] for r in yoy if isinstance(r[5], float)]
    assert changes and any(abs(c) >= 1 for c in changes)  # last year's answers, loaded

    pages = pdf_pages_text(output / "HN-2024_SGD.xlsx", tmp_path)
    for n, page in enumerate(pages, start=1):
        lines = [line for line in page.splitlines() if line.strip()]
        # title, campaign, footer and at least a header and a row of figures
        assert len(lines) >= 6, f"page {n} has nothing for the unit:\n{page}"
