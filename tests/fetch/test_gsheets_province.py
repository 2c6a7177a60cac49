"""A province mixing Google Sheets and Excel sources, through the whole nightly flow.

The real gspread and google-auth talk to the fake Google on 127.0.0.1 (tests/fake_google.py):
one school's sheet loads through a burst of 429s, another's is not shared with the service
account, and the Excel school beside them loads as usual. Figures are computed by hand.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows.pipeline import nightly
from flows.settings import load_settings
from tests.factories import FIXTURES, SERVICE_ACCOUNT, rows, stamp, write_key
from tests.fake_google import FakeGoogle
from warehouse import db

#: Whole flows, servers and subprocesses: minutes, not seconds.
pytestmark = pytest.mark.slow

GRID = "Tiếp cận dịch vụ giáo dục"
TC1 = "Thông tin tuyển sinh được cung cấp đầy đủ, kịp thời"
CHUNG = "Mức độ hài lòng nói chung của Ông/Bà đối với nhà trường"
GOOD_KEY = "1GoodFormsSheet_G1"
DENIED_KEY = "1NotSharedSheet_G2"

SCHOOLS = """\
school_code,school_name,level,unit_code,unit_name,enrollment
S1,Trường Tiểu học A,TH,U1,Phường Một,300
G1,Trường Tiểu học Gờ Một,TH,U1,Phường Một,200
G2,Trường Tiểu học Gờ Hai,TH,U1,Phường Một,200
"""
SOURCES = f"""\
school_code,questionnaire,kind,location
S1,CMHS_TH,excel,submissions/S1_cmhs.xlsx
G1,CMHS_TH,gsheet,{GOOD_KEY}#Câu trả lời biểu mẫu 1
G2,CMHS_TH,gsheet,{DENIED_KEY}
"""


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        fake.add_spreadsheet(
            GOOD_KEY,
            "Khảo sát CMHS - TH Gờ Một",
            {
                "Câu trả lời biểu mẫu 1": [
                    ["Dấu thời gian", "Địa chỉ email", f"{GRID} [{TC1}]", CHUNG],
                    [dt.datetime(2024, 10, 10, 8, 0), "g1@x.vn", "Rất hài lòng", "Hài lòng"],
                    [
                        dt.datetime(2024, 10, 11, 9, 0),
                        "g2@x.vn",
                        "Không hài lòng",
                        "Rất không hài lòng",
                    ],
                    [dt.datetime(2024, 10, 12, 10, 0), "", 4, "Bình thường"],
                ],
                "Ghi chú": [["không phải câu trả lời"]],
            },
            modified_time="2024-10-20T03:00:00.000Z",
        )
        fake.add_spreadsheet(DENIED_KEY, "Khảo sát TH Gờ Hai", {"Sheet1": [["Dấu thời gian"]]})
        fake.deny(DENIED_KEY)
        yield fake


def test_gsheet_and_excel_province(
    tmp_path: Path,
    google: FakeGoogle,
    prefect_harness: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    private_key_pem: str,
) -> None:
    pem = private_key_pem
    key_file = write_key(tmp_path / "sa.json", google.token_uri, pem)
    (tmp_path / "submissions").mkdir()
    shutil.copy(FIXTURES / "S1_cmhs.xlsx", tmp_path / "submissions")
    stamp(tmp_path / "submissions" / "S1_cmhs.xlsx", dt.datetime(2024, 10, 20, 9, 0))
    (tmp_path / "schools.csv").write_text(SCHOOLS, encoding="utf-8")
    (tmp_path / "sources.csv").write_text(SOURCES, encoding="utf-8")
    (tmp_path / "khaosat.yaml").write_text(
        f"""\
campaign: {{id: G-2024, name: Thử, school_year: 2024-2025, opens: 2024-10-01,
           closes: 2024-10-31, deadline: 2024-10-25}}
registry: {{schools: schools.csv, sources: sources.csv}}
gsheets: {{credentials: {key_file}, endpoint: "{google.url}"}}
""",
        encoding="utf-8",
    )
    google.fail(429, times=2, api="sheets", key=GOOD_KEY, retry_after=0)  # a quota burst
    caplog.set_level(logging.DEBUG)

    settings = load_settings(tmp_path / "khaosat.yaml", env={})
    summary = nightly.run(settings, as_of=dt.datetime(2024, 11, 5))
    status = {o.source.school_code: o for o in summary.outcomes}
    assert {k: o.status for k, o in status.items()} == {
        "S1": "loaded",
        "G1": "loaded",
        "G2": "failed",
    }
    denied = status["G2"].message
    assert denied.startswith("G2 ") and SERVICE_ACCOUNT in denied and "\n" not in denied

    engine = db.connect(settings.warehouse_url)
    got = {
        r["dimension"]: (r["n_respondents"], r["mean_score"], r["pct_satisfied"])
        for r in rows(engine, "SELECT * FROM mart_school_dimension WHERE school_code = 'G1'")
    }
    # G1: TC1 5, 2, 4 and CHUNG 4, 1, 3 (by hand)
    assert got == {
        "TIEP_CAN": (3, pytest.approx(11 / 3), pytest.approx(200 / 3)),
        "CHUNG": (3, pytest.approx(8 / 3), pytest.approx(100 / 3)),
    }
    unit = {
        r["dimension"]: (r["n_schools"], r["n_answers"], r["mean_score"])
        for r in rows(engine, "SELECT * FROM mart_unit_dimension WHERE unit_code = 'U1'")
    }
    # S1 TIEP_CAN answers 4,3,4,5,3 plus G1's 5,2,4 -> 8 answers, mean 30/8
    assert unit["TIEP_CAN"] == (2, 8, pytest.approx(30 / 8))
    completeness = {
        r["school_code"]: r["status"] for r in rows(engine, "SELECT * FROM mart_completeness")
    }
    assert completeness == {"S1": "submitted", "G1": "submitted", "G2": "failed"}

    # no token or key anywhere: logs, terminal, warehouse
    secrets = [*google.issued_tokens, pem.splitlines()[1]]
    out, err = capfd.readouterr()
    with engine.connect() as conn:
        dump = repr(
            [
                list(conn.execute(sa.text(f"SELECT * FROM {t}")))
                for t in ("load_ledger", "quarantine")
            ]
        )
    for secret in secrets:
        assert secret not in caplog.text and secret not in out + err and secret not in dump

    ledger = rows(engine, "SELECT revision FROM load_ledger WHERE school_code = 'G1'")
    assert [r["revision"] for r in ledger] == ["1"]

    # the next night, the unchanged sheet is skipped on its Drive version: no Sheets read at all
    sheets_reads = len([c for c in google.calls("sheets") if GOOD_KEY in c.path])
    again = nightly.run(settings, as_of=dt.datetime(2024, 11, 6))
    assert {o.source.school_code: o.status for o in again.outcomes}["G1"] == "unchanged"
    assert len([c for c in google.calls("sheets") if GOOD_KEY in c.path]) == sheets_reads

    # a new answer changes the version: the sheet is read and loaded again
    google.spreadsheets[GOOD_KEY].worksheets[0].rows.append(
        [dt.datetime(2024, 10, 13, 10, 0), "", 5, "Rất hài lòng"]
    )
    google.touch(GOOD_KEY, "2024-10-21T03:00:00.000Z")
    third = nightly.run(settings, as_of=dt.datetime(2024, 11, 7))
    assert {o.source.school_code: o.status for o in third.outcomes}["G1"] == "loaded"
    n = rows(
        engine,
        "SELECT n_respondents FROM mart_school_dimension "
        "WHERE school_code = 'G1' AND dimension = 'CHUNG'",
    )
    assert n == [{"n_respondents": 4}]
