"""Hostile and broken uploads: each fails alone, in one line naming the school and the file, before
anything large is built; the awkward-but-honest ones (legacy encodings, stray cells far away,
formulas without values, several sheets) load. The corpus is built by ``tests/hostile_files.py``.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from python_calamine import CalamineError, CalamineWorkbook

from flows.pipeline import nightly
from flows.publish.xlsx import write_cell
from flows.read import read_tables
from flows.read.calamine import read_calamine
from flows.read.cells import FormulaWithoutValue
from flows.read.guards import DtdScan
from flows.settings import Limits, load_settings
from schemas.records import SourceError
from tests.hostile_files import (
    AS_OF,
    BY_NAME,
    CASES,
    HEADERS,
    INJECTIONS,
    PARSE_CASES,
    SMALL,
    Case,
    Q,
    answer_rows,
    code_of,
    cp1258,
    deflated_data,
    encrypted_xls,
    formula_rows,
    lying_header,
    make_hostile_province,
    rezip,
    with_sheet_xml,
    xlsx,
    zip_parts,
)
from warehouse import db


def one_line_naming(message: str, filename: str) -> None:
    assert message.startswith(f"{filename}: "), message
    assert "\n" not in message and "Traceback" not in message


# --------------------------------------------------------------------------------------------
# read_tables, case by case


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.reason and c.name not in PARSE_CASES], ids=lambda c: c.name
)
def test_unusable_upload_fails_in_one_line(case: Case) -> None:
    with pytest.raises(SourceError) as err:
        read_tables(case.content, case.filename, SMALL)
    one_line_naming(str(err.value), case.filename)
    assert case.reason is not None and case.reason in str(err.value)


@pytest.mark.parametrize(
    "case", [c for c in CASES if not c.reason or c.name in PARSE_CASES], ids=lambda c: c.name
)
def test_awkward_upload_is_read(case: Case) -> None:
    tables = read_tables(case.content, case.filename, SMALL)
    assert any(t.rows for t in tables)


def test_a_changed_byte_in_compressed_data_is_a_damaged_file_not_a_zip_bomb() -> None:
    """Whatever one changed byte does to the sheet's deflated data (an invalid code, more or
    less output than declared, a wrong checksum), the officer reads "damaged file"."""
    good = xlsx(answer_rows())
    deflated = deflated_data(good, "xl/worksheets/sheet1.xml")
    seen = set()
    for at in deflated[:: max(1, len(deflated) // 60)]:
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(good)
            damaged[at] ^= flip
            with pytest.raises(SourceError) as err:
                read_tables(bytes(damaged), "hong.xlsx", SMALL)
            message = str(err.value)
            one_line_naming(message, "hong.xlsx")
            assert message.startswith("hong.xlsx: damaged file (part xl/worksheets/sheet1.xml ")
            assert "zip bomb" not in message
            seen.add(message.split(" ", 6)[-1][:30])
    assert len(seen) >= 2  # more than one way of being damaged was met


def rows_of(name: str, sheet: int = 0) -> list[list]:
    case = BY_NAME[name]
    return read_tables(case.content, case.filename, SMALL)[sheet].rows


def test_legacy_encodings_read_as_their_utf8_twin() -> None:
    """cp1258 (tone marks as combining characters) and UTF-16 (Excel's "Unicode text", tab
    separated, with or without BOM) give exactly the rows of the same CSV saved as UTF-8."""
    utf8 = rows_of("good_vietnamese_csv")
    assert utf8[0][2] == Q.item("TC1").text
    assert utf8[1][6] == "Cơ sở vật chất tốt, thầy cô nhiệt tình"
    for name in ("cp1258_csv", "utf16_unicode_text", "utf16_without_bom"):
        rows = rows_of(name)
        assert rows == utf8, name
        assert all(
            unicodedata.is_normalized("NFC", v) for row in rows for v in row if isinstance(v, str)
        )


def test_cp1258_stores_tone_marks_as_combining_characters() -> None:
    # Why read.py composes: "ứ" is "ư" (0xFD) + combining acute (0xEC) in Windows-1258.
    assert cp1258("ứ") == b"\xfd\xec"
    assert b"\xfd\xec".decode("cp1258") == "ư\u0301"


@pytest.mark.parametrize("name", ["blank_at_xfd1", "blank_at_xfd1048576", "used_range_claim"])
def test_far_blank_cells_and_used_range_claims_cost_nothing(name: str) -> None:
    """A blank cell at XFD1 or XFD1048576, or a <dimension> claiming the whole sheet: the real
    rows come back, and max_cells=100 proves calamine never allocated the far rectangle."""
    case = BY_NAME[name]
    tables = read_tables(case.content, case.filename, Limits(max_cells=100))
    assert tables[0].rows == read_tables(BY_NAME["good_xlsx"].content, "g.xlsx", SMALL)[0].rows
    assert len(tables[0].rows[0]) == len(HEADERS)


def test_far_blank_ods_cell_is_cut() -> None:
    case = BY_NAME["ods_formulas_far_blank"]
    rows = read_tables(case.content, case.filename, Limits(max_cells=100))[0].rows
    assert len(rows) == len(formula_rows()) and len(rows[0]) == len(HEADERS)


@pytest.mark.parametrize("name", ["formulas_without_values", "ods_formulas_far_blank"])
def test_formulas_without_values_are_marked_not_blank(name: str) -> None:
    rows = rows_of(name)
    assert rows[1][2] == FormulaWithoutValue("=4+1")
    assert isinstance(rows[1][2], FormulaWithoutValue)
    assert isinstance(rows[3][5], FormulaWithoutValue)
    assert rows[2][2] == "Hài lòng"


def test_value_far_out_is_refused_before_calamine() -> None:
    """calamine would allocate the rectangle first (192 GB for B3000000000: an abort of the
    whole process, not an exception); the XML check refuses it first, at the default limits."""
    case = BY_NAME["cell_bomb"]
    with pytest.raises(SourceError, match=r"row 3,000,000,000, more than the limit of 200,000"):
        read_tables(case.content, case.filename, Limits())
    lower = with_sheet_xml(BY_NAME["good_xlsx"].content, lambda x: x.replace(b'r="B2"', b'r="b9"'))
    # calamine reads a lower-case reference too ("b9" is B9): so does the check.
    assert read_tables(lower, "f.xlsx", Limits())[0].rows[8][1] == "5A"


def test_a_few_far_cells_with_values_are_measured_exactly() -> None:
    """Values outside the quick bound (here: cells written out of order) go through the exact
    walk, which accepts them when the real rectangle is within the limits."""
    content = with_sheet_xml(
        BY_NAME["good_xlsx"].content,
        lambda xml: xml.replace(
            b"<sheetData>", b'<sheetData><row r="40"><c r="J40"><v>9</v></c></row>'
        ),
    )
    rows = read_tables(content, "f.xlsx", Limits(max_cells=400))[0].rows
    assert (len(rows), len(rows[0]), rows[39][9]) == (40, 10, 9.0)
    with pytest.raises(
        SourceError,
        match=r"spans 40 rows × 10 columns \(to J40\), more than the limit of 399 cells "
        r"\(limits.max_cells\)",
    ):
        read_tables(content, "f.xlsx", Limits(max_cells=399))


def test_every_limit_names_its_setting() -> None:
    messages = {
        name: _failure(BY_NAME[name])
        for name in (
            "file_too_big",
            "zip_bomb_size",
            "zip_bomb_ratio",
            "rows_over_limit",
            "cells_over_limit",
            "ods_repeat_bomb",
        )
    }
    for setting, name in [
        ("max_file_bytes", "file_too_big"),
        ("max_uncompressed_bytes", "zip_bomb_size"),
        ("max_compression_ratio", "zip_bomb_ratio"),
        ("max_rows", "rows_over_limit"),
        ("max_cells", "cells_over_limit"),
        ("max_cells", "ods_repeat_bomb"),
    ]:
        assert messages[name].endswith(f"(limits.{setting})"), messages[name]
    csv_cells = "a,b,c\r\n" * 40
    with pytest.raises(
        SourceError,
        match=r"more than the limit of 100 cells \(reached at row 34\) \(limits.max_cells\)",
    ):
        read_tables(csv_cells.encode(), "p.csv", Limits(max_cells=100))


def _failure(case: Case) -> str:
    with pytest.raises(SourceError) as err:
        read_tables(case.content, case.filename, SMALL)
    return str(err.value)


def test_calamine_alone_never_expands_entities_or_trusts_lying_sizes() -> None:
    """Defence in depth, and why read.py's messages matter: calamine (quick-xml, Rust's zip)
    refuses these too, but with messages a data officer cannot act on."""
    for name in ("billion_laughs", "external_entity", "zip_bomb_lying_header"):
        with pytest.raises(CalamineError):
            with CalamineWorkbook.from_filelike(io.BytesIO(BY_NAME[name].content)) as wb:
                wb.get_sheet_by_index(0).to_python()


def test_dtd_is_found_across_chunk_boundaries() -> None:
    """Parts are inflated and scanned in 1 MiB chunks: a declaration cut by a boundary is still
    seen, and comments or CDATA cut the same way are not mistaken for one."""
    parts = zip_parts(BY_NAME["good_xlsx"].content)
    xml = parts["xl/worksheets/sheet1.xml"]
    root = xml.index(b"<worksheet")
    for offset in range(-10, 3):
        pad = b" " * ((1 << 20) + offset - root)
        parts["xl/worksheets/sheet1.xml"] = xml[:root] + pad + b"<!ENTITY x 'y'>" + xml[root:]
        with pytest.raises(SourceError, match="declares a DTD"):
            read_tables(rezip(parts), "f.xlsx", Limits(max_compression_ratio=10_000))
    for text in (b"<!-- a comment -->", b"<![CDATA[a]]>", b"<!ENTITY x 'y'>"):
        for cut in range(1, len(text)):
            scan = DtdScan("f.xlsx", "p.xml", b"<")
            try:
                scan.feed(b"<a>" + text[:cut])
                scan.feed(text[cut:] + b"</a>")
                refused = False
            except SourceError:
                refused = True
            assert refused == text.startswith(b"<!ENTITY"), (text, cut)


def test_zip_members_are_checked_even_when_never_read_here() -> None:
    """styles.xml is calamine's to read, not ours: a lying header there is still caught."""
    good = BY_NAME["good_xlsx"].content
    styles = zip_parts(good)["xl/styles.xml"]
    parts = zip_parts(good)
    parts["xl/styles.xml"] = styles + b" " * 5_000_000
    content = lying_header(rezip(parts), "xl/styles.xml", len(styles))
    with pytest.raises(SourceError, match=r"part xl/styles.xml unpacks to more than the"):
        read_tables(content, "f.xlsx", Limits())


def test_a_panic_inside_calamine_fails_the_file_alone() -> None:
    """calamine panics on some damaged xls (this FILEPASS one, were it not caught before); the
    panic arrives as pyo3's PanicException, a BaseException, and must become a SourceError."""
    with pytest.raises(SourceError, match=r"^f.xls: damaged or unsupported spreadsheet"):
        read_calamine(encrypted_xls(), "f.xls", Limits(), {})


def test_duplicate_part_names_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in zip_parts(BY_NAME["good_xlsx"].content).items():
            zf.writestr(name, data)
        with pytest.warns(UserWarning):
            zf.writestr("xl/workbook.xml", b"<workbook/>")
    with pytest.raises(SourceError, match="two parts named xl/workbook.xml"):
        read_tables(out.getvalue(), "f.xlsx", Limits())


# --------------------------------------------------------------------------------------------
# Injection: respondent text stays text


def test_write_cell_stores_formula_like_text_as_text(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for i, text in enumerate(INJECTIONS, start=1):
        write_cell(ws, i, 1, text)
    wb.save(tmp_path / "w.xlsx")
    again = openpyxl.load_workbook(tmp_path / "w.xlsx")
    ws2 = again.active
    assert ws2 is not None
    assert [(c.value, c.data_type) for (c,) in ws2.iter_rows()] == [(t, "s") for t in INJECTIONS]
    assert b"<f>" not in zip_parts((tmp_path / "w.xlsx").read_bytes())["xl/worksheets/sheet1.xml"]


def test_sql_is_built_from_bound_parameters_only() -> None:
    """No f-string, %- or +-built SQL outside tests carries data: the few formatted statements
    take fixed identifiers (quoted by the dialect) or integer constants. A new one fails here
    until it is looked at and listed."""
    import ast

    root = Path(__file__).resolve().parents[2]
    keyword = re.compile(
        r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|ANALYZE|PRAGMA|COPY|WHERE|VALUES)\b"
    )
    found = set()
    for folder in ("flows", "warehouse", "schemas", "expectations"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                text = None
                if isinstance(node, ast.JoinedStr):
                    text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
                elif isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant):
                    text = str(node.left.value)
                elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "format":
                    value = getattr(node.func, "value", None)
                    text = str(value.value) if isinstance(value, ast.Constant) else None
                if text and keyword.search(text):
                    found.add((path.relative_to(root).as_posix(), text.strip()))
    assert found == {
        ("warehouse/db.py", "PRAGMA busy_timeout="),  # an int constant, formatted with :d
        ("warehouse/marts.py", "ANALYZE"),  # fixed table names, quoted by the dialect
        # identifiers quoted by the dialect, values bound: rows of "?" placeholders
        ("warehouse/bulk.py", "INSERT INTO {} ({}) VALUES"),
    }


# --------------------------------------------------------------------------------------------
# End to end: one province, every case a school of its own, beside good schools


def sql(engine: sa.Engine, text: str, **params: object) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(text), params)]


@pytest.mark.slow
def test_hostile_province_end_to_end(
    tmp_path: Path,
    prefect_harness: None,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(make_hostile_province(tmp_path), env={})
    summary = nightly.run(settings, as_of=AS_OF)
    outcomes = {o.source.school_code: o for o in summary.outcomes}
    assert len(outcomes) == len(CASES)

    for case in CASES:
        outcome = outcomes[code_of(case)]
        location = f"submissions/{case.filename}" + (f"#{case.sheet}" if case.sheet else "")
        if case.reason is None:
            assert outcome.status == "loaded", (case.name, outcome.message)
            continue
        assert outcome.status == "failed", case.name
        # one line, school and file first, then the reason
        assert outcome.message.startswith(f"{code_of(case)} {location}: "), outcome.message
        assert "\n" not in outcome.message
        assert case.reason in outcome.message, (case.name, outcome.message)
    assert summary.exit_code == 1

    engine = db.connect(settings.warehouse_url)
    ledger = {
        r["school_code"]: r
        for r in sql(engine, "SELECT school_code, status, message FROM load_ledger")
    }
    assert {c: r["status"] for c, r in ledger.items()} == {
        code: o.status for code, o in outcomes.items()
    }

    # The good schools' figures, by hand. good_xlsx and good_csv hold ANSWERS; TC1 "=1+2" of
    # the fifth respondent is rejected (the response stays, with its other answers).
    tiep_can = [5, 4, 3, 4, 4, 4, 5, 2, 4]  # TC1 ×4, TC2 ×5
    chung = [5, 4, 4, 3, 4]
    want = {
        "TIEP_CAN": (5, sum(tiep_can) / 9, 100 * 7 / 9),
        "CHUNG": (5, sum(chung) / 5, 100 * 4 / 5),
    }
    marts = sql(engine, "SELECT * FROM mart_school_dimension")
    by_school: dict[str, dict[str, tuple[object, ...]]] = {}
    for r in marts:
        by_school.setdefault(str(r["school_code"]), {})[str(r["dimension"])] = (
            r["n_respondents"],
            pytest.approx(r["mean_score"]),
            pytest.approx(r["pct_satisfied"]),
        )
    for name in (
        "good_xlsx",
        "good_csv",
        "blank_at_xfd1",
        "blank_at_xfd1048576",
        "used_range_claim",
        "several_sheets",
        "configured_sheet",  # not its first sheet, which holds two answers only
    ):
        got = by_school[code_of(BY_NAME[name])]
        assert {d: got[d] for d in want} == want, name
    # The same CSV in four encodings: the same figures.
    twins = [
        by_school[code_of(BY_NAME[n])]
        for n in ("good_vietnamese_csv", "cp1258_csv", "utf16_unicode_text", "utf16_without_bom")
    ]
    assert all(t == twins[0] for t in twins) and twins[0]["CHUNG"][0] == 2

    # Formulas without values: rejected cell by cell with that reason, never a blank or a guess.
    for name in ("formulas_without_values", "ods_formulas_far_blank"):
        rejected = sql(
            engine,
            "SELECT cell, raw_value, rule, reason FROM quarantine WHERE school_code = :c "
            "ORDER BY cell",
            c=code_of(BY_NAME[name]),
        )
        assert [(r["cell"], r["rule"], r["reason"]) for r in rejected] == [
            ("C2", "formula_without_value", "công thức không có giá trị"),
            ("F4", "formula_without_value", "công thức không có giá trị"),
        ], name
        assert rejected[0]["raw_value"] == "=4+1"

    # Injection: respondents' text reaches the warehouse unchanged, and the feedback workbook
    # shows the rejected "=1+2" as text, not as a formula.
    comments = sql(
        engine,
        "SELECT r.comment FROM response r JOIN source s ON s.source_id = r.source_id "
        "WHERE s.school_code = :c ORDER BY r.response_no",
        c=code_of(BY_NAME["good_xlsx"]),
    )
    assert [r["comment"] for r in comments][:4] == INJECTIONS
    feedback = tmp_path / "output" / "feedback" / f"{code_of(BY_NAME['good_xlsx'])}.xlsx"
    cells = [c for ws in openpyxl.load_workbook(feedback) for row in ws.iter_rows() for c in row]
    formula_text = [c for c in cells if c.value == "=1+2"]
    assert formula_text and all(c.data_type == "s" for c in formula_text)
    assert not any(c.data_type == "f" for c in cells)

    # Expected failures are outcomes, not crashes: no traceback anywhere.
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err + caplog.text
