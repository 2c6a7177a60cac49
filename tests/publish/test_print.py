"""Every workbook khaosat writes prints: LibreOffice turns the demo's workbooks and a messy
province's into PDF, and each page is checked as a principal or a director would hold it.

A4, one page wide (a table's first and last header on every page of its sheet), the footer
whole on every page (sheet name and "Trang p / n"), as many pages down as the rows need and
no more, and a school's feedback one page per sheet, in Vietnamese, pointing at each cell.
Needs LibreOffice's soffice and poppler's pdfinfo/pdftotext (``.ci/run`` installs both).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.publish.feedback import ISSUES_SHEET, STATUS_SHEET
from flows.publish.template import write_template
from schemas import load_questionnaires
from tests.factories import KHAOSAT, ROOT, cli_env, make_province, pdf_pages, to_pdf, tool

pytestmark = [pytest.mark.soffice, pytest.mark.slow]

QS = load_questionnaires()
_FOOTER = re.compile(r"Trang\s+(\d+)\s*/\s*(\d+)")
#: Table rows a landscape or portrait page holds at the least (wrapped rows are tall).
_ROWS_PER_PAGE = 12


def _khaosat(*args: str) -> None:
    done = subprocess.run(
        [str(KHAOSAT), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=cli_env(api=False),
        cwd=ROOT,
    )
    # a partial failure (the messy province's broken files) exits non-zero after publishing
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def _messy_province(folder: Path) -> Path:
    """The test province (its S5 file is corrupt) with a school whose CSV renamed TC1's column
    and holds an answer that is no level of the scale; returns its output folder."""
    config = make_province(folder)
    q = QS["CMHS_TH"]
    headers = ["Dấu thời gian", *(i.text for i in q.items)]
    codes = [i.code for i in q.items]
    tc1, tc2 = 1 + codes.index("TC1"), 1 + codes.index("TC2")
    headers[tc1] = "1. Thông tin tuyển sinh rõ ràng, đầy đủ, kịp thời"
    lines = [",".join(f'"{h}"' for h in headers)]
    for n in range(8):
        answers = ["4" if i.kind == "likert" else "" for i in q.items]
        if n == 3:
            answers[tc2 - 1] = "tốt lắm"  # rejected: no level of the scale
        lines.append(f"2024-10-{10 + n} 09:00:00," + ",".join(answers))
    (folder / "submissions" / "S4_cmhs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (folder / "sources.csv").open("a", encoding="utf-8") as f:
        f.write("S4,CMHS_TH,csv,submissions/S4_cmhs.csv\n")
    _khaosat("run", "--config", str(config))
    return folder / "output"


@dataclass
class Printed:
    """A workbook and the PDF LibreOffice printed from it: each page's text and size."""

    xlsx: Path
    pages: list[str]
    sizes: list[str]


def _print_all(paths: list[Path], out: Path) -> dict[Path, Printed]:
    """One soffice call for every workbook (starting LibreOffice is most of the cost)."""
    printed = {}
    for path, pdf in zip(paths, to_pdf(paths, out), strict=True):
        info = subprocess.run(
            [tool("pdfinfo"), "-f", "1", "-l", "9999", str(pdf)], capture_output=True, text=True
        ).stdout
        sizes = re.findall(r"Page\s+\d+ size:\s+(.*)", info)
        printed[path] = Printed(path, pdf_pages(pdf)[: len(sizes)], sizes)
    return printed


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Printed]:
    """Every workbook of the demo and of the messy province, and the blank forms, printed."""
    folder = tmp_path_factory.mktemp("print")
    _khaosat("demo", str(folder / "demo"))
    messy = _messy_province(folder / "messy")
    paths = sorted((folder / "demo" / "output").glob("*.xlsx"))
    paths += sorted((folder / "demo" / "output" / "feedback").glob("*.xlsx"))
    paths += sorted(messy.glob("*.xlsx")) + sorted((messy / "feedback").glob("*.xlsx"))
    for code in ("CMHS_TH", "PAPI_TH", "DVGD_8TC"):
        paths.append(write_template(QS[code], folder / "forms" / f"{code}.xlsx", rows=30))
    # the two provinces' workbooks may share a name: each copy gets its own
    copies = []
    for i, path in enumerate(paths):
        copy = folder / "print" / f"{i:02d}_{path.stem}.xlsx"
        copy.parent.mkdir(exist_ok=True)
        copies.append(Path(shutil.copy(path, copy)))
    return _print_all(copies, folder / "pdf")


def _sheet_of(page: str, names: list[str]) -> str | None:
    """The sheet a page belongs to, by its footer: the sheet's name, then "Trang p / n" (a
    chart's labels may come after it in the text)."""
    footers = [line for line in page.splitlines() if _FOOTER.search(line)]
    if not footers:
        return None
    footer = " ".join(footers[-1].split())
    found = [n for n in names if footer.startswith(" ".join(n.split()))]
    return max(found, key=len) if found else None


def _header_words(ws: Worksheet) -> tuple[list[str], list[str]]:
    """The words of the first and last header cell of the sheet's repeated header rows."""
    rows = re.findall(r"\d+", ws.print_title_rows or "")
    if not rows:
        return [], []
    last = int(rows[-1])
    cells = [c.value for c in ws[last] if isinstance(c.value, str) and c.value.strip()]
    return cells[0].split(), cells[-1].split()


def _table_rows(ws: Worksheet) -> int:
    return sum(1 for row in ws.iter_rows() if any(c.value is not None for c in row))


def test_every_page_is_a4_with_its_footer_whole(printed: dict[Path, Printed]) -> None:
    assert len(printed) >= 20
    for book in printed.values():
        assert book.pages, book.xlsx.name
        for n, (size, page) in enumerate(zip(book.sizes, book.pages, strict=True), start=1):
            assert "(A4)" in size, (book.xlsx.name, n, size)
            assert _FOOTER.search(page), f"{book.xlsx.name} page {n}: footer cut or missing"


def test_every_sheet_prints_one_page_wide_and_no_longer_than_its_rows_need(
    printed: dict[Path, Printed],
) -> None:
    for book in printed.values():
        wb = load_workbook(book.xlsx)
        names = wb.sheetnames
        by_sheet: dict[str, list[str]] = {}
        for n, page in enumerate(book.pages, start=1):
            sheet = _sheet_of(page, names)
            assert sheet is not None, f"{book.xlsx.name} page {n} has no sheet footer"
            by_sheet.setdefault(sheet, []).append(page)
        for ws in wb.worksheets:
            where = f"{book.xlsx.name} / {ws.title}"
            pages = by_sheet.get(ws.title, [])
            assert pages, f"{where} printed nothing"
            assert len(pages) <= 1 + _table_rows(ws) // _ROWS_PER_PAGE, (where, len(pages))
            first, last = _header_words(ws)
            for n, page in enumerate(pages, start=1):
                words = set(page.split())
                # the first and the last header on the same page: nothing printed beside it
                assert set(first) <= words and set(last) <= words, (where, n, first, last)


def test_feedback_prints_one_page_per_sheet_in_vietnamese_pointing_at_each_cell(
    printed: dict[Path, Printed],
) -> None:
    feedback = [b for b in printed.values() if ISSUES_SHEET in load_workbook(b.xlsx).sheetnames]
    assert len(feedback) >= 6
    for book in feedback:
        wb = load_workbook(book.xlsx)
        n_issues = wb[ISSUES_SHEET].max_row - 5
        sheets = [_sheet_of(page, wb.sheetnames) for page in book.pages]
        assert sheets.count(STATUS_SHEET) == 1, book.xlsx.name
        # a handful of issues on one page; a school with many, six or more a page
        assert sheets.count(ISSUES_SHEET) <= 1 + (n_issues - 1) // 6, (book.xlsx.name, sheets)
        if n_issues <= 5:
            assert len(book.pages) == 2, (book.xlsx.name, sheets)
        text = " ".join(" ".join(book.pages).split())
        for english in ("not a spreadsheet", "damaged file", "TIMESTAMP", "unknown encoding"):
            assert english not in text, (book.xlsx.name, english)
        assert STATUS_SHEET in text
    s4 = next(b for b in feedback if b.xlsx.stem.endswith("_S4"))
    rows = [
        [c.value for c in r]
        for r in load_workbook(s4.xlsx)[ISSUES_SHEET].iter_rows(min_row=6)
        if r[0].value is not None
    ]
    # TC1's renamed header (column E, after the timestamp and three text columns) and the
    # rejected answer beside it, each named by its cell; the pairing replaces the "unknown
    # column" and "missing question" rows
    renamed = next(r for r in rows if str(r[-1]).endswith("(renamed_column)"))
    assert renamed[4] == "E1" and renamed[5].startswith("TC1")
    assert "Đổi tiêu đề cột E thành «Thông tin tuyển sinh được cung cấp" in renamed[8]
    assert not any(str(r[-1]).endswith(("(unknown_column)", "(missing_question)")) for r in rows)
    rejected = next(r for r in rows if r[6] == "tốt lắm")
    assert rejected[4] == "F5" and rejected[5].startswith("TC2")
    assert len(s4.pages) == 2
    s5 = next(b for b in feedback if b.xlsx.stem.endswith("_S5"))
    assert len(s5.pages) == 2
    s5_rows = load_workbook(s5.xlsx)[ISSUES_SHEET]
    assert s5_rows["H6"].value.startswith("Tệp"), s5_rows["H6"].value
