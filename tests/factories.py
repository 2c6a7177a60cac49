"""Builders the tests share.

The small test province (config, registry, e2e submissions) and a ``khaosat`` subprocess as a
user runs it, for the pipeline's tests; a campaign, a questionnaire, parsed sheets and readers of
what the warehouse stored, for the warehouse's and publish's tests. ``make_parsed`` builds a
Parsed by hand, so a test of loading, marts or workbooks depends on nothing upstream of the load
step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas import load_questionnaires
from schemas.campaign import Campaign
from schemas.questionnaire import Item, Questionnaire
from schemas.records import REJECTION_COLUMNS, Fetched, Parsed, School, Source
from warehouse import tables
from warehouse.ledger import finish_run, record_absent, record_failure, start_run
from warehouse.load import replace_source
from warehouse.marts import rebuild_marts
from warehouse.registry import sync_registry

#: The service account the fake Google API knows (the e-mail a school shares its sheet with).
SERVICE_ACCOUNT = "khaosat-etl@khaosat-test.iam.gserviceaccount.com"


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it (thread-safe): backoff and
    rate limiting of the Google client take no real time with it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(seconds, 0.0)


def write_key(path: Path, token_uri: str, pem: str) -> Path:
    """A Google service-account key file for ``SERVICE_ACCOUNT`` whose tokens come from
    ``token_uri`` (the fake Google API's)."""
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "khaosat-test",
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": SERVICE_ACCOUNT,
                "client_id": "112233445566778899",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri,
                "universe_domain": "googleapis.com",
            }
        ),
        encoding="utf-8",
    )
    return path


FIXTURES = Path(__file__).parent / "fixtures" / "e2e" / "submissions"
AS_OF = dt.datetime(2024, 11, 5, 2, 0)  # after the deadline: absent means missing

PROVINCE_CONFIG = """\
campaign:
  id: T-2024
  name: Khảo sát thử nghiệm
  school_year: 2024-2025
  opens: 2024-10-01
  closes: 2024-10-31
  deadline: 2024-10-25
  province_code: TM
registry:
  schools: schools.csv
  sources: sources.csv
output: output
"""

PROVINCE_SCHOOLS = """\
school_code,school_name,level,unit_code,unit_name,enrollment
S1,Trường Tiểu học A,TH,U1,Phường Một,300
S2,Trường Tiểu học B,TH,U1,Phường Một,250
S3,Trường THPT C,THPT,U2,Sở GDĐT (THPT),900
S4,Trường Tiểu học D,TH,U1,Phường Một,
S5,Trường THCS E,THCS,U1,Phường Một,400
S6,Trường THCS G,THCS,U1,Phường Một,350
"""

PROVINCE_SOURCES = """\
school_code,questionnaire,kind,location
S1,CMHS_TH,excel,submissions/S1_cmhs.xlsx
S2,CMHS_TH,excel,submissions/S2_cmhs.xls
S3,CMHS_THPT,excel,submissions/S3_cmhs.ods
S3,HS_THPT,csv,submissions/S3_hs.csv
S5,CMHS_THCS,excel,submissions/S5_cmhs.xlsx
S6,CMHS_THCS,excel,submissions/S6_missing.xlsx
"""


def stamp(path: Path, when: dt.datetime) -> None:
    """Give ``path`` the modified time ``when`` (campaign time, UTC+7).

    Git checkouts stamp files with the checkout time; fixing them makes "late" deterministic.
    """
    ts = when.replace(tzinfo=dt.timezone(dt.timedelta(hours=7))).timestamp()
    os.utime(path, (ts, ts))


def make_province(folder: Path, warehouse_url: str | None = None) -> Path:
    """Write the test province into ``folder``; return its config path."""
    shutil.copytree(FIXTURES, folder / "submissions")
    config = PROVINCE_CONFIG + (f"warehouse:\n  url: {warehouse_url}\n" if warehouse_url else "")
    (folder / "khaosat.yaml").write_text(config, encoding="utf-8")
    (folder / "schools.csv").write_text(PROVINCE_SCHOOLS, encoding="utf-8")
    (folder / "sources.csv").write_text(PROVINCE_SOURCES, encoding="utf-8")
    for f in (folder / "submissions").iterdir():
        stamp(f, dt.datetime(2024, 10, 24, 17, 0))
    stamp(folder / "submissions" / "S3_cmhs.ods", dt.datetime(2024, 10, 27, 9, 0))  # late
    return folder / "khaosat.yaml"


def rows(engine: sa.Engine, sql: str, **params: object) -> list[dict[str, object]]:
    """The rows ``sql`` selects, as dicts."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def n_loaded(engine: sa.Engine) -> int:
    """How many sources the ledger says loaded so far (0 before the tables exist): for a test
    that waits until a run is under way."""
    try:
        return len(rows(engine, "SELECT load_id FROM load_ledger WHERE status = 'loaded'"))
    except sa.exc.DBAPIError:
        return 0


def under_way(proc: subprocess.Popen[str], engine: sa.Engine, n: int = 3) -> None:
    """Wait until ``n`` sources are loaded by the run ``proc`` is, which must still be going."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and n_loaded(engine) < n:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it was interrupted"  # noqa: S101


#: Columns that record when something happened rather than what the figures are.
VOLATILE = {"last_loaded_at", "alert_id", "first_seen_at", "last_seen_at"}


def mart_tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every mart (and alerts), rows sorted, without the columns that record times or ids."""
    with engine.connect() as conn:
        names = [tbl.name for tbl in tables.MART_TABLES]
        if sa.inspect(conn).has_table("alerts"):
            names.append("alerts")
        out = {}
        for name in names:
            table = tables.metadata.tables[name]
            columns = [c for c in table.c if c.name not in VOLATILE and c.name != "campaign_id"]
            found = conn.execute(sa.select(*columns)).all()
            out[name] = sorted((tuple(_rounded(v) for v in r) for r in found), key=repr)
    return out


def _rounded(value: Any) -> Any:
    # Both runs compute the same sums in the same SQL; rounding only guards against the last
    # bit of float addition order, not against a different figure.
    return round(value, 9) if isinstance(value, float) else value


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux /proc), its children first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while listed
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


ROOT = Path(__file__).resolve().parents[1]
KHAOSAT = Path(sys.executable).with_name("khaosat")


def prefect_api_url() -> str:
    """The test Prefect API's URL (set by the ``prefect_harness`` fixture)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "needs the prefect_harness fixture"
    return str(url)


def cli_env(*, api: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a ``khaosat`` subprocess: this checkout, the test Prefect API (unless
    ``api`` is false), and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KHAOSAT_", "PREFECT_API_"))}
    env.update(PYTHONPATH=str(ROOT), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    if api:
        env["PREFECT_API_URL"] = prefect_api_url()
    env.update(extra)
    return env


def khaosat(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``khaosat ARGS`` as a user would; ``env`` adds KHAOSAT_* and other variables."""
    return subprocess.run(
        [str(KHAOSAT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
    )


@contextlib.contextmanager
def khaosat_running(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``khaosat ARGS`` started as a terminal starts a job (a process group of its own, so a
    test can signal the group as Ctrl-C does), output piped; killed with its group if it is
    still running when the block ends. ``env``: from ``cli_env``."""
    proc = subprocess.Popen(
        [str(KHAOSAT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def ctrl_c(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C to a running ``khaosat`` (``serve``): its output once it has stopped, killed if
    it does not within a minute."""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, ended but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    """``predicate()``'s first true value, polled every half second for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


#: Sheet columns before the first item (A: timestamp, B: e-mail); item i is in column 3 + i.
FIRST_ITEM_COL = 3


def make_campaign(**overrides: Any) -> Campaign:
    """A campaign whose deadline is 2024-11-30."""
    values: dict[str, Any] = {
        "id": "HCM-2024",
        "name": "Khảo sát hài lòng 2024",
        "school_year": "2024-2025",
        "opens": dt.date(2024, 10, 1),
        "closes": dt.date(2024, 11, 30),
        "deadline": dt.date(2024, 11, 30),
        "province_code": "HCM",
    }
    values.update(overrides)
    return Campaign(**values)


def make_parsed(
    questionnaire: Questionnaire,
    rows: Sequence[Mapping[str, Any]],
    *,
    sheet: str = "Câu trả lời 1",
    rejections: Sequence[Mapping[str, Any]] = (),
    n_rows_read: int | None = None,
) -> Parsed:
    """A Parsed as the parse step would give it, from rows of {item code: value}.

    Response i (0-based) is sheet row i + 2 (header in row 1); item j of the questionnaire is
    column FIRST_ITEM_COL + j. A scored value that is a str is unreadable (value NaN, raw kept);
    None or a missing key is an empty cell (no answer row). ``service`` sets the service name.
    """
    responses: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    for i, values in enumerate(rows):
        response_no, row = i + 1, i + 2
        record: dict[str, Any] = {
            "response_no": response_no,
            "row": row,
            "submitted_at": pd.Timestamp(2024, 10, 15, 9, 0) + pd.Timedelta(minutes=i),
            "respondent_hash": f"h{response_no:03d}",
            "service": values.get("service"),
        }
        for j, item in enumerate(questionnaire.items):
            value = values.get(item.code)
            if item.kind == "text":
                record[item.code] = value
                continue
            if value is None:
                continue
            answers.append(
                {
                    "response_no": response_no,
                    "question_code": item.code,
                    "kind": item.kind,
                    "value": math.nan if isinstance(value, str) else float(value),
                    "raw": str(value),
                    "row": row,
                    "col": FIRST_ITEM_COL + j,
                }
            )
        responses.append(record)
    answer_columns = ["response_no", "question_code", "kind", "value", "raw", "row", "col"]
    return Parsed(
        questionnaire=questionnaire.code,
        sheet=sheet,
        header_row=1,
        columns={item.code: item.text for item in questionnaire.items},
        unknown_columns=["Số điện thoại"],
        missing_questions=[],
        responses=pd.DataFrame(responses),
        answers=pd.DataFrame(answers, columns=answer_columns),
        rejections=pd.DataFrame(list(rejections), columns=REJECTION_COLUMNS),
        n_rows_read=len(rows) if n_rows_read is None else n_rows_read,
    )


def table_rows(
    engine: Engine, table: sa.Table, *, exclude: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """All rows of a table as dicts, ordered by every column kept (stable across backends)."""
    columns = [c for c in table.c if c.name not in exclude]
    with engine.connect() as conn:
        result = conn.execute(sa.select(*columns).order_by(*columns))
        return [dict(r._mapping) for r in result]


def answer_cells(engine: Engine) -> list[tuple[Any, ...]]:
    """Every answer as (source_id, response_no, question_code, value, cell), its cell found as
    the answer table's comment says: answer_column's letters, then the response's row_number.

    Outer joins, so an answer missing its response or its column shows with cell None.
    """
    answer, response, column = tables.answer, tables.response, tables.answer_column
    source = tables.source
    cell = column.c.column_letter + sa.cast(response.c.row_number, sa.String())
    stmt = (
        sa.select(
            answer.c.source_id, answer.c.response_no, answer.c.question_code, answer.c.value, cell
        )
        .select_from(answer)
        .outerjoin(source, source.c.source_id == answer.c.source_id)
        .outerjoin(
            response,
            sa.and_(
                response.c.campaign_id == source.c.campaign_id,
                response.c.source_id == answer.c.source_id,
                response.c.response_no == answer.c.response_no,
            ),
        )
        .outerjoin(
            column,
            sa.and_(
                column.c.source_id == answer.c.source_id,
                column.c.question_code == answer.c.question_code,
            ),
        )
        .order_by(answer.c.source_id, answer.c.response_no, answer.c.question_code)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt)]


#: A satisfaction questionnaire with a text item on each side of its scored items.
SAT = Questionnaire(
    code="SAT",
    version="1",
    name="Phiếu khảo sát",
    respondent="Cha mẹ học sinh",
    kind="satisfaction",
    levels=("TH",),
    dimensions={"TIEP_CAN": "Tiếp cận", "CHUNG": "Hài lòng chung"},
    items=(
        Item(code="LOP", text="Lớp", kind="text"),
        Item(code="TC1", text="Thông tin tuyển sinh", kind="likert", dimension="TIEP_CAN"),
        Item(code="CHUNG", text="Hài lòng chung", kind="likert", dimension="CHUNG"),
        Item(code="MONG_DOI", text="Đáp ứng mong đợi", kind="percent"),
        Item(code="Y_KIEN", text="Ý kiến", kind="text"),
    ),
)
SCHOOL = School(code="S1", name="Trường A", level="TH", unit_code="U1", unit_name="Phường 1")
SOURCE = Source(school_code="S1", questionnaire="SAT", kind="excel", location="s1.xlsx")


def _bad_value(row: int, col: int, raw: str) -> dict[str, Any]:
    """The rejection of an unreadable TC1 answer at (row, col)."""
    return {
        "scope": "value",
        "sheet": "Câu trả lời 1",
        "row": row,
        "col": col,
        "question_code": "TC1",
        "raw_value": raw,
        "rule": "likert_label",
        "reason": f"'{raw}' is not a satisfaction level",
        "response_no": row - 1,
    }


#: Two responses of SAT, one with an unreadable TC1; V2: a later, different upload.
V1 = make_parsed(
    SAT,
    [
        {"LOP": "3A", "TC1": 5, "CHUNG": 4, "MONG_DOI": 80, "Y_KIEN": "Tốt"},
        {"LOP": 4.0, "TC1": "abc", "CHUNG": 3},
    ],
    rejections=[_bad_value(3, 4, "abc")],
)
V2 = make_parsed(SAT, [{"TC1": 1}])


def fetched(fingerprint: str, source: Source = SOURCE) -> Fetched:
    """A submission of ``source`` as fetch would archive it (the bytes are not needed here)."""
    return Fetched(
        source=source,
        content=b"",
        fingerprint=fingerprint,
        archive_path=Path(f"archive/{fingerprint}"),
        filename=source.location,
        modified_at=dt.datetime(2024, 11, 1, 8, 0),
    )


# ---------------------------------------------------------------------------------------------
# The test province of the leadership workbooks (tests/test_workbooks.py's docstring describes
# it): two campaigns of province 01, answers generated from the real questionnaires.

#: The built-in questionnaires the province's schools answer.
QUESTIONNAIRES = load_questionnaires()
#: A unit name a spreadsheet would read as a formula.
HOSTILE_UNIT = '=HYPERLINK("http://example.com","Sở GDĐT")'
CAMPAIGN = Campaign(
    id="HN-2025",
    name="@Khảo sát sự hài lòng năm học 2025-2026",
    school_year="2025-2026",
    opens=dt.date(2025, 10, 1),
    closes=dt.date(2025, 11, 30),
    deadline=dt.date(2025, 11, 30),
    previous="HN-2024",
    province_code="01",
)
PREVIOUS = Campaign(
    id="HN-2024",
    name="Khảo sát sự hài lòng năm học 2024-2025",
    school_year="2024-2025",
    opens=dt.date(2024, 10, 1),
    closes=dt.date(2024, 11, 30),
    deadline=dt.date(2024, 11, 30),
    province_code="01",
)
SCHOOLS = [
    School("TH1", "Trường Tiểu học Kim Đồng", "TH", "U1", "Phường Ba Đình", 600),
    School("TH2", "Trường Tiểu học Hoa Sen", "TH", "U1", "Phường Ba Đình", 80),
    School("MN1", "Trường Mầm non Sơn Ca", "MN", "U1", "Phường Ba Đình", 200),
    School("THCS1", "Trường THCS Chu Văn An", "THCS", "U1", "Phường Ba Đình", 700),
    School("TH3", "-Trường Tiểu học Lê Lợi", "TH", "U2", HOSTILE_UNIT, 500),
    School("TH9", "Trường Tiểu học Xã Mới", "TH", "U3", "Xã Mới", 300),
]
PREVIOUS_SCHOOLS = SCHOOLS[:3]
#: A service whose name carries a phone number: published masked.
PHONE_SERVICE = "Câu lạc bộ tiếng Anh (liên hệ cô Lan 0912 345 678)"
RUN_1_START = dt.datetime(2025, 12, 1, 1, 30)


def src(school: str, questionnaire: str, location: str | None = None) -> Source:
    """The Excel source of ``school``'s ``questionnaire`` (file name SCHOOL_QUESTIONNAIRE.xlsx)."""
    return Source(school, questionnaire, "excel", location or f"{school}_{questionnaire}.xlsx")


def satisfaction_rows(code: str, n: int, rng: random.Random, good: bool) -> list[dict[str, Any]]:
    """``n`` answers to satisfaction questionnaire ``code``: mostly satisfied when ``good``,
    a few skipped questions, and a comment quoting a name and an e-mail address."""
    weights = (2, 3, 10, 45, 40) if good else (15, 20, 25, 25, 15)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for item in QUESTIONNAIRES[code].items:
            if item.kind == "likert":
                if rng.random() < 0.05:
                    continue  # a skipped question
                row[item.code] = rng.choices(range(1, 6), weights)[0]
            elif item.kind == "percent":
                row[item.code] = rng.randint(40, 100)
            elif item.code == "Y_KIEN":
                # Formula-like, with an e-mail and a name: published nowhere.
                row[item.code] = f"=Ý kiến {i}: Nguyễn Văn Bình, ph.huynh{i}@example.com"
            elif item.kind == "text":
                row[item.code] = "5A"
        rows.append(row)
    return rows


def papi_rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` answers to PAPI_TH, each indicator "Có" with probability 0.85."""
    items = [i.code for i in QUESTIONNAIRES["PAPI_TH"].items if i.kind == "yesno"]
    return [{code: int(rng.random() < 0.85) for code in items} for _ in range(n)]


def service_rows(services: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """DVGD_8TC rows: each (service, level) with every criterion at that level."""
    criteria = [i.code for i in QUESTIONNAIRES["DVGD_8TC"].items if i.kind == "level"]
    return [
        {"service": name, "DICH_VU": name, **dict.fromkeys(criteria, level)}
        for name, level in services
    ]


def submissions(seed: int, previous: bool) -> dict[Source, list[dict[str, Any]]]:
    """The province's answers per source: the previous campaign's (U1 only) or the current."""
    rng = random.Random(seed)  # noqa: S311 - test answers, not secrets
    if previous:
        return {
            src("TH1", "CMHS_TH"): satisfaction_rows("CMHS_TH", 35, rng, good=True),
            src("TH2", "CMHS_TH"): satisfaction_rows("CMHS_TH", 3, rng, good=True),
            src("MN1", "CMHS_MN"): satisfaction_rows("CMHS_MN", 10, rng, good=False),
        }
    return {
        src("TH1", "CMHS_TH"): satisfaction_rows("CMHS_TH", 40, rng, good=True),
        src("TH2", "CMHS_TH"): satisfaction_rows("CMHS_TH", 3, rng, good=True),
        src("MN1", "CMHS_MN"): satisfaction_rows("CMHS_MN", 4, rng, good=True),
        src("TH3", "CMHS_TH"): satisfaction_rows("CMHS_TH", 30, rng, good=False),
        src("TH1", "PAPI_TH"): papi_rows(12, rng),
        src("TH2", "PAPI_TH"): papi_rows(3, rng),
        src("TH3", "PAPI_TH"): papi_rows(10, rng),
        src("TH1", "DVGD_8TC"): service_rows([("Bán trú", 10), ("Nước uống", 7)]),
        src("TH3", "DVGD_8TC"): service_rows([("Bán trú", 3), (PHONE_SERVICE, 7)]),
    }


#: TH3's second CMHS_TH file, which fails to read; THCS1's CMHS_THCS, never submitted.
FAILED = src("TH3", "CMHS_TH", "TH3_lop5.xlsx")
ABSENT = src("THCS1", "CMHS_THCS")


def _submitted(source: Source) -> Fetched:
    """``source`` as fetched on 2025-11-20, fingerprinted by its location."""
    return Fetched(
        source=source,
        content=b"",
        fingerprint=source.location,
        archive_path=Path("archive") / source.location,
        filename=source.location,
        modified_at=dt.datetime(2025, 11, 20, 8, 0),
    )


def load_campaign(
    engine: Engine,
    campaign: Campaign,
    schools: list[School],
    answers: dict[Source, list[dict[str, Any]]],
    run_id: str,
    started: dt.datetime,
    *,
    failed: Source | None = None,
    absent: Source | None = None,
) -> None:
    """Load ``campaign`` as the nightly flow does: registry sync, one run loading ``answers``
    (and recording ``failed`` and ``absent``), then the marts."""
    extra = [s for s in (failed, absent) if s is not None]
    sync_registry(engine, campaign, schools, QUESTIONNAIRES, sources=[*answers, *extra])
    start_run(engine, run_id, campaign.id, started_at=started)
    for source, rows in answers.items():
        parsed = make_parsed(QUESTIONNAIRES[source.questionnaire], rows)
        replace_source(engine, campaign.id, run_id, _submitted(source), parsed)
    if failed is not None:
        # The message quotes sheet content; the workbooks must not.
        message = f"{failed.label}: no header row; found 'Nguyễn Văn Bình', 'a@example.com'"
        record_failure(engine, campaign.id, run_id, failed, message)
    if absent is not None:
        record_absent(engine, campaign.id, run_id, absent, "file not found")
    finish_run(engine, run_id, finished_at=started + dt.timedelta(minutes=5))
    rebuild_marts(
        engine, campaign.id, as_of=dt.datetime(2025, 12, 5), deadline_at=campaign.deadline_at
    )


def load_both_campaigns(engine: Engine) -> None:
    """The workbook tests' warehouse: the previous campaign (run "old") and this one (run
    "run-1", with a failed and an absent source), each with its marts."""
    load_campaign(
        engine, PREVIOUS, PREVIOUS_SCHOOLS, submissions(2024, previous=True), "old", RUN_1_START
    )
    load_campaign(
        engine,
        CAMPAIGN,
        SCHOOLS,
        submissions(2025, previous=False),
        "run-1",
        RUN_1_START,
        failed=FAILED,
        absent=ABSENT,
    )


def one_more_answer(content: bytes) -> bytes:
    """The workbook with its last answer row given twice (a new respondent, same answers): a
    school's file uploaded again, changed."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    sheet = book.worksheets[0]
    sheet.append([cell.value for cell in sheet[sheet.max_row]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def tool(name: str) -> str:
    """The path of a program the printing tests need (``.ci/run`` installs them); the test
    fails, in one line, without it."""
    import pytest

    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"needs {name} on PATH (Debian: libreoffice-calc-nogui libreoffice-writer-nogui "
            "poppler-utils)",
            pytrace=False,
        )
    return found


def to_pdf(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """Print ``paths`` (workbooks, documents) to PDF with LibreOffice, in one call (starting
    LibreOffice is most of the cost), with a private profile (no clash with a LibreOffice
    already running); the PDFs, in order."""
    profile = out_dir / "lo-profile"
    done = subprocess.run(
        [tool("soffice"), f"-env:UserInstallation={profile.as_uri()}", "--headless"]
        + ["--convert-to", "pdf", "--outdir", str(out_dir), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    pdfs = [out_dir / f"{path.stem}.pdf" for path in paths]
    missing = [p.name for p in pdfs if not p.exists()]
    assert done.returncode == 0 and not missing, (missing, done.stderr or done.stdout)
    return pdfs


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each page of ``pdf`` (poppler's pdftotext, laid out as printed)."""
    text = subprocess.run(
        [tool("pdftotext"), "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return text.split("\f")[:-1]  # the text ends with a form feed
