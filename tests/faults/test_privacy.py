"""Nothing personal and no secret leaves the warehouse's private columns (issue #20, items 1, 9).

A night over the test province with two more files of school S4: one with no header row whose
first cells are an e-mail and a phone number (it fails, and its message quotes those cells), and
one whose extra columns are headed by an e-mail and a phone number (it loads, and lists them as
unknown columns). Everything the night and ``khaosat status`` produce is then searched for them:
the console, the whole text of the warehouse, every cell of every workbook under output/, and
any other file written beside the config. ``archive/`` is left out: it is the private record of
what was fetched, raw by design.

A mail server that answers AUTH by echoing the credentials back, in every form a client sent
them, must not get any of those forms into the log.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
import socketserver
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import docx
import pytest
from openpyxl import Workbook, load_workbook

from flows.pipeline import notify
from flows.privacy import EMAIL_MASK, PHONE_MASK, mask_secrets
from flows.settings import load_settings
from schemas import load_questionnaires
from schemas.records import RunSummary, Source, SourceOutcome
from tests.factories import khaosat, make_province, stamp

#: The first cells of the headerless file, and the headers of the other's extra columns.
EMAIL = "nguyen.van.an@gmail.com"
PHONE = "0912 345 678"
HEADER_EMAIL = "tran.thi.binh@yahoo.com.vn"
HEADER_PHONE = "Zalo 0987.654.321"
#: Every way those could be found again: as typed, and the phones' digits run together.
LEAKS = (EMAIL, PHONE, "0912345678", HEADER_EMAIL, "0987.654.321", "0987654321")

HEADERLESS = "submissions/S4_lop_1a.xlsx"
EXTRA_COLUMNS = "submissions/S4_lop_1b.xlsx"


def write_headerless(path: Path) -> None:
    """A CMHS_TH export whose header row was deleted: the first row is a respondent's."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Trả lời"
    for n in range(3):
        ws.append([EMAIL if n == 0 else f"ph{n}@example", PHONE, *[4] * 25])
    wb.save(path)


def write_extra_columns(path: Path) -> None:
    """A readable CMHS_TH submission with two extra columns headed by an e-mail and a phone."""
    q = load_questionnaires()["CMHS_TH"]
    items = [i for i in q.items if i.kind in ("likert", "percent")]
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Câu trả lời"
    ws.append(["Dấu thời gian", *[i.text for i in items], HEADER_EMAIL, HEADER_PHONE])
    for n, score in enumerate((4, 5, 3)):
        answers = [80 if i.kind == "percent" else score for i in items]
        ws.append([dt.datetime(2024, 10, 10 + n, 9, 0), *answers, "có", "không"])
    wb.save(path)


@pytest.fixture
def province(tmp_path: Path, prefect_harness: None) -> Path:
    config = make_province(tmp_path)
    write_headerless(tmp_path / HEADERLESS)
    write_extra_columns(tmp_path / EXTRA_COLUMNS)
    for location in (HEADERLESS, EXTRA_COLUMNS):
        stamp(tmp_path / location, dt.datetime(2024, 10, 24, 17, 0))
    with (tmp_path / "sources.csv").open("a", encoding="utf-8") as f:
        f.write(f"S4,CMHS_TH,excel,{HEADERLESS}\nS4,CMHS_TH,excel,{EXTRA_COLUMNS}\n")
    return config


def warehouse_text(path: Path) -> str:
    """Every statement that would rebuild the SQLite warehouse: every text of every table."""
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def workbook_text(path: Path) -> str:
    """Every cell of every sheet of an xlsx, and the sheets' names."""
    wb = load_workbook(path, read_only=True)
    try:
        return "\n".join(
            f"{ws.title}\n"
            + "\n".join(str(v) for row in ws.iter_rows(values_only=True) for v in row if v)
            for ws in wb.worksheets
        )
    finally:
        wb.close()


def written_files(folder: Path) -> dict[str, str]:
    """The text of everything written under ``folder`` but the inputs and the archive."""
    texts: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or rel.parts[0] in ("submissions", "archive"):
            continue
        if path.suffix == ".xlsx":
            texts[str(rel)] = workbook_text(path)
        elif path.suffix == ".sqlite":
            texts[str(rel)] = warehouse_text(path)
        elif path.suffix == ".docx":  # the draft report: its text, not its zipped bytes
            texts[str(rel)] = report_text(path)
        else:  # sidecars, journals, anything else: as bytes would be searched
            texts[str(rel)] = path.read_bytes().decode("utf-8", "replace")
    return texts


def report_text(path: Path) -> str:
    """Every paragraph and table cell of a DOCX."""
    doc = docx.Document(str(path))
    cells = [c.text for table in doc.tables for row in table.rows for c in row.cells]
    return "\n".join([p.text for p in doc.paragraphs] + cells)


def unwrapped(text: str) -> str:
    """``text`` without spaces, line breaks and table borders: a wrapped cell read as one."""
    return re.sub(r"[\s│┃]+", "", text)


def assert_nothing_leaks(where: str, text: str) -> None:
    found = [leak for leak in LEAKS if leak in text or unwrapped(leak) in unwrapped(text)]
    assert not found, f"{where} holds {found}"


@pytest.mark.slow
def test_a_night_quotes_no_email_or_phone_anywhere_but_says_what_was_there(
    province: Path,
) -> None:
    folder = province.parent
    run = khaosat("run", "--config", str(province), COLUMNS="400")
    console = run.stdout + run.stderr
    assert run.returncode == 1, console  # S5's corrupt file, and the headerless one
    shown = khaosat("status", "--config", str(province), COLUMNS="400")
    as_json = khaosat("status", "--config", str(province), "--json")
    assert shown.returncode == 0 and as_json.returncode == 0, shown.stderr + as_json.stderr

    outputs = {
        "the run's console": console,
        "khaosat status": shown.stdout + shown.stderr,
        "khaosat status --json": as_json.stdout + as_json.stderr,
        **written_files(folder),
    }
    assert "khaosat.sqlite" in outputs and "output/feedback/S4.xlsx" in outputs
    assert "output/T-2024_BAO_CAO.docx" in outputs
    for where, text in outputs.items():
        assert_nothing_leaks(where, text)

    # ... and each says what was there, for the school to find and the officer to read
    warehouse = sqlite3.connect(folder / "khaosat.sqlite")
    try:
        [(message,)] = warehouse.execute(
            "SELECT message FROM load_ledger WHERE location = ?", (HEADERLESS,)
        ).fetchall()
        [(reason,)] = warehouse.execute(
            "SELECT reason FROM quarantine WHERE file = ?", (Path(HEADERLESS).name,)
        ).fetchall()
        [(unknown,)] = warehouse.execute(
            "SELECT unknown_columns FROM load_ledger WHERE location = ? AND status = 'loaded'",
            (EXTRA_COLUMNS,),
        ).fetchall()
    finally:
        warehouse.close()
    for text in (message, reason):
        assert f"'{EMAIL_MASK}', '{PHONE_MASK}'" in text, text
    assert json.loads(unknown) == [EMAIL_MASK, f"Zalo {PHONE_MASK}"]

    for table in (console, shown.stdout):  # a table's reason may wrap over several lines
        assert unwrapped(f"'{EMAIL_MASK}', '{PHONE_MASK}'") in unwrapped(table), table
    states = {s["location"]: s for s in json.loads(as_json.stdout)["sources"]}
    assert states[HEADERLESS]["state"] == "failed"
    assert f"'{EMAIL_MASK}', '{PHONE_MASK}'" in states[HEADERLESS]["reason"]
    assert states[EXTRA_COLUMNS]["state"] == "loaded"

    feedback = outputs["output/feedback/S4.xlsx"]
    assert f"'{EMAIL_MASK}', '{PHONE_MASK}'" in feedback
    assert EMAIL_MASK in feedback.splitlines() and f"Zalo {PHONE_MASK}" in feedback.splitlines()


# -- secrets: plain, URL-encoded, base64 -------------------------------------------------------

USER = "khaosat"


def auth_forms(password: str) -> list[str]:
    """The forms a password travels in: as typed, URL-encoded, and base64 in SMTP AUTH (the
    password alone for LOGIN, with the user for PLAIN)."""
    plain_token = base64.b64encode(f"\0{USER}\0{password}".encode()).decode()
    return [
        password,
        quote(password, safe=""),
        quote_plus(password),
        base64.b64encode(password.encode()).decode(),
        plain_token,
    ]


class _EchoingSMTP(socketserver.StreamRequestHandler):
    """An SMTP server that refuses every login with a reply echoing what it was sent: each AUTH
    line and answer as received, the password decoded, and that password URL-encoded."""

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost echoing test SMTP")
        seen: list[str] = []
        while line := self.rfile.readline():
            words = line.decode().split()
            verb = words[0].upper() if words else ""
            if verb == "QUIT":
                self.reply("221 bye")
                return
            if verb == "EHLO":
                self.reply("250-localhost\r\n250 AUTH PLAIN LOGIN")
            elif verb == "AUTH":
                self.reply(self.refusal(words[1:], seen))
            else:
                self.reply("250 OK" if verb in ("HELO", "RSET", "NOOP") else "502 no")

    def refusal(self, args: list[str], seen: list[str]) -> str:
        if args[0].upper() == "PLAIN":
            seen.append(args[1])
            password = base64.b64decode(args[1]).decode().split("\0")[2]
        else:  # LOGIN: the user (maybe given with AUTH), then the password, each base64
            if len(args) < 2:
                self.reply("334 VXNlcm5hbWU6")
                args.append(self.rfile.readline().decode().strip())
            seen.append(args[1])
            self.reply("334 UGFzc3dvcmQ6")
            seen.append(self.rfile.readline().decode().strip())
            password = base64.b64decode(seen[-1]).decode()
        return (
            f"535 5.7.8 refused: you sent {' '.join(seen)}, that is {password} "
            f"(in a URL {quote(password, safe='')} or {quote_plus(password)})"
        )


@pytest.fixture
def echoing_smtp() -> Iterator[int]:
    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server(("127.0.0.1", 0), _EchoingSMTP)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("Zx9-bí/mật khẩu+1", id="non-ascii (AUTH PLAIN sent by khaosat)"),
        pytest.param("Zx9-secret/pass word+1", id="ascii (smtplib: PLAIN, then LOGIN)"),
    ],
)
def test_a_server_echoing_the_credentials_gets_none_of_their_forms_into_the_log(
    tmp_path: Path, echoing_smtp: int, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "khaosat.yaml").write_text(
        "campaign:\n  id: T-2024\n  name: Khảo sát thử nghiệm\n  school_year: 2024-2025\n"
        "  opens: 2024-10-01\n  closes: 2024-10-31\n  deadline: 2024-10-25\n"
        "registry:\n  schools: schools.csv\n  sources: sources.csv\n"
        f"notify:\n  smtp_host: 127.0.0.1\n  smtp_port: {echoing_smtp}\n"
        f"  smtp_user: {USER}\n  smtp_password: {json.dumps(password)}\n"
        "  sender: khaosat@sgd.example.vn\n  recipients: [du-lieu@sgd.example.vn]\n",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path / "khaosat.yaml", env={})
    source = Source("S5", "CMHS_TH", "excel", "submissions/S5.xlsx")
    summary = RunSummary(
        run_id="run-1",
        campaign_id="T-2024",
        outcomes=[SourceOutcome(source, "failed", message="damaged", filename="S5.xlsx")],
    )
    with caplog.at_level(logging.WARNING):
        assert not notify.notify_failed_sources(settings, summary)

    [record] = [r for r in caplog.records if r.name == notify.__name__]
    logged = record.getMessage()
    assert "SMTPAuthenticationError: 535 5.7.8 refused: you sent ***" in logged, logged
    assert "that is *** (in a URL *** or ***)" in logged, logged
    for form in auth_forms(password):
        assert form not in caplog.text, form


def test_a_password_is_masked_in_a_url_however_it_is_encoded() -> None:
    password = "p@ss/wörd 1+"
    for url in (
        f"postgresql://khaosat:{quote(password, safe='')}@db.example/khaosat",
        f"postgresql://khaosat:{quote_plus(password)}@db.example/khaosat",
        f"postgresql://khaosat:{password}@db.example/khaosat",
    ):
        assert mask_secrets(url, [password]) == "postgresql://khaosat:***@db.example/khaosat"


def test_alerts_list_shows_a_service_typed_with_a_phone_masked() -> None:
    """A service alert's subject is the service as respondents typed it; a note, anything."""
    from rich.console import Console

    from flows.cli.alerts import alerts_table
    from warehouse.alerts import Alert

    when = dt.datetime(2024, 11, 5, 2, 0)
    alert = Alert(
        alert_id=7,
        campaign_id="T-2024",
        rule="service_total_low",
        severity="red",
        scope="school",
        scope_code="S1",
        subject=f"Xe đưa đón (gọi {PHONE})",
        value=35.0,
        threshold=40.0,
        status="acknowledged",
        first_seen_at=when,
        last_seen_at=when,
        note=f"đã gọi thầy {EMAIL}",
    )
    console = Console(width=400, record=True)
    console.print(alerts_table([alert], {}))
    shown = console.export_text()
    assert_nothing_leaks("khaosat alerts list", shown)
    assert f"Xe đưa đón (gọi {PHONE_MASK})" in shown and f"đã gọi thầy {EMAIL_MASK}" in shown
